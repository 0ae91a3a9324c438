"""What `sdm-plan plan/compare/explain` print: tier and table stats (like TorchRec's planner stats
table, plus power and cost), comparisons with savings, explanations, and plots."""
from __future__ import annotations

import math
from typing import Any, Sequence

from sdm.core.text_table import text_table
from sdm.placement.plan import Plan
from sdm.placement.types import TIER_ORDER

GB = 1e9


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """`rows` as the one text table (sdm.core.text_table), floats to 3 significant digits; a column
    of numbers (with "-" for not applicable) is right-aligned."""
    if not rows:
        return "(none)"
    cols = list(columns or rows[0].keys())
    align = "".join("r" if all(isinstance(r.get(c), (int, float)) or r.get(c) in ("-", None) for r in rows)
                    and any(isinstance(r.get(c), (int, float)) for r in rows) else "l" for c in cols)
    return text_table(cols, [[_fmt("-" if r.get(c, "") is None else r.get(c, "")) for c in cols] for r in rows],
                      align=align)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if math.isinf(v) or math.isnan(v):
            return str(v)
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}"
    return str(v)


def nbytes(x: float) -> str:
    """Bytes in the unit that keeps them readable (B, KB, MB, GB: powers of 1000, as the tables)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.0f} B"


def ms(x: float) -> str:
    return f"{x * 1e6:.1f} us" if x < 1e-3 else f"{x * 1e3:.2f} ms"


def tier_rows(plan: Plan) -> list[dict]:
    s = plan.summary
    rows = []
    for t in plan.tiers:
        name = t["tier"]
        rows.append({
            "tier": name, "device": t["device"], "cards": t["cards"] or "-",
            "capacity_GB": t["capacity_bytes"] / GB, "used_GB": t["used_bytes"] / GB,
            "used_%": 100.0 * t["used_bytes"] / t["capacity_bytes"] if t["capacity_bytes"] else 0.0,
            "hit_%": 100.0 * (s["hit_rate"].get(name, 0.0) + (s["hit_rate"].get("dram_cache", 0.0) if name == "dram" else 0.0)),
            "reads/req": s["reads_per_request"].get(name, 0.0),
            "time/req": ms(s["tier_time_s"].get(name, 0.0)),
            "min_density": t["density_threshold"] if t["density_threshold"] is not None else "-",
        })
    return rows


def table_rows(plan: Plan, top: int | None = 20) -> list[dict]:
    items = sorted(plan.tables.values(), key=lambda tp: -tp.explain.get("lookups", 0.0))
    total = sum(tp.explain.get("lookups", 0.0) for tp in items) or 1.0
    rows = []
    for tp in items[: top or len(items)]:
        h = tp.predicted_hit_rate
        rows.append({
            "table": tp.name, "rows": tp.num_rows, "dim": tp.dim, "fmt": tp.row_format,
            "size_GB": tp.num_rows * tp.row_bytes / GB, "lookups_%": 100.0 * tp.explain.get("lookups", 0.0) / total,
            "sram_rows": tp.rows_in("sram"), "lpddr_rows": tp.rows_in("lpddr"), "dram_rows": tp.rows_in("dram"),
            "cache_MB": tp.dram_cache_bytes / 1e6,
            "hit_accel_%": 100.0 * (h.get("sram", 0) + h.get("lpddr", 0)),
            "hit_dram_%": 100.0 * (h.get("dram", 0) + h.get("dram_cache", 0)),
            "scm_%": 100.0 * h.get("scm", 0), "layout": tp.page_layout,
        })
    return rows


def power_cost_rows(summary: dict) -> list[dict]:
    w = summary["watts_components"]
    c = summary["capex_components"]
    rows = [{"part": k, "idle_W": float(w[k][0]), "load_W": float(w[k][1]), "capex_$": float(c.get(k, 0.0))}
            for k in w]
    for k in c:
        if k not in w:
            rows.append({"part": k, "idle_W": 0.0, "load_W": 0.0, "capex_$": float(c[k])})
    return rows


def format_plan(plan: Plan, top: int | None = 20) -> str:
    s = plan.summary
    wl = s["workload"]
    budget = wl["latency_budget_s"]
    p99 = s["p99_latency_s"]
    limits = s["qps_limits"]
    lines = [
        f"plan: model {plan.model!r} ({s['model_bytes'] / GB:.2f} GB) on {s['candidate']!r}, policy {plan.policy}, "
        f"objective {plan.objective}, counts {s.get('count_model', 'unrecorded')}"
        + (f", {s['shards']} servers per replica" if s.get("shards", 1) > 1 else ""),
        f"request of {wl['items_per_request']} items: mean {ms(s['latency_s'])}, p99 {ms(p99)} "
        f"(budget {ms(budget)}: {'met' if p99 <= budget else 'MISSED by ' + ms(p99 - budget)}); "
        f"{s['qps_per_server']:,.0f} requests/s per server (limit: {min(limits, key=limits.get)})",
        f"power at the wall {s['watts']:.0f} W at {s['qps_per_server']:,.0f} requests/s, {s['watts_idle']:.0f} W idle; "
        f"capex ${s['capex_usd']:,.0f}; energy ${s['energy_usd_per_year']:,.0f}/year",
        f"figures from one model: {s.get('headline_model', 'tiers (sdm.placement.objectives)')}"
        + ("; the tier model ranked the placements" if "tier_model" in s else ""),
        "hit rates: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in s["hit_rate"].items() if v > 0 or k == "scm"),
        "", "per tier:", table(tier_rows(plan)),
        "", f"per table (top {min(top or len(plan.tables), len(plan.tables))} of {len(plan.tables)} by lookups):",
        table(table_rows(plan, top)),
        "", f"power and cost per server (parts' draw before the supply; / {s.get('psu_efficiency', 0.94):g} PSU "
            f"efficiency = at the wall):", table(power_cost_rows(s)),
    ]
    return "\n".join(lines)


class TextReporter:
    """The report stage: the plan's stats tables (`format_plan`), top `top` tables by lookups."""

    def __init__(self, top: int | None = 20) -> None:
        self.top = top

    def report(self, plan: Plan) -> str:
        return format_plan(plan, self.top)


def compare_rows(results: Sequence[dict]) -> list[dict]:
    return [{"config": r["name"], "servers": r["fleet"]["servers"], "bound_by": r["fleet"]["bound_by"],
             "p99": ms(r["p99_latency_s"]), "qps/server": r["qps_per_server"],
             "scm_%": 100.0 * r["hit_rate"].get("scm", 0.0),
             "util_%": 100.0 * r["fleet"]["utilization"],
             "W/server": r["fleet"]["watts"] / r["fleet"]["servers"], "fleet_kW": r["fleet"]["watts"] / 1e3,
             "capex_k$": r["fleet"]["capex_usd"] / 1e3, "tco_k$": r["fleet"]["tco_usd"] / 1e3,
             "power_save_%": 100.0 * r["savings"]["power"], "tco_save_%": 100.0 * r["savings"]["tco"]}
            for r in results]


def explain(plan: Plan, table_name: str) -> dict:
    """Why rows of one table went where: its densities against the tier thresholds and capacities."""
    tp = plan.table(table_name)
    ex = tp.explain
    tiers = {t["tier"]: t for t in plan.tiers}
    out = {"table": tp.name, "policy": plan.policy, "rows": tp.num_rows, "row_bytes": tp.row_bytes,
           "lookups": ex.get("lookups"), "table_density": ex.get("table_density"),
           "hottest_row_density": ex.get("density_max"), "rows_by_tier": ex.get("rows_by_tier"),
           "lookups_by_tier": ex.get("lookups_by_tier"), "predicted_hit_rate": tp.predicted_hit_rate,
           "dram_cache_bytes": tp.dram_cache_bytes, "dram_cache_policy": tp.dram_cache_policy,
           "page_layout": tp.page_layout, "backing_tier": tp.backing_tier,
           "tiers": [{"tier": n, "capacity_bytes": t["capacity_bytes"], "used_bytes": t["used_bytes"],
                      "density_threshold": t["density_threshold"]} for n, t in tiers.items()]}
    reasons = []
    counts_word = {"good-turing": "Good-Turing estimates: a row seen k times counts as (k+1) N(k+1)/N(k), "
                                   "unseen rows share the estimated unseen mass",
                   "raw": "the trace's own counts"}.get(plan.summary.get("count_model"), "profiled counts")
    if plan.policy == "row":
        reasons.append("row-level policy: every tracked row of every table is ranked by access density "
                       "(lookups per byte) and the ranking is cut against the tiers' capacities, fastest first.")
        d = ex.get("density_max", 0.0)
        for name in TIER_ORDER[:-1]:
            t = tiers.get(name)
            if t is None or name == tp.backing_tier:
                continue
            thr = t["density_threshold"]
            n = ex.get("rows_by_tier", {}).get(name, 0)
            full = t["used_bytes"] / t["capacity_bytes"] if t["capacity_bytes"] else 0
            if thr is None:
                reasons.append(f"{name}: nothing placed (no rows dense enough, or no capacity).")
            else:
                per_row = thr * tp.row_bytes               # the cut in this table's own terms
                got = ex.get("lookups_by_tier", {}).get(name, 0.0)
                total = ex.get("lookups", 0.0) or 1.0
                if n == 0:
                    why = (f"none of its rows is that dense: its hottest row has {d:.4g} lookups/B "
                           f"({d * tp.row_bytes:.3g} lookups) and would need {per_row:.3g}")
                elif n >= tp.num_rows:
                    why = f"all {n:,} of its rows are at least that dense, so the whole table is there"
                else:
                    why = (f"its {n:,} rows read at least {per_row:.3g} times each ({counts_word}) are there, "
                           f"serving {got / total:.1%} of its lookups; its other rows are read less")
                reasons.append(f"{name} ({t['capacity_bytes'] / GB:.3g} GB, {full:.0%} used) took the densest rows "
                               f"of all tables down to {thr:.4g} lookups/B = {per_row:.3g} lookups per "
                               f"{tp.row_bytes}-byte row of this table: {why}.")
        reasons.append(f"{tp.backing_tier}: holds every row (the backing copy); rows below every threshold are "
                       f"read from it" + (f" through a {nbytes(tp.dram_cache_bytes)} share of the DRAM "
                                          f"{tp.dram_cache_policy} cache." if tp.dram_cache_bytes else "."))
    else:
        kind = "in declared order, blind to hotness" if plan.policy == "baseline" else "by table density (lookups per byte)"
        where = [p.tier + (f" card {p.card}" if p.card is not None else "") for p in tp.placements]
        reasons.append(f"{plan.policy} policy: whole tables go to the fastest tier with room, {kind}; this "
                       f"table has density {ex.get('table_density', 0):.4g} lookups/B and "
                       f"{tp.num_rows * tp.row_bytes / GB:.3g} GB -> " + (", ".join(where) or tp.backing_tier) + ".")
        for name, t in tiers.items():
            if name != tp.backing_tier and t["density_threshold"] is not None:
                reasons.append(f"{name}: lowest table density placed {t['density_threshold']:.4g}; "
                               f"{t['used_bytes'] / GB:.3g} of {t['capacity_bytes'] / GB:.3g} GB used.")
    out["reasons"] = reasons
    return out


def format_explain(e: dict) -> str:
    lines = [f"table {e['table']!r}: {e['rows']:,} rows x {e['row_bytes']} B, {e['lookups']:,.0f} lookups profiled, "
             f"table density {e['table_density']:.4g} lookups/B" +
             (f", hottest row {e['hottest_row_density']:.4g} lookups/B" if e.get("hottest_row_density") else "")]
    rows = []
    for name, n in (e["rows_by_tier"] or {}).items():
        rows.append({"tier": name, "rows": n, "lookups": float(e["lookups_by_tier"].get(name, 0.0)),
                     "predicted_hit_%": 100.0 * (e["predicted_hit_rate"].get(name, 0.0)
                                                 + (e["predicted_hit_rate"].get("dram_cache", 0.0) if name == "dram" else 0.0))})
    if e["dram_cache_bytes"]:
        rows.append({"tier": f"dram cache ({e['dram_cache_policy']})", "rows": "-", "lookups": "-",
                     "predicted_hit_%": 100.0 * e["predicted_hit_rate"].get("dram_cache", 0.0)})
    lines += [table(rows), "", "why:"] + [f"- {r}" for r in e["reasons"]]
    lines.append(f"- SCM page layout: {e['page_layout']}")
    return "\n".join(lines)


def format_breakdown(r: dict, base_name: str) -> str:
    """Where one configuration's savings against the baseline come from (sdm.placement.savings)."""
    b = r["breakdown"]
    f = r["fleet"]
    need = (f"{f['servers_for_capacity']} for memory, {f['servers_for_qps']} for the QPS"
            f" (limit {r.get('qps_limit', '?')})")
    rows = [{"part": k, "base_kW": p["base_watts"] / 1e3, "kW": p["watts"] / 1e3, "saved_kW": p["saved_watts"] / 1e3,
             "base_capex_k$": p["base_capex_usd"] / 1e3, "capex_k$": p["capex_usd"] / 1e3,
             "saved_k$": p["saved_capex_usd"] / 1e3} for k, p in b["parts"].items()]
    rows.append({k: (sum(x[k] for x in rows) if k != "part" else "total") for k in rows[0]})
    s = r["savings"]
    return "\n".join([
        f"{r['name']} vs {base_name}: {b['servers']['this']} server(s) ({need}; sized by {b['sized_by']['this']}) "
        f"vs {b['servers']['base']} (sized by {b['sized_by']['base']}); power {100 * s['power']:+.1f}% "
        f"({r['power_saving_vs_band']}), capex {100 * s['capex']:+.1f}%, TCO {100 * s['tco']:+.1f}%",
        table(rows)])
