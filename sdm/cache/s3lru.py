"""S3-LRU: S3-FIFO's two lessons (Yang et al., SOSP'23) in the runtime's set-associative LRU.

S3-FIFO's finding is that most rows a cache admits are read once and never again ("one-hit
wonders"), so a new row should go on probation (its small FIFO) and be first to leave unless it
is read again, while a row that comes back soon after leaving (found in its ghost FIFO of
recently evicted ids) goes straight to the main queue. The simulator runs S3-FIFO itself
(`sdm.cache.s3fifo`, queues per id); the DRAM cache's index keeps one score per slot, so here:
- a missed row found in the ghost (a table of recently missed ids, one fingerprint per cache
  slot, hashed; a later miss overwrites an entry) enters as a main row: score = MAIN | stamp;
- any other missed row enters on probation: score = stamp (below every main row), and its id is
  written into the ghost;
- a hit promotes a probation row to main (score = MAIN | stamp);
- eviction takes the lowest score in the set: probation rows first (oldest first), then main
  rows by LRU.
Memory: int32 score + a uint32 ghost fingerprint per slot: 4 bytes a row more than LRU.
"""
from __future__ import annotations

import numpy as np

from sdm.cache.base import ScorePolicy

_MAIN = np.int32(1 << 30)        # flag bit of a main row; stamps stay below it (renumbered)
_STAMP = (1 << 30) - 1
_EMPTY = np.uint32(0xFFFFFFFF)


def _ghost_slot(ids: np.ndarray, size: int) -> np.ndarray:
    # Fibonacci hashing, as the index's set hash: clustered ids spread over the ghost
    h = (ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    return ((h * np.uint64(size)) >> np.uint64(32)).astype(np.int64)


class S3LRU(ScorePolicy):
    """Set-associative LRU with S3-FIFO's probation for new rows and ghost for returning ones."""

    name = "s3lru"
    extra_bytes_per_row = 4      # the ghost fingerprint (counted into the DRAM cache's budget)

    def __init__(self) -> None:
        self.ghost: np.ndarray | None = None

    def stamp_limit(self) -> int:
        return _STAMP

    def renumber(self, score: np.ndarray) -> int:
        stamps = score & _STAMP
        nz = np.flatnonzero(stamps)
        if not nz.size:
            return 0
        rank = np.unique(stamps[nz], return_inverse=True)[1].reshape(-1) + 1
        score[nz] = (score[nz] & _MAIN) | rank.astype(score.dtype)
        return int(rank.max())

    def on_hit(self, score, slots, stamp):
        score[slots] = _MAIN | np.int32(stamp)

    def on_insert(self, score, slots, stamp):      # rows whose ids the cache does not pass: main
        score[slots] = _MAIN | np.int32(stamp)

    def on_insert_ids(self, score, slots, ids, stamp):
        """Score rows `ids` just placed at `slots`: main if the ghost remembers them, else probation."""
        if self.ghost is None or self.ghost.size != score.size:
            self.ghost = np.full(max(score.size, 1), _EMPTY, np.uint32)
        g = _ghost_slot(ids, self.ghost.size)
        fp = (ids & 0xFFFFFFFF).astype(np.uint32)
        seen = self.ghost[g] == fp
        score[slots] = np.where(seen, _MAIN | np.int32(stamp), np.int32(stamp))
        self.ghost[g[~seen]] = fp[~seen]
