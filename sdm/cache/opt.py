"""Belady's offline optimum (MIN): on a miss, evict the id whose next use is furthest away.

Next use of every access comes from one vectorized pass (`stream.next_use()`); the kernel keeps the
cached ids in an indexed max-heap on next use (a min-heap on its negation). With `bypass=True`
(default) a missed id whose next use is later than every cached id's is not inserted at all: this
is the true lower bound on misses for any policy, admission policies (static, S3-FIFO) included.
`bypass=False` is demand paging (every miss is cached), the bound for always-insert policies.
Miss counts do not depend on ties: only ids never used again share a key, and evicting any of
them costs nothing.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sdm.cache.base import OfflinePolicy

from sdm.cache.heap import pop_min, push, update


@njit(cache=True)
def _opt_hits(ids, nxt, capacity, num_ids, bypass):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    # heap key = -(next use): the smallest key is the id needed furthest in the future
    pos = np.full(num_ids, -1, dtype=np.int64)
    hid = np.empty(capacity, dtype=np.int64)
    hkey = np.empty(capacity, dtype=np.int64)
    size = 0
    for t in range(n):
        x = ids[t]
        k = -nxt[t]
        if pos[x] >= 0:  # find; its next use moved later, so its key fell: sift up
            hits[t] = True
            update(hid, hkey, pos, pos[x], k, size)
            continue
        if size == capacity:
            if bypass and hkey[0] >= k:
                continue  # x is needed no sooner than anything cached: do not cache it
            v, size = pop_min(hid, hkey, pos, size)  # evict
        size = push(hid, hkey, pos, size, x, k)  # insert
    return hits


class OPT(OfflinePolicy):
    """Belady's MIN (bypass=True: optimal with admission; False: optimal demand paging)."""

    def __init__(self, bypass: bool = True) -> None:
        self.bypass = bool(bypass)
        self.name = "opt" if self.bypass else "opt-demand"

    def replay(self, stream, capacity: int) -> np.ndarray:
        return _opt_hits(stream.ids, stream.next_use(), int(capacity), stream.num_ids, self.bypass)
