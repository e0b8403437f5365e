"""`MetricsStore`: the per-kind cache of pre-rendered exposition bytes, kube-state-metrics style.

Objects are turned into sample lines once, when they change, and only those bytes are kept (not
the object), per family and per object uid. A scrape is then one `b"".join` per family, without
running any generator. The generator runs outside the lock; the lock only guards dict updates
and the joins, so a scrape never sees half an update and never waits on a slow API call.

One store per kind, shared by every collector (namespace) of that kind: `replace(objs, scope)`
swaps only the objects of one namespace after a relist.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .exposition import COMMON_VALUES, format_value
from .families import LineFunction, MetricFamilyDef, line_function
from .generator import MetricsGeneratorProtocol
from .samples import RawSample, SampleSet
from .selfmetrics import DEFAULT_SELF_METRICS, SKIP_REASONS, SelfMetrics

log = logging.getLogger(__name__)

_LOG_INTERVAL_SECONDS = 60.0


DEFAULT_MAX_SERIES_PER_FAMILY = 1000
"""Series one object may have in one family (conditions, map keys, enum states)."""

DEFAULT_MAX_LABEL_VALUE_LENGTH = 1024
"""Characters of one label value (an allow-listed label or annotation, a condition type)."""

SKIPPED_INVALID_METADATA, SKIPPED_INVALID_TEXT = SKIP_REASONS
"""Skip reasons: the object, or its `metadata`, is not a JSON object; none of the object's
lines is valid UTF-8 (a lone surrogate, JSON `"\\ud800"`, in its name)."""


def object_metadata(obj: Any) -> Mapping[str, Any] | None:
    """`obj["metadata"]`, or None when `obj` or its metadata is not a mapping (hostile input)."""
    if type(obj) is not dict and not isinstance(obj, Mapping):
        return None
    meta = obj.get("metadata")
    if type(meta) is dict or isinstance(meta, Mapping):
        return meta
    return {} if meta is None else None


def object_key(obj: Mapping[str, Any]) -> str:
    """The store key of an object: its uid, or namespace/name when it has none (hand-made)."""
    return _key_of(object_metadata(obj) or {})


def object_scope(obj: Mapping[str, Any]) -> str | None:
    """The namespace of an object (None for cluster-scoped ones)."""
    return _scope_of(object_metadata(obj) or {})


def _key_of(meta: Mapping[str, Any]) -> str:
    uid = meta.get("uid")
    if uid:
        return str(uid)
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def _scope_of(meta: Mapping[str, Any]) -> str | None:
    ns = meta.get("namespace")
    return str(ns) if ns else None


def _printable(value: object) -> str:
    """`value` as text any log handler can write (a lone surrogate becomes `\\ud800`), at
    most 200 characters of it (a 1 MiB annotation must not become a 1 MiB log line)."""
    text = str(value)[:200]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def cut_label_value(value: str, limit: int) -> str:
    """`value` cut to `limit` characters: its start, `~` and 8 hex digits of its SHA-256.

    The digest keeps two long values that share their start (two condition types, two
    objects' names) two series, where a plain cut would make them one duplicate series.
    """
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{value[: max(0, limit - 9)]}~{digest}"[:limit] if limit >= 9 else value[:limit]


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
        max_series_per_family: int = DEFAULT_MAX_SERIES_PER_FAMILY,
        max_label_value_length: int = DEFAULT_MAX_LABEL_VALUE_LENGTH,
    ) -> None:
        """`max_series_per_family` and `max_label_value_length` bound one object's share of
        a scrape: its series past the first that many in a family are dropped, its longer
        label values cut (see `cut_label_value`); both are counted in self-metrics."""
        if max_series_per_family < 1 or max_label_value_length < 16:
            raise ValueError("max_series_per_family must be >= 1, max_label_value_length >= 16")
        self.max_series_per_family = max_series_per_family
        self.max_label_value_length = max_label_value_length
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
        # Bumped on every change of `_objects`; `_columns` is the scrape view of one
        # generation, so scrapes of an unchanged store skip regrouping the objects' bytes.
        self._generation = 0
        self._columns: tuple[int, list[tuple[MetricFamilyDef, tuple[bytes, ...]]]] | None = None
        self._log_lock = threading.Lock()
        self._last_log = 0.0
        self._suppressed = 0

    # -- ingest ------------------------------------------------------------------------------

    def upsert(self, obj: Mapping[str, Any]) -> None:
        """Add or update one object (ADDED/MODIFIED): render it now, keep only its bytes.

        An object that cannot be rendered at all is skipped (and counted): it never raises,
        so one hostile object cannot stop a watch; its previous version, if any, goes.
        """
        prepared = self._prepare(obj)
        if prepared is None:
            return
        key, rendered = prepared
        with self._lock:
            if rendered is None:
                self._drop(key)
            else:
                self._put(key, rendered)

    def _prepare(self, obj: Mapping[str, Any]) -> tuple[str, _Rendered | None] | None:
        """(the store key of `obj`, its rendered bytes or None when no line renders); None,
        counted as skipped, when `obj` has no object metadata."""
        # Decoded JSON is dicts: check that inline, `object_metadata` for everything else.
        meta = obj.get("metadata") if type(obj) is dict else None
        if type(meta) is not dict:
            meta = object_metadata(obj)
            if meta is None:
                self._skip_invalid_metadata(obj)
                return None
        rendered = self._render(obj, meta)
        uid = meta.get("uid")
        return (uid if type(uid) is str and uid else _key_of(meta)), rendered

    def delete(self, obj: Mapping[str, Any]) -> None:
        """Remove one object (DELETED); unknown and unreadable objects are ignored."""
        meta = object_metadata(obj)
        if meta is None:
            return
        key = _key_of(meta)
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
        other namespaces are untouched. The same as `begin_replace(scope)`, `add(objs)`,
        `commit()`.
        """
        replacement = self.begin_replace(scope)
        replacement.add(objs)
        replacement.commit()

    def begin_replace(self, scope: str | None) -> Replacement:
        """A replacement of the objects of `scope` that is filled a page at a time.

        Each `add` renders its objects at once and keeps only their bytes, so a (re)list of
        any size holds one decoded page, never the whole list; the store goes on serving what
        it held until `commit` swaps all of it in at once. A replacement dropped without
        `commit` (a list cut halfway) changes nothing.
        """
        return Replacement(self, scope)

    def _put(self, key: str, rendered: _Rendered) -> None:
        scope = rendered[-1]
        old = self._objects.get(key)
        if old is None or old[-1] != scope:
            if old is not None:
                self._count_out(old[-1])
            self._counts[scope] = self._counts.get(scope, 0) + 1
        self._objects[key] = rendered
        self._generation += 1

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
            self._generation += 1

    def _skip_invalid_metadata(self, obj: Any) -> None:
        self.self_metrics.record_skipped(self.kind, SKIPPED_INVALID_METADATA)
        self._log_error(obj, "not an object with object metadata: skipped")

    def _render(self, obj: Mapping[str, Any], meta: Mapping[str, Any]) -> _Rendered | None:
        """Run the generator once and render its samples; failures cost only their own lines.

        None (counted as a skipped object) when not one of its lines is valid UTF-8.
        """
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
        scope = meta.get("namespace")
        # One string per namespace, not one per object (each decoded object brings its own).
        scope = sys.intern(scope if type(scope) is str else str(scope)) if scope else None
        try:
            rendered = (*map(str.encode, texts), scope or None)
        except UnicodeEncodeError:  # a lone surrogate (JSON `"\ud800"`) in a label value
            encoded, unencodable = self._encode_careful(texts)
            errors += unencodable
            if unencodable and not any(encoded):
                self.self_metrics.record_skipped(self.kind, SKIPPED_INVALID_TEXT)
                self._log_error(obj, "no line is valid UTF-8: skipped")
                return None
            rendered = (*encoded, scope or None)
        if errors:
            self.self_metrics.record_generator_errors(self.kind, errors)
        return rendered

    @staticmethod
    def _encode_careful(texts: list[str]) -> tuple[tuple[bytes, ...], int]:
        """Each family's text as UTF-8 without the lines that cannot be (lone surrogates), and
        how many lines were left out. Lines end in a newline and hold no other (escaped)."""
        dropped = 0
        out: list[bytes] = []
        for text in texts:
            kept: list[bytes] = []
            for line in text.split("\n")[:-1]:
                try:
                    kept.append(f"{line}\n".encode())
                except UnicodeEncodeError:
                    dropped += 1
            out.append(b"".join(kept))
        return tuple(out), dropped

    def _render_fast(self, raw: list[RawSample]) -> list[str] | None:
        """Each family's lines, or None when a sample needs `_render_careful`.

        The common case, kept to one line function call per sample and one escape check for
        the whole object: a label value holding a quote, newline or backslash, a label value
        that is not a string, label values not in a tuple (an iterator could not be read twice)
        and any exception go the careful way, which renders the same bytes line by line
        (escaping only the lines that need it). So does an object that may pass a per-object
        bound: more samples than one family may have, or label values longer than allowed
        (looked at one by one only when all of them together are that long).
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
        if len(raw) > self.max_series_per_family:
            return None
        limit = self.max_label_value_length
        if len(joined) > limit and max(map(len, values)) > limit:
            return None
        return list(map("".join, parts))

    def _render_careful(
        self, obj: Mapping[str, Any], raw: list[RawSample]
    ) -> tuple[list[str], int]:
        """Each family's lines rendered one sample at a time (escaping label values where
        needed) within the per-object bounds, with the number of samples that could not be
        rendered (each logged). Dropped series and cut values are counted in self-metrics."""
        errors = 0
        parts: list[list[str]] = [[] for _ in self.families]
        index_by_id = self._index_by_id
        max_series = self.max_series_per_family
        limit = self.max_label_value_length
        dropped = cut = 0
        for family, label_values, value in raw:
            i = index_by_id.get(id(family))
            try:
                if i is None:
                    i = self._index.get(family)
                    if i is None:
                        raise ValueError(f"sample of undeclared family {family.name!r}")
                if len(parts[i]) >= max_series:
                    dropped += 1
                    continue
                texts = [v if type(v) is str else str(v) for v in label_values]
                if any(len(v) > limit for v in texts):
                    texts = [cut_label_value(v, limit) if len(v) > limit else v for v in texts]
                    cut += 1
                parts[i].append(family.render_sample(tuple(texts), value))
            except Exception as exc:  # one bad sample must not stop the rest
                errors += 1
                self._log_error(obj, exc)
        if dropped or cut:
            self.self_metrics.record_limited(self.kind, dropped, cut)
            self._log_error(
                obj,
                f"per-object bounds: {dropped} series dropped (more than {max_series} in a "
                f"family), {cut} with label values cut to {limit} characters",
            )
        return ["".join(lines) for lines in parts], errors

    def _log_error(self, obj: Mapping[str, Any], error: object) -> None:
        """Log generator trouble at most once a minute per store, with the suppressed count."""
        now = time.monotonic()
        with self._log_lock:
            if self._last_log and now - self._last_log < _LOG_INTERVAL_SECONDS:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last_log = self._suppressed, 0, now
        meta = object_metadata(obj) or {}
        log.warning(
            "metrics generator error for %s %s/%s: %s (%d similar messages suppressed)",
            self.kind,
            _printable(meta.get("namespace") or ""),
            _printable(meta.get("name") or ""),
            _printable(error),
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

    def family_chunks(self) -> list[tuple[MetricFamilyDef, tuple[bytes, ...]]]:
        """Every family with its objects' bytes, from one consistent view, without copying them.

        Only references are taken under the lock (the bytes are immutable), so ingest waits
        for a pointer copy per object, never for the body to be joined or sent. The view is
        kept until the next change, so callers must not mutate it (hence tuples).
        """
        with self._lock:
            generation = self._generation
            cached = self._columns
            if cached is not None and cached[0] == generation:
                return cached[1]
            entries = list(self._objects.values())
        if not entries:
            view: list[tuple[MetricFamilyDef, tuple[bytes, ...]]] = [
                (family, ()) for family in self.families
            ]
        else:
            # One column per family, then the namespaces, which zip(strict=False) leaves out.
            columns = zip(*entries, strict=True)
            view = list(zip(self.families, columns, strict=False))
        # A change since the snapshot has bumped the generation: this view is then never used.
        self._columns = (generation, view)
        return view

    def family_bodies(self) -> list[tuple[MetricFamilyDef, bytes]]:
        """Every family with the concatenated lines of all objects, from one consistent view."""
        return [(family, b"".join(chunks)) for family, chunks in self.family_chunks()]

    def write_to(self, out: list[bytes], *, openmetrics: bool = False) -> None:
        """Append each family's header (emitted even with no samples) and lines to `out`."""
        for family, chunks in self.family_chunks():
            out.append(family.openmetrics_header if openmetrics else family.text_header)
            out.extend(chunks)


class Replacement:
    """The objects of one scope, rendered as they come, swapped into the store at `commit`.

    See `MetricsStore.begin_replace`. An object rendered to the very bytes the store already
    holds for it (the usual case in a relist) keeps the store's entry, so a relist of an
    unchanged store holds one copy of its text, not two.
    """

    def __init__(self, store: MetricsStore, scope: str | None) -> None:
        self._store = store
        self.scope = scope
        self._fresh: dict[str, _Rendered] = {}
        self._done = False

    def __len__(self) -> int:
        """Objects added so far (each key once)."""
        return len(self._fresh)

    def add(self, objs: Iterable[Mapping[str, Any]]) -> None:
        """Render `objs` now and keep only their bytes (skipping what cannot be rendered)."""
        prepare = self._store._prepare
        held = self._store._objects
        fresh = self._fresh
        for obj in objs:
            prepared = prepare(obj)
            if prepared is None:
                continue
            key, rendered = prepared
            if rendered is None:
                continue
            current = held.get(key)  # one dict read: atomic, and entries are immutable
            fresh[key] = current if current == rendered else rendered

    def commit(self) -> None:
        """Make the objects of the scope exactly those added, in one atomic swap (once)."""
        if self._done:
            raise RuntimeError("this replacement was committed already")
        self._done = True
        store = self._store
        fresh, self._fresh = self._fresh, {}
        counts: dict[str | None, int] = {}
        for entry in fresh.values():  # objects per namespace, outside the lock
            counts[entry[-1]] = counts.get(entry[-1], 0) + 1
        with store._lock:
            if self.scope is None:
                # The whole store: swap the dicts (freeing the old one after the lock).
                old, store._objects = store._objects, fresh
                store._counts = counts
                store._generation += 1
            else:
                old = {}
                stale = [k for k, entry in store._objects.items() if entry[-1] == self.scope]
                for key in stale:
                    store._drop(key)
                for key, rendered in fresh.items():
                    store._put(key, rendered)
        del old
