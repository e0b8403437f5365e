"""Whether the runtime tests run against a real control plane (envtest binaries) or the double.

The envtest convention: `KUBEBUILDER_ASSETS` names a directory holding `etcd` and
`kube-apiserver`; `tests/runtime/kube_fixtures.py` starts them when it is set.
"""

from __future__ import annotations

import os
from pathlib import Path


def real_assets() -> Path | None:
    """The envtest binaries directory named by `KUBEBUILDER_ASSETS`, None when it is unset.

    Set but without `etcd` and `kube-apiserver` is an error, not a quiet fall back to the
    double: whoever set it expects the tests to have run against a real control plane."""
    value = os.environ.get("KUBEBUILDER_ASSETS")
    if not value:
        return None
    path = Path(value)
    missing = [name for name in ("etcd", "kube-apiserver") if not (path / name).is_file()]
    if missing:
        raise RuntimeError(
            f"KUBEBUILDER_ASSETS={value} has no {' or '.join(missing)}: point it at a directory "
            "holding the envtest binaries, or unset it to test against the API test double"
        )
    return path


def backend_description() -> str:
    """Which API server the runtime tests use, for the test report's header."""
    try:
        assets = real_assets()
    except RuntimeError as exc:
        return f"runtime tests: error: {exc}"
    if assets is None:
        return "runtime tests: kube-apiserver test double (KUBEBUILDER_ASSETS unset)"
    return f"runtime tests: real etcd + kube-apiserver from {assets}"
