"""Value readers walk object paths the same way whatever they meet on the way."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from scaffold_metrics.runtime import MetricFamilyDef, MetricType, SampleSet
from scaffold_metrics.runtime.values import read_conditions, read_number

SIZE = MetricFamilyDef("thing_spec_size", "Size.", MetricType.GAUGE, ("name",))
CONDITION = MetricFamilyDef(
    "thing_status_condition", "Conditions.", MetricType.GAUGE, ("name", "type", "status")
)


class Frozen(Mapping[str, Any]):
    """A Mapping that is not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def size_of(obj: Mapping[str, Any]) -> tuple[list[Any], list[str]]:
    samples = SampleSet()
    read_number(samples, SIZE, ("a",), obj, ("spec", "size"))
    return samples.raw, samples.problems


@pytest.mark.parametrize(
    "obj",
    [{"spec": {"size": 3}}, Frozen({"spec": {"size": 3}}), {"spec": MappingProxyType({"size": 3})}],
    ids=["dicts", "mapping-root", "mapping-inside"],
)
def test_mappings_are_read_like_dicts(obj: Mapping[str, Any]) -> None:
    assert size_of(obj) == ([(SIZE, ("a",), 3.0)], [])


@pytest.mark.parametrize("obj", [{}, {"spec": None}, {"spec": {}}, {"spec": {"size": None}}])
def test_absent_or_null_gives_nothing(obj: Mapping[str, Any]) -> None:
    assert size_of(obj) == ([], [])


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ([1], "thing_spec_size: spec.size: 'size' is under a list"),
        ("big", "thing_spec_size: spec.size: 'size' is under a str"),
        ({"size": "3"}, "thing_spec_size: spec.size: unexpected str value"),
        ({"size": True}, "thing_spec_size: spec.size: unexpected bool value"),
    ],
)
def test_wrong_types_are_problems(spec: Any, problem: str) -> None:
    assert size_of({"spec": spec}) == ([], [problem])


def test_conditions_are_read_through_mappings_too() -> None:
    conditions = [{"type": "Ready", "status": "True"}]
    for obj in (
        {"status": {"conditions": conditions}},
        Frozen({"status": {"conditions": conditions}}),
    ):
        samples = SampleSet()
        read_conditions(samples, CONDITION, ("a",), obj, ("status", "conditions"))
        assert samples.raw == [
            (CONDITION, ("a", "Ready", "True"), 1.0),
            (CONDITION, ("a", "Ready", "False"), 0.0),
            (CONDITION, ("a", "Ready", "Unknown"), 0.0),
        ]
