"""Profiles: exact counts, sketch error bounds, CDF, pooling, co-access, save/load, CLI."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdm.cli import main as cli_main
from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.placement.profile import Profile
from sdm.placement.profile_table import profile_table
from sdm.placement.sketch import CountMinSketch, HeavyHitters, HyperLogLog
from sdm.traces import from_bags, zipf_trace


@pytest.fixture(scope="module")
def ztrace():
    return zipf_trace([50_000, 300], 4000, batch_size=500, pooling=[6, 2], alpha=1.1, seed=4,
                      pooling_dist="poisson")


def test_exact_counts_cdf_pooling(ztrace):
    prof = Profile.from_trace(ztrace)
    tp = prof["t0"]
    truth = np.bincount(ztrace.indices[0], minlength=50_000)
    assert tp.exact and np.array_equal(tp.count(np.arange(50_000)), truth)
    assert tp.unique_rows == np.count_nonzero(truth) and tp.num_lookups == truth.sum()
    order = np.lexsort((np.arange(50_000), -truth))
    assert tp.hot_rows(100).tolist() == order[:100].tolist()
    assert tp.hot_rows(5000).tolist() == order[:5000].tolist()  # beyond the heavy-hitter list
    for x in (0.001, 0.01, 0.1, 0.5):
        k = int(x * 50_000)
        assert tp.top_share(x) == pytest.approx(np.sort(truth)[::-1][:k].sum() / truth.sum())
    x, y = tp.cdf()
    assert np.all(np.diff(y) >= 0) and y[-1] == pytest.approx(1.0)
    lens = np.diff(ztrace.offsets[0])
    assert tp.pooling_factor == pytest.approx(lens.mean()) and tp.pooling.max == lens.max()
    assert tp.memory_bytes <= 4 * 50_000 + 200_000  # counts + fixed small parts
    assert prof.memory_bytes == sum(t.memory_bytes for t in prof)


def test_sketch_mode_error_bounds(ztrace):
    budget = 64 << 10  # far below 4 bytes x 50k rows -> sketch
    tp = Profile.from_trace(ztrace, memory_budget_bytes=budget, heavy_hitters=512, delta=0.01)["t0"]
    assert not tp.exact and tp.memory_bytes <= budget + 64 << 10
    truth = np.bincount(ztrace.indices[0], minlength=50_000)
    est = tp.count(np.arange(50_000))
    assert np.all(est >= truth)  # count-min never under-estimates
    over = est - truth > tp.count_error_bound
    assert over.mean() <= tp.delta  # per-row failure probability <= delta
    true_top = np.argsort(-truth)[:50]
    assert np.isin(true_top, tp.hot_rows(512)).all()
    assert abs(tp.unique_rows - np.count_nonzero(truth)) <= 4 * tp.unique_relative_error * np.count_nonzero(truth)
    # CDF: exact enough inside the heavy hitters, a lower bound beyond them
    exact_share = np.sort(truth)[::-1]
    k_in = 200  # 200 rows = 0.4% of the table, inside the 512 heavy hitters
    true_share = exact_share[:k_in].sum() / truth.sum()
    # never below the truth; at most k * eps above it by the count-min bound (and close in practice)
    assert true_share - 1e-9 <= tp.top_share(k_in / 50_000) <= true_share + k_in * tp.eps
    assert tp.top_share(k_in / 50_000) == pytest.approx(true_share, abs=0.03)
    assert tp.top_share(0.2) <= exact_share[:10_000].sum() / truth.sum() + 1e-9


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=400), st.integers(2, 8), st.integers(1, 3))
def test_count_min_never_underestimates(ids, width_log2, depth):
    cms = CountMinSketch(width_log2, depth, seed=1)
    ids = np.array(ids)
    cms.add(ids[: len(ids) // 2])
    cms.add(ids[len(ids) // 2:])
    u, c = np.unique(ids, return_counts=True)
    assert np.all(cms.query(u) >= c) and cms.total == ids.size


def test_heavy_hitters_and_hll():
    rng = np.random.default_rng(0)
    stream = np.concatenate([np.repeat(np.arange(10), 1000), rng.integers(100, 1_000_000, 50_000)])
    rng.shuffle(stream)
    hh = HeavyHitters(32, CountMinSketch.for_error(1e-3, 1e-3))
    for chunk in np.array_split(stream, 7):
        hh.add(chunk)
    assert set(range(10)) <= set(hh.rows[:10].tolist())
    hll = HyperLogLog(14)
    hll.add(stream)
    true_unique = np.unique(stream).size
    assert abs(hll.estimate() - true_unique) <= 4 * hll.relative_error * true_unique
    with pytest.raises(InvalidInputError):
        CountMinSketch.for_error(0, 0.1)


def brute_coaccess(idx, off, row):
    c = Counter()
    for s in range(len(off) - 1):
        bag = idx[off[s]:off[s + 1]].tolist()
        for _ in range(bag.count(row)):
            c.update(v for v in bag if v != row)
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))


def test_coaccess_matches_brute_force():
    tr = zipf_trace([400], 600, batch_size=50, pooling=5, alpha=1.2, seed=9, pooling_dist="poisson")
    tp = Profile.from_trace(tr, coaccess_rows=20, coaccess_partners=6)["t0"]
    idx, off = tr.indices[0], tr.offsets[0]
    assert tp.coaccess_rows.tolist() == tp.hot_rows(20).tolist()
    for row in tp.coaccess_rows:
        partners, counts = tp.coaccess(row)
        want = brute_coaccess(idx, off, int(row))[:6]
        assert list(zip(partners.tolist(), counts.tolist())) == want
    assert tp.coaccess(10**6)[0].size == 0


def test_coaccess_pair_budget_bounds_work():
    tr = zipf_trace([400], 3000, batch_size=50, pooling=20, alpha=1.2, seed=9)
    tp = profile_table("t0", 400, tr.indices[0], tr.offsets[0], coaccess_rows=10, max_pairs=5_000)
    assert tp.coaccess_samples < tr.num_samples  # subsampled
    assert tp.coaccess_partners.shape == (10, 8)


def test_hot_rows_global(ztrace):
    prof = Profile.from_trace(ztrace)
    g = ztrace.global_stream()
    truth = np.bincount(g, minlength=ztrace.total_rows)
    want = np.lexsort((np.arange(truth.size), -truth))[:50]
    assert prof.hot_rows_global(50).tolist() == want.tolist()
    assert prof.table_base.tolist() == ztrace.table_base.tolist()


@pytest.mark.parametrize("budget", [32 << 20, 64 << 10])
def test_save_load_roundtrip(tmp_path, ztrace, budget):
    prof = Profile.from_trace(ztrace, memory_budget_bytes=budget)
    path = prof.save(tmp_path / "p.npz")
    back = Profile.load(path)
    assert back.summary() == prof.summary()
    for a, b in zip(prof, back):
        assert np.array_equal(a.count(np.arange(a.num_rows)), b.count(np.arange(b.num_rows)))
        assert np.array_equal(a.coaccess_partners, b.coaccess_partners)
        assert a.hot_rows(10).tolist() == b.hot_rows(10).tolist()


def test_bad_inputs(tmp_path, ztrace):
    tp = Profile.from_trace(ztrace)["t1"]
    with pytest.raises(InvalidInputError, match="table 't1': row 300 at position 1"):
        tp.count([0, 300])
    with pytest.raises(InvalidInputError, match="top_share"):
        tp.top_share(1.5)
    with pytest.raises(InvalidInputError, match="unknown table"):
        Profile.from_trace(ztrace)["nope"]
    bad = tmp_path / "bad.npz"
    bad.write_text("nope")
    with pytest.raises(StoreFormatError, match="not an sdm profile"):
        Profile.load(bad)
    for budget in (32 << 20, 8):  # exact counts and the sketch both name the row and its position
        with pytest.raises(InvalidInputError, match=r"row -1 at position 1 is out of range \[0, 10\)"):
            profile_table("x", 10, np.array([1, -1]), np.array([0, 2]), memory_budget_bytes=budget)
        with pytest.raises(InvalidInputError, match=r"row 10 at position 2 is out of range"):
            profile_table("x", 10, np.array([1, 2, 10]), np.array([0, 3]), memory_budget_bytes=budget)
    with pytest.raises(InvalidInputError, match="must be integers"):
        profile_table("x", 10, np.array([1.5]), np.array([0, 1]))   # never truncated to row 1
    with pytest.raises(InvalidInputError, match=r"offsets\[1\]=3 but there are 2 indices"):
        profile_table("x", 10, np.array([1, 2]), np.array([0, 3]))
    with pytest.raises(InvalidInputError, match="delta must be in"):
        profile_table("x", 10, np.array([1, 2]), np.array([0, 2]), memory_budget_bytes=8, delta=2)
    with pytest.raises(InvalidInputError, match="memory_budget_bytes"):
        profile_table("x", 10, np.array([1, 2]), np.array([0, 2]), memory_budget_bytes=-1)
    with pytest.raises(InvalidInputError, match="must be integers"):
        tp.count(np.array([1.5]))
    with pytest.raises(InvalidInputError, match="hot_rows"):
        tp.hot_rows(2.5)
    with pytest.raises(InvalidInputError, match="needs an sdm.traces.Trace"):
        Profile.from_trace([[1, 2]])


def test_cli_profile(tmp_path, capsys):
    tr = from_bags(["a", "b"], [100, 10], [[[1, 2], [1], [3, 1]], [[0], [0], [9]]], batch_size=2)
    path = tr.save(tmp_path / "t.npz")
    assert cli_main(["profile", str(path), "--no-progress", "--reuse"]) == 0
    text = capsys.readouterr().out
    assert "top 1%" in text and (tmp_path / "t.profile.npz").exists()
    assert "reuse table of batch 0" in text
    assert cli_main(["profile", str(path), "--json", "--reuse", "--out", str(tmp_path / "q.npz")]) == 0
    reuse = json.loads(capsys.readouterr().out)["reuse_batch0"]
    # batch 0 reads a:1, a:2, a:1, b:0, b:0 -> one row read once, two rows twice
    assert reuse["unique_share"][:3] == [0.3333, 0.6667, 0.0] and reuse["lookup_share"][:2] == [0.2, 0.8]
    assert cli_main(["profile", str(path), "--json", "--out", str(tmp_path / "p.npz")]) == 0
    rows = json.loads(capsys.readouterr().out)["tables"]
    assert rows[0]["table"] == "a" and rows[0]["lookups"] == 5 and rows[0]["unique"] == 3
    assert rows[0]["top1%"] == pytest.approx(3 / 5)  # hottest 1 of 100 rows: row 1, read 3 times
    assert Profile.load(tmp_path / "p.npz")["b"].hot_rows(1).tolist() == [0]
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert cli_main(["profile", str(tmp_path / "junk.npz")]) == 1
    assert "junk.npz" in capsys.readouterr().err
    assert cli_main(["profile", str(tmp_path / "missing.npz")]) == 1
