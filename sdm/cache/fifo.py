"""FIFO: evict the row inserted longest ago; hits change nothing.

Replay: a ring buffer of insertion order is the whole state besides a membership bit per id.
Runtime hooks: score = stamp of the insert; a read changes nothing.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sdm.cache.base import ScorePolicy


@njit(cache=True)
def _fifo_hits(ids, capacity, num_ids):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    cached = np.zeros(num_ids, dtype=np.bool_)
    ring = np.empty(capacity, dtype=np.int64)
    oldest = 0  # ring index of the next victim
    size = 0
    for t in range(n):
        x = ids[t]
        if cached[x]:  # find
            hits[t] = True
            continue
        if size == capacity:  # evict the oldest; its slot takes the newcomer
            cached[ring[oldest]] = False
            ring[oldest] = x
            oldest += 1
            if oldest == capacity:
                oldest = 0
        else:  # insert
            ring[size] = x
            size += 1
        cached[x] = True
    return hits


class FIFO(ScorePolicy):
    """First in, first out."""

    name = "fifo"

    def on_hit(self, score, slots, stamp):
        pass

    def replay(self, stream, capacity: int) -> np.ndarray:
        return _fifo_hits(stream.ids, int(capacity), stream.num_ids)
