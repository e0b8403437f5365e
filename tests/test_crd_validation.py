"""Schema-invalid CRDs (a field of the wrong type, an oversized enum or object) are refused with
the file and line of the offending key, as the API server would refuse them: never misread."""

from __future__ import annotations

from pathlib import Path

import pytest
from scaffold_helpers import run_cli, tree

from scaffold_metrics.crd import load_crds
from scaffold_metrics.crd_schema import MAX_ENUM_VALUES, MAX_PROPERTIES

BASE = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    plural: widgets
    singular: widget
    shortNames: [wd]
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size:
                type: integer
                description: How many.
              phase:
                type: string
                enum: [Pending, Ready]
              tags:
                type: array
                items:
                  type: string
              labels:
                type: object
                additionalProperties:
                  type: string
              blob:
                x-kubernetes-preserve-unknown-fields: true
"""

# (line as it is in BASE, what it becomes): each makes the CRD invalid at that line.
INVALID = {
    "served as a string": ("    served: true", '    served: "false"'),
    "storage as a string": ("    storage: true", "    storage: 'yes'"),
    "deprecated as a number": ("    served: true", "    deprecated: 1"),
    "scope as a list": ("  scope: Namespaced", "  scope: [Namespaced]"),
    "kind as a number": ("    kind: Widget", "    kind: 5"),
    "plural as a list": ("    plural: widgets", "    plural: [widgets]"),
    "singular as a number": ("    singular: widget", "    singular: 3"),
    "singular too long": ("    singular: widget", "    singular: " + "w" * 64),
    "shortNames as a string": ("    shortNames: [wd]", "    shortNames: wd"),
    "metadata as a list": ("metadata:", "metadata: []\nx:"),
    "metadata.name as a number": ("  name: widgets.example.com", "  name: 12"),
    "version name too long": ("  - name: v1", "  - name: v" + "1" * 63),
    "schema as a list": ("    schema:", "    schema: []\n    x:"),
    "openAPIV3Schema as a string": ("      openAPIV3Schema:", "      openAPIV3Schema: x\n      y:"),
    "printer columns as a mapping": (
        "    additionalPrinterColumns:",
        "    additionalPrinterColumns: {}\n    x:",
    ),
    "printer column type as a number": ("      type: integer", "      type: 4"),
    "type as a number": ("                type: integer", "                type: 3"),
    "description as a list": (
        "                description: How many.",
        "                description: [a]",
    ),
    "enum as a string": (
        "                enum: [Pending, Ready]",
        "                enum: PendingReady",
    ),
    "properties as a list": (
        "            properties:",
        "            properties: []\n            x:",
    ),
    "required as a string": ("            required: [size]", "            required: size"),
    "items as a string": (
        "                items:",
        "                items: string\n                x:",
    ),
    "additionalProperties as a string": (
        "                additionalProperties:",
        "                additionalProperties: string\n                x:",
    ),
    "preserve-unknown-fields as a string": (
        "                x-kubernetes-preserve-unknown-fields: true",
        '                x-kubernetes-preserve-unknown-fields: "true"',
    ),
    "allOf as a mapping": ("              blob:", "              blob:\n                allOf: {}"),
}


def invalid_crd(case: str) -> tuple[str, int]:
    """The BASE CRD broken as `case` says, and the line of the broken key."""
    old, new = INVALID[case]
    lines = BASE.splitlines()
    index = lines.index(old)
    lines[index] = new
    line = index + 1
    if "allOf" in new:
        line += 1
    return "\n".join(lines) + "\n", line


def test_base_crd_is_valid(tmp_path: Path) -> None:
    (tmp_path / "crd.yaml").write_text(BASE)
    (crd,) = load_crds([tmp_path / "crd.yaml"]).crds
    assert crd.versions[0].served is True


@pytest.mark.parametrize("case", sorted(INVALID))
def test_schema_invalid_crd_is_refused_with_its_line(tmp_path: Path, case: str) -> None:
    text, line = invalid_crd(case)
    crd = tmp_path / "crd.yaml"
    crd.write_text(text)
    project = tmp_path / "op"
    result = run_cli("init", "--crd", crd, "--out", project)
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ")
    assert first.endswith(f"{crd}:{line}"), first
    assert not project.exists() or tree(project) == {}


def test_served_false_as_a_string_is_not_read_as_served(tmp_path: Path) -> None:
    """The bug: `bool("false")` is True, so a quoted false made the version served."""
    text, _ = invalid_crd("served as a string")
    (tmp_path / "crd.yaml").write_text(text)
    result = run_cli("explain", "--crd", tmp_path / "crd.yaml")
    assert result.exit_code == 2
    assert "`served` must be true or false, not 'false'" in result.stderr


def test_enum_beyond_the_bound_is_refused(tmp_path: Path) -> None:
    values = ", ".join(f"v{i}" for i in range(MAX_ENUM_VALUES + 1))
    text = BASE.replace("enum: [Pending, Ready]", f"enum: [{values}]")
    (tmp_path / "crd.yaml").write_text(text)
    result = run_cli("init", "--crd", tmp_path / "crd.yaml", "--out", tmp_path / "op")
    assert result.exit_code == 2
    assert f"has {MAX_ENUM_VALUES + 1:,} values, more than {MAX_ENUM_VALUES:,}" in result.stderr
    assert result.stderr.splitlines()[0].endswith(
        f":{BASE.splitlines().index('              phase:') + 3}"
    )


def test_object_with_too_many_properties_is_refused(tmp_path: Path) -> None:
    extra = "".join(f"              f{i}: {{type: integer}}\n" for i in range(MAX_PROPERTIES))
    text = BASE.replace("              size:\n", extra + "              size:\n")
    (tmp_path / "crd.yaml").write_text(text)
    result = run_cli("init", "--crd", tmp_path / "crd.yaml", "--out", tmp_path / "op")
    assert result.exit_code == 2
    assert f"more than {MAX_PROPERTIES:,}" in result.stderr


def test_an_invalid_value_is_shown_cut_short(tmp_path: Path) -> None:
    """A hostile value cannot flood the terminal through an error message."""
    huge = "[" + ", ".join(["Namespaced"] * 10_000) + "]"
    (tmp_path / "crd.yaml").write_text(BASE.replace("  scope: Namespaced", f"  scope: {huge}"))
    result = run_cli("init", "--crd", tmp_path / "crd.yaml", "--out", tmp_path / "op")
    assert result.exit_code == 2
    assert "invalid spec.scope ['Namespaced'" in result.stderr
    assert len(result.stderr) < 500
