"""DRAM cache: index overhead, policies, protection, bypass, consistency under random operations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from sdm.core.errors import InvalidInputError
from sdm.cache.policies import LFU, LRU, Static, make_policy
from sdm.cache.dram_cache import INDEX_BYTES_PER_ROW, DramCache


def _rows(ids, dim=4):
    return torch.from_numpy(np.repeat(np.asarray(ids, np.float32)[:, None], dim, axis=1))


@pytest.mark.parametrize("cap_rows, num_rows", [(1000, 100_000), (64, 50), (5000, 10**9), (300, 2**40)])
def test_index_overhead_at_most_16_bytes_per_row(cap_rows, num_rows):
    c = DramCache(num_rows, 16, torch.float32, cap_rows * (64 + INDEX_BYTES_PER_ROW))
    assert INDEX_BYTES_PER_ROW <= 16
    assert c.index_bytes <= 16 * c.capacity_rows
    assert c.index_bytes == c.index_bytes_per_row * c.capacity_rows
    # int32 (or int64) tag + int32 score (the scratch mark inserts used is gone: 1 byte less)
    assert c.index_bytes_per_row == (8 if num_rows < 2**31 else 12)
    lfu = DramCache(num_rows, 16, torch.float32, cap_rows * (64 + INDEX_BYTES_PER_ROW), policy="lfu")
    assert lfu.index_bytes_per_row == c.index_bytes_per_row + 4      # int64 score: count and stamp
    assert lfu.index_bytes == lfu.index_bytes_per_row * lfu.capacity_rows <= 16 * lfu.capacity_rows
    # counted independently of index_bytes: every array the cache or its policy holds, row data aside
    held = [v for obj in (c, c.policy) for k, v in vars(obj).items() if isinstance(v, np.ndarray)]
    assert sum(a.nbytes for a in held) == c.index_bytes
    # data + index fit the budget
    assert c.data.numel() * 4 + c.index_bytes <= cap_rows * (64 + INDEX_BYTES_PER_ROW)


def test_whole_table_budget_holds_every_row():
    c = DramCache(1000, 4, torch.float32, 1000 * (16 + 13))
    assert c.direct and c.index_bytes <= 16 * 1000
    ids = np.random.default_rng(0).permutation(1000)
    slots = c.insert(ids[:600], _rows(ids[:600]))
    assert (slots == ids[:600]).all() and not c.complete       # row r lives in slot r
    c.insert(ids[600:], _rows(ids[600:]))
    assert c.complete and c.resident_rows == 1000
    assert torch.equal(c.data, _rows(np.arange(1000)))
    hashed = DramCache(1000, 4, torch.float32, 1000 * (16 + 13), layout="hashed")
    assert not hashed.direct and hashed.capacity_rows == 1200   # 29,000 B // 24 B = 1208 rows, 75 full sets of 16


def test_lru_evicts_least_recent_in_set():
    c = DramCache(10**6, 4, torch.float32, 4 * (16 + 13), ways=4, policy="lru")  # one set of 4
    assert c.num_sets == 1
    c.insert(np.array([1, 2, 3, 4]), _rows([1, 2, 3, 4]))
    c.touch(c.probe(np.array([1, 3])))
    c.insert(np.array([5, 6]), _rows([5, 6]))
    assert sorted(c.contents()) == [1, 3, 5, 6]


def test_lfu_evicts_least_frequent():
    c = DramCache(10**6, 4, torch.float32, 4 * (16 + 13), ways=4, policy="lfu")
    c.insert(np.array([1, 2, 3, 4]), _rows([1, 2, 3, 4]))
    for _ in range(3):
        c.touch(c.probe(np.array([2, 4])))
    c.touch(c.probe(np.array([1])))
    c.insert(np.array([9]), _rows([9]))
    assert sorted(c.contents()) == [1, 2, 4, 9]


def test_static_hot_set_admits_only_hot_rows():
    c = DramCache(100, 4, torch.float32, 20 * 29, policy="static", hot_ids=np.array([3, 5, 7]))
    slots = c.insert(np.array([3, 4, 5]), _rows([3, 4, 5]))
    assert (slots >= 0).tolist() == [True, False, True]
    assert sorted(c.contents()) == [3, 5]


def test_protected_slots_are_never_evicted_and_overflow_bypasses():
    c = DramCache(10**6, 4, torch.float32, 4 * 29, ways=4)
    c.insert(np.array([1, 2, 3, 4]), _rows([1, 2, 3, 4]))
    keep = c.probe(np.array([1, 2, 3]))
    slots = c.insert(np.array([10, 11, 12]), _rows([10, 11, 12]), protect_slots=keep)
    assert (slots >= 0).sum() == 1                      # one evictable way: the rest bypass
    assert {1, 2, 3} <= set(c.contents().tolist())


def test_policy_errors_and_plugins():
    with pytest.raises(InvalidInputError, match="unknown cache policy"):
        make_policy("arc")
    assert isinstance(make_policy(LRU()), LRU) and isinstance(make_policy("lfu"), LFU)
    assert isinstance(make_policy("static", np.array([1])), Static)
    with pytest.raises(InvalidInputError, match=r"table 't': DRAM cache capacity_bytes must be a whole number >= 0"):
        DramCache(10, 4, torch.float32, -1, table="t")
    with pytest.raises(InvalidInputError, match=r"ways must be a whole number >= 1, got 2.5"):
        DramCache(10, 4, torch.float32, 100, ways=2.5)


def test_zero_capacity_cache_is_a_no_op():
    c = DramCache(10, 4, torch.float32, 0)
    assert c.capacity_rows == 0 and (c.probe(np.arange(5)) == -1).all()
    assert (c.insert(np.arange(3), _rows([0, 1, 2])) == -1).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 300), min_size=1, max_size=40), min_size=1, max_size=15),
       st.sampled_from(["lru", "lfu"]), st.integers(1, 8))
def test_cache_always_returns_the_right_row(batches, policy, ways):
    """Whatever the sequence of batches, a probed slot holds that id's row and ids stay unique."""
    c = DramCache(301, 4, torch.float32, 40 * 29, ways=ways, policy=policy)
    for b in batches:
        ids = np.unique(np.array(b))
        slots = c.probe(ids)
        c.touch(slots[slots >= 0])
        miss = ids[slots < 0]
        c.insert(miss, _rows(miss), protect_slots=slots[slots >= 0])
        resident = c.contents()
        assert len(np.unique(resident)) == len(resident) <= c.capacity_rows
        s = c.probe(resident)
        assert torch.equal(c.data[torch.from_numpy(s)], _rows(resident))
        # hits of this batch were protected, so they are still there
        assert set(ids[slots >= 0].tolist()) <= set(resident.tolist())


@pytest.mark.parametrize("policy", ["lru", "lfu", "fifo"])
def test_clock_renumbers_before_its_limit_and_decides_the_same(policy):
    """A 32-bit score serves forever: near the clock's limit the stamps become their ranks, and the
    cache evicts exactly what it would have (the same stream from a fresh clock)."""
    from sdm.cache.index import CacheIndex
    from sdm.cachesim import replay_batches

    ids = np.random.default_rng(5).zipf(1.1, 4000) % 3000
    starts = np.arange(0, ids.size, 7)
    fresh = CacheIndex(10**6, 64, ways=8, policy=policy)
    late = CacheIndex(10**6, 64, ways=8, policy=policy)
    late.stamp = late._stamp_limit - 50                       # passes the limit a few batches in
    assert replay_batches(late, ids, starts).tolist() == replay_batches(fresh, ids, starts).tolist()
    assert late.stamp < 10**6 and late.score.max() <= np.iinfo(late.score.dtype).max
