"""The runtime's cache with look-ahead prefetch, replayed batch by batch (`sdm.cache.window`'s rule).

The order is the one `sdm.prefetch.Prefetcher` drives a store in, made sequential: before batch 0
the prefetcher reads batches 0..k (batch j with the window 0..j); then, while batch i is computed,
it reads batch i+k with the window i..i+k, and batch i's lookup probes, touches its hits and
places its misses with its hits protected and the window's rows by next use
(`sdm.cache.window.place_by_next_use`). A prefetch reads only rows that get a
slot (`sdm.cache.window.fits`), never one twice. Not modelled: page mates, staging (the runtime
stages only into room its empty slots leave), threads racing.

Counts: `demand_reads` rows the lookups read from SCM (distinct per batch), `prefetch_reads` rows
the prefetcher read; a lookup is a miss when its row came from SCM for its batch, by either thread.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdm.cache.index import CacheIndex
from sdm.cache.window import Lookahead, fresh_hits, place_by_next_use, protected_slots, window_ids


@dataclass
class LookaheadReplay:
    misses: np.ndarray          # bool per lookup: its row was read from SCM for its batch
    demand_reads: int           # distinct rows the lookup path read (per batch)
    prefetch_reads: int         # rows the prefetcher read
    wasted: int = 0             # of those, rows evicted before their batch's lookup (read again)

    @property
    def reads(self) -> int:
        return self.demand_reads + self.prefetch_reads


def replay_lookahead(index: CacheIndex, ids: np.ndarray, starts: np.ndarray, depth: int) -> LookaheadReplay:
    """Replay `ids` (original row ids) through `index` in batches starting at `starts`, prefetching
    `depth` batches ahead (0: no prefetch, exactly `replay_batches`)."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    bounds = np.append(np.asarray(starts, np.int64), ids.size)
    spans = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    uniq, inv = [], []
    for a, b in spans:
        u, i = np.unique(ids[a:b], return_inverse=True)
        uniq.append(u)
        inv.append(i.reshape(-1))
    n = len(spans)
    fetched = [np.zeros(0, np.int64)] * n     # rows read ahead for each batch
    pf_reads = 0

    la = Lookahead()

    def prefetch(j: int, lo: int) -> int:
        u = uniq[j]
        absent = u[index.probe(u) < 0]
        ahead = la.note_prefetch(u, window_ids(*uniq[lo:j]))
        prot = protected_slots(index, window_ids(ahead, u))
        take = la.frontier.admit(index, ahead, absent, prot)
        index.place(take, prot)
        la.note_read(take)
        fetched[j] = take
        return len(take)

    if depth:
        for j in range(min(depth + 1, n)):
            pf_reads += prefetch(j, 0)
    misses = np.zeros(ids.size, dtype=bool)
    demand = wasted = 0
    for i, (a, b) in enumerate(spans):
        if depth and i >= 1 and i + depth < n:
            pf_reads += prefetch(i + depth, i)
        u = uniq[i]
        slots = index.probe(u)
        found = slots >= 0
        coming, read_ahead = la.coming(u)
        index.touch(fresh_hits(u[found], slots[found], read_ahead))
        place_by_next_use(index, u[~found], slots[found], coming)
        demand += int((~found).sum())
        read = ~found
        if len(fetched[i]):
            mine = np.isin(u, fetched[i], assume_unique=True)
            wasted += int((mine & ~found).sum())
            read |= mine
        misses[a:b] = read[inv[i]]
    return LookaheadReplay(misses, demand, pf_reads, wasted)
