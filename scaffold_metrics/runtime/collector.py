"""List/watch collectors: keep a metrics store in step with one custom resource.

One `Collector` per watched namespace (or one cluster-wide) runs a daemon thread that LISTs
(paged), then WATCHes from the list's resourceVersion, resuming from the last RV it saw
(bookmarks included) whenever the stream ends, and re-LISTs with `store.replace` on 410 so that
objects deleted while it was away disappear. It re-LISTs too when the server's history is not
the one it followed (see `resource_version_went_back`; before resuming it asks the server for
its resourceVersion, see `_verify_history`) and when the server sent something that
is not JSON (the same bytes would come again on resuming). Errors never end the thread: it backs
off with full jitter and tells people, at a bounded rate, which permission or CRD is missing.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .jsondecode import decode_json
from .kubeclient import ApiError, Response, load_api_client, open_get, resource_path
from .selfmetrics import SelfMetrics
from .store import DEFAULT_MAX_LABEL_VALUE_LENGTH, DEFAULT_MAX_SERIES_PER_FAMILY, MetricsStore
from .watch import WatchDisconnected, WatchIdle, WatchUnreadable, list_all, watch_events

__all__ = [
    "Collector",
    "SelfMetricsProtocol",
    "load_api_client",
    "new_collectors",
    "resource_version_went_back",
]

log = logging.getLogger("scaffold_metrics.runtime")

ALL_NAMESPACES_LABEL = ""
"""The `namespace` passed to self-metrics by a cluster-wide collector."""


class SelfMetricsProtocol(Protocol):
    """What collectors report into: a `SelfMetrics` registry, or anything recording the same
    calls (tests record them)."""

    def record_list(self, kind: str, namespace: str, ok: bool) -> None: ...

    def record_watch(self, kind: str, namespace: str, ok: bool) -> None: ...

    def record_event(self, kind: str, event_type: str) -> None: ...

    def record_sync(self, kind: str, namespace: str, timestamp: float) -> None: ...


class _Stopped(Exception):
    """Raised inside the loop once `stop()` was called."""


class _HistoryReset(Exception):
    """The server's resourceVersions went back: it is not the history the collector followed."""


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
    """Keeps `store` in step with `plural.group/version` objects in `namespace` (None: all)."""

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
    ) -> None:
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
        self.path = resource_path(group, version, plural, self.namespace)
        self.resource_version: str | None = None
        """Where the next watch starts; None means the next step is a (re)LIST."""
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._response: Response | None = None
        self._failures = 0
        self._expiries = 0  # 410s since a watch last delivered anything
        self._history_unverified = False  # a watch ended: is the server's history still ours?
        self._last_logged: dict[str, float] = {}

    # -- public ---------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once the first LIST has completed and filled the store."""
        return self._synced.is_set()

    @property
    def scope_label(self) -> str:
        """The namespace as self-metrics label it ("" for all namespaces / cluster scope)."""
        return self.namespace or ALL_NAMESPACES_LABEL

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Block until `has_synced` (or `timeout`); returns `has_synced`."""
        return self._synced.wait(timeout)

    def start(self) -> None:
        """Start the list/watch loop in a daemon thread (idempotent)."""
        if self._thread is not None:
            return
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

    def describe(self) -> str:
        """`memcacheds.cache.example.com in namespace default` (or `in all namespaces`)."""
        where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
        return f"{self._resource_name} in {where}"

    # -- loop -----------------------------------------------------------------------------

    @property
    def _resource_name(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._step()
        except _Stopped:
            pass
        finally:
            self._set_response(None)

    def _step(self) -> None:
        """One LIST (when needed) and one WATCH; every failure ends in a decision, not a crash."""
        try:
            if self.resource_version is None:
                self._relist()
            elif self._history_unverified:
                self._verify_history()
            self._watch()
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
        try:
            result = list_all(
                self.api_client,
                self.path,
                self.page_size,
                (self.connect_timeout, self.list_timeout),
                on_open=self._set_response,
            )
        except ApiError as exc:
            self.self_metrics.record_list(self.kind, self.scope_label, False)
            if exc.expired:  # continue token too old: list again from the start, right away
                log.info("%s: continue token expired, listing from scratch", self.describe())
                self._check_stopped()
                result = list_all(
                    self.api_client,
                    self.path,
                    self.page_size,
                    (self.connect_timeout, self.list_timeout),
                    on_open=self._set_response,
                )
            else:
                raise
        except Exception:
            self.self_metrics.record_list(self.kind, self.scope_label, False)
            raise
        self._check_stopped()
        try:
            self.store.replace(result.items, self.namespace)
        except Exception:  # the store skips what it cannot render: this is a bug, say so
            self.self_metrics.record_list(self.kind, self.scope_label, False)
            raise
        self.resource_version = result.resource_version
        self._history_unverified = False
        self.self_metrics.record_list(self.kind, self.scope_label, True)
        self.self_metrics.record_sync(self.kind, self.scope_label, time.time())
        if not self._synced.is_set():
            log.info("%s: synced %d objects", self.describe(), len(result.items))
        self._synced.set()
        self._failures = 0
        self._last_logged.clear()

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
            self.self_metrics.record_watch(self.kind, self.scope_label, False)
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
            if kind in ("ADDED", "MODIFIED"):
                self.store.upsert(obj)  # type: ignore[arg-type]  # the store skips non-objects
            elif kind == "DELETED" and isinstance(obj, Mapping):
                self.store.delete(obj)
        except Exception:
            log.exception("%s: store failed on %s event", self.describe(), kind)
        if rv is not None:
            self.resource_version = rv

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
    to `Collector`.
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
