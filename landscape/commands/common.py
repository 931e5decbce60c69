"""Argument groups and output helpers shared by the subcommands (specs from flags, tqdm progress, JSON, --out files).

A command that trains (or loads) a run takes `add_experiment_args` (data set, model, training recipe, and
`add_run_args`: device, store, --json), reads the specs back with `experiment_specs`, and computes inside
`working(args)` (the checked store, the device, a tqdm progress callback). A command with an ``--out FILE``
checks it with `output_file` before any work (its suffix picks the format) and writes it with `write_output`;
`write_html` is the self-contained page of figures the HTML formats share.
"""

from __future__ import annotations

import argparse
import html
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from landscape import jsontext
from landscape.config import DataSpec, ModelSpec, TrainSpec, choices
from landscape.data import DATASETS
from landscape.device import resolve_device
from landscape.display import grid_table
from landscape.errors import SpecError
from landscape.files import atomic_write
from landscape.models import MODELS
from landscape.paths import reporting, user_path, writable_file
from landscape.progress import tqdm_progress
from landscape.store import Store

__all__ = ["add_data_args", "add_experiment_args", "add_model_args", "add_run_args", "add_train_args", "at_least",
           "data_spec", "experiment_specs", "model_spec", "open_store", "option_dests", "output_file", "output_path",
           "print_json", "refuse_given", "tqdm_progress", "train_spec", "working", "write_html", "write_output"]


def at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= `low`; anything else is a usage error naming the value and the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give an integer >= {low}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is out of range; give an integer >= {low}")
        return value

    return parse


def add_data_args(p: argparse.ArgumentParser) -> None:
    with_files = [n for n in DATASETS.names() if DATASETS.meta(n).get("needs_root")]
    named = [n for n in DATASETS.names() if not DATASETS.meta(n).get("syntax")]
    own = [DATASETS.meta(n)["syntax"] for n in DATASETS.names() if DATASETS.meta(n).get("syntax")]
    p.add_argument("--dataset", default=DataSpec().name,
                   help=f"data set: a name ({', '.join(named)}), NAME:ROOT, or your own images: {', '.join(own)} "
                        f"(npz: arrays x, y, optional x_test, y_test; folder: a sub-folder of PNG/JPEG images per "
                        f"class, ?size=N resizes them to NxN)")
    p.add_argument("--data-root", default=None, help=f"folder with the data set's files ({', '.join(with_files)})")
    p.add_argument("--n-train", type=int, default=None, help="stratified training subset size")
    p.add_argument("--n-test", type=int, default=None, help="stratified test subset size")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=ModelSpec().name,
                   help=f"model name ({', '.join(MODELS.names())}) or a user model package.module:factory, "
                        f"imported from this Python environment (factory(image_shape, num_classes) -> nn.Module)")
    p.add_argument("--width", type=int, default=1, help="width multiplier (registered models)")


def add_train_args(p: argparse.ArgumentParser) -> None:
    d = TrainSpec()
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--optimizer", default=d.optimizer, choices=choices(TrainSpec, "optimizer"))
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--nesterov", action="store_true", default=d.nesterov,
                   help="Nesterov momentum for --optimizer sgd (needs --momentum > 0; TAP's surrogate recipe)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--schedule", default=d.schedule, choices=choices(TrainSpec, "schedule"))
    p.add_argument("--augment", default=d.augment, choices=choices(TrainSpec, "augment"))
    p.add_argument("--crop-padding", type=int, default=d.crop_padding,
                   help=f"zero padding in pixels before the random crop of --augment crop / crop_flip "
                        f"(default {d.crop_padding}, for every data set; CIFAR recipes usually use 4)")
    p.add_argument("--seed", type=int, default=d.seed)


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Where a command runs and how it reports: --device, --store, --json (listed last in --help)."""
    g = p.add_argument_group("where it runs")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    g.add_argument("--store", default=None, help="store folder (default: $UE_LANDSCAPE_STORE or ~/.cache/ue-landscape)")
    g.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def add_experiment_args(p: argparse.ArgumentParser) -> None:
    """The flags of a command that trains or loads a run: data set, model, training recipe, `add_run_args`."""
    add_data_args(p)
    add_model_args(p)
    add_train_args(p)
    add_run_args(p)


def open_store(a: argparse.Namespace, *, write: bool = True) -> Store:
    """The store of ``--store`` (else $UE_LANDSCAPE_STORE, else the cache folder), checked before any work starts.

    With `write` it must be, or be creatable as, a writable folder; without, a folder or absent (holding nothing).
    """
    store = Store(a.store)
    return store.check_writable() if write else store.check_readable()


def output_path(value: str, flag: str, example: str = "out.html", hint: str | None = None) -> Path:
    """The file an ``--out`` flag names, checked before any work starts: not a folder, its folder writable.

    A folder is refused with `hint` (``{path}`` is the folder), by default: give `example` inside it.
    """
    return writable_file(user_path(value, flag), flag, hint or f"give a file name inside it, e.g. {{path}}/{example}")


def output_file(value: str | None, flag: str, formats: Sequence[str], example: str) -> Path | None:
    """The file an optional ``--out`` names, checked before any work starts (None when it is not given).

    `output_path`'s checks, and its suffix must be one of `formats`: else a `SpecError` names the value and them.
    """
    if value is None:
        return None
    out = output_path(value, flag, example)
    if out.suffix not in formats:
        raise SpecError(f"{flag} {value!r}: the suffix must be one of {', '.join(formats)}")
    return out


def write_output(out: Path, writers: Mapping[str, Callable[[Path], object]], flag: str = "--out") -> None:
    """Write `out` with the writer of its suffix (one per format `output_file` allowed).

    An `OSError` becomes a `PathError` whose one line names the file.
    """
    with reporting(f"cannot write {flag} {out}"):
        writers[out.suffix](out)


# The page's whole style, inline (the page opens offline: no stylesheet, font or script is fetched).
_STYLE = ("body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:1.5em auto;"
          "max-width:1200px;padding:0 1em;color:#222;line-height:1.4}"
          "table{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}"
          "caption{text-align:left;font-weight:600;padding:0 0 .4em}"
          "th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}th{background:#f3f3f3}"
          "th:first-child,td:first-child{text-align:left}p{max-width:80em}")


def write_html(figures: Sequence[Any], path: Path, title: str, *, notes: Sequence[str] = (),
               tables: Mapping[str, Sequence[Mapping[str, object]]] | None = None) -> None:
    """One self-contained HTML page (plotly.js embedded once, so it opens offline).

    The title, then each of `notes` as a paragraph, each table of `tables` (caption -> rows of one dict per row,
    numbers to 4 significant digits, "n/a" where missing), then the figures; text is HTML-escaped. Its style
    (`_STYLE`: the system font, padded table cells) is inline.
    """
    parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figures)]
    head = [f"<p>{html.escape(note)}</p>" for note in notes]
    head += [grid_table(caption, rows) for caption, rows in (tables or {}).items()]
    name = html.escape(title)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{name}</title><style>{_STYLE}</style></head>"
            f"<body><h2>{name}</h2>" + "".join(head) + "\n".join(parts) + "</body></html>")
    atomic_write(path, page)


def option_dests(add: Callable[[argparse.ArgumentParser], None]) -> frozenset[str]:
    """The ``dest`` of every option that `add` (an ``add_*_args``) adds to a parser."""
    p = argparse.ArgumentParser(add_help=False)
    add(p)
    return frozenset(vars(p.parse_args([])))


def refuse_given(a: argparse.Namespace, dests: Iterable[str], why: str) -> None:
    """Refuse the options among `dests` given on the command line, which this use of the command ignores.

    `SpecError` names each (by its long form, in the parser's order) and says `why`, before any work. The CLI
    records which options were given (`landscape.cli.CommandParser`); a namespace built another way gives none.
    """
    wanted = set(dests)
    given = [option for dest, option in getattr(a, "_given", {}).items() if dest in wanted]
    if given:
        them = "it" if len(given) == 1 else "them"
        raise SpecError(f"{', '.join(given)}: not used {why}; leave {them} out")


def data_spec(a: argparse.Namespace) -> DataSpec:
    return DataSpec.parse(a.dataset, root=a.data_root, n_train=a.n_train, n_test=a.n_test)


def model_spec(a: argparse.Namespace) -> ModelSpec:
    return ModelSpec(name=a.model, width=a.width)


def train_spec(a: argparse.Namespace) -> TrainSpec:
    return TrainSpec(epochs=a.epochs, batch_size=a.batch_size, optimizer=a.optimizer, lr=a.lr, momentum=a.momentum,
                     nesterov=a.nesterov, weight_decay=a.weight_decay, schedule=a.schedule, augment=a.augment,
                     crop_padding=a.crop_padding, seed=a.seed)


def experiment_specs(a: argparse.Namespace) -> tuple[DataSpec, ModelSpec, TrainSpec]:
    """The specs of `add_experiment_args`' flags."""
    return data_spec(a), model_spec(a), train_spec(a)


@contextmanager
def working(a: argparse.Namespace) -> Iterator[tuple[Store, torch.device, Callable[[str, int, int], None]]]:
    """(store, device, progress) of a command's run.

    The ``--store`` is checked writable and ``--device`` resolved before any work starts; the progress callback
    draws tqdm bars (none with ``--json``) that close when the block ends.
    """
    store, device = open_store(a), resolve_device(a.device)
    with tqdm_progress(disable=a.json) as progress:
        yield store, device, progress


def print_json(obj: Any) -> None:
    print(jsontext.dumps(obj))
