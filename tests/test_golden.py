"""Whole generated trees compared byte for byte with the checked-in golden copies."""

from __future__ import annotations

from pathlib import Path

import pytest
from golden_cases import CASES, GOLDEN, render_case
from scaffold_helpers import tree


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_tree_matches_golden(case: str, tmp_path: Path) -> None:
    project = render_case(case, tmp_path)
    expected = tree(GOLDEN / case)
    actual = tree(project)
    assert sorted(actual) == sorted(expected), "file set differs: run python tests/golden_cases.py"
    for path, content in expected.items():
        assert actual[path] == content, f"{path} differs: run python tests/golden_cases.py"


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_is_byte_identical_across_runs(case: str, tmp_path: Path) -> None:
    first = tree(render_case(case, tmp_path / "a"))
    second = tree(render_case(case, tmp_path / "b"))
    assert first == second
