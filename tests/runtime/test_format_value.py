"""`format_value`: sample values as both exposition formats accept them."""

from __future__ import annotations

import pytest

from scaffold_metrics.runtime.exposition import format_value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (True, "1"),
        (12, "12"),
        (-5.0, "-5"),
        (1_795_000_000.0, "1795000000"),
        (999_999_999_999_999.0, "999999999999999"),
        (1e15, "1000000000000000.0"),
        (-1e15, "-1000000000000000.0"),
        (10**20, "1e+20"),
        (0.5, "0.5"),
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
    ],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text
