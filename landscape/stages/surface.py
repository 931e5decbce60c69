"""The surface stage: loss/accuracy slices around the clean and poisoned runs (`landscape.surface`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from landscape.config import DataSpec, ModelSpec, PoisonSpec, Spec, SurfaceSpec, TrainSpec
from landscape.device import resolve_device
from landscape.models import build_model
from landscape.stages.base import Computed, Context, Stage, get_splits, resolve_data, resolve_model, resolve_poison
from landscape.stages.train import TrainStage
from landscape.store import Entry
from landscape.surface import SurfaceSet, compute_surfaces, run_labels


@dataclass(frozen=True)
class SurfaceStage(Stage[SurfaceSet]):
    """Surfaces of the clean run and the poisoned run(s) of one training recipe, by `surface.kind`.

    See `landscape.surface.compute_surfaces` for what each kind and plane mode gives: "pca" with
    `plane="shared"` gives one surface {"shared"} with every optimisation path on it; "pca" with `plane="own"`
    and "random" give one surface per run, labelled "clean" and by poison method; "interp" gives {"interp"}.
    """

    folder = "surface"
    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    surface: SurfaceSpec
    poisons: tuple[PoisonSpec, ...] = ()

    @classmethod
    def of(cls, data: DataSpec, model: ModelSpec, train: TrainSpec, poisons: PoisonSpec | Sequence[PoisonSpec] | None,
           surface: SurfaceSpec) -> SurfaceStage:
        data = resolve_data(data)
        given = [poisons] if isinstance(poisons, PoisonSpec) else list(poisons or [])
        resolved = tuple(resolve_poison(p, data) for p in given if not p.is_clean)
        return cls(data, resolve_model(model, data), train, surface, resolved)

    def parts(self) -> tuple[Spec, ...]:
        return (self.data, self.model, self.train, self.surface, *self.poisons)

    def record(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "poisons": [p.to_dict() for p in self.poisons], "surface": self.surface.to_dict()}

    def runs(self) -> dict[str, TrainStage]:
        """The training runs the surfaces are sliced around, by label ("clean" first)."""
        labels = run_labels(self.poisons)
        return {label: TrainStage.of(self.data, self.model, self.train, poison)
                for label, poison in zip(labels, (PoisonSpec(), *self.poisons), strict=True)}

    def compute(self, ctx: Context) -> Computed:
        runs = {label: stage.get(ctx) for label, stage in self.runs().items()}
        splits = get_splits(self.data)
        net = build_model(self.model.name, splits.image_shape, splits.num_classes, width=self.model.width,
                          seed=self.train.seed)
        result = compute_surfaces(net, runs, splits, self.surface, device=resolve_device(str(ctx.device)),
                                  progress=lambda done, total: ctx.progress("surface", done, total))
        return result.to_store()

    def decode(self, entry: Entry) -> SurfaceSet:
        return SurfaceSet.from_store(entry.meta, entry.arrays)
