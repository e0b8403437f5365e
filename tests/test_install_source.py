"""The requirement written into the operator's repository installs operator-metrics from where
this one came from (PEP 610 `direct_url.json`): VCS URL at the commit, local wheel or
directory (with a note), or the release range from an index; `[kopf]` for kopf operators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scaffold_helpers import run_cli
from user_repos import CRD_PATH, KOPF_CRD_PATH, kopf_operator, kustomize_operator

import scaffold_metrics.pipeline as pipeline
from scaffold_metrics.install_source import install_requirement

GIT = {
    "url": "https://github.com/acme/operator-metrics",
    "vcs_info": {"vcs": "git", "commit_id": "0123abc", "requested_revision": "main"},
}
WHEEL = {
    "url": "file:///builds/dist/operator_metrics-0.1.0-py3-none-any.whl",
    "archive_info": {"hashes": {"sha256": "00"}},
}
DIRECTORY = {"url": "file:///src/operator-metrics", "dir_info": {"editable": True}}


@pytest.mark.parametrize(
    ("origin", "line", "local"),
    [
        (None, "operator-metrics[runtime]>=0.1,<0.2", False),
        (GIT, "operator-metrics[runtime] @ git+https://github.com/acme/operator-metrics@0123abc",
         False),
        ({**GIT, "subdirectory": "python"},
         "operator-metrics[runtime] @ git+https://github.com/acme/operator-metrics@0123abc"
         "#subdirectory=python", False),
        ({**GIT, "url": "file:///src/operator-metrics"},
         "operator-metrics[runtime] @ git+file:///src/operator-metrics@0123abc", True),
        (WHEEL,
         "operator-metrics[runtime] @ file:///builds/dist/operator_metrics-0.1.0-py3-none-any.whl",
         True),
        ({"url": "https://files.example/operator_metrics-0.1.0.tar.gz", "archive_info": {}},
         "operator-metrics[runtime] @ https://files.example/operator_metrics-0.1.0.tar.gz", False),
        (DIRECTORY, "operator-metrics[runtime] @ file:///src/operator-metrics", True),
    ],
)  # fmt: skip
def test_requirement_follows_the_install_origin(
    origin: dict[str, Any] | None, line: str, local: bool
) -> None:
    wanted = install_requirement("runtime", origin, "0.1.0")
    assert wanted.line == line
    assert (wanted.note is not None) == local


def test_release_range_follows_the_version() -> None:
    assert install_requirement("kopf", None, "1.4.2").line == "operator-metrics[kopf]>=1.4,<1.5"


def test_plain_operator_gets_the_git_requirement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "installed_origin", lambda: GIT)
    root = kustomize_operator(tmp_path / "backup-operator")
    result = run_cli("init", "--crd", root / CRD_PATH, "--project", root)
    assert result.exit_code == 0, result.stderr
    assert (root / "requirements.txt").read_text() == (
        "# Python requirements of the operator's image (created by operator-metrics; yours to "
        "edit).\n"
        "operator-metrics[runtime] @ git+https://github.com/acme/operator-metrics@0123abc\n"
    )
    assert "note: requirements.txt" not in result.stderr


def test_kopf_operator_is_told_the_kopf_extra_and_the_wheel_caveat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "installed_origin", lambda: WHEEL)
    root = kopf_operator(tmp_path / "memcached-operator")
    result = run_cli("init", "--crd", root / KOPF_CRD_PATH, "--project", root)
    assert result.exit_code == 0, result.stderr
    assert (root / "requirements.txt").read_text() == "kopf==1.37.2\n"
    assert (
        "note: requirements.txt does not name operator-metrics; add this line so the "
        "operator's image has the runtime:\n"
        "    operator-metrics[kopf] @ "
        "file:///builds/dist/operator_metrics-0.1.0-py3-none-any.whl\n"
        "  (a file URL installs only on this machine: for CI and the operator's image, copy the "
        "wheel into the repository (or the image's build context) and point the line at that "
        "path, or install operator-metrics from its git URL (see the README))\n"
    ) in result.stderr
