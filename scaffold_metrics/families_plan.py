"""Schema-driven families of one kind: what to measure, named, typed, bounded.

Planned by default: `<kind>_info`, `<kind>_created`, the usual `status.conditions`, every field a
printer column points at, the numeric, boolean, timestamp, quantity and enum fields directly
under `spec` and `status` and one object level below (`status` one more when room is left), and
the status string states (see `is_state_string`). A cap per kind keeps huge schemas bounded,
keeping the observed state first (see `priority`); the user's `metrics:` config adds (any depth,
any string, arrays, maps, schema-less fields), removes, renames and retypes. Every field of
`spec` and `status` to the planning depth not planned is reported once, with the reason, for
`explain`. How each family is named, labelled and read is its value kind's (`value_kinds`).

Names are `<kind>_<path in snake_case>`: promtool-clean (`lint_safe_name`), unique across the
project (later collisions get `_2`, `_3`, in planning order), never ending in a suffix
Prometheus reserves for other types (`unreserved_name`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import schema as sch
from . import value_kinds as vk
from .crd import Crd, CrdVersion
from .errors import InputError
from .metric_config import VALUE_TYPES, KindMetricsConfig, MetricsConfig, PathEntry
from .naming import snake_case
from .plan_model import FamilyPlan, LeftOut
from .value_kinds import (
    CREATED_PATH,
    METADATA_FIELDS,
    METADATA_MAPS,
    NAME_PATH,
    About,
    ValueKind,
    label_name_for_key,
)

RESERVED_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_info")
DEFAULT_DEPTH = 2  # fields of spec/status (1) and of objects directly below them (2)
STATUS_DEPTH = 3  # status fields one level deeper still, when the cap leaves room
# A status string whose name ends in one of these words is a state an alert is written on.
STATE_WORDS = frozenset({"phase", "state", "status", "health", "robustness", "version"})
# A string whose name ends in one of these is free text: a label value per message is not a
# metric (and could be any length).
FREE_TEXT_WORDS = frozenset({"message", "reason", "description", "details", "detail", "error"})
# Status fields whose name ends in one of these words tell how much is running or held.
COUNT_WORDS = frozenset(
    {"replicas", "replica", "size", "count", "capacity", "available", "ready", "instances"}
)
CONDITIONS_PATH = ("status", "conditions")
_SIMPLE_JSONPATH = re.compile(r"^\.?[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$")
# promtool's lint (`promtool check metrics`) rejects these name tokens: abbreviated units,
# non-base units (with or without an SI prefix), and the family's own type name.
_UNIT_ABBREVIATIONS = frozenset(
    {"s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d"}
)
_BASE_UNITS = [
    "amperes",
    "bytes",
    "celsius",
    "grams",
    "joules",
    "kelvin",
    "meters",
    "metres",
    "seconds",
    "volts",
]
_OTHER_UNITS = [
    "minutes",
    "hours",
    "days",
    "weeks",
    "kelvins",
    "fahrenheit",
    "rankine",
    "inches",
    "yards",
    "miles",
    "bits",
    "calories",
    "pounds",
    "ounces",
]
_UNIT_PREFIXES = [
    "pico",
    "nano",
    "micro",
    "milli",
    "centi",
    "deci",
    "deca",
    "hecto",
    "kilo",
    "kibi",
    "mega",
    "mibi",
    "giga",
    "gibi",
    "tera",
    "tebi",
    "peta",
    "pebi",
]
# promtool flags a metric type's name anywhere in any family's name: spelled in the plural.
_TYPE_NAMES = {
    "counter": "counters",
    "gauge": "gauges",
    "histogram": "histograms",
    "summary": "summaries",
}
# Abbreviations with one meaning as a unit, spelled out (singular: promtool lints plurals).
_SPELLED_OUT = {
    "ms": "millisecond",
    "us": "microsecond",
    "sec": "second",
    "kb": "kilobyte",
    "mb": "megabyte",
    "gb": "gigabyte",
    "tb": "terabyte",
    "pb": "petabyte",
}
_NON_BASE_UNITS = frozenset(
    {p + u for p in ("", *_UNIT_PREFIXES) for u in (*_BASE_UNITS, *_OTHER_UNITS)} - set(_BASE_UNITS)
)
# The value kind of each kind of schema field that is planned without any user choice.
_FIELD_KINDS: dict[str, ValueKind] = {
    sch.NUMBER: vk.NUMBER,
    sch.NUMBER_STRING: vk.NUMBER_STRING,
    sch.BOOL: vk.BOOLEAN,
    sch.TIMESTAMP: vk.TIMESTAMP,
    sch.QUANTITY: vk.QUANTITY,
    sch.ENUM: vk.ENUM,
    sch.CONDITIONS: vk.CONDITIONS,
}
# Every `metadata.` path the config may name; any other is refused, not read as schema-less.
_METADATA_PATHS = frozenset(
    {CREATED_PATH, *(k.path for k in METADATA_MAPS.values()), *METADATA_FIELDS}
)

__all__ = ["FamilyChoice", "LeftOut", "label_name_for_key", "lint_safe_name", "plan_kind_families"]


@dataclass(frozen=True)
class FamilyChoice:
    """The families of one kind and what was left out."""

    families: tuple[FamilyPlan, ...]
    left_out: tuple[LeftOut, ...]
    cap: int


@dataclass
class _Candidate:
    path: tuple[str, ...]
    kind: ValueKind
    reason: str
    description: str = ""
    states: tuple[str, ...] = ()
    mandatory: bool = False  # not subject to the cap: every-kind families and user includes

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def _last_word(path: tuple[str, ...]) -> str:
    """`status.clusterHealth` → `health`: the word a field's name ends in."""
    return snake_case(path[-1]).rsplit("_", 1)[-1]


def is_free_text(path: tuple[str, ...]) -> bool:
    """A message, reason or description: left out unless included."""
    return _last_word(path) in FREE_TEXT_WORDS


def is_state_string(path: tuple[str, ...]) -> bool:
    """A status string whose name says it is a state (or a version): planned by default."""
    return path[0] == "status" and _last_word(path) in STATE_WORDS


def _config_error(config: MetricsConfig, what: str, line: int | None) -> InputError:
    return InputError(what, config.file, line, hint="see docs/metrics-config.md")


def _under(path: tuple[str, ...], entries: Iterable[PathEntry]) -> PathEntry | None:
    for entry in entries:
        if path[: len(entry.path)] == entry.path:
            return entry
    return None


def _column_path(json_path: str) -> tuple[str, ...] | None:
    text = json_path.strip()
    if not _SIMPLE_JSONPATH.match(text):
        return None
    return tuple(text.lstrip(".").split("."))


def lint_safe_name(name: str) -> str:
    """`name` without the tokens promtool's lint rejects, the separators kept.

    A plural unit becomes singular (`..._retention_days` → `..._retention_day`,
    `..._timeout_milliseconds` → `..._timeout_millisecond`), an unambiguous abbreviation is
    spelled out (`..._timeout_ms` → `..._timeout_millisecond`). What has no such spelling (the
    one-letter abbreviations, `ns`) is merged into the token before it. A metric type's name
    becomes plural (`..._status_summary_...` → `..._status_summaries_...`). The first token is
    never flagged by promtool.
    """

    def flagged(token: str) -> bool:
        return token in _UNIT_ABBREVIATIONS or token in _NON_BASE_UNITS or token in _TYPE_NAMES

    tokens = name.split("_")
    out = tokens[:1]
    for token in tokens[1:]:
        if flagged(token) and token:
            spelled = _SPELLED_OUT.get(token) or _TYPE_NAMES.get(token) or _singular(token)
            if spelled and not flagged(spelled):
                out.append(spelled)
            else:
                out[-1] += token
        else:
            out.append(token)
    return "_".join(out)


def _singular(token: str) -> str:
    if token.endswith("ches"):
        return token[:-2]
    return token[:-1] if token.endswith("s") else ""


def unreserved_name(name: str) -> str:
    """A name that ends in a suffix Prometheus reserves for other types, made plural
    (`..._retry_count` → `..._retry_counts`, `..._status_total` → `..._status_totals`)."""
    return f"{name}s" if name.endswith(RESERVED_SUFFIXES) else name


class _Planner:
    def __init__(
        self,
        crd: Crd,
        version: CrdVersion,
        snake: str,
        config: MetricsConfig,
        object_labels: tuple[str, ...],
        taken: set[str],
    ) -> None:
        self.crd = crd
        self.taken = taken  # family names already used in the project (updated here)
        self.root = version.schema
        self.version = version
        self.snake = snake
        self.config = config
        self.kind_config: KindMetricsConfig = config.for_kind(crd.name, crd.kind) or (
            KindMetricsConfig(key=crd.kind)
        )
        self.object_labels = object_labels
        self.left_out: list[LeftOut] = []
        self.left_paths: set[str] = set()
        self.candidates: list[_Candidate] = []
        self.seen: set[tuple[str, ...]] = set()

    # -- collecting -------------------------------------------------------------------------

    def leave(self, path: str, reason: str, by_cap: bool = False) -> None:
        """Record `path` as left out, once (the first reason is the one that decided)."""
        if path not in self.left_paths:
            self.left_paths.add(path)
            self.left_out.append(LeftOut(path, reason, by_cap))

    def offer(self, candidate: _Candidate) -> None:
        if candidate.path in self.seen:
            return
        excluded = _under(candidate.path, self.kind_config.exclude)
        if excluded is not None and not candidate.mandatory:
            self.leave(candidate.dotted, f"excluded in config ({excluded.dotted})")
            self.seen.add(candidate.path)
            return
        self.seen.add(candidate.path)
        self.candidates.append(candidate)

    def value_kind(self, field: sch.SchemaField, strings: bool) -> ValueKind | None:
        """How `field` is read: as the config's `type` says, else by its schema (a plain
        string only when `strings`: it was asked for, or is a state)."""
        requested = self.kind_config.types.get(field.dotted)
        if requested is not None and requested[0] in VALUE_TYPES:
            wanted, line = requested
            if field.kind not in (sch.STRING, sch.NUMBER_STRING):
                raise _config_error(
                    self.config,
                    f"{field.dotted}: `type: {wanted}` reads a plain string field, "
                    f"this one is {field.kind}",
                    line,
                )
            return vk.TIMESTAMP if wanted == "timestamp" else vk.QUANTITY
        if field.kind == sch.STRING:
            return vk.STRING if strings else None
        return _FIELD_KINDS.get(field.kind)

    def from_field(
        self, field: sch.SchemaField, reason: str, mandatory: bool = False, strings: bool = False
    ) -> bool:
        kind = self.value_kind(field, strings)
        if kind is None:
            return False
        requested = self.kind_config.types.get(field.dotted)
        if requested is not None and requested[0] in VALUE_TYPES:
            reason += f", read as a {requested[0]} (config type)"
        self.offer(
            _Candidate(
                field.path, kind, reason, field.description, field.states, mandatory=mandatory
            )
        )
        return True

    def collect(self) -> None:
        self.offer(_Candidate(NAME_PATH, vk.INFO, "every kind", mandatory=True))
        self.offer(_Candidate(CREATED_PATH, vk.CREATED, "every kind", mandatory=True))
        self.check_excludes()
        self.explicit_includes()
        self.configured_fields()
        conditions, _ = sch.find(self.root, CONDITIONS_PATH)
        if conditions is not None:
            if conditions.kind == sch.CONDITIONS:
                self.from_field(conditions, "status conditions", mandatory=True)
            else:
                self.leave("status.conditions", "conditions without `type` and `status` fields")
        for key, kind in METADATA_MAPS.items():
            if self.allow_list(key):
                self.offer(_Candidate(kind.path, kind, f"{kind.noun} allow-list", mandatory=True))
        self.printer_columns()
        self.defaults()

    def allow_list(self, key: str) -> tuple[str, ...]:
        """The `labels` or `annotations` keys of this kind (the kind's own list replaces the
        top-level one)."""
        if key == "labels":
            keys, default = self.kind_config.labels, self.config.labels
        else:
            keys, default = self.kind_config.annotations, self.config.annotations
        return default if keys is None else keys

    def check_excludes(self) -> None:
        include = {e.path for e in self.kind_config.include}
        for entry in self.kind_config.exclude:
            self.check_metadata_path(entry)
            if entry.path in _METADATA_PATHS:
                continue
            if entry.path in include:
                raise _config_error(
                    self.config, f"{entry.dotted} is both included and excluded", entry.line
                )
            found, unknown = sch.find(self.root, entry.path)
            if found is None and not unknown:
                raise self.no_such_field(entry)

    def check_metadata_path(self, entry: PathEntry) -> None:
        """`metadata` is not in CRD schemas (or only as a bare object, which would otherwise
        read any `metadata.` path as schema-less): only the known fields can be named."""
        if entry.path[0] == "metadata" and entry.path not in _METADATA_PATHS:
            known = ", ".join(sorted(".".join(p) for p in _METADATA_PATHS))
            raise _config_error(
                self.config,
                f"{entry.dotted} is not a metadata field operator-metrics knows ({known})",
                entry.line,
            )

    def no_such_field(self, entry: PathEntry) -> InputError:
        return _config_error(
            self.config,
            f"{self.crd.kind} {self.version.name} has no field {entry.dotted}",
            entry.line,
        )

    def explicit_includes(self) -> None:
        for entry in self.kind_config.include:
            reason = f"included in config ({entry.dotted})"
            self.check_metadata_path(entry)
            if entry.path == CREATED_PATH:
                continue
            if entry.path in METADATA_FIELDS:
                kind = METADATA_FIELDS[entry.path]
                self.offer(_Candidate(entry.path, kind, reason, mandatory=True))
                continue
            key = next((k for k, m in METADATA_MAPS.items() if m.path == entry.path), None)
            if key is not None:
                if not self.allow_list(key):
                    article = "an" if key[0] in "aeiou" else "a"
                    raise _config_error(
                        self.config,
                        f"{entry.dotted} needs {article} `{key}` allow-list",
                        entry.line,
                    )
                continue
            found, unknown = sch.find(self.root, entry.path)
            if found is None:
                if not unknown:
                    raise self.no_such_field(entry)
                self.offer(
                    _Candidate(entry.path, vk.QUANTITY, reason + ", schema-less", mandatory=True)
                )
                continue
            if found.kind == sch.OBJECT:
                below = list(sch.walk(self.root, top=(), below=entry.path))
                offered = [
                    self.from_field(f, reason, mandatory=True, strings=not is_free_text(f.path))
                    for f in below
                ]
                if not any(offered):
                    raise _config_error(
                        self.config,
                        f"{entry.dotted} has no field a metric can be made of",
                        entry.line,
                    )
            elif self.from_field(found, reason, mandatory=True, strings=True):
                pass
            elif found.kind == sch.ARRAY:
                self.offer(
                    _Candidate(
                        entry.path, vk.ITEM_COUNT, reason + ", number of items", mandatory=True
                    )
                )
            elif found.kind == sch.MAP and found.value_kind in (sch.NUMBER, sch.QUANTITY):
                self.offer(
                    _Candidate(entry.path, vk.MAP, reason + ", one series per key", mandatory=True)
                )
            else:
                what = {sch.UNKNOWN: "schema-less"}.get(
                    found.kind, f"a {found.kind} of {found.value_kind or 'unknown'} values"
                )
                raise _config_error(
                    self.config,
                    f"{entry.dotted} is {what}: no metric can be made of it"
                    + (", select a field below it" if found.kind == sch.UNKNOWN else ""),
                    entry.line,
                )

    def configured_fields(self) -> None:
        """A field the config renames or retypes is wanted: plan it whatever the cap or depth."""
        for dotted in sorted({*self.kind_config.rename, *self.kind_config.types}):
            path = tuple(dotted.split("."))
            if path[0] == "metadata" or _under(path, self.kind_config.exclude):
                continue
            found, _ = sch.find(self.root, path)
            if found is not None:
                self.from_field(found, f"configured ({dotted})", mandatory=True, strings=True)

    def printer_columns(self) -> None:
        for column in self.version.printer_columns:
            label = f"printer column {column.name!r}"
            path = _column_path(column.json_path)
            if path is None:
                if column.json_path.replace(" ", "").startswith(".status.conditions["):
                    continue  # covered by <kind>_status_condition
                self.leave(column.json_path, f"{label}: not a plain field path")
                continue
            if path == CREATED_PATH:
                continue
            found, unknown = sch.find(self.root, path)
            if found is None and self.is_status_string_key(path, unknown):
                where = unknown.removeprefix("unknown:")
                self.offer(_Candidate(path, vk.STRING, f"{label} (a key of the map {where})"))
            elif found is None and unknown:
                where = unknown.removeprefix("unknown:")
                self.leave(".".join(path), f"{label}: inside {where} (a map or schema-less)")
            elif found is None:
                self.leave(".".join(path), f"{label}: not in the schema")
            elif found.kind == sch.STRING and is_free_text(found.path):
                self.leave(found.dotted, f"{label}: free text: include it to serve it as a label")
            elif found.kind == sch.STRING and found.path[0] != "status":
                self.leave(found.dotted, f"{label}: a spec string: include it to serve it")
            elif not self.from_field(found, label, strings=True):
                self.leave(found.dotted, f"{label}: {found.kind} field")

    def is_status_string_key(self, path: tuple[str, ...], unknown: str) -> bool:
        """A printer column's path is one key of a `status` map of strings: a string state."""
        if not unknown or path[0] != "status":
            return False
        parent, _ = sch.find(self.root, path[:-1])
        return (
            parent is not None
            and parent.kind == sch.MAP
            and parent.value_kind == sch.STRING
            and not is_free_text(path)
        )

    def defaults(self) -> None:
        """Fields of `spec` and `status` to the planning depth, offered in the order the cap
        keeps them (see `priority`); every other field is left out with the reason."""
        for top in ("spec", "status"):
            found, _ = sch.find(self.root, (top,))
            if found is not None and found.kind == sch.UNKNOWN:
                self.leave(top, "schema-less (preserve-unknown-fields): include its fields by path")
        wanted: list[tuple[tuple[int, int], sch.SchemaField]] = []
        for field in sch.walk(self.root):
            depth = len(field.path) - 1
            if field.path == CONDITIONS_PATH or field.path in self.seen:
                continue
            if field.kind == sch.OBJECT or field.dotted in self.left_paths:
                continue
            limit = STATUS_DEPTH if field.path[0] == "status" else DEFAULT_DEPTH
            if depth > limit:
                if field.kind in _FIELD_KINDS:
                    self.leave(field.dotted, f"deeper than {limit} levels: include it")
                continue
            wanted.append((self.priority(field, depth), field))
        for _, field in sorted(wanted, key=lambda w: w[0]):
            depth = len(field.path) - 1
            where = field.path[0] if depth == 1 else f"nested {field.path[0]}"
            if field.kind == sch.STRING and is_free_text(field.path):
                self.leave(field.dotted, "free text: include it to serve it as a label")
            elif field.kind == sch.STRING and not is_state_string(field.path):
                self.leave(field.dotted, "string: include it to serve its value as a label")
            elif not self.from_field(field, f"{where} field", strings=True):
                kind = {sch.UNKNOWN: "schema-less (preserve-unknown-fields)"}.get(
                    field.kind, field.kind
                )
                self.leave(field.dotted, f"{kind}: include it to measure it")

    @staticmethod
    def priority(field: sch.SchemaField, depth: int) -> tuple[int, int]:
        """(rank, depth): the observed state first, what tells most first within it.

        0 status states, timestamps and counts; 1 other status fields; 2 spec counts and
        sizes; 3 other spec settings; 4 spec booleans; 5 status fields three levels deep.
        """
        telling = (
            field.kind in (sch.TIMESTAMP, sch.ENUM, sch.STRING)
            or _last_word(field.path) in COUNT_WORDS
        )
        if field.path[0] == "status":
            if depth > DEFAULT_DEPTH:
                return (5, depth)
            return (0 if telling else 1, depth)
        if field.kind == sch.BOOL:
            return (4, depth)
        return (2 if _last_word(field.path) in COUNT_WORDS else 3, depth)

    # -- choosing ---------------------------------------------------------------------------

    def cap(self) -> int:
        return self.kind_config.max_families or self.config.max_families

    def choose(self) -> list[_Candidate]:
        mandatory = [c for c in self.candidates if c.mandatory]
        optional = [c for c in self.candidates if c not in mandatory]
        room = max(0, self.cap() - len(mandatory))
        for dropped in optional[room:]:
            self.leave(dropped.dotted, f"over the cap of {self.cap()} families per kind", True)
        return mandatory + optional[:room]

    # -- naming -----------------------------------------------------------------------------

    def families(self) -> FamilyChoice:
        self.collect()
        chosen = self.choose()
        renames = dict(self.kind_config.rename)
        types = dict(self.kind_config.types)
        taken = self.taken
        planned: list[FamilyPlan] = []
        for c in chosen:
            metric_type = self.metric_type(c, types.pop(c.dotted, None))
            rename = renames.pop(c.dotted, None)
            name = self.name(c, metric_type, rename, taken)
            taken.update({name, name.removesuffix("_total"), name.removesuffix("_info")})
            planned.append(self.family(c, name, metric_type))
        for path, (_, line) in sorted({**renames, **types}.items()):
            opt_in = tuple(path.split(".")) in METADATA_FIELDS
            raise _config_error(
                self.config,
                f"{path} is not a planned metric of {self.crd.kind}"
                + (": include it to rename or retype it" if opt_in else ""),
                line,
            )
        return FamilyChoice(tuple(planned), tuple(self.left_out), self.cap())

    def metric_type(self, c: _Candidate, requested: tuple[str, int | None] | None) -> str:
        default = c.kind.metric_type
        if requested is None or requested[0] in VALUE_TYPES:
            return default
        wanted, line = requested
        if not c.kind.retypable:
            raise _config_error(
                self.config, f"{c.dotted}: the type of a {default} family cannot change", line
            )
        return wanted

    def name(
        self,
        c: _Candidate,
        metric_type: str,
        rename: tuple[str, int | None] | None,
        taken: set[str],
    ) -> str:
        if rename is not None:
            name, line = rename
            problem = self.rename_problem(name, metric_type, c)
            if name in taken:
                problem = "is already used by another metric"
            if problem:
                raise _config_error(self.config, f"rename of {c.dotted}: {name!r} {problem}", line)
            return name
        name = lint_safe_name(c.kind.base_name(self.snake, c.path))
        if not c.kind.reserved_suffix_ok:
            name = unreserved_name(name)
        if metric_type == "counter":
            name += "_total"
        if c.kind.name in METADATA_MAPS and name in taken:
            name = f"{self.snake}_metadata_{c.kind.name}"
        unique, n = name, 2
        while unique in taken or (
            metric_type == "counter" and unique.removesuffix("_total") in taken
        ):
            unique = (
                f"{name.removesuffix('_total')}_{n}_total"
                if metric_type == "counter"
                else f"{name}_{n}"
            )
            n += 1
        return unique

    def rename_problem(self, name: str, metric_type: str, c: _Candidate) -> str:
        if metric_type == "info" and c.kind is vk.INFO and not name.endswith("_info"):
            return "must end with _info"
        if metric_type == "counter" and not name.endswith("_total"):
            return "must end with _total (a counter)"
        if metric_type not in ("counter", "info") and name.endswith(RESERVED_SUFFIXES):
            return f"ends with a suffix reserved for other types ({', '.join(RESERVED_SUFFIXES)})"
        return ""

    def allow_list_of(self, kind: ValueKind) -> tuple[str, ...]:
        """The allow-listed keys a metadata map family reads (none for other kinds)."""
        return self.allow_list(kind.name) if kind.name in METADATA_MAPS else ()

    def extra_labels(self, c: _Candidate, name: str) -> tuple[str, ...]:
        keys = self.allow_list_of(c.kind)
        names = c.kind.extra_labels(name, c.path, self.object_labels, keys)
        if keys and (len(set(names)) != len(names) or set(names) & set(self.object_labels)):
            noun = METADATA_MAPS[c.kind.name].noun
            raise _config_error(
                self.config,
                f"{noun} keys of {self.crd.kind} map to the same metric label name "
                f"({', '.join(names)})",
                self.kind_config.line,
            )
        return names

    def family(self, c: _Candidate, name: str, metric_type: str) -> FamilyPlan:
        about = About(self.crd.kind, self.crd.plural, self.crd.group, c.path, c.description)
        return FamilyPlan(
            name=name,
            help=c.kind.help(about),
            type=metric_type,
            source=c.dotted,
            reason=c.reason,
            value_kind=c.kind,
            path=c.path if c.kind.keeps_path else (),
            extra_labels=self.extra_labels(c, name),
            states=c.states,
            label_keys=self.allow_list_of(c.kind),
        )


def plan_kind_families(
    crd: Crd,
    version: CrdVersion,
    snake: str,
    config: MetricsConfig,
    object_labels: Sequence[str],
    taken: set[str] | None = None,
) -> FamilyChoice:
    """The families of one kind and what was left out, from its schema and the user's config.

    `taken`: the family names other kinds of the project already use; the new ones are added,
    so two paths of two kinds (`Foo` `spec.spec.x`, `FooSpec` `spec.x`) never share a name.
    """
    planner = _Planner(
        crd, version, snake, config, tuple(object_labels), set() if taken is None else taken
    )
    return planner.families()


def check_config_kinds(config: MetricsConfig, crds: Sequence[Crd]) -> None:
    """Every `metrics.kinds` key names one of the project's CRDs (by CRD name or kind)."""
    known = {crd.name for crd in crds} | {crd.kind for crd in crds}
    for key, entry in sorted(config.kinds.items()):
        if key not in known:
            raise _config_error(
                config,
                f"metrics.kinds.{key}: no CRD of that kind or name in the project",
                entry.line,
            )
