"""The shard hash is kube-state-metrics' own, bit for bit: FNV-1a 64 of the UID, then the jump
consistent hash; and `ShardSelector` is the ownership the collectors consult."""

from __future__ import annotations

import threading
import uuid

import pytest

from scaffold_metrics.runtime.sharding import ShardSelector, fnv1a_64, jump_hash, shard_of

# Go's standard library, hash/fnv/fnv_test.go (`golden64a`): the FNV-1a 64 that
# kube-state-metrics' pkg/sharding uses (`fnv.New64a`). "foobar" is from the FNV authors'
# published test suite (test_fnv.c, fnv1a_64).
FNV1A_64_VECTORS = [
    (b"", 0xCBF29CE484222325),
    (b"a", 0xAF63DC4C8601EC8C),
    (b"ab", 0x089C4407B545986A),
    (b"abc", 0xE71FA2190541574B),
    (b"foobar", 0x85944171F73967E8),
]

# github.com/dgryski/go-jump jump_test.go (the jump hash kube-state-metrics imports), "generated
# from the reference C++ code" of Lamping and Veach's paper: bucket for 1, 2, ... buckets.
JUMP_VECTORS = [
    (0, [0] * 20),
    (1, [0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17]),
    (0xDEADBEEF, [0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16]),
    (0x0DDC0FFEEBADF00D, [0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15]),
]


@pytest.mark.parametrize(("data", "expected"), FNV1A_64_VECTORS)
def test_fnv1a_64_matches_published_vectors(data: bytes, expected: int) -> None:
    assert fnv1a_64(data) == expected


@pytest.mark.parametrize(("key", "buckets"), JUMP_VECTORS)
def test_jump_hash_matches_the_reference(key: int, buckets: list[int]) -> None:
    assert [jump_hash(key, n) for n in range(1, len(buckets) + 1)] == buckets


def test_shard_of_is_jump_of_fnv_of_the_uid_bytes() -> None:
    # kube-state-metrics' own TestSharding: uid "test_uid" is shard 0 of 2, not shard 1.
    assert shard_of("test_uid", 2) == 0
    uid = "0d4b5f0e-7c53-4bd3-9f1c-6a0f6b2b3c11"
    for total in (1, 2, 3, 7, 100):
        assert shard_of(uid, total) == jump_hash(fnv1a_64(uid.encode()), total)
    with pytest.raises(ValueError):
        jump_hash(1, 0)


def test_jump_hash_spreads_evenly_and_moves_little() -> None:
    uids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(6000)]
    for total in (2, 3, 7):
        counts = [0] * total
        for uid in uids:
            counts[shard_of(uid, total)] += 1
        assert min(counts) > 0.8 * len(uids) / total, counts
    # from 3 to 4 shards only the objects that move to the new shard move (about a quarter)
    moved = [uid for uid in uids if shard_of(uid, 3) != shard_of(uid, 4)]
    assert all(shard_of(uid, 4) == 3 for uid in moved)
    assert 0.2 < len(moved) / len(uids) < 0.3


def test_selector_owns_by_uid_and_announces_changes() -> None:
    seen: list[tuple[int, int]] = []
    selector = ShardSelector(0, 2)
    selector.subscribe(lambda shard, total: seen.append((shard, total)))
    obj = {"metadata": {"uid": "test_uid", "name": "x"}}
    assert selector.owns(obj) and selector.owns_uid("test_uid")
    assert not ShardSelector(1, 2).owns(obj)
    # an object without a uid hashes as "" (kube-state-metrics reads GetUID() == "")
    no_uid = {"metadata": {"name": "y"}}
    assert ShardSelector(shard_of("", 3), 3).owns(no_uid)
    assert ShardSelector(0, 1).owns({"metadata": None})  # not an object: the store skips it
    assert selector.update(1, 2) and not selector.update(1, 2)
    assert not selector.owns(obj)
    assert seen == [(0, 2), (1, 2)]
    # a shard past the total (a StatefulSet pod about to go) owns nothing
    assert selector.update(2, 2) and not any(
        selector.owns_uid(str(uuid.UUID(int=i))) for i in range(200)
    )
    with pytest.raises(ValueError):
        ShardSelector(0, 0)
    with pytest.raises(ValueError):
        selector.update(-1, 3)


def test_selector_readers_always_see_a_whole_state() -> None:
    selector = ShardSelector(0, 1)
    stop = threading.Event()
    torn: list[tuple[int, int]] = []

    def flip() -> None:
        while not stop.is_set():
            selector.update(0, 1)
            selector.update(4, 5)

    thread = threading.Thread(target=flip)
    thread.start()
    try:
        for _ in range(20000):
            state = selector.state
            if state not in ((0, 1), (4, 5)):
                torn.append(state)
    finally:
        stop.set()
        thread.join()
    assert torn == []
