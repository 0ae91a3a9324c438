"""Every fast policy kernel agrees exactly with its plain-Python reference on small traces."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sdm.cache.lru import INFINITE_DISTANCE
from cache_reference import reference_hits, reference_stack_distances
from sdm.cache.s3fifo import S3FIFO
from sdm.cache.policies import make_policy
from sdm.cachesim.simulate import miss_ratio_curve, simulate
from sdm.cachesim.stream import prepare

# Small alphabets make reuse (and so evictions) common; a sparse alphabet exercises the remap.
small_ids = st.lists(st.integers(0, 24), min_size=0, max_size=160)
sparse_ids = st.lists(st.sampled_from([3, 17, 1 << 20, 5_000_000_000, 42, 7, 99, 12345]), max_size=120)
traces = st.one_of(small_ids, sparse_ids)
capacities = st.integers(0, 30)
SETTINGS = settings(max_examples=60, deadline=None)

POLICY_NAMES = ["lru", "fifo", "lfu", "lfu-global", "s3fifo", "static", "setassoc", "opt", "opt-demand"]


def fast_hits(ids, capacity, policy):
    return make_policy(policy).replay(prepare(np.array(ids, dtype=np.int64)), capacity).tolist()


@SETTINGS
@given(ids=traces, capacity=capacities, policy=st.sampled_from(POLICY_NAMES))
def test_policy_matches_reference(ids, capacity, policy):
    assert fast_hits(ids, capacity, policy) == reference_hits(ids, capacity, policy)


@SETTINGS
@given(ids=small_ids, capacity=capacities, ways=st.sampled_from([1, 2, 4, 8]))
def test_set_associative_matches_reference(ids, capacity, ways):
    assert fast_hits(ids, capacity, f"setassoc{ways}") == reference_hits(ids, capacity, "setassoc", ways=ways)


@SETTINGS
@given(ids=small_ids, capacity=capacities, small_ratio=st.sampled_from([0.1, 0.25, 0.5]),
       move_threshold=st.integers(1, 3))
def test_s3fifo_parameters_match_reference(ids, capacity, small_ratio, move_threshold):
    fast = S3FIFO(small_ratio, move_threshold).replay(prepare(np.array(ids, dtype=np.int64)), capacity)
    ref = reference_hits(ids, capacity, "s3fifo", small_ratio=small_ratio, move_threshold=move_threshold)
    assert fast.tolist() == ref


@SETTINGS
@given(ids=traces)
def test_stack_distances_match_definition(ids):
    dist = prepare(np.array(ids, dtype=np.int64)).stack_distances()
    got = [None if d == INFINITE_DISTANCE else int(d) for d in dist]
    assert got == reference_stack_distances(ids)


@SETTINGS
@given(ids=traces, caps=st.lists(capacities, min_size=1, max_size=6))
def test_lru_curve_in_one_pass_equals_per_capacity_runs(ids, caps):
    ids = np.array(ids, dtype=np.int64)
    curve = miss_ratio_curve(ids, caps, "lru")
    for cap, res in zip(caps, curve.results):
        one = simulate(ids, cap, "lru")
        assert (res.hits, res.misses, res.bytes_read, res.bytes_used) == (one.hits, one.misses, one.bytes_read,
                                                                        one.bytes_used)


@SETTINGS
@given(ids=traces, capacity=capacities)
def test_opt_is_a_lower_bound(ids, capacity):
    ids = np.array(ids, dtype=np.int64)
    stream = prepare(ids)
    best = simulate(stream, capacity, "opt").misses
    for name in POLICY_NAMES:
        res = simulate(stream, capacity, name)
        # a pinned set is read once up front: those reads count against the bound too
        assert best <= res.misses + res.preloaded_units, name
    # demand-paging OPT is the bound for always-insert policies
    demand = simulate(stream, capacity, "opt-demand").misses
    for name in ("lru", "fifo", "lfu", "lfu-global", "setassoc"):
        assert demand <= simulate(stream, capacity, name).misses, name


def test_known_sequences():
    # a b c a b c with 2 slots: LRU and FIFO thrash; OPT keeps one of them
    seq = [0, 1, 2, 0, 1, 2]
    assert fast_hits(seq, 2, "lru") == [False] * 6
    assert fast_hits(seq, 2, "fifo") == [False] * 6
    assert sum(fast_hits(seq, 2, "opt")) == 2
    # capacity 1, a b a: bypassing b lets a hit; demand paging cannot
    assert fast_hits([0, 1, 0], 1, "opt") == [False, False, True]
    assert fast_hits([0, 1, 0], 1, "opt-demand") == [False, False, False]
    # LFU keeps the frequent id 0 where LRU evicts it
    seq = [0, 0, 0, 1, 2, 0]
    assert fast_hits(seq, 2, "lfu")[-1] is True
    assert fast_hits(seq, 2, "lru")[-1] is False
