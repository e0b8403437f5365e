"""What the API server accepts is accepted, with a note: an empty v1beta1 scope, a CRD without
a schema; an unknown key in a CRD's spec (`Scope:`) is noted, not silently dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaffold_metrics.crd import load_crds
from scaffold_metrics.errors import InputError

V1BETA1 = """\
apiVersion: apiextensions.k8s.io/v1beta1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    plural: widgets
  scope: {scope}
  version: v1
"""


def _load(tmp_path: Path, text: str) -> tuple[object, list[str]]:
    path = tmp_path / "crd.yaml"
    path.write_text(text)
    loaded = load_crds([path])
    return loaded.crds, loaded.notes


def test_empty_v1beta1_scope_is_namespaced_with_a_note(tmp_path: Path) -> None:
    crds, notes = _load(tmp_path, V1BETA1.format(scope='""'))
    (crd,) = crds  # type: ignore[misc]
    assert crd.namespaced
    assert f"note: Widget: empty spec.scope read as Namespaced: {tmp_path / 'crd.yaml'}:1" in notes


def test_empty_v1_scope_is_still_refused(tmp_path: Path) -> None:
    text = (
        V1BETA1.format(scope='""')
        .replace("v1beta1", "v1")
        .replace("  version: v1\n", "  versions:\n  - {name: v1, served: true, storage: true}\n")
    )
    with pytest.raises(InputError, match=r"invalid spec\.scope"):
        _load(tmp_path, text)


def test_no_schema_and_unknown_spec_keys_are_noted(tmp_path: Path) -> None:
    text = V1BETA1.format(scope="Namespaced") + "  Scope: Cluster\n"
    _, notes = _load(tmp_path, text)
    file = tmp_path / "crd.yaml"
    assert notes == [
        f"note: Widget: unknown key 'Scope' in spec, ignored (did you mean 'scope'?): {file}:1",
        "note: Widget v1 has no schema: only Widget's info and creation time are measured, "
        f"include fields by path to add more: {file}:1",
    ]
