"""LFU: evict the least frequently used; ties go to the least recently used.

Priority = (count, time of last access) packed in one int64 so keys are unique and comparisons are
single integer compares: count * (n + 1) + t. `counts="cache"` counts reads since insertion (the
count resets on eviction, as in cachetools.LFUCache); `counts="global"` counts every read of the
trace so far ("perfect LFU", closer to FBGEMM's LFU cache, which keeps counts of evicted rows).

Runtime hooks (counts="cache"): the same rule in one int64 score per slot, count << STAMP_BITS |
stamp of the last read, so the lowest score is the least frequent and, among equals, the least
recently read. A batch that reads a row several times counts once (one touch call); with one
lookup per batch that is every read, and the runtime and the replay kernel agree hit for hit.
Counts saturate at 2**23 - 2 reads (ties among such rows go by recency). "global" needs the
counts of evicted rows, which the runtime does not keep: simulator only.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sdm.cache.base import STAMP_BITS, STAMP_MASK, ScorePolicy
from sdm.cache.heap import pop_min, push, update
from sdm.core.errors import InvalidInputError

_COUNT_MAX = (1 << (63 - STAMP_BITS)) - 2  # so no score reaches int64 max, the "never evict" key


@njit(cache=True)
def _lfu_hits(ids, capacity, num_ids, keep_counts):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    stride = n + 1
    count = np.zeros(num_ids, dtype=np.int64)
    pos = np.full(num_ids, -1, dtype=np.int64)
    hid = np.empty(capacity, dtype=np.int64)
    hkey = np.empty(capacity, dtype=np.int64)
    size = 0
    for t in range(n):
        x = ids[t]
        count[x] += 1
        k = count[x] * stride + t
        if pos[x] >= 0:  # find: the key only grows, so it moves down
            hits[t] = True
            update(hid, hkey, pos, pos[x], k, size)
            continue
        if size == capacity:  # evict
            v, size = pop_min(hid, hkey, pos, size)
            if not keep_counts:
                count[v] = 0
        size = push(hid, hkey, pos, size, x, k)  # insert
    return hits


class LFU(ScorePolicy):
    """Least frequently used (LRU among equals)."""

    def __init__(self, counts: str = "cache") -> None:
        if counts not in ("cache", "global"):
            raise InvalidInputError(f"LFU counts must be 'cache' or 'global', got {counts!r}")
        self.counts = counts
        self.name = "lfu" if counts == "cache" else "lfu-global"
        self.runtime = counts == "cache"

    score_dtype = np.int64

    def stamp_limit(self):
        return STAMP_MASK

    def on_hit(self, score, slots, stamp):
        count = np.minimum((score[slots] >> STAMP_BITS) + 1, _COUNT_MAX)
        score[slots] = (count << STAMP_BITS) | (stamp & STAMP_MASK)  # a repeated slot is written once

    def on_insert(self, score, slots, stamp):
        score[slots] = (1 << STAMP_BITS) | (stamp & STAMP_MASK)

    def on_insert_low(self, score, slots, stamp):
        score[slots] = 0  # count 0: below every row that was read (and 0 marks "never read")

    def replay(self, stream, capacity: int) -> np.ndarray:
        return _lfu_hits(stream.ids, int(capacity), stream.num_ids, self.counts == "global")
