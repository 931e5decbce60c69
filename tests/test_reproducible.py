"""Reproducible mode (#18 acceptance 4): one short training under two instruction-set settings, plain and pinned.

Each run is a fresh `python -m landscape [--reproducible] train` process (the kernels' ISA is fixed when torch
first runs one, so it cannot change inside a process). "avx2" caps ATen, oneDNN, MKL and NumPy to AVX2, which is
what a CPU without AVX-512 runs; "native" is this CPU's own choice. The weights of every checkpoint are compared
bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from landscape import reproducible
from landscape.device import enable_reproducible, reproducible_active
from landscape.errors import LandscapeError
from landscape.store import Store

ROOT = Path(__file__).resolve().parents[1]
AVX2_CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"}
KERNEL_VARS = (*AVX2_CAPS, "MKL_CBWR", "DNNL_MAX_CPU_ISA", reproducible.ENV_VAR)


def _train(tmp_path: Path, name: str, caps: dict[str, str], mode: bool) -> tuple[list[np.ndarray], dict]:
    """Train the digits cnn for 2 epochs in a fresh process; return every checkpoint tensor and the environment."""
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS} | caps
    store = tmp_path / name
    argv = [sys.executable, "-m", "landscape", *(["--reproducible"] if mode else []), "train", "--epochs", "2",
            "--device", "cpu", "--store", str(store), "--json"]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    s = Store(store)
    (key,) = s.keys("train")
    entry = s.load("train", key)
    record = json.loads((s.path("train", key) / "meta.json").read_text())
    tensors = [entry.arrays[k] for k in sorted(entry.arrays) if k.startswith("ckpt/")]
    return tensors, record["environment"]


def _equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.slow
@pytest.mark.skipif(reproducible.unsupported_reason() is not None, reason=str(reproducible.unsupported_reason()))
def test_reproducible_mode_gives_equal_bits_under_two_instruction_set_settings(tmp_path):
    plain_native, env_pn = _train(tmp_path, "plain-native", {}, mode=False)
    plain_avx2, env_pa = _train(tmp_path, "plain-avx2", AVX2_CAPS, mode=False)
    pinned_native, env_rn = _train(tmp_path, "pinned-native", {}, mode=True)
    pinned_avx2, env_ra = _train(tmp_path, "pinned-avx2", AVX2_CAPS, mode=True)

    assert not env_pn["reproducible"] and env_rn["reproducible"] and env_ra["reproducible"]
    assert env_rn["aten_capability"] == env_ra["aten_capability"] == "AVX2"
    assert env_rn["onednn_isa"].startswith("Intel AVX2")
    # the mode makes the two settings give the same bits ...
    assert _equal(pinned_native, pinned_avx2)
    # ... namely the bits a CPU without AVX-512 computes with its own kernels
    assert _equal(pinned_native, plain_avx2)
    if env_pn["aten_capability"] == "AVX2" and env_pn["onednn_isa"].startswith("Intel AVX2"):
        pytest.skip("this CPU runs AVX2 kernels natively: the plain settings cannot differ here")
    # without it they differ on this machine (measured: ~1e-8 after one epoch; UD 0.76 vs 2.61 after 30 epochs)
    assert not _equal(plain_native, plain_avx2)
    assert env_pa["aten_capability"] == "AVX2" and env_pn["aten_capability"] != "AVX2"


@pytest.fixture
def kernel_env(monkeypatch):
    """Kernel variables cleared for the test and restored afterwards; oneDNN initialised before any pin is set."""
    from landscape.device import numeric_environment, onednn_isa

    onednn_isa()  # oneDNN reads its cap at first use: make sure that use has happened, uncapped
    numeric_environment()  # (cached per process: taken before the variables change)
    for k in KERNEL_VARS:
        monkeypatch.setenv(k, "")  # recorded, so that teardown restores it (a delenv of an absent one is not)
        monkeypatch.delenv(k)
    return monkeypatch


def test_apply_sets_the_pins_only_when_asked(kernel_env):
    assert not reproducible.apply() and "ATEN_CPU_CAPABILITY" not in os.environ
    kernel_env.setenv(reproducible.ENV_VAR, "0")
    assert not reproducible.requested() and not reproducible.apply()
    kernel_env.setenv(reproducible.ENV_VAR, "1")
    if reproducible.unsupported_reason() is None:
        with pytest.warns(RuntimeWarning, match="imported before landscape"):  # torch is loaded in this process
            assert reproducible.apply()
        assert {k: os.environ[k] for k in reproducible.PINS} == reproducible.PINS


def test_mode_is_refused_with_a_reason_where_it_cannot_apply(kernel_env):
    kernel_env.setattr(reproducible.platform, "machine", lambda: "arm64")
    kernel_env.setenv(reproducible.ENV_VAR, "1")
    assert "arm64" in str(reproducible.unsupported_reason())
    with pytest.warns(RuntimeWarning, match="not available"):
        assert not reproducible.apply()
    assert "ATEN_CPU_CAPABILITY" not in os.environ
    with pytest.raises(LandscapeError, match="not available"):
        enable_reproducible()
    assert reproducible.ENV_VAR in os.environ  # set by the test itself: left as it was


@pytest.mark.skipif(reproducible.unsupported_reason() is not None, reason=str(reproducible.unsupported_reason()))
def test_enable_after_kernels_ran_is_an_error_not_a_silent_claim(kernel_env):
    import torch

    if torch.backends.cpu.get_cpu_capability() == "AVX2":
        pytest.skip("this CPU runs AVX2 kernels natively")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(LandscapeError, match="already run CPU kernels"):
            enable_reproducible()
    assert not reproducible_active()
    assert not any(k in os.environ for k in KERNEL_VARS)  # refused: nothing claims the mode afterwards


@pytest.mark.parametrize("argv", [["--reproducible", "train"], ["train", "--reproducible"],
                                  ["train", "--epochs", "1", "--reproducible", "--json"]])
def test_the_global_flag_is_accepted_before_or_after_the_command(argv):
    from landscape.cli import build_parser

    assert build_parser().parse_args(argv).reproducible
    assert not build_parser().parse_args([a for a in argv if a != "--reproducible"]).reproducible


@pytest.mark.skipif(reproducible.unsupported_reason() is not None, reason=str(reproducible.unsupported_reason()))
def test_the_global_flag_after_the_command_takes_effect(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS}
    argv = [sys.executable, "-m", "landscape", "train", "--epochs", "1", "--n-train", "20", "--n-test", "10",
            "--device", "cpu", "--store", str(tmp_path), "--json", "--reproducible"]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (key,) = Store(tmp_path).keys("train")
    assert json.loads((Store(tmp_path).path("train", key) / "meta.json").read_text())["environment"]["reproducible"]
