"""Whether a path the tool would write stays inside the operator's project (and can exist).

A committed config file (or a symlinked `pkg/` or `deploy/`) is input like any other: it must
not be able to make `generate` write, or remove, a file outside the repository it runs in. The
test is done on resolved paths (symlinks followed, `..` applied), so neither `../x`, an absolute
path, nor a symlinked directory on the way can lead out.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

# The longest file name (one path component) common filesystems hold, in bytes.
NAME_MAX = 255


def resolved_target(root: Path, path: str | PurePath) -> Path | None:
    """`root / path` with every symlink resolved, or None when that lies outside `root` (or
    cannot be resolved: a symlink loop, a name the filesystem refuses)."""
    try:
        base = root.resolve()
        target = (root / path).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return target if base in target.parents else None


def path_problem(root: Path, path: str | PurePath) -> str | None:
    """Why the tool cannot write `root / path` (None when it can): a name too long for the
    filesystem, or a location outside `root`, whatever symlinks lie on the way."""
    if any(len(os.fsencode(part)) > NAME_MAX for part in PurePath(path).parts):
        return f"has a name longer than {NAME_MAX} bytes"
    if resolved_target(root, path) is None:
        return "is outside the project"
    return None
