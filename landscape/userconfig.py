"""The user's own models and data sets that the app offers beside the registered ones, and uploaded data sets.

Configured in the environment or in a small JSON file (both are read; the environment's entries come first):

- ``UE_LANDSCAPE_MODELS``: comma-separated user models ``package.module:factory`` (`landscape.models.user`:
  imported from the Python environment the app runs in, never from an uploaded file);
- ``UE_LANDSCAPE_DATA``: comma-separated data sets: ``npz:PATH``, ``folder:PATH`` or ``folder:PATH?size=N``
  (`landscape.data.npz`, `landscape.data.folder`), or a bare path: a ``.npz`` file or a folder of class folders;
- ``UE_LANDSCAPE_CONFIG``: a JSON file (default ``~/.config/ue-landscape/config.json``) with the same entries,
  relative paths taken from the file's folder, e.g.::

      {"models": ["mylab.nets:small_resnet"], "data": ["npz:~/data/patches.npz", "folder:photos?size=32"]}

Entries are checked for form here: a bad one is left out and reported in `UserConfig.problems` (naming its
source and the accepted forms), the good ones are kept; whether a model imports or a file reads is checked when
it is used, by the same code as on the command line.

An uploaded ``.npz`` (`keep_upload`) is refused above `MAX_UPLOAD_BYTES`, when its arrays would take more than
`MAX_UPLOAD_DECODED_BYTES` once decompressed (read from their headers, before any is), or when it does not load
as a data set (`np.load(allow_pickle=False)`: an object array is refused, nothing in it runs), and is then kept
in the store's ``inputs`` folder under the hash of its bytes, so its content is in every key and one upload is
one file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from landscape.config import DataSpec
from landscape.data import npz
from landscape.errors import DataError, LandscapeError, ModelError, SpecError
from landscape.models.user import split_name
from landscape.paths import user_path
from landscape.store import Store
from landscape.store_names import INPUTS, refuse_a_non_store

MODELS_VAR = "UE_LANDSCAPE_MODELS"
DATA_VAR = "UE_LANDSCAPE_DATA"
CONFIG_VAR = "UE_LANDSCAPE_CONFIG"
DEFAULT_CONFIG = Path("~/.config/ue-landscape/config.json")
MAX_UPLOAD_BYTES = 64 << 20  # 64 MiB: a CPU machine trains on far less; larger sets belong in UE_LANDSCAPE_DATA
MAX_UPLOAD_DECODED_BYTES = 1 << 30  # 1 GiB of arrays once read (`npz.array_bytes`): 256 MiB of uint8 pixels
USER_DATA = ("npz", "folder")
T = TypeVar("T")


@dataclass(frozen=True)
class UserConfig:
    """The configured user models (names) and data sets (specs), in the order given, without repeats.

    `problems` says, one message each, which entries (or which config file) were left out and why.
    """

    models: tuple[str, ...] = ()
    data: tuple[DataSpec, ...] = ()
    problems: tuple[str, ...] = ()


def _model(entry: str, source: str) -> str:
    try:
        split_name(entry)
    except ModelError as exc:
        raise SpecError(f"{source}: {exc}") from None
    return entry


def _data(entry: str, source: str, base: Path | None) -> DataSpec:
    name, sep, _ = entry.partition(":")
    if sep and name in USER_DATA:
        try:
            spec = DataSpec.parse(entry)
        except SpecError as exc:
            raise SpecError(f"{source}: {exc}") from None
    elif not sep or len(name) == 1:  # a bare path (or a Windows drive letter)
        spec = DataSpec(name="npz" if entry.lower().endswith(".npz") else "folder", root=entry)
    else:
        raise SpecError(f"{source}: data set {entry!r} must be npz:PATH, folder:PATH, folder:PATH?size=N or a "
                        f"path (a .npz file or a folder of class folders)")
    root = user_path(spec.root or "", f"{source}: data set {entry!r}")
    if base is not None and not root.is_absolute():
        root = base / root
    return spec.replace(root=str(root))


def _entries(value: object, source: str) -> list[str]:
    if isinstance(value, str):
        return [e.strip() for e in value.split(",") if e.strip()]
    if isinstance(value, list) and all(isinstance(e, str) for e in value):
        return [e.strip() for e in value if e.strip()]
    raise SpecError(f"{source} must be a list of strings; got {value!r}")


def _read_file(path: Path) -> dict[str, object]:
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # (nested 10^5 deep)
        raise SpecError(f"the config file {path} cannot be read as JSON: {exc}") from None
    if not isinstance(table, dict):
        raise SpecError(f"the config file {path} must hold a JSON object with models and data lists")
    unknown = sorted(set(table) - {"models", "data"})
    if unknown:
        raise SpecError(f"the config file {path} has key(s) {', '.join(unknown)}; accepted: models, data")
    return table


def _kept(entries: Callable[[], list[str]], parse: Callable[[str], T], problems: list[str]) -> list[T]:
    """The parsed entries that parse; each refusal (the list's own, or an entry's) is added to `problems`."""
    try:
        listed = entries()
    except LandscapeError as exc:
        problems.append(str(exc))
        return []
    kept = []
    for entry in listed:
        try:
            kept.append(parse(entry))
        except LandscapeError as exc:
            problems.append(str(exc))
    return kept


def user_config(environ: Mapping[str, str] | None = None) -> UserConfig:
    """The user models and data sets configured in `environ` (default `os.environ`) and the config file.

    A bad entry, or an unreadable config file, leaves out only itself and is reported in `UserConfig.problems`.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    models = _kept(lambda: _entries(env.get(MODELS_VAR, ""), MODELS_VAR), lambda e: _model(e, MODELS_VAR), problems)
    data = _kept(lambda: _entries(env.get(DATA_VAR, ""), DATA_VAR), lambda e: _data(e, DATA_VAR, None), problems)
    try:
        path = user_path(env[CONFIG_VAR], CONFIG_VAR) if env.get(CONFIG_VAR) else DEFAULT_CONFIG.expanduser()
        if env.get(CONFIG_VAR) and not path.is_file():
            raise SpecError(f"{CONFIG_VAR} = {env[CONFIG_VAR]!r} is not a file")
        table = _read_file(path) if path.is_file() else {}
    except LandscapeError as exc:
        problems.append(str(exc))
        table = {}
    if table:
        src_m, src_d = f"{path} models", f"{path} data"
        models += _kept(lambda: _entries(table.get("models", []), src_m), lambda e: _model(e, src_m), problems)
        data += _kept(lambda: _entries(table.get("data", []), src_d), lambda e: _data(e, src_d, path.parent),
                      problems)
    return UserConfig(tuple(dict.fromkeys(models)), tuple(dict.fromkeys(data)), tuple(problems))


def keep_upload(content: bytes, store: Store, *, name: str = "the upload") -> DataSpec:
    """The `DataSpec` of an uploaded ``.npz`` data set, kept in the store's ``inputs`` folder by content.

    Refused (`DataError`, naming `name`) above `MAX_UPLOAD_BYTES`, above `MAX_UPLOAD_DECODED_BYTES` decompressed,
    or when it does not load as the command line's ``npz:PATH`` loads it; nothing is kept then. A store folder of
    other files is refused first (`PathError`, `landscape.store_names.refuse_a_non_store`).
    """
    refuse_a_non_store(store.root)  # kept in its inputs folder: none in a folder of other files
    if len(content) > MAX_UPLOAD_BYTES:
        raise DataError(f"{name} is {len(content) / 2**20:.1f} MiB, over the upload limit of "
                        f"{MAX_UPLOAD_BYTES >> 20} MiB; name a larger data set in {DATA_VAR} instead")
    with tempfile.TemporaryDirectory() as tmp:
        trial = npz.keep(content, tmp)
        try:
            decoded = npz.decoded_bytes(trial)  # from the headers: a compressed upload can decode 1000-fold
            if decoded > MAX_UPLOAD_DECODED_BYTES:
                raise DataError(f"{trial}'s arrays take {decoded / 2**20:,.0f} MiB once decompressed (as float32 "
                                f"images), over the upload limit of {MAX_UPLOAD_DECODED_BYTES >> 20:,} MiB; name a "
                                f"larger data set in {DATA_VAR} instead")
            npz.load(DataSpec("npz", root=str(trial)))
        except DataError as exc:
            raise DataError(str(exc).replace(str(trial), name)) from None
    return DataSpec("npz", root=str(npz.keep(content, store.root / INPUTS)))


__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_DECODED_BYTES", "UserConfig", "keep_upload", "user_config"]
