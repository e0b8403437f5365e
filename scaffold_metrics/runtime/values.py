"""Reading values out of custom-resource dicts, for generated generators.

Generated code stays declarative (a table row per family) while the type checks and conversions
live here, tested once. These run on every watch event, so they avoid regexes where a dict
lookup will do and never raise on bad data: an absent value gives no sample, a value of the
wrong type gives no sample and one `SampleSet.problem`.

Conversions follow kube-state-metrics' Custom Resource State rules where both apply (booleans
0/1, RFC 3339 in whole Unix seconds, Kubernetes quantities and `N%` as numbers), so an exported
KSM config serves the same values.
"""

from __future__ import annotations

import calendar
import datetime
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .families import MetricFamilyDef
from .samples import SampleSet

CONDITION_STATUSES = ("True", "False", "Unknown")
# The longest string a string family serves as a label value (a state, a version, an image).
MAX_STRING_VALUE = 256

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_PERCENT = re.compile(r"^[0-9]+(?:\.[0-9]+)?%$")
_SUFFIX_FACTORS = {
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}


_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_INF = math.inf


class _Absent:
    """Marker for a value the object does not have (distinct from an explicit wrong type)."""


ABSENT = _Absent()


def object_identity(obj: Mapping[str, Any], namespaced: bool) -> tuple[str, ...]:
    """Label values identifying `obj`: (namespace, name) for namespaced kinds, else (name,)."""
    metadata = obj.get("metadata")
    if type(metadata) is not dict and not isinstance(metadata, Mapping):
        metadata = {}
    name = str(metadata.get("name") or "")
    if namespaced:
        return (str(metadata.get("namespace") or ""), name)
    return (name,)


def lookup(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at `path`, `None` when absent or null; raises TypeError through a non-object."""
    value: Any = obj
    for key in path:
        if value is None:
            return None
        # Decoded JSON objects are dicts: check that first, the ABC check is ten times slower.
        if type(value) is not dict and not isinstance(value, Mapping):
            raise TypeError(f"{'.'.join(path)}: {key!r} is under a {type(value).__name__}")
        value = value.get(key)
    return value


def _where(family: MetricFamilyDef, path: tuple[str, ...]) -> str:
    return f"{family.name}: {'.'.join(path)}"


def _get(
    samples: SampleSet, family: MetricFamilyDef, obj: Mapping[str, Any], path: tuple[str, ...]
) -> Any:
    """The value at `path`, or ABSENT (no sample) after recording a problem if unreadable."""
    value: Any = obj
    for key in path:  # decoded JSON is dicts all the way down: walk those without a call
        if type(value) is not dict:
            return _get_checked(samples, family, obj, path)
        value = value.get(key)
    return ABSENT if value is None else value


def _get_checked(
    samples: SampleSet, family: MetricFamilyDef, obj: Mapping[str, Any], path: tuple[str, ...]
) -> Any:
    """`_get` through `lookup`, for paths that meet a null or something other than a dict."""
    try:
        value = lookup(obj, path)
    except TypeError as exc:
        samples.problem(f"{family.name}: {exc}")
        return ABSENT
    return ABSENT if value is None else value


def _wrong(samples: SampleSet, family: MetricFamilyDef, path: tuple[str, ...], value: Any) -> None:
    samples.problem(f"{_where(family, path)}: unexpected {type(value).__name__} value")


def parse_timestamp(text: str) -> float | None:
    """RFC 3339 text → whole Unix seconds (fractions dropped, as kube-state-metrics does).

    `datetime.fromisoformat` (C, three times faster than the expression below) reads what
    Kubernetes writes; anything it refuses or reads without a zone goes through the strict
    RFC 3339 expression (leap seconds, or older Pythons' narrower ISO support).
    """
    if text[-1:] in ("Z", "z"):
        iso = text[:-1] + "+00:00"
    elif text[-3:-2] == ":":
        iso = text
    else:  # no zone, or an offset without its colon: not RFC 3339, let the strict path say
        return _parse_timestamp(text)
    try:
        moment = datetime.datetime.fromisoformat(iso)
    except ValueError:
        return _parse_timestamp(text)
    if moment.tzinfo is None or len(text) < 20 or text[10] not in "Tt ":
        return _parse_timestamp(text)
    return float(math.floor(moment.timestamp()))


def _parse_timestamp(text: str) -> float | None:
    """The strict RFC 3339 reading."""
    match = _RFC3339.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = map(int, match.groups()[:6])
    if not (
        year >= 1  # year 0 matches the expression but no `datetime.date` holds it
        and 1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour < 24
        and minute < 60
        and second < 61
    ):
        return None
    # calendar.timegm's own arithmetic, without its tuple handling (this runs on every event).
    days = datetime.date(year, month, 1).toordinal() - _EPOCH_ORDINAL + day - 1
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    if match.group(8) is not None:
        offset = int(match.group(9)) * 3600 + int(match.group(10)) * 60
        seconds -= offset if match.group(8) == "+" else -offset
    return float(seconds)


def parse_quantity(text: str) -> float | None:
    """A Kubernetes quantity (`500m`, `1Gi`, `1e3`, `2`) or a percentage (`25%` → 0.25).

    None also when the value does not fit a float (`1e400`, 400 digits): a series saying
    +Inf for a finite quantity would be wrong, and an exception would cost the whole object.
    """
    match = _QUANTITY.match(text)
    if match is not None:
        number, suffix = match.groups()
        value = float(number)
        if suffix is not None:
            factor = _SUFFIX_FACTORS.get(suffix)
            if factor is None:
                try:
                    factor = 10.0 ** int(suffix[1:])
                except (OverflowError, ValueError):  # ValueError: past int's digit limit
                    return None if value else 0.0
            value *= factor
    elif _PERCENT.match(text):
        value = float(text[:-1]) / 100.0
    else:
        return None
    return value if -_INF < value < _INF else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range (JSON allows any number of digits)
        return None
    return None if math.isnan(number) else number


def _read_scalar(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    path: tuple[str, ...],
    convert: Callable[[Any], float | None],
) -> None:
    """One sample from the value at `path` through `convert` (None: wrong type, a problem)."""
    value = _get(samples, family, obj, path)
    if value is ABSENT:
        return
    number = convert(value)
    if number is None:
        _wrong(samples, family, path, value)
        return
    samples.raw.append((family, labels, number))  # `samples.add`, one call less per sample


def _bool(value: Any) -> float | None:
    return (1.0 if value else 0.0) if isinstance(value, bool) else None


def _timestamp(value: Any) -> float | None:
    return parse_timestamp(value) if isinstance(value, str) else None


def _quantity(value: Any) -> float | None:
    return parse_quantity(value) if isinstance(value, str) else _number(value)


def read_number(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    path: tuple[str, ...],
) -> None:
    """An `integer` or `number` field as its value."""
    _read_scalar(samples, family, labels, obj, path, _number)


def read_bool(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    path: tuple[str, ...],
) -> None:
    """A `boolean` field as 1 or 0."""
    _read_scalar(samples, family, labels, obj, path, _bool)


def read_timestamp(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    path: tuple[str, ...],
) -> None:
    """A `date-time` string as Unix seconds."""
    _read_scalar(samples, family, labels, obj, path, _timestamp)


def read_quantity(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    path: tuple[str, ...],
) -> None:
    """An int-or-string field: a number, or a quantity / percentage string, as a number."""
    _read_scalar(samples, family, labels, obj, path, _quantity)


def read_enum(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    path: tuple[str, ...],
    states: tuple[str, ...],
) -> None:
    """A string with an `enum`: one sample per allowed value, 1 for the current one."""
    value = _get(samples, family, obj, path)
    if value is ABSENT:
        return
    if not isinstance(value, str):
        _wrong(samples, family, path, value)
        return
    append = samples.raw.append
    for state in states:
        append((family, (*labels, state), 1.0 if state == value else 0.0))


def read_string(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    path: tuple[str, ...],
) -> None:
    """A string as the value of the family's last label, on one sample of 1 (an info-style
    family, as kube-state-metrics' `Info` serves it).

    A value longer than `MAX_STRING_VALUE` characters gives no sample and one problem: a
    label value of any length would be served on every scrape.
    """
    value = _get(samples, family, obj, path)
    if value is ABSENT:
        return
    if type(value) is not str:
        _wrong(samples, family, path, value)
        return
    if len(value) > MAX_STRING_VALUE:
        samples.problem(f"{_where(family, path)}: value longer than {MAX_STRING_VALUE} characters")
        return
    samples.raw.append((family, (*labels, value), 1.0))


def read_conditions(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    path: tuple[str, ...],
) -> None:
    """`status.conditions`: per condition type, one sample per status, 1 for the current one.

    A condition type listed twice keeps its first entry (and counts a problem): two series
    with the same labels would make the whole exposition invalid.
    """
    value = _get(samples, family, obj, path)
    if value is ABSENT:
        return
    if not isinstance(value, list) and (
        not isinstance(value, Sequence) or isinstance(value, (str, bytes))
    ):
        _wrong(samples, family, path, value)
        return
    seen: set[str] = set()
    append = samples.raw.append  # `samples.add`, one call less per sample
    for item in value:
        kind = item.get("type") if isinstance(item, (dict, Mapping)) else None
        if not isinstance(kind, str):
            samples.problem(f"{_where(family, path)}: condition without a string `type`")
            continue
        if kind in seen:
            samples.problem(f"{_where(family, path)}: condition type {kind!r} listed twice")
            continue
        seen.add(kind)
        status = item.get("status")
        typed = (*labels, kind)
        for candidate in CONDITION_STATUSES:
            append((family, (*typed, candidate), 1.0 if status == candidate else 0.0))


def read_labels(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    keys: tuple[str, ...],
    path: tuple[str, ...] = ("metadata", "labels"),
) -> None:
    """Allow-listed keys of a string map (`metadata.labels`, or `metadata.annotations` by
    `path`) as label values ("" when unset) of one sample.

    No sample when the object has none of the keys, as kube-state-metrics does.
    """
    value = _get(samples, family, obj, path)
    if value is ABSENT:
        return
    if not isinstance(value, Mapping):
        _wrong(samples, family, path, value)
        return
    found = tuple(value.get(key) for key in keys)
    if all(v is None for v in found):
        return
    samples.add(family, (*labels, *("" if v is None else str(v) for v in found)), 1.0)


def read_map(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    path: tuple[str, ...],
) -> None:
    """A map of numbers or quantities: one sample per key (sorted), the key as a label."""
    value = _get(samples, family, obj, path)
    if value is ABSENT:
        return
    if not isinstance(value, Mapping):
        _wrong(samples, family, path, value)
        return
    for key in sorted(str(k) for k in value):
        item = value[key]
        number = parse_quantity(item) if isinstance(item, str) else _number(item)
        if number is None:
            _wrong(samples, family, (*path, key), item)
            continue
        samples.add(family, (*labels, key), number)


def read_length(
    samples: SampleSet,
    family: MetricFamilyDef,
    labels: tuple[str, ...],
    obj: Mapping[str, Any],
    path: tuple[str, ...],
) -> None:
    """An array as its number of items."""
    value = _get(samples, family, obj, path)
    if value is ABSENT:
        return
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        _wrong(samples, family, path, value)
        return
    samples.add(family, labels, float(len(value)))
