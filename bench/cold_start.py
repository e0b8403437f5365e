"""Cold start: placeholder until the list/watch collector and the API test double land."""

from __future__ import annotations

from .common import Row


def run(size: int, *, quick: bool = False) -> list[Row]:
    return []
