"""Sketch-LFU: LFU whose counts outlive eviction, kept in TinyLFU's count-min sketch with aging.

The runtime's LFU ("lfu") forgets a row's count when the row leaves, so a hot row that was pushed
out comes back as a newcomer. TinyLFU (Einziger et al., 2017) keeps approximate counts of every
row read, resident or not, in a count-min sketch (here 2 hashed rows of 8-bit saturating counters,
8 counters per cache slot each) and halves every counter after 100 reads per slot ("aging"), so the
counts follow a changing popularity. A row's score = (its sketch count, then the stamp of its last read),
packed as LFU's; a returning hot row enters with its history. The scores of resident rows are
halved with the sketch, so old and new counts compare.

TinyLFU's admission test (a miss enters only if counted more often than its victim) is not done:
the index picks victims after the policy is asked, and in the fully associative reference
(`sdm.cache.window_opt`, admit="tinylfu" with exact counts) it read no less than always inserting
with frequency order (tools/bench_prefetch.py --curve). Reads that bypass the cache (every slot
of their set protected) are not counted: the hooks see placed rows only.

Memory: an int64 score + the slot's id (int64, so a hit can find its counters) + 16 bytes of
sketch per slot, exactly what `extra_bytes_per_row` charges the budget (the sketch's width is slots x
8, not rounded up: the multiply-shift cell hash takes any width).
"""
from __future__ import annotations

import copy

import numpy as np

from sdm.cache.base import STAMP_BITS, STAMP_MASK, ScorePolicy

_DEPTH = 2
# Counters per slot in each sketch row. 8 read 0.6% more than 16 at equal rows (tools/bench_prefetch.py:
# geomean 1.024x vs 1.018x the better of LRU / S3-FIFO) for 16 bytes a slot less, which at equal bytes
# buys rows and reads less (tools/bench_dlrm.py --policy sketch-lfu: 5,747 vs 5,858 SCM pages a batch
# on Zipf, 2,759 vs 2,772 production-like). (Before 2026-12-03 the width was rounded up to a power of
# two, up to twice what the budget was charged.)
_WIDTH_PER_SLOT = 8
_AGE_READS_PER_SLOT = 100
_MAX = np.uint8(0xFF)
_SEEDS = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))


class SketchLFU(ScorePolicy):
    """Frequency order from a count-min sketch of every read (aging by halving), LRU among equals."""

    name = "sketch-lfu"
    score_dtype = np.int64
    extra_bytes_per_row = 8 + _DEPTH * _WIDTH_PER_SLOT

    def __init__(self) -> None:
        self.sketch: np.ndarray | None = None     # [_DEPTH, width] uint8
        self.slot_id: np.ndarray | None = None    # id held by each slot (-1: none or low priority)
        self.reads = 0                            # counted since the last halving
        self.dry = False                          # a dry run's copy (sdm.cache.window.fits): counts nothing

    def __deepcopy__(self, memo):
        # the dry run of a placement needs the slot ids it may overwrite, not a copy of the sketch
        dup = copy.copy(self)
        dup.slot_id = None if self.slot_id is None else self.slot_id.copy()
        dup.dry = True
        return dup

    def stamp_limit(self):
        return STAMP_MASK

    def _ready(self, n_slots: int) -> None:
        if self.slot_id is None or self.slot_id.size != n_slots:
            width = max(16, n_slots * _WIDTH_PER_SLOT)
            self.sketch = np.zeros((_DEPTH, width), np.uint8)
            self.slot_id = np.full(max(n_slots, 1), -1, np.int64)
            self.reads = 0

    def _cells(self, ids: np.ndarray) -> list[np.ndarray]:
        width = np.uint64(self.sketch.shape[1])
        u = ids.astype(np.uint64)
        return [(((u * s) >> np.uint64(32)) * width) >> np.uint64(32) for s in _SEEDS]

    def _count(self, ids: np.ndarray, score: np.ndarray) -> np.ndarray:
        """Count one read of each of `ids` (distinct) unless dry; their estimates."""
        cells = self._cells(ids)
        if not self.dry:
            for d, c in enumerate(cells):
                row, cc = self.sketch[d], c.astype(np.int64)
                # +1 saturating (ids sharing a cell in one call count once: the sketch is approximate)
                row[cc] = np.minimum(row[cc].astype(np.int32) + 1, int(_MAX)).astype(np.uint8)
            self.reads += len(ids)
            if self.reads >= _AGE_READS_PER_SLOT * score.size:
                self._age(score)
        est = self.sketch[0][cells[0].astype(np.int64)]
        for d in range(1, _DEPTH):
            est = np.minimum(est, self.sketch[d][cells[d].astype(np.int64)])
        return est.astype(np.int64)

    def _age(self, score: np.ndarray) -> None:
        self.sketch >>= 1
        count = score >> STAMP_BITS
        score[:] = ((count >> 1) << STAMP_BITS) | (score & STAMP_MASK)
        self.reads = 0

    def _score(self, est: np.ndarray, stamp: int) -> np.ndarray:
        return (np.maximum(est, 1) << STAMP_BITS) | (stamp & STAMP_MASK)

    def on_hit(self, score, slots, stamp):
        self._ready(score.size)
        slots = np.unique(slots)
        ids = self.slot_id[slots]
        known = ids >= 0
        if not known.all():   # rows placed without their ids (low priority, on_insert): count from now
            score[slots[~known]] = (1 << STAMP_BITS) | (stamp & STAMP_MASK)
            slots, ids = slots[known], ids[known]
        score[slots] = self._score(self._count(ids, score), stamp)

    def on_insert_ids(self, score, slots, ids, stamp):
        self._insert_counted(score, slots, ids, stamp)

    def _insert_counted(self, score, slots, ids, stamp) -> np.ndarray:
        """Score rows `ids` just placed at `slots` by their sketch counts (this read included); the counts."""
        self._ready(score.size)
        self.slot_id[slots] = ids
        est = self._count(np.asarray(ids, np.int64), score)
        score[slots] = self._score(est, stamp)
        return est

    def on_insert(self, score, slots, stamp):
        self._ready(score.size)
        self.slot_id[slots] = -1
        score[slots] = (1 << STAMP_BITS) | (stamp & STAMP_MASK)

    def on_insert_low(self, score, slots, stamp):
        self._ready(score.size)
        self.slot_id[slots] = -1
        score[slots] = 0
