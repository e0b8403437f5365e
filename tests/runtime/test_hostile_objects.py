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
from scaffold_metrics.runtime.selfmetrics import (
    GENERATOR_ERRORS,
    OBJECTS_SKIPPED,
    SERIES_LIMITED,
    SelfMetrics,
)
from scaffold_metrics.runtime.store import (
    DEFAULT_MAX_LABEL_VALUE_LENGTH,
    DEFAULT_MAX_SERIES_PER_FAMILY,
    MetricsStore,
    cut_label_value,
)


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


# -- objects that cannot be rendered (item: poison objects) --------------------------------


def skipped(sm: SelfMetrics, reason: str) -> float | None:
    return sm.value(OBJECTS_SKIPPED, "Memcached", reason)


def names_in(store: MetricsStore) -> set[str]:
    text = exposition(store)
    promtool_check(text)
    return {
        s.labels["thing"]
        for fam in text_string_to_metric_families(text.decode())
        for s in fam.samples
    }


@pytest.mark.parametrize(
    "poison",
    [
        thing("bad\ud800name"),
        thing("bad", namespace="ns\udfff"),
        {**thing("bad"), "metadata": "a string"},
        {**thing("bad"), "metadata": ["a", "list"]},
        {**thing("bad"), "metadata": 7},
        "not even an object",
        ["a", "list"],
    ],
    ids=[
        "surrogate-name",
        "surrogate-namespace",
        "meta-str",
        "meta-list",
        "meta-int",
        "str",
        "list",
    ],
)
def test_unrenderable_object_is_skipped_and_counted_the_rest_goes_on(poison: Any) -> None:
    store, sm = new_store()
    store.replace([thing("a"), poison, thing("b")], None)  # raised before: the relist failed
    assert names_in(store) == {"a", "b"}
    assert len(store) == 2
    store.upsert(poison)  # a watch event: must not raise (the collector would replay it)
    store.delete(poison)
    store.upsert(thing("c"))
    assert names_in(store) == {"a", "b", "c"}
    reason = "invalid_text" if "surrogate" in repr(poison) or "\\ud" in repr(poison) else ""
    expected = {"invalid_text": 0.0, "invalid_metadata": 0.0}
    expected[reason or "invalid_metadata"] = 2.0
    assert {r: skipped(sm, r) for r in expected} == expected
    out: list[bytes] = []
    for _, body in sm.families():
        out.append(body)
    assert b'operator_metrics_objects_skipped_total{kind="Memcached"' in b"".join(out)


def test_poison_update_of_a_known_object_removes_its_old_series() -> None:
    store, sm = new_store()
    store.upsert(thing("a", uid="u1"))
    store.upsert(thing("a\ud800", uid="u1"))
    assert len(store) == 0
    assert skipped(sm, "invalid_text") == 1


@pytest.mark.parametrize(
    ("fields", "lost"),
    [
        ({"note": "x\ud800y"}, {"thing_annotations"}),
        ({"team": "\udc80"}, {"thing_labels"}),
        ({"conditions": [{"type": "Re\ud800dy", "status": "True"}]}, {"thing_status_condition"}),
    ],
    ids=["annotation", "label", "condition-type"],
)
def test_lone_surrogate_in_a_value_costs_only_its_series(
    fields: dict[str, Any], lost: set[str]
) -> None:
    store, sm = new_store()
    store.upsert(thing("a", **fields))
    assert families_of(store) == EVERY_FAMILY - lost
    assert skipped(sm, "invalid_text") == 0
    assert sm.value(GENERATOR_ERRORS, "Memcached") == (3 if "conditions" in fields else 1)


def test_surrogate_condition_type_keeps_the_other_conditions() -> None:
    store, _ = new_store()
    conditions = [{"type": "Bad\ud800", "status": "True"}, {"type": "Ready", "status": "False"}]
    store.upsert(thing("a", conditions=conditions))
    text = exposition(store).decode()
    assert 'type="Ready",status="False"} 1' in text
    assert "Bad" not in text


# -- per-object output bounds ----------------------------------------------------------------


def limited(sm: SelfMetrics, limit: str) -> float | None:
    return sm.value(SERIES_LIMITED, "Memcached", limit)


def samples_of(store: MetricsStore, family: str) -> list[dict[str, str]]:
    text = exposition(store)
    promtool_check(text)
    return [
        s.labels
        for fam in text_string_to_metric_families(text.decode())
        if fam.name == family
        for s in fam.samples
    ]


def test_series_per_family_per_object_are_bounded_and_counted() -> None:
    store, sm = new_store()
    conditions = [{"type": f"Type{i}", "status": "True"} for i in range(5000)]
    store.upsert(thing("a", conditions=conditions))  # 15,000 series before
    store.upsert(thing("b"))
    got = samples_of(store, "thing_status_condition")
    assert len([s for s in got if s["thing"] == "a"]) == DEFAULT_MAX_SERIES_PER_FAMILY
    assert [s for s in got if s["thing"] == "b"] == [
        {"namespace": "default", "thing": "b", "type": "Ready", "status": s}
        for s in ("True", "False", "Unknown")
    ]
    assert limited(sm, "series_per_family") == 15000 - DEFAULT_MAX_SERIES_PER_FAMILY
    assert families_of(store) == EVERY_FAMILY  # the other families of `a` are all there
    assert sm.value(GENERATOR_ERRORS, "Memcached") == 0


def test_label_value_length_is_bounded_and_counted() -> None:
    store, sm = new_store()
    huge = "x" * (1 << 20)  # a 1 MiB annotation
    store.upsert(thing("a", note=huge))
    (labels,) = samples_of(store, "thing_annotations")
    value = labels["annotation_note"]
    assert len(value) == DEFAULT_MAX_LABEL_VALUE_LENGTH
    assert value.startswith("x" * 1000)
    assert value == cut_label_value(huge, DEFAULT_MAX_LABEL_VALUE_LENGTH)
    assert limited(sm, "label_value_length") == 1
    assert len(exposition(store)) < 10_000


def test_cut_values_sharing_their_start_stay_distinct_series() -> None:
    store, _ = new_store(max_label_value_length=64)
    long = "A" * 100
    conditions = [{"type": long + "1", "status": "True"}, {"type": long + "2", "status": "True"}]
    store.upsert(thing("a", conditions=conditions))
    types = {s["type"] for s in samples_of(store, "thing_status_condition")}  # no duplicates
    assert len(types) == 2
    assert all(len(t) == 64 and t.startswith("A" * 50) for t in types)


def test_bounds_are_configurable_on_the_store() -> None:
    store, sm = new_store(max_series_per_family=5, max_label_value_length=16)
    conditions = [{"type": f"T{i}", "status": "True"} for i in range(3)]
    store.upsert(thing("a", conditions=conditions, note="n" * 17, team="t" * 16))
    assert len(samples_of(store, "thing_status_condition")) == 5
    assert len(samples_of(store, "thing_annotations")[0]["annotation_note"]) == 16
    assert samples_of(store, "thing_labels")[0]["label_team"] == "t" * 16  # at the bound: kept
    assert limited(sm, "series_per_family") == 4
    assert limited(sm, "label_value_length") == 1
    with pytest.raises(ValueError, match="max_series_per_family"):
        new_store(max_series_per_family=0)


def test_objects_within_the_bounds_render_exactly_as_before() -> None:
    """The bound checks change nothing below them (the fast path's bytes)."""
    store, sm = new_store(max_series_per_family=3, max_label_value_length=16)
    store.upsert(thing("a", note="n" * 16))
    assert families_of(store) == EVERY_FAMILY
    assert limited(sm, "series_per_family") == 0
    assert limited(sm, "label_value_length") == 0
