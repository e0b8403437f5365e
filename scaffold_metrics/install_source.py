"""Where this operator-metrics was installed from (PEP 610 `direct_url.json`), so that the
requirement written into the operator's repository installs the same thing in its image: a
VCS URL pinned at the installed commit, a local wheel or directory (a file URL, which only
works on this machine: said in a note), or, from a package index, this release series.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from . import __version__

DISTRIBUTION = "operator-metrics"


@dataclass(frozen=True)
class InstallRequirement:
    """The requirement line for the operator's image, and advice when it is machine-local."""

    line: str
    note: str | None = None


def installed_origin() -> Mapping[str, Any] | None:
    """The installed distribution's `direct_url.json`, or None (index install, or no
    installed distribution at all, as when running from a checkout)."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        origin = json.loads(text)
    except ValueError:
        return None
    return origin if isinstance(origin, Mapping) and isinstance(origin.get("url"), str) else None


def release_range(version: str = __version__) -> str:
    """`>=X.Y,<X.Y+1`: the release series of `version`."""
    major, minor = version.split(".")[:2]
    return f">={major}.{minor},<{major}.{int(minor) + 1}"


def install_requirement(
    extra: str, origin: Mapping[str, Any] | None, version: str = __version__
) -> InstallRequirement:
    """The requirement naming `operator-metrics[extra]` as `origin` says it was installed."""
    name = f"{DISTRIBUTION}[{extra}]"
    if origin is None:
        return InstallRequirement(f"{name}{release_range(version)}")
    url = str(origin["url"])
    local = url.startswith("file:")
    vcs = origin.get("vcs_info")
    if isinstance(vcs, Mapping):
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        ref = f"@{commit}" if commit else ""
        line = f"{name} @ {vcs.get('vcs', 'git')}+{url}{ref}"
        subdirectory = origin.get("subdirectory")
        if subdirectory:
            line += f"#subdirectory={subdirectory}"
        note = _LOCAL_REPO if local else None
        return InstallRequirement(line, note)
    if isinstance(origin.get("dir_info"), Mapping):
        return InstallRequirement(f"{name} @ {url}", _LOCAL_DIR if local else None)
    return InstallRequirement(f"{name} @ {url}", _LOCAL_WHEEL if local else None)


_LOCAL_WHEEL = (
    "a file URL installs only on this machine: for CI and the operator's image, copy the wheel "
    "into the repository (or the image's build context) and point the line at that path, or "
    "install operator-metrics from its git URL (see the README)"
)
_LOCAL_DIR = (
    "operator-metrics was installed from a local directory: this file URL installs only on this "
    "machine; for CI and the operator's image build a wheel (`pip wheel --no-deps DIR`) or use "
    "the git URL (see the README)"
)
_LOCAL_REPO = (
    "operator-metrics was installed from a local git repository: this file URL installs only on "
    "this machine; use the repository's remote URL for CI and the operator's image"
)
