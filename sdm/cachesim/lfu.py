"""LFU: evict the least frequently used; ties go to the least recently used.

Priority = (count, time of last access) packed in one int64 so keys are unique and comparisons are
single integer compares: count * (n + 1) + t. `counts="cache"` counts reads since insertion (the
count resets on eviction, as in cachetools.LFUCache); `counts="global"` counts every read of the
trace so far ("perfect LFU", closer to FBGEMM's LFU cache, which keeps counts of evicted rows).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sdm.core.errors import InvalidInputError
from sdm.cachesim.heap import pop_min, push, update


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


class LFU:
    """Least frequently used (LRU among equals)."""

    def __init__(self, counts: str = "cache") -> None:
        if counts not in ("cache", "global"):
            raise InvalidInputError(f"LFU counts must be 'cache' or 'global', got {counts!r}")
        self.counts = counts
        self.name = "lfu" if counts == "cache" else "lfu-global"

    def replay(self, stream, capacity: int) -> np.ndarray:
        return _lfu_hits(stream.ids, int(capacity), stream.num_ids, self.counts == "global")
