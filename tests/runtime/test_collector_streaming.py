"""Streaming lists (a WATCH with sendInitialEvents) against a Kubernetes API, and the fallback
to the paged LIST where the server refuses or ignores them.

Against the test double by default, a real control plane when `KUBEBUILDER_ASSETS` is set (see
`kube_fixtures.py`; the refusing server is then a second control plane with the WatchList
feature gate off). The helpers of `test_collector.py` are shared.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import kube_fixtures
import pytest
from kube_fixtures import MEMCACHED, WIDGETS, ApiBackend, make_obj
from kubeapi_double import KubeApiDouble
from tcp_proxy import TcpProxy
from test_collector import (
    FAST,
    FakeStore,
    RecordingSelfMetrics,
    eventually,
    proxied,
    proxied_reader,
    thing_collector,
    thing_names,
)

from scaffold_metrics.runtime.collector import Collector
from scaffold_metrics.runtime.entry import MetricsSetupError, metrics_settings
from scaffold_metrics.runtime.selfmetrics import LIST_MODE, LIST_REQUESTS, SelfMetrics
from scaffold_metrics.runtime.store import MetricsStore

control_plane = kube_fixtures.control_plane
control_plane_without_watch_list = kube_fixtures.control_plane_without_watch_list
kube = kube_fixtures.kube
kube_without_watch_list = kube_fixtures.kube_without_watch_list
cached_control_plane = kube_fixtures.cached_control_plane
kube_watch_cache = kube_fixtures.kube_watch_cache
double_only = kube_fixtures.double_only

STREAM: dict[str, Any] = {**FAST, "list_mode": "auto", "initial_events_timeout": 1.0}
STREAMING_QUERY = {
    "watch": "1",
    "sendInitialEvents": "true",
    "resourceVersionMatch": "NotOlderThan",
    "allowWatchBookmarks": "true",
}


@pytest.fixture
def running() -> Iterator[Any]:
    """Start collectors and always stop them, so no thread outlives its test."""
    started: list[Collector] = []

    def start(*collectors: Collector) -> None:
        for c in collectors:
            started.append(c)
            c.start()

    yield start
    for c in started:
        c.stop()


def collector(kube: ApiBackend, store: Any, **options: Any) -> Collector:
    spec = MEMCACHED
    return Collector(
        kube.api_client(), spec.group, spec.version, spec.plural, spec.kind, None, store,
        **{**STREAM, **options},
    )  # fmt: skip


def sample_lines(store: MetricsStore) -> list[bytes]:
    out: list[bytes] = []
    store.write_to(out)
    return sorted(line for line in b"".join(out).splitlines() if not line.startswith(b"#"))


def the_double(kube: ApiBackend) -> KubeApiDouble:
    """The double behind a `double_only` backend."""
    assert kube.double is not None
    return kube.double


def full_lists(double: KubeApiDouble) -> list[Any]:
    """LISTs of a whole state: not the one-item LIST that checks the server's history before a
    watch resumes (`Collector._verify_history`)."""
    return [r for r in double.list_requests() if r.query != {"limit": "1"}]


def refused_while_away(double: KubeApiDouble) -> bool:
    """The collector's last request (a resumed watch, or the history check before it) got 403."""
    with double._cond:
        mine = [r for r in double.requests if r.verb in ("list", "watch")]
    return bool(mine) and mine[-1].status == 403


def streaming_watches(kube: ApiBackend) -> list[Any]:
    double = the_double(kube)
    return [r for r in double.watch_requests() if "sendInitialEvents" in r.query]


def test_streaming_sync_gives_the_same_scrape_as_the_paged_path(
    kube_watch_cache: ApiBackend, running: Any
) -> None:
    for i in range(40):
        obj = make_obj(MEMCACHED, f"m-{i:02d}", ("default", "other")[i % 2], size=i % 5)
        kube_watch_cache.create(obj)
    streamed, store, sm = thing_collector(kube_watch_cache, **STREAM)
    running(streamed)
    assert streamed.wait_for_sync(20)
    assert streamed.sync_mode == "stream"
    assert sm.value(LIST_MODE, "Memcached", "", "stream") == 1
    assert sm.value(LIST_MODE, "Memcached", "", "paged") == 0
    assert sm.value(LIST_REQUESTS, "Memcached", "") is None, "no LIST"
    # the same stream goes on as the watch
    obj = kube_watch_cache.create(make_obj(MEMCACHED, "late", "default", size=3))
    obj["spec"] = {"size": 4}
    kube_watch_cache.update(obj)
    kube_watch_cache.delete(make_obj(MEMCACHED, "m-01", "other"))
    paged, paged_store, _ = thing_collector(kube_watch_cache, **{**STREAM, "list_mode": "paged"})
    running(paged)
    assert paged.wait_for_sync(20)
    assert paged.sync_mode == "paged"
    eventually(lambda: sample_lines(store) == sample_lines(paged_store), what="same scrape")
    assert len(store) == 40
    if kube_watch_cache.double is not None:
        double = kube_watch_cache.double
        watches = double.watch_requests()
        first = watches[0]
        assert {k: v for k, v in first.query.items() if k != "timeoutSeconds"} == STREAMING_QUERY
        assert "resourceVersion" not in first.query, "most recent: a consistent read"
        assert (
            len(streaming_watches(kube_watch_cache)) == 1
        ), "one request: the sync, then the watch"
        lists = double.list_requests()
        assert lists and all("sendInitialEvents" not in r.query for r in watches[1:])
        assert all(r.time > first.time for r in lists), "only the paged collector lists"


def test_410_mid_watch_resyncs_by_streaming_and_drops_objects_deleted_meanwhile(
    kube_watch_cache: ApiBackend, running: Any
) -> None:
    """On the double and a real server alike: RBAC keeps the collector away while things
    change and history is compacted; its resumed watch then gets 410 and it syncs again."""
    keep = kube_watch_cache.create(make_obj(MEMCACHED, "keep", "default"))
    gone = kube_watch_cache.create(make_obj(MEMCACHED, "gone", "default"))
    kube_watch_cache.grant(MEMCACHED, None)
    store = FakeStore()
    metrics = RecordingSelfMetrics()
    with TcpProxy(kube_watch_cache.host) as proxy:
        col = collector(kube_watch_cache, store)
        col.api_client = proxied_reader(kube_watch_cache, proxy)
        col.self_metrics = metrics
        running(col)
        assert col.wait_for_sync(10)
        time.sleep(0.3)  # the watch is open
        kube_watch_cache.revoke(None)
        proxy.drop_connections()
        eventually(
            lambda: {("watch", "Memcached", "", False), ("list", "Memcached", "", False)}
            & set(metrics.calls),
            what="403",
        )
        kube_watch_cache.delete(gone)
        kube_watch_cache.create(make_obj(MEMCACHED, "new", "default"))
        kube_watch_cache.compact()
        kube_watch_cache.grant(MEMCACHED, None)
        eventually(lambda: store.names() == {"default/keep", "default/new"}, what="resync")
    assert store.replaces == [None, None]
    assert keep["metadata"]["uid"] in store.objs
    assert [c for c in metrics.calls if c[0] == "sync"] == [("sync", "Memcached", "")] * 2
    # the only lists are the one-item history checks before resuming, refused while away
    assert {c for c in metrics.calls if c[0] == "list"} <= {("list", "Memcached", "", False)}
    assert col.sync_mode == "stream"
    if kube_watch_cache.double is not None:
        assert full_lists(kube_watch_cache.double) == []
        assert [r.status for r in streaming_watches(kube_watch_cache)][-1] == 200


class RecordingStore(FakeStore):
    """A `FakeStore` that keeps the names of every state it was replaced with."""

    def __init__(self) -> None:
        super().__init__()
        self.states: list[set[str]] = []

    def replace(self, objs: Any, scope: str | None) -> None:
        objs = list(objs)
        self.states.append({f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objs})
        super().replace(objs, scope)


def test_streamed_objects_are_rendered_a_page_at_a_time(
    double_only: ApiBackend, running: Any
) -> None:
    """The initial ADDED objects go to the store's replacement in pages of `page_size`, so
    a sync never holds more decoded objects than that; the store swaps at the bookmark."""
    for i in range(12):
        double_only.create(make_obj(MEMCACHED, f"m-{i:02d}", "default"))
    store = FakeStore()
    col = collector(double_only, store, page_size=5)
    running(col)
    assert col.wait_for_sync(10)
    assert col.sync_mode == "stream"
    assert store.added == [5, 5, 2]
    assert store.replaces == [None] and len(store) == 12


def test_stream_cut_before_the_end_bookmark_publishes_nothing(
    double_only: ApiBackend, running: Any
) -> None:
    double = the_double(double_only)
    for name in ("a", "b", "c"):
        double_only.create(make_obj(MEMCACHED, name, "default"))
    double.cut_initial_events(after=2)  # the first sync breaks off after a and b
    store = RecordingStore()
    col = collector(double_only, store)
    running(col)
    assert col.wait_for_sync(10)
    assert store.states == [{"default/a", "default/b", "default/c"}], "a and b alone: never"
    # away (403) while b goes and d comes, then a 410; the resync breaks off after one
    # object too, and is retried
    double.forbid(None)
    double.drop_connections()
    eventually(lambda: refused_while_away(double), what="403 while away")
    double_only.delete(make_obj(MEMCACHED, "b", "default"))
    double_only.create(make_obj(MEMCACHED, "d", "default"))
    double.compact()
    double.cut_initial_events(after=1)
    double.allow(None)
    eventually(lambda: len(store.states) == 2, what="resync")
    assert store.states[1] == {"default/a", "default/c", "default/d"}
    assert [r.status for r in streaming_watches(double_only)] == [
        200
    ] * 4, "cut, synced, cut, synced"
    assert full_lists(double) == []
    assert col.sync_mode == "stream", "a broken connection is no reason to fall back"


def test_streams_that_end_before_the_bookmark_fall_back_only_if_none_completed(
    double_only: ApiBackend, running: Any
) -> None:
    """Two streams in a row ending before their end bookmark, with no other sign: a server
    that ignores streaming lists, for a collector that never completed one; a network
    problem, retried, for one that did."""
    double = the_double(double_only)
    double_only.create(make_obj(MEMCACHED, "a", "default"))
    double.cut_initial_events(after=1, count=2, clean=True)
    fresh = collector(double_only, FakeStore())
    running(fresh)
    assert fresh.wait_for_sync(10)
    assert fresh.sync_mode == "paged"
    assert len(streaming_watches(double_only)) == 2
    fresh.stop()
    store = FakeStore()
    streamed = collector(double_only, store)
    running(streamed)
    assert streamed.wait_for_sync(10) and streamed.sync_mode == "stream"
    double.forbid(None)  # away, a 410, then three resyncs that end early
    double.drop_connections()
    eventually(lambda: refused_while_away(double), what="403 while away")
    double_only.create(make_obj(MEMCACHED, "b", "default"))
    double.compact()
    double.cut_initial_events(after=1, count=3, clean=True)
    double.allow(None)
    eventually(lambda: store.names() == {"default/a", "default/b"}, what="resync")
    assert streamed.sync_mode == "stream"
    assert len(streaming_watches(double_only)) == 2 + 1 + 4
    assert len(full_lists(double)) == 1, "only the first collector's"


def test_fallback_to_paged_list_when_the_server_refuses_streaming_lists(
    kube_without_watch_list: ApiBackend, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """On the double and a real server alike (the WatchList feature gate off: 422)."""
    caplog.set_level(logging.INFO, logger="scaffold_metrics.runtime")
    kube = kube_without_watch_list
    kube.create(make_obj(MEMCACHED, "a", "default"))
    store = MetricsStore(_thing_generator(), self_metrics=SelfMetrics())
    col = collector(kube, store)
    running(col)
    assert col.wait_for_sync(10)
    assert col.sync_mode == "paged"
    assert len(store) == 1
    sm = store.self_metrics
    assert sm.value(LIST_MODE, "Memcached", "", "paged") == 1
    assert sm.value(LIST_MODE, "Memcached", "", "stream") == 0
    assert sm.value(LIST_REQUESTS, "Memcached", "") == 1
    kube.create(make_obj(MEMCACHED, "b", "default"))
    eventually(lambda: len(store) == 2, what="the watch after the list")
    notes = [r.getMessage() for r in caplog.records if "streaming lists" in r.getMessage()]
    assert len(notes) == 1, notes
    assert "does not do streaming lists" in notes[0] and "422" in notes[0]
    assert "WatchList feature gate" in notes[0], "the server's own words"
    if kube.double is not None:
        double = kube.double
        # remembered: a resync after a 410 lists again without asking for a stream
        double.forbid(None)
        double.drop_connections()
        eventually(lambda: refused_while_away(double), what="403 while away")
        kube.create(make_obj(MEMCACHED, "c", "default"))
        double.compact()
        double.allow(None)
        eventually(lambda: len(full_lists(double)) == 2, what="relist after 410")
        eventually(lambda: len(store) == 3, what="c")
        assert [r.status for r in streaming_watches(kube)] == [422]


def _thing_generator() -> Any:
    from hostile_fakes import ThingGenerator

    return ThingGenerator()


def test_after_the_retry_interval_a_resync_tries_streaming_again(
    double_only: ApiBackend, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The server turned the feature on after the fallback: the next sync due after
    `stream_retry_interval` streams; before it, and when still refused, it lists."""
    caplog.set_level(logging.INFO, logger="scaffold_metrics.runtime")
    double = the_double(double_only)
    double.watch_list = "disabled"
    double_only.create(make_obj(MEMCACHED, "a", "default"))
    store = MetricsStore(_thing_generator(), self_metrics=SelfMetrics())
    col = collector(double_only, store, stream_retry_interval=0.5)
    running(col)
    assert col.wait_for_sync(10) and col.sync_mode == "paged"

    def resync(name: str) -> None:  # away (403), a change, a 410 on return
        double.forbid(None)
        double.drop_connections()
        eventually(lambda: refused_while_away(double), what="403 while away")
        double_only.create(make_obj(MEMCACHED, name, "default"))
        double.compact()
        double.allow(None)
        eventually(lambda: name in thing_names(store), what=name)

    time.sleep(0.6)
    resync("b")  # still refused: one more 422, then the list
    assert col.sync_mode == "paged"
    assert [r.status for r in streaming_watches(double_only)] == [422, 422]
    assert len(full_lists(double)) == 2
    double.watch_list = "enabled"
    time.sleep(0.6)
    resync("c")
    assert col.sync_mode == "stream"
    assert store.self_metrics.value(LIST_MODE, "Memcached", "", "stream") == 1
    assert len(full_lists(double)) == 2, "streamed"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len([r for r in warnings if "streaming lists" in r.getMessage()]) == 1, "said once"
    assert any("does streaming lists now" in r.getMessage() for r in caplog.records)


def test_servers_before_v1_27_are_refused_too(double_only: ApiBackend, running: Any) -> None:
    """v1.19-v1.26 answer 422 for resourceVersionMatch on a watch: the same fallback."""
    double = the_double(double_only)
    double.watch_list = "legacy"
    double_only.create(make_obj(MEMCACHED, "a", "default"))
    col = collector(double_only, FakeStore())
    running(col)
    assert col.wait_for_sync(10)
    assert col.sync_mode == "paged"
    assert [r.status for r in streaming_watches(double_only)] == [422]


@pytest.mark.parametrize("bookmarks", [True, False], ids=["plain-bookmark", "silence"])
def test_fallback_when_the_server_ignores_streaming_lists(
    double_only: ApiBackend, running: Any, bookmarks: bool
) -> None:
    """A server that drops the parameters sends a plain watch: ADDED of the state, never the
    end bookmark. A plain bookmark is proof at once; silence only after two attempts."""
    double = the_double(double_only)
    double.watch_list = "unknown"
    double.bookmark_interval = 0.2 if bookmarks else 60.0
    double_only.create(make_obj(MEMCACHED, "a", "default"))
    store = FakeStore()
    col = collector(double_only, store, initial_events_timeout=0.5)
    running(col)
    assert col.wait_for_sync(10)
    assert col.sync_mode == "paged"
    assert store.names() == {"default/a"}
    assert len(streaming_watches(double_only)) == (1 if bookmarks else 2)
    assert len(full_lists(double)) == 1
    assert store.replaces == [None], "the ADDED of the ignored stream were never published"


def test_a_live_change_before_the_end_bookmark_means_a_plain_watch(
    double_only: ApiBackend, running: Any
) -> None:
    double = the_double(double_only)
    double.watch_list = "unknown"
    double.bookmark_interval = 60.0
    obj = double_only.create(make_obj(MEMCACHED, "a", "default"))
    col = collector(double_only, FakeStore(), initial_events_timeout=5.0)
    running(col)
    eventually(lambda: len(double.watch_requests()) == 1, what="streaming list asked")
    time.sleep(0.2)
    obj["spec"] = {"size": 2}
    double_only.update(obj)  # a MODIFIED: no streaming list has one before its end bookmark
    assert col.wait_for_sync(3), "fell back at once, not after the silence"
    assert col.sync_mode == "paged"


def test_forced_stream_mode_never_falls_back(
    double_only: ApiBackend, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="scaffold_metrics.runtime")
    double = the_double(double_only)
    double.watch_list = "disabled"
    col = collector(double_only, FakeStore(), list_mode="stream")
    running(col)
    eventually(lambda: len(streaming_watches(double_only)) >= 3, what="retries")
    assert not col.has_synced and col.sync_mode == "stream"
    assert full_lists(double) == []
    warnings = [r.getMessage() for r in caplog.records if "streaming lists" in r.getMessage()]
    assert len(warnings) == 1, "rate-limited"
    assert "set list_mode (METRICS_LIST_MODE) to auto or paged" in warnings[0]
    double.watch_list = "enabled"
    assert col.wait_for_sync(10)


def test_a_crd_not_installed_yet_is_no_reason_to_fall_back(
    kube_watch_cache: ApiBackend, running: Any
) -> None:
    col = Collector(
        kube_watch_cache.api_client(), WIDGETS.group, WIDGETS.version, WIDGETS.plural, WIDGETS.kind,
        "default", FakeStore(), **STREAM,
    )  # fmt: skip
    running(col)
    time.sleep(0.5)  # 404s meanwhile
    kube_watch_cache.install_crd(WIDGETS)
    kube_watch_cache.create(make_obj(WIDGETS, "w", "default", colour="blue"))
    assert col.wait_for_sync(20)
    assert col.sync_mode == "stream"
    eventually(lambda: len(col.store) == 1, what="widget")


def test_stream_through_a_proxy_resumes_as_a_watch_after_a_dropped_connection(
    kube_watch_cache: ApiBackend, running: Any
) -> None:
    """After the sync, a broken connection resumes from the last resourceVersion (a plain
    watch), not with a new streaming list (both backends)."""
    store = FakeStore()
    with TcpProxy(kube_watch_cache.host) as proxy:
        col = collector(kube_watch_cache, store)
        col.api_client = proxied(kube_watch_cache, proxy)
        metrics = RecordingSelfMetrics()
        col.self_metrics = metrics
        running(col)
        assert col.wait_for_sync(10)
        kube_watch_cache.create(make_obj(MEMCACHED, "a", "default"))
        eventually(lambda: store.names() == {"default/a"})
        seen = col.resource_version
        opened = proxy.accepted
        proxy.drop_connections()
        eventually(lambda: proxy.accepted > opened, what="reconnect")
        kube_watch_cache.create(make_obj(MEMCACHED, "b", "default"))
        eventually(lambda: store.names() == {"default/a", "default/b"})
    assert [c for c in metrics.calls if c[0] == "sync"] == [("sync", "Memcached", "")]
    if kube_watch_cache.double is not None:
        resumed = kube_watch_cache.double.watch_requests()[1]
        assert resumed.query["resourceVersion"] == seen
        assert "sendInitialEvents" not in resumed.query


def test_list_mode_option_and_environment() -> None:
    assert metrics_settings(8080, environ={}).list_mode == "auto"
    assert metrics_settings(8080, environ={"METRICS_LIST_MODE": " Paged "}).list_mode == "paged"
    assert metrics_settings(8080, environ={"METRICS_LIST_MODE": "stream"}).list_mode == "stream"
    with pytest.raises(MetricsSetupError, match="METRICS_LIST_MODE='chunked' is not one of"):
        metrics_settings(8080, environ={"METRICS_LIST_MODE": "chunked"})
    with pytest.raises(ValueError, match="list_mode must be one of auto, stream, paged"):
        Collector(None, "g", "v1", "things", "Thing", None, FakeStore(), list_mode="chunked")


def test_after_the_end_bookmark_the_stream_waits_as_long_as_any_watch(
    double_only: ApiBackend,
) -> None:
    """The short initial-events timeout ends at the bookmark: a later silence longer than it
    is no idle stream."""
    import threading

    from scaffold_metrics.runtime.kubeclient import resource_path
    from scaffold_metrics.runtime.watch import InitialEventsIncomplete, watch_events

    double = the_double(double_only)
    double.bookmark_interval = 60.0
    double_only.create(make_obj(MEMCACHED, "a", "default"))
    path = resource_path(MEMCACHED.group, MEMCACHED.version, MEMCACHED.plural, None)
    later = threading.Timer(1.0, lambda: double_only.create(make_obj(MEMCACHED, "b", "default")))
    later.start()
    seen = []
    for event in watch_events(
        double_only.api_client(), path, None, 30, 5.0, 2.0, initial_events_timeout=0.3
    ):
        seen.append((event["type"], event["object"]["metadata"].get("name")))
        if len(seen) == 3:
            break
    assert seen == [("ADDED", "a"), ("BOOKMARK", None), ("ADDED", "b")]
    double.watch_list = "unknown"  # before the bookmark, the same silence ends the attempt
    with pytest.raises(InitialEventsIncomplete, match=r"nothing received for 0\.3s"):
        for _ in watch_events(
            double_only.api_client(), path, None, 30, 5.0, 2.0, initial_events_timeout=0.3
        ):
            pass


def test_poison_objects_in_the_initial_events_are_skipped_and_the_stream_goes_on(
    double_only: ApiBackend, running: Any
) -> None:
    from hostile_fakes import thing
    from kubeapi_double import RawJson

    from scaffold_metrics.runtime.selfmetrics import OBJECTS_SKIPPED

    double = the_double(double_only)

    def poison(tag: str) -> None:
        double.inject({**thing("x"), "metadata": f"metadata-{tag}"})
        double.inject(["metadata", "list"])
        double.create({**thing(f"digits-{tag}"), "spec": {"size": RawJson(b"9" * 5000)}})

    double_only.create(make_obj(MEMCACHED, "before"))
    poison("initial")
    col, store, sm = thing_collector(double_only, **STREAM)
    running(col)
    assert col.wait_for_sync(10)
    poison("watched")
    double_only.create(make_obj(MEMCACHED, "after"))
    want = {"before", "digits-initial", "digits-watched", "after"}
    eventually(lambda: thing_names(store) == want, what="objects after the poison")
    assert sm.value(OBJECTS_SKIPPED, "Memcached", "invalid_metadata") == 4
    assert col.sync_mode == "stream"
    assert len(double.watch_requests()) == 1, "one stream: nothing replayed, no resync"
    assert full_lists(double) == []
