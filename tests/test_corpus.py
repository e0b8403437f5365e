"""Every real CRD of the corpus scaffolds, imports, and gives the `_info` sample per kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from scaffold_helpers import CORPUS_FILES, copy_crd, imported_package, run_cli

from scaffold_metrics.crd import load_crds
from scaffold_metrics.naming import kind_label_name, snake_case


@pytest.mark.parametrize("crd_file", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_crd_scaffolds_and_generators_give_info(crd_file: Path, tmp_path: Path) -> None:
    copy_crd(crd_file, tmp_path, crd_file.name)
    result = run_cli("init", "--crd", tmp_path / crd_file.name, "--out", tmp_path)
    assert result.exit_code == 0, result.stderr
    crds = load_crds([crd_file]).crds
    with imported_package(tmp_path) as package:
        generators = {g.kind: g for g in package.GENERATORS}
        assert sorted(generators) == sorted(c.kind for c in crds)
        for crd in crds:
            generator = generators[crd.kind]
            metadata = {"name": "sample-1", "namespace": "ns-1", "uid": "u-1"}
            obj = {"apiVersion": f"{crd.group}/{generator.version}", "kind": crd.kind}
            samples = list(generator().generate({**obj, "metadata": metadata}))
            info = [s for s in samples if s.family.name.endswith("_info")]
            assert len(info) == 1
            label = kind_label_name(snake_case(crd.kind))
            if crd.namespaced:
                expected = f'{snake_case(crd.kind)}_info{{namespace="ns-1",{label}="sample-1"}} 1\n'
            else:
                expected = f'{snake_case(crd.kind)}_info{{{label}="sample-1"}} 1\n'
            assert info[0].render() == expected
            assert generator.plural == crd.plural and generator.group == crd.group
