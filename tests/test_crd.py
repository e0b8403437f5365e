"""CRD loading: both apiextensions versions, multi-document files, and errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from scaffold_helpers import CORPUS, CORPUS_FILES, MEMCACHED_V1, MEMCACHED_V1BETA1

from scaffold_metrics.crd import load_crds
from scaffold_metrics.errors import InputError, UsageError
from scaffold_metrics.plan import select_version, version_priority


def write(tmp_path: Path, text: str, name: str = "crd.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


MINIMAL_V1 = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    plural: widgets
  scope: {scope}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
"""


def test_v1beta1_memcached_loads_with_its_single_version() -> None:
    (crd,) = load_crds([MEMCACHED_V1BETA1]).crds
    assert (crd.group, crd.kind, crd.plural, crd.namespaced) == (
        "cache.example.com",
        "Memcached",
        "memcacheds",
        True,
    )
    (version,) = crd.versions
    assert version.name == "v1alpha1" and version.served and version.storage
    assert version.schema is not None and "spec" in version.schema["properties"]


def test_v1_memcached_loads_schema_per_version() -> None:
    (crd,) = load_crds([MEMCACHED_V1]).crds
    assert crd.versions[0].schema is not None
    assert crd.line == 2  # the file starts with `---`


def test_every_corpus_file_loads() -> None:
    counts = {p.name: len(load_crds([p]).crds) for p in CORPUS_FILES}
    assert counts["istio-crd-all.gen.yaml"] == 15
    assert all(n >= 1 for n in counts.values())


def test_non_crd_documents_are_skipped_with_a_note() -> None:
    result = load_crds([CORPUS / "flux-testdata-crd-with-namespace.yaml"])
    assert [c.kind for c in result.crds] == ["Namespace"]
    assert len(result.notes) == 2
    assert all("not a CRD" in n and ".yaml:" in n for n in result.notes)


def test_directory_is_expanded_sorted(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL_V1.format(scope="Cluster"), "b.yaml")
    write(
        tmp_path,
        MINIMAL_V1.format(scope="Namespaced")
        .replace("widgets", "gadgets")
        .replace("Widget", "Gadget"),
        "a.yml",
    )
    crds = load_crds([tmp_path]).crds
    assert [c.kind for c in crds] == ["Gadget", "Widget"]
    assert crds[1].namespaced is False


def test_storage_version_is_the_default_and_served_false_is_never_picked() -> None:
    (crd,) = load_crds([CORPUS / "external-secrets-externalsecrets.yaml"]).crds
    assert select_version(crd, None).name == "v1"
    with pytest.raises(UsageError, match="not served"):
        select_version(crd, "v1beta1")
    with pytest.raises(UsageError, match="has no version 'v9'"):
        select_version(crd, "v9")


def test_istio_telemetry_uses_its_storage_version() -> None:
    crds = load_crds([CORPUS / "istio-crd-all.gen.yaml"]).crds
    telemetry = next(c for c in crds if c.kind == "Telemetry")
    assert select_version(telemetry, None).name == "v1alpha1"
    assert select_version(telemetry, "v1").name == "v1"


def test_version_priority_follows_kubernetes_ordering() -> None:
    names = ["v1alpha1", "v2beta1", "v1", "v2", "v1beta2", "foo"]
    assert sorted(names, key=version_priority) == [
        "v2",
        "v1",
        "v2beta1",
        "v1beta2",
        "v1alpha1",
        "foo",
    ]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a: [1, 2\nb: 3\n", "not valid YAML", 2),
        ("- just\n- a list\n", "document is not a mapping", 1),
        ("apiVersion: v1\nkind: ConfigMap\n", "no CustomResourceDefinition in file", 1),
        (
            "apiVersion: apiextensions.k8s.io/v2\nkind: CustomResourceDefinition\n",
            "unknown CRD apiVersion",
            1,
        ),
        (
            MINIMAL_V1.format(scope="Namespaced").replace("    kind: Widget\n", ""),
            "CRD has no spec.names.kind",
            8,
        ),
        (MINIMAL_V1.format(scope="Namespaced").split("  versions:")[0], "CRD has no versions", 6),
        (MINIMAL_V1.format(scope="Galaxy"), "invalid spec.scope", 10),
        (
            MINIMAL_V1.format(scope="Namespaced").replace("plural: widgets", "plural: Wid/gets"),
            "invalid spec.names.plural",
            9,
        ),
    ],
)
def test_bad_input_names_file_and_line(
    tmp_path: Path, text: str, message: str, line: int | None
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_crds([path])
    error = caught.value
    assert message in error.what
    assert error.file == path
    assert error.line == line
    assert error.format().startswith(f"error: {error.what}: {path}")


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_crds([tmp_path / "nope.yaml"])


def test_duplicate_crd_across_files_is_rejected() -> None:
    with pytest.raises(InputError, match="defined twice"):
        load_crds([MEMCACHED_V1, MEMCACHED_V1BETA1])


def test_directory_files_without_crds_are_skipped_with_a_note(tmp_path: Path) -> None:
    crd_dir = tmp_path / "config" / "crd"
    (crd_dir / "bases").mkdir(parents=True)
    write(crd_dir / "bases", MINIMAL_V1.format(scope="Namespaced"), "widgets.yaml")
    write(crd_dir, "resources:\n- bases/widgets.yaml\n", "kustomization.yaml")
    result = load_crds([crd_dir])
    assert [c.kind for c in result.crds] == ["Widget"]
    assert any("kustomization.yaml:1" in note for note in result.notes)
    (crd_dir / "bases" / "widgets.yaml").unlink()
    with pytest.raises(InputError, match="no CustomResourceDefinition in directory"):
        load_crds([crd_dir])


def test_a_path_named_twice_is_read_once(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_V1.format(scope="Namespaced"))
    assert len(load_crds([path, tmp_path, path]).crds) == 1
