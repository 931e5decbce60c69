"""The Poison page's tables (the engine's budget figures per method) and the download of the poisoned training set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

if TYPE_CHECKING:
    from landscape.app.state import AppSpec


def budget_table(budgets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method of the engine's budget figures (pixel scale [0, 1]; L∞ also in /255)."""
    return [{"method": method, "linf": b.get("linf"), "linf_x255": None if b.get("linf") is None else b["linf"] * 255,
             "l2_mean": b.get("l2_mean"), "l2_max": b.get("l2_max"), "l0_mean": b.get("l0_mean"),
             "psnr_db": b.get("psnr"), "n_changed": b.get("n_changed")} for method, b in budgets.items()]


def budget_for_figure(b: dict[str, Any]) -> dict[str, float]:
    """The engine's budget dict in the keys `figures.budget_figure` draws (L2 = per-image mean)."""
    return {"linf": b.get("linf", np.nan), "l2": b.get("l2_mean", np.nan), "l0": b.get("l0_mean", np.nan),
            "psnr": np.nan if b.get("psnr") is None else b["psnr"]}


def release_bytes(spec: AppSpec) -> bytes:
    """The poisoned training set of `spec` as an 8-bit ``.npz`` (`landscape.poisons.release`), from the store."""
    from landscape.app import engine
    from landscape.poisons.release import npz_bytes
    from landscape.stages.base import Context, get_splits

    crafted = engine.poison_stage(spec).get(Context(engine.store(), engine.device()))
    return npz_bytes(crafted, get_splits(spec.data()), "uint8")


def release_download(spec: AppSpec) -> None:
    """A download button for the poisoned training set as ``.npz`` (uint8), whose file is built only on click.

    A CIFAR-size set is about 180 MB: built on every rerun it would slow the page, so Streamlit calls
    `release_bytes` when the button is pressed (``on_click="ignore"``: no rerun either).
    """
    from landscape.app.widgets import slug
    from landscape.stages.base import get_splits

    splits = get_splits(spec.data())
    mib = (splits.train.x.numel() + splits.test.x.numel()) / 2**20
    st.download_button(f"Download the poisoned training set (.npz, 8-bit, {mib:.1f} MiB)",
                       data=lambda: release_bytes(spec), file_name=f"poisoned-{slug(spec.dataset)}-{spec.method}.npz",
                       mime="application/octet-stream", key="dl-release", on_click="ignore",
                       icon=":material/download:")
    st.caption("What you publish: x = the poisoned training images rounded to the 1/255 grid (8-bit, as every image "
               "release is), y, the clean test split (x_test, y_test) and class_names. Check the protection with "
               "`python -m landscape train --dataset npz:FILE`, or study it as `--method provided --option "
               "images=FILE`. Rounding can move the figures above (L∞ by up to 0.5/255 where the clean images are "
               "not on the 1/255 grid, as digits' v/16 are not); `craft --out FILE.npz` prints the file's own.")
