"""Set-associative LRU, as FBGEMM's embedding cache: `ways`-way sets, LRU within each set.

The set of an id is murmur3's 64-bit finalizer of the id modulo the number of sets, as
`cache_slot(h_in, C)` in fbgemm_gpu's split-embeddings cache kernels (pytorch/FBGEMM), applied to
the original (global) id, so sets do not depend on the dense remap. The kernel compares the ways of one
set in a short loop, like the warp-wide compare on a GPU. Capacity rounds down to whole sets; a
cache smaller than one set is a single fully associative set.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sdm.cache.base import OfflinePolicy

from sdm.core.errors import InvalidInputError

FBGEMM_WAYS = 32  # FBGEMM's DEFAULT_ASSOC (REFERENCE.md, Peers: "32-way set-associative")


def fmix64(keys: np.ndarray) -> np.ndarray:
    """MurmurHash3 fmix64, vectorized over uint64 (wrap-around multiply is intended)."""
    h = keys.astype(np.uint64)
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
    return h


def geometry(capacity: int, ways: int) -> tuple[int, int]:
    """(sets, ways) for a cache of `capacity` entries."""
    if capacity <= 0:
        return 0, ways
    if capacity < ways:
        return 1, capacity
    return capacity // ways, ways


@njit(cache=True)
def _setassoc_hits(ids, set_of, sets, ways):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if sets <= 0:
        return hits
    tags = np.full((sets, ways), -1, dtype=np.int64)
    stamp = np.zeros((sets, ways), dtype=np.int64)  # last use; 0 = empty
    for t in range(n):
        x = ids[t]
        s = set_of[x]
        victim = 0
        oldest = stamp[s, 0]
        found = False
        for w in range(ways):
            if tags[s, w] == x:  # find
                found = True
                victim = w
                break
            if stamp[s, w] < oldest:
                oldest = stamp[s, w]
                victim = w
        if found:
            hits[t] = True
        else:  # evict the least recently used way (an empty way has stamp 0) and insert
            tags[s, victim] = x
        stamp[s, victim] = t + 1
    return hits


class SetAssociativeLRU(OfflinePolicy):
    """`ways`-way set-associative LRU (default 32, FBGEMM)."""

    def __init__(self, ways: int = FBGEMM_WAYS) -> None:
        if int(ways) < 1:
            raise InvalidInputError(f"set-associative cache needs ways >= 1, got {ways}")
        self.ways = int(ways)
        self.name = "setassoc" if self.ways == FBGEMM_WAYS else f"setassoc{self.ways}"

    def capacity_units(self, capacity: int) -> int:
        sets, ways = geometry(int(capacity), self.ways)
        return sets * ways

    def replay(self, stream, capacity: int) -> np.ndarray:
        sets, ways = geometry(int(capacity), self.ways)
        if sets == 0:
            return np.zeros(stream.num_lookups, dtype=bool)
        set_of = (fmix64(stream.keys) % np.uint64(sets)).astype(np.int64)
        return _setassoc_hits(stream.ids, set_of, sets, ways)
