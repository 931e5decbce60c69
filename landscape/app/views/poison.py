"""The Poison page's tables: the engine's budget figures per method."""

from __future__ import annotations

from typing import Any

import numpy as np


def budget_table(budgets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method of the engine's budget figures (pixel scale [0, 1]; L∞ also in /255)."""
    return [{"method": method, "linf": b.get("linf"), "linf_x255": None if b.get("linf") is None else b["linf"] * 255,
             "l2_mean": b.get("l2_mean"), "l2_max": b.get("l2_max"), "l0_mean": b.get("l0_mean"),
             "psnr_db": b.get("psnr"), "n_changed": b.get("n_changed")} for method, b in budgets.items()]


def budget_for_figure(b: dict[str, Any]) -> dict[str, float]:
    """The engine's budget dict in the keys `figures.budget_figure` draws (L2 = per-image mean)."""
    return {"linf": b.get("linf", np.nan), "l2": b.get("l2_mean", np.nan), "l0": b.get("l0_mean", np.nan),
            "psnr": np.nan if b.get("psnr") is None else b["psnr"]}


def poison_sample(clean_x: Any, poisoned_x: Any, labels: Any, *, per_class: int = 2,
                  max_classes: int = 10) -> dict[str, Any]:
    """A few clean/poisoned pairs per class (perturbed ones first), as numpy arrays.

    Args:
        clean_x: clean training images (N, C, H, W), tensor or array.
        poisoned_x: the same images poisoned.
        labels: (N,) class labels.
        per_class: images kept per class.
        max_classes: classes kept (the first ones).
    """
    from landscape.figures import pick_examples

    clean, poisoned, y = (np.asarray(a) for a in (clean_x, poisoned_x, labels))
    changed = (clean != poisoned).reshape(len(clean), -1).any(1)
    picks = pick_examples(y, changed, per_class=per_class, max_classes=max_classes)
    return {"clean": clean[picks].astype(np.float32), "poisoned": poisoned[picks].astype(np.float32),
            "labels": y[picks].astype(np.int64), "n_changed": int(changed.sum()), "n_train": len(clean)}
