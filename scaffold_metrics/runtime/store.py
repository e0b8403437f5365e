"""`MetricsStore`: the per-kind cache of pre-rendered exposition bytes, kube-state-metrics style.

Objects are turned into sample lines once, when they change, and only those bytes are kept (not
the object), per family and per object uid. A scrape is then one `b"".join` per family, without
running any generator. The generator runs outside the lock; the lock only guards dict updates
and the joins, so a scrape never sees half an update and never waits on a slow API call.

One store per kind, shared by every collector (namespace) of that kind: `replace(objs, scope)`
swaps only the objects of one namespace after a relist.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .exposition import COMMON_VALUES, format_value
from .families import LineFunction, MetricFamilyDef, line_function
from .generator import MetricsGeneratorProtocol
from .samples import RawSample, SampleSet
from .selfmetrics import DEFAULT_SELF_METRICS, SelfMetrics

log = logging.getLogger(__name__)

_LOG_INTERVAL_SECONDS = 60.0


def object_key(obj: Mapping[str, Any]) -> str:
    """The store key of an object: its uid, or namespace/name when it has none (hand-made)."""
    meta = obj.get("metadata") or {}
    uid = meta.get("uid")
    if uid:
        return str(uid)
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def object_scope(obj: Mapping[str, Any]) -> str | None:
    """The namespace of an object (None for cluster-scoped ones)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return str(ns) if ns else None


# What an object leaves in the store: its bytes for each family, in family order (b"" where it
# has no samples), then its namespace (None for cluster-scoped objects). One flat tuple, so a
# scrape can transpose all objects' entries into per-family columns in one `zip`.
_Rendered = tuple[Any, ...]


class MetricsStore:
    """Per-kind store of rendered sample bytes: `upsert`/`delete`/`replace` in, `families` out."""

    def __init__(
        self,
        generator: MetricsGeneratorProtocol,
        *,
        self_metrics: SelfMetrics | None = None,
    ) -> None:
        self.generator = generator
        self.kind: str = generator.kind
        self.families: tuple[MetricFamilyDef, ...] = tuple(generator.families)
        self.self_metrics = self_metrics if self_metrics is not None else DEFAULT_SELF_METRICS
        self.self_metrics.declare_kind(self.kind)
        self._index: dict[MetricFamilyDef, int] = {f: i for i, f in enumerate(self.families)}
        self._index_by_id: dict[int, int] = {id(f): i for i, f in enumerate(self.families)}
        # id(family) -> (its index, its sample line function), for `_render_fast`.
        self._index_and_line: dict[int, tuple[int, LineFunction]] = {
            id(f): (i, line_function(f)) for i, f in enumerate(self.families)
        }
        self._lock = threading.Lock()
        # uid -> the object's rendered entry (see `_Rendered`): one dict write per change.
        self._objects: dict[str, _Rendered] = {}
        # namespace (None: cluster-scoped) -> objects held, for the objects self-metric.
        self._counts: dict[str | None, int] = {}
        self._log_lock = threading.Lock()
        self._last_log = 0.0
        self._suppressed = 0

    # -- ingest ------------------------------------------------------------------------------

    def upsert(self, obj: Mapping[str, Any]) -> None:
        """Add or update one object (ADDED/MODIFIED): render it now, keep only its bytes."""
        key = object_key(obj)
        rendered = self._render(obj)
        with self._lock:
            self._put(key, rendered)

    def delete(self, obj: Mapping[str, Any]) -> None:
        """Remove one object (DELETED); unknown objects are ignored."""
        key = object_key(obj)
        with self._lock:
            self._drop(key)

    def discard(self, key: str) -> None:
        """Remove the object stored under `key` (its uid) when only the key is known."""
        with self._lock:
            self._drop(key)

    def replace(self, objs: Iterable[Mapping[str, Any]], scope: str | None) -> None:
        """After a (re)list: make the objects of `scope` exactly `objs`, in one atomic swap.

        `scope` is a namespace name, or None for all namespaces (and cluster-scoped kinds).
        Objects of `scope` not in `objs` (deleted while disconnected) disappear; objects of
        other namespaces are untouched.
        """
        fresh = [(object_key(o), self._render(o)) for o in objs]
        with self._lock:
            if scope is None:
                self._objects.clear()
                self._counts.clear()
            else:
                stale = [k for k, entry in self._objects.items() if entry[-1] == scope]
                for key in stale:
                    self._drop(key)
            for key, rendered in fresh:
                self._put(key, rendered)

    def _put(self, key: str, rendered: _Rendered) -> None:
        scope = rendered[-1]
        old = self._objects.get(key)
        if old is None or old[-1] != scope:
            if old is not None:
                self._count_out(old[-1])
            self._counts[scope] = self._counts.get(scope, 0) + 1
        self._objects[key] = rendered

    def _count_out(self, scope: str | None) -> None:
        left = self._counts.get(scope, 0) - 1
        if left > 0:
            self._counts[scope] = left
        else:
            self._counts.pop(scope, None)

    def _drop(self, key: str) -> None:
        old = self._objects.pop(key, None)
        if old is not None:
            self._count_out(old[-1])

    def _render(self, obj: Mapping[str, Any]) -> _Rendered:
        """Run the generator once and render its samples; failures cost only their own lines."""
        errors = 0
        try:
            result = self.generator.generate(obj)
            raw = (
                result.raw
                if isinstance(result, SampleSet)
                else [(s.family, s.label_values, s.value) for s in result]
            )
            texts = self._render_fast(raw)
            if texts is None:
                texts, errors = self._render_careful(obj, raw)
            if isinstance(result, SampleSet) and result.problems:
                errors += len(result.problems)
                self._log_error(obj, result.problems[0])
        except Exception as exc:  # a raising generator costs only this object
            errors += 1
            texts = ["" for _ in self.families]
            self._log_error(obj, exc)
        if errors:
            self.self_metrics.record_generator_errors(self.kind, errors)
        return (*map(str.encode, texts), object_scope(obj))

    def _render_fast(self, raw: list[RawSample]) -> list[str] | None:
        """Each family's lines, or None when a sample needs `_render_careful`.

        The common case, kept to one line function call per sample and one escape check for
        the whole object: a label value holding a quote, newline or backslash, a label value
        that is not a string, label values not in a tuple (an iterator could not be read twice)
        and any exception go the careful way, which renders the same bytes line by line
        (escaping only the lines that need it).
        """
        parts: list[list[str]] = [[] for _ in self.families]
        specs = self._index_and_line
        values: list[str] = []
        try:
            for family, label_values, value in raw:
                if type(label_values) is not tuple:
                    return None
                index, line = specs[id(family)]
                formatted = COMMON_VALUES.get(value) or format_value(value)
                parts[index].append(line(label_values, formatted))
                values += label_values
            joined = "".join(values)
        except Exception:  # undeclared family, wrong label count, odd value: say which
            return None
        if '"' in joined or "\n" in joined or "\\" in joined:
            return None
        return list(map("".join, parts))

    def _render_careful(
        self, obj: Mapping[str, Any], raw: list[RawSample]
    ) -> tuple[list[str], int]:
        """Each family's lines rendered one sample at a time (escaping label values where
        needed), with the number of samples that could not be rendered (each logged)."""
        errors = 0
        parts: list[list[str]] = [[] for _ in self.families]
        index_by_id = self._index_by_id
        for family, label_values, value in raw:
            i = index_by_id.get(id(family))
            try:
                if i is None:
                    i = self._index.get(family)
                    if i is None:
                        raise ValueError(f"sample of undeclared family {family.name!r}")
                parts[i].append(family.render_sample(label_values, value))
            except Exception as exc:  # one bad sample must not stop the rest
                errors += 1
                self._log_error(obj, exc)
        return ["".join(lines) for lines in parts], errors

    def _log_error(self, obj: Mapping[str, Any], error: object) -> None:
        """Log generator trouble at most once a minute per store, with the suppressed count."""
        now = time.monotonic()
        with self._log_lock:
            if self._last_log and now - self._last_log < _LOG_INTERVAL_SECONDS:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last_log = self._suppressed, 0, now
        meta = obj.get("metadata") or {}
        log.warning(
            "metrics generator error for %s %s/%s: %s (%d similar messages suppressed)",
            self.kind,
            meta.get("namespace") or "",
            meta.get("name") or "",
            error,
            suppressed,
        )

    # -- scrape ------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    def counts_by_namespace(self) -> dict[str | None, int]:
        """Objects held per namespace (None for cluster-scoped objects)."""
        with self._lock:
            return dict(self._counts)

    def family_chunks(self) -> list[tuple[MetricFamilyDef, list[bytes]]]:
        """Every family with its objects' bytes, from one consistent view, without copying them.

        Only references are taken under the lock (the bytes are immutable), so ingest waits
        for a pointer copy per object, never for the body to be joined or sent.
        """
        with self._lock:
            entries = list(self._objects.values())
        if not entries:
            return [(family, []) for family in self.families]
        # One column per family, then the namespaces, which zip(strict=False) leaves out.
        columns = zip(*entries, strict=True)
        return [(f, list(column)) for f, column in zip(self.families, columns, strict=False)]

    def family_bodies(self) -> list[tuple[MetricFamilyDef, bytes]]:
        """Every family with the concatenated lines of all objects, from one consistent view."""
        return [(family, b"".join(chunks)) for family, chunks in self.family_chunks()]

    def write_to(self, out: list[bytes], *, openmetrics: bool = False) -> None:
        """Append each family's header (emitted even with no samples) and lines to `out`."""
        for family, chunks in self.family_chunks():
            out.append(family.openmetrics_header if openmetrics else family.text_header)
            out.extend(chunks)
