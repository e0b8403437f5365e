"""Metrics about the runtime itself (`operator_metrics_*`): list/watch health, events, errors.

A store that silently stops updating looks exactly like a quiet cluster, so the collectors and
the store count what they do here and the server exposes it next to the resource metrics. Kept
as a tiny lock-protected dict registry (not prometheus_client) so the runtime has no
dependencies and renders through the same `MetricFamilyDef` code as every other family.

Collectors call the `record_*` methods; the default instance `DEFAULT_SELF_METRICS` is used
wherever none is injected (tests inject their own to stay isolated).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from .families import MetricFamilyDef, MetricType

LIST_REQUESTS = MetricFamilyDef(
    "operator_metrics_list_requests_total",
    "List requests sent to the API server, by kind and namespace ('' = all namespaces).",
    MetricType.COUNTER,
    ("kind", "namespace"),
)
LIST_FAILURES = MetricFamilyDef(
    "operator_metrics_list_failures_total",
    "List requests that failed, by kind and namespace ('' = all namespaces).",
    MetricType.COUNTER,
    ("kind", "namespace"),
)
WATCH_REQUESTS = MetricFamilyDef(
    "operator_metrics_watch_requests_total",
    "Watch requests started, by kind and namespace ('' = all namespaces).",
    MetricType.COUNTER,
    ("kind", "namespace"),
)
WATCH_FAILURES = MetricFamilyDef(
    "operator_metrics_watch_failures_total",
    "Watch requests that ended in an error, by kind and namespace ('' = all namespaces).",
    MetricType.COUNTER,
    ("kind", "namespace"),
)
WATCH_EVENTS = MetricFamilyDef(
    "operator_metrics_watch_events_total",
    "Watch events received, by kind and event type.",
    MetricType.COUNTER,
    ("kind", "type"),
)
GENERATOR_ERRORS = MetricFamilyDef(
    "operator_metrics_generator_errors_total",
    "Objects or values the metrics generator could not turn into samples, by kind.",
    MetricType.COUNTER,
    ("kind",),
)
OBJECTS_SKIPPED = MetricFamilyDef(
    "operator_metrics_objects_skipped_total",
    "Objects the store could not render at all and left out, by kind and reason "
    "(invalid_metadata: not an object with object metadata; invalid_text: no valid UTF-8).",
    MetricType.COUNTER,
    ("kind", "reason"),
)
SERIES_LIMITED = MetricFamilyDef(
    "operator_metrics_series_limited_total",
    "Series the per-object bounds applied to, by kind and limit (series_per_family: "
    "dropped, past the series one object may have in a family; label_value_length: "
    "rendered with label values cut).",
    MetricType.COUNTER,
    ("kind", "limit"),
)
LAST_SYNC = MetricFamilyDef(
    "operator_metrics_last_sync_timestamp_seconds",
    "Unix time of the last completed list (paged or streaming) of a kind in a namespace "
    "('' = all namespaces).",
    MetricType.GAUGE,
    ("kind", "namespace"),
)
LIST_MODE = MetricFamilyDef(
    "operator_metrics_list_mode",
    "How the collector of a kind in a namespace ('' = all namespaces) gets the state: 1 for "
    "the mode in use (stream: streaming list, a watch with sendInitialEvents; paged: paged "
    "list), 0 for the other.",
    MetricType.GAUGE,
    ("kind", "namespace", "mode"),
)
OBJECTS = MetricFamilyDef(
    "operator_metrics_objects",
    "Objects currently held in the metrics store, by kind and namespace ('' = cluster-scoped).",
    MetricType.GAUGE,
    ("kind", "namespace"),
)

SELF_FAMILIES: tuple[MetricFamilyDef, ...] = (
    LIST_REQUESTS,
    LIST_FAILURES,
    WATCH_REQUESTS,
    WATCH_FAILURES,
    WATCH_EVENTS,
    GENERATOR_ERRORS,
    OBJECTS_SKIPPED,
    SERIES_LIMITED,
    LAST_SYNC,
    LIST_MODE,
    OBJECTS,
)

LIST_MODE_VALUES = ("paged", "stream")
"""The `mode` values of `LIST_MODE`."""

SHARD_ORDINAL = MetricFamilyDef(
    "operator_metrics_shard_ordinal",
    "The shard (0-based) this replica is, of operator_metrics_total_shards.",
    MetricType.GAUGE,
    (),
)
TOTAL_SHARDS = MetricFamilyDef(
    "operator_metrics_total_shards",
    "The number of shards the objects are split over, as this replica knows it.",
    MetricType.GAUGE,
    (),
)
SHARD_OBJECTS = MetricFamilyDef(
    "operator_metrics_shard_objects",
    "Objects of the last list and the watch since, by kind, namespace ('' = all namespaces) "
    "and ownership (kept: this shard's, rendered; skipped: another shard's, dropped unread).",
    MetricType.GAUGE,
    ("kind", "namespace", "ownership"),
)

SHARD_FAMILIES: tuple[MetricFamilyDef, ...] = (SHARD_ORDINAL, TOTAL_SHARDS, SHARD_OBJECTS)
"""Served only by a replica that is sharded (after `record_sharding`)."""

SKIP_REASONS = ("invalid_metadata", "invalid_text")
"""The `reason` values of `OBJECTS_SKIPPED` (named where the store decides, in store.py)."""

LIMITS = ("label_value_length", "series_per_family")

WATCH_EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})
"""The watch event types the API defines; anything else is counted as `UNKNOWN`."""
"""The `limit` values of `SERIES_LIMITED`."""

_Key = tuple[str, ...]


def _ns(namespace: str | None) -> str:
    return namespace or ""


class SelfMetrics:
    """Thread-safe counters and gauges about the runtime, rendered on every scrape.

    Every method is cheap (one short lock) and never raises on odd label values, so the
    collectors can call them from their hot loops.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[MetricFamilyDef, dict[_Key, float]] = {
            f: {} for f in SELF_FAMILIES + SHARD_FAMILIES
        }
        self._served: tuple[MetricFamilyDef, ...] = SELF_FAMILIES
        # Counted on every watch event: held directly, as hashing a family is a Python call.
        self._events = self._values[WATCH_EVENTS]
        # Bumped by every record under the lock; `_rendered` holds the bodies of one version
        # (all but the objects gauge, whose counts come with each scrape), so an unchanged
        # registry costs a scrape no rendering.
        self._version = 0
        self._rendered: tuple[int, list[tuple[MetricFamilyDef, bytes]]] | None = None
        self._objects_rendered: tuple[dict[_Key, float], bytes] | None = None

    def _add(self, family: MetricFamilyDef, key: _Key, amount: float) -> None:
        series = self._values[family]
        series[key] = series.get(key, 0.0) + amount
        self._version += 1

    def record_list(self, kind: str, namespace: str | None, ok: bool) -> None:
        """One list request for `kind` in `namespace` (None = all namespaces) ended."""
        key = (kind, _ns(namespace))
        with self._lock:
            self._add(LIST_REQUESTS, key, 1)
            self._add(LIST_FAILURES, key, 0 if ok else 1)

    def record_watch(self, kind: str, namespace: str | None, ok: bool) -> None:
        """One watch request was started (ok=True) or ended in an error (ok=False).

        A failed watch counts as a request and a failure, so call it once per watch attempt:
        with ok=False when the attempt failed, ok=True otherwise.
        """
        key = (kind, _ns(namespace))
        with self._lock:
            self._add(WATCH_REQUESTS, key, 1)
            self._add(WATCH_FAILURES, key, 0 if ok else 1)

    def record_event(self, kind: str, event_type: str) -> None:
        """One watch event was received. Types other than the API's five are counted as
        `UNKNOWN`: a label value taken from the server must not mint new series."""
        if event_type not in WATCH_EVENT_TYPES:
            event_type = "UNKNOWN"
        key = (kind, event_type)
        with self._lock:
            self._events[key] = self._events.get(key, 0.0) + 1
            self._version += 1

    def record_sync(self, kind: str, namespace: str | None, timestamp: float | None = None) -> None:
        """A list of `kind` in `namespace` completed at `timestamp` (default: now)."""
        ts = time.time() if timestamp is None else timestamp
        with self._lock:
            self._values[LAST_SYNC][(kind, _ns(namespace))] = ts
            self._version += 1

    def record_list_mode(self, kind: str, namespace: str | None, mode: str) -> None:
        """The collector of `kind` in `namespace` syncs by `mode` (see LIST_MODE_VALUES)."""
        with self._lock:
            series = self._values[LIST_MODE]
            for value in LIST_MODE_VALUES:
                series[(kind, _ns(namespace), value)] = 1.0 if value == mode else 0.0
            self._version += 1

    def record_generator_errors(self, kind: str, count: int = 1) -> None:
        """The generator failed on `count` objects or values of `kind` (called by the store)."""
        with self._lock:
            self._add(GENERATOR_ERRORS, (kind,), count)

    def record_skipped(self, kind: str, reason: str) -> None:
        """The store left out one object of `kind` it could not render (see SKIP_REASONS)."""
        with self._lock:
            self._add(OBJECTS_SKIPPED, (kind, reason), 1)

    def record_limited(self, kind: str, dropped: int, cut: int) -> None:
        """The per-object bounds dropped `dropped` series of one `kind` object and cut label
        values of `cut` others (called by the store)."""
        with self._lock:
            self._add(SERIES_LIMITED, (kind, "series_per_family"), dropped)
            self._add(SERIES_LIMITED, (kind, "label_value_length"), cut)

    def record_sharding(self, shard: int, total: int) -> None:
        """This replica is shard `shard` of `total` (from now on the shard families show)."""
        with self._lock:
            self._values[SHARD_ORDINAL][()] = float(shard)
            self._values[TOTAL_SHARDS][()] = float(total)
            self._served = SELF_FAMILIES + SHARD_FAMILIES
            self._version += 1

    def record_shard_objects(
        self, kind: str, namespace: str | None, kept: int, skipped: int
    ) -> None:
        """A collector of `kind` in `namespace` holds `kept` objects and left `skipped`."""
        series = self._values[SHARD_OBJECTS]
        with self._lock:
            series[(kind, _ns(namespace), "kept")] = float(kept)
            series[(kind, _ns(namespace), "skipped")] = float(skipped)
            self._version += 1

    def declare_kind(self, kind: str) -> None:
        """Create the zero-valued error, skip and limit series of `kind` so rate() works from
        the start."""
        with self._lock:
            self._add(GENERATOR_ERRORS, (kind,), 0)
            for reason in SKIP_REASONS:
                self._add(OBJECTS_SKIPPED, (kind, reason), 0)
            for limit in LIMITS:
                self._add(SERIES_LIMITED, (kind, limit), 0)

    def value(self, family: MetricFamilyDef, *label_values: str) -> float | None:
        """Current value of one series (for tests and debugging); None when never recorded."""
        with self._lock:
            return self._values.get(family, {}).get(tuple(label_values))

    def families(
        self, objects: Mapping[tuple[str, str], int] | None = None
    ) -> list[tuple[MetricFamilyDef, bytes]]:
        """Each self family with its rendered sample lines; `objects` ((kind, namespace) →
        count) feeds the objects gauge. Rendered again only after a change."""
        with self._lock:
            version = self._version
            cached = self._rendered
            served = self._served
            if cached is None or cached[0] != version:
                snapshot = {f: dict(series) for f, series in self._values.items()}
        if cached is None or cached[0] != version:
            rendered = [(f, _render_body(f, snapshot[f])) for f in served]
            self._rendered = cached = (version, rendered)
        if objects is None:
            return list(cached[1])
        counts: dict[_Key, float] = {key: float(n) for key, n in objects.items()}
        last = self._objects_rendered
        if last is None or last[0] != counts:
            last = (counts, _render_body(OBJECTS, counts))
            self._objects_rendered = last
        return [(f, last[1] if f is OBJECTS else body) for f, body in cached[1]]


def _render_body(family: MetricFamilyDef, series: Mapping[_Key, float]) -> bytes:
    body = "".join(family.render_sample(k, v) for k, v in sorted(series.items()))
    # "replace": a label value from the API (an event type) must not break the scrape.
    return body.encode("utf-8", "replace")


DEFAULT_SELF_METRICS = SelfMetrics()
"""The instance used wherever none is injected: collectors, stores and the server share it."""
