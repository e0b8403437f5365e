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

Known limitation: when kopf's watch resumes from a resourceVersion that has been compacted
(410), kopf lists again but sends no DELETED for objects deleted while it was disconnected, and
event handlers cannot tell where that listing ends; such objects stay in the store until the
operator restarts. The list/watch collectors do not have this gap (they replace on relist).

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
from .store import MetricsStore

GeneratorSpec = MetricsGeneratorProtocol | type[MetricsGeneratorProtocol]


class KopfCollector:
    """A `CollectorLike` fed by kopf's events: start/stop do nothing, kopf owns the watch."""

    def __init__(self, store: MetricsStore, settle_seconds: float) -> None:
        self.store = store
        self.settle_seconds = settle_seconds
        self._started_at: float | None = None
        self._saw_watch_event = False

    @property
    def has_synced(self) -> bool:
        """True after a watch event, or `settle_seconds` after startup (see module docstring)."""
        if self._started_at is None:
            return False
        return self._saw_watch_event or time.monotonic() - self._started_at >= self.settle_seconds

    def start(self) -> None:
        # A new operator run lists everything again: nothing from a previous run carries over
        # (neither readiness nor objects that may have been deleted in between).
        self._saw_watch_event = False
        self.store.replace((), None)
        self._started_at = time.monotonic()

    def stop(self) -> None:
        self._started_at = None

    def on_event(self, event_type: str | None, obj: Mapping[str, Any]) -> None:
        """Apply one kopf event to the store."""
        if event_type == "DELETED":
            self.store.delete(obj)
        else:
            self.store.upsert(obj)
        if event_type is not None:
            self._saw_watch_event = True
            self.store.self_metrics.record_event(self.store.kind, event_type)


class KopfMetrics:
    """What `register_kopf_metrics` set up: one collector per kind and, while running, a server."""

    def __init__(
        self, collectors: Sequence[KopfCollector], port: int, host: str, self_metrics: SelfMetrics
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
    host: str = "0.0.0.0",
    *,
    registry: kopf.OperatorRegistry | None = None,
    self_metrics: SelfMetrics | None = None,
    settle_seconds: float = 10.0,
) -> KopfMetrics:
    """Register kopf handlers that keep one store per generator's kind and serve `/metrics`.

    `generators`: a generator class or instance, or a sequence of them (one per kind).
    `registry`: the kopf registry to register into (default: kopf's default registry).
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
        collector = KopfCollector(MetricsStore(generator, self_metrics=sm), settle_seconds)
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
