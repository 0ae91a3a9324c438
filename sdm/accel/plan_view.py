"""The per-card view of a planner's `Plan` on a card platform (what `sdm-plan plan/compare` show for a
Yosemite V2 preset): one row per card and one for the host, and given a trace the modelled six-card
timeline of its requests (sdm.accel.report.build_report)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sdm.accel.partitioner import HOST, Partition
from sdm.accel.report import BUDGET_S, _ms, build_report
from sdm.accel.timeline import model_timeline
from sdm.core.errors import InvalidInputError
from sdm.core.text_table import text_table


def partition_summary(partition: Partition, platform=None) -> list[dict]:
    """One row per card and one for the host: tables, shards, bytes in SRAM / LPDDR, expected load."""
    load = partition.card_load_bytes()
    rows = []
    for k in range(partition.num_cards):
        sh = [s for s in partition.shards if s.location == k]
        rows.append({"where": f"card{k}", "tables": len({s.table for s in sh}), "shards": len(sh),
                     "sram_bytes": int(sum(s.size_bytes for s in sh if s.tier == "sram")),
                     "lpddr_bytes": int(sum(s.size_bytes for s in sh if s.tier == "lpddr")),
                     "capacity_bytes": int(partition.card_capacity_bytes[k]),
                     "load_bytes_per_sample": float(load[k])})
    sh = [s for s in partition.shards if not s.on_card]
    lps = partition.lookups_per_sample
    rows.append({"where": "host", "tables": len({s.table for s in sh}), "shards": len(sh), "sram_bytes": 0,
                 "lpddr_bytes": 0, "capacity_bytes": None, "host_bytes": int(sum(s.size_bytes for s in sh)),
                 "load_bytes_per_sample": float(sum(lps[s.table_index] * s.load_share
                                                    * partition.tables[s.table_index].row_bytes for s in sh))})
    return rows


def dlrm_dense_flops(num_tables: int, dim: int, num_dense: int = 13, bottom_mlp: Sequence[int] = (64, 32),
                     top_mlp: Sequence[int] = (64, 32)) -> float:
    """Dense flops per sample of sdm.runtime.dlrm.DLRM with these sizes, without building it (same count as
    sdm.accel.executor.dense_flops_per_sample on the built model)."""
    bottom = [num_dense, *bottom_mlp] + ([] if bottom_mlp and bottom_mlp[-1] == dim else [dim])
    T = num_tables + 1
    top = [T * (T - 1) // 2 + dim, *top_mlp, 1]
    lin = sum(2.0 * a * b for a, b in zip(bottom[:-1], bottom[1:])) + sum(2.0 * a * b for a, b in zip(top[:-1], top[1:]))
    return lin + 2.0 * T * T * dim


def _host_hit_from_plan(plan, partition: Partition) -> np.ndarray:
    """Per shard, the share of host-side lookups the plan predicts DRAM (pinned or cache) serves."""
    hit = np.ones(len(partition.shards))
    for i, s in enumerate(partition.shards):
        if s.on_card:
            continue
        h = plan.tables[s.table].predicted_hit_rate or {}
        dram = float(h.get("dram", 0.0)) + float(h.get("dram_cache", 0.0))
        scm = float(h.get("scm", 0.0))
        hit[i] = dram / (dram + scm) if dram + scm > 0 else 1.0
    return hit


def plan_summary(plan, hardware, trace=None, *, reserve_bytes: int = 1 << 30, dense_on: int = 0,
                 dense_flops_per_sample: float | None = None, batching: bool = True,
                 budget_s: float = BUDGET_S, loads=None) -> dict:
    """Per-card placement of a planner's `Plan` on a card platform, and (given a trace) the modelled
    six-card timeline of its requests: what `sdm-plan plan/compare` show for a Yosemite V2 preset.

    `trace` must hold the plan's tables in the plan's order; one request = one batch of it. `loads`
    (lookups per sample per table) sets the expected load column when there is no trace; with a
    trace, that column is the trace's own lookups per sample. Host-side DRAM hit rates come from the
    plan's predictions. Returns {"cards": partition_summary rows, "timeline": {...} or None}.
    Raises InvalidInputError for hardware without cards or a plan that does not fit its cards.
    """
    from sdm.core.spec import TableSpec
    from sdm.accel.partitioner import partition_from_plan
    from sdm.hardware.platform import Platform
    from sdm.accel.routing import trace_shard_counts

    if plan.summary.get("shards", 1) > 1:
        raise InvalidInputError(f"plan spans {plan.summary['shards']} servers per replica; the per-card view "
                                "covers a plan for one server")
    pf = Platform.from_hardware(hardware, dense_on=dense_on)
    tables = [TableSpec(n, int(tp.num_rows), int(tp.dim), tp.row_format) for n, tp in plan.tables.items()]
    part = partition_from_plan(plan, tables, pf.card_usable_bytes(reserve_bytes), pf.card_sram_bytes(),
                               loads=loads)
    out = {"cards": partition_summary(part, pf), "timeline": None}
    if trace is None:
        return out
    counts, sizes = trace_shard_counts(part, trace)
    # The partition's load shares assume rows of a shard are read evenly (no per-row counts, which
    # would cost 8 B per row of every table); the trace says what each shard really served.
    samples = max(float(sizes.sum()), 1.0)
    row_bytes = np.array([part.tables[s.table_index].row_bytes for s in part.shards], dtype=np.float64)
    shard_load = counts.sum(axis=0) * row_bytes / samples
    loc = np.array([s.location for s in part.shards])
    for row, k in zip(out["cards"], [*range(part.num_cards), HOST]):
        row["load_bytes_per_sample"] = float(shard_load[loc == k].sum())
    dims = {t.dim for t in tables}
    flops = dense_flops_per_sample if dense_flops_per_sample is not None else dlrm_dense_flops(len(tables), max(dims))
    tl = model_timeline(pf, part, counts, sizes, host_hit_rate=_host_hit_from_plan(plan, part),
                        dense_flops_per_sample=flops, dense_in_bytes_per_sample=4.0 * 13, batching=batching)
    rep = build_report(tl, pf, part, budget_s=budget_s)
    out["timeline"] = {k: rep[k] for k in ("requests", "items_per_request", "latency", "throughput",
                                           "load_imbalance", "breakdown_s", "critical_path_share", "power")}
    out["timeline"]["host"] = {k: rep["host"][k] for k in ("lookups_per_request", "modelled_s", "dram_s", "scm_s",
                                                           "share_of_requests_reading_scm")}
    for row, c in zip(out["cards"], rep["cards"]):
        row.update({"lookups_per_request": c["lookups_per_request"], "busy_s_per_request": c["busy_s_per_request"],
                    "utilisation": c["utilisation"], "watts": c["watts"]})
    return out


def format_plan_summary(summary: dict) -> str:
    """Text for `plan_summary`: the per-card table, then the modelled timeline (when there is one)."""
    from sdm.placement.report import _fmt

    cols = {"where": "where", "tables": "tables", "shards": "shards", "sram_bytes": "SRAM_MB",
            "lpddr_bytes": "LPDDR_MB", "host_bytes": "host_MB", "capacity_bytes": "card_MB",
            "load_bytes_per_sample": "B_read/sample", "lookups_per_request": "lookups/req",
            "utilisation": "util_%", "watts": "watts"}
    t = summary.get("timeline")
    cells = []
    for r in summary["cards"]:
        r = dict(r)
        if r["where"] == "host" and t is not None:
            r["lookups_per_request"] = t["host"]["lookups_per_request"]
        row = []
        for k in cols:
            v = r.get(k)
            if v is not None and k.endswith("_bytes") and k != "load_bytes_per_sample":
                v = v / 1e6
            elif v is not None and k == "utilisation":
                v = 100.0 * v
            row.append("-" if v is None else _fmt(v))
        cells.append(row)
    lines = [text_table(list(cols.values()), cells, align="l" + "r" * (len(cols) - 1))]
    if t is None:
        lines.append("(no timeline: it needs a trace (--trace) to route requests to cards)")
        return "\n".join(lines)
    L, T, P, H = t["latency"], t["throughput"], t["power"], t["host"]
    lines += [
        f"timeline (modelled, {t['requests']} requests of {t['items_per_request']:.0f} items): mean {_ms(L['mean_s'])}, "
        f"p50 {_ms(L['p50_s'])}, "
        f"p99 {_ms(L['p99_s'])} (budget {_ms(L['budget_s'])}: "
        f"{'met' if L['meets_budget'] else 'MISSED by ' + _ms(L['p99_over_budget_s'])}); max {T['max_qps']:,.0f} "
        f"requests/s, bottleneck {T['bottleneck']}; load imbalance (max/mean card busy) {t['load_imbalance']:.2f}",
        f"  host: {H['lookups_per_request']:.0f} lookups/request, modelled {_ms(H['modelled_s'])} (DRAM {_ms(H['dram_s'])}, "
        f"SCM {_ms(H['scm_s'])}); critical path through "
        + ", ".join(f"{k} {v:.0%}" for k, v in sorted(t["critical_path_share"].items())),
        f"  power at {P['at_qps']:,.0f} requests/s: cards {P['cards_watts']:.1f} W, server at the wall "
        f"{P['server_watts']:.1f} W",
    ]
    return "\n".join(lines)


# The per-card view (sdm.accel.partitioner.partition_from_plan + routing) holds per-row arrays: about
# 10 B per row for the partition and 12 B more to route a trace (measured: 33.7M rows, +0.73 GB).
# Planning itself stays within its 4 GiB target at 4e9 rows; this view would not, so it is bounded.
CARD_VIEW_MAX_ROWS = 50_000_000


def card_view(plan, hw, trace=None, hot=None, items_per_request: int | None = None) -> dict | None:
    """Per-card placement and (with a trace) the modelled six-card timeline of `plan` on `hw`, or None
    when `hw` has no cards. A request is `items_per_request` samples of the trace, as the plan assumes.
    A plan that cannot be shown per card (one spanning several servers) gives {"note": why}."""
    if not hw.cards:
        return None
    rows = sum(int(tp.num_rows) for tp in plan.tables.values())
    if rows > CARD_VIEW_MAX_ROWS:
        return {"cards": [], "timeline": None,
                "note": f"the model has {rows:,} rows; the per-card view builds per-row arrays (about 22 B per "
                        f"row) and is skipped above {CARD_VIEW_MAX_ROWS:,} rows"}
    loads = None
    if hot and all(h.num_samples > 0 for h in hot):
        loads = [h.total_lookups / h.num_samples for h in hot]
    if trace is not None and items_per_request:
        from sdm.traces.trace import Trace

        if trace.batch_size != items_per_request:
            trace = Trace(trace.table_names, trace.num_rows, trace.indices, trace.offsets, items_per_request)
    try:
        # reserve 0: the plan's own usable fractions (plan.sram/lpddr_usable_fraction) already keep
        # card memory for dense weights and activations
        return plan_summary(plan, hw, trace, reserve_bytes=0, loads=loads)
    except InvalidInputError as exc:
        return {"cards": [], "timeline": None, "note": str(exc)}


def format_card_view(view: dict, hw_name: str) -> str:
    head = f"per card on {hw_name} (six-card platform):"
    if view.get("note"):
        return f"{head} not shown: {view['note']}"
    return head + "\n" + format_plan_summary(view)


# ---- one answer per plan ----------------------------------------------------------------------------
def operating_point(view: dict | None, watts_idle: float) -> dict | None:
    """The plan's headline figures from the six-card timeline, when there is one (None otherwise).

    On a card platform the timeline is the fuller model of the same requests: it adds the PCIe links,
    the cards' own reads and pooling, and dense compute on a card, which the planner's tier model
    (sdm.placement.objectives) leaves out. So plan, compare and the timeline print these figures; the
    tier model still ranks the candidate placements. Watts are at the wall, at the max QPS."""
    t = (view or {}).get("timeline")
    if not t:
        return None
    L, T, P, H, B = t["latency"], t["throughput"], t["power"], t["host"], t["breakdown_s"]
    return {"headline_model": "six-card timeline (sdm.accel.timeline)",
            "latency_s": float(L["mean_s"]), "p99_latency_s": float(L["p99_s"]),
            "qps_per_server": float(T["max_qps"]), "qps_limits": {T["bottleneck"]: float(T["max_qps"])},
            "watts": float(P["server_watts"]), "watts_idle": float(watts_idle),
            "watts_components_at_qps": {k: float(v) for k, v in P["components_watts"].items()},
            "tier_time_s": {"sram": float(B["card_sram_s"]), "lpddr": float(B["card_lpddr_s"]),
                            "dram": float(H["dram_s"]), "scm": float(H["scm_s"])}}


HEADLINE_KEYS = ("latency_s", "p99_latency_s", "qps_per_server", "qps_limits", "watts", "tier_time_s",
                 "watts_components_at_qps")


def apply_operating_point(summary: dict, op: dict | None) -> dict:
    """`summary` (a plan's) with the headline figures of `op` in place; the tier model's own figures
    are kept under "tier_model" (what ranked the candidates), so nothing prints two answers."""
    if op is None:
        return summary
    summary["tier_model"] = {k: summary.get(k) for k in HEADLINE_KEYS}
    summary.update(op)
    return summary
