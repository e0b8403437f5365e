"""The fast RFC 3339 reading agrees with the strict one on every shape, valid or not."""

from __future__ import annotations

import pytest

from scaffold_metrics.runtime.values import _parse_timestamp, parse_timestamp

CASES = [
    ("2026-11-27T13:27:18Z", 1795786038.0),
    ("2026-11-27T13:27:18.123456Z", 1795786038.0),
    ("2026-11-27T13:27:18.5Z", 1795786038.0),
    ("2026-11-27T13:27:18+02:00", 1795778838.0),
    ("2026-11-27T13:27:18-05:30", 1795805838.0),
    ("2026-11-27t13:27:18z", 1795786038.0),
    ("2026-11-27 13:27:18Z", 1795786038.0),
    ("2016-12-31T23:59:60Z", 1483228800.0),  # a leap second: only the strict path reads it
    ("1969-12-31T23:59:59.5Z", -1.0),
    ("2026-11-27", None),
    ("2026-11-27T13:27:18", None),  # no zone
    ("2026-11-27T13:27:18+0000", None),  # offset without its colon
    ("20261127T132718Z", None),
    ("2026-13-01T00:00:00Z", None),
    ("2026-02-30T00:00:00Z", None),  # no such day: refused, not rolled into March
    ("2026-04-31T00:00:00Z", None),
    ("2024-02-29T00:00:00Z", 1709164800.0),  # a leap day
    ("2100-02-29T00:00:00Z", None),  # not a leap year
    ("garbage", None),
    ("", None),
    ("Z", None),
]


@pytest.mark.parametrize(("text", "seconds"), CASES)
def test_fast_and_strict_readings_agree(text: str, seconds: float | None) -> None:
    assert parse_timestamp(text) == seconds
    assert _parse_timestamp(text) == seconds
