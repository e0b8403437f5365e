"""The report period's bounds as people write them: RFC 3339 (`2026-01-31T00:00:00Z`), a
date (`2026-01-31`, midnight UTC), unix seconds, `now` or `now-7d`; and steps such as `5m`."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from ..errors import UsageError

_RELATIVE = re.compile(r"^now(?:-([1-9][0-9]*)([smhdw]))?$")
_DURATION = re.compile(r"^([1-9][0-9]*)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
TIME_HINT = "RFC 3339 (2026-01-31T00:00:00Z), a date (2026-01-31), unix seconds, now or now-7d"


def parse_time(flag: str, text: str, now: float | None = None) -> float:
    """Unix seconds for `text`; a UsageError naming `flag` when it is none of the forms."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        base = time.time() if now is None else now
        amount, unit = relative.groups()
        return float(int(base) - (int(amount) * _SECONDS[unit] if amount else 0))
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        return float(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{flag} {text[:100]!r} is not a time", hint=TIME_HINT) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def parse_step(text: str) -> int:
    """Seconds of a step such as `5m`; a UsageError otherwise."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(f"--step {text[:50]!r} is not a duration", hint="such as 60s, 5m or 1h")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def iso(seconds: float) -> str:
    """`2026-01-31T00:00:00Z` for unix seconds."""
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds")
    return stamp.replace("+00:00", "Z")
