"""Six-card path, modelled side: PCIe + command batching, partitioner, routing, timeline, report."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sdm.accel.partitioner import HOST, Shard, partition, partition_from_plan, shard_bounds
from sdm.hardware.pcie import PcieLink, serial_arrival_s
from sdm.accel.plan_view import partition_summary
from sdm.accel.report import build_report, format_report
from sdm.accel.what_if import move_table, what_if_moves
from sdm.accel.routing import Router, TableRouter, trace_shard_counts
from sdm.accel.timeline import model_timeline
from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec

MODEL_KW = dict(dense_flops_per_sample=2e5, dense_in_bytes_per_sample=13 * 4)


@pytest.fixture(scope="module")
def platform():
    import sdm
    from sdm.hardware.platform import Platform
    return Platform.from_hardware(sdm.hardware("yosemite-v2-nand"))


# ---- PCIe -----------------------------------------------------------------------------------------
def test_command_batching_pays_latency_once_per_batch():
    link = PcieLink("x", bandwidth_bytes_per_s=4e9, latency_s=1e-6, max_batch=8)
    n, nbytes = 20, 20 * 1024
    unbatched = float(link.transfer_time_s(nbytes, n, batching=False))
    batched = float(link.transfer_time_s(nbytes, n, batching=True))
    assert unbatched == pytest.approx(20 * 1e-6 + nbytes / 4e9)
    assert batched == pytest.approx(3 * 1e-6 + nbytes / 4e9)  # ceil(20 / 8) commands
    assert float(link.transfer_time_s(0, 0)) == 0.0
    np.testing.assert_allclose(link.transfer_time_s(np.array([0, 4e9]), np.array([0, 1])), [0.0, 1.0 + 1e-6])
    with pytest.raises(InvalidInputError, match="negative"):
        link.transfer_time_s(-1, 1)
    with pytest.raises(InvalidInputError, match="bandwidth"):
        PcieLink("bad", 0.0, 1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=7))
def test_serial_arrival_matches_plain_fifo(pairs):
    ready = np.array([[p[0] for p in pairs]])
    xfer = np.array([[p[1] for p in pairs]])
    t = 0.0
    for r, x in sorted(pairs, key=lambda p: p[0]):
        t = max(t, r) + x
    assert serial_arrival_s(ready, xfer)[0] == pytest.approx(t)


# ---- partitioner --------------------------------------------------------------------------------
def _tables(rows, dim=16, pooling=None):
    pooling = pooling or [1.0] * len(rows)
    return [TableSpec(f"t{i}", r, dim, "fp32", p) for i, (r, p) in enumerate(zip(rows, pooling))]


def _covers_every_row_once(p):
    for t in p.tables:
        seen = np.zeros(t.num_rows, dtype=np.int64)
        for s in p.shards_of(t.name):
            rows = s.rows if s.rows is not None else np.arange(s.row_start, s.row_end)
            np.add.at(seen, rows, 1)
        assert np.all(seen == 1), t.name


def test_partition_balances_load_and_respects_capacity():
    tables = _tables([1000] * 30, pooling=list(np.linspace(1, 5, 30)))
    p = partition(tables, [10**6] * 6, [10**4] * 6)
    _covers_every_row_once(p)
    assert all(s.on_card for s in p.shards)
    assert np.all(p.card_bytes() <= p.card_capacity_bytes)
    load = p.card_load_bytes()
    assert load.max() / load.mean() < 1.15
    sram = np.zeros(6)
    for s in p.shards:
        if s.tier == "sram":
            sram[s.location] += s.size_bytes
    assert np.all(sram <= 10**4)


def test_hot_table_is_row_sharded_with_equal_load_from_counts():
    tables = _tables([5000, 100, 100, 100], pooling=[60, 1, 1, 1])
    counts = {"t0": np.r_[np.full(500, 100.0), np.ones(4500)]}   # load concentrated in the first rows
    p = partition(tables, [10**7] * 6, [0] * 6, row_counts=counts)
    _covers_every_row_once(p)
    s0 = p.shards_of("t0")
    assert len(s0) == 6 and len({s.location for s in s0}) == 6
    shares = np.array([s.load_share for s in s0])
    assert shares.sum() == pytest.approx(1.0)
    assert shares.max() < 0.25          # equal load, not equal rows: first shards are short
    assert s0[0].num_rows < s0[-1].num_rows


def test_net_split_keeps_big_cold_and_unread_tables_on_host():
    tables = _tables([10_000, 10_000, 400_000, 50], pooling=[4, 4, 1, 1])
    p = partition(tables, [500_000] * 6, [10_000] * 6, loads={"t3": 0.0}, host_tables=["t1"])
    where = {s.table: s.location for s in p.shards}
    assert where["t0"] != HOST
    assert where["t1"] == HOST and "forced" in p.shards_of("t1")[0].reason
    assert where["t2"] == HOST and "cards full" in p.shards_of("t2")[0].reason   # 25.6 MB > 3 MB of cards
    assert where["t3"] == HOST and "never read" in p.shards_of("t3")[0].reason
    _covers_every_row_once(p)


def test_partition_bad_input_names_what_is_wrong():
    tables = _tables([10, 10])
    with pytest.raises(InvalidInputError, match="unknown tables"):
        partition(tables, [100] * 6, [0] * 6, loads={"nope": 1.0})
    with pytest.raises(InvalidInputError, match="t1.*row_counts"):
        partition(tables, [100] * 6, [0] * 6, row_counts={"t1": np.ones(3)})
    with pytest.raises(InvalidInputError, match="duplicate"):
        partition([tables[0], tables[0]], [100] * 6, [0] * 6)
    with pytest.raises(InvalidInputError, match="t0.*load"):
        partition(tables, [100] * 6, [0] * 6, loads=[-1.0, 1.0])


def test_shard_bounds_equal_rows_and_equal_counts():
    np.testing.assert_array_equal(shard_bounds(10, 2, None), [0, 5, 10])
    b = shard_bounds(8, 2, np.array([6.0, 1, 1, 1, 1, 1, 1, 0]))
    assert b[0] == 0 and b[-1] == 8 and 1 <= b[1] <= 2


# ---- routing ------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 200), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_router_maps_every_id_to_its_shard_and_local_row(num_rows, k, seed):
    rng = np.random.default_rng(seed)
    bounds = shard_bounds(num_rows, min(k, num_rows), None)
    shards = [Shard("t", 0, i, "lpddr", int(a), int(b), 0, 0.0) for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]
    rng.shuffle(shards)
    ids = rng.integers(0, num_rows, 50)
    pos, local = TableRouter(num_rows, shards).route(ids)
    for i, p, l in zip(ids, pos, local):
        assert shards[p].row_start + l == i < shards[p].row_end
    # explicit row sets (a plan's hot rows) route through an owner array
    perm = rng.permutation(num_rows)
    cut = int(rng.integers(0, num_rows + 1))
    ex = [Shard("t", 0, 0, "sram", 0, num_rows, 0, 0.0, rows=np.sort(perm[:cut])),
          Shard("t", 0, HOST, "host", 0, num_rows, 0, 0.0, rows=np.sort(perm[cut:]))]
    ex = [s for s in ex if s.rows.size]
    pos, local = TableRouter(num_rows, ex).route(ids)
    for i, p, l in zip(ids, pos, local):
        assert ex[p].rows[l] == i


def test_trace_shard_counts_add_up_to_the_trace():
    from sdm.traces.generators import zipf_trace
    tables = _tables([300, 50, 2000], pooling=[3, 1, 2])
    tr = zipf_trace([t.num_rows for t in tables], num_samples=500, batch_size=64, pooling=[3, 1, 2], seed=1,
                    table_names=[t.name for t in tables])
    p = partition(tables, [8000] * 6, [1000] * 6)
    counts, sizes = trace_shard_counts(p, tr)
    assert counts.shape == (tr.num_batches, len(p.shards))
    assert counts.sum() == tr.num_lookups and sizes.sum() == tr.num_samples
    for t, tab in enumerate(tables):   # per-table totals per batch equal the trace's bag lengths
        cols = [i for i, s in enumerate(p.shards) if s.table == tab.name]
        per_batch = np.add.reduceat(np.diff(tr.offsets[t]), np.arange(0, tr.num_samples, 64))
        np.testing.assert_array_equal(counts[:, cols].sum(axis=1), per_batch)


# ---- timeline and report ------------------------------------------------------------------------
def _setup(platform, host_tables=(), R=50, B=160):
    tables = _tables([20_000] * 12 + [3_000_000], dim=64, pooling=[8] * 12 + [2])
    p = partition(tables, platform.card_usable_bytes(1 << 30), platform.card_sram_bytes(), host_tables=host_tables)
    rng = np.random.default_rng(0)
    counts = np.stack([rng.poisson(B * p.lookups_per_sample[s.table_index] * s.load_share, R) for s in p.shards], 1)
    return p, counts, np.full(R, B)


def test_timeline_is_consistent_and_batching_helps(platform):
    p, counts, B = _setup(platform)
    tl = model_timeline(platform, p, counts, B, **MODEL_KW)
    off = model_timeline(platform, p, counts, B, batching=False, **MODEL_KW)
    assert np.all(off.latency_s > tl.latency_s) and off.commands[0] > tl.commands[0]
    ready = tl.card_in_s + tl.card_sram_s + tl.card_lpddr_s + tl.card_pool_s
    assert np.all(tl.latency_s >= ready.max(axis=1) + tl.dense_s)
    assert np.all(tl.queue_s >= -1e-15)
    u = tl.utilisation()
    assert np.all((u >= 0) & (u <= 1)) and u.max() > 0
    assert tl.load_imbalance() >= 1.0
    assert tl.card_lookups.sum() + tl.host_lookups.sum() == counts.sum()


def test_host_tables_on_scm_cost_more_than_in_dram(platform):
    p, counts, B = _setup(platform, host_tables=["t12"])
    dram = model_timeline(platform, p, counts, B, host_hit_rate=1.0, **MODEL_KW)
    scm = model_timeline(platform, p, counts, B, host_hit_rate=0.0, **MODEL_KW)
    assert scm.host_scm_s.mean() > 0 and dram.host_scm_s.mean() == 0
    assert np.percentile(scm.latency_s, 99) > np.percentile(dram.latency_s, 99)
    with pytest.raises(InvalidInputError, match="measured"):
        model_timeline(platform, p, counts, B, host_time="measured", **MODEL_KW)
    with pytest.raises(InvalidInputError, match="counts"):
        model_timeline(platform, p, counts[:, :-1], B, **MODEL_KW)


def test_report_and_what_if_moves(platform):
    p, counts, B = _setup(platform, host_tables=["t12"])
    hr = np.zeros(len(p.shards))
    moves = what_if_moves(platform, p, counts, B, MODEL_KW, host_hit_rate=hr, tables=["t12", "t0"])
    by = {(m["table"], m["to"].split()[0] + " " + m["to"].split()[1]): m for m in moves}
    # moving the SCM-served table to a card or into DRAM must cut its p99
    assert by[("t12", "host DRAM")]["delta_p99_s"] < 0
    assert any(m["table"] == "t12" and m["to"].startswith("card") and m["delta_p99_s"] < 0 for m in moves)
    tl = model_timeline(platform, p, counts, B, host_hit_rate=hr, **MODEL_KW)
    rep = build_report(tl, platform, p, moves=moves)
    assert rep["latency"]["p99_s"] >= rep["latency"]["p50_s"] > 0
    assert rep["latency"]["meets_budget"] == (rep["latency"]["p99_s"] <= 0.1)
    assert rep["power"]["server_watts"] > rep["power"]["cards_watts"] > 0
    assert len(rep["cards"]) == 6
    text = format_report(rep)
    assert "p99" in text and "card5" in text and "t12" in text
    rows = partition_summary(p, platform)
    assert rows[-1]["where"] == "host" and rows[-1]["host_bytes"] == p.shards_of("t12")[0].size_bytes
    p2, c2 = move_table(p, "t0", "host", counts)
    assert c2.sum() == counts.sum() and len(p2.shards_of("t0")) == 1
    with pytest.raises(InvalidInputError, match="destination"):
        move_table(p, "t0", "card9:dram", counts)


def test_partition_from_plan_honours_card_rows():
    from sdm.placement.plan import Plan, RowSet, TablePlan, TierPlacement
    tables = _tables([100, 40])
    tp0 = TablePlan("t0", 100, 16, "fp32", 64, placements=[
        TierPlacement("sram", 2, RowSet.from_ids(np.array([1, 5, 7]))),
        TierPlacement("lpddr", 3, RowSet(ranges=np.array([[10, 20]]))),
        TierPlacement("dram", None, RowSet(ranges=np.array([[30, 40]])))])
    tp1 = TablePlan("t1", 40, 16, "fp32", 64, placements=[TierPlacement("lpddr", 0, RowSet(ranges=np.array([[0, 40]])))])
    plan = Plan("m", "yosemite-v2-nand", "latency", "test", {"t0": tp0, "t1": tp1})
    p = partition_from_plan(plan, tables, [10**6] * 6, [10**4] * 6)
    _covers_every_row_once(p)
    w = {(s.table, s.where()) for s in p.shards}
    assert w == {("t0", "card2:sram"), ("t0", "card3:lpddr"), ("t0", "host"), ("t1", "card0:lpddr")}
    ids = np.array([1, 5, 12, 0, 99])
    pos, local = Router(p).tables[0].route(ids)
    sh = p.shards_of("t0")
    assert [sh[i].where() for i in pos] == ["card2:sram", "card2:sram", "card3:lpddr", "host", "host"]
    bad = Plan("m", "x", "latency", "test", {"t0": tp0})
    with pytest.raises(InvalidInputError, match="t1"):
        partition_from_plan(bad, tables, [10**6] * 6, [10**4] * 6)


def test_plan_summary_for_plan_and_compare():
    import sdm
    from sdm.accel.plan_view import dlrm_dense_flops, plan_summary
    from sdm.accel.executor import dense_flops_per_sample
    from sdm.runtime.dlrm import DLRM
    from sdm.placement.plan import Plan, RowSet, TablePlan, TierPlacement
    from sdm.traces.generators import zipf_trace
    assert dlrm_dense_flops(3, 8) == dense_flops_per_sample(DLRM([5, 5, 5], dim=8), 3, 8)
    tps = {f"t{i}": TablePlan(f"t{i}", 1000, 8, "fp32", 32) for i in range(3)}
    tps["t0"].placements = [TierPlacement("sram", 2, RowSet(ranges=np.array([[0, 1000]])))]
    tps["t1"].predicted_hit_rate = {"dram_cache": 0.5, "scm": 0.5}
    plan = Plan("m", "yosemite-v2-nand", "latency", "test", tps)
    tr = zipf_trace([1000] * 3, 400, batch_size=100, seed=0, table_names=list(tps))
    out = plan_summary(plan, sdm.hardware("yosemite-v2-nand"), tr)
    assert out["cards"][2]["sram_bytes"] == 32000 and out["cards"][-1]["host_bytes"] == 64000
    assert out["timeline"]["latency"]["p99_s"] > 0 and "utilisation" in out["cards"][0]
    with pytest.raises(InvalidInputError, match="no accelerator cards"):
        plan_summary(plan, sdm.hardware("host-nand"))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5000), st.floats(0, 40)), min_size=1, max_size=12),
       st.integers(0, 6), st.integers(1, 200_000), st.integers(0, 50_000))
def test_partition_invariants(specs, cards, cap, sram):
    """Any model, any card count and size: every row placed exactly once, no card over capacity,
    SRAM never over-filled, load shares of each table sum to 1."""
    tables = [TableSpec(f"t{i}", r, 8, "fp32", max(p, 0.01)) for i, (r, p) in enumerate(specs)]
    loads = [p for _, p in specs]
    p = partition(tables, [cap] * cards, [sram] * cards, loads=loads)
    _covers_every_row_once(p)
    assert np.all(p.card_bytes() <= cap)
    for k in range(cards):
        assert sum(s.size_bytes for s in p.shards if s.location == k and s.tier == "sram") <= sram
    for t in tables:
        assert sum(s.load_share for s in p.shards_of(t.name)) == pytest.approx(1.0)
    for t, l in zip(tables, loads):
        if l == 0:
            assert all(not s.on_card for s in p.shards_of(t.name))
