"""Which objects this replica keeps when the metrics are split over several (sharding).

The scheme is kube-state-metrics' own (`pkg/sharding`): an object belongs to shard
`jump_hash(fnv1a_64(uid), total)`, FNV-1a 64 of the UID's bytes fed as the 64-bit key of the
jump consistent hash. Matching it bit for bit lets a fleet that mixes these replicas and
kube-state-metrics ones (or moves between them) agree on who owns what; the jump hash moves
only about 1/total of the objects when the total changes.

`ShardSelector` is the ownership the collectors consult on every object: a (shard, total) pair
swapped atomically, so readers take no lock, and listeners told of each change (collectors list
again under the new ownership, self-metrics say which shard this is).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ShardSelector", "fnv1a_64", "jump_hash", "shard_of"]

_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF
_JUMP_MULTIPLIER = 2862933555777941757
_TWO_POW_31 = float(1 << 31)


def fnv1a_64(data: bytes) -> int:
    """FNV-1a, 64 bits (Go's `hash/fnv.New64a().Sum64()`): xor each byte in, then multiply."""
    h = _FNV64_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV64_PRIME) & _MASK64
    return h


def jump_hash(key: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash of the unsigned 64-bit `key` into
    `[0, buckets)`.

    The arithmetic is the reference's: the key advances as a 64-bit linear congruential
    generator and the jump is computed in IEEE doubles (Python floats are those), truncated
    toward zero, so every key lands in the same bucket as in the C++ and Go implementations.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, not {buckets}")
    key &= _MASK64
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * _JUMP_MULTIPLIER + 1) & _MASK64
        j = int(float(b + 1) * (_TWO_POW_31 / float((key >> 33) + 1)))
    return b


def shard_of(uid: str, total: int) -> int:
    """The shard (0-based) of `total` that owns the object with `uid`."""
    return jump_hash(fnv1a_64(uid.encode("utf-8", "surrogatepass")), total)


Listener = Callable[[int, int], None]


class ShardSelector:
    """This replica's ownership: shard `shard` of `total`; thread-safe, changes announced.

    `owns` is called for every object the collectors see and reads one attribute (the
    (shard, total) tuple is replaced whole), so it needs no lock; `update` and the listener
    list share one.
    """

    def __init__(self, shard: int = 0, total: int = 1) -> None:
        _check(shard, total)
        self._state = (shard, total)
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    @property
    def shard(self) -> int:
        return self._state[0]

    @property
    def total(self) -> int:
        return self._state[1]

    @property
    def state(self) -> tuple[int, int]:
        """(shard, total), read together."""
        return self._state

    def owns_uid(self, uid: str) -> bool:
        """True when the object with `uid` is this shard's."""
        shard, total = self._state
        return (shard, total) == (0, 1) or shard_of(uid, total) == shard

    def owns(self, obj: Mapping[str, Any]) -> bool:
        """True when `obj` (a Kubernetes object) is this shard's, by its `metadata.uid`.

        An object without a readable uid hashes as the empty uid, as in kube-state-metrics;
        one that is not an object at all is kept (the store counts and skips it).
        """
        shard, total = self._state
        if (shard, total) == (0, 1):
            return True
        meta = obj.get("metadata") if isinstance(obj, Mapping) else None
        if not isinstance(meta, Mapping):
            return True
        uid = meta.get("uid")
        return shard_of(uid if isinstance(uid, str) else "", total) == shard

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(shard, total)` now and after every change (from the changing thread)."""
        with self._lock:
            self._listeners.append(listener)
            shard, total = self._state
        listener(shard, total)

    def update(self, shard: int, total: int) -> bool:
        """Become shard `shard` of `total`; True (and listeners called) when that changed."""
        _check(shard, total)
        with self._lock:
            if self._state == (shard, total):
                return False
            self._state = (shard, total)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(shard, total)
        return True

    def __repr__(self) -> str:
        shard, total = self._state
        return f"ShardSelector(shard={shard}, total={total})"


def _check(shard: int, total: int) -> None:
    # A shard past the total owns nothing: a StatefulSet's pod between its scale-down and its
    # end (the settings that start a replica check shard < total themselves).
    if total < 1 or shard < 0:
        raise ValueError(f"shard must be >= 0 and total >= 1, not {shard} of {total}")
