"""Reading values out of custom-resource dicts, for generated generators.

Generated code stays declarative (one call per family) while the type checks and conversions
live here, tested once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def object_identity(obj: Mapping[str, Any], namespaced: bool) -> tuple[str, ...]:
    """Label values identifying `obj`: (namespace, name) for namespaced kinds, else (name,)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    name = str(metadata.get("name") or "")
    if namespaced:
        return (str(metadata.get("namespace") or ""), name)
    return (name,)
