"""Whether a path the tool would write stays inside the operator's project.

A committed config file (or a symlinked `pkg/` or `deploy/`) is input like any other: it must
not be able to make `generate` write, or remove, a file outside the repository it runs in. The
test is done on resolved paths (symlinks followed, `..` applied), so neither `../x`, an absolute
path, nor a symlinked directory on the way can lead out.
"""

from __future__ import annotations

from pathlib import Path, PurePath


def resolved_target(root: Path, path: str | PurePath) -> Path | None:
    """`root / path` with every symlink resolved, or None when that lies outside `root` (or
    cannot be resolved: a symlink loop, a name the filesystem refuses)."""
    try:
        base = root.resolve()
        target = (root / path).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return target if base in target.parents else None


def is_inside(root: Path, path: str | PurePath) -> bool:
    """True when writing `root / path` writes inside `root`, whatever symlinks lie on the way."""
    return resolved_target(root, path) is not None
