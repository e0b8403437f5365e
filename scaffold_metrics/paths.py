"""Project-relative POSIX paths, as config entries, generated headers and messages show them."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath


def relative_path(path: Path, root: Path) -> str:
    """`path` relative to `root`, POSIX style, for config entries and generated headers."""
    return PurePosixPath(
        Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()
    ).as_posix()
