"""A hostile CRD cannot inject code into generated files nor fake samples into the exposition."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from scaffold_helpers import imported_package, run_cli

PAYLOAD = "\"\"\"\nimport pathlib; pathlib.Path('PWNED').write_text('x')\n'''\n# \\"
# A kind has at most 63 characters (as Kubernetes bounds it): the same attack, shorter.
KIND_PAYLOAD = "\"\"\"\nopen('PWNED','w')\n'''\n# \\"

HOSTILE_KIND = json.dumps("Evil" + KIND_PAYLOAD)
HOSTILE_DESCRIPTION = json.dumps("Evil." + PAYLOAD + "\nmemcached_info 42")
HOSTILE_CRD = f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: evils.example.com
spec:
  group: example.com
  names:
    kind: {HOSTILE_KIND}
    plural: evils
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: {HOSTILE_DESCRIPTION}
"""


def test_hostile_kind_is_data_not_code(tmp_path: Path) -> None:
    (tmp_path / "crd.yaml").write_text(HOSTILE_CRD)
    result = run_cli("init", "--crd", tmp_path / "crd.yaml", "--out", tmp_path)
    assert result.exit_code == 0, result.stderr
    for path in (tmp_path / "pkg").rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    with imported_package(tmp_path) as package:
        (generator_class,) = package.GENERATORS
        assert generator_class.kind == "Evil" + KIND_PAYLOAD
        lines = "".join(
            s.render() for s in generator_class().generate({"metadata": {"name": 'a"}\n x 1'}})
        )
        exposition = "".join(f.text_header.decode() for f in generator_class.families) + lines
    assert not (tmp_path / "PWNED").exists()
    assert not Path("PWNED").exists()
    families = list(text_string_to_metric_families(exposition))
    samples = [s for f in families for s in f.samples]
    assert len(samples) == 1
    assert samples[0].labels[generator_class.families[0].label_names[1]] == 'a"}\n x 1'
