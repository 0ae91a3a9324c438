"""Batch-granular Belady and Belady-in-the-window, fully associative: the simulator's references.

A batch reads its distinct rows once, all at the same time, so the right offline optimum is over
batches, not over single lookups:

- **BatchOPT** (the lower bound): before batch i the cache holds a set S_i of at most C rows; the
  batch costs |U_i - S_i| reads (U_i: its distinct rows) and S_{i+1} is any C rows of S_i + U_i.
  Keeping the C rows with the soonest next use (rows never used again dropped) is optimal (the
  usual exchange argument: the pool is free to choose from). Every batch cache of C rows whose
  batches read their rows once, with or without prefetch, reads at least this much: a row
  prefetched for batch j costs the read batch j would have made. The sequential OPT of the
  deduplicated stream (`sdm.cache.opt.OPT` on each batch's distinct ids in id order) is not a
  lower bound of that model: a miss listed before a hit of the same batch cannot evict it there,
  although the hit was already served (batches x | y x | y, C = 1: 2 reads, sequential OPT 3).
  It does bound caches that protect a batch's hits, as the runtime does (nothing of U_i evicted
  while U_i is served), and it is never below BatchOPT.
- **WindowOPT(k, base)**: what a cache that sees only the next k batches can do. A row whose next
  use falls in the window ranks by next use (furthest goes first); every row with no use in the
  window ranks below all of them, by the base order ("lru": last read; "lfu": reads so far, then
  last read); a miss enters if it outranks the lowest row. `admit="tinylfu"`: a miss with no use
  in the window must also have been read more often than the row it would evict (TinyLFU's
  admission, with exact counts: the best a sketch can approach). `protect_hits`: a batch's
  misses never evict its hits (the runtime's rule) instead of the pool rule. k = 0 is the base
  policy alone; k >= the number of batches with the pool rule is BatchOPT.

Counts are distinct rows read (the batch's repeats removed first).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sdm.cache.heap import pop_min, push, update
from sdm.core.errors import InvalidInputError

_HIGH = np.int64(1) << np.int64(61)     # every window key is above every base key
_NEVER = np.int64(1) << np.int64(62)    # a protected row (a hit of the batch being served)
BASES = ("lru", "lfu")
ADMITS = ("all", "tinylfu")


def dedup_batches(ids: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each batch's distinct ids in ascending order, concatenated; bounds: batch b is
    out[bounds[b]:bounds[b + 1]]). `starts`: first position of each batch in `ids`."""
    ids = np.ascontiguousarray(ids, np.int64)
    edges = np.append(np.asarray(starts, np.int64), ids.size)
    parts = [np.unique(ids[a:b]) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    bounds = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
    return (np.concatenate(parts) if parts else ids[:0]), bounds


def _next_batch(dense: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Batch index of the next use of each access (len(bounds) - 1: never)."""
    n, nb = dense.size, len(bounds) - 1
    batch_of = np.repeat(np.arange(nb, dtype=np.int64), np.diff(bounds))
    order = np.lexsort((np.arange(n), dense))
    out = np.full(n, nb, np.int64)
    same = dense[order[1:]] == dense[order[:-1]]
    out[order[:-1][same]] = batch_of[order[1:][same]]
    return out


@njit(cache=True)
def _base_key(base, count, t, stride):
    return t if base == 0 else count * stride + t


@njit(cache=True)
def _window_misses(ids, bounds, nxt, capacity, num_ids, depth, base, tinylfu, protect_hits):
    nb = bounds.shape[0] - 1
    n = ids.shape[0]
    stride = n + 1
    hit = np.zeros(n, np.bool_)
    cur_next = np.full(num_ids, nb, np.int64)
    count = np.zeros(num_ids, np.int64)
    pos = np.full(num_ids, -1, np.int64)
    hid = np.empty(max(capacity, 1), np.int64)
    hkey = np.empty(max(capacity, 1), np.int64)
    size = 0
    misses = 0
    for i in range(nb):
        a, b = bounds[i], bounds[i + 1]
        e = i + depth
        if depth > 0 and e < nb:          # batch e enters the window: its cached rows rank by next use
            for t in range(bounds[e], bounds[e + 1]):
                x = ids[t]
                if pos[x] >= 0 and cur_next[x] == e:
                    update(hid, hkey, pos, pos[x], _HIGH + nb - e, size)
        for t in range(a, b):             # hits: protected (runtime rule) or re-ranked first (pool rule)
            x = ids[t]
            count[x] += 1
            cur_next[x] = nxt[t]
            if pos[x] >= 0:
                hit[t] = True
                w = nxt[t] < nb and nxt[t] <= i + depth
                k = _NEVER if protect_hits else (_HIGH + nb - nxt[t] if w else _base_key(base, count[x], t, stride))
                update(hid, hkey, pos, pos[x], k, size)
        for t in range(a, b):             # misses: enter if they outrank the lowest row
            x = ids[t]
            if hit[t]:
                continue
            misses += 1
            w = nxt[t] < nb and nxt[t] <= i + depth
            k = _HIGH + nb - nxt[t] if w else _base_key(base, count[x], t, stride)
            if size < capacity:
                size = push(hid, hkey, pos, size, x, k)
                continue
            if capacity == 0 or hkey[0] >= k:
                continue                  # bypass
            if tinylfu and not w and count[hid[0]] >= count[x]:
                continue                  # admission: not read more often than its victim
            v, size = pop_min(hid, hkey, pos, size)
            size = push(hid, hkey, pos, size, x, k)
        if protect_hits:
            for t in range(a, b):
                x = ids[t]
                if pos[x] >= 0 and hkey[pos[x]] == _NEVER:
                    w = nxt[t] < nb and nxt[t] <= i + depth
                    k = _HIGH + nb - nxt[t] if w else _base_key(base, count[x], t, stride)
                    update(hid, hkey, pos, pos[x], k, size)
    return misses


def window_reads(ids: np.ndarray, starts: np.ndarray, capacity: int, depth: int | None, base: str = "lru",
                 admit: str = "all", protect_hits: bool = False) -> int:
    """Distinct rows read by a fully associative batch cache of `capacity` rows that sees the next
    `depth` batches (None: all of them) over `ids` in batches beginning at `starts` (see module doc)."""
    if base not in BASES or admit not in ADMITS:
        raise InvalidInputError(f"window_reads: base must be one of {BASES}, admit one of {ADMITS}; "
                                f"got {base!r}, {admit!r}")
    if capacity < 0 or (depth is not None and depth < 0):
        raise InvalidInputError(f"window_reads: capacity and depth must be >= 0, got {capacity}, {depth}")
    d, bounds = dedup_batches(ids, starts)
    if not d.size:
        return 0
    keys, dense = np.unique(d, return_inverse=True)
    dense = dense.reshape(-1).astype(np.int64)
    nb = len(bounds) - 1
    k = nb if depth is None else int(depth)
    return int(_window_misses(dense, bounds, _next_batch(dense, bounds), int(capacity), keys.size, k,
                              BASES.index(base), admit == "tinylfu", bool(protect_hits)))


def batch_opt_reads(ids: np.ndarray, starts: np.ndarray, capacity: int) -> int:
    """BatchOPT: the fewest distinct rows any batch cache of `capacity` rows reads (module doc)."""
    return window_reads(ids, starts, capacity, None)
