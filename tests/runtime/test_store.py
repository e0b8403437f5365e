"""MetricsStore: ingest semantics, error isolation, no retained objects, consistent snapshots."""

from __future__ import annotations

import gc
import logging
import threading
import weakref
from typing import Any

import pytest
from prom_helpers import promtool_check
from prometheus_client.parser import text_string_to_metric_families
from store_fakes import WIDGET_INFO, WIDGET_REPLICAS, WidgetGenerator, widget

from scaffold_metrics.runtime import MetricFamilyDef, MetricType, Sample
from scaffold_metrics.runtime.selfmetrics import GENERATOR_ERRORS, OBJECTS_SKIPPED, SelfMetrics
from scaffold_metrics.runtime.store import SKIPPED_INVALID_METADATA, MetricsStore


def new_store() -> tuple[MetricsStore, SelfMetrics]:
    sm = SelfMetrics()
    return MetricsStore(WidgetGenerator(), self_metrics=sm), sm


def exposition(store: MetricsStore) -> bytes:
    out: list[bytes] = []
    store.write_to(out)
    return b"".join(out)


def series(store: MetricsStore) -> dict[tuple[str, str, str], float]:
    """(sample name, namespace, name) -> value, parsed by prometheus_client."""
    text = exposition(store)
    promtool_check(text)
    result = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            key = (s.name, s.labels["namespace"], s.labels["name"])
            assert key not in result, f"duplicate series {key}"
            result[key] = s.value
    return result


def errors(sm: SelfMetrics) -> float | None:
    return sm.value(GENERATOR_ERRORS, "Widget")


def test_upsert_renders_every_family() -> None:
    store, sm = new_store()
    store.upsert(widget("a", replicas=3))
    store.upsert(widget("b", namespace="other", replicas=0))
    assert len(store) == 2
    assert series(store) == {
        ("widget_info", "default", "a"): 1,
        ("widget_info", "other", "b"): 1,
        ("widget_spec_replicas", "default", "a"): 3,
        ("widget_spec_replicas", "other", "b"): 0,
    }
    assert errors(sm) == 0  # declared at zero so rate() works from the start


def test_update_replaces_lines_and_drops_vanished_families() -> None:
    store, _ = new_store()
    store.upsert(widget("a", replicas=3))
    store.upsert(widget("a", replicas=5))
    assert series(store)[("widget_spec_replicas", "default", "a")] == 5
    store.upsert(widget("a", replicas=None))
    assert series(store) == {("widget_info", "default", "a"): 1}
    assert len(store) == 1


def test_delete_and_unknown_delete() -> None:
    store, _ = new_store()
    store.upsert(widget("a"))
    store.upsert(widget("b"))
    store.delete(widget("a"))
    store.delete(widget("never-seen"))
    assert len(store) == 1
    assert {k[2] for k in series(store)} == {"b"}


def test_key_is_uid_not_name() -> None:
    store, _ = new_store()
    store.upsert(widget("a", uid="1"))
    store.delete(widget("a", uid="2"))  # a recreated object with the same name is another uid
    assert len(store) == 1


def test_empty_store_still_emits_headers() -> None:
    store, _ = new_store()
    text = exposition(store)
    assert [f.name for f in text_string_to_metric_families(text.decode())] == [
        "widget_info",
        "widget_spec_replicas",
    ]
    promtool_check(text)


def test_replace_only_touches_its_scope() -> None:
    store, _ = new_store()
    store.upsert(widget("a1", namespace="a"))
    store.upsert(widget("a2", namespace="a"))
    store.upsert(widget("b1", namespace="b"))
    # relist of namespace a: a1 was deleted while disconnected, a3 is new, a2 changed
    store.replace([widget("a2", namespace="a", replicas=7), widget("a3", namespace="a")], "a")
    got = series(store)
    assert {(k[1], k[2]) for k in got} == {("a", "a2"), ("a", "a3"), ("b", "b1")}
    assert got[("widget_spec_replicas", "a", "a2")] == 7
    assert len(store) == 3


def test_replace_cluster_scope_replaces_everything() -> None:
    store, _ = new_store()
    store.upsert(widget("a1", namespace="a"))
    store.upsert(widget("b1", namespace="b"))
    store.replace([widget("c1", namespace="c")], None)
    assert {k[2] for k in series(store)} == {"c1"}
    store.replace([], None)
    assert len(store) == 0


def test_raising_generator_costs_only_that_object() -> None:
    store, sm = new_store()
    store.upsert(widget("good", replicas=2))
    store.upsert(widget("bad", replicas=2))
    store.upsert(widget("bad", replicas=2, explode=True))  # its old lines must go too
    assert {k[2] for k in series(store)} == {"good"}
    assert errors(sm) == 1
    assert len(store) == 2  # still known, so a later DELETED or relist removes it
    store.delete(widget("bad"))
    assert len(store) == 1


def test_problems_are_counted_and_cost_only_their_series() -> None:
    store, sm = new_store()
    store.upsert(widget("a", replicas="three"))
    assert series(store) == {("widget_info", "default", "a"): 1}
    assert errors(sm) == 1
    store.replace([widget("a", replicas="x"), widget("b", replicas=[1])], "default")
    assert errors(sm) == 3


def test_bad_samples_are_counted_not_rendered() -> None:
    stray = MetricFamilyDef("stray_family", "Not declared.", MetricType.GAUGE, ())

    class Sloppy(WidgetGenerator):
        def generate(self, obj: Any) -> Any:
            fam = WidgetGenerator.families[1]
            return [
                Sample(stray, (), 1),  # family not in `families`
                Sample(fam, ("only-one",), 1),  # wrong label count
                Sample(fam, ("ns", "n"), "NaN?"),  # type: ignore[arg-type]  # not a number
                Sample(fam, ("ns", "ok"), 4),
            ]

    sm = SelfMetrics()
    store = MetricsStore(Sloppy(), self_metrics=sm)
    store.upsert(widget("x"))
    assert series(store) == {("widget_spec_replicas", "ns", "ok"): 4}
    assert sm.value(GENERATOR_ERRORS, "Widget") == 3


def test_hostile_label_values_cannot_forge_samples() -> None:
    store, _ = new_store()
    hostile = 'x"} 1\n# HELP widget_info fake\nwidget_info{namespace="evil",name="e"} 1\n\\'
    store.upsert(widget(hostile, namespace='n"s\\', replicas=1))
    got = series(store)
    assert len(got) == 2
    assert ("widget_info", 'n"s\\', hostile) in got
    assert all(k[1] != "evil" for k in got)


@pytest.mark.parametrize(
    "odd", ['q"uote', "back\\slash", "new\nline", 'all "\\\n', 42, None], ids=repr
)
def test_an_object_renders_as_its_samples_line_by_line(odd: Any) -> None:
    """Whatever the label values, the object's bytes are its samples rendered one by one."""

    class Mixed(WidgetGenerator):
        def generate(self, obj: Any) -> Any:
            return [
                Sample(WIDGET_INFO, ("ns", "plain"), 1),
                Sample(WIDGET_REPLICAS, ("ns", odd), 2.5),
                Sample(WIDGET_INFO, (odd, "plain"), 1),
            ]

    store = MetricsStore(Mixed(), self_metrics=SelfMetrics())
    store.upsert(widget("x"))
    info = WIDGET_INFO.render_sample(("ns", "plain"), 1) + WIDGET_INFO.render_sample(
        (odd, "plain"), 1
    )
    replicas = WIDGET_REPLICAS.render_sample(("ns", odd), 2.5)
    assert store.family_bodies() == [
        (WIDGET_INFO, info.encode()),
        (WIDGET_REPLICAS, replicas.encode()),
    ]


@pytest.mark.parametrize("value", ["plain", 'q"uote'])
def test_label_values_in_an_iterator_render_as_before(value: str) -> None:
    """Label values are typed as a tuple; an iterator of them renders like a tuple."""

    class Lazy(WidgetGenerator):
        def generate(self, obj: Any) -> Any:
            return [
                Sample(WIDGET_INFO, iter(("ns", value)), 1),  # type: ignore[arg-type]
                Sample(WIDGET_INFO, ("ns", "plain"), 1),
            ]

    sm = SelfMetrics()
    store = MetricsStore(Lazy(), self_metrics=sm)
    store.upsert(widget("x"))
    lines = [WIDGET_INFO.render_sample(("ns", v), 1).encode() for v in (value, "plain")]
    # The careful path reads an iterator's values once, then escapes them like a tuple's.
    assert store.family_bodies()[0] == (WIDGET_INFO, b"".join(lines))
    assert errors(sm) == 0


class _Obj(dict):  # type: ignore[type-arg]  # a dict subclass can be weakly referenced
    pass


def test_store_keeps_no_reference_to_objects() -> None:
    store, _ = new_store()
    obj = _Obj(widget("a", replicas=2))
    ref = weakref.ref(obj)
    store.upsert(obj)
    store.replace([obj], "default")
    del obj
    gc.collect()
    assert ref() is None
    for entry in store._objects.values():  # rendered bytes per family, then the namespace
        assert all(isinstance(v, bytes) for v in entry[:-1]) and entry[-1] == "default"


def test_concurrent_writers_and_readers_see_consistent_snapshots() -> None:
    """Every snapshot has an info line for exactly the objects with a replicas line."""
    store, _ = new_store()
    stop = threading.Event()
    failures: list[str] = []

    def writer(ns: str) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            objs = [widget(f"w{j}", namespace=ns, replicas=i) for j in range(i % 7)]
            store.replace(objs, ns)
            store.upsert(widget("extra", namespace=ns, replicas=i))
            store.delete(widget("extra", namespace=ns))

    def reader() -> None:
        for _ in range(300):
            bodies = dict(store.family_bodies())
            info = {line.split(b"}")[0] for line in bodies[store.families[0]].splitlines()}
            reps = {line.split(b"}")[0] for line in bodies[store.families[1]].splitlines()}
            info = {x.replace(b"widget_info", b"") for x in info}
            reps = {x.replace(b"widget_spec_replicas", b"") for x in reps}
            if info != reps:
                failures.append(f"{info} != {reps}")

    writers = [threading.Thread(target=writer, args=(ns,)) for ns in ("a", "b", "c")]
    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in writers + readers:
        t.start()
    for t in readers:
        t.join()
    stop.set()
    for t in writers:
        t.join()
    assert not failures, failures[:3]


def test_generator_errors_are_logged_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    store, sm = new_store()
    with caplog.at_level(logging.WARNING, logger="scaffold_metrics.runtime.store"):
        for i in range(50):
            store.upsert(widget(f"bad{i}", explode=True))
    assert errors(sm) == 50
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "Widget default/bad0" in messages[0] and "generator exploded" in messages[0]


def test_counts_by_namespace_follow_upserts_deletes_moves_and_relists() -> None:
    store = MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics())
    a, b = widget("a", namespace="x"), widget("b", namespace="y")
    store.upsert(a)
    store.upsert(b)
    store.upsert(widget("c", namespace="y"))
    store.upsert(a)  # an update is not a new object
    assert store.counts_by_namespace() == {"x": 1, "y": 2}
    store.delete(b)
    assert store.counts_by_namespace() == {"x": 1, "y": 1}
    store.replace([], "y")
    assert store.counts_by_namespace() == {"x": 1}
    store.replace([widget("d", namespace="z")], None)
    assert store.counts_by_namespace() == {"z": 1}
    assert len(store) == sum(store.counts_by_namespace().values())


def test_replacement_serves_the_old_state_until_commit() -> None:
    """A relist filled page by page: scrapes see the old objects until `commit` swaps."""
    store, _ = new_store()
    store.upsert(widget("old", namespace="a"))
    before = exposition(store)
    replacement = store.begin_replace(None)
    replacement.add([widget("n1", namespace="a")])
    replacement.add(iter([widget("n2", namespace="b", replicas=4)]))
    assert exposition(store) == before and len(store) == 1
    assert len(replacement) == 2
    replacement.commit()
    assert {(k[1], k[2]) for k in series(store)} == {("a", "n1"), ("b", "n2")}
    assert store.counts_by_namespace() == {"a": 1, "b": 1}
    with pytest.raises(RuntimeError):
        replacement.commit()


def test_replacement_dropped_without_commit_changes_nothing() -> None:
    store, _ = new_store()
    store.upsert(widget("a"))
    before = exposition(store)
    replacement = store.begin_replace(None)
    replacement.add([widget("b"), widget("c")])
    del replacement
    assert exposition(store) == before
    assert store.counts_by_namespace() == {"default": 1}


def test_replacement_of_a_scope_keeps_other_namespaces_and_counts_duplicates_once() -> None:
    store, _ = new_store()
    store.upsert(widget("a1", namespace="a"))
    store.upsert(widget("b1", namespace="b"))
    replacement = store.begin_replace("a")
    replacement.add([widget("a2", namespace="a", replicas=1)])
    replacement.add([widget("a2", namespace="a", replicas=2)])  # listed twice: the last wins
    replacement.commit()
    got = series(store)
    assert {(k[1], k[2]) for k in got} == {("a", "a2"), ("b", "b1")}
    assert got[("widget_spec_replicas", "a", "a2")] == 2
    assert store.counts_by_namespace() == {"a": 1, "b": 1}
    whole = store.begin_replace(None)
    whole.add([widget("x", namespace="a", uid="u"), widget("x", namespace="c", uid="u")])
    whole.commit()
    assert store.counts_by_namespace() == {"c": 1} and len(store) == 1


def test_replacement_renders_the_same_bytes_as_upserts() -> None:
    objs = [widget(f"w{i}", namespace=f"ns{i % 3}", replicas=i) for i in range(20)]
    upserted, _ = new_store()
    for obj in objs:
        upserted.upsert(obj)
    paged, _ = new_store()
    paged.upsert(widget("gone"))
    replacement = paged.begin_replace(None)
    for start in range(0, len(objs), 7):
        replacement.add(objs[start : start + 7])
    replacement.commit()
    assert exposition(paged) == exposition(upserted)
    assert paged.counts_by_namespace() == upserted.counts_by_namespace()


def test_relist_of_unchanged_objects_keeps_the_entries_held() -> None:
    """An object rendered to the bytes already held keeps the store's entry: a relist of an
    unchanged store holds one copy of the text, not two."""
    store, _ = new_store()
    store.replace([widget("a"), widget("b", replicas=1)], None)
    held = dict(store._objects)
    store.replace([widget("a"), widget("b", replicas=2)], None)
    assert store._objects[widget("a")["metadata"]["uid"]] is held[widget("a")["metadata"]["uid"]]
    changed = store._objects[widget("b")["metadata"]["uid"]]
    assert changed is not held[widget("b")["metadata"]["uid"]]
    assert b"} 2\n" in b"".join(changed[:-1])


def test_replacement_skips_unreadable_objects_and_counts_them() -> None:
    store, sm = new_store()
    replacement = store.begin_replace(None)
    replacement.add([{"metadata": "not an object"}, widget("ok")])  # type: ignore[list-item]
    replacement.commit()
    assert len(store) == 1
    assert sm.value(OBJECTS_SKIPPED, "Widget", SKIPPED_INVALID_METADATA) == 1
