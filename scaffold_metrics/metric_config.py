"""The `metrics:` section of `.operator-metrics.yaml`: the user's say over the planned families.

Parsed strictly (unknown keys, wrong types and invalid names are errors naming the file and
line) and kept with the line of every entry, so that a path the CRD does not have can still be
reported where it was written. The format is documented in `docs/metrics-config.md`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError

DEFAULT_MAX_FAMILIES = 40
METRIC_TYPES = ("gauge", "counter")
# `type:` values that say how a plain string field is read (the family is a gauge).
VALUE_TYPES = ("timestamp", "quantity")
_PATH_RE = re.compile(r"^[A-Za-z0-9_$@-][A-Za-z0-9_$@.-]*$")
_METRIC_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)

_TOP_KEYS = ("max_families", "labels", "annotations", "kinds")
_KIND_KEYS = ("include", "exclude", "labels", "annotations", "max_families", "rename", "type")


@dataclass(frozen=True)
class PathEntry:
    """A path written in the config (`spec.size`) with where it was written."""

    path: tuple[str, ...]
    line: int | None

    @property
    def dotted(self) -> str:
        """The path as written."""
        return ".".join(self.path)


@dataclass(frozen=True)
class KindMetricsConfig:
    """Choices for one kind (keyed by kind or CRD name in the file)."""

    key: str
    line: int | None = None
    include: tuple[PathEntry, ...] = ()
    exclude: tuple[PathEntry, ...] = ()
    labels: tuple[str, ...] | None = None
    annotations: tuple[str, ...] | None = None
    max_families: int | None = None
    rename: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    types: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricsConfig:
    """The whole `metrics:` section; the default is what an absent section means."""

    file: Path | None = None
    max_families: int = DEFAULT_MAX_FAMILIES
    labels: tuple[str, ...] = ()
    annotations: tuple[str, ...] = ()
    kinds: Mapping[str, KindMetricsConfig] = field(default_factory=dict)

    def for_kind(self, crd_name: str, kind: str) -> KindMetricsConfig | None:
        """The entry for a CRD, looked up by CRD name first, then by kind."""
        return self.kinds.get(crd_name) or self.kinds.get(kind)


def _line(data: Any, key: Any = None) -> int | None:
    try:
        if key is None:
            return int(data.lc.line) + 1
        return int(data.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return None


def _item_line(data: Any, index: int) -> int | None:
    try:
        return int(data.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return None


class _Reader:
    def __init__(self, file: Path | None) -> None:
        self.file = file

    def fail(self, what: str, line: int | None, hint: str | None = None) -> InputError:
        return InputError(what, self.file, line, hint=hint or "see docs/metrics-config.md")

    def mapping(self, value: Any, what: str, line: int | None) -> Mapping[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(f"`{what}` must be a mapping", line)
        return value

    def keys(self, data: Mapping[Any, Any], allowed: tuple[str, ...], what: str) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"unknown key {key!r} in `{what}`",
                    _line(data, key),
                    hint=f"known keys: {', '.join(allowed)}",
                )

    def cap(self, data: Mapping[Any, Any], what: str) -> int | None:
        if "max_families" not in data:
            return None
        value = data["max_families"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail(
                f"`{what}.max_families` must be a positive integer", _line(data, "max_families")
            )
        return value

    def path(self, text: Any, what: str, line: int | None) -> tuple[str, ...]:
        if not isinstance(text, str) or not _PATH_RE.match(text) or ".." in text:
            raise self.fail(
                f"`{what}`: {text!r} is not a field path",
                line,
                hint="write paths like spec.size or status.conditions",
            )
        parts = tuple(text.split("."))
        if parts[0] not in ("spec", "status", "metadata") or text.endswith("."):
            raise self.fail(
                f"`{what}`: path {text!r} must start with spec., status. or metadata.", line
            )
        return parts

    def paths(self, data: Mapping[Any, Any], key: str, what: str) -> tuple[PathEntry, ...]:
        value = data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(f"`{what}.{key}` must be a list of paths", _line(data, key))
        entries = []
        for index, item in enumerate(value):
            line = _item_line(value, index) or _line(data, key)
            entries.append(PathEntry(self.path(item, f"{what}.{key}", line), line))
        return tuple(entries)

    def keys_list(self, data: Mapping[Any, Any], key: str, what: str) -> tuple[str, ...] | None:
        """A `labels` or `annotations` allow-list: both take Kubernetes label-key syntax."""
        if key not in data:
            return None
        value = data[key]
        if value is None:
            return ()
        noun = key.removesuffix("s")
        if not isinstance(value, list):
            raise self.fail(f"`{what}.{key}` must be a list of {noun} keys", _line(data, key))
        for index, item in enumerate(value):
            if not isinstance(item, str) or not _LABEL_KEY_RE.match(item):
                raise self.fail(
                    f"`{what}.{key}`: {item!r} is not a Kubernetes {noun} key",
                    _item_line(value, index) or _line(data, key),
                )
        if len(set(value)) != len(value):
            raise self.fail(f"`{what}.{key}` lists a key twice", _line(data, key))
        return tuple(value)

    def path_map(
        self, data: Mapping[Any, Any], key: str, what: str, check: Any
    ) -> dict[str, tuple[str, int | None]]:
        value = self.mapping(data.get(key), f"{what}.{key}", _line(data, key))
        result: dict[str, tuple[str, int | None]] = {}
        for path, target in value.items():
            line = _line(value, path) or _line(data, key)
            dotted = ".".join(self.path(path, f"{what}.{key}", line))
            if not isinstance(target, str) or not check(target):
                raise self.fail(f"`{what}.{key}`: invalid value {target!r} for {dotted}", line)
            result[dotted] = (target, line)
        return result


def parse_metrics_config(data: Any, file: Path | None) -> MetricsConfig:
    """Validate the `metrics:` section (`data` as loaded by ruamel, or None when absent)."""
    if data is None:
        return MetricsConfig(file=file)
    reader = _Reader(file)
    top = reader.mapping(data, "metrics", _line(data))
    reader.keys(top, _TOP_KEYS, "metrics")
    kinds_data = reader.mapping(top.get("kinds"), "metrics.kinds", _line(top, "kinds"))
    kinds: dict[str, KindMetricsConfig] = {}
    for key, raw in kinds_data.items():
        what = f"metrics.kinds.{key}"
        line = _line(kinds_data, key)
        if not isinstance(key, str) or not key:
            raise reader.fail("`metrics.kinds` keys are kind or CRD names", line)
        entry = reader.mapping(raw, what, line)
        reader.keys(entry, _KIND_KEYS, what)
        kinds[key] = KindMetricsConfig(
            key=key,
            line=line,
            include=reader.paths(entry, "include", what),
            exclude=reader.paths(entry, "exclude", what),
            labels=reader.keys_list(entry, "labels", what),
            annotations=reader.keys_list(entry, "annotations", what),
            max_families=reader.cap(entry, what),
            rename=reader.path_map(entry, "rename", what, _METRIC_NAME_RE.match),
            types=reader.path_map(entry, "type", what, (*METRIC_TYPES, *VALUE_TYPES).__contains__),
        )
    return MetricsConfig(
        file=file,
        max_families=reader.cap(top, "metrics") or DEFAULT_MAX_FAMILIES,
        labels=reader.keys_list(top, "labels", "metrics") or (),
        annotations=reader.keys_list(top, "annotations", "metrics") or (),
        kinds=kinds,
    )
