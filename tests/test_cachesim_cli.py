"""`sdm-plan simulate`: table and JSON output agree with the library; bad input gives clean errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sdm.cachesim import prepare, simulate
from sdm.cli import main
from sdm.traces import zipf_trace


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    trace = zipf_trace([3000, 800, 50], 1200, batch_size=100, pooling=[4, 2, 1], alpha=1.1, seed=3)
    path = tmp_path_factory.mktemp("sim") / "t.npz"
    trace.save(path)
    return trace, path


def run_json(capsys, *argv):
    assert main(["simulate", *map(str, argv), "--json", "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_matches_library_and_includes_opt(trace_file, capsys):
    trace, path = trace_file
    out = run_json(capsys, path, "--capacity", 50, 400, "--policy", "lru,s3fifo", "--row-bytes", 128)
    ids = trace.global_stream()
    assert out["lookups"] == ids.size == trace.num_lookups
    got = {(r["policy"], r["capacity_rows"]): r for r in out["results"]}
    assert set(got) == {(p, c) for p in ("lru", "s3fifo", "opt") for c in (50, 400)}
    for (policy, cap), r in got.items():
        ref = simulate(ids, cap, policy, row_bytes=128)
        assert (r["hits"], r["misses"], r["bytes_read"]) == (ref.hits, ref.misses, ref.bytes_read)
        opt = simulate(ids, cap, "opt", row_bytes=128)
        assert r["gap_to_opt"] == pytest.approx(ref.miss_ratio - opt.miss_ratio)
        assert r["gap_to_opt"] >= 0


def test_page_mode_lays_rows_out_per_table(trace_file, capsys):
    trace, path = trace_file
    out = run_json(capsys, path, "--capacity-bytes", "64KiB", "--page-bytes", 4096, "--row-bytes", 256,
                   "--policy", "lru")
    assert out["mode"] == "page cache, id-order layout"
    # id-order layout: 16 rows a page, pages never shared between tables
    rpp = 16
    pages_per_table = [-(-n // rpp) for n in trace.num_rows]
    page_base = np.concatenate([[0], np.cumsum(pages_per_table)[:-1]])
    page_of = np.concatenate([page_base[t] + np.arange(n) // rpp for t, n in enumerate(trace.num_rows)])
    ref = simulate(trace.global_stream(), capacity_bytes=64 << 10, policy="lru", page_of=page_of, row_bytes=256)
    lru = next(r for r in out["results"] if r["policy"] == "lru")
    assert (lru["misses"], lru["bytes_read"], lru["bytes_used"]) == (ref.misses, ref.bytes_read, ref.bytes_used)
    assert lru["read_amplification"] > 1.0


def test_table_and_warmup_options(trace_file, capsys):
    trace, path = trace_file
    out = run_json(capsys, path, "--capacity", 100, "--policy", "fifo", "--table", "t1", "--warmup-batches", 3)
    ids = trace.table_stream("t1") + trace.table_base[1]
    warm = int(trace.subset(["t1"], 3).num_lookups)
    ref = simulate(prepare(ids), 100, "fifo", warmup=warm)
    fifo = next(r for r in out["results"] if r["policy"] == "fifo")
    assert (fifo["lookups"], fifo["hits"]) == (ref.lookups, ref.hits)


def test_table_output(trace_file, capsys):
    _, path = trace_file
    assert main(["simulate", str(path), "--capacity", "200", "--no-progress"]) == 0
    text = capsys.readouterr().out
    for word in ("opt", "lru", "setassoc", "static", "gap to OPT", "read amp"):
        assert word in text


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--capacity", "10", "--policy", "lru,nope"], "unknown cache policy 'nope'"),
        (["--capacity", "-3"], "--capacity must be >= 0"),
        (["--capacity-bytes", "12 parsecs"], "--capacity-bytes"),
        (["--capacity", "10", "--table", "missing"], "missing"),
        (["--capacity", "10", "--warmup-batches", "99"], "--warmup-batches"),
        (["--capacity", "10", "--page-bytes", "512", "--row-bytes", "1024"], "--fill row"),
    ],
)
def test_bad_arguments(trace_file, capsys, argv, words):
    _, path = trace_file
    assert main(["simulate", str(path), *argv, "--no-progress"]) == 1
    assert words in capsys.readouterr().err


def test_bad_files(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "none.npz"), "--capacity", "5"]) == 1
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert main(["simulate", str(bad), "--capacity", "5"]) == 1
    assert "bad.npz" in capsys.readouterr().err


def test_static_from_profile(trace_file, tmp_path, capsys):
    trace, path = trace_file
    prof = tmp_path / "t.profile.npz"
    assert main(["profile", str(path), "--out", str(prof), "--no-progress"]) == 0
    capsys.readouterr()
    out = run_json(capsys, path, "--capacity", 300, "--policy", "static", "--profile", prof)
    by = {r["policy"]: r for r in out["results"]}
    # an exact profile of the same trace ranks rows as the trace's own counts do
    hindsight = simulate(trace.global_stream(), 300, "static")
    assert by["static-profile"]["misses"] == hindsight.misses
    out = run_json(capsys, path, "--capacity", 300, "--policy", "static", "--profile", prof,
                   "--page-bytes", 4096, "--row-bytes", 512)
    paged = next(r for r in out["results"] if r["policy"] == "static-profile")
    assert paged["unit"] == "page" and 0 < paged["preloaded_units"] <= paged["capacity_units"] == 300 * 512 // 4096
    assert paged["hits"] > 0


def test_plan_page_layout(trace_file, tmp_path, capsys):
    from sdm.cachesim.stream import layout_page
    from sdm.placement.plan import Plan, TablePlan

    trace, path = trace_file
    rng = np.random.default_rng(0)
    orders = [rng.permutation(trace.num_rows[0]), None, np.arange(trace.num_rows[2])[::-1].copy()]
    tables = {name: TablePlan(name, n, 64, "fp32", 256, row_order=o)
              for name, n, o in zip(trace.table_names, trace.num_rows, orders)}
    plan_file = tmp_path / "p.json"
    Plan("m", "host-nand", "cost", "test", tables).save(plan_file)
    out = run_json(capsys, path, "--capacity-bytes", "32KiB", "--page-bytes", 4096, "--policy", "lru",
                   "--plan", plan_file)
    assert out["mode"] == "page cache, plan layout"
    all_rows = np.arange(sum(trace.num_rows))
    page_of = layout_page(all_rows, trace.num_rows, 16, orders)
    ref = simulate(trace.global_stream(), capacity_bytes=32 << 10, policy="lru", page_of=page_of, row_bytes=256)
    lru = next(r for r in out["results"] if r["policy"] == "lru")
    assert (lru["misses"], lru["bytes_used"]) == (ref.misses, ref.bytes_used)
    assert main(["simulate", str(path), "--capacity", "10", "--plan", str(plan_file), "--no-progress"]) == 1
    assert "--page-bytes" in capsys.readouterr().err


def test_runtime_policies_replay_the_trace_batches(trace_file, capsys):
    """runtime-NAME: the store's 16-way cache, one batch of the trace at a time, capacity in whole sets."""
    from sdm.cachesim import RuntimeCache

    trace, path = trace_file
    out = run_json(capsys, path, "--capacity", 84, "--policy", "runtime-lru,runtime-lfu", "--row-bytes", 128)
    got = {r["policy"]: r for r in out["results"]}
    ids = trace.global_stream()
    starts = np.r_[0, np.cumsum(np.bincount(trace.batch_of_lookup()))[:-1]]   # where each batch begins
    for name in ("lru", "lfu"):
        r = got[f"runtime-{name}"]
        ref = simulate(ids, 84, RuntimeCache(name, batch_starts=starts), row_bytes=128)
        assert r["capacity_units"] == ref.capacity_units == 80 and r["hits"] == ref.hits > 0
    bad = main(["simulate", str(path), "--capacity", "8", "--policy", "runtime-opt", "--no-progress"])
    assert bad != 0 and "only in the simulator" in capsys.readouterr().err


def test_lookahead_replays_the_prefetch_window_rule(trace_file, capsys):
    """--lookahead K: runtime-NAME with the prefetcher's rule; rows read ahead count as misses of their batch."""
    from sdm.cache.index import CacheIndex
    from sdm.cachesim.lookahead_replay import replay_lookahead

    trace, path = trace_file
    out = run_json(capsys, path, "--capacity", 84, "--policy", "runtime-lru,runtime-s3lru", "--row-bytes", 128,
                   "--lookahead", 2)
    got = {r["policy"]: r for r in out["results"]}
    ids = trace.global_stream()
    starts = np.r_[0, np.cumsum(np.bincount(trace.batch_of_lookup()))[:-1]]
    for name in ("lru", "s3lru"):
        ref = replay_lookahead(CacheIndex(int(ids.max()) + 1, 84, ways=16, policy=name), ids, starts, 2)
        assert got[f"runtime-{name}-pf2"]["misses"] == int(ref.misses.sum()) > 0
    assert main(["simulate", str(path), "--capacity", "8", "--policy", "runtime-lru", "--lookahead", "-1",
                 "--no-progress"]) != 0
    assert "--lookahead" in capsys.readouterr().err
