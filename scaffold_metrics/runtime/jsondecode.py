"""Decoding the API's JSON: the one cost every watch event pays before anything else.

orjson (installed with the `runtime` extra) decodes Kubernetes objects about twice as fast as
the standard library; anything it refuses that the standard library accepts (a lone surrogate
escape, say) is decoded by the standard library, so the choice never changes what is read.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - the runtime extra installs it
    orjson = None  # type: ignore[assignment]


def decode_json(data: bytes | str) -> Any:
    """`json.loads`, faster when orjson is installed."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)
