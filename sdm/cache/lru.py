"""LRU: evict the least recently used. Also its one-pass miss-ratio curve from stack distances.

Runtime hooks: score = stamp of the last batch that read the row (the base class's).

Replay keeps a doubly linked list over dense ids (prev/next arrays), O(1) per access. Stack
distances (Mattson et al. 1970) use a Fenwick tree over access positions: the distance of an access
is the number of distinct ids read since the previous read of the same id, plus one; LRU of
capacity C hits exactly the accesses with distance <= C, so one pass gives every capacity.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sdm.cache.base import ScorePolicy

# Stack distance of a first access (a compulsory miss at every capacity).
INFINITE_DISTANCE = np.iinfo(np.int64).max


@njit(cache=True)
def _lru_hits(ids, capacity, num_ids):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    prev = np.full(num_ids, -1, dtype=np.int64)
    nxt = np.full(num_ids, -1, dtype=np.int64)
    cached = np.zeros(num_ids, dtype=np.bool_)
    head = -1  # most recently used
    tail = -1  # least recently used: the victim
    size = 0
    for t in range(n):
        x = ids[t]
        if cached[x]:  # find
            hits[t] = True
            if x == head:
                continue
            # unlink x (it is not head, so prev[x] >= 0)
            p = prev[x]
            q = nxt[x]
            nxt[p] = q
            if q >= 0:
                prev[q] = p
            else:
                tail = p
        else:
            if size == capacity:  # evict the tail
                v = tail
                tail = prev[v]
                if tail >= 0:
                    nxt[tail] = -1
                else:
                    head = -1
                cached[v] = False
                size -= 1
            cached[x] = True  # insert
            size += 1
        # link x at the head
        prev[x] = -1
        nxt[x] = head
        if head >= 0:
            prev[head] = x
        head = x
        if tail < 0:
            tail = x
    return hits


@njit(cache=True)
def _stack_distances(ids, num_ids):
    n = ids.shape[0]
    tree = np.zeros(n + 1, dtype=np.int32)  # Fenwick tree: 1 at the last access of each id
    last = np.full(num_ids, -1, dtype=np.int64)
    dist = np.empty(n, dtype=np.int64)
    distinct = 0
    for t in range(n):
        x = ids[t]
        p = last[x]
        if p < 0:
            dist[t] = INFINITE_DISTANCE
            distinct += 1
        else:
            # marks at positions <= p: prefix sum over Fenwick indices 1..p+1
            s = 0
            i = p + 1
            while i > 0:
                s += tree[i]
                i -= i & (-i)
            # every mark is at a position < t, so marks after p = distinct - s
            dist[t] = distinct - s + 1
            i = p + 1
            while i <= n:
                tree[i] -= 1
                i += i & (-i)
        i = t + 1
        while i <= n:
            tree[i] += 1
            i += i & (-i)
        last[x] = t
    return dist


def stack_distances(ids: np.ndarray, num_ids: int) -> np.ndarray:
    """LRU stack distance per access; INFINITE_DISTANCE for first accesses."""
    return _stack_distances(np.ascontiguousarray(ids, dtype=np.int64), int(num_ids))


class LRU(ScorePolicy):
    """Least recently used."""

    name = "lru"

    def replay(self, stream, capacity: int) -> np.ndarray:
        return _lru_hits(stream.ids, int(capacity), stream.num_ids)
