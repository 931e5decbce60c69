"""Model weights in and out: a user's trained weights read safely, ours written as safetensors.

In: a ``.safetensors`` file (read with `safetensors.torch.load_file`: tensors only, no code), or a PyTorch
``state_dict`` file (``torch.save(model.state_dict(), path)``, any other suffix) read with
``torch.load(weights_only=True)``, whose restricted unpickler builds tensors and plain containers only: a
checkpoint that would run code when unpickled (a pickled object with a ``__reduce__``, an arbitrary class) is
refused before anything in it runs; so is one whose pickle nests deeper than `landscape.pickles.MAX_DEPTH`
(unpickling it could crash the interpreter), checked from its opcodes first. A checkpoint that holds its
state dict under ``"state_dict"`` (PyTorch Lightning, many training scripts) is read from there. `load_into`
then loads it into the model strictly and says which names are missing, unexpected, of another shape or complex
for a real parameter (or real for a complex one), and refuses NaN or inf values (naming the tensors).

Out: `save_weights` writes a state dict as one safetensors file (atomically), with the spec that produced it
as JSON metadata, readable by any safetensors reader (``safetensors.torch.load_file``).
"""

from __future__ import annotations

import json
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from landscape.errors import DataError, ModelError
from landscape.files import atomic_write
from landscape.paths import user_path

SAFETENSORS = ".safetensors"
_HOW = "save them with safetensors.torch.save_file(model.state_dict(), path) or torch.save(model.state_dict(), path)"


def read_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict in `path` (CPU tensors), read without ever running code from the file."""
    path = user_path(path, "the weights file")
    if not path.is_file():
        raise DataError(f"weights file {path} does not exist; {_HOW}")
    if path.suffix == SAFETENSORS:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise DataError(f"{path} is not a readable safetensors file ({err}); {_HOW}") from None
    import pickle

    _check_nesting(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it reads anyway
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:Check the documentation|$)", str(err), re.S)
        what = (f"it names {found[1]}, which is not a tensor or plain container" if found
                else f"not plain data ({detail[1] if detail else 'the restricted unpickler stopped'})")
        raise DataError(f"{path} was refused by torch.load(weights_only=True): {what}; nothing in it was run. "
                        f"A checkpoint must hold a plain state dict; {_HOW}") from None
    except Exception as err:  # noqa: BLE001 - a damaged file can fail in many ways; say which
        raise DataError(f"{path} cannot be read as a PyTorch state dict ({type(err).__name__}: {err}); "
                        f"{_HOW}") from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise DataError(f"{path} holds a {type(obj).__name__}, not a state dict (names -> tensors); {_HOW}")
    bad = [k for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if bad:
        raise DataError(f"{path}: entry {bad[0]!r} is not a tensor named by a string; a state dict maps parameter "
                        f"and buffer names to tensors ({_HOW})")
    return dict(obj)


def _check_nesting(path: Path) -> None:
    """Refuse a state-dict file whose pickles nest too deeply to unpickle safely (`landscape.pickles`).

    The file is read as `torch.load` reads it: a zip archive (its first bytes a zip member's) holds its pickle as
    ``<folder>/data.pkl`` (every ``.pkl`` member is checked); the legacy format is five pickles in a row (magic
    number, protocol, system info, the state dict, its storage keys) before the tensors' bytes.
    """
    from landscape.pickles import check_nesting

    with path.open("rb") as fh:
        zipped = fh.read(4) == b"PK\x03\x04"
        if not zipped:
            fh.seek(0)
            for _ in range(5):
                check_nesting(fh, path)
            return
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".pkl"):
                    with archive.open(info) as member:
                        check_nesting(member, f"{path}:{info.filename}")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error):
        return  # damaged: torch.load refuses it


def _fits(given: torch.Tensor, expected: torch.Tensor) -> bool:
    """Same shape, or a one-element vector for a scalar (as `load_state_dict` accepts, e.g. num_batches_tracked)."""
    return given.shape == expected.shape or (expected.ndim == 0 and given.shape == (1,))


def load_into(model: nn.Module, state: Mapping[str, torch.Tensor], label: str) -> None:
    """Load `state` into `model` strictly; `ModelError` names missing, unexpected and mis-shaped entries."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} (model {tuple(v.shape)})" for k, v in expected.items()
              if k in state and not _fits(state[k], v)]
    kinds = [f"{k} {state[k].dtype} (model {v.dtype})" for k, v in expected.items()  # complex -> real drops a part
             if k in state and state[k].is_complex() != v.is_complex()]
    if missing or unexpected or shapes or kinds:
        hint = ""
        if unexpected and all(k.startswith("module.") for k in state):
            hint = "; every name starts with 'module.' (saved from DataParallel): save model.module.state_dict()"
        parts = [f"{name}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
                 for name, items in (("missing", missing), ("unexpected", unexpected), ("other shape", shapes),
                                     ("other dtype", kinds))
                 if items]
        raise ModelError(f"the weights {label} do not fit the model ({'; '.join(parts)}){hint}")
    check_finite(state, expected, label)
    floats = {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(floats, strict=True)


def _count_text(t: torch.Tensor) -> str:
    nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    found = ", ".join(f"{n} {what}" for n, what in ((nan, "NaN"), (inf, "inf")) if n)
    return f"{found} of {t.numel():,}"


def check_finite(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], label: str) -> None:
    """Refuse weights holding NaN or inf: the loss there is undefined, so SAL, curvature and surfaces would be NaN.

    An entry the model itself holds non-finite values in (a mask buffer of -inf, say) is by design and not checked.
    `DataError` names every offending tensor and how many values are NaN or inf.
    """
    bad = [f"{k} ({_count_text(v)})" for k, v in state.items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())
           and not (k in expected and expected[k].is_floating_point() and not bool(torch.isfinite(expected[k]).all()))]
    if bad:
        raise DataError(f"the weights {label} are not finite in {len(bad)} tensor(s): {', '.join(bad[:8])}"
                        f"{' ...' if len(bad) > 8 else ''}; the loss at them is undefined (NaN), so nothing is "
                        f"measured. A training run that diverged leaves such weights: export an epoch before it "
                        f"diverged")


def save_weights(state: Mapping[str, torch.Tensor], path: str | os.PathLike[str], *,
                 metadata: Mapping[str, Any] | None = None) -> Path:
    """Write `state` as a safetensors file (atomically); `metadata` is stored as JSON under "ue_landscape"."""
    from safetensors.torch import save

    path = user_path(path, "the weights file")
    if path.suffix != SAFETENSORS:
        raise DataError(f"weights are written as safetensors: the file name must end in {SAFETENSORS}, got {path}")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    meta = {"format": "pt", "ue_landscape": json.dumps(dict(metadata or {}), sort_keys=True, default=str)}
    return atomic_write(path, save(tensors, metadata=meta))


def weights_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata `save_weights` stored in a safetensors file ({} if none)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    return json.loads(meta["ue_landscape"]) if "ue_landscape" in meta else {}
