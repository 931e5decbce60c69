"""AppTests of a broken setup (#18): the store is a file, unexpandable or read-only; the demo snapshot is damaged,
a file or missing. Every page says so in an `st.error` naming the path and what to do, never with an exception;
a read-only store still shows the demo, and a computation started there fails with the store's message and
writes nothing. Bad sidebar values are probed on every page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from landscape.app.pages import PAGES
from landscape.app.state import RATIO_STEP
from tests.readonly import read_only
from tests.test_app import APP, COMPUTE_BUTTONS, TIMEOUT, charts, no_exception, tiny

ROOT = Path(__file__).resolve().parent.parent
NOBODY = "~nosuchuser-ue-landscape"


def pages_of_one_session():
    """Yield (page, AppTest after opening it) for every page, in one session (as a user clicks through)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    for page in PAGES:
        if not page.default:
            at.switch_page(page.file).run()
        yield page, at


def damaged_demo(tmp_path: Path) -> Path:
    """A copy of the shipped demo whose arrays files are cut in half (a truncated download or copy)."""
    demo = tmp_path / "demo"
    shutil.copytree(ROOT / "assets" / "demo", demo)
    for arrays in demo.glob("*/*/arrays.safetensors"):
        data = arrays.read_bytes()
        arrays.write_bytes(data[: len(data) // 2])
    return demo


def users_folder(tmp_path: Path) -> Path:
    """A folder of a user's files, not a store (a lock-like name of theirs included): never written into."""
    mine = tmp_path / "mine"
    (mine / "project").mkdir(parents=True, exist_ok=True)
    (mine / "notes.txt").write_text("mine\n")
    (mine / "project" / ".build.lock").write_text("mine\n")
    return mine


def files_under(folder: Path) -> list[tuple[str, str]]:
    return sorted((p.relative_to(folder).as_posix(), p.read_text() if p.is_file() else "") for p in folder.rglob("*"))


SETUPS = {  # name: (environment given the test's tmp_path, words the first error must hold)
    "store-is-a-file": (lambda t: {"UE_LANDSCAPE_STORE": str(t / "afile")}, ["afile", "is a file"]),
    "store-not-a-store": (lambda t: {"UE_LANDSCAPE_STORE": str(users_folder(t))},
                          ["mine is not a store", "notes.txt", "cannot be saved", "new or empty folder"]),
    "store-no-such-user": (lambda t: {"UE_LANDSCAPE_STORE": f"{NOBODY}/store"}, [NOBODY, "UE_LANDSCAPE_STORE"]),
    "demo-truncated": (lambda t: {"UE_LANDSCAPE_DEMO": str(damaged_demo(t))}, ["demo", "damaged", "rebuild"]),
    "demo-is-a-file": (lambda t: {"UE_LANDSCAPE_DEMO": str(t / "afile")}, ["afile", "is a file"]),
    "demo-missing": (lambda t: {"UE_LANDSCAPE_DEMO": str(t / "missing")}, ["missing", "does not exist"]),
    "demo-no-such-user": (lambda t: {"UE_LANDSCAPE_DEMO": f"{NOBODY}/demo"}, [NOBODY, "UE_LANDSCAPE_DEMO"]),
}


@pytest.mark.parametrize("setup", list(SETUPS))
def test_every_page_names_the_broken_path(setup, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("not a folder\n")
    env, words = SETUPS[setup]
    for name, value in env(tmp_path).items():
        monkeypatch.setenv(name, value)
    for page, at in pages_of_one_session():
        no_exception(at)
        errors = [e.value for e in at.error]
        assert errors, f"{page.title}: no error shown for {setup}"
        assert all(w.lower() in errors[0].lower() for w in words), f"{page.title}: {errors[0]!r} lacks {words}"
        assert "Traceback" not in errors[0]


def test_a_store_that_is_a_file_still_shows_the_demo(tmp_path, monkeypatch):
    """The user's store is unusable (a file), the shipped demo is not: every page says so and shows the demo."""
    (tmp_path / "afile").write_text("not a folder\n")
    monkeypatch.setenv("UE_LANDSCAPE_STORE", str(tmp_path / "afile"))
    for page, at in pages_of_one_session():
        no_exception(at)
        assert at.error and "afile" in at.error[0].value and "is a file" in at.error[0].value, page.title
        assert "demo" in at.error[0].value, f"{page.title}: {at.error[0].value!r} does not say the demo is shown"
        assert "set UE_LANDSCAPE_STORE to a folder you can write" in at.error[0].value, at.error[0].value
        assert charts(at), f"{page.title} still shows the demo"
    assert (tmp_path / "afile").read_text() == "not a folder\n"


def test_a_read_only_store_shows_the_demo_and_refuses_to_compute(tmp_path, monkeypatch):
    with read_only(tmp_path / "ro") as store:
        monkeypatch.setenv("UE_LANDSCAPE_STORE", str(store))
        for page, at in pages_of_one_session():
            no_exception(at)
            assert at.error and "cannot be saved" in at.error[0].value and str(store) in at.error[0].value, page.title
            assert charts(at), f"{page.title} still shows the demo"
        offered = []
        for page in PAGES:  # no computation is offered: every compute button is disabled, its help says why
            at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
            if not page.default:
                at.switch_page(page.file).run()
            tiny(at, method="random", model="mlp")  # not in the demo: every page but Cross-task has a compute button
            shown = [b for b in at.button if b.key in COMPUTE_BUTTONS or (b.key or "").endswith("_run")]
            offered += [b.key for b in shown]
            for button in shown:
                assert button.disabled, f"{page.title}: {button.key} is offered on a read-only store"
                assert "cannot be saved" in button.help and str(store) in button.help, (page.title, button.help)
        assert len(offered) >= len(PAGES) - 1, f"compute buttons shown: {offered}"
        assert not list(store.iterdir()), f"written into a read-only store: {list(store.iterdir())}"


def test_a_store_that_is_a_file_offers_no_computation(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("not a folder\n")
    monkeypatch.setenv("UE_LANDSCAPE_STORE", str(tmp_path / "afile"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/train.py").run()
    tiny(at, method="random", model="mlp")
    no_exception(at)
    assert at.button(key="train").disabled and "is a file" in at.button(key="train").help


def test_a_folder_of_other_files_offers_no_computation_and_is_left_as_it_was(tmp_path, monkeypatch):
    """$UE_LANDSCAPE_STORE naming a folder of the user's files (not a store): the demo is shown, no computation is
    offered (the button's help names the folder), and nothing in the folder is written, swept or removed."""
    mine = users_folder(tmp_path)
    before = files_under(mine)
    monkeypatch.setenv("UE_LANDSCAPE_STORE", str(mine))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert charts(at), "the demo is still shown"
    error = at.error[0].value  # the store's error says which folder to give; the app's hint only where to give it
    assert "(give a new or empty folder for a new store, or the folder of an existing store)" in error, error
    assert error.endswith("to compute, set UE_LANDSCAPE_STORE to such a folder and restart the app."), error
    assert "a folder you can write" not in error, error  # the unwritable store's advice: it is writable
    at.switch_page("pages/train.py").run()
    tiny(at, method="random", model="mlp")
    no_exception(at)
    assert at.button(key="train").disabled and f"{mine} is not a store" in at.button(key="train").help
    assert files_under(mine) == before


SIDEBAR_PROBES = [  # (widget kind, key, value): values at the edges of what the widgets accept
    ("selectbox", "_w_dataset", "cifar10"), ("selectbox", "_w_dataset", "mnist"),
    ("selectbox", "_w_dataset", "mnist-5k"),
    ("toggle", "_w_custom_eps", True), ("slider", "_w_ratio", RATIO_STEP), ("number_input", "_w_epochs", 100),
    ("number_input", "_w_seed", 2**31 - 1), ("radio", "_w_sal", "paper"), ("selectbox", "_w_method", "cuda"),
    ("selectbox", "_w_model", "resnet18"),
]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.title)
def test_bad_or_edge_sidebar_values_never_raise(page, tmp_path):
    """Every sidebar widget at an edge value, and a data folder that does not exist: an error or a cost line."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if not page.default:
        at.switch_page(page.file).run()
    for kind, key, value in SIDEBAR_PROBES:
        getattr(at, kind)(key=key).set_value(value).run()
        no_exception(at)
        if key == "_w_custom_eps":  # the smallest budget the field offers is one every spec accepts (0 was offered)
            budget = next(n for n in at.number_input if n.key.startswith("_w_eps_"))
            assert budget.min > 0, budget.min
            budget.set_value(budget.min).run()
            no_exception(at)
            assert not [e.value for e in at.error if "eps" in e.value], [e.value for e in at.error]
    at.selectbox(key="_w_dataset").set_value("cifar10").run()
    at.text_input(key="_w_data_root").set_value(str(tmp_path / "no-such-folder")).run()
    no_exception(at)
    assert any(str(tmp_path / "no-such-folder") in e.value for e in at.error), page.title
