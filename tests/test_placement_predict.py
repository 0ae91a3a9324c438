"""Predictions checked against replays: pinned-tier and DRAM-cache hit rates within 2 points."""
from __future__ import annotations

import numpy as np
import pytest

from sdm.cachesim import simulate
from sdm.placement.objectives import Workload
from sdm.placement.planner import PlanOptions, plan_model
from sdm.placement.types import TableHotness
from sdm.spec import TableSpec
from sdm.tiers.hardware import hardware
from sdm.traces.generators import zipf_trace

ROWS = [60_000, 20_000, 3_000, 90_000]
LOOKUP_STEPS = Workload(cache_steps="lookup")        # sdm.cachesim replays lookup by lookup


def _setup(num_samples=12_000, seed=1):
    tr = zipf_trace(ROWS, num_samples, pooling=[4, 2, 1, 6], alpha=[1.05, 0.9, 1.2, 0.8], seed=seed,
                    batch_size=512)
    tables = [TableSpec(n, r, 32) for n, r in zip(tr.table_names, ROWS)]
    return tr, tables


def _hot(tr, tables, lo=0, hi=None):
    out = []
    for i, t in enumerate(tables):
        off = tr.offsets[i]
        hi_s = tr.num_samples if hi is None else hi
        out.append(TableHotness.from_ids(t.name, t.num_rows, tr.indices[i][off[lo]:off[hi_s]], hi_s - lo))
    return out


def _replay(plan, tr, tables, cache_bytes, lo=0, hi=None):
    """Replay samples [lo, hi) in time order: pinned rows hit; the rest go through an LRU cache."""
    hi = tr.num_samples if hi is None else hi
    b0, b1 = lo // tr.batch_size, -(-hi // tr.batch_size)
    g = tr.global_stream(b0, b1)
    base = np.asarray(tr.table_base)
    t_of = np.searchsorted(base, g, side="right") - 1
    pinned = np.zeros(g.size, bool)
    for i, t in enumerate(tables):
        m = t_of == i
        tier, _card = plan.tables[t.name].tier_of(g[m] - base[i])
        pinned[m] = tier < 3
    rb = tables[0].row_bytes
    sim = simulate(g[~pinned], int(cache_bytes // rb), "lru", row_bytes=rb)
    return pinned.mean(), sim.hits / g.size


@pytest.mark.parametrize("dram_frac,cache_frac", [(0.02, 0.5), (0.05, 0.2), (0.01, 1.0), (0.1, 0.0)])
def test_predicted_hit_rates_match_replay(dram_frac, cache_frac):
    tr, tables = _setup()
    hot = _hot(tr, tables)
    hw = hardware("host-nand")
    model = sum(t.size_bytes for t in tables)
    opts = PlanOptions(dram_cache_fraction=cache_frac, dram_usable_fraction=dram_frac * model / hw.dram_capacity_bytes,
                       workload=LOOKUP_STEPS)
    res = plan_model(tables, hot, hw, opts)
    pinned, cache = _replay(res.plan, tr, tables, res.estimate.detail["dram_cache_bytes"])
    assert abs(res.estimate.hit_rate["dram"] - pinned) < 1e-9          # same trace: exact
    assert abs(res.estimate.hit_rate["dram_cache"] - cache) < 0.02
    assert abs((1 - res.estimate.hit_rate["scm"]) - (pinned + cache)) < 0.02


@pytest.mark.parametrize("seed,dram_frac,cache_frac", [(4, 0.05, 0.3), (5, 0.1, 0.0), (6, 0.02, 0.5)])
def test_prediction_holds_on_held_out_samples(seed, dram_frac, cache_frac):
    """Plan from the first half (Good-Turing counts), replay the second half."""
    tr, tables = _setup(num_samples=16_384, seed=seed)
    half = tr.num_samples // 2                                         # a whole number of batches
    hot = [h.good_turing() for h in _hot(tr, tables, 0, half)]
    hw = hardware("host-nand")
    model = sum(t.size_bytes for t in tables)
    opts = PlanOptions(dram_cache_fraction=cache_frac,
                       dram_usable_fraction=dram_frac * model / hw.dram_capacity_bytes, workload=LOOKUP_STEPS)
    res = plan_model(tables, hot, hw, opts)
    pinned, cache = _replay(res.plan, tr, tables, res.estimate.detail["dram_cache_bytes"], half, None)
    assert abs(res.estimate.hit_rate["dram"] - pinned) < 0.02
    assert abs((1 - res.estimate.hit_rate["scm"]) - (pinned + cache)) < 0.02


def test_prediction_matches_embedding_store_replay(tmp_path):
    """The runtime, built from the plan, serves from DRAM what the plan predicts (batch steps)."""
    import torch

    from sdm.embedding_store import EmbeddingStore

    tr, tables = _setup(num_samples=8192, seed=7)
    half_b = tr.num_batches // 2
    half = half_b * tr.batch_size
    hot = [h.good_turing() for h in _hot(tr, tables, 0, half)]
    hw = hardware("host-nand")
    model = sum(t.size_bytes for t in tables)
    opts = PlanOptions(dram_cache_fraction=0.5, dram_usable_fraction=0.03 * model / hw.dram_capacity_bytes,
                       workload=Workload(items_per_request=tr.batch_size, cache_steps="batch"))
    res = plan_model(tables, hot, hw, opts)
    with EmbeddingStore.create(tmp_path / "s", tables, hardware="host-nand", plan=res.plan) as st:
        for b in range(half_b, tr.num_batches):
            for t, (ix, of) in zip(tables, tr.batch(b)):
                st.lookup(t.name, torch.from_numpy(np.asarray(ix)), torch.from_numpy(np.asarray(of)))
        hr = st.stats()["total"]["hit_rate"]
    assert abs((1 - res.estimate.hit_rate["scm"]) - (hr["accel"] + hr["dram"])) < 0.02
