"""The surface stages: loss/accuracy slices around the clean and poisoned runs, whole-model and layer by layer.

`SurfaceStage` slices every parameter (`landscape.surface`); `LayerSliceStage` one layer's tensors
(`landscape.layer_slices`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from landscape.config import DataSpec, DefenseSpec, LayerSliceSpec, ModelSpec, PoisonSpec, Spec, SurfaceSpec, TrainSpec
from landscape.layer_slices import layer_slices
from landscape.run_surfaces import check_runs, compute_surfaces, run_labels
from landscape.stages.base import (
    Computed,
    Context,
    Stage,
    Version,
    build_net,
    check_layers,
    get_splits,
    resolve_data,
    resolve_defense,
    resolve_model,
    resolve_poisons,
)
from landscape.stages.train import TrainStage, training_set
from landscape.store import Entry
from landscape.surface_results import SurfaceSet


def labelled_runs(data: DataSpec, model: ModelSpec, train: TrainSpec, poisons: Sequence[PoisonSpec],
                  defense: DefenseSpec | None = None) -> dict[str, TrainStage]:
    """The clean run and one run per poison, by label ("clean" first, then `run_labels`)."""
    return {label: TrainStage.of(data, model, train, poison, defense=defense)
            for label, poison in zip(run_labels(poisons), (PoisonSpec(), *poisons), strict=True)}


class OnRuns(Stage[SurfaceSet]):
    """A stage of surfaces sliced around an experiment's runs: the clean run and one per poison (`labelled_runs`)."""

    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    poisons: tuple[PoisonSpec, ...]
    defense: DefenseSpec | None

    def runs_record(self) -> dict[str, Any]:
        """The spec record of the runs (the stage adds its own spec)."""
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "poisons": [p.to_dict() for p in self.poisons],
                **({"defense": self.defense.to_dict()} if self.defense is not None else {})}

    def runs(self) -> dict[str, TrainStage]:
        """The training runs the surfaces are sliced around, by label ("clean" first)."""
        return labelled_runs(self.data, self.model, self.train, self.poisons, self.defense)

    def decode(self, entry: Entry) -> SurfaceSet:
        return SurfaceSet.from_store(entry.meta, entry.arrays)

    def inputs(self) -> tuple[Stage[Any], ...]:
        return tuple(self.runs().values())


@dataclass(frozen=True)
class SurfaceStage(OnRuns):
    """Surfaces of the clean run and the poisoned run(s) of one training recipe, by `surface.kind`.

    See `landscape.run_surfaces.compute_surfaces` for what each kind and plane mode gives: "pca" with
    `plane="shared"` gives one surface {"shared"} with every optimisation path on it; "pca" with `plane="own"`
    and "random" give one surface per run, labelled "clean" and by poison method; "interp" gives {"interp"}.
    """

    folder = "surface"
    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    surface: SurfaceSpec
    poisons: tuple[PoisonSpec, ...] = ()
    defense: ClassVar[None] = None  # whole-model surfaces are of undefended runs

    @classmethod
    def of(cls, data: DataSpec, model: ModelSpec, train: TrainSpec, poisons: PoisonSpec | Sequence[PoisonSpec] | None,
           surface: SurfaceSpec) -> SurfaceStage:
        data = resolve_data(data)
        resolved = resolve_poisons(poisons, data)
        check_runs(surface, len(resolved), len(train.kept_epochs))  # before any run trains
        return cls(data, resolve_model(model, data), train, surface, resolved)

    def parts(self) -> tuple[Spec, ...]:
        return (self.data, self.model, self.train, self.surface, *self.poisons)

    def record(self) -> dict[str, Any]:
        return {**self.runs_record(), "surface": self.surface.to_dict()}

    def compute(self, ctx: Context) -> Computed:
        runs = {label: stage.get(ctx) for label, stage in self.runs().items()}
        splits = get_splits(self.data)
        result = compute_surfaces(build_net(self.model, self.data, self.train.seed), runs, splits, self.surface,
                                  device=ctx.torch_device(), progress=ctx.reporter("surface"))
        return result.to_store()


LAYER_SLICE_VERSION = "layer-slice-1"  # bump when the layer-slice computation changes


@dataclass(frozen=True)
class LayerSliceStage(OnRuns):
    """Layer slices of the clean run and the poisoned run(s) at one stored epoch, one surface per run.

    The runs are those of an experiment (the same training recipe and defense); see
    `landscape.layer_slices.layer_slices`. The "train" split is each run's own training set (the poisoned
    images for a poisoned run, after the defense's preprocessing), as SAL and curvature take it.
    """

    folder = "layer-slice"
    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    slice: LayerSliceSpec
    poisons: tuple[PoisonSpec, ...] = ()
    defense: DefenseSpec | None = None

    @classmethod
    def of(cls, data: DataSpec, model: ModelSpec, train: TrainSpec, poisons: PoisonSpec | Sequence[PoisonSpec] | None,
           slice: LayerSliceSpec, *, defense: DefenseSpec | None = None) -> LayerSliceStage:
        data = resolve_data(data)
        model = resolve_model(model, data)
        check_layers(slice.layers, model, data)  # both before any run trains
        if slice.epoch is not None:
            train.check_kept(slice.epoch, "LayerSliceSpec.epoch")
        return cls(data, model, train, slice, resolve_poisons(poisons, data), resolve_defense(defense))

    def parts(self) -> tuple[Spec | None, ...]:
        return (self.data, self.model, self.train, self.slice, self.defense, Version(LAYER_SLICE_VERSION),
                *self.poisons)

    def record(self) -> dict[str, Any]:
        return {**self.runs_record(), "slice": self.slice.to_dict()}

    def compute(self, ctx: Context) -> Computed:
        stages = self.runs()
        runs = {label: stage.get(ctx) for label, stage in stages.items()}
        splits = get_splits(self.data)
        images = {label: (training_set(self.data, stage.poison, self.defense, ctx)[0] if self.slice.split == "train"
                          else splits.test) for label, stage in stages.items()}
        result = layer_slices(build_net(self.model, self.data, self.train.seed), runs, images, self.slice,
                              device=ctx.torch_device(), progress=ctx.reporter("layer-slice"))
        return result.to_store()
