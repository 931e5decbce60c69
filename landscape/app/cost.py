"""Cost lines shown before a button: what a computation will do and roughly how long, from the engine's estimates.

Every line prices only what is not stored: whether a stage is stored is the stage layer's answer
(`landscape.app.engine.*_ready`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import streamlit as st

from landscape.app import engine
from landscape.config import PoisonSpec
from landscape.spec import plural

if TYPE_CHECKING:
    from landscape.app.state import AppSpec
    from landscape.config import SurfaceSpec

# Cost of the paper SAL preset relative to the fast one (digits cnn, bench/sal_speed.py: 499 s vs 41 s).
PAPER_SAL_COST = 12.0


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe_budget(norm: str, eps: float) -> str:
    """Human form of a budget: L∞ in /255 units, L2 as a radius, L0 in pixels."""
    if norm == "linf":
        return f"L∞ {eps * 255:.3g}/255 = {eps:.4g}"
    if norm == "l2":
        return f"L2 {eps:.4g}"
    if norm == "l0":
        return f"L0 {int(eps)} pixel(s)"
    return f"strength {eps:.4g} (not norm-bounded)"


def crafting_estimate(spec: AppSpec) -> dict[str, Any]:
    """The method's own cost estimate (gradient evaluations, CPU seconds) for the training set of `spec`.

    Also `poisoned` (how many training images the poison perturbs) and `images` (the training set's size). The
    method crafts every training image and keeps the poison on `poisoned` of them (`PoisonMethod.craft`), so
    the estimate is for the whole set (a ratio that poisons no image is refused, `PoisonMethod.poisoned_count`).
    """
    from landscape.poisons import build
    from landscape.stages.base import get_splits

    train = get_splits(spec.data()).train
    method = build(spec.poison(), dataset=spec.data(), device=engine.device())
    cost = method.estimate_cost(len(train), train.image_shape)  # refuses a budget the images cannot hold
    return {**cost, "poisoned": method.poisoned_count(len(train)), "images": len(train)}


def crafting_line(spec: AppSpec) -> str:
    """The crafting cost of `spec`'s poison, or nothing when it is stored."""
    if engine.poison_ready(spec):
        return ""
    c, data = crafting_estimate(spec), spec.dataset_label()
    if not c["gradient_evals"]:  # random, LSP, OPS, CUDA: no model, no gradient (as the CLI's craft says)
        return f"crafting `{spec.method}` on {data}: model-free (no gradients), seconds"
    return (f"crafting `{spec.method}` on {data}: at most {c['gradient_evals']:,} image-gradient evaluations (a "
            f"method that stops early runs fewer), roughly {format_seconds(c['cpu_seconds'])} or less on one CPU "
            f"thread (an estimate)")


def sal_runs_to_measure(spec: AppSpec) -> int:
    """How many of `spec`'s two runs have no stored SAL at the sidebar's SAL spec (0, 1 or 2)."""
    return sum(not engine.ready(lambda p=p: engine.ud_stage(spec).sal(p)) for p in (PoisonSpec(), spec.poison()))


def _measured(spec: AppSpec, what: str, timing: str, runs: int, scale: float = 1.0) -> str:
    """A cost line for `what`, timed by a stored reference run's measured seconds per epoch (`timing`), if any."""
    per_epoch = engine.timing(spec)[timing]
    if per_epoch is None:
        return f"{what} (no timing reference for this data set and model)"
    per_epoch *= scale
    return (f"{what}, about {format_seconds(runs * spec.epochs * per_epoch)} at the {per_epoch:.2f} s per epoch "
            f"measured for the stored reference run")


def training_estimate(spec: AppSpec, runs: int | None = None) -> str:
    """A cost line for training `runs` models of `spec` (default: those of its two runs not stored)."""
    runs = engine.runs_to_train(spec) if runs is None else runs
    if runs:
        engine.weight_count(spec)  # builds the model: one that cannot be built is named here, before the button
    return _measured(spec, f"{runs} x {plural(spec.epochs, 'epoch')} of `{spec.model}`", "epoch", runs)


def sal_estimate(spec: AppSpec, runs: int = 2) -> str:
    """A cost line for SAL at every epoch of `runs` runs (the reference is measured with the fast preset)."""
    return _measured(spec, f"SAL of every layer at every epoch ({spec.sal} preset)", "sal", runs,
                     PAPER_SAL_COST if spec.sal == "paper" else 1.0)


def experiment_line(spec: AppSpec) -> str:
    """What computing `spec`'s experiment costs: the runs, their SAL and the poison not stored, then UD."""
    runs, sal_runs = engine.runs_to_train(spec), sal_runs_to_measure(spec)
    parts = [training_estimate(spec, runs)] if runs else []
    parts.append(sal_estimate(spec, sal_runs) if sal_runs else "UD from the stored SAL, seconds")
    craft = crafting_line(spec)
    return "Cost: " + ", plus ".join(parts) + (f", after {craft}" if craft else "") + "."


def training_line(spec: AppSpec) -> str:
    craft = crafting_line(spec)
    return f"Cost: {training_estimate(spec)}" + (f", after {craft}" if craft else "") + "."


@st.cache_data(max_entries=32, show_spinner=False)
def _grid_cost(spec: AppSpec, surface: SurfaceSpec) -> str:
    from landscape.models import build_model
    from landscape.stages.base import get_splits
    from landscape.surface import estimate_cost, eval_subset

    splits = get_splits(spec.data())
    images = splits.test if surface.split == "test" else splits.train
    net = build_model(spec.model, splits.image_shape, splits.num_classes, seed=spec.seed)
    cost = estimate_cost(net, surface.points, eval_subset(images, surface.n_eval, surface.seed),
                         batch_size=surface.batch_size, device=engine.device())
    grids = 2 if surface.kind == "random" or (surface.kind == "pca" and surface.plane == "own") else 1
    return f"{grids} grid(s) of {cost.describe()}"


def surface_line(spec: AppSpec, surface: SurfaceSpec) -> str:
    """The engine's cost estimate of the grid(s) (calibrated on this machine), plus training if not stored."""
    text = f"Cost: {_grid_cost(spec, surface)}"
    if not engine.training_ready(spec):
        text += f"; first {training_estimate(spec)}"
        craft = crafting_line(spec)
        text += f", after {craft}" if craft else ""
    return text + "."



@st.cache_data(max_entries=32, show_spinner=False)
def _channel_factor(spec: AppSpec, layer: str) -> tuple[int, float]:
    """(output channels of `layer`, its per-channel SAL's cost / the layer SAL's of every layer, in FLOPs)."""
    from landscape.sal_cost import channel_sal_factor
    from landscape.stages.base import build_net, get_splits

    net = build_net(spec.model_spec(), spec.data(), spec.seed)
    x1 = get_splits(spec.data()).train.x[:1]
    return int(dict(net.named_parameters())[layer].shape[0]), channel_sal_factor(net, x1, layer)


def channel_sal_line(spec: AppSpec, layer: str, study: Any) -> str:
    """A cost line for per-channel SAL of `layer` on both runs: the study's measured layer SAL seconds, scaled.

    The scale is `landscape.sal_cost.channel_sal_factor` (channels x the forward FLOPs from the layer on, over
    the layer SAL's); training is priced too when the runs are not stored.
    """
    channels, factor = _channel_factor(spec, layer)
    traces = [study.sal[run] for run in ("clean", spec.method) if run in study.sal]
    seconds = float(sum(t.seconds.sum() for t in traces))
    text = (f"Cost: SAL of each of the {channels} output channels of {layer} at the {len(traces[0].epochs)} measured "
            f"epochs of both runs, roughly {format_seconds(factor * seconds)}: the {format_seconds(seconds)} the "
            f"layer SAL of every layer took on these runs x {factor:.2g}, the ratio of their forward FLOPs "
            f"(an estimate).")
    return text if engine.training_ready(spec) else f"{text} First {training_estimate(spec)}."
