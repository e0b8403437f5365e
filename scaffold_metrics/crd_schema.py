"""Type checks and size bounds of a CRD version's `openAPIV3Schema`, before anything walks it.

The schema walker (`schema.py`) reads a handful of keywords and trusts what it finds; the API
server would refuse a CRD whose keywords have the wrong type, so this refuses it too (with the
line), instead of reading `enum: "a"` as three states or skipping a mistyped subtree silently.
Enum values and properties per object are bounded so that a CRD within the YAML size bounds
still plans and renders in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import InputError

MAX_ENUM_VALUES = 1_000
MAX_PROPERTIES = 10_000  # of one object schema

# (line of `key` in `node`) for error messages.
LineOf = Callable[[Any, str], int]

_STRING_KEYS = (
    "type",
    "format",
    "description",
    "pattern",
    "title",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
)
_BOOL_KEYS = (
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "nullable",
)
_SCHEMA_LIST_KEYS = ("allOf", "anyOf", "oneOf")


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def check_schema(root: Mapping[str, Any], file: Path, lines: LineOf) -> None:
    """Refuse a schema whose keywords the walker reads have the wrong type, or whose enums or
    objects are larger than the bounds. Iterative: depth is bounded by the YAML already, and
    the expanded size (aliases followed) too, so this visits a bounded number of nodes."""
    pending: list[tuple[Mapping[str, Any], str]] = [(root, "openAPIV3Schema")]
    while pending:
        node, where = pending.pop()

        def fail(key: str, what: str, node: Mapping[str, Any] = node, where: str = where) -> None:
            raise InputError(f"{where}.{key} {what}", file, lines(node, key))

        for key in _STRING_KEYS:
            if key in node and not isinstance(node[key], str):
                fail(key, "must be a string")
        for key in _BOOL_KEYS:
            if key in node and not isinstance(node[key], bool):
                fail(key, "must be true or false")
        if "required" in node and not (
            _is_list(node["required"]) and all(isinstance(v, str) for v in node["required"])
        ):
            fail("required", "must be a list of property names")
        if "enum" in node:
            enum = node["enum"]
            if not _is_list(enum):
                fail("enum", "must be a list")
            if len(enum) > MAX_ENUM_VALUES:
                fail("enum", f"has {len(enum):,} values, more than {MAX_ENUM_VALUES:,}")
        if "properties" in node:
            properties = node["properties"]
            if not isinstance(properties, Mapping):
                fail("properties", "must be a mapping of property names to schemas")
            if len(properties) > MAX_PROPERTIES:
                fail(
                    "properties",
                    f"has {len(properties):,} properties, more than {MAX_PROPERTIES:,}",
                )
            for name, child in properties.items():
                if not isinstance(name, str) or not isinstance(child, Mapping):
                    fail("properties", f"entry {str(name)[:80]!r} must be a schema (a mapping)")
                pending.append((child, f"{where}.properties.{name}"))
        for key in _SCHEMA_LIST_KEYS:
            if key in node:
                parts = node[key]
                if not _is_list(parts) or not all(isinstance(p, Mapping) for p in parts):
                    fail(key, "must be a list of schemas")
                pending.extend((part, f"{where}.{key}[{i}]") for i, part in enumerate(parts))
        if "not" in node:
            if not isinstance(node["not"], Mapping):
                fail("not", "must be a schema (a mapping)")
            pending.append((node["not"], f"{where}.not"))
        if "items" in node:
            items = node["items"]
            if isinstance(items, Mapping):
                pending.append((items, f"{where}.items"))
            elif _is_list(items) and all(isinstance(i, Mapping) for i in items):
                pending.extend((item, f"{where}.items[{i}]") for i, item in enumerate(items))
            else:
                fail("items", "must be a schema (a mapping)")
        if "additionalProperties" in node:
            extra = node["additionalProperties"]
            if isinstance(extra, Mapping):
                pending.append((extra, f"{where}.additionalProperties"))
            elif not isinstance(extra, bool):
                fail("additionalProperties", "must be a schema or true/false")
