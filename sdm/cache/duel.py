"""Duel: set dueling between LRU order and Sketch-LFU order, the winner serving every other set.

Neither order wins on every stream (tools/bench_prefetch.py, no look-ahead, reads / Belady): on
Zipf streams frequency order (sketch-lfu) reads 1.16-1.34x where LRU reads 1.30-1.53x; on the
production-like generator, whose rows come in bursts, LRU reads 1.02-1.03x at caches of 5-20% and
sketch-lfu 1.03-1.16x (it keeps rows that were hot and evicts the burst that is); duel 1.03-1.07x. Set dueling
(Qureshi et al., ISCA 2007, "Adaptive insertion policies for high performance caching"; Jaleel
et al., ISCA 2010, RRIP) lets the cache's own misses choose: a few leader sets always evict in LRU
order, a few always in frequency order, and a saturating counter (PSEL) moves up on a miss placed
in an LRU leader and down on one in a frequency leader; the other (follower) sets evict in
frequency order until PSEL falls to -SWITCH, then in LRU order until it climbs back to +SWITCH.
Only misses of rows read before vote (sketch count >= 2 with this read): first reads miss alike
under both orders, and counted they made PSEL a random walk that flipped the followers on Zipf.

Scores are Sketch-LFU's (`sdm.cache.sketchlfu`: count << STAMP_BITS | stamp, counts kept in its
sketch for every read row), so both orders read the same score: LRU order is its stamp bits alone,
and a follower set switches order at once with every row's count and stamp at hand.

Leaders: sets s with s % PERIOD_SETS == 0 (LRU) and == 1 (frequency), 1/8 of the sets; a cache of
fewer than 2 x PERIOD_SETS sets does not duel and runs frequency order (Sketch-LFU's). The leaders
cost the losing order's reads on their sets: ~1-2% more than sketch-lfu on Zipf.
Chosen by measurement: PERIOD_SETS 16, SWITCH 32 on the bench_prefetch grid (worst 1.018-1.040x the
better of lru / sketch-lfu over period 12-24 and switch 16-48; 16/32 picked before the held-out
check; sketch of 16 counters a slot then) and on held-out streams (seeds 1-2 of the production
generator, Zipf 0.9 and 1.1, batches 64/1024, caches 5/20%: worst 1.027x, median 1.008x the better of
the two, where sketch-lfu alone is 1.118x and lru 1.210x; the 8-counter sketch).
Memory: Sketch-LFU's (36 bytes of index a slot with int32 tags); PSEL is one integer per cache.
"""
from __future__ import annotations

import numpy as np

from sdm.cache.base import STAMP_MASK
from sdm.cache.sketchlfu import SketchLFU

# Chosen by measurement (see the module doc): one LRU leader and one frequency leader every
# PERIOD_SETS sets; PSEL saturates at +-PSEL_LIMIT; the followers turn to LRU order when PSEL falls to
# -SWITCH and back to frequency order when it climbs to +SWITCH (hysteresis: with the sign of PSEL
# alone its walk around 0 flipped the followers to LRU now and then: zipf-1.2, 20% cache, batch 64,
# 28,477 reads against 26,785 with it).
PERIOD_SETS = 16
PSEL_LIMIT = 512
SWITCH = 32


class Duel(SketchLFU):
    """Set dueling between LRU order and sketch-counted frequency order (see module doc)."""

    name = "duel"

    def __init__(self) -> None:
        super().__init__()
        self.psel = 0
        self.frequency = True  # the followers' order: frequency until the leaders show LRU misses less
        self.ways = 0          # learnt from the index (slot // ways = set); 0 until the first call

    def period(self, num_sets: int) -> int:
        """Leader spacing for a cache of `num_sets` sets (0: too few sets to duel, frequency order)."""
        return PERIOD_SETS if num_sets >= 2 * PERIOD_SETS else 0

    def frequency_sets(self, sets: np.ndarray, num_sets: int) -> np.ndarray:
        """Bool per set of `sets`: does it evict in frequency order now?"""
        p = self.period(num_sets)
        if not p:
            return np.ones(len(sets), np.bool_)
        lead = sets % p
        return np.where(lead == 0, False, np.where(lead == 1, True, self.frequency))

    def victim_key_sets(self, score_rows: np.ndarray, sets: np.ndarray, num_sets: int) -> np.ndarray:
        """Eviction keys of `score_rows` [k, ways], rows of the sets `sets`: each set's current order."""
        self.ways = score_rows.shape[1]
        freq = self.frequency_sets(np.asarray(sets, np.int64), num_sets)
        return np.where(freq[:, None], score_rows, score_rows & STAMP_MASK)

    def on_insert_ids(self, score, slots, ids, stamp):
        # Sketch-LFU's insert; only misses of rows read before vote (a count of 2 or more with this
        # read). First reads miss alike under both orders; counted, they made PSEL a random walk
        # that flipped the followers on Zipf streams (+1-3% reads at 10% caches).
        est = self._insert_counted(score, slots, ids, stamp)
        self._vote(np.asarray(slots, np.int64)[est >= 2], score.size)

    def _vote(self, slots: np.ndarray, n_slots: int) -> None:
        """Each placed miss in a leader set moves PSEL toward the other order (not in a dry run)."""
        if self.dry or not self.ways or not len(slots):
            return
        num_sets = n_slots // self.ways
        p = self.period(num_sets)
        if not p:
            return
        lead = (slots // self.ways) % p
        delta = int((lead == 0).sum()) - int((lead == 1).sum())
        self.psel = max(-PSEL_LIMIT, min(PSEL_LIMIT, self.psel + delta))
        if self.psel <= -SWITCH:
            self.frequency = False
        elif self.psel >= SWITCH:
            self.frequency = True
