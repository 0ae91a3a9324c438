"""Sketch-LFU (sdm.cache.sketchlfu) in the runtime's index, and the batch references
(sdm.cache.window_opt): BatchOPT is the optimum of batch caches, checked against brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from sdm.cache.index import CacheIndex, index_bytes_per_row
from sdm.cache.window_opt import batch_opt_reads, dedup_batches, window_reads
from sdm.cachesim import RuntimeCache, simulate
from sdm.core.errors import InvalidInputError


def _serve(idx, batch):
    u = np.unique(batch)
    s = idx.probe(u)
    idx.touch(s[s >= 0])
    idx.place(u[s < 0], protect_slots=s[s >= 0])


def test_a_hot_row_that_left_comes_back_with_its_count():
    idx = CacheIndex(10_000, 4, ways=4, policy="sketch-lfu")
    for _ in range(5):
        _serve(idx, np.array([7]))                   # read 5 times
    for k in range(4):
        _serve(idx, np.array([100 + k]))             # 7 is the most frequent: the others go first
    assert idx.probe(np.array([7]))[0] >= 0
    lfu = CacheIndex(10_000, 4, ways=4, policy="lfu")
    for _ in range(5):
        _serve(lfu, np.array([7]))
    for k in range(4):
        _serve(lfu, np.array([100 + k]))
    assert lfu.probe(np.array([7]))[0] >= 0          # both keep it while resident; now push it out:
    for idx_ in (idx, lfu):
        _serve(idx_, np.arange(200, 204))            # a batch of 4 (7 is not protected) evicts all
    for idx_ in (idx, lfu):
        _serve(idx_, np.array([7]))                  # 7 returns
        _serve(idx_, np.array([300]))                # a newcomer takes the lowest slot
    assert idx.probe(np.array([7]))[0] >= 0          # sketch: 7 remembered as hot, stays
    row_of_7 = idx.score.reshape(-1)[idx.probe(np.array([7]))[0]] >> 40
    assert row_of_7 >= 6


def test_aging_halves_sketch_and_resident_counts():
    idx = CacheIndex(10_000, 16, ways=16, policy="sketch-lfu")
    pol = idx.policy
    for _ in range(50):
        _serve(idx, np.array([1]))
    before = int(idx.score.reshape(-1)[idx.probe(np.array([1]))[0]] >> 40)
    # 100 reads a slot (16 slots) trigger one halving
    for k in range(100 * 16 // 8):
        _serve(idx, np.arange(1000 + 8 * k, 1008 + 8 * k) % 5000 + 2000)
    after = int(idx.score.reshape(-1)[idx.probe(np.array([1]))[0]] >> 40)
    assert pol.sketch.max() < 255 and after <= before // 2 + 1


def test_dry_run_copy_counts_nothing():
    import copy
    idx = CacheIndex(10_000, 16, ways=4, policy="sketch-lfu")
    _serve(idx, np.arange(8))
    dup = copy.deepcopy(idx.policy)
    sk = idx.policy.sketch.copy()
    dup.on_insert_ids(idx.score.reshape(-1).copy(), np.arange(4), np.arange(50, 54), 99)
    assert np.array_equal(idx.policy.sketch, sk)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10**6), cache_rows=st.integers(1, 200), ways=st.sampled_from((1, 4, 16)),
       batch=st.integers(1, 40))
def test_runtime_cache_equals_embedding_store(tmp_path_factory, seed, cache_rows, ways, batch):
    from sdm.core.spec import TableSpec
    from sdm.runtime.embedding_store import EmbeddingStore

    rng = np.random.default_rng(seed)
    num_rows, dim, pooling = 2000, 4, 3
    ids = np.minimum(rng.zipf(1.1, batch * pooling * 12) - 1, num_rows - 1).astype(np.int64)
    budget = cache_rows * (dim * 4 + index_bytes_per_row(num_rows, "sketch-lfu"))
    with EmbeddingStore.create(tmp_path_factory.mktemp("s") / "s", [TableSpec("t", num_rows, dim)],
                               dram_cache_bytes=budget, policy="sketch-lfu", ways=ways) as s:
        per = batch * pooling
        for a in range(0, ids.size, per):
            ix = torch.from_numpy(ids[a:a + per])
            s.lookup("t", ix, torch.arange(0, ix.numel(), pooling))
        served = s.stats()["tables"]["t"]
    replay = simulate(ids, cache_rows, RuntimeCache("sketch-lfu", ways=ways, batch_size=per, num_rows=num_rows))
    assert served["tiers"]["dram"]["hits"] == replay.hits


def _brute_batch_opt(ids, starts, cap):
    d, b = dedup_batches(ids, starts)
    best = {frozenset(): 0}
    for i in range(len(b) - 1):
        u = set(d[b[i]:b[i + 1]].tolist())
        nxt = {}
        for s, c in best.items():
            cost, pool = c + len(u - s), sorted(s | u)
            for r in range(min(cap, len(pool)) + 1):
                for keep in itertools.combinations(pool, r):
                    k = frozenset(keep)
                    nxt[k] = min(nxt.get(k, cost), cost)
        best = nxt
    return min(best.values())


@settings(max_examples=120, deadline=None)
@given(ids=st.lists(st.integers(0, 5), min_size=1, max_size=13), batch=st.integers(1, 3), cap=st.integers(0, 3))
def test_batch_opt_is_the_optimum_of_batch_caches(ids, batch, cap):
    ids = np.array(ids, np.int64)
    starts = np.arange(0, len(ids), batch)
    best = batch_opt_reads(ids, starts, cap)
    assert best == _brute_batch_opt(ids, starts, cap)
    d, _ = dedup_batches(ids, starts)
    assert best <= (simulate(d, cap, "opt").misses if cap else len(d))     # never above sequential OPT
    for k in (0, 1, 3):
        for base in ("lru", "lfu"):
            assert window_reads(ids, starts, cap, k, base, protect_hits=True) >= best
            assert window_reads(ids, starts, cap, k, base, "tinylfu") >= best


def test_sequential_opt_is_not_a_lower_bound_of_batches():
    ids = np.array([1, 0, 1, 0])              # batches [1] | [0 1] | [0], one row of cache
    starts = np.array([0, 1, 3])
    assert batch_opt_reads(ids, starts, 1) == 2
    assert simulate(dedup_batches(ids, starts)[0], 1, "opt").misses == 3


def test_window_reads_refuses_bad_arguments():
    with pytest.raises(InvalidInputError, match="base must be one of"):
        window_reads(np.arange(4), np.array([0]), 2, 1, base="mru")
    with pytest.raises(InvalidInputError, match="capacity and depth"):
        window_reads(np.arange(4), np.array([0]), -1, 1)
