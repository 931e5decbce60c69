"""The poison stage: a crafted unlearnable-example perturbation of the training split (`landscape.poisons`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from landscape.config import DataSpec, PoisonSpec, Spec
from landscape.data import ImageSet
from landscape.poisons import Crafted, craft, provided
from landscape.stages.base import Computed, Context, Stage, get_splits, resolve_data, resolve_poison
from landscape.store import Entry


@dataclass(frozen=True)
class PoisonStage(Stage[Crafted]):
    """The poison of `poison` crafted on the training split of `data` (delta and mask, `Crafted`)."""

    folder = "poison"
    data: DataSpec
    poison: PoisonSpec

    @classmethod
    def of(cls, data: DataSpec, poison: PoisonSpec) -> PoisonStage:
        data = resolve_data(data)
        return cls(data, resolve_poison(poison, data))

    def parts(self) -> tuple[Spec, ...]:
        return (self.data, self.poison)

    def record(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "poison": self.poison.to_dict()}

    def compute(self, ctx: Context) -> Computed:
        if self.poison.method == provided.PROVIDED:
            return provided.crafted(get_splits(self.data).train, self.poison, self.data.name).to_store()
        crafted = craft(get_splits(self.data).train, self.poison, dataset=self.data,
                        device=ctx.torch_device(), progress=ctx.reporter("craft"))
        return crafted.to_store()

    def decode(self, entry: Entry) -> Crafted:
        return Crafted.from_store(entry.meta, entry.arrays)

    def inputs(self) -> tuple[Stage[Any], ...]:
        return ()


def poison_stages(data: DataSpec, poison: PoisonSpec | None) -> tuple[PoisonStage, ...]:
    """The poison stage `poisoned_train` reads: none for no poison / "clean"."""
    return () if poison is None or poison.is_clean else (PoisonStage.of(data, poison),)


def poisoned_train(data: DataSpec, poison: PoisonSpec | None, ctx: Context) -> ImageSet:
    """The training split of `data` with the poison applied (the clean split for no poison / "clean")."""
    train = get_splits(data).train
    for stage in poison_stages(data, poison):
        train = stage.get(ctx).apply(train)
    return train
