"""`python -m landscape surface`: loss surfaces of the clean (and poisoned) runs as interactive HTML + raw arrays.

Example: `python -m landscape surface --dataset digits --model cnn --kind pca --resolution 31 --out surface.html`
writes `surface.html` (Plotly, self-contained, works offline), `surface.npz` (every array of every surface,
named `<surface>/<field>` and `<surface>/path/<run>/<field>`) and `surface.json` (specs and metadata).
The cost of the grid is estimated (and calibrated) before anything runs.

With `--layer NAME` (repeat for a group) the slice moves that layer's tensors only (`landscape.layer_slices`), at
`--epoch` (default: the last stored), one surface per run on the same normalised coordinates, with SAL's ball
(`--sal-eps`) marked. An `--out` ending in .npz, .csv, .vts (2D) or .vtp (1D) writes each surface in that format
(`landscape.export`) as `<stem>-<run><suffix>` instead of the HTML page.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from landscape.commands import COMMANDS, Command
from landscape.commands.common import (
    add_experiment_args,
    experiment_specs,
    output_file,
    output_path,
    print_json,
    working,
    write_html,
)
from landscape.config import LayerSliceSpec, PoisonSpec, SALSpec, SurfaceSpec, choices
from landscape.errors import SpecError
from landscape.export import FORMATS
from landscape.files import atomic_write
from landscape.paths import reporting
from landscape.spec import plural


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_experiment_args(p)
    p.add_argument("--method", action="append", default=None,
                   help="poison method to compare with the clean run (repeat for several; default: clean only)")
    d = SurfaceSpec()
    p.add_argument("--kind", default=d.kind, choices=choices(SurfaceSpec, "kind"), help="direction kind")
    p.add_argument("--dims", type=int, default=None, choices=choices(SurfaceSpec, "dims"),
                   help="1 = line slice, 2 = plane (default 2; with --layer 1)")
    p.add_argument("--resolution", type=int, default=None,
                   help="grid points per axis, at most 101 in 2D (default 31; with --layer 21)")
    p.add_argument("--alpha-range", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--beta-range", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--plane", default=d.plane, choices=choices(SurfaceSpec, "plane"),
                   help="pca: one plane for all trajectories, or each run in its own")
    p.add_argument("--norm", default=d.norm, choices=choices(SurfaceSpec, "norm"), help="random directions")
    p.add_argument("--bias-bn", default=d.bias_bn, choices=choices(SurfaceSpec, "bias_bn"), help="random directions")
    p.add_argument("--split", default=None, choices=choices(SurfaceSpec, "split"),
                   help="evaluation data (default: test; with --layer: train, each run's own training set)")
    p.add_argument("--n-eval", type=int, default=None,
                   help="fixed seeded evaluation subset size (default: all; with --layer: 1024)")
    p.add_argument("--eval-batch-size", type=int, default=None, help="images per evaluation batch (128; --layer 256)")
    p.add_argument("--surface-seed", type=int, default=0, help="seed of random directions and of the subset")
    g = p.add_argument_group("layer slices", "move one layer's tensors only (the other flags still apply)")
    g.add_argument("--layer", action="append", default=None, metavar="NAME",
                   help="weight tensor to move, e.g. 2.weight (the cnn's second conv; a wrong name lists the "
                   "model's layers; repeat for a group); --kind is then ignored")
    g.add_argument("--epoch", type=int, default=None, help="stored epoch to slice (default: the last)")
    g.add_argument("--sal-eps", type=float, default=SALSpec().eps,
                   help="SAL's relative ball radius marked on the slice (0.05)")
    p.add_argument("--log", action="store_true", help="log10 colour scale in the figures")
    p.add_argument("--out", default="surface.html",
                   help=f"HTML file (the .npz and .json go beside it), or a file ending in {', '.join(FORMATS)}: "
                        f"each surface in that format as <stem>-<run><suffix> (default: surface.html in the current "
                        f"folder)")


def _given(a: argparse.Namespace) -> dict[str, object]:
    """The evaluation flags the user gave (the rest keep the spec's own default)."""
    flags = {"split": a.split, "n_eval": a.n_eval, "batch_size": a.eval_batch_size, "dims": a.dims,
             "resolution": a.resolution}
    return {k: v for k, v in flags.items() if v is not None}


def surface_spec(a: argparse.Namespace) -> SurfaceSpec:
    return SurfaceSpec(kind=a.kind, alpha_range=tuple(a.alpha_range) if a.alpha_range else None,
                       beta_range=tuple(a.beta_range) if a.beta_range else None, plane=a.plane, norm=a.norm,
                       bias_bn=a.bias_bn, seed=a.surface_seed, **_given(a))


def layer_slice_spec(a: argparse.Namespace) -> LayerSliceSpec:
    return LayerSliceSpec(layers=tuple(a.layer), epoch=a.epoch,
                          alpha_range=tuple(a.alpha_range) if a.alpha_range else None,
                          beta_range=tuple(a.beta_range) if a.beta_range else None, norm=a.norm, eps=a.sal_eps,
                          seed=a.surface_seed, **_given(a))


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
    if first.kind == "layer":
        return fig.layer_slice_figures(result)
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
            out.append(fig.contours_side_by_side({k: fig.Panel(first.alpha, first.beta, result[k].loss)
                                                  for k in labels}, log=log))
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


def _estimate(data: Any, model: Any, train: Any, spec: SurfaceSpec | LayerSliceSpec,
              runs: int, device: Any) -> Any:
    """The calibrated cost of the grid (and of the paths a whole-model surface projects)."""
    from landscape.experiment import get_splits
    from landscape.models import build_model
    from landscape.surface import estimate_cost, eval_subset

    splits = get_splits(data)
    images = eval_subset(splits.test if spec.split == "test" else splits.train, spec.n_eval, spec.seed)
    net = build_model(model.name, splits.image_shape, splits.num_classes, width=model.width, seed=train.seed)
    if isinstance(spec, LayerSliceSpec):
        points = runs * spec.resolution ** spec.dims
    else:
        surfaces = runs if (spec.kind == "random" or (spec.kind == "pca" and spec.plane == "own")) else 1
        points = surfaces * spec.points + 2 * runs * (train.epochs + 1)  # real and plane loss of every checkpoint
    return estimate_cost(net, points, images, batch_size=spec.batch_size, device=device)


def write_outputs(result: Any, out: Path, record: dict[str, Any], title: str, *, log: bool) -> dict[str, Any]:
    """Write the surfaces to `out`: an export format per surface, or the HTML page with the .npz and .json."""
    from landscape.export import export_surface

    with reporting(f"cannot write --out {out}"):
        if out.suffix in FORMATS:
            return {"files": {label: str(export_surface(s, out.with_name(f"{out.stem}-{label}{out.suffix}")))
                              for label, s in result.surfaces.items()}}
        meta, arrays = result.to_store()
        npz = io.BytesIO()
        np.savez_compressed(npz, **arrays)
        atomic_write(out.with_suffix(".npz"), npz.getvalue())
        atomic_write(out.with_suffix(".json"), json.dumps({**record, "meta": meta}, indent=1, default=_json_default))
        write_html(surface_figures(result, log=log), out, title)
    return {"html": str(out), "arrays": str(out.with_suffix(".npz")), "meta": str(out.with_suffix(".json"))}


def run(a: argparse.Namespace) -> int:
    from landscape.experiment import get_layer_slices, get_surface
    from landscape.stages.surface import LayerSliceStage, SurfaceStage

    data, model, train = experiment_specs(a)
    if a.epoch is not None and not a.layer:
        raise SpecError(f"--epoch {a.epoch} applies to --layer slices; a whole-model surface projects every stored "
                        f"epoch (give --layer NAME, or leave --epoch out)")
    spec: SurfaceSpec | LayerSliceSpec = layer_slice_spec(a) if a.layer else surface_spec(a)
    poisons = [PoisonSpec(method=m) for m in (a.method or []) if m != "clean"]
    repeated = sorted({p.method for p in poisons if sum(q.method == p.method for q in poisons) > 1})
    if repeated:  # the CLI's poisons differ only by method: a repeat is the same run, drawn (and planed) twice
        raise SpecError(f"--method {', '.join(repeated)} is given more than once; each poison method may appear "
                        f"once (a repeat is the same run at the method's default budget)")
    out = output_file(a.out, "--out", (".html", *FORMATS), "surface.html")  # before any training
    for side in (out.with_suffix(".npz"), out.with_suffix(".json")) if out.suffix == ".html" else ():
        output_path(str(side), "--out (the arrays and metadata written beside it)")
    with working(a) as (store, device, progress):
        # resolving the stage checks the request against the runs (layers, epoch, kind) before anything trains
        stage = (LayerSliceStage if isinstance(spec, LayerSliceSpec) else SurfaceStage).of(data, model, train,
                                                                                          poisons, spec)
        estimate = _estimate(data, model, train, spec, 1 + len(poisons), device)
        if not a.json:  # a rerun is served from the store: no cost to announce
            print(f"surface: stored in {store.root}, nothing to compute" if stage.exists(store) else
                  f"surface cost: {estimate.describe()} (training runs not in the store come first)")
        if isinstance(spec, LayerSliceSpec):
            result = get_layer_slices(data, model, train, poisons, spec, store=store, device=device,
                                      progress=progress)
            title = f"layer slice of {', '.join(spec.layers)}: {data.name} / {model.name}"
        else:
            result = get_surface(data, model, train, poisons, spec, store=store, device=device,
                                 progress=progress)
            title = f"{spec.kind} loss surface: {data.name} / {model.name}"
    record = {"data": data.to_dict(), "model": model.to_dict(), "train": train.to_dict(),
              "poisons": [p.to_dict() for p in poisons], ("slice" if a.layer else "surface"): spec.to_dict()}
    written = write_outputs(result, out, record, f"{title} ({', '.join(result.info['labels'])})", log=a.log)

    summary = {**written, "surfaces": {}, "estimate": estimate.describe(), "device": str(device)}
    for label, s in result.surfaces.items():
        finite = s.loss[s.finite]
        summary["surfaces"][label] = {
            "grid": list(s.loss.shape), "center": s.center, "min_loss": float(finite.min()) if finite.size else None,
            "max_loss": float(finite.max()) if finite.size else None, "non_finite": int((~s.finite).sum()),
            "explained_variance": s.explained_variance.tolist(), "seconds": s.info.get("seconds"),
            "points_per_second": s.info.get("points_per_second"),
            **({"epoch": s.info["epoch"], "layers": s.info["layers"], "sal_ball": s.info["sal_ball"],
                "loss_at_model": s.value_at(0.0)} if s.kind == "layer" else {}),
        }
    if a.json:
        print_json(summary)
    else:
        for label, row in summary["surfaces"].items():
            ev = f", explained variance {', '.join(f'{v:.1%}' for v in row['explained_variance'])}" \
                if row["explained_variance"] else ""
            at = f" at epoch {row['epoch']}, SAL ball r = {row['sal_ball'][0]:.3g}" if "epoch" in row else ""
            print(f"{label}: {row['grid'][0]}x{row['grid'][1]} grid around {row['center']}{at}, loss "
                  f"{row['min_loss']:.4g}..{row['max_loss']:.4g}, {plural(row['non_finite'], 'non-finite point')}{ev}")
        print(f"wrote {', '.join(written['files'].values()) if 'files' in written else written['html']}")
    return 0


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return str(obj)


COMMANDS.register("surface")(Command("compute a loss surface (pca, random or interp) and write HTML + arrays",
                                     add_arguments, run))
