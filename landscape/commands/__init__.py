"""CLI subcommands, one file each, registered in `COMMANDS`; shared argument helpers live in `common`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from landscape.registry import Registry


@dataclass(frozen=True)
class Command:
    """A subcommand: its help line, how it adds its arguments, and how it runs (returns the exit status)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: Registry[Command] = Registry("command")
