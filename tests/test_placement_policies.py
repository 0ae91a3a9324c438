"""Placement policies: capacities hold, hot rows go up, row-level beats table-level and the baseline."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sdm.core.errors import InfeasibleError, InvalidInputError
from sdm.placement.objectives import MinWithinBudget, Workload
from sdm.placement.planner import PlanOptions, plan_model
from sdm.placement.assignment import lookups_in
from sdm.placement.proposers import RowLevel, TableLevel, WholeTablesBaseline, proposer
from sdm.placement.plan import RowSet
from sdm.placement.types import TableHotness, TierSpec
from sdm.core.spec import TableSpec
from sdm.hardware.server import hardware


def _tier(name, cap, cards=0):
    return TierSpec(name, int(cap), 64, 1e-6, 1e6, 1e10, cards=cards)


def _instance(seed, n_tables=4):
    rng = np.random.default_rng(seed)
    tables, hot = [], []
    for i in range(n_tables):
        rows = int(rng.integers(50, 400))
        dim = int(rng.choice([4, 8, 16]))
        counts = np.floor(rng.pareto(1.0, rows) * rng.integers(1, 5)).astype(np.int64)
        tables.append(TableSpec(f"t{i}", rows, dim))
        hot.append(TableHotness.from_counts(f"t{i}", counts, 100))
    return tables, hot


def _tiers(tables, frac_sram, frac_dram, cards=2):
    total = sum(t.size_bytes for t in tables)
    return [_tier("sram", total * frac_sram, cards), _tier("dram", total * frac_dram), _tier("scm", 10 * total)]


def _row_tiers(placement, tables):
    """tier name of every row of every table, checking no row is placed twice."""
    out = {}
    for t in tables:
        where = np.full(t.num_rows, "scm", dtype=object)
        for tier, _card, rows in placement.tables[t.name].pinned:
            ids = rows.to_ids()
            assert np.all(where[ids] == "scm"), f"{t.name}: a row placed twice"
            where[ids] = tier
        out[t.name] = where
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 0.3), st.floats(0.0, 0.6))
def test_row_level_respects_capacity_and_orders_by_density(seed, fs, fd):
    tables, hot = _instance(seed)
    tiers = _tiers(tables, fs, fd)
    pl = RowLevel().propose(tables, hot, tiers)
    for t in tiers[:-1]:
        assert pl.tier_used_bytes[t.name] <= t.capacity_bytes
    where = _row_tiers(pl, tables)
    # every row in a faster tier is at least as dense as every read row left in a slower one
    rank = {"sram": 0, "dram": 1, "scm": 2}
    dens, lvl = [], []
    for t, h in zip(tables, hot):
        c = np.zeros(t.num_rows)
        c[h.ids] = h.counts
        dens.append(c / t.row_bytes)
        lvl.append(np.array([rank[w] for w in where[t.name]]))
    dens, lvl = np.concatenate(dens), np.concatenate(lvl)
    for k in (0, 1):
        up, down = dens[lvl <= k], dens[(lvl > k) & (dens > 0)]
        if up.size and down.size:
            # one row of slack per boundary: a row that does not fit whole goes down
            assert np.sort(down)[-2 if down.size > 1 else -1] <= up.min()
    # hit accounting: shares add up to the profile's lookups
    for t, h in zip(tables, hot):
        assert sum(pl.tables[t.name].lookups_by_tier.values()) == pytest.approx(h.total_lookups)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 0.5))
def test_row_level_serves_more_from_fast_tiers_than_table_policies(seed, fd):
    tables, hot = _instance(seed, 5)
    tiers = _tiers(tables, 0.0, fd)
    fast = {}
    for pol in (RowLevel(), TableLevel(), WholeTablesBaseline()):
        pl = pol.propose(tables, hot, tiers)
        fast[pol.name] = sum(pl.tables[t.name].lookups_by_tier.get("dram", 0.0) for t in tables)
    assert fast["row"] >= fast["table"] - 1e-9
    assert fast["row"] >= fast["baseline"] - 1e-9


def test_accel_tiers_split_over_cards_within_each_card():
    tables, hot = _instance(3, 6)
    total = sum(t.size_bytes for t in tables)
    tiers = [_tier("sram", total * 0.2, cards=6), _tier("lpddr", total * 0.3, cards=6), _tier("scm", 10 * total)]
    for pol in (RowLevel(), TableLevel()):
        pl = pol.propose(tables, hot, tiers)
        for tier in tiers[:-1]:
            per_card = np.zeros(6)
            for t in tables:
                for name, card, rows in pl.tables[t.name].pinned:
                    if name == tier.name:
                        assert card is not None and 0 <= card < 6
                        per_card[card] += rows.count * t.row_bytes
            assert np.all(per_card <= tier.capacity_bytes // 6)
        _row_tiers(pl, tables)


def test_table_level_places_whole_tables_and_baseline_is_hotness_blind():
    tables = [TableSpec("cold", 100, 16), TableSpec("hot", 100, 16)]
    hot = [TableHotness.from_counts("cold", np.ones(100)), TableHotness.from_counts("hot", np.full(100, 50))]
    tiers = [_tier("dram", 100 * 64), _tier("scm", 10**6)]
    tl = TableLevel().propose(tables, hot, tiers)
    assert [p[0] for p in tl.tables["hot"].pinned] == ["dram"] and not tl.tables["cold"].pinned
    bl = WholeTablesBaseline().propose(tables, hot, tiers)
    assert [p[0] for p in bl.tables["cold"].pinned] == ["dram"] and not bl.tables["hot"].pinned


def test_tail_bands_are_placed_and_counted():
    h = TableHotness.zipf("z", 1_000_000, 1e6, 1.0, tracked=100)
    assert h.total_lookups == pytest.approx(1e6)
    assert lookups_in(RowSet(ranges=[[0, 1_000_000]]), h) == pytest.approx(1e6)
    # the tail is split in bands of falling density; a tier that fits 10k rows takes the densest
    t = TableSpec("z", 1_000_000, 16)
    pl = RowLevel().propose([t], [h], [_tier("dram", 10_000 * 64), _tier("scm", 10**9)])
    placed = sum(r.count for _n, _c, r in pl.tables["z"].pinned)
    assert 9_990 <= placed <= 10_000
    ids = np.concatenate([r.to_ids() for _n, _c, r in pl.tables["z"].pinned])
    assert ids.max() < 12_000                           # hottest ranks = lowest ids in this profile
    share = pl.tables["z"].lookups_by_tier["dram"] / 1e6
    assert share == pytest.approx(np.log(10_000) / np.log(1_000_000), abs=0.03)


def test_bad_inputs():
    with pytest.raises(InvalidInputError, match="unknown placement policy"):
        proposer("magic")
    with pytest.raises(InvalidInputError, match="does not match"):
        RowLevel().propose([TableSpec("a", 10, 4)], [TableHotness.from_counts("a", np.ones(11))], [_tier("scm", 999)])
    with pytest.raises(InvalidInputError, match="row id 12 at position 1"):
        TableHotness.from_ids("a", 10, np.array([1, 12]))
    with pytest.raises(InvalidInputError, match="must be integers"):
        TableHotness.from_ids("a", 10, np.array([1.5]))             # never counted as row 1
    with pytest.raises(InvalidInputError, match="finite and >= 0"):
        TableHotness.from_counts("a", np.array([1.0, np.nan]))
    with pytest.raises(InvalidInputError, match="alpha"):
        TableHotness.zipf("z", 100, 1e3, -1.0)
    hw = hardware("host-nand")
    with pytest.raises(InvalidInputError, match="no tables"):
        plan_model([], [], hw)
    t, h = TableSpec("a", 10, 4), TableHotness.from_counts("a", np.ones(10))
    with pytest.raises(InvalidInputError, match="'a' appears more than once"):
        plan_model([t, t], [h, h], hw)
    with pytest.raises(InvalidInputError, match="unknown DRAM cache policy 'mru'"):
        PlanOptions(dram_cache_policy="mru")     # refused before a plan the store cannot run is written


def test_min_power_picks_less_dram_and_reports_infeasible_budget():
    tables = [TableSpec("t0", 2_000_000, 64), TableSpec("t1", 500_000, 64)]
    hot = [TableHotness.zipf("t0", 2_000_000, 1e6, 1.1, 1000, 10_000), TableHotness.zipf("t1", 500_000, 1e6, 1.2, 1000, 10_000)]
    hw = hardware("host-3dxp")
    lat = plan_model(tables, hot, hw, PlanOptions(objective="min-latency"))
    powr = plan_model(tables, hot, hw, PlanOptions(objective="min-power"))
    assert len(powr.scored) > 1
    assert powr.estimate.watts < lat.estimate.watts
    assert powr.estimate.p99_latency_s <= 0.1
    with pytest.raises(InfeasibleError, match=r"latency budget not met.*over by"):
        plan_model(tables, hot, hw, PlanOptions(objective="min-power", workload=Workload(latency_budget_s=1e-9)))
    with pytest.raises(InfeasibleError, match="short by"):
        plan_model([TableSpec("big", 10**10, 64)], [TableHotness("big", 10**10, np.zeros(0), np.zeros(0))], hw,
                   PlanOptions())
    assert MinWithinBudget().name == "min-power"
