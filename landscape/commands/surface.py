"""`python -m landscape surface`: loss surfaces of the clean (and poisoned) runs as interactive HTML + raw arrays.

Example: `python -m landscape surface --dataset digits --model cnn --kind pca --resolution 31 --out surface.html`
writes `surface.html` (Plotly, self-contained, works offline), `surface.npz` (every array of every surface,
named `<surface>/<field>` and `<surface>/path/<run>/<field>`) and `surface.json` (specs and metadata).
The cost of the grid is estimated (and calibrated) before anything runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landscape.commands import COMMANDS, Command
from landscape.commands.common import (
    add_data_args,
    add_model_args,
    add_run_args,
    add_train_args,
    data_spec,
    model_spec,
    print_json,
    tqdm_progress,
    train_spec,
)
from landscape.config import PoisonSpec, SurfaceSpec, choices


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_args(p)
    add_model_args(p)
    add_train_args(p)
    p.add_argument("--method", action="append", default=None,
                   help="poison method to compare with the clean run (repeat for several; default: clean only)")
    d = SurfaceSpec()
    p.add_argument("--kind", default=d.kind, choices=choices(SurfaceSpec, "kind"), help="direction kind")
    p.add_argument("--dims", type=int, default=d.dims, choices=choices(SurfaceSpec, "dims"),
                   help="1 = line slice, 2 = plane")
    p.add_argument("--resolution", type=int, default=31, help="grid points per axis (at most 101 in 2D)")
    p.add_argument("--alpha-range", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--beta-range", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--plane", default=d.plane, choices=choices(SurfaceSpec, "plane"),
                   help="pca: one plane for all trajectories, or each run in its own")
    p.add_argument("--norm", default=d.norm, choices=choices(SurfaceSpec, "norm"), help="random directions")
    p.add_argument("--bias-bn", default=d.bias_bn, choices=choices(SurfaceSpec, "bias_bn"), help="random directions")
    p.add_argument("--split", default=d.split, choices=choices(SurfaceSpec, "split"), help="evaluation data")
    p.add_argument("--n-eval", type=int, default=None, help="fixed seeded evaluation subset size (default: all)")
    p.add_argument("--eval-batch-size", type=int, default=128)
    p.add_argument("--surface-seed", type=int, default=0, help="seed of random directions and of the subset")
    p.add_argument("--log", action="store_true", help="log10 colour scale in the figures")
    p.add_argument("--out", default="surface.html", help="HTML file; the .npz and .json go beside it")
    add_run_args(p)


def surface_spec(a: argparse.Namespace) -> SurfaceSpec:
    return SurfaceSpec(kind=a.kind, dims=a.dims, resolution=a.resolution,
                       alpha_range=tuple(a.alpha_range) if a.alpha_range else None,
                       beta_range=tuple(a.beta_range) if a.beta_range else None, plane=a.plane, norm=a.norm,
                       bias_bn=a.bias_bn, split=a.split, n_eval=a.n_eval, batch_size=a.eval_batch_size,
                       seed=a.surface_seed)


def path_views(surface: Any) -> dict[str, Any]:
    """`ProjectedPath`s as `landscape.figures.PathView`s (figures take plain arrays)."""
    from landscape.figures import PathView

    return {name: PathView(epochs=p.epochs, a=p.alpha, b=p.beta, real_loss=p.real_loss, surface_loss=p.plane_loss,
                           residual=p.residual) for name, p in surface.paths.items()}


def surface_figures(result: Any, *, log: bool = False) -> list[Any]:
    """The figures of a `SurfaceSet`: contours with paths and anchors, 3D surfaces, accuracy, path fidelity."""
    from landscape import figures as fig

    out = []
    labels = list(result.surfaces)
    first = result[labels[0]]
    same_grid = all(np.array_equal(result[k].alpha, first.alpha) and np.array_equal(result[k].beta, first.beta)
                    for k in labels)
    if first.ndim == 1:
        if same_grid:
            out.append(fig.slice_1d(first.alpha, {k: result[k].loss[:, 0] for k in labels}, log=log,
                                    xlabel=_axis_label(first, 0)))
            out.append(fig.slice_1d(first.alpha, {k: result[k].acc[:, 0] for k in labels}, ylabel="accuracy",
                                    xlabel=_axis_label(first, 0)))
        else:
            out.extend(fig.slice_1d(result[k].alpha, {k: result[k].loss[:, 0]}, log=log,
                                    xlabel=_axis_label(result[k], 0)) for k in labels)
    else:
        if len(labels) > 1 and same_grid:
            out.append(fig.contours_side_by_side(first.alpha, first.beta, {k: result[k].loss for k in labels},
                                                 log=log))
        for k in labels:
            s = result[k]
            title = f"{s.kind} surface around {s.center} ({k})"
            out.append(fig.contour(s.alpha, s.beta, s.loss, paths=path_views(s), markers=s.anchors, log=log,
                                   title=title, xlabel=_axis_label(s, 0), ylabel=_axis_label(s, 1)))
            out.append(fig.surface_3d(s.alpha, s.beta, s.loss, paths=path_views(s), log=log, title=title))
            out.append(fig.contour(s.alpha, s.beta, s.acc, paths=path_views(s), markers=s.anchors, label="accuracy",
                                   title=f"accuracy ({k})", xlabel=_axis_label(s, 0), ylabel=_axis_label(s, 1)))
    for k in labels:
        if result[k].paths:
            out.append(fig.path_fidelity(path_views(result[k])))
    ratios = {k: result[k].explained_variance for k in labels if result[k].explained_variance.size}
    if ratios:
        out.append(fig.explained_variance(ratios))
    return out


def _axis_label(s: Any, axis: int) -> str:
    name = ("α", "β")[axis]
    if s.kind == "pca":
        ev = s.explained_variance
        return f"{name}: PC{axis + 1}" + (f" ({ev[axis]:.1%} of the variance)" if ev.size > axis else "")
    if s.kind == "interp":
        return f"{name} (model-to-model direction {axis + 1})"
    return f"{name} (filter-normalised direction {axis + 1})"


def write_html(figures: Sequence[Any], path: Path, title: str) -> None:
    """One self-contained HTML page (plotly.js embedded once, so it opens offline)."""
    parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figures)]
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<h2>{title}</h2>" + "\n".join(parts) + "</body></html>")
    path.write_text(page, encoding="utf-8")


def run(a: argparse.Namespace) -> int:
    from landscape.device import resolve_device
    from landscape.experiment import get_splits, get_surface
    from landscape.models import build_model
    from landscape.store import Store
    from landscape.surface import estimate_cost, eval_subset

    data, model, train = data_spec(a), model_spec(a), train_spec(a)
    sspec = surface_spec(a)
    poisons = [PoisonSpec(method=m) for m in (a.method or []) if m != "clean"]
    device = resolve_device(a.device)

    splits = get_splits(data)
    images = eval_subset(splits.test if sspec.split == "test" else splits.train, sspec.n_eval, sspec.seed)
    net = build_model(model.name, splits.image_shape, splits.num_classes, width=model.width, seed=train.seed)
    runs = 1 + len(poisons)
    surfaces = runs if (sspec.kind == "random" or (sspec.kind == "pca" and sspec.plane == "own")) else 1
    path_points = 2 * runs * (train.epochs + 1)  # real loss and plane loss of every checkpoint
    estimate = estimate_cost(net, surfaces * sspec.points + path_points, images, batch_size=sspec.batch_size,
                             device=device)
    if not a.json:
        print(f"surface cost: {estimate.describe()} (training runs not in the store come first)")

    with tqdm_progress(disable=a.json) as progress:
        result = get_surface(data, model, train, poisons, sspec, store=Store(a.store), device=device,
                             progress=progress)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta, arrays = result.to_store()
    np.savez_compressed(out.with_suffix(".npz"), **arrays)
    record = {"data": data.to_dict(), "model": model.to_dict(), "train": train.to_dict(),
              "poisons": [p.to_dict() for p in poisons], "surface": sspec.to_dict(), "meta": meta}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1, default=_json_default))
    title = f"{sspec.kind} loss surface: {data.name} / {model.name} ({', '.join(result.info['labels'])})"
    write_html(surface_figures(result, log=a.log), out, title)

    summary = {"html": str(out), "arrays": str(out.with_suffix(".npz")), "meta": str(out.with_suffix(".json")),
               "surfaces": {}, "estimate": estimate.describe(), "device": str(device)}
    for label, s in result.surfaces.items():
        finite = s.loss[s.finite]
        summary["surfaces"][label] = {
            "grid": list(s.loss.shape), "center": s.center, "min_loss": float(finite.min()) if finite.size else None,
            "max_loss": float(finite.max()) if finite.size else None, "non_finite": int((~s.finite).sum()),
            "explained_variance": s.explained_variance.tolist(), "seconds": s.info.get("seconds"),
            "points_per_second": s.info.get("points_per_second"),
        }
    if a.json:
        print_json(summary)
    else:
        for label, row in summary["surfaces"].items():
            ev = f", explained variance {', '.join(f'{v:.1%}' for v in row['explained_variance'])}" \
                if row["explained_variance"] else ""
            print(f"{label}: {row['grid'][0]}x{row['grid'][1]} grid around {row['center']}, loss "
                  f"{row['min_loss']:.4g}..{row['max_loss']:.4g}, {row['non_finite']} non-finite point(s){ev}")
        print(f"wrote {out}, {out.with_suffix('.npz')} and {out.with_suffix('.json')}")
    return 0


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return str(obj)


COMMANDS.register("surface")(Command("compute a loss surface (pca, random or interp) and write HTML + arrays",
                                     add_arguments, run))
