"""Walk a CRD version's `openAPIV3Schema` into the fields a metric could be made from.

The planner decides which fields become families; this module only says what each field *is*
(a number, a boolean, a timestamp, a quantity, an enum, the usual `conditions`, an array, a
free-form map, a schema-less subtree, an object) and where it sits. Pure and deterministic:
properties are visited in the CRD's own order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# What a field holds, as far as metrics care.
NUMBER = "number"
BOOL = "bool"
TIMESTAMP = "timestamp"
QUANTITY = "quantity"
NUMBER_STRING = "numeric string"  # `type: string` with `format: int64|int32|double|float`
ENUM = "enum"
CONDITIONS = "conditions"
STRING = "string"
ARRAY = "array"
MAP = "map"
OBJECT = "object"
UNKNOWN = "unknown"  # x-kubernetes-preserve-unknown-fields or no schema at all

# String formats that say the text is a number (Kubernetes writes int64 as strings at times).
NUMBER_FORMATS = frozenset({"int64", "int32", "double", "float"})
# Kinds of field that give a one-call value family without any user choice.
SCALAR_KINDS = frozenset({NUMBER, BOOL, TIMESTAMP, QUANTITY, ENUM})
# Walking stops this deep (object nesting only, arrays are not entered): enough for any real
# CRD and a guard against pathological ones.
MAX_WALK_DEPTH = 12


@dataclass(frozen=True)
class SchemaField:
    """One property of the schema: its path from the object root and what it holds."""

    path: tuple[str, ...]
    kind: str
    description: str = ""
    states: tuple[str, ...] = ()
    value_kind: str = ""  # for MAP: the kind of its values

    @property
    def dotted(self) -> str:
        """`spec.size`: how paths are written in the config and in `explain`."""
        return ".".join(self.path)


def _merged(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """`allOf` parts folded into one mapping (the first definition of a key wins)."""
    parts = schema.get("allOf")
    if not isinstance(parts, Sequence) or isinstance(parts, str):
        return schema
    merged: dict[str, Any] = dict(schema)
    for part in parts:
        if isinstance(part, Mapping):
            for key, value in _merged(part).items():
                merged.setdefault(key, value)
    return merged


def _alternatives_types(schema: Mapping[str, Any]) -> set[str]:
    types: set[str] = set()
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, Sequence) and not isinstance(options, str):
            for option in options:
                if isinstance(option, Mapping) and isinstance(option.get("type"), str):
                    types.add(option["type"])
    return types


def classify(schema: Mapping[str, Any]) -> tuple[str, tuple[str, ...], str]:
    """(kind, enum states, map value kind) of one property schema."""
    schema = _merged(schema)
    if schema.get("x-kubernetes-int-or-string") is True:
        return QUANTITY, (), ""
    if schema.get("x-kubernetes-preserve-unknown-fields") is True and not schema.get("properties"):
        return UNKNOWN, (), ""
    kind = schema.get("type")
    if not isinstance(kind, str):
        alternatives = _alternatives_types(schema)
        if alternatives == {"integer", "string"} or alternatives == {"number", "string"}:
            return QUANTITY, (), ""
        kind = "object" if isinstance(schema.get("properties"), Mapping) else ""
    if kind in ("integer", "number"):
        return NUMBER, (), ""
    if kind == "boolean":
        return BOOL, (), ""
    if kind == "string":
        if schema.get("format") == "date-time":
            return TIMESTAMP, (), ""
        if schema.get("format") in NUMBER_FORMATS:
            return NUMBER_STRING, (), ""
        enum = schema.get("enum")
        if isinstance(enum, Sequence) and not isinstance(enum, str) and enum:
            states = tuple(dict.fromkeys(str(v) for v in enum if v is not None))
            if states:
                return ENUM, states, ""
        return STRING, (), ""
    if kind == "array":
        return ARRAY, (), ""
    if kind == "object":
        properties = schema.get("properties")
        if isinstance(properties, Mapping) and properties:
            return OBJECT, (), ""
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            value_kind = classify(extra)[0]
            return MAP, (), value_kind
        return UNKNOWN, (), ""
    return UNKNOWN, (), ""


def _properties(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = _merged(schema).get("properties")
    return properties if isinstance(properties, Mapping) else {}


def is_conditions(schema: Mapping[str, Any]) -> bool:
    """An array of objects with `type` and `status` (the metav1.Condition shape)."""
    schema = _merged(schema)
    items = schema.get("items")
    if schema.get("type") != "array" or not isinstance(items, Mapping):
        return False
    properties = _properties(items)
    return "type" in properties and "status" in properties


def first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of a description, on one line, at most `limit` characters."""
    flat = " ".join(str(text).split())
    for index in range(len(flat) - 1):
        if flat[index] in ".!?" and flat[index + 1] == " ":
            flat = flat[: index + 1]
            break
    if len(flat) > limit:
        flat = flat[: limit - 3].rstrip() + "..."
    return flat


def describe(schema: Mapping[str, Any], path: tuple[str, ...]) -> SchemaField:
    """The field at `path` whose property schema is `schema`."""
    kind, states, value_kind = classify(schema)
    if kind == ARRAY and is_conditions(schema):
        kind = CONDITIONS
    description = schema.get("description")
    return SchemaField(
        path=path,
        kind=kind,
        description=first_sentence(description) if isinstance(description, str) else "",
        states=states,
        value_kind=value_kind,
    )


def walk(
    root: Mapping[str, Any] | None,
    top: Sequence[str] = ("spec", "status"),
    below: tuple[str, ...] = (),
) -> Iterator[SchemaField]:
    """Every field below the `top` properties (or below the object at `below`), depth first in
    schema order; arrays are not entered."""
    if root is None:
        return
    if below:
        schema = _schema_at(root, below)
        if schema is not None:
            yield from _walk(schema, below)
        return
    properties = _properties(root)
    for name in top:
        schema = properties.get(name)
        if isinstance(schema, Mapping):
            yield from _walk(schema, (name,))


def _schema_at(root: Mapping[str, Any], path: Sequence[str]) -> Mapping[str, Any] | None:
    schema: Mapping[str, Any] = root
    for name in path:
        child = _properties(schema).get(name)
        if not isinstance(child, Mapping):
            return None
        schema = child
    return schema


def _walk(schema: Mapping[str, Any], path: tuple[str, ...]) -> Iterator[SchemaField]:
    if len(path) > MAX_WALK_DEPTH:
        return
    for name, child in _properties(schema).items():
        if not isinstance(child, Mapping):
            continue
        field = describe(child, (*path, str(name)))
        yield field
        if field.kind == OBJECT:
            yield from _walk(child, field.path)


def find(root: Mapping[str, Any] | None, path: Sequence[str]) -> tuple[SchemaField | None, str]:
    """The field at `path` and, when there is none, why: `""`, or the schema-less ancestor.

    Returns `(None, "unknown:<dotted ancestor>")` when an ancestor is schema-less
    (preserve-unknown-fields or a free-form map), so the caller can still read it untyped.
    """
    if root is None or not path:
        return None, ""
    schema: Mapping[str, Any] = root
    for depth, name in enumerate(path):
        child = _properties(schema).get(name)
        if not isinstance(child, Mapping):
            kind = classify(schema)[0] if depth else OBJECT
            if kind in (UNKNOWN, MAP) or _merged(schema).get(
                "x-kubernetes-preserve-unknown-fields"
            ):
                return None, "unknown:" + ".".join(path[:depth])
            return None, ""
        schema = child
    return describe(schema, tuple(path)), ""
