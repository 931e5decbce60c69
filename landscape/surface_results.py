"""The results of loss-surface computations: `Surface` (one 1D/2D slice), its `ProjectedPath`s, `SurfaceSet`.

Plain numpy data (no torch): what `landscape.surface` and `landscape.layer_slices` compute, what the store
keeps (`to_store` / `from_store`), what the figures draw and the exports write, and the tables the app shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from landscape.display import listed, span


@dataclass
class ProjectedPath:
    """A trajectory placed on a plane.

    Attributes:
        epochs: (T,) epoch of each checkpoint (0 = initialisation).
        alpha, beta: (T,) least-squares coordinates of each checkpoint on the plane (beta = 0 on a line).
        residual: (T,) off-plane distance ||theta_t - projection||.
        distance: (T,) distance to the plane's centre ||theta_t - center|| (residual / distance = relative).
        real_loss, real_acc: (T,) loss and accuracy of the checkpoint itself (all its weights and buffers).
        plane_loss, plane_acc: (T,) loss and accuracy at its projection on the plane (what the surface shows
            there), evaluated exactly, not interpolated.
    """

    epochs: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    residual: np.ndarray
    distance: np.ndarray
    real_loss: np.ndarray
    real_acc: np.ndarray
    plane_loss: np.ndarray
    plane_acc: np.ndarray

    FIELDS = ("epochs", "alpha", "beta", "residual", "distance", "real_loss", "real_acc", "plane_loss", "plane_acc")

    @property
    def relative_residual(self) -> np.ndarray:
        """Residual / distance (0 where the checkpoint is the centre)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.distance > 0, self.residual / self.distance, 0.0)


@dataclass(repr=False)
class Surface:
    """A 1D or 2D slice of the loss landscape; every array is numpy, every value raw.

    Attributes:
        alpha: (A,) coordinates along d1.
        beta: (B,) coordinates along d2 (a 1D slice has B = 1 and beta = [0]).
        loss: (A, B) mean loss, loss[i, j] at center + alpha[i] d1 + beta[j] d2; NaN/inf kept.
        acc: (A, B) accuracy.
        loss_se, acc_se: (A, B) standard errors (see `PointStats`).
        finite: (A, B) True where the loss is finite.
        batch_loss, batch_acc: (K, A, B) per evaluation batch; batch_sizes (K,).
        kind: "random", "pca", "interp" or "custom".
        ndim: 1 or 2.
        center: label of the model at the origin (e.g. "clean").
        explained_variance: (2,) PCA explained-variance ratio of d1, d2 (empty for other kinds).
        paths: projected trajectories by model label.
        anchors: (alpha, beta) of named models on the plane (e.g. {"clean": (0, 0), "em": (1, 0)}).
        info: direction metadata (policies, seed, cosine before orthogonalisation, norms), evaluation
            metadata (evaluator, chunk, seconds, points per second, images, split).
    """

    alpha: np.ndarray
    beta: np.ndarray
    loss: np.ndarray
    acc: np.ndarray
    loss_se: np.ndarray
    acc_se: np.ndarray
    finite: np.ndarray
    batch_loss: np.ndarray
    batch_acc: np.ndarray
    batch_sizes: np.ndarray
    kind: str = "custom"
    ndim: int = 2
    center: str = "center"
    explained_variance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    paths: dict[str, ProjectedPath] = field(default_factory=dict)
    anchors: dict[str, tuple[float, float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    ARRAYS = ("alpha", "beta", "loss", "acc", "loss_se", "acc_se", "finite", "batch_loss", "batch_acc",
              "batch_sizes", "explained_variance")

    def brief(self) -> str:
        """The surface in a few words: kind, grid, centre, loss range, paths."""
        grid = f"{len(self.alpha)} x {len(self.beta)}" if self.ndim == 2 else f"{len(self.alpha)} points"
        paths = f", paths {listed(list(self.paths))}" if self.paths else ""
        return f"{self.kind} {self.ndim}D {grid} around {self.center}, loss {span(self.loss)}{paths}"

    def __repr__(self) -> str:
        return f"Surface({self.brief()})"

    def value_at(self, a: float, b: float = 0.0) -> float:
        """Loss at the grid point nearest to (a, b)."""
        i, j = int(np.abs(self.alpha - a).argmin()), int(np.abs(self.beta - b).argmin())
        return float(self.loss[i, j])

    def to_store(self, prefix: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(metadata, arrays) for `Store.save`; `from_store` inverts it."""
        arrays = {f"{prefix}{k}": np.asarray(getattr(self, k)) for k in self.ARRAYS}
        arrays[f"{prefix}finite"] = self.finite.astype(np.uint8)
        for name, path in self.paths.items():
            for k in ProjectedPath.FIELDS:
                arrays[f"{prefix}path/{name}/{k}"] = np.asarray(getattr(path, k))
        meta = {"kind": self.kind, "ndim": self.ndim, "center": self.center, "paths": list(self.paths),
                "anchors": {k: list(v) for k, v in self.anchors.items()}, "info": self.info}
        return meta, arrays

    @classmethod
    def from_store(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray], prefix: str = "") -> Surface:
        values = {k: arrays[f"{prefix}{k}"] for k in cls.ARRAYS}
        values["finite"] = values["finite"].astype(bool)
        paths = {name: ProjectedPath(**{k: arrays[f"{prefix}path/{name}/{k}"] for k in ProjectedPath.FIELDS})
                 for name in meta["paths"]}
        anchors = {k: (float(v[0]), float(v[1])) for k, v in meta["anchors"].items()}
        return cls(**values, kind=meta["kind"], ndim=int(meta["ndim"]), center=meta["center"], paths=paths,
                   anchors=anchors, info=dict(meta["info"]))


@dataclass(repr=False)
class SurfaceSet:
    """The surfaces of one `SurfaceSpec` request, by label (e.g. {"shared": ...} or {"clean": ..., "em": ...})."""

    surfaces: dict[str, Surface]
    info: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, label: str) -> Surface:
        return self.surfaces[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self.surfaces)

    def __len__(self) -> int:
        return len(self.surfaces)

    def __repr__(self) -> str:
        shown = "; ".join(f"{label}: {s.brief()}" for label, s in list(self.surfaces.items())[:2])
        rest = list(self.surfaces)[2:]
        return f"SurfaceSet({shown or 'empty'}" + (f"; and {listed(rest)})" if rest else ")")

    def to_store(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = {"labels": list(self.surfaces), "info": self.info, "surfaces": {}}
        arrays: dict[str, np.ndarray] = {}
        for label, s in self.surfaces.items():
            m, a = s.to_store(prefix=f"{label}/")
            meta["surfaces"][label] = m
            arrays.update(a)
        return meta, arrays

    def grid_table(self) -> list[dict[str, Any]]:
        """Rows of every grid point of every surface: label, kind, alpha, beta, loss, accuracy, standard errors."""
        rows = []
        for label, s in self.surfaces.items():
            aa, bb = np.meshgrid(s.alpha, s.beta, indexing="ij")
            columns = {"alpha": aa, "beta": bb, "loss": s.loss, "loss_se": s.loss_se, "acc": s.acc, "acc_se": s.acc_se}
            flat = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in columns.items()}
            rows += [{"surface": label, "kind": s.kind, **{k: float(v[i]) for k, v in flat.items()}}
                     for i in range(aa.size)]
        return rows

    def paths_table(self) -> list[dict[str, Any]]:
        """Rows of every projected checkpoint: coordinates, off-plane residual, real vs on-plane loss and accuracy."""
        fields = ("alpha", "beta", "residual", "relative_residual", "real_loss", "plane_loss", "real_acc", "plane_acc")
        return [{"surface": label, "run": name, "epoch": int(p.epochs[i]),
                 **{f: float(getattr(p, f)[i]) for f in fields}}
                for label, s in self.surfaces.items() for name, p in s.paths.items() for i in range(len(p.epochs))]

    @classmethod
    def from_store(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> SurfaceSet:
        surfaces = {label: Surface.from_store(meta["surfaces"][label], arrays, prefix=f"{label}/")
                    for label in meta["labels"]}
        return cls(surfaces, dict(meta["info"]))
