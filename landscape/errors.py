"""Exception hierarchy of the engine: the app and CLI catch `LandscapeError` and show its message.

Also the one-line form in which the CLI (and its worker processes) print the engine's warnings.
"""

from __future__ import annotations


class LandscapeError(Exception):
    """Base class of every error the engine raises on purpose; its message is meant for the user."""


class SpecError(LandscapeError, ValueError):
    """A specification field is out of range or inconsistent; the message names the field and the range."""


class UnknownNameError(SpecError, KeyError):
    """A name in a spec is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(LandscapeError):
    """A data file is missing, truncated, corrupt or unsafe; the message names the file and the expected format."""


class ModelError(LandscapeError):
    """A user model cannot be imported, built or run on the data; the message names the model and what was expected."""


class ShapeError(LandscapeError, ValueError):
    """Tensors or arrays have the wrong shape, dtype or value range."""


class BudgetError(LandscapeError, ValueError):
    """A perturbation budget is on the wrong scale or a perturbation exceeds it."""


class StoreError(LandscapeError):
    """A store entry could not be read or written."""


class PathError(LandscapeError, ValueError):
    """A path from the user is empty, cannot be expanded, is a file where a folder is needed, or is not writable."""


class NotAStoreError(PathError):
    """A folder given as the store holds other files, no store entry; the message names it and which folder to give."""


def one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                     line: str | None = None) -> str:
    """`warning: MESSAGE` on one line, as the CLI prints its errors (a `warnings.formatwarning`).

    Python's default format adds the file, line number and source line of the `warnings.warn` call, which
    tell a user of the CLI nothing; the engine's warning messages name what is wrong themselves.
    """
    return f"warning: {message}\n"
