"""List/watch collectors: keep a metrics store in step with one custom resource.

One `Collector` per watched namespace (or one cluster-wide) runs a daemon thread that syncs
(gets the whole state), then WATCHes from the sync's resourceVersion, resuming from the last RV
it saw (bookmarks included) whenever the stream ends, and syncs again with `store.replace` on
410 so that objects deleted while it was away disappear. It syncs again too when the server's
history is not the one it followed (see `resource_version_went_back`; before resuming a watch
it asks the server for its resourceVersion, see `_verify_history`) and when the server sent
something that is not JSON (the same bytes would come again on resuming). Errors never end the
thread: it backs off with full jitter and tells people, at a bounded rate, which permission or
CRD is missing.

A sync is a streaming list by default (`list_mode="auto"`): one WATCH with
`sendInitialEvents=true&resourceVersionMatch=NotOlderThan` whose initial ADDED events are the
state, which replaces the store only at the `k8s.io/initial-events-end` bookmark (a stream that
ends before it publishes nothing: the next attempt starts over), after which the same stream
goes on as the watch. No paged LIST reaches the API server and etcd. Where the server does not do
streaming lists the collector falls back to the paged LIST, logs it once, and keeps to it for
its lifetime. The server says so in one of these ways:

- kube-apiserver 1.27 and later with the `WatchList` feature gate off: 422 Invalid
  (`sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled`);
  1.19 to 1.26, which know `resourceVersionMatch` but not on a watch: 422 Invalid
  (`resourceVersionMatch is forbidden for watch`). Any 400 or 422 to the request counts.
- A server that ignores the parameters (older still, or an aggregated API server or proxy that
  does not implement them) answers a plain watch from "now", which for an unset resourceVersion
  starts with ADDED for every object too, but never sends the end bookmark. A real streaming
  list sends nothing but ADDED before that bookmark, so a MODIFIED, a DELETED or a bookmark
  without the annotation there is proof. When the stream only falls silent (a quiet cluster),
  silence is not proof (a stalled connection looks the same): after `initial_events_timeout`
  seconds without a byte, or a stream that ends before the bookmark, the attempt is retried, and
  only `INCOMPLETE_STREAMS_BEFORE_FALLBACK` such attempts in a row make it fall back, and only
  while no streaming list has completed (a server that did one does them: what cuts its streams
  is the network, and it is retried with backoff as any error).

After a fallback, a sync due at least `stream_retry_interval` seconds later (after a 410, say)
tries one streaming list again, so a server upgraded or reconfigured meanwhile is used as it
now is; one refusal or incomplete attempt then keeps the paged LIST for another interval.

`list_mode="stream"` never falls back (each of these is then an error, retried with backoff),
`list_mode="paged"` never tries. `sync_mode` says which one a collector uses now, and so does
the `operator_metrics_list_mode` self-metric.

With a `ShardSelector` a collector lets into the store only the objects its shard owns (listed,
streamed or watched), and syncs again when `request_relist` says the ownership changed.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from .jsondecode import decode_json
from .kubeclient import ApiError, Response, load_api_client, open_get, resource_path
from .memtrim import keep_large_blocks_mapped, trim_freed_memory
from .selfmetrics import SelfMetrics
from .sharding import ShardSelector
from .store import (
    DEFAULT_MAX_LABEL_VALUE_LENGTH,
    DEFAULT_MAX_SERIES_PER_FAMILY,
    MetricsStore,
    Replacement,
)
from .watch import (
    InitialEventsIncomplete,
    WatchDisconnected,
    WatchIdle,
    WatchUnreadable,
    is_initial_events_end,
    list_all,
    watch_events,
)

__all__ = [
    "LIST_MODES",
    "Collector",
    "SelfMetricsProtocol",
    "load_api_client",
    "new_collectors",
    "resource_version_went_back",
]

log = logging.getLogger("scaffold_metrics.runtime")

ALL_NAMESPACES_LABEL = ""
"""The `namespace` passed to self-metrics by a cluster-wide collector."""

LIST_MODES = ("auto", "stream", "paged")
"""`list_mode` values: streaming list with fallback to paged LIST, either one only."""

INCOMPLETE_STREAMS_BEFORE_FALLBACK = 2
"""Streaming lists in a row that ended or fell silent before their end bookmark, with no other
sign of the server, after which `list_mode="auto"` takes it for one that ignores them."""


class SelfMetricsProtocol(Protocol):
    """What collectors report into: a `SelfMetrics` registry, or anything recording the same
    calls (tests record them)."""

    def record_list(self, kind: str, namespace: str, ok: bool) -> None: ...

    def record_watch(self, kind: str, namespace: str, ok: bool) -> None: ...

    def record_event(self, kind: str, event_type: str) -> None: ...

    def record_sync(self, kind: str, namespace: str, timestamp: float) -> None: ...

    def record_list_mode(self, kind: str, namespace: str, mode: str) -> None: ...


class _Stopped(Exception):
    """Raised inside the loop once `stop()` was called."""


class _HistoryReset(Exception):
    """The server's resourceVersions went back: it is not the history the collector followed."""


class _NoStreamingList(Exception):
    """The server does not do streaming lists (it refused the request, or ignored it)."""


def resource_version_went_back(last: str | None, new: str) -> bool:
    """True when `new` is lower than `last`, both read as integers.

    resourceVersions are formally opaque strings: a client may only compare them for equality.
    But etcd-backed servers (every kube-apiserver) write etcd's revision, an integer that only
    grows; one that goes back means the server has another history (etcd restored from a
    backup, a new cluster behind the same address), where resuming from `last` would wait for
    a revision that may never come and serve stale objects meanwhile. So compare only when both
    parse as integers, and never call anything else a reset.
    """
    if last is None or not (new.isdigit() and last.isdigit()):
        return False
    return int(new) < int(last)


class Collector:
    """Keeps `store` in step with `plural.group/version` objects in `namespace` (None: all).

    `list_mode` is how it syncs: "auto" (streaming list, paged LIST where the server does not
    do them), "stream" or "paged" (that one only); `initial_events_timeout` bounds the silence
    a streaming list may keep before its end bookmark, `stream_retry_interval` how long a
    fallback holds (see the module docstring).
    """

    def __init__(
        self,
        api_client: Any,
        group: str,
        version: str,
        plural: str,
        kind: str,
        namespace: str | None,
        store: MetricsStore,
        self_metrics: SelfMetricsProtocol | None = None,
        *,
        page_size: int = 500,
        watch_timeout: tuple[int, int] = (300, 600),
        idle_timeout: float = 70.0,
        connect_timeout: float = 10.0,
        list_timeout: float = 60.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        problem_log_interval: float = 300.0,
        list_mode: str = "auto",
        initial_events_timeout: float = 20.0,
        stream_retry_interval: float = 3600.0,
        selector: ShardSelector | None = None,
    ) -> None:
        """`selector`: keep only the objects this shard owns (see `request_relist`)."""
        if list_mode not in LIST_MODES:
            raise ValueError(f"list_mode must be one of {', '.join(LIST_MODES)}, not {list_mode!r}")
        self.api_client = api_client
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespace = namespace or None
        self.store = store
        # By default, report into the registry the store reports into.
        self.self_metrics: SelfMetricsProtocol = (
            self_metrics if self_metrics is not None else store.self_metrics
        )
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.list_timeout = list_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.problem_log_interval = problem_log_interval
        self.list_mode = list_mode
        self.initial_events_timeout = initial_events_timeout
        self._streaming = list_mode != "paged"
        self._incomplete_streams = 0  # streaming lists in a row without their end bookmark
        self._streamed = False  # a streaming list completed: the server does them
        self.stream_retry_interval = stream_retry_interval
        self._fell_back_at: float | None = None  # monotonic time of the last fallback
        self._probing = False  # this streaming list tries again after a fallback
        self.path = resource_path(group, version, plural, self.namespace)
        self.resource_version: str | None = None
        """Where the next watch starts; None means the next step is a sync (a streaming list
        or a paged LIST)."""
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._response: Response | None = None
        self._failures = 0
        self._expiries = 0  # 410s since a watch last delivered anything
        self._history_unverified = False  # a watch ended: is the server's history still ours?
        self._last_logged: dict[str, float] = {}
        self.selector = selector
        self._relist_requested = threading.Event()
        self._kept = 0  # objects of this scope this shard holds / leaves to others
        self._skipped = 0

    # -- public ---------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once the first sync (streaming list or paged LIST) has filled the store."""
        return self._synced.is_set()

    @property
    def sync_mode(self) -> str:
        """How this collector syncs now: "stream" (streaming list) or "paged" (paged LIST)."""
        return "stream" if self._streaming else "paged"

    @property
    def scope_label(self) -> str:
        """The namespace as self-metrics label it ("" for all namespaces / cluster scope)."""
        return self.namespace or ALL_NAMESPACES_LABEL

    @property
    def stopped(self) -> bool:
        """True once `stop()` was called (until the next `start()`)."""
        return self._stop.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Block until `has_synced` (or `timeout`); returns `has_synced`."""
        return self._synced.wait(timeout)

    def start(self) -> None:
        """Start the list/watch loop in a daemon thread (idempotent)."""
        if self._thread is not None:
            return
        keep_large_blocks_mapped()  # a sync's page bodies must not pin heap (see memtrim)
        self._stop.clear()
        where = self.namespace or "all-namespaces"
        self._thread = threading.Thread(
            target=self._run, name=f"collector-{self.plural}.{self.group}-{where}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop promptly, even mid-watch: abort the open connection and join the thread."""
        self._stop.set()
        with self._lock:
            resp = self._response
        if resp is not None:
            resp.abort()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def request_relist(self) -> None:
        """List again soon, from any thread: the way a new ownership (`selector`) takes
        effect, dropping what is no longer this shard's and adding what now is. The open
        watch is cut at once; nothing restarts and the old objects serve until the list."""
        self._relist_requested.set()
        with self._lock:
            resp = self._response
        if resp is not None:
            resp.abort()

    def describe(self) -> str:
        """`memcacheds.cache.example.com in namespace default` (or `in all namespaces`)."""
        where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
        return f"{self._resource_name} in {where}"

    # -- loop -----------------------------------------------------------------------------

    @property
    def _resource_name(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def _run(self) -> None:
        self.self_metrics.record_list_mode(self.kind, self.scope_label, self.sync_mode)
        try:
            while not self._stop.is_set():
                self._step()
        except _Stopped:
            pass
        finally:
            self._set_response(None)

    def _step(self) -> None:
        """One sync (when needed) and one WATCH; every failure ends in a decision, not a crash."""
        try:
            if self._relist_requested.is_set():
                self._relist_requested.clear()
                self.resource_version = None
            if self.resource_version is None and self._stream_retry_due():
                self._streaming = self._probing = True
            if self.resource_version is None and self._streaming:
                self._stream()
                return
            if self.resource_version is None:
                self._relist()
            elif self._history_unverified:
                self._verify_history()
            self._watch()
        except _NoStreamingList as exc:
            self._check_stopped()
            self._on_no_streaming_list(exc)
        except InitialEventsIncomplete as exc:
            self._check_stopped()
            self._on_incomplete_stream(exc)
        except ApiError as exc:
            self._check_stopped()
            if exc.expired:
                self._on_expired(exc)
            elif exc.resource_version_too_large:
                self._on_history_reset(f"the server is behind it ({exc.message})")
            else:
                self._on_error(exc)
        except _HistoryReset as exc:
            self._check_stopped()
            self._on_history_reset(str(exc))
        except WatchUnreadable as exc:
            self._check_stopped()
            self.resource_version = None  # resuming would read the same bytes again
            self._on_error(exc)
        except WatchIdle as exc:
            self.self_metrics.record_watch(self.kind, self.scope_label, False)
            log.debug("%s: %s; resuming from %s", self.describe(), exc, self.resource_version)
        except WatchDisconnected as exc:
            self._check_stopped()
            if self._relist_requested.is_set():
                return  # cut by `request_relist`: the next step lists, at once
            self._on_error(exc)
        except _Stopped:
            raise
        except Exception as exc:
            self._check_stopped()
            log.exception("%s: unexpected error", self.describe())
            self._on_error(exc)

    def _set_response(self, resp: Response | None) -> None:
        with self._lock:
            self._response = resp
        if resp is not None and self._stop.is_set():
            resp.abort()

    def _relist(self) -> None:
        """A paged LIST, each page rendered into a store replacement as it arrives and then
        dropped; the replacement is swapped in once the last page came."""
        replacement = self.store.begin_replace(self.namespace)

        def on_page(items: list[Any]) -> None:
            self._check_stopped()
            replacement.add(self._owned(items))

        self._kept = self._skipped = 0  # counted again by `_owned`, over every page
        try:
            result = list_all(
                self.api_client,
                self.path,
                self.page_size,
                (self.connect_timeout, self.list_timeout),
                on_open=self._set_response,
                on_page=on_page,
            )
        except ApiError as exc:
            self.self_metrics.record_list(self.kind, self.scope_label, False)
            if exc.expired:  # continue token too old: list again from the start, right away
                log.info("%s: continue token expired, listing from scratch", self.describe())
                self._check_stopped()
                replacement = self.store.begin_replace(self.namespace)
                self._kept = self._skipped = 0
                result = list_all(
                    self.api_client,
                    self.path,
                    self.page_size,
                    (self.connect_timeout, self.list_timeout),
                    on_open=self._set_response,
                    on_page=on_page,
                )
            else:
                raise
        except _Stopped:
            raise
        except Exception:
            self.self_metrics.record_list(self.kind, self.scope_label, False)
            raise
        self._check_stopped()
        try:
            replacement.commit()
        except Exception:  # the store skips what it cannot render: this is a bug, say so
            self.self_metrics.record_list(self.kind, self.scope_label, False)
            raise
        trim_freed_memory()
        self._record_shard_objects()
        self.self_metrics.record_list(self.kind, self.scope_label, True)
        self._synced_at(result.resource_version, result.count)

    def _synced_at(self, resource_version: str, count: int) -> None:
        """The store holds the state at `resource_version` (a sync of `count` objects)."""
        self.resource_version = resource_version
        self._history_unverified = False
        self.self_metrics.record_sync(self.kind, self.scope_label, time.time())
        if not self._synced.is_set():
            log.info("%s: synced %d objects (%s)", self.describe(), count, self._how)
        self._synced.set()
        self._failures = 0
        self._last_logged.clear()

    @property
    def _how(self) -> str:
        return "streaming list" if self._streaming else "paged list"

    def _stream(self) -> None:
        """A streaming list, then the same stream as the watch (see the module docstring).

        The initial ADDED objects are rendered into a store replacement a page at a time (the
        decoded objects are not kept); the store is replaced with them at the end bookmark, so
        a stream cut before it leaves the store as it was. Raises `_NoStreamingList` when the
        server refuses or ignores the request.
        """
        lo, hi = self.watch_timeout
        replacement = self.store.begin_replace(self.namespace)
        items: list[Any] = []  # decoded objects not yet rendered: at most a page of them
        kept = 0  # objects of the state this shard owns
        skipped = 0  # objects of the state that another shard owns
        synced = False
        received = 0
        started = time.monotonic()
        try:
            for event in watch_events(
                self.api_client,
                self.path,
                None,
                random.randint(lo, hi),
                self.idle_timeout,
                self.connect_timeout,
                on_open=self._set_response,
                initial_events_timeout=self.initial_events_timeout,
            ):
                self._check_stopped()
                if synced:
                    received += 1
                    self._apply(event)
                    self._expiries = 0
                    continue
                kind = event.get("type")
                self.self_metrics.record_event(self.kind, kind if isinstance(kind, str) else "")
                if kind == "ADDED":
                    obj = event.get("object")
                    if (
                        self.selector is None
                        or not isinstance(obj, Mapping)
                        or (self.selector.owns(obj))
                    ):
                        items.append(obj)
                        kept += 1
                        if len(items) >= self.page_size:
                            replacement.add(items)
                            items.clear()
                    else:  # another shard's: not held until the bookmark
                        skipped += 1
                elif is_initial_events_end(event):
                    replacement.add(items)
                    items.clear()
                    self._publish_stream(replacement, kept, skipped, event)
                    synced = True
                else:  # a plain watch: the server ignored sendInitialEvents
                    raise _NoStreamingList(f"it sent a {kind} event before the end of the state")
        except ApiError as exc:
            self.self_metrics.record_watch(self.kind, self.scope_label, False)
            if exc.status in (400, 422) and not synced:
                raise _NoStreamingList(f"it answered {exc}") from exc
            raise
        except (
            _NoStreamingList,
            InitialEventsIncomplete,
            WatchDisconnected,
            WatchUnreadable,
            _HistoryReset,
        ):
            # A stream cut by `request_relist` did not fail.
            self.self_metrics.record_watch(
                self.kind, self.scope_label, self._relist_requested.is_set()
            )
            raise
        finally:
            if synced:  # resuming from here: the next server may be another (`_verify_history`)
                self._history_unverified = True
        self._check_stopped()
        self.self_metrics.record_watch(self.kind, self.scope_label, True)
        if received:
            self._expiries = 0
        elif time.monotonic() - started < 1.0:
            self._failures += 1  # synced, then the stream ended at once: no busy loop
            self._sleep_backoff()

    def _publish_stream(
        self, replacement: Replacement, kept: int, skipped: int, bookmark: Mapping[str, Any]
    ) -> None:
        """The end bookmark came: `replacement` holds the state at its resourceVersion (this
        shard's part of it, `kept` objects; `skipped` objects being other shards')."""
        obj = bookmark.get("object")
        meta = obj.get("metadata") if isinstance(obj, Mapping) else None
        rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
        if not rv:
            raise WatchUnreadable("the initial-events-end bookmark carries no resourceVersion")
        self._check_stopped()
        replacement.commit()
        trim_freed_memory()
        self._kept, self._skipped = kept, skipped
        self._record_shard_objects()
        self._incomplete_streams = 0
        self._streamed = True
        if self._probing:
            log.info("%s: the API server does streaming lists now", self.describe())
            self._probing = False
            self.self_metrics.record_list_mode(self.kind, self.scope_label, self.sync_mode)
        self._synced_at(str(rv), kept)

    def _stream_retry_due(self) -> bool:
        """True when a fallback is `stream_retry_interval` old: the next sync tries again."""
        return (
            not self._streaming
            and self._fell_back_at is not None
            and time.monotonic() - self._fell_back_at >= self.stream_retry_interval
        )

    def _on_no_streaming_list(self, exc: _NoStreamingList) -> None:
        if self.list_mode == "stream":  # forced: no fallback, say why it does not sync
            self._on_error(exc)
            return
        if self._probing:
            log.info("%s: still no streaming lists (%s); paged LIST", self.describe(), exc)
        else:
            log.warning(
                "%s: the API server does not do streaming lists (%s); using paged LIST from "
                "now on",
                self.describe(),
                exc,
            )
        self._streaming = self._probing = False
        self._fell_back_at = time.monotonic()
        self._incomplete_streams = 0
        self.self_metrics.record_list_mode(self.kind, self.scope_label, self.sync_mode)

    def _on_incomplete_stream(self, exc: InitialEventsIncomplete) -> None:
        """Nothing published; start over, or, after too many in a row from a server that never
        completed one, fall back."""
        self._incomplete_streams += 1
        count = self._incomplete_streams
        if self.list_mode == "auto" and not self._streamed:
            if count >= INCOMPLETE_STREAMS_BEFORE_FALLBACK or self._probing:
                self._on_no_streaming_list(
                    _NoStreamingList(
                        f"{count} streaming lists in a row without the initial-events-end "
                        f"bookmark, the last: {exc}"
                    )
                )
                return
        elif self.list_mode == "stream" or count > 1:
            self._on_error(exc)  # rate-limited warning and backoff, as for any error
            return
        log.info("%s: %s; starting the streaming list again", self.describe(), exc)
        self._failures += 1
        self._sleep_backoff()

    def _verify_history(self) -> None:
        """Before resuming a watch, ask the server for its resourceVersion (a LIST of one
        item) and raise `_HistoryReset` when it is below the one to resume from.

        A server with a new history (etcd restored from a backup, a new control plane behind
        the same address) accepts a watch from a resourceVersion it never reached and sends
        nothing, not even a bookmark (kube-apiserver sends none below a watch's
        resourceVersion), so the watch alone would serve stale objects until its writes catch
        up. The watch before may have ended cleanly (kube-apiserver ends every watch when its
        watch cache reinitializes over a restored etcd), so this runs at every resume: one
        small request per watch period."""
        from urllib3 import exceptions as http_errors  # the kubernetes client's transport

        timeout = (self.connect_timeout, self.list_timeout)
        try:
            try:
                resp = open_get(self.api_client, self.path, [("limit", "1")], timeout)
                self._set_response(resp)
                try:
                    body = resp.read_all()
                finally:
                    resp.close()
                    self._set_response(None)
            except (http_errors.HTTPError, OSError) as exc:
                raise WatchDisconnected(f"list {self.path}: {exc}") from exc
            try:
                doc = decode_json(body)
            except ValueError as exc:
                raise WatchUnreadable(f"list {self.path}: not JSON: {exc}") from exc
        except Exception:  # a failed LIST like any other (a success is not a relist)
            self.self_metrics.record_list(self.kind, self.scope_label, False)
            raise
        meta = doc.get("metadata") if isinstance(doc, Mapping) else None
        rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
        self._history_unverified = False
        if rv and resource_version_went_back(self.resource_version, str(rv)):
            raise _HistoryReset(
                f"the server is at resourceVersion {rv}, below {self.resource_version}"
            )

    def _watch(self) -> None:
        assert self.resource_version is not None
        lo, hi = self.watch_timeout
        started = time.monotonic()
        received = 0
        try:
            if self._relist_requested.is_set():
                return
            for event in watch_events(
                self.api_client,
                self.path,
                self.resource_version,
                random.randint(lo, hi),
                self.idle_timeout,
                self.connect_timeout,
                on_open=self._set_response,
            ):
                self._check_stopped()
                received += 1
                self._apply(event)
                self._expiries = 0  # after: a reset at every first event must back off
        except (ApiError, WatchDisconnected, WatchUnreadable, _HistoryReset):
            # A watch cut by `request_relist` did not fail.
            self.self_metrics.record_watch(
                self.kind, self.scope_label, self._relist_requested.is_set()
            )
            raise
        finally:
            self._history_unverified = True  # until asked, the next server may be another
        self._check_stopped()
        self.self_metrics.record_watch(self.kind, self.scope_label, True)
        if received:
            self._failures = 0
            self._expiries = 0
        elif time.monotonic() - started < 1.0:
            # A stream that ends at once with nothing in it must not turn into a busy loop.
            self._failures += 1
            self._sleep_backoff()

    def _apply(self, event: Mapping[str, Any]) -> None:
        """Apply one event; an object the store cannot render is its to skip and count, so
        no event is ever read twice. Raises `_HistoryReset` (before applying anything) when
        the event's resourceVersion is lower than the last one seen."""
        kind = event.get("type")
        kind = kind if isinstance(kind, str) else ""
        obj = event.get("object")
        self.self_metrics.record_event(self.kind, kind)
        meta = obj.get("metadata") if isinstance(obj, Mapping) else None
        rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
        rv = str(rv) if rv else None
        if rv is not None and resource_version_went_back(self.resource_version, rv):
            raise _HistoryReset(f"resourceVersion went back from {self.resource_version} to {rv}")
        try:
            owned = self.selector is None or self._owned_event(kind, obj)
            if owned and kind in ("ADDED", "MODIFIED"):
                self.store.upsert(obj)  # type: ignore[arg-type]  # the store skips non-objects
            elif owned and kind == "DELETED" and isinstance(obj, Mapping):
                self.store.delete(obj)
        except Exception:
            log.exception("%s: store failed on %s event", self.describe(), kind)
        if rv is not None:
            self.resource_version = rv

    def _owned(self, items: Iterable[Any]) -> Iterable[Any]:
        """The listed objects this shard owns (all without a selector), counting both."""
        if self.selector is None:
            return items
        return self._filter_owned(items, self.selector)

    def _filter_owned(self, items: Iterable[Any], selector: ShardSelector) -> Iterator[Any]:
        for obj in items:
            if not isinstance(obj, Mapping) or selector.owns(obj):
                self._kept += 1
                yield obj
            else:
                self._skipped += 1

    def _owned_event(self, kind: str, obj: Any) -> bool:
        """True when the event's object is this shard's; counts objects coming and going.
        A uid never changes, so an object stays on one side until the ownership does."""
        if not isinstance(obj, Mapping):
            return True
        owned = self.selector is None or self.selector.owns(obj)
        step = 1 if kind == "ADDED" else -1 if kind == "DELETED" else 0
        if step:
            if owned:
                self._kept = max(0, self._kept + step)
            else:
                self._skipped = max(0, self._skipped + step)
            self._record_shard_objects()
        return owned

    def _record_shard_objects(self) -> None:
        if self.selector is not None:
            self.store.self_metrics.record_shard_objects(
                self.kind, self.scope_label, self._kept, self._skipped
            )

    def _on_history_reset(self, why: str) -> None:
        log.warning(
            "%s: %s: the API server has a new history (etcd restored from a backup?); "
            "listing again",
            self.describe(),
            why,
        )
        self.resource_version = None
        self._expiries += 1
        if self._expiries > 1:  # list, then the same at once: do not hammer the server
            self._sleep_backoff(self._expiries - 1)

    def _on_expired(self, exc: ApiError) -> None:
        log.info(
            "%s: resourceVersion %s expired (%s); listing again",
            self.describe(),
            self.resource_version,
            exc.message,
        )
        self.resource_version = None
        self._expiries += 1
        if self._expiries > 1:  # list, then 410 again at once: do not hammer the server
            self._sleep_backoff(self._expiries - 1)

    def _on_error(self, exc: Exception) -> None:
        self._failures += 1
        key, text = self._explain(exc)
        now = time.monotonic()
        last = self._last_logged.get(key)
        if last is None or now - last >= self.problem_log_interval:
            self._last_logged[key] = now
            log.warning("%s (retrying with backoff)", text)
        self._sleep_backoff()

    def _explain(self, exc: Exception) -> tuple[str, str]:
        where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
        if isinstance(exc, ApiError) and exc.status == 403:
            return "403", (
                f"cannot list/watch {self._resource_name} in {where}: {exc.message}; "
                f"grant list/watch on {self._resource_name} in {where}"
            )
        if isinstance(exc, ApiError) and exc.status == 404:
            return "404", (
                f"CRD {self._resource_name} version {self.version} not served yet "
                f"(GET {self.path}: 404); install the CRD"
            )
        if isinstance(exc, _NoStreamingList):
            return "no-streaming-list", (
                f"{self.describe()}: the API server does not do streaming lists ({exc}); "
                "set list_mode (METRICS_LIST_MODE) to auto or paged"
            )
        return type(exc).__name__, f"{self.describe()}: {exc}"

    def _sleep_backoff(self, attempt: int | None = None) -> None:
        """Sleep with full jitter: uniform(0, min(cap, base * 2**attempt)); wakes on stop()."""
        attempt = self._failures if attempt is None else attempt
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(attempt, 30))
        if self._stop.wait(random.uniform(0, ceiling)):
            raise _Stopped

    def _check_stopped(self) -> None:
        if self._stop.is_set():
            raise _Stopped


def new_collectors(
    client: Any,
    namespaces: Sequence[str] | None,
    api: str,
    kind: str,
    generator: Any,
    *,
    store: MetricsStore | None = None,
    self_metrics: SelfMetricsProtocol | None = None,
    max_series_per_family: int = DEFAULT_MAX_SERIES_PER_FAMILY,
    max_label_value_length: int = DEFAULT_MAX_LABEL_VALUE_LENGTH,
    **options: Any,
) -> list[Collector]:
    """Collectors for `kind` of `api` ("group/version") over `namespaces`, sharing one store.

    `client` is a `kubernetes.client.ApiClient`, or None to load config (in-cluster, else
    kubeconfig). `namespaces` empty, None or `[""]` means one cluster-wide watch. `generator`
    is a MetricsGenerator class or instance; its `plural` and `namespaced` attributes pick the
    resource. Cluster-scoped kinds always get one cluster-wide collector. All collectors share
    `store`, by default one new `MetricsStore(generator)`; `self_metrics` defaults to the
    store's own `self_metrics` registry. `max_series_per_family` and `max_label_value_length`
    bound one object's share of a scrape in that new store (see `MetricsStore`). `options` go
    to `Collector` (`list_mode`, timeouts, backoff).
    """
    if client is None:
        client = load_api_client()
    instance = generator() if isinstance(generator, type) else generator
    group, _, version = api.rpartition("/")
    if store is None:
        registry = self_metrics if isinstance(self_metrics, SelfMetrics) else None
        store = MetricsStore(
            instance,
            self_metrics=registry,
            max_series_per_family=max_series_per_family,
            max_label_value_length=max_label_value_length,
        )
    requested = list(dict.fromkeys(namespaces or ()))
    scopes: list[str | None]
    if not getattr(instance, "namespaced", True) or not requested or "" in requested:
        scopes = [None]
    else:
        scopes = list(requested)
    return [
        Collector(
            client,
            group,
            version,
            str(instance.plural),
            kind,
            ns,
            store,
            self_metrics,
            **options,
        )
        for ns in scopes
    ]
