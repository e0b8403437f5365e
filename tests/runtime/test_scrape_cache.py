"""Scrape caches: an unchanged store or self-metrics registry is not regrouped or re-rendered,
and every change reaches the next scrape (a cache must never serve stale bytes)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from store_fakes import WidgetGenerator, widget

from scaffold_metrics.runtime.selfmetrics import OBJECTS, SelfMetrics
from scaffold_metrics.runtime.server import render_exposition
from scaffold_metrics.runtime.store import MetricsStore


def rendered_uncached(sm: SelfMetrics) -> bytes:
    """The self-metrics text of a fresh registry holding the same values (no cache to go stale)."""
    fresh = SelfMetrics()
    fresh._values = {f: dict(series) for f, series in sm._values.items()}
    return b"".join(body for _, body in fresh.families({("Widget", "default"): 1}))


def self_text(sm: SelfMetrics) -> bytes:
    return b"".join(body for _, body in sm.families({("Widget", "default"): 1}))


RECORDS: dict[str, Callable[[SelfMetrics], None]] = {
    "list": lambda sm: sm.record_list("Widget", "default", ok=False),
    "watch": lambda sm: sm.record_watch("Widget", None, ok=False),
    "event": lambda sm: sm.record_event("Widget", "MODIFIED"),
    "sync": lambda sm: sm.record_sync("Widget", "default", 1234.5),
    "list_mode": lambda sm: sm.record_list_mode("Widget", "default", "stream"),
    "generator_errors": lambda sm: sm.record_generator_errors("Widget", 2),
    "skipped": lambda sm: sm.record_skipped("Widget", "invalid_text"),
    "limited": lambda sm: sm.record_limited("Widget", 3, 1),
    "declare_kind": lambda sm: sm.declare_kind("Gadget"),
}


@pytest.mark.parametrize("record", RECORDS.values(), ids=RECORDS.keys())
def test_cached_self_metrics_text_changes_with_every_record(
    record: Callable[[SelfMetrics], None],
) -> None:
    sm = SelfMetrics()
    sm.declare_kind("Widget")
    before = self_text(sm)
    assert self_text(sm) == before  # served from the cache
    record(sm)
    after = self_text(sm)
    assert after != before
    assert after == rendered_uncached(sm)
    record(sm)  # a second change of the same series (a counter going 1 -> 2)
    assert self_text(sm) == rendered_uncached(sm)


def test_unchanged_self_metrics_are_not_rendered_again() -> None:
    sm = SelfMetrics()
    sm.record_event("Widget", "ADDED")
    first = dict(sm.families({("Widget", ""): 1}))
    second = dict(sm.families({("Widget", ""): 1}))
    assert all(second[f] is first[f] for f in first)  # the same bytes objects: no re-render


def test_objects_gauge_follows_the_counts_of_each_scrape() -> None:
    sm = SelfMetrics()
    assert dict(sm.families({("Widget", "a"): 1}))[OBJECTS] == (
        b'operator_metrics_objects{kind="Widget",namespace="a"} 1\n'
    )
    assert dict(sm.families({("Widget", "a"): 2}))[OBJECTS] == (
        b'operator_metrics_objects{kind="Widget",namespace="a"} 2\n'
    )
    assert dict(sm.families({}))[OBJECTS] == b""
    assert dict(sm.families())[OBJECTS] == b""


def new_store() -> MetricsStore:
    return MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics())


def body(store: MetricsStore) -> bytes:
    return render_exposition([store], store.self_metrics, openmetrics=False)


def same_objects_fresh(store: MetricsStore) -> MetricsStore:
    """A new store holding the same rendered objects, so its view has never been cached."""
    fresh = MetricsStore(WidgetGenerator(), self_metrics=store.self_metrics)
    for key, entry in store._objects.items():
        fresh._put(key, entry)
    return fresh


def test_unchanged_store_hands_out_its_cached_view() -> None:
    store = new_store()
    store.upsert(widget("a"))
    assert store.family_chunks() is store.family_chunks()


def test_every_store_change_reaches_the_next_scrape() -> None:
    store = new_store()
    steps: list[Callable[[], None]] = [
        lambda: store.upsert(widget("a")),
        lambda: store.upsert(widget("b", namespace="other")),
        lambda: store.upsert(widget("a", replicas=7)),
        lambda: store.delete(widget("b", namespace="other")),
        lambda: store.replace([widget("c"), widget("d")], "default"),
        lambda: store.replace([widget("e", namespace="other")], None),
        lambda: store.discard("no-such-key"),
        lambda: store.replace([], None),
    ]
    previous = body(store)
    for step in steps:
        step()
        now = body(store)
        assert now == body(same_objects_fresh(store))
        assert body(store) == now
        previous = now
    assert previous == body(new_store())


def test_merged_stores_do_not_grow_a_shared_view() -> None:
    """Two stores of one kind share families: merging must copy, not extend a cached view."""
    one, two = new_store(), new_store()
    one.upsert(widget("a"))
    two.upsert(widget("b"))
    view = [(f, tuple(chunks)) for f, chunks in one.family_chunks()]
    first = render_exposition([one, two], one.self_metrics, openmetrics=True)
    assert render_exposition([one, two], one.self_metrics, openmetrics=True) == first
    assert [(f, tuple(chunks)) for f, chunks in one.family_chunks()] == view


def test_unknown_watch_event_types_share_one_series() -> None:
    """A type the API does not define (a hostile or broken server) must not mint a series."""
    sm = SelfMetrics()
    for event_type in ("ADDED", "SURPRISE", 'x"} 1\nfake_metric 1', "SURPRISE"):
        sm.record_event("Widget", event_type)
    text = self_text(sm).decode()
    events = [line for line in text.splitlines() if "watch_events_total{" in line]
    assert events == [
        'operator_metrics_watch_events_total{kind="Widget",type="ADDED"} 1',
        'operator_metrics_watch_events_total{kind="Widget",type="UNKNOWN"} 3',
    ]
