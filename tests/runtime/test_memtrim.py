"""The glibc calls behind a sync's memory hygiene: found on glibc, harmless elsewhere."""

from __future__ import annotations

import platform

import pytest

from scaffold_metrics.runtime import memtrim

glibc = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc_trim/mallopt are glibc's"
)


@glibc
def test_trim_and_threshold_reach_glibc() -> None:
    assert memtrim.trim_freed_memory() is True
    assert memtrim.keep_large_blocks_mapped() is True
    assert memtrim.keep_large_blocks_mapped() is True  # once per process, then a no-op


def test_without_glibc_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memtrim, "_looked_up", True)
    monkeypatch.setattr(memtrim, "_libc", None)
    monkeypatch.setattr(memtrim, "_pinned", False)
    assert memtrim.trim_freed_memory() is False
    assert memtrim.keep_large_blocks_mapped() is False
