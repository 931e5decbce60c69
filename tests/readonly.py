"""A folder nobody can write into, root included, for tests of read-only stores and outputs.

As root, who ignores permission bits, the folder is made immutable with `chattr +i`; elsewhere its mode is 0o555.
Where neither works the calling test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """Create `path` as a folder that cannot be written into while the context is open; writable again after."""
    path.mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0
    if root:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
            pytest.skip("running as root without chattr +i: no way to make a read-only folder")
    else:
        path.chmod(0o555)
    try:
        yield path
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        else:
            path.chmod(0o755)
