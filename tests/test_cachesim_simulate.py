"""simulate(): byte accounting, page-granular mode, capacities in bytes, curves, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdm.cachesim import Static, miss_ratio_curve, prepare, simulate
from cache_reference import reference_bytes_used, reference_hits
from sdm.core.errors import InvalidInputError

POLICIES = ["lru", "fifo", "lfu", "s3fifo", "static", "setassoc", "opt"]


def test_row_mode_counts_and_bytes():
    ids = np.array([5, 6, 5, 7, 5, 6])
    r = simulate(ids, 2, "lru", row_bytes=100)
    # 5 6 5(hit) 7(evicts 6) 5(hit) 6(miss)
    assert (r.lookups, r.hits, r.misses) == (6, 2, 4)
    assert r.miss_ratio == pytest.approx(4 / 6)
    assert r.bytes_read == r.bytes_used == 400
    assert r.read_amplification == 1.0
    assert r.unique_ids == 3 and r.unit == "row"


def test_capacity_in_bytes_rounds_down_to_rows():
    ids = np.arange(10).repeat(2)
    by_bytes = simulate(ids, capacity_bytes=3 * 128 + 127, policy="fifo", row_bytes=128)
    assert by_bytes.capacity_rows == 3
    assert by_bytes.hits == simulate(ids, 3, "fifo", row_bytes=128).hits
    with pytest.raises(InvalidInputError):
        simulate(ids, 3, "lru", capacity_bytes=100)


def test_rows_read_as_whole_pages():
    ids = np.array([1, 2, 3, 1])
    r = simulate(ids, 4, "lru", row_bytes=256, page_bytes=4096)
    assert r.misses == 3 and r.bytes_read == 3 * 4096 and r.bytes_used == 3 * 256
    assert r.read_amplification == 16.0
    # a 1 KiB row on 512 B sectors reads two sectors
    r = simulate(ids, 4, "lru", row_bytes=1024, page_bytes=512)
    assert r.bytes_read == 3 * 1024 and r.read_amplification == 1.0


def test_page_mode_by_hand():
    # 4 rows of 1 KiB per 4 KiB page; rows 0-3 -> page 0, 4-7 -> page 1
    page_of = np.arange(8) // 4
    ids = np.array([0, 1, 4, 2, 0, 5])
    r = simulate(ids, capacity_bytes=8192, policy="lru", page_of=page_of, row_bytes=1024, page_bytes=4096)
    assert r.unit == "page" and r.capacity_units == 2
    assert (r.misses, r.hits) == (2, 4)  # one miss per page
    assert r.bytes_read == 2 * 4096
    assert r.bytes_used == 5 * 1024  # rows 0,1,2 of page 0 and 4,5 of page 1
    assert r.read_amplification == pytest.approx(8 / 5)
    # one page of room: pages alternate, each residency uses few rows
    r = simulate(ids, capacity_bytes=4096, policy="lru", page_of=page_of, row_bytes=1024, page_bytes=4096)
    assert r.misses == 4 and r.bytes_used == (2 + 1 + 2 + 1) * 1024  # [0,1] [4] [2,0] [5]
    assert r.bytes_read == 4 * 4096


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.integers(0, 31), max_size=120), pages_kb=st.integers(0, 12),
       policy=st.sampled_from(POLICIES), seed=st.integers(0, 3), warm_share=st.sampled_from([0.0, 0.3]))
def test_page_mode_matches_reference(rows, pages_kb, policy, seed, warm_share):
    rng = np.random.default_rng(seed)
    page_of = rng.permutation(32) // 4  # 4 rows of 1 KiB in each 4 KiB page, shuffled layout
    ids = np.array(rows, dtype=np.int64)
    warmup = int(len(rows) * warm_share)
    r = simulate(ids, capacity_bytes=pages_kb * 1024, policy=policy, page_of=page_of, row_bytes=1024,
                 warmup=warmup)
    pages = page_of[ids].tolist()
    hits = reference_hits(pages, pages_kb // 4, policy)
    assert r.lookups == len(rows) - warmup
    assert r.hits == sum(hits[warmup:])
    assert r.bytes_read == (r.lookups - r.hits) * 4096
    assert r.bytes_used == reference_bytes_used(rows, pages, hits, 1024, warmup)


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.integers(0, 40), min_size=1, max_size=150), cap=st.integers(0, 30),
       policy=st.sampled_from(POLICIES + ["opt-demand"]), warm_share=st.sampled_from([0.1, 0.5, 1.0]))
def test_warmup_counts_only_the_rest(rows, cap, policy, warm_share):
    ids = np.array(rows, dtype=np.int64)
    warmup = int(len(rows) * warm_share)
    hits = reference_hits(rows, cap, policy)
    r = simulate(ids, cap, policy, warmup=warmup, row_bytes=64)
    assert (r.lookups, r.hits, r.warmup_lookups) == (len(rows) - warmup, sum(hits[warmup:]), warmup)
    assert r.bytes_read == r.misses * 64
    curve = miss_ratio_curve(ids, [cap], policy, warmup=warmup, row_bytes=64)
    assert curve.results[0] == r


def test_page_layout_cuts_read_amplification():
    # hot rows 0..63 packed into 4 pages vs spread one per page: same cache bytes, fewer page reads
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 64, 2000)
    packed = np.arange(1024) // 16
    spread = np.concatenate([np.arange(64), 64 + np.arange(960) // 16])  # one hot row per page
    a = simulate(ids, capacity_bytes=4 * 4096, policy="lru", page_of=packed, row_bytes=256)
    b = simulate(ids, capacity_bytes=4 * 4096, policy="lru", page_of=spread, row_bytes=256)
    assert a.misses == 4 and a.read_amplification == 1.0
    assert b.misses > a.misses


def test_static_hot_set_and_preload():
    ids = np.array([9, 9, 9, 4, 4, 1])
    r = simulate(ids, 1, Static())  # hottest in hindsight: 9
    assert (r.hits, r.preloaded_units) == (3, 1)
    r = simulate(ids, 2, Static(hot_ids=[1, 1, 4, 9]))  # given order wins; duplicates ignored
    assert r.hits == 3
    r = simulate(ids, 1, Static(counts=np.bincount([4, 4, 4, 1])))
    assert r.hits == 2
    # page mode: a page is as hot as its rows together
    page_of = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])  # 9 -> page 2, 4 -> page 1, 1 -> page 0
    r = simulate(ids, capacity_bytes=512, policy=Static(hot_ids=[4]), page_of=page_of, row_bytes=128,
                 page_bytes=512)
    assert r.hits == 2 and r.misses == 4  # page 1 pinned; misses on pages 2 and 0 are not cached
    assert r.bytes_used == 4 * 128 and r.read_amplification == 4.0


def test_curve_matches_single_runs_for_every_policy():
    rng = np.random.default_rng(1)
    ids = rng.zipf(1.3, 3000) % 500
    stream = prepare(ids)
    caps = [0, 5, 40, 200, 600]
    for policy in POLICIES + ["lfu-global"]:
        curve = miss_ratio_curve(stream, caps, policy)
        assert curve.miss_ratios.tolist() == [simulate(stream, c, policy).miss_ratio for c in caps]
        assert np.all(np.diff(curve.miss_ratios) <= 0) or policy in ("fifo", "s3fifo", "setassoc")
    page_of = np.arange(ids.max() + 1) // 8
    curve = miss_ratio_curve(ids, capacities_bytes=[0, 4096, 40960], policy="lru", page_of=page_of, row_bytes=512)
    for res in curve.results:
        one = simulate(ids, capacity_bytes=res.capacity_bytes, policy="lru", page_of=page_of, row_bytes=512)
        assert res == one


def test_remap_of_large_sparse_ids_gives_same_result():
    rng = np.random.default_rng(2)
    small = rng.integers(0, 50, 500)
    big = small * 1_000_000_007 + 3
    for policy in ("lru", "opt", "s3fifo"):
        assert simulate(small, 10, policy).hits == simulate(big, 10, policy).hits


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(ids=np.array([1, -2, 3]), capacity_rows=2), "position 1"),
        (dict(ids=np.array([[1, 2]]), capacity_rows=2), "1-D"),
        (dict(ids=np.array([1.5, 2.0]), capacity_rows=2), "integer"),
        (dict(ids=np.array([1, 2]), capacity_rows=-1), "capacity_rows"),
        (dict(ids=np.array([1, 2]), capacity_rows=2, policy="mru"), "unknown cache policy"),
        (dict(ids=np.array([1, 9]), capacity_rows=2, page_of=np.zeros(5, np.int64)), "position 1"),
        (dict(ids=np.array([1, 2]), capacity_rows=2, page_of=np.zeros(3, np.int64), row_bytes=8192), "row_bytes"),
        (dict(ids=np.array([1, 2]), capacity_rows=2, page_of=np.zeros(3, np.int64), row_bytes=2048), "page 0"),
        (dict(ids=np.array([1, 2]), capacity_rows=2, row_bytes=0), "row_bytes"),
        (dict(ids=np.array([1, 2]), capacity_rows=2, warmup=3), "warmup"),
        # never silently truncated: 2.5 rows is not 2 rows
        (dict(ids=np.array([1, 2]), capacity_rows=2.5), "capacity_rows must be a whole number"),
        (dict(ids=np.array([1, 2]), capacity_rows=2, row_bytes=1.5), "row_bytes must be a whole number"),
        (dict(ids=np.array([1, 2]), capacity_rows=2, page_bytes=0), "page_bytes must be a whole number >= 1"),
        (dict(ids=np.array([1, 2]), capacity_rows=2, warmup=-1), "warmup must be a whole number"),
        (dict(ids=np.array([1, 2]), capacity_rows=None, capacity_bytes=float("nan")), "capacity_bytes"),
        (dict(ids=np.array([2**63 + 1, 1], dtype=np.uint64), capacity_rows=2), "position 0 is beyond int64"),
    ],
)
def test_bad_input_is_named(kwargs, words):
    with pytest.raises(InvalidInputError, match=words):
        simulate(**kwargs)


def test_empty_trace():
    r = simulate(np.array([], dtype=np.int64), 10, "opt")
    assert (r.lookups, r.misses, r.miss_ratio) == (0, 0, 0.0)


def test_layout_page():
    from sdm.cachesim.stream import layout_page, layout_pages

    num_rows = [5, 3]  # 2 rows a page: table 0 -> pages 0..2, table 1 -> pages 3..4
    assert layout_page(np.arange(8), num_rows, 2).tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    # row_order[slot] = row: table 0 stored as 4 3 2 1 0
    assert layout_page(np.arange(8), num_rows, 2, [np.array([4, 3, 2, 1, 0]), None]).tolist() == [
        2, 1, 1, 0, 0, 3, 3, 4]
    dense, pages = layout_pages(np.array([7, 0, 7]), num_rows, 2)
    assert dense.tolist() == [1, 0, 1] and pages.tolist() == [0, 4]
    with pytest.raises(InvalidInputError, match="permutation"):
        layout_page(np.arange(8), num_rows, 2, [np.array([0, 0, 1, 2, 3]), None])
    with pytest.raises(InvalidInputError, match="position 1"):
        layout_page(np.array([1, 8]), num_rows, 2)


def test_static_from_table_profile():
    from sdm.placement.profile import Profile
    from sdm.traces import zipf_trace

    trace = zipf_trace([2000], 3000, batch_size=100, pooling=2, alpha=1.1, seed=5)
    table = Profile.from_trace(trace)[trace.table_names[0]]
    ids = trace.table_stream(0)
    pinned = simulate(ids, 50, Static.from_profile(table, 50))
    assert pinned.hits == simulate(ids, 50, "static").hits  # exact profile = hindsight counts
