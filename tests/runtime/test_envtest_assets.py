"""The choice between the API test double and a real control plane (`KUBEBUILDER_ASSETS`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from envtest_assets import backend_description, real_assets


def test_unset_means_the_double(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    assert real_assets() is None
    assert "test double" in backend_description()


def test_a_directory_with_both_binaries_means_a_real_control_plane(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("etcd", "kube-apiserver", "kubectl"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    assert real_assets() == tmp_path
    assert backend_description() == f"runtime tests: real etcd + kube-apiserver from {tmp_path}"


def test_set_without_the_binaries_is_an_error_not_the_double(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "etcd").write_bytes(b"")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    with pytest.raises(RuntimeError, match="has no kube-apiserver: point it at"):
        real_assets()
    assert backend_description().startswith("runtime tests: error: KUBEBUILDER_ASSETS=")
