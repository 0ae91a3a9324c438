"""S3-LRU (sdm.cache.s3lru): probation for new rows, a ghost for returning ones, in the runtime's index."""
from __future__ import annotations

import numpy as np
import torch

from sdm.cache.dram_cache import DramCache
from sdm.cache.index import CacheIndex, index_bytes_per_row
from sdm.cachesim import RuntimeCache, simulate


def _serve(idx, batch):
    u = np.unique(batch)
    s = idx.probe(u)
    idx.touch(s[s >= 0])
    idx.place(u[s < 0], protect_slots=s[s >= 0])


def test_a_scan_of_one_off_rows_does_not_flush_rows_read_again():
    idx = CacheIndex(10_000, 16, ways=16, policy="s3lru")
    hot = np.arange(8)
    _serve(idx, hot)
    _serve(idx, hot)                                 # read again: main rows
    for k in range(40):                              # 40 one-off rows, one a batch
        _serve(idx, np.array([100 + k]))
    assert (idx.probe(hot) >= 0).all()
    lru = CacheIndex(10_000, 16, ways=16, policy="lru")
    _serve(lru, hot), _serve(lru, hot)
    for k in range(40):
        _serve(lru, np.array([100 + k]))
    assert (lru.probe(hot) < 0).all()                # LRU lost them to the scan


def test_a_row_missed_again_soon_enters_as_main():
    idx = CacheIndex(10_000, 4, ways=4, policy="s3lru")
    _serve(idx, np.array([1]))
    main = idx.score.reshape(-1)[idx.probe(np.array([1]))[0]]
    assert main < (1 << 30)                          # probation
    for k in range(4):
        _serve(idx, np.array([10 + k]))              # 1 leaves (probation rows go first)
    assert idx.probe(np.array([1]))[0] < 0
    _serve(idx, np.array([1]))                       # the ghost remembers it
    assert idx.score.reshape(-1)[idx.probe(np.array([1]))[0]] >= (1 << 30)


def test_budget_counts_the_ghost_and_renumbering_keeps_the_order():
    assert index_bytes_per_row(1000, "s3lru") == index_bytes_per_row(1000, "lru") + 4
    c = DramCache(1000, 4, torch.float32, 32 * (16 + 12), ways=16, policy="s3lru")
    assert c.capacity_rows == 32
    idx = CacheIndex(1000, 16, ways=16, policy="s3lru")
    _serve(idx, np.arange(8)), _serve(idx, np.arange(4))
    idx.stamp = 1000                                 # a gap in the stamps for renumber to close
    _serve(idx, np.arange(20, 26))
    before = idx.score.reshape(-1).copy()
    top = idx.policy.renumber(idx.score.reshape(-1))
    after = idx.score.reshape(-1)
    stamp = (1 << 30) - 1
    assert top == 3 and (after & stamp).max() == 3 < (before & stamp).max()
    assert np.array_equal(np.unique(before, return_inverse=True)[1], np.unique(after, return_inverse=True)[1])
    assert np.array_equal(before >= (1 << 30), after >= (1 << 30))   # main stays main


def test_beats_runtime_lru_on_a_zipf_stream():
    ids = np.random.default_rng(0).zipf(1.05, 60_000) % 200_000
    lru = simulate(ids, 2000, RuntimeCache("lru", batch_size=64)).misses
    s3 = simulate(ids, 2000, RuntimeCache("s3lru", batch_size=64)).misses
    assert s3 < 0.97 * lru                          # measured 41,276 vs 43,397
