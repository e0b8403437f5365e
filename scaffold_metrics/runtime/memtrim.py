"""Handing freed heap memory back to the system after a sync, where the C library allows it.

A sync decodes and drops megabytes of JSON a page at a time; glibc keeps what was freed for
later allocations, at the top of its heap and in its per-thread arenas, and counts it in the
process' RSS until something reuses it. `malloc_trim(0)` returns the free pages of every arena
to the kernel. It costs a walk over the heap (about a millisecond per 100 MB), done once per
sync, never per event. Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
_looked_up = False


def _malloc_trim() -> Callable[[int], int] | None:
    global _trim, _looked_up
    if not _looked_up:
        _looked_up = True
        try:
            _trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
        except (OSError, AttributeError):  # not glibc
            _trim = None
    return _trim


def trim_freed_memory() -> bool:
    """Return the C heap's free pages to the kernel; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
