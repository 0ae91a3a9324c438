"""The whole path, end to end: trace -> profile -> `sdm-plan plan` -> EmbeddingStore built from the
plan -> replay, with the plan's predicted hit rates held against what the store measured (and the
planner's prediction check, `replay_plan`, equal to the store: it replays the store's own cache); then
`sdm-plan run --plan`, `explain` and `simulate --plan` on the same plan.

Small data (4 tables, 173k rows, 8192 samples): the whole file runs in well under 20 s.
"""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

from sdm.cli import main
from sdm.runtime.embedding_store import EmbeddingStore
from sdm.placement.plan import Plan
from sdm.placement.replay import replay_plan
from sdm.core.spec import TableSpec
from sdm.traces.generators import zipf_trace
from sdm.traces.trace import Trace

ROWS = [60_000, 20_000, 3_000, 90_000]
DIM = 32
MODEL = "-".join(map(str, ROWS)) + f":{DIM}"
BATCH = 512                       # one request = one batch, in the plan (--items-per-request) and the store
MODEL_BYTES = sum(ROWS) * DIM * 4
HW = "yosemite-v2-nand"
# Card memory shrunk so that every tier serves a real share of this small model: about 2% of its rows
# in SRAM + LPDDR over the six cards, DRAM set per test, the rest on SCM.
SMALL_CARDS = ["--set", "plan.sram_usable_fraction=0.0003", "--set", "plan.lpddr_usable_fraction=0.000002"]
TOL = 0.02                        # issue 5: predicted hit rates within 2 percentage points


def cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    return rc, out.getvalue()


def dram_bytes(share_of_model: float) -> int:
    """Host DRAM whose usable part (the planner's default 85%) is `share_of_model` of the model."""
    return int(share_of_model * MODEL_BYTES / 0.85)


def slice_trace(tr: Trace, lo: int, hi: int) -> Trace:
    return Trace(tr.table_names, tr.num_rows, [ix[of[lo]:of[hi]] for ix, of in zip(tr.indices, tr.offsets)],
                 [of[lo:hi + 1] - of[lo] for of in tr.offsets], tr.batch_size)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    tr = zipf_trace(ROWS, 8192, pooling=[4, 2, 1, 6], alpha=[1.05, 0.9, 1.2, 0.8], seed=7, batch_size=BATCH)
    tr.save(d / "all.npz")
    half = tr.num_samples // 2
    slice_trace(tr, 0, half).save(d / "first.npz")
    slice_trace(tr, half, tr.num_samples).save(d / "second.npz")
    for name in ("all", "first"):
        rc, out = cli(["profile", str(d / f"{name}.npz"), "--out", str(d / f"{name}.profile.npz"), "--json",
                       "--no-progress"])
        assert rc == 0
        prof = json.loads(out)
        assert [t["table"] for t in prof["tables"]] == tr.table_names
        assert sum(t["lookups"] for t in prof["tables"]) == (tr.num_lookups if name == "all"
                                                              else int(sum(o[half] for o in tr.offsets)))
    return d


def plan_cli(d, out_name: str, profile: str, *, counts: str, hw: str, cache_fraction: float,
             dram_share: float) -> dict:
    argv = ["plan", "--model", MODEL, "--profile", str(d / profile), "--hardware", hw, "--counts", counts,
            "--items-per-request", str(BATCH), "--dram-cache-fraction", str(cache_fraction),
            "--set", f"host.dram.capacity_bytes={dram_bytes(dram_share)}", "--out", str(d / out_name),
            "--json", "--no-progress"] + (SMALL_CARDS if hw.startswith("yosemite") else [])
    rc, out = cli(argv)
    assert rc == 0
    return json.loads(out)


def replay_store(d, plan: Plan, hw: str, trace: Trace) -> dict:
    """Every batch of `trace` through an EmbeddingStore created from `plan`: its measured hit rates."""
    tables = [TableSpec(n, r, DIM) for n, r in zip(trace.table_names, ROWS)]
    with EmbeddingStore.create(d / f"store-{hw}-{id(plan)}", tables, hardware=hw, plan=plan, overwrite=True) as st:
        for b in range(trace.num_batches):
            for t, (ix, of) in zip(tables, trace.batch(b)):
                st.lookup(t.name, torch.from_numpy(np.asarray(ix)), torch.from_numpy(np.asarray(of)))
        stats = st.stats()
    assert stats["total"]["indices"] == trace.num_lookups     # every lookup went through the store
    hr = stats["total"]["hit_rate"]
    # the planner's prediction check replays the store's own cache: it measures what the store served
    replay = replay_plan(plan, trace)
    assert replay.lookups == trace.num_lookups
    assert replay.host_memory == pytest.approx(hr["accel"] + hr["dram"], abs=1e-12)
    return hr


def predicted_shares(summary: dict) -> dict:
    h = summary["hit_rate"]
    return {"accel": h["sram"] + h["lpddr"], "dram": h["dram"] + h["dram_cache"], "scm": h["scm"]}


@pytest.mark.parametrize("cache_fraction,dram_share", [
    (0.7, 0.10),   # the DRAM cache holds every row it sees: its hits are the rows' repeats
    (0.9, 0.02),   # the cache is smaller than what reaches it: LRU evicts (Che's approximation)
])
def test_plan_predicts_what_the_store_serves(world, cache_fraction, dram_share):
    """Raw counts predict a replay of the profiled trace: accel, DRAM (pinned + cache), SCM shares
    measured by EmbeddingStore built from the plan agree with the plan within 2 points."""
    doc = plan_cli(world, f"plan-{cache_fraction}.json", "all.profile.npz", counts="raw", hw=HW,
                   cache_fraction=cache_fraction, dram_share=dram_share)
    pred = predicted_shares(doc["summary"])
    # every tier carries traffic, so the comparison is not trivially 0 = 0
    assert pred["accel"] > 0.2 and pred["dram"] > 0.02 and pred["scm"] > 0.2
    assert doc["summary"]["dram_cache_bytes"] > 0
    # the Yosemite preset also gets the per-card view (no timeline: a profile has no requests to route)
    cards = doc["cards"]
    assert [r["where"] for r in cards["cards"]] == [f"card{k}" for k in range(6)] + ["host"]
    assert cards["timeline"] is None
    plan = Plan.load(world / f"plan-{cache_fraction}.json")
    card_rows = sum(tp.rows_in("sram") + tp.rows_in("lpddr") for tp in plan.tables.values())
    assert sum(r["sram_bytes"] + r["lpddr_bytes"] for r in cards["cards"]) == card_rows * DIM * 4

    measured = replay_store(world, plan, HW, Trace.load(world / "all.npz"))
    for tier in ("accel", "dram", "scm"):
        assert abs(pred[tier] - measured[tier]) < TOL, (tier, pred, measured)


@pytest.mark.parametrize("cache_fraction,dram_share", [
    (0.5, 0.03),
    # pinned DRAM holds every row read twice or more: the cache's ~4.5 points of hits all come from
    # rows seen once or never in the profile (the Good-Turing mixture in sdm.placement.objectives)
    (0.5, 0.10),
])
def test_good_turing_plan_predicts_held_out_traffic(world, cache_fraction, dram_share):
    """Plan from the first half of the trace (default Good-Turing counts), replay the second half."""
    doc = plan_cli(world, f"gt-{cache_fraction}-{dram_share}.json", "first.profile.npz", counts="good-turing",
                   hw="host-nand", cache_fraction=cache_fraction, dram_share=dram_share)
    pred = predicted_shares(doc["summary"])
    measured = replay_store(world, Plan.load(world / f"gt-{cache_fraction}-{dram_share}.json"), "host-nand",
                            Trace.load(world / "second.npz"))
    assert 0.1 < measured["dram"] < 0.9
    for tier in ("dram", "scm"):
        assert abs(pred[tier] - measured[tier]) < TOL, (tier, pred, measured)


def test_run_explain_simulate_on_the_same_plan(world):
    """`sdm-plan plan --trace` (per-card view with the modelled timeline), then `run --plan` executes
    that plan (cards as planned, host store with the plan's DRAM pins and cache) and measures the
    same tier shares the plan predicts; `explain` and `simulate --plan` read the same file."""
    d = world
    plan_path = d / "traced.json"
    rc, out = cli(["plan", "--model", MODEL, "--trace", str(d / "all.npz"), "--hardware", HW, "--counts", "raw",
                   "--items-per-request", str(BATCH), "--dram-cache-fraction", "0.7",
                   "--set", f"host.dram.capacity_bytes={dram_bytes(0.1)}", "--page-layout", "co-access",
                   "--out", str(plan_path), "--no-progress"] + SMALL_CARDS)
    assert rc == 0
    assert "per card on yosemite-v2-nand" in out and "timeline (modelled, 16 requests of 512 items)" in out
    plan = Plan.load(plan_path)
    pred = predicted_shares(plan.summary)

    rc, out = cli(["run", "--model", MODEL, "--trace", str(d / "all.npz"), "--hardware", HW, "--plan",
                   str(plan_path), "--batches", "8", "--json", "--store", str(d / "run-store")])
    assert rc == 0
    rep = json.loads(out)
    assert rep["requests"] == 8 and rep["items_per_request"] == BATCH
    # the executor's card shards are the plan's card rows
    card_rows = sum(s["num_rows"] for s in rep["partition"] if s["where"].startswith("card"))
    assert card_rows == sum(tp.rows_in("sram") + tp.rows_in("lpddr") for tp in plan.tables.values())
    chk = rep["plan_check"]
    assert chk["predicted"]["cards"] == pytest.approx(pred["accel"])
    # half the trace replayed: the cards' share is routing (exact per lookup), DRAM and SCM depend on
    # the cache warming over fewer batches, so they are held to the same 2 points
    for tier in ("cards", "dram", "scm"):
        assert abs(chk["predicted"][tier] - chk["measured"][tier]) < TOL, (tier, chk)
    assert rep["latency"]["p99_s"] > 0 and rep["host"]["measured_s"] > 0

    rc, out = cli(["explain", str(plan_path), "t3", "--json"])
    assert rc == 0
    e = json.loads(out)
    assert e["table"] == "t3" and sum(e["rows_by_tier"].get(t, 0) for t in ("sram", "lpddr", "dram")) == \
        sum(plan.tables["t3"].rows_in(t) for t in ("sram", "lpddr", "dram"))
    rc, out = cli(["explain", str(plan_path), "t3"])
    assert rc == 0 and "why:" in out

    sims = {}
    for extra in ([], ["--plan", str(plan_path)]):
        rc, out = cli(["simulate", str(d / "all.npz"), "--capacity", "2000", "--policy", "lru", "--dim", str(DIM),
                       "--page-bytes", "4096", "--json", "--no-progress"] + extra)
        assert rc == 0
        sims["plan" if extra else "id"] = json.loads(out)
    assert sims["plan"]["mode"] == "page cache, plan layout" and sims["id"]["mode"] == "page cache, id-order layout"
    lru = {k: next(r for r in v["results"] if r["policy"] == "lru") for k, v in sims.items()}
    assert lru["plan"]["lookups"] == lru["id"]["lookups"] == Trace.load(d / "all.npz").num_lookups
