"""UD, Unlearnable Distance (Ye, Su, Qian, ICLR 2025, Definitions 2-3), from per-layer, per-epoch SAL.

    beta  = mean over clean epochs t of midpoint(KMeans(k=2) centres of {SAL_l^clean(t)}_l)
    #LP   = mean over a model's epochs t of |{ l : SAL_l(t) > beta }|
    UD    = #LP(poisoned) / #LP(clean)        (clean scores 1; lower = more unlearnable; > 1 for TAP)

As in the authors' code (`get_ud.py`): scikit-learn `KMeans(n_clusters=2, random_state=0, n_init="auto")`
is fitted separately at each clean epoch on that epoch's per-layer SAL values (not pooled over epochs), the
per-epoch midpoints are averaged, and layers are counted (no weighting by parameter count).

Degenerate cases have a defined outcome and a note in `UDReport.notes` (never a crash or a silent 0):

- an epoch whose layers all have the same SAL (or a model with one layer): KMeans cannot find two
  clusters; both centres are that common value, so the epoch's midpoint is that value (none of its layers
  is strictly above it).
- an epoch with a NaN/inf SAL: the epoch is left out of beta and of the counts (its flags are False and
  its count NaN).
- no learnable layer in the clean run at any epoch (#LP_clean = 0): UD = #LP_p / 0 is undefined and is
  reported as NaN with `ud_defined = False` and a message; the continuous measures below still apply.

Beside the paper's count ratio, `UDReport` holds continuous, threshold-free views of the same SAL data
(ours, not the paper's): per layer and overall, the Wasserstein-1 distance between the clean and the
poisoned SAL distributions (over epochs) and the ratio of mean SAL (poisoned / clean). With few layers the
count ratio moves in steps of 1/L per epoch; these measures show how far apart the SAL values really are.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from landscape.display import clip, number
from landscape.errors import ShapeError
from landscape.spec import plural

KMEANS_SEED = 0  # the authors' random_state
DEPENDENCIES = ("scipy.stats", "sklearn.cluster")  # what UD computes with, imported on first use


def _as_matrix(sal: Any, name: str) -> tuple[np.ndarray, tuple[str, ...] | None, np.ndarray | None]:
    """(T, L) float array, layer names and epochs from a `SALTrace` or an array."""
    layers = getattr(sal, "layers", None)
    epochs = getattr(sal, "epochs", None)
    values = np.asarray(getattr(sal, "sal", sal), dtype=np.float64)
    if values.ndim != 2:
        raise ShapeError(f"{name} SAL must be a (epochs, layers) matrix, got shape {values.shape}")
    return values, (tuple(layers) if layers is not None else None), (np.asarray(epochs) if epochs is not None
                                                                       else None)


def import_dependencies() -> None:
    """Import what UD computes with (scikit-learn's KMeans, SciPy's W1 distance): ~1.5 s in a fresh process.

    Done on first use otherwise; `run_experiment` calls it while its worker processes compute the runs.
    """
    for name in DEPENDENCIES:
        importlib.import_module(name)


def epoch_midpoint(values: np.ndarray, *, random_state: int = KMEANS_SEED) -> tuple[float, str | None]:
    """Midpoint of the two KMeans(k=2) centres of one epoch's per-layer SAL values, and a note if degenerate.

    All values equal (or a single layer): both centres are that value, so the midpoint is that value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ShapeError("an epoch with no layers has no SAL threshold")
    if v.size < 2 or np.all(v == v[0]):
        why = "one layer" if v.size < 2 else f"all {v.size} layers have the same SAL"
        return float(v[0]), f"{why}; KMeans(k=2) has a single centre, midpoint = that value ({v[0]:.6g})"
    from sklearn.cluster import KMeans

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning when fewer distinct values than expected
        km = KMeans(n_clusters=2, random_state=random_state, n_init="auto").fit(v.reshape(-1, 1))
    return float(km.cluster_centers_.mean()), None


@dataclass(repr=False)
class UDReport:
    """β, learnable-layer counts and UD of a poisoned run against a clean run (numpy arrays).

    Attributes:
        beta: the learnable threshold (mean of the per-epoch midpoints); NaN if no clean epoch is usable.
        betas: per clean epoch midpoint, (T_c,) (NaN for left-out epochs).
        flags_clean, flags_poisoned: learnable (SAL > beta) per epoch and layer, (T_c, L) and (T_p, L).
        counts_clean, counts_poisoned: learnable-layer count per epoch, (T_c,) and (T_p,) (NaN if left out).
        lp_clean, lp_poisoned: #LP, the mean counts over the usable epochs.
        ud: #LP_poisoned / #LP_clean; NaN when undefined (see `ud_defined`, `message`).
        ud_defined: False when UD could not be computed.
        message: why UD is undefined (None when it is defined).
        notes: every degenerate case met (epochs with equal SAL, left-out epochs, ...).
        layers: layer names (L,) if known; epochs_clean, epochs_poisoned: epoch numbers (1-based).
        w1_layers: (ours) Wasserstein-1 distance between clean and poisoned SAL over epochs, per layer (L,).
        w1_overall: (ours) the same over all layers and epochs pooled.
        mean_ratio_layers: (ours) mean poisoned SAL / mean clean SAL per layer (L,) (NaN if the clean mean is 0).
        mean_ratio_overall: (ours) the same pooled over layers and epochs.
    """

    beta: float
    betas: np.ndarray
    flags_clean: np.ndarray
    flags_poisoned: np.ndarray
    counts_clean: np.ndarray
    counts_poisoned: np.ndarray
    lp_clean: float
    lp_poisoned: float
    ud: float
    ud_defined: bool
    message: str | None
    notes: list[str] = field(default_factory=list)
    layers: tuple[str, ...] | None = None
    epochs_clean: np.ndarray | None = None
    epochs_poisoned: np.ndarray | None = None
    w1_layers: np.ndarray | None = None
    w1_overall: float = float("nan")
    mean_ratio_layers: np.ndarray | None = None
    mean_ratio_overall: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `from_dict` inverts it."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, np.ndarray):
                out[key] = value.tolist()
            elif isinstance(value, tuple):
                out[key] = list(value)
            else:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UDReport:
        d = dict(data)
        for key in ("betas", "counts_clean", "counts_poisoned", "w1_layers", "mean_ratio_layers"):
            if d.get(key) is not None:
                d[key] = np.asarray(d[key], dtype=np.float64)
        n_layers = len(d["w1_layers"]) if d.get("w1_layers") is not None else 0
        for key in ("flags_clean", "flags_poisoned"):
            d[key] = np.asarray(d[key], dtype=bool).reshape(len(d[key]), n_layers)
        for key in ("epochs_clean", "epochs_poisoned"):
            if d.get(key) is not None:
                d[key] = np.asarray(d[key], dtype=np.int64)
        if d.get("layers") is not None:
            d["layers"] = tuple(d["layers"])
        # JSON turns NaN into NaN (Python's json allows it), keep floats as floats
        for key in ("beta", "lp_clean", "lp_poisoned", "ud", "w1_overall", "mean_ratio_overall"):
            d[key] = float(d[key]) if d.get(key) is not None else float("nan")
        return cls(**d)

    def summary(self) -> dict[str, Any]:
        """The headline numbers (for tables, CLI and JSON)."""
        return {"beta": self.beta, "lp_clean": self.lp_clean, "lp_poisoned": self.lp_poisoned, "ud": self.ud,
                "ud_defined": self.ud_defined, "message": self.message, "w1_overall": self.w1_overall,
                "mean_ratio_overall": self.mean_ratio_overall}

    def __repr__(self) -> str:
        why = "" if self.message is None else f" ({clip(self.message)})"
        return (f"UDReport(UD {number(self.ud, '.3f')}{why}, β {number(self.beta)}, #LP {number(self.lp_clean)} clean "
                f"vs {number(self.lp_poisoned)} poisoned, {self.flags_clean.shape[1]} layers x {len(self.counts_clean)}"
                f" epochs, W1 {number(self.w1_overall)}, mean SAL ratio {number(self.mean_ratio_overall)}"
                + (f", {plural(len(self.notes), 'note')})" if self.notes else ")"))

    def counts_table(self, method: str) -> list[dict[str, Any]]:
        """Rows run x epoch of the learnable-layer count (the clean run, then the run on `method`)."""
        runs = (("clean", self.epochs_clean, self.counts_clean), (method, self.epochs_poisoned, self.counts_poisoned))
        return [{"run": run, "epoch": int(e), "learnable_layers": float(c)}
                for run, epochs, counts in runs for e, c in zip(_epochs(epochs, counts), counts, strict=True)]

    def layer_table(self, layers: Sequence[str]) -> list[dict[str, Any]]:
        """Rows per layer: epochs it is learnable in each run, and our threshold-free distances (NaN if absent)."""
        names = list(self.layers or layers)
        nan = np.full(len(names), np.nan)
        w1 = nan if self.w1_layers is None else self.w1_layers
        ratio = nan if self.mean_ratio_layers is None else self.mean_ratio_layers
        return [{"layer": name, "learnable_epochs_clean": int(self.flags_clean[:, j].sum()),
                 "learnable_epochs_poisoned": int(self.flags_poisoned[:, j].sum()),
                 "w1_distance (ours)": float(w1[j]), "mean_sal_ratio (ours)": float(ratio[j])}
                for j, name in enumerate(names)]


def _epochs(epochs: np.ndarray | None, counts: np.ndarray) -> np.ndarray:
    """The epoch numbers of per-epoch counts (1-based positions when the report has none)."""
    return np.arange(1, len(counts) + 1) if epochs is None else epochs


def _counts(values: np.ndarray, beta: float, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flags = np.zeros(values.shape, dtype=bool)
    counts = np.full(len(values), np.nan)
    if np.isfinite(beta):
        flags[valid] = values[valid] > beta
        counts[valid] = flags[valid].sum(1)
    return flags, counts


def _continuous(clean: np.ndarray, poisoned: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, float]:
    """(ours) W1 distance and mean-SAL ratio per layer and pooled, over the finite values."""
    from scipy.stats import wasserstein_distance  # imported on first use: ~0.6 s (see `import_dependencies`)

    n_layers = clean.shape[1]
    w1 = np.full(n_layers, np.nan)
    ratio = np.full(n_layers, np.nan)
    for j in range(n_layers):
        c, p = clean[:, j][np.isfinite(clean[:, j])], poisoned[:, j][np.isfinite(poisoned[:, j])]
        if len(c) and len(p):
            w1[j] = wasserstein_distance(c, p)
            ratio[j] = p.mean() / c.mean() if c.mean() != 0 else np.nan
    c_all, p_all = clean[np.isfinite(clean)], poisoned[np.isfinite(poisoned)]
    w1_all = float(wasserstein_distance(c_all, p_all)) if len(c_all) and len(p_all) else float("nan")
    ratio_all = float(p_all.mean() / c_all.mean()) if len(c_all) and len(p_all) and c_all.mean() != 0 else float("nan")
    return w1, w1_all, ratio, ratio_all


def unlearnable_distance(clean: Any, poisoned: Any, *, random_state: int = KMEANS_SEED) -> UDReport:
    """UD of `poisoned` against `clean`, each a `SALTrace` or a (epochs, layers) SAL matrix.

    Args:
        clean: SAL of the clean model (β comes from it alone).
        poisoned: SAL of the poisoned model; same layers as `clean` (epoch counts may differ).
        random_state: KMeans seed (the authors use 0).

    Returns:
        The `UDReport`; passing the same SAL twice gives UD = 1 whenever the clean run has a learnable layer.
    """
    c, layers_c, epochs_c = _as_matrix(clean, "clean")
    p, layers_p, epochs_p = _as_matrix(poisoned, "poisoned")
    if c.shape[1] != p.shape[1] or (layers_c is not None and layers_p is not None and layers_c != layers_p):
        raise ShapeError(f"clean and poisoned SAL must cover the same layers; got {c.shape[1]} and {p.shape[1]} "
                         f"layers ({layers_c} vs {layers_p})")
    notes: list[str] = []
    valid_c = np.isfinite(c).all(1) if c.size else np.zeros(len(c), dtype=bool)
    valid_p = np.isfinite(p).all(1) if p.size else np.zeros(len(p), dtype=bool)
    epoch_c = epochs_c if epochs_c is not None else np.arange(1, len(c) + 1)
    epoch_p = epochs_p if epochs_p is not None else np.arange(1, len(p) + 1)
    for name, valid, ep in (("clean", valid_c, epoch_c), ("poisoned", valid_p, epoch_p)):
        if (~valid).any():
            notes.append(f"{name} epoch(s) {[int(e) for e in ep[~valid]]} have NaN/inf SAL and are left out")
    betas = np.full(len(c), np.nan)
    for t in np.flatnonzero(valid_c):
        betas[t], note = epoch_midpoint(c[t], random_state=random_state)
        if note:
            notes.append(f"clean epoch {int(epoch_c[t])}: {note}")
    beta = float(betas[valid_c].mean()) if valid_c.any() else float("nan")
    flags_c, counts_c = _counts(c, beta, valid_c)
    flags_p, counts_p = _counts(p, beta, valid_p)
    lp_c = float(counts_c[valid_c].mean()) if valid_c.any() else float("nan")
    lp_p = float(counts_p[valid_p].mean()) if valid_p.any() and np.isfinite(beta) else float("nan")
    message = None
    if not valid_c.any():
        message = "UD is undefined: the clean run has no epoch with finite SAL, so there is no threshold β"
    elif not valid_p.any():
        message = "UD is undefined: the poisoned run has no epoch with finite SAL"
    elif lp_c == 0:
        message = (f"UD is undefined: the clean run has no learnable layer at any epoch (#LP_clean = 0 with "
                   f"β = {beta:.6g}), so #LP_poisoned / #LP_clean divides by zero; compare the continuous "
                   f"measures (W1 distance, mean-SAL ratio) instead")
    ud = lp_p / lp_c if message is None else float("nan")
    w1, w1_all, ratio, ratio_all = _continuous(c, p)
    return UDReport(beta=beta, betas=betas, flags_clean=flags_c, flags_poisoned=flags_p, counts_clean=counts_c,
                    counts_poisoned=counts_p, lp_clean=lp_c, lp_poisoned=lp_p, ud=float(ud),
                    ud_defined=message is None, message=message, notes=notes, layers=layers_c or layers_p,
                    epochs_clean=np.asarray(epoch_c, dtype=np.int64),
                    epochs_poisoned=np.asarray(epoch_p, dtype=np.int64),
                    w1_layers=w1, w1_overall=w1_all, mean_ratio_layers=ratio, mean_ratio_overall=ratio_all)


__all__ = ["KMEANS_SEED", "UDReport", "epoch_midpoint", "unlearnable_distance"]
