"""Command-line interface: `python -m landscape <command> ...` (also installed as `ue-landscape`).

Each subcommand lives in `landscape/commands/<name>.py` and registers itself in `COMMANDS` with an
`add_arguments(parser)` and a `run(args) -> int`. This module is only the adapter: it parses, runs,
and turns engine errors into a one-line message and exit status 2 (and warnings into one line each); output
piped into a reader that stops early (`... | head`) ends quietly with status 141, as other tools do.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import typing
import warnings
from collections.abc import Sequence

from landscape import commands
from landscape.errors import LandscapeError, one_line_warning
from landscape.malloc import keep_freed_memory
from landscape.paths import describe

REPRODUCIBLE_HELP = ("pin the CPU kernels to AVX2 so results match on other x86 CPUs (same as "
                     "UE_LANDSCAPE_REPRODUCIBLE=1; see the README: Reproducible where, exactly); before or after "
                     "the command")


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (the message and where to look), not the usage block."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # left of the command (a command's own unknown arguments are its error: CommandParser)
            self.error(f"unrecognized arguments: {' '.join(extras)}; a command's options go after the command")
        return parsed


class CommandParser(Parser):
    """A subcommand's parser: an argument it does not know is its own usage error.

    argparse hands what a subcommand's parser does not know back to the top-level parser, which then says
    "python -m landscape: error: unrecognized arguments" and points at the top-level --help; this parser names
    the command ("python -m landscape train: error: ...") and its --help, which lists the command's options.
    """

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        parsed._given = self._given(args)
        return parsed, extras

    def _given(self, args: Sequence[str] | None) -> dict[str, str]:
        """The options on the command line, dest -> option (`commands.common.refuse_given`).

        argparse's namespace holds a value for every option, given or not: parsed again with no defaults, it
        holds only the given ones (the arguments parsed once already, so this parse cannot fail).
        """
        options = [a for a in self._actions if a.option_strings]
        defaults = [a.default for a in options]
        try:
            for a in options:
                a.default = argparse.SUPPRESS
            bare, _ = super().parse_known_args(args, None)
        finally:
            for a, default in zip(options, defaults, strict=True):
                a.default = default
        return {a.dest: a.option_strings[-1] for a in options if hasattr(bare, a.dest)}


MODULE_PROG = "python -m landscape"


def build_parser(prog: str = MODULE_PROG) -> argparse.ArgumentParser:
    """The parser with every registered subcommand; `prog` names the program in usage lines and errors."""
    for info in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"landscape.commands.{info.name}")
    parser = Parser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--reproducible", action="store_true", help=REPRODUCIBLE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    for name in commands.COMMANDS.names():
        command = commands.COMMANDS.get(name)
        p = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(p)
        # The global flag is accepted after the command too; SUPPRESS keeps a flag given before it.
        p.add_argument("--reproducible", action="store_true", default=argparse.SUPPRESS, help=REPRODUCIBLE_HELP)
        p.set_defaults(_run=command.run)
    return parser


def _stdout_gone() -> bool:
    """True if standard output is a pipe whose reader has gone (`... | head` once head has exited)."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _fd, event in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), no file descriptor
        return False


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the CLI; returns the exit status.

    `prog` is how usage lines and errors name the program. Left out, it follows how the program was called, as
    argparse's own default does: the installed console script (`ue-landscape`, which calls `main()` with nothing)
    is named by `sys.argv[0]`; a call from Python with its own `argv` (the tests) is `python -m landscape`, and so
    is `python -m landscape` itself (`__main__` says so).
    """
    if prog is None:
        prog = os.path.basename(sys.argv[0]) if argv is None and sys.argv and sys.argv[0] else MODULE_PROG
    args = build_parser(prog).parse_args(argv)
    default_format, warnings.formatwarning = warnings.formatwarning, one_line_warning
    keep_freed_memory()  # CPU training faults fewer pages (landscape.malloc)
    try:
        if args.reproducible:
            from landscape.device import enable_reproducible

            enable_reproducible()
        return int(args._run(args) or 0)
    except LandscapeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError as err:
        if not _stdout_gone():  # another pipe (a worker's, say): an error like any other
            print(f"error: {describe(err, 'cannot read or write a file')}", file=sys.stderr)
            return 2
        # Whoever read the output stopped reading (`run | head`): stop quietly, as other command-line tools do
        # (128 + SIGPIPE); stdout goes to /dev/null, so Python's flush at exit does not fail on it again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as err:  # a file or folder the checks before the work could not foresee (disk full, ...)
        print(f"error: {describe(err, 'cannot read or write a file')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished stages stay in the store", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = default_format
