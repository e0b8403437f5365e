"""Hostile custom resources in the store: a bad value costs its own series, never the object."""

from __future__ import annotations

from typing import Any

import pytest
from hostile_fakes import ThingGenerator, thing
from hypothesis import given, settings
from hypothesis import strategies as st
from prom_helpers import promtool_check
from prometheus_client.parser import text_string_to_metric_families

from scaffold_metrics.runtime import SampleSet
from scaffold_metrics.runtime.selfmetrics import GENERATOR_ERRORS, SelfMetrics
from scaffold_metrics.runtime.store import MetricsStore


def new_store(**options: Any) -> tuple[MetricsStore, SelfMetrics]:
    sm = SelfMetrics()
    return MetricsStore(ThingGenerator(), self_metrics=sm, **options), sm


def exposition(store: MetricsStore) -> bytes:
    out: list[bytes] = []
    store.write_to(out)
    return b"".join(out)


def families_of(store: MetricsStore, name: str = "a") -> set[str]:
    """Names of the families with a sample of the object `name`."""
    text = exposition(store)
    promtool_check(text)
    return {
        fam.name
        for fam in text_string_to_metric_families(text.decode())
        for s in fam.samples
        if s.labels.get("thing") == name
    }


EVERY_FAMILY = {
    "thing_info",
    "thing_created",
    "thing_spec_memory",
    "thing_spec_size",
    "thing_status_condition",
    "thing_labels",
    "thing_annotations",
}


@pytest.mark.parametrize(
    ("fields", "lost"),
    [
        ({"created": "0000-01-01T00:00:00Z"}, "thing_created"),  # year 0
        ({"created": "0000-01-01T00:00:00+01:00"}, "thing_created"),
        ({"memory": "1e400"}, "thing_spec_memory"),  # overflows a float
        ({"memory": "9" * 400}, "thing_spec_memory"),
        ({"memory": "1e" + "9" * 5000}, "thing_spec_memory"),  # past int()'s digit limit
        ({"memory": 10**400}, "thing_spec_memory"),
        ({"size": 10**400}, "thing_spec_size"),  # a 401-digit integer
        ({"size": -(10**400)}, "thing_spec_size"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_unreadable_value_costs_only_its_series(fields: dict[str, Any], lost: str) -> None:
    store, sm = new_store()
    store.upsert(thing("a", **fields))
    assert families_of(store) == EVERY_FAMILY - {lost}
    assert sm.value(GENERATOR_ERRORS, "Memcached") == 1


def test_huge_but_finite_quantity_suffixes_still_read() -> None:
    store, sm = new_store()
    store.upsert(thing("a", memory="1e-400"))  # underflows to 0: a value, not an error
    store.upsert(thing("b", memory="0e400"))
    assert "thing_spec_memory" in families_of(store, "a")
    assert "thing_spec_memory" in families_of(store, "b")
    assert sm.value(GENERATOR_ERRORS, "Memcached") == 0


# Anything JSON can hold, at its extremes: integers past float range, every float, any text
# (lone surrogates included, as the standard library decodes `"\\ud800"`).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats()
    | st.text()
    | st.sampled_from(["1e400", "0000-01-01T00:00:00Z", "9" * 400, "1Ei", "25%", "1e-99999"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_readers_never_raise_on_any_json_value(value: Any) -> None:
    """A reader meeting any value at any path gives samples or problems, never an exception."""
    generator = ThingGenerator()
    for obj in (
        thing("a", created=value, memory=value, size=value, conditions=value),
        thing("a", team=value, note=value),
        {"metadata": {"name": "a", "labels": value, "annotations": value}, "spec": value},
        {"metadata": {"name": "a"}, "status": value},
        {"metadata": {"name": "a"}, "status": {"conditions": [value, {"type": value}]}},
    ):
        result = generator.generate(obj)
        assert isinstance(result, SampleSet)
        assert all(isinstance(number, float) for _, _, number in result.raw)
