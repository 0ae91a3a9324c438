"""The Planner: each stage an injected object; a replaced stage is the one used."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import sdm
from sdm.cli import main
from sdm.core.errors import InfeasibleError, InvalidInputError
from sdm.core.spec import TableSpec
from sdm.placement.assignment import finish_placement
from sdm.placement.card_partition import CardPartitioner
from sdm.placement.enumerator import HardwareEnumerator
from sdm.placement.layout_stage import CoAccessLayout, LayoutChoice
from sdm.placement.options import PlanOptions
from sdm.placement.planner import Planner, plan_model
from sdm.placement.proposers import RowLevel
from sdm.placement.types import TableHotness
from sdm.traces.generators import zipf_trace


def _model():
    tables = [TableSpec("a", 4000, 16), TableSpec("b", 2000, 16)]
    hot = [TableHotness.zipf("a", 4000, 1e5, 1.1, tracked=512), TableHotness.zipf("b", 2000, 1e4, 0.9, tracked=512)]
    return tables, hot


def test_default_planner_is_plan_model():
    tables, hot = _model()
    hw = sdm.hardware("host-nand")
    a = plan_model(tables, hot, hw, PlanOptions())
    b = Planner.from_options(PlanOptions()).plan(tables, hot, hw)
    assert a.estimate.latency_s == b.estimate.latency_s
    assert {n: tp.placements[0].rows.count if tp.placements else 0 for n, tp in a.plan.tables.items()} == \
        {n: tp.placements[0].rows.count if tp.placements else 0 for n, tp in b.plan.tables.items()}


def test_every_stage_can_be_replaced_and_is_used():
    tables, hot = _model()
    hw = sdm.hardware("yosemite-v2-nand")
    calls = []

    class CountingEnumerator(HardwareEnumerator):
        def enumerate(self, hardware, model_bytes):
            calls.append("enumerate")
            return super().enumerate(hardware, model_bytes)

    class NothingPinned:                       # a proposer: every row stays on the backing tier
        name = "nothing"

        def propose(self, tables, hotness, tiers, partitioner=None):
            calls.append("propose")
            return finish_placement(self.name, tables, hotness, tiers, {t.name: _empty() for t in tables}, {})

    class AllOnCardZero(CardPartitioner):
        def partition(self, tier, items, per_table, allow_split=True):
            calls.append("partition")
            for name, rows, *_ in items:
                per_table[name].pinned.append((tier.name, 0, rows))
            return []

    class First:
        name = "first"

        def select(self, scored):
            calls.append("select")
            return scored[0]

    class OneLine:
        def report(self, plan):
            return f"plan of {len(plan.tables)} tables"

    opts = PlanOptions()
    planner = Planner.from_options(opts, enumerator=CountingEnumerator(opts), proposer=NothingPinned(),
                                   objective=First(), reporter=OneLine())
    res = planner.plan(tables, hot, hw)
    assert calls == ["enumerate", "propose", "select"]
    assert all(not tp.placements for tp in res.plan.tables.values())      # the custom proposer's answer
    assert res.plan.policy == "nothing" and res.plan.objective == "first"
    assert res.estimate.hit_rate["scm"] == pytest.approx(1.0)
    assert planner.report(res.plan) == "plan of 2 tables"

    calls.clear()
    planner = Planner.from_options(opts, partitioner=AllOnCardZero())
    res = planner.plan(tables, hot, hw)
    assert "partition" in calls                                            # row proposer -> our partitioner
    cards = {p.card for tp in res.plan.tables.values() for p in tp.placements if p.tier in ("sram", "lpddr")}
    assert cards == {0}
    # the default partitioner spreads the same rows over several cards
    default = Planner.from_options(opts).plan(tables, hot, hw)
    assert len({p.card for tp in default.plan.tables.values() for p in tp.placements if p.tier == "sram"}) > 1

    class FixedLayout:
        def layout(self, tables, trace, hardware):
            calls.append("layout")
            return {"a": LayoutChoice("reversed", np.arange(4000)[::-1].copy(), 1.0, 2.0, 0.5)}

    calls.clear()
    res = Planner.from_options(opts, page_layout=FixedLayout()).plan(tables, hot, hw)
    assert calls[0] == "layout" and res.plan.tables["a"].page_layout == "reversed"
    assert res.candidate.knobs["pages_per_scm_read"] == {"a": 0.5}          # the estimator is charged for it


def _empty():
    from sdm.placement.assignment import TableAssignment

    return TableAssignment()


def test_unknown_stage_is_refused():
    with pytest.raises(TypeError, match="no stage"):
        Planner.from_options(PlanOptions(), proposr=RowLevel())
    with pytest.raises(TypeError, match="no stage"):
        Planner.from_options(PlanOptions(), options=PlanOptions())


def test_load_hotness_takes_one_source_and_a_known_count_model(tmp_path):
    from sdm.placement.hotness import load_hotness

    tables = [TableSpec("a", 4000, 16), TableSpec("b", 2000, 16)]
    p = tmp_path / "t.npz"
    zipf_trace([4000, 2000], 500, pooling=2, seed=3, batch_size=100).save(p)
    raw, trace = load_hotness(tables, trace_path=p, counts="raw")
    gt, _ = load_hotness(tables, trace_path=p)
    assert [h.name for h in raw] == ["a", "b"] and trace.table_names == ["a", "b"]   # matched by position
    assert raw[0].total_lookups == trace.indices[0].size and gt[0].expected and not raw[0].expected
    with pytest.raises(InvalidInputError, match="exactly one"):
        load_hotness(tables)
    with pytest.raises(InvalidInputError, match="count model"):
        load_hotness(tables, trace_path=p, counts="magic")
    with pytest.raises(InvalidInputError, match="table counts differ"):
        load_hotness(tables[:1] + [TableSpec("c", 10, 4), TableSpec("d", 10, 4)], trace_path=p)


def test_co_access_layout_stage_needs_a_trace():
    tables, hot = _model()
    with pytest.raises(InvalidInputError, match="needs a trace"):
        Planner.from_options(page_layout=CoAccessLayout()).plan(tables, hot, sdm.hardware("host-nand"))
    trace = zipf_trace([4000, 2000], 2000, pooling=4, seed=1, batch_size=100, table_names=["a", "b"])
    hot = [TableHotness.from_ids(t.name, t.num_rows, trace.indices[i], trace.num_samples) for i, t in enumerate(tables)]
    res = Planner.from_options(page_layout=CoAccessLayout()).plan(tables, hot, sdm.hardware("host-nand"), trace=trace)
    assert {tp.page_layout for tp in res.plan.tables.values()} <= {"co-access", "first-touch", "id-order"}
    assert "read_amplification" in res.plan.tables["a"].explain


def test_plan_options_overrides_refuse_fractions_for_integers():
    opts = PlanOptions().replace(scm_queue_depth="4", dram_usable_fraction="0.8")
    assert opts.scm_queue_depth == 4 and opts.dram_usable_fraction == 0.8
    with pytest.raises(InvalidInputError, match="scm_queue_depth.*integer"):
        PlanOptions().replace(scm_queue_depth="2.7")
    with pytest.raises(InvalidInputError, match="unknown plan"):
        PlanOptions().replace(objective="min-power")
    assert dataclasses.replace(PlanOptions(), scm_queue_depth=8).scm_queue_depth == 8


def test_cli_set_fractional_queue_depth_is_an_error(tmp_path, capsys):
    p = tmp_path / "t.npz"
    zipf_trace([2000, 500], 400, pooling=2, seed=2, batch_size=100).save(p)
    out = tmp_path / "plan.json"
    for cmd in (["plan", "--out", str(out)], ["compare"]):
        rc = main([*cmd, "--model", "2000-500:16", "--trace", str(p), "--set", "plan.scm_queue_depth=2.7",
                   "--no-progress"])
        assert rc == 1
        assert "scm_queue_depth" in capsys.readouterr().err
    assert not out.exists()


def test_infeasible_names_the_reason():
    tables = [TableSpec("big", 10**10, 128)]
    hot = [TableHotness.zipf("big", 10**10, 1e6, 1.0)]
    with pytest.raises(InfeasibleError, match="capacity"):
        Planner.from_options().plan(tables, hot, sdm.hardware("host-dram"))


def test_store_default_placement_runs_the_planner(monkeypatch):
    from sdm.placement import proposers
    from sdm.runtime.store_placement import default_placement

    seen = []
    real = proposers.RowLevel.propose

    def spy(self, tables, hotness, tiers, partitioner=None):
        seen.append([t.capacity_bytes for t in tiers])
        return real(self, tables, hotness, tiers, partitioner)

    monkeypatch.setattr(proposers.RowLevel, "propose", spy)
    specs = [TableSpec("a", 1000, 4), TableSpec("b", 500, 4)]
    g = np.random.default_rng(0)
    prof = {"a": g.poisson(2.0, 1000).astype(float), "b": g.poisson(5.0, 500).astype(float)}
    place = default_placement(specs, accel_bytes=16 * 100, dram_cache_bytes=16 * 200, profile=prof)
    assert seen and seen[0][:2] == [1600, 3200]
    # the densest rows over both tables went to the cards, the next ones to the cache's hot set
    dens = np.concatenate([prof["a"], prof["b"]])
    on_card = np.concatenate([np.isin(np.arange(1000), place["a"].accel_ids),
                              np.isin(np.arange(500), place["b"].accel_ids)])
    assert 90 <= on_card.sum() <= 100 and dens[on_card].min() >= dens[~on_card].max()
    assert sum(p.dram_cache_bytes for p in place.values()) == 16 * 200
    hot = place["b"].static_hot_ids
    assert np.all(np.diff(prof["b"][hot]) <= 0)                      # hottest first
