"""The store folders the stages write, each with its test for entries no stage reads any more.

`python -m landscape store` gives these to `landscape.store_report.gc`: a top-level folder of the store that no
stage writes is not this code's (listed, never read or removed), and an intact entry every stage of its folder
calls retired (`Stage.retired`: a layout no stage writes any more) is removed like one of an older schema.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import landscape.stages
from landscape.stages.base import Stage
from landscape.store_report import Retired


def stage_folders() -> dict[str, Retired]:
    """{store folder: its retired test} for every stage class (those of `landscape.stages` and any imported)."""
    for module in pkgutil.iter_modules(landscape.stages.__path__):
        importlib.import_module(f"landscape.stages.{module.name}")
    by_folder: dict[str, list[type[Stage[Any]]]] = {}
    todo: list[type[Stage[Any]]] = [Stage]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        folder = getattr(cls, "folder", None)
        if isinstance(folder, str) and cls not in by_folder.setdefault(folder, []):
            by_folder[folder].append(cls)
    return {folder: _retired_by_all(classes) for folder, classes in sorted(by_folder.items())}


def _retired_by_all(classes: list[type[Stage[Any]]]) -> Retired:
    """Retired only if every stage writing the folder says so (one that may read the entry keeps it)."""

    def retired(record: dict[str, Any]) -> str | None:
        reasons = [cls.retired(record) for cls in classes]
        return reasons[0] if all(reasons) else None

    return retired
