"""S3-FIFO (Yang et al., SOSP'23): a small FIFO S, a main FIFO M and a ghost FIFO G of ids.

As in the paper's Algorithm 1:
- hit: freq = min(freq + 1, 3); nothing moves.
- miss: while the cache is full, evict(); then insert into M if the id is in G, else into S; freq 0.
- evict(): from S if |S| >= small share of the capacity, else from M.
- evict S: pop the oldest; if freq >= move_threshold move it to M (then if M is over its share,
  evict M) and continue; else put it in G and stop.
- evict M: pop the oldest; if freq > 0, freq -= 1 and reinsert it at the head; else drop it.
`move_threshold=2` (freq > 1 in the paper's pseudo-code) is also the default of the authors'
libCacheSim (`move_to_main_threshold`, promotion test freq >= threshold); 1 promotes any id read
again while in S. G remembers the last `ghost share` ids sent to it (by count; ids found there on
a miss leave it); its size is M's share (libCacheSim: ghost 0.9 of the cache beside a 0.1 small queue).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from sdm.cache.base import OfflinePolicy

from sdm.core.errors import InvalidInputError

IN_NONE, IN_SMALL, IN_MAIN = 0, 1, 2


@njit(cache=True)
def _evict_main(mbuf, m_head, m_len, loc, freq):
    ring = mbuf.shape[0]
    while m_len > 0:
        v = mbuf[m_head]
        m_head += 1
        if m_head == ring:
            m_head = 0
        m_len -= 1
        if freq[v] > 0:  # reinsert at the head with one less credit
            freq[v] -= 1
            j = m_head + m_len
            if j >= ring:
                j -= ring
            mbuf[j] = v
            m_len += 1
        else:
            loc[v] = 0
            break
    return m_head, m_len


@njit(cache=True)
def _s3fifo_hits(ids, capacity, num_ids, small_cap, ghost_cap, move_threshold):
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.bool_)
    if capacity <= 0:
        return hits
    main_cap = capacity - small_cap
    ring = capacity + 1  # neither queue ever holds more than capacity + 1 ids
    sbuf = np.empty(ring, dtype=np.int64)
    mbuf = np.empty(ring, dtype=np.int64)
    s_head = 0
    s_len = 0
    m_head = 0
    m_len = 0
    loc = np.zeros(num_ids, dtype=np.int8)
    freq = np.zeros(num_ids, dtype=np.int8)
    ghost_seq = np.full(num_ids, -1, dtype=np.int64)
    ghost_count = 0
    for t in range(n):
        x = ids[t]
        if loc[x] != 0:  # find
            hits[t] = True
            if freq[x] < 3:
                freq[x] += 1
            continue
        while s_len + m_len >= capacity:  # evict
            if s_len >= small_cap:
                while s_len > 0:
                    v = sbuf[s_head]
                    s_head += 1
                    if s_head == ring:
                        s_head = 0
                    s_len -= 1
                    if freq[v] >= move_threshold:
                        j = m_head + m_len
                        if j >= ring:
                            j -= ring
                        mbuf[j] = v
                        m_len += 1
                        loc[v] = 2
                        if m_len > main_cap:
                            m_head, m_len = _evict_main(mbuf, m_head, m_len, loc, freq)
                    else:
                        loc[v] = 0
                        ghost_count += 1
                        ghost_seq[v] = ghost_count
                        break
            else:
                m_head, m_len = _evict_main(mbuf, m_head, m_len, loc, freq)
        # insert
        g = ghost_seq[x]
        in_ghost = g >= 0 and ghost_count - g < ghost_cap
        ghost_seq[x] = -1
        freq[x] = 0
        if in_ghost:
            j = m_head + m_len
            if j >= ring:
                j -= ring
            mbuf[j] = x
            m_len += 1
            loc[x] = 2
        else:
            j = s_head + s_len
            if j >= ring:
                j -= ring
            sbuf[j] = x
            s_len += 1
            loc[x] = 1
    return hits


def s3fifo_shares(capacity: int, small_ratio: float) -> tuple[int, int]:
    """(small queue share, ghost share) in ids for a cache of `capacity` ids."""
    small = max(1, int(capacity * small_ratio)) if capacity > 0 else 0
    return small, max(capacity - small, 0)


class S3FIFO(OfflinePolicy):
    """S3-FIFO with a small queue of `small_ratio` of the capacity (paper: 10%)."""

    name = "s3fifo"

    def __init__(self, small_ratio: float = 0.1, move_threshold: int = 2) -> None:
        if not 0.0 < small_ratio < 1.0:
            raise InvalidInputError(f"S3-FIFO small_ratio must be in (0, 1), got {small_ratio}")
        if not 1 <= move_threshold <= 3:
            raise InvalidInputError(f"S3-FIFO move_threshold must be 1..3, got {move_threshold}")
        self.small_ratio = float(small_ratio)
        self.move_threshold = int(move_threshold)

    def replay(self, stream, capacity: int) -> np.ndarray:
        small, ghost = s3fifo_shares(int(capacity), self.small_ratio)
        return _s3fifo_hits(stream.ids, int(capacity), stream.num_ids, small, ghost, self.move_threshold)
