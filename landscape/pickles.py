"""How deeply a pickle nests, measured from its opcodes before any unpickler sees it (`check_nesting`).

A restricted unpickler (the CIFAR loader's, ``torch.load(weights_only=True)``) decides which globals a file may
name, but not how deeply its containers nest. Unpickling builds nested tuples without recursion, and hashing a
tuple (as a dict key, a set member) recurses in C without a depth check: a 1 MB file holding a tuple nested a
million deep as a dict key kills the interpreter with a segmentation fault, not an exception, so nothing can
catch it. `check_nesting` walks the opcodes (`pickletools.genops`: nothing is built, nothing runs), tracks how
deeply each stack item nests (memo entries keep the depth they were stored with) and raises `DataError` as soon
as an item is nested deeper than `MAX_DEPTH`. Genuine CIFAR batches and state dicts nest a few levels.

A malformed pickle (an unknown opcode, a stack underflow, a truncation) ends the walk without an error: the
unpickler then refuses it at the same place, having built nothing deeper than the walk saw.
"""

from __future__ import annotations

import pickletools
from typing import BinaryIO

from landscape.errors import DataError

MAX_DEPTH = 100
_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
# Opcodes that add to (or set the state of) the object below their arguments and leave that object: it nests
# one level above what is added, not one level above its own former depth.
_INTO = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})


def check_nesting(f: BinaryIO, source: object, limit: int = MAX_DEPTH) -> None:
    """Raise `DataError` naming `source` if the pickle read from `f` nests containers deeper than `limit`.

    Reads one pickle (up to its STOP opcode) from `f`'s current position.
    """
    stack: list[int] = []  # the depth of each item
    marks: list[int] = []  # the stack's length at each open MARK
    memo: dict[int, int] = {}
    try:
        for op, arg, pos in pickletools.genops(f):
            name, before, after = op.name, op.stack_before, op.stack_after
            fence = marks[-1] if marks else 0  # the unpickler pops nothing below the topmost MARK
            if name in _PUT or name == "DUP":
                if len(stack) <= fence:
                    return
                if name == "DUP":
                    stack.append(stack[-1])
                else:
                    memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
                continue
            if name in _GET:
                stack.append(memo.get(arg, 1))
                continue
            sliced: list[int] = []
            count = len(before)
            if pickletools.markobject in before or (name == "POP" and marks and marks[-1] == len(stack)):
                if not marks:
                    return
                at = marks.pop()
                sliced = stack[at:]
                del stack[at:]
                count = before.index(pickletools.markobject) if pickletools.markobject in before else 0
                fence = marks[-1] if marks else 0
            if len(stack) - count < fence:
                return
            popped = stack[len(stack) - count:] if count else []
            del stack[len(stack) - count:]
            added = popped[1:] + sliced if name in _INTO else popped + sliced
            depth = 1 + max(added, default=0)
            if name in _INTO and popped:
                depth = max(depth, popped[0])
            for item in after:
                if item is pickletools.markobject:
                    marks.append(len(stack))
                else:
                    stack.append(depth)
                    if depth > limit:
                        raise DataError(f"{source}: refused, its objects nest more than {limit} levels deep (at "
                                        f"byte {pos}); a genuine file nests a few levels, and unpickling one this "
                                        f"deep could crash the interpreter (nothing was run)")
    except ValueError:  # malformed: the unpickler refuses it at the same place
        return
