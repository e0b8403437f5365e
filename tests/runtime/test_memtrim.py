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


def test_a_threshold_the_process_was_started_with_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    monkeypatch.setattr(memtrim, "_looked_up", True)
    monkeypatch.setattr(memtrim, "_libc", FakeLibc())
    monkeypatch.setattr(memtrim, "_pinned", False)
    for name, value in (
        ("MALLOC_MMAP_THRESHOLD_", "1048576"),
        ("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536"),
    ):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert memtrim.keep_large_blocks_mapped() is False
    assert calls == []
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert memtrim.keep_large_blocks_mapped() is True
    assert calls == [(memtrim.M_MMAP_THRESHOLD, memtrim.MMAP_THRESHOLD)]
