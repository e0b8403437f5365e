"""`line_function`: a family's compiled sample line renders exactly what its `%` format does."""

from __future__ import annotations

from typing import Any

import pytest

from scaffold_metrics.runtime import MetricFamilyDef, MetricType
from scaffold_metrics.runtime.families import line_function


class Loud(str):
    """A str subclass whose `str()` differs from its characters (as a str enum's may)."""

    def __str__(self) -> str:
        return "loud"

    def __format__(self, spec: str) -> str:
        return "formatted"


def family(labels: int) -> MetricFamilyDef:
    names = tuple(f"label_{i}" for i in range(labels))
    return MetricFamilyDef("ns:thing_total", "Things.", MetricType.COUNTER, names)


@pytest.mark.parametrize("labels", range(6))
@pytest.mark.parametrize("value", ["plain", 'q"uote\\\n', 7, None, Loud("quiet")], ids=repr)
def test_same_line_as_the_format(labels: int, value: Any) -> None:
    fam = family(labels)
    label_values = tuple(value for _ in range(labels))
    expected = fam._line_format % (*label_values, "1.5")
    assert line_function(fam)(label_values, "1.5") == expected


@pytest.mark.parametrize("label_values", [(), ("a",), ("a", "b", "c")], ids=repr)
def test_wrong_label_count_raises(label_values: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        line_function(family(2))(label_values, "1")
