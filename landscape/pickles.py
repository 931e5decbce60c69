"""How deeply a pickle nests, measured from its opcodes before any unpickler sees it (`check_nesting`).

A restricted unpickler (the CIFAR loader's, ``torch.load(weights_only=True)``) decides which globals a file may
name, but not how deeply its containers nest. Unpickling builds nested tuples without recursion, and hashing a
tuple (as a dict key, a set member) recurses in C without a depth check: a 1 MB file holding a tuple nested a
million deep as a dict key kills the interpreter with a segmentation fault, not an exception, so nothing can
catch it. `check_nesting` walks the opcodes (`pickletools.genops`: nothing is built, nothing runs), tracks how
deeply each stack item nests (memo entries keep the depth they were stored with) and raises `DataError` as soon
as an item is nested deeper than `MAX_DEPTH`. Genuine CIFAR batches and state dicts nest a few levels. The walk
takes about 0.1 s for a CIFAR-10 batch (its pixels are one string) and at worst about 0.4 s per MB (a file of
one-byte opcodes), linear in the file.

A malformed pickle (an unknown opcode, a stack underflow, a truncation) ends the walk without an error: the
unpickler then refuses it at the same place, having built nothing deeper than the walk saw.
"""

from __future__ import annotations

import pickletools
from typing import BinaryIO

from landscape.errors import DataError

MAX_DEPTH = 100
_LEAF, _POP, _PUT, _GET, _DUP, _INTO, _OTHER = range(7)
# Opcodes that add to (or set the state of) the object below their arguments and leave that object: it nests
# one level above what is added, not one level above its own former depth.
_INTO_NAMES = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})


def _plan(op: pickletools.OpcodeInfo) -> tuple[int, int, bool, int, bool]:
    """(kind, items popped below any MARK, pops to a MARK, items pushed, pushes a MARK) of one opcode."""
    before, after, name = op.stack_before, op.stack_after, op.name
    marked = pickletools.markobject in before
    count = before.index(pickletools.markobject) if marked else len(before)
    pushes = sum(1 for item in after if item is not pickletools.markobject)
    opens = pickletools.markobject in after
    kind = (_PUT if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE") else _GET if name in ("GET", "BINGET",
            "LONG_BINGET") else _DUP if name == "DUP" else _POP if name == "POP" else _INTO if name in _INTO_NAMES
            else _LEAF if (count, marked, pushes, opens) == (0, False, 1, False) else _OTHER)
    return kind, count, marked, pushes, opens


_PLANS = {op: _plan(op) for op in pickletools.opcodes}


def check_nesting(f: BinaryIO, source: object, limit: int = MAX_DEPTH) -> None:
    """Raise `DataError` naming `source` if the pickle read from `f` nests containers deeper than `limit`.

    Reads one pickle (up to its STOP opcode) from `f`'s current position.
    """
    stack: list[int] = []  # the depth of each item
    marks: list[int] = []  # the stack's length at each open MARK
    memo: dict[int, int] = {}
    try:
        for op, arg, pos in pickletools.genops(f):
            kind, count, marked, pushes, opens = _PLANS[op]
            if kind == _LEAF:  # most opcodes: a number, a string, None
                stack.append(1)
                continue
            fence = marks[-1] if marks else 0  # the unpickler pops nothing below the topmost MARK
            if kind == _GET:
                stack.append(memo.get(arg, 1))
                continue
            if kind == _POP and len(stack) > fence:
                stack.pop()
                continue
            if kind in (_PUT, _DUP):
                if len(stack) <= fence:
                    return
                if kind == _DUP:
                    stack.append(stack[-1])
                else:
                    memo[len(memo) if arg is None else arg] = stack[-1]  # MEMOIZE has no argument
                continue
            sliced: list[int] = []
            if marked or (kind == _POP and marks and fence == len(stack)):
                if not marks:
                    return
                at = marks.pop()
                sliced = stack[at:]
                del stack[at:]
                count = count if marked else 0
                fence = marks[-1] if marks else 0
            if len(stack) - count < fence:
                return
            depth = 1
            if count or sliced:
                popped = stack[len(stack) - count:] if count else []
                del stack[len(stack) - count:]
                if kind == _INTO:
                    depth = max(popped[0], 1 + max(popped[1:] + sliced, default=0))
                else:
                    depth = 1 + max(popped + sliced)
            if pushes:
                if depth > limit:
                    raise DataError(f"{source}: refused, its objects nest more than {limit} levels deep (at "
                                    f"byte {pos}); a genuine file nests a few levels, and unpickling one this "
                                    f"deep could crash the interpreter (nothing was run)")
                stack.extend([depth] * pushes)
            if opens:
                marks.append(len(stack))
    except ValueError:  # malformed: the unpickler refuses it at the same place
        return
