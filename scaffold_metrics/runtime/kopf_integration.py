"""Feed the metrics stores from a kopf operator's own watch, and run `/metrics` with it.

A kopf operator already lists and watches its resources; a second watch would double the API
load and the memory. So instead of starting collectors, `register_kopf_metrics` registers
`@kopf.on.event` handlers that upsert/delete into one `MetricsStore` per kind, and
`@kopf.on.startup` / `@kopf.on.cleanup` handlers that start and stop the metrics server.

Event semantics (kopf >= 1.37): `type` is None for objects of the initial listing, then
'ADDED', 'MODIFIED' or 'DELETED' from the watch. Objects being deleted (deletionTimestamp set,
finalizers pending) still exist and stay in the store until their DELETED event.

Readiness: kopf exposes no "initial listing done" signal for event handlers. A kind counts as
synced once a watch event (type not None) was seen for it, since kopf only streams events after
the listing is over, or once `settle_seconds` have passed since startup (a quiet or empty
cluster sends none). `/readyz` is 503 before the operator's startup handlers ran.

Self-metrics: kopf owns the list and watch, so only `operator_metrics_watch_events_total`
(watch events, not the initial listing), `..._objects` and `..._generator_errors_total` are
recorded; the list/watch request counters and the last-sync gauge stay absent for these kinds.

Relists: when kopf's watch resumes from a compacted resourceVersion (410), kopf lists again,
announcing every existing object with type None, but sends no DELETED for objects deleted while
it was disconnected, and handlers get no "listing done" signal. So the collector remembers when
each object was last announced; a burst of type-None events opens a relist, and once no such
event has come for `relist_quiet_seconds` the relist is taken as over and the objects it did
not announce are dropped: in every namespace when kopf watches cluster-wide (`clusterwide=True`,
one watch, so one relist covers everything), else in the namespaces it announced objects of
(kopf's per-namespace watches relist one namespace at a time). Unnoticed: a relist that lists
nothing at all (every object of the kind, or with per-namespace watches of that namespace,
deleted while kopf was away) opens no relist; those objects stay until the next restart.

This is the only runtime module that imports kopf; nothing else imports it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from .generator import MetricsGeneratorProtocol
from .selfmetrics import DEFAULT_SELF_METRICS, SelfMetrics
from .server import DEFAULT_PORT, MetricsServer, start_metrics_server
from .store import (
    DEFAULT_MAX_LABEL_VALUE_LENGTH,
    DEFAULT_MAX_SERIES_PER_FAMILY,
    MetricsStore,
    object_key,
    object_scope,
)

GeneratorSpec = MetricsGeneratorProtocol | type[MetricsGeneratorProtocol]


class KopfCollector:
    """A `CollectorLike` fed by kopf's events: start/stop do nothing, kopf owns the watch."""

    def __init__(
        self,
        store: MetricsStore,
        settle_seconds: float,
        relist_quiet_seconds: float = 5.0,
        clusterwide: bool = False,
    ) -> None:
        self.store = store
        self.settle_seconds = settle_seconds
        self.relist_quiet_seconds = relist_quiet_seconds
        self.clusterwide = clusterwide
        self._started_at: float | None = None
        self._saw_watch_event = False
        self._lock = threading.Lock()
        self._tick = 0
        # key -> (namespace, tick of its last announcement), for sweeping after a relist.
        self._announced: dict[str, tuple[str | None, int]] = {}
        self._relist_from: int | None = None  # tick at which the current relist began
        self._relist_namespaces: set[str | None] = set()
        self._sweep: threading.Timer | None = None

    @property
    def has_synced(self) -> bool:
        """True after a watch event, or `settle_seconds` after startup (see module docstring)."""
        if self._started_at is None:
            return False
        return self._saw_watch_event or time.monotonic() - self._started_at >= self.settle_seconds

    def start(self) -> None:
        # A new operator run lists everything again: nothing from a previous run carries over
        # (neither readiness nor objects that may have been deleted in between).
        with self._lock:
            self._cancel_sweep()
            self._saw_watch_event = False
            self._announced.clear()
            self.store.replace((), None)
            self._started_at = time.monotonic()

    def stop(self) -> None:
        with self._lock:
            self._cancel_sweep()
            self._started_at = None

    def on_event(self, event_type: str | None, obj: Mapping[str, Any]) -> None:
        """Apply one kopf event to the store."""
        key, namespace = object_key(obj), object_scope(obj)
        if event_type == "DELETED":
            self.store.delete(obj)
        else:
            self.store.upsert(obj)
        with self._lock:
            self._tick += 1
            if event_type == "DELETED":
                self._announced.pop(key, None)
            else:
                self._announced[key] = (namespace, self._tick)
            if event_type is None:
                self._note_listing(namespace)
        if event_type is not None:
            self._saw_watch_event = True
            self.store.self_metrics.record_event(self.store.kind, event_type)

    def _note_listing(self, namespace: str | None) -> None:
        """A listed object: open a relist (or extend it) and push its end further out."""
        if self._relist_from is None:
            self._relist_from = self._tick
            self._relist_namespaces = set()
        self._relist_namespaces.add(namespace)
        self._cancel_sweep()
        self._sweep = threading.Timer(self.relist_quiet_seconds, self._end_relist)
        self._sweep.daemon = True
        self._sweep.start()

    def _end_relist(self) -> None:
        """The relist is over: drop what it did not announce in what it covered."""
        with self._lock:
            started, namespaces = self._relist_from, self._relist_namespaces
            self._relist_from, self._sweep = None, None
            if started is None:
                return
            gone = [
                key
                for key, (namespace, tick) in self._announced.items()
                if tick < started and (self.clusterwide or namespace in namespaces)
            ]
            for key in gone:
                del self._announced[key]
        for key in gone:
            self.store.discard(key)

    def _cancel_sweep(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None


class KopfMetrics:
    """What `register_kopf_metrics` set up: one collector per kind and, while running, a server."""

    def __init__(
        self,
        collectors: Sequence[KopfCollector],
        port: int,
        host: str | None,
        self_metrics: SelfMetrics,
    ) -> None:
        self.collectors = tuple(collectors)
        self.port = port
        self.host = host
        self.self_metrics = self_metrics
        self.server: MetricsServer | None = None
        self._lock = threading.Lock()

    @property
    def stores(self) -> tuple[MetricsStore, ...]:
        """The store of each kind, in registration order."""
        return tuple(c.store for c in self.collectors)

    def start(self) -> MetricsServer:
        """Start serving (called by the startup handler); a second call returns the same server."""
        with self._lock:
            if self.server is None:
                self.server = start_metrics_server(
                    self.collectors, self.port, self.host, self_metrics=self.self_metrics
                )
            return self.server

    def stop(self) -> None:
        """Stop serving (called by the cleanup handler)."""
        with self._lock:
            server, self.server = self.server, None
        if server is not None:
            server.stop()


def register_kopf_metrics(
    generators: GeneratorSpec | Sequence[GeneratorSpec],
    port: int = DEFAULT_PORT,
    host: str | None = None,
    *,
    registry: kopf.OperatorRegistry | None = None,
    self_metrics: SelfMetrics | None = None,
    settle_seconds: float = 10.0,
    relist_quiet_seconds: float = 5.0,
    clusterwide: bool = False,
    max_series_per_family: int = DEFAULT_MAX_SERIES_PER_FAMILY,
    max_label_value_length: int = DEFAULT_MAX_LABEL_VALUE_LENGTH,
) -> KopfMetrics:
    """Register kopf handlers that keep one store per generator's kind and serve `/metrics`.

    `generators`: a generator class or instance, or a sequence of them (one per kind).
    `host`: None means `$METRICS_HOST`, else `0.0.0.0`; `$METRICS_WEB_CONFIG` applies as for
    `start_metrics_server`.
    `registry`: the kopf registry to register into (default: kopf's default registry).
    `settle_seconds`: readiness without a watch event (see the module docstring).
    `relist_quiet_seconds`: how long without a listed object ends a relist (module docstring).
    `clusterwide`: True when kopf runs cluster-wide (`kopf run -A`, `clusterwide=True`), so a
    relist covers every namespace (module docstring); never with per-namespace watches.
    `max_series_per_family`, `max_label_value_length`: per-object bounds (see `MetricsStore`).
    Handlers get ids prefixed with `operator-metrics/`. Returns the handle; its server runs
    from the operator's startup to its cleanup.
    """
    specs: Sequence[GeneratorSpec] = (
        list(generators) if isinstance(generators, Sequence) else [generators]
    )
    sm = self_metrics if self_metrics is not None else DEFAULT_SELF_METRICS
    collectors: list[KopfCollector] = []
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        generator: MetricsGeneratorProtocol = spec() if isinstance(spec, type) else spec
        resource = (generator.group, generator.plural)
        if resource in seen:
            raise ValueError(f"two generators for {generator.plural}.{generator.group}")
        seen.add(resource)
        store = MetricsStore(
            generator,
            self_metrics=sm,
            max_series_per_family=max_series_per_family,
            max_label_value_length=max_label_value_length,
        )
        collector = KopfCollector(store, settle_seconds, relist_quiet_seconds, clusterwide)
        collectors.append(collector)
        _register_events(collector, generator, registry)
    handle = KopfMetrics(collectors, port, host, sm)

    @kopf.on.startup(registry=registry, id="operator-metrics/startup")
    def _start_metrics_server(**_: Any) -> None:
        handle.start()

    @kopf.on.cleanup(registry=registry, id="operator-metrics/cleanup")
    def _stop_metrics_server(**_: Any) -> None:
        handle.stop()

    return handle


def _register_events(
    collector: KopfCollector,
    generator: MetricsGeneratorProtocol,
    registry: kopf.OperatorRegistry | None,
) -> None:
    @kopf.on.event(
        generator.group,
        generator.version,
        generator.plural,
        registry=registry,
        id=f"operator-metrics/{generator.plural}.{generator.group}",
    )
    def _feed_store(event: Mapping[str, Any], **_: Any) -> None:
        # The raw event object (a plain dict), not kopf's Body view: the store keeps nothing.
        collector.on_event(event.get("type"), event["object"])
