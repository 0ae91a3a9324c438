"""One model on several hardware configurations: plan each, size a fleet for it, savings vs a baseline
(what `sdm-plan compare` prints). DRAM-only configurations are sharded over as many servers as the
model needs (`PlanOptions.shard`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from sdm.core.errors import InfeasibleError, InvalidInputError
from sdm.core.spec import TableSpec
from sdm.placement.fleet import ServerProfile, savings, size_fleet
from sdm.placement.savings import band_position, breakdown
from sdm.placement.options import PlanOptions
from sdm.placement.planner import Planner, PlanResult, dram_curve
from sdm.placement.types import TableHotness


@dataclass
class Comparison:
    configs: list[dict]                  # one JSON-ready row per planned configuration
    results: list[PlanResult]            # the plan behind each row, in the same order
    baseline: str                        # hardware name the savings are against
    failed: list[str] = field(default_factory=list)   # "name: why" for configurations not planned
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)   # hardware -> dram_curve


def compare_hardware(tables: Sequence[TableSpec], hotness: Sequence[TableHotness], hardware: Sequence[Any],
                     opts: PlanOptions, *, qps_target: float | None = None, baseline: str | None = None,
                     model_name: str = "model", curves: bool = False,
                     operating_point: Callable[[PlanResult], dict | None] | None = None,
                     **stages: Any) -> Comparison:
    """Plan on each of `hardware`; the fleet is sized for `qps_target` requests/s (None: each
    configuration's own per-server QPS); savings are against `baseline` (a hardware or candidate
    name; default the first planned); with `curves`, each one's hit rate over DRAM sizes
    (`dram_curve`, for plots). InfeasibleError when none can be planned."""
    if not hardware:
        raise InvalidInputError("compare: no hardware configurations given")
    opts = dataclasses.replace(opts, shard=True)
    planner = Planner.from_options(opts, **stages)
    model_bytes = sum(t.size_bytes for t in tables)
    rows, results, fleets, failed, curve = [], [], [], [], {}
    for hw in hardware:
        try:
            res = planner.plan(tables, hotness, hw, model_name=model_name)
        except InfeasibleError as exc:
            failed.append(f"{hw.name}: {exc}")
            continue
        op = operating_point(res) if operating_point is not None else None
        server = ServerProfile.from_plan(res, op)
        fleet = size_fleet(server, model_bytes, qps_target or server.qps, opts.cost)
        est = res.estimate
        budget_value = server.p99_latency_s if opts.workload.budget_on == "p99" else server.latency_s
        rows.append({"name": res.candidate.name, "hardware": hw.name, "latency_s": server.latency_s,
                     "p99_latency_s": server.p99_latency_s, "qps_per_server": server.qps,
                     "qps_limit": server.bottleneck, "count_model": res.plan.summary.get("count_model"),
                     "headline_model": (op or res.plan.summary)["headline_model"],
                     "watts": server.load_watts, "watts_idle": server.idle_watts,
                     "capex_usd": est.capex_usd, "hit_rate": est.hit_rate,
                     "shards": res.candidate.knobs.get("shards", 1),
                     "meets_budget": budget_value <= opts.workload.latency_budget_s, "fleet": fleet.as_dict()})
        results.append(res)
        fleets.append(fleet)
        if curves:
            curve[hw.name] = dram_curve(tables, hotness, hw, opts, **stages)
    if not rows:
        raise InfeasibleError("no configuration could be planned: " + "; ".join(failed))
    base_name = baseline or rows[0]["hardware"]
    base = next((i for i, r in enumerate(rows) if base_name in (r["hardware"], r["name"])), None)
    if base is None:
        raise InvalidInputError(f"--baseline {base_name!r} is not among the planned configurations "
                                f"{[r['hardware'] for r in rows]}")
    base_summary = results[base].plan.summary
    for r, f, res in zip(rows, fleets, results):
        r["savings"] = savings(fleets[base], f)
        r["breakdown"] = breakdown(base_summary, rows[base]["fleet"], res.plan.summary, r["fleet"])
        r["power_saving_vs_band"] = band_position(r["savings"]["power"])
    return Comparison(rows, results, rows[base]["hardware"], failed, curve)
