# Two entry points: `make app` (open the explorer) and `make test` (full test suite).
# Both create a local virtual environment in .venv on first use; nothing else is needed but Python >= 3.10.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch (a plain `torch` would pull a multi-GB CUDA build). GPU users: make TORCH=torch
TORCH ?= torch==2.13.0
BIN = $(VENV)/bin

.PHONY: app test install lint demo bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed

# `streamlit run app.py`, with the engine imported while the browser loads (landscape/app/serve.py)
app: install
	$(BIN)/python -m landscape.app.serve

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

demo: install
	$(BIN)/python -m landscape demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
