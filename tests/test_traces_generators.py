"""Generators: determinism, distributions, the stack-distance kernel, production calibration."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdm.core.errors import InvalidInputError
from sdm.traces import (
    CRITEO_KAGGLE_ROWS,
    CRITEO_TERABYTE_ROWS,
    META_2021_REUSE,
    calibrated_counts,
    production_trace,
    reuse_table,
    stack_distance_trace,
    table_rows,
    zipf_trace,
)
from sdm.traces.production import production_scrambler
from sdm.traces.stack_distance import _stack_replay
from sdm.traces.sampling import Scrambler, zipf_ranks


def test_criteo_tables():
    assert len(CRITEO_KAGGLE_ROWS) == 26 and CRITEO_KAGGLE_ROWS[2] == 10131227
    assert len(CRITEO_TERABYTE_ROWS) == 26 and max(CRITEO_TERABYTE_ROWS) == 39979771
    assert table_rows("criteo-kaggle") == list(CRITEO_KAGGLE_ROWS)
    assert table_rows("5,7") == [5, 7] and table_rows(3) == [3]
    with pytest.raises(InvalidInputError, match="criteo-kaggle"):
        table_rows("criteo-nope")


@pytest.mark.parametrize("make", [
    lambda s: zipf_trace([1000, 50], 500, batch_size=64, pooling=[2, 1.5], seed=s),
    lambda s: stack_distance_trace([1000, 50], 500, batch_size=64, pooling=3, seed=s),
    lambda s: production_trace([20000, 5000], 2, batch_size=64, pooling=[8, 4], seed=s, coaccess_group=3),
])
def test_deterministic_under_seed(make):
    a, b, c = make(1), make(1), make(2)
    assert a.global_stream().tolist() == b.global_stream().tolist()
    assert [o.tolist() for o in a.offsets] == [o.tolist() for o in b.offsets]
    assert a.global_stream().tolist() != c.global_stream().tolist()


@pytest.mark.parametrize("num_rows,alpha", [(1000, 1.05), (300_000, 0.9), (300_000, 1.0)])
def test_zipf_ranks_follow_pmf(num_rows, alpha):
    # 300k rows exercises the integral tail beyond the exact 65536-rank head
    ranks = zipf_ranks(np.random.default_rng(0), 400_000, num_rows, alpha)
    pmf = np.arange(1, num_rows + 1, dtype=float) ** -alpha
    cdf = np.cumsum(pmf) / pmf.sum()
    emp = np.cumsum(np.bincount(ranks, minlength=num_rows)) / ranks.size
    assert np.abs(emp - cdf).max() < 0.006  # KS distance; 1.36/sqrt(n) = 0.002 at 95%


def test_scrambler_is_bijection():
    for n in (1, 2, 3, 97, 1000, 4096):
        ids = Scrambler(n, 7)(np.arange(n))
        assert sorted(ids.tolist()) == list(range(n))


def test_zipf_trace_shape():
    tr = zipf_trace("criteo-kaggle", 2000, batch_size=256, seed=0)
    assert tr.num_tables == 26 and tr.num_lookups == 26 * 2000  # fixed pooling 1
    assert tr.num_batches == 8
    big = np.bincount(tr.table_stream(2))  # the 10M-row table: hot rows exist, scattered ids
    assert big.max() > 20


def naive_stack_replay(depths, cold, new_rows):
    stack, out, nxt = [], [], 0  # stack[0] = most recent
    for d, c in zip(depths.tolist(), cold.tolist()):
        if (c or d >= len(stack)) and nxt < len(new_rows):
            row = int(new_rows[nxt])
            nxt += 1
        else:
            row = stack.pop(d % len(stack))
        stack.insert(0, row)
        out.append(row)
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.floats(0, 1), st.integers(0, 2**31))
def test_stack_kernel_matches_naive_lru_stack(n, rows, cold_p, seed):
    rng = np.random.default_rng(seed)
    depths = rng.integers(0, rows + 3, n)
    cold = rng.random(n) < cold_p
    new_rows = rng.permutation(rows)
    assert _stack_replay(depths, cold, new_rows).tolist() == naive_stack_replay(depths, cold, new_rows)


def test_stack_distance_locality():
    # All reuses at depth 0 -> every non-cold access repeats the previous row.
    tr = stack_distance_trace(100_000, 5000, distance_pmf=np.array([1.0]), cold_share=0.1, seed=3)
    s = tr.table_stream(0)
    repeat = np.mean(s[1:] == s[:-1])
    assert 0.87 < repeat < 0.93
    # Smaller beta -> longer distances -> fewer distinct-row reuses within a short window.
    near = stack_distance_trace(100_000, 20000, beta=1.5, cold_share=0.02, seed=1).table_stream(0)
    far = stack_distance_trace(100_000, 20000, beta=0.5, cold_share=0.02, seed=1).table_stream(0)
    assert np.unique(near).size < np.unique(far).size


def test_calibrated_counts_exact_total():
    rng = np.random.default_rng(0)
    for L in (1, 17, 5000, 200_000):
        c = calibrated_counts(rng, L)
        assert c.sum() == L and c.min() >= 1 and np.all(np.diff(c) <= 0)


def test_production_matches_published_reuse_table():
    # 16 tables x 2M rows, 8192 samples x pooling 16 = 2.1M lookups per batch (enough for 32K+)
    tr = production_trace([2_000_000] * 16, 2, batch_size=8192, pooling=16, seed=11)
    for b in range(2):
        got = reuse_table(tr.global_stream(b, b + 1))
        du, dl = got.max_abs_diff(META_2021_REUSE)
        assert du <= 0.02 and dl <= 0.02, got.format()
        assert abs(got.mean_reuse - META_2021_REUSE.mean_reuse) < 0.3
    assert np.allclose(tr.pooling_factors(), 16, rtol=0.05)
    # hot rows persist from batch to batch
    c0 = np.bincount(tr.global_stream(0, 1), minlength=tr.total_rows)
    c1 = np.bincount(tr.global_stream(1, 2), minlength=tr.total_rows)
    top0, top1 = np.argsort(-c0)[:200], np.argsort(-c1)[:200]
    assert np.intersect1d(top0, top1).size >= 160


def _same_group_pair_share(tr, seed: int, group: int) -> float:
    """Among within-sample pairs of the 2000 hottest-ranked (persistent) rows, the share whose two
    rows are in the same co-access group (ranks k // group equal)."""
    n = tr.num_rows[0]
    inv = np.empty(n, dtype=np.int64)
    inv[production_scrambler(n, 0, seed)(np.arange(n))] = np.arange(n)
    idx, off = tr.indices[0], tr.offsets[0]
    same = total = 0
    for s in range(tr.num_samples):  # small test data
        r = np.unique(inv[idx[off[s]:off[s + 1]]])
        r = r[r < 2000]
        if r.size > 1:
            a, b = np.triu_indices(r.size, 1)
            same += int(np.count_nonzero(r[a] // group == r[b] // group))
            total += a.size
    return same / total


def test_production_coaccess_groups():
    kw = dict(batch_size=1024, pooling=8, seed=5)
    plain = production_trace([200_000], 2, **kw)
    grouped = production_trace([200_000], 2, coaccess_group=4, coaccess_strength=0.9, **kw)
    assert reuse_table(grouped.global_stream(0, 1)).max_abs_diff(reuse_table(plain.global_stream(0, 1)))[1] < 0.02
    p, g = _same_group_pair_share(plain, 5, 4), _same_group_pair_share(grouped, 5, 4)
    assert g > 3 * p and g > 0.2, (p, g)


def test_production_errors():
    with pytest.raises(InvalidInputError, match="unique rows"):
        production_trace([100, 100], 1, batch_size=1000, pooling=4)
    with pytest.raises(InvalidInputError, match="pooling"):
        production_trace([1000, 1000], 1, pooling=[1, 2, 3])
    with pytest.raises(InvalidInputError, match="num_samples"):
        zipf_trace([10], 0)
    with pytest.raises(InvalidInputError, match="alpha must be a finite number"):
        zipf_trace([10], 10, alpha=float("nan"))
    with pytest.raises(InvalidInputError, match="batch_size must be a whole number"):
        zipf_trace([10], 10, batch_size=0.5)


# ---- issue 12: calibrate to, or compare with, any published reuse table (--reuse FILE.json) ----------
def _write_reuse(path, table, **extra):
    import json

    path.write_text(json.dumps({"unique_share": table.unique_share.tolist(), "lookup_share": table.lookup_share.tolist(),
                                "num_lookups": table.num_lookups, "num_unique": table.num_unique,
                                "source": "a zipf sample", **extra}))


def test_production_trace_calibrates_to_a_reuse_file(tmp_path):
    from sdm.traces.generators import zipf_trace
    from sdm.traces.production import production_trace
    from sdm.traces.reuse import BUCKET_LABELS, META_2021_REUSE, load_reuse, reuse_table

    sample = reuse_table(zipf_trace([5_000_000] * 4, 50_000, pooling=8, alpha=0.9, seed=4).global_stream(0, 1))
    _write_reuse(tmp_path / "r.json", sample, buckets=BUCKET_LABELS)
    given = load_reuse(tmp_path / "r.json")
    assert given.source == "a zipf sample" and given.num_lookups == sample.num_lookups
    assert given.max_abs_diff(META_2021_REUSE)[1] > 0.05           # a different table from Meta's
    tr = production_trace([5_000_000] * 4, 1, batch_size=sample.num_lookups // 32, pooling=8, reuse=given)
    du, dl = reuse_table(tr.global_stream(0, 1)).max_abs_diff(given)
    assert du <= 0.03 and dl <= 0.03, (du, dl)


@pytest.mark.parametrize("doc,words", [
    ({"unique_share": [1.0] * 16, "lookup_share": [1.0] * 17}, "unique_share must be 17 numbers"),
    ({"unique_share": [1.0] * 17, "lookup_share": [-1.0] * 17}, "lookup_share must be 17 numbers"),
    ({"unique_share": [1.0] * 17, "lookup_share": [1.0] * 17, "buckets": ["a"] * 17}, "buckets must be"),
    ({"unique_share": [1.0] * 17, "lookup_share": [1.0] * 17, "num_lookups": 5}, "both num_lookups and num_unique"),
])
def test_bad_reuse_files(tmp_path, doc, words):
    import json

    from sdm.traces.reuse import load_reuse

    (tmp_path / "r.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match=words):
        load_reuse(tmp_path / "r.json")
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_reuse(tmp_path / "none.json")


def test_min_batch_lookups_for_meta_table():
    from sdm.traces.reuse import META_2021_REUSE, min_batch_lookups

    # 32K+ holds 1.9% of lookups: a row read > 32768 times needs ~32769 / 0.019 = 1.72M lookups per batch
    assert min_batch_lookups(META_2021_REUSE) == int(np.ceil(32769 / 0.019))


def test_profile_and_gen_trace_take_a_reuse_file(tmp_path, capsys):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from sdm.cli import main
    from sdm.traces.reuse import META_2021_REUSE, load_reuse, min_batch_lookups

    _write_reuse(tmp_path / "r.json", META_2021_REUSE, source="meta again")
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, str(root / "tools" / "gen_trace.py"), "production", "--tables", "2000000x4",
                          "--batches", "1", "--batch-size", "2048", "--pooling", "8", "--reuse", str(tmp_path / "r.json"),
                          "--out", str(tmp_path / "p.npz")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    need = min_batch_lookups(load_reuse(tmp_path / "r.json"))        # shares renormalised: ~1.72M
    assert 1.6e6 < need < 1.8e6
    assert "given (meta again)" in res.stdout and f"reachable only with >= {need:,}" in res.stdout
    assert main(["profile", str(tmp_path / "p.npz"), "--no-progress", "--json", "--reuse", str(tmp_path / "r.json"),
                 "--out", str(tmp_path / "q.npz")]) == 0
    doc = json.loads(capsys.readouterr().out)["reuse_batch0"]
    assert doc["given"]["source"] == "meta again" and doc["batch_lookups"] == 2048 * 8 * 4
    assert doc["lookups_needed_for_every_bucket"] == need
    assert main(["profile", str(tmp_path / "p.npz"), "--no-progress", "--reuse", str(tmp_path / "bad.json")]) == 1
