"""Reading sections of `.operator-metrics.yaml` strictly, with the line of what is wrong.

The config is loaded in round-trip mode, so every mapping and sequence knows where its keys
and items start; each section reader asks here for those lines and for the two checks every
section makes (known keys only, non-empty strings), so all of them word their errors alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InputError


def line_of(data: Any, key: str | int | None = None) -> int | None:
    """The 1-based line of `data` itself (None), of its key `key` (str) or of its item `key`
    (int); None when `data` was not loaded with positions (plain data, a default)."""
    try:
        if key is None:
            return int(data.lc.line) + 1
        if isinstance(key, int):
            return int(data.lc.item(key)[0]) + 1
        return int(data.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return None


def known_keys(
    where: str, data: Any, file: Path, keys: tuple[str, ...], line: int | None = None
) -> Mapping[str, Any]:
    """`data` when it is a mapping holding none but `keys`, else an error at the line of
    `data` (or `line`, for a mapping that may have no position of its own) or of the key."""
    if not isinstance(data, Mapping):
        raise InputError(f"`{where}` must be a mapping", file, line or line_of(data))
    for key in data:
        if key not in keys:
            raise InputError(
                f"unknown key {key!r} in `{where}`",
                file,
                line_of(data, str(key)),
                hint=f"known keys: {', '.join(keys)}",
            )
    return data


def non_empty_string(
    where: str, data: Mapping[str, Any], key: str, file: Path, default: str
) -> str:
    """`data[key]` (or `default` when absent) when it is a string with more than blanks."""
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"`{where}.{key}` must be a non-empty string", file, line_of(data, key))
    return value
