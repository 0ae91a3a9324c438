"""The planner: a pipeline of replaceable stages, each an interface in `sdm.placement.types`.

    enumerate (hardware -> candidates) -> page layout (trace -> SCM row order per table)
      -> for each candidate: propose (rows -> tiers) + partition (accelerator rows -> cards)
                             -> estimate (hit rates, latency, QPS, watts, $)
      -> objective (keep one, or say why none fits) -> `Plan` (with per-table explanations) -> report

`Planner.from_options(PlanOptions(...))` builds the default stages (HardwareEnumerator, the proposer
named by `policy`, CardPartitioner, DefaultEstimator, the objective named by `objective`,
IdOrderLayout, TextReporter); pass any stage to replace it:

    planner = Planner.from_options(opts, proposer=MyProposer(), page_layout=CoAccessLayout())
    result = planner.plan(tables, hotness, sdm.hardware("host-nand"), trace=trace)
    print(planner.report(result.plan))

`plan_model(tables, hotness, hw, opts)` is the same with the default stages.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from sdm.core.errors import InfeasibleError
from sdm.core.spec import TableSpec
from sdm.placement.assignment import Placement, check_hotness
from sdm.placement.card_partition import CardPartitioner
from sdm.placement.enumerator import HardwareEnumerator, check_capacity
from sdm.placement.objectives import DefaultEstimator, objective as make_objective
from sdm.placement.options import PlanOptions
from sdm.placement.layout_stage import IdOrderLayout, LayoutChoice
from sdm.placement.plan import Plan, TablePlan, TierPlacement
from sdm.placement.proposers import proposer as make_proposer
from sdm.placement.report import TextReporter
from sdm.placement.types import (Candidate, Enumerator, Estimate, Estimator, Objective, PageLayout, Partitioner,
                                 Proposer, Reporter, TableHotness, TierSpec)

__all__ = ["Planner", "PlanResult", "PlanOptions", "plan_model", "build_plan", "split_cache_budget", "dram_curve"]


@dataclass
class PlanResult:
    plan: Plan
    candidate: Candidate
    placement: Placement
    estimate: Estimate
    scored: list[tuple[Candidate, Placement, Estimate]]


@dataclass
class Planner:
    """One object per stage (see the module docstring); `options` feed the plan's summary."""

    enumerator: Enumerator
    proposer: Proposer
    estimator: Estimator
    objective: Objective
    partitioner: Partitioner = dataclasses.field(default_factory=CardPartitioner)
    page_layout: PageLayout = dataclasses.field(default_factory=IdOrderLayout)
    reporter: Reporter = dataclasses.field(default_factory=TextReporter)
    options: PlanOptions = dataclasses.field(default_factory=PlanOptions)

    @classmethod
    def from_options(cls, opts: PlanOptions | None = None, **stages: Any) -> "Planner":
        """The default stages for `opts`, any of them replaced by keyword (enumerator=..., ...)."""
        opts = opts or PlanOptions()
        unknown = set(stages) - ({f.name for f in dataclasses.fields(cls)} - {"options"})
        if unknown:
            raise TypeError(f"Planner has no stage(s) {sorted(unknown)}")
        default = {"enumerator": lambda: HardwareEnumerator(opts), "proposer": lambda: make_proposer(opts.policy),
                   "estimator": lambda: DefaultEstimator(opts.workload, opts.power, opts.cost),
                   "objective": lambda: make_objective(opts.objective, opts.workload)}
        given = {k: v for k, v in stages.items() if v is not None}      # None: the default stage
        built = {k: make() for k, make in default.items() if k not in given}
        return cls(**built, **given, options=opts)

    def place(self, tables: Sequence[TableSpec], hotness: Sequence[TableHotness],
              tiers: Sequence[TierSpec]) -> Placement:
        """Propose + partition on given tiers (fastest first, the last backing every row)."""
        return self.proposer.propose(tables, hotness, tiers, self.partitioner)

    def plan(self, tables: Sequence[TableSpec], hotness: Sequence[TableHotness], hardware, *, trace=None,
             model_name: str = "model") -> PlanResult:
        """Run every stage for one hardware spec; the chosen plan and every scored candidate."""
        check_hotness(tables, hotness)            # before any candidate is enumerated or priced
        layouts: dict[str, LayoutChoice] = self.page_layout.layout(tables, trace, hardware)
        model_bytes = sum(t.size_bytes for t in tables)
        candidates = self.enumerator.enumerate(hardware, model_bytes)
        scored, errors = [], []
        bar = None
        if self.options.progress:
            import sys

            from tqdm import tqdm
            bar = tqdm(total=len(candidates), desc=f"plan {getattr(hardware, 'name', '')}", unit="config",
                       file=sys.stderr, mininterval=0.1 if sys.stderr.isatty() else 10.0)
        for cand in candidates:
            if layouts:    # the latency model charges the pages per SCM read each layout gives
                cand.knobs = {**cand.knobs, "pages_per_scm_read": {n: c.pages_per_read for n, c in layouts.items()}}
            try:
                check_capacity(cand, model_bytes)
            except InfeasibleError as exc:
                errors.append(str(exc))
                continue
            placement = self.place(tables, hotness, cand.tiers)
            scored.append((cand, placement, self.estimator.estimate(cand, placement, tables, hotness)))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if not scored:
            raise InfeasibleError(errors[0] if len(errors) == 1 else "; ".join(errors))
        cand, placement, estimate = self.objective.select(scored)
        plan = build_plan(tables, hotness, cand, placement, estimate, self.options, model_name,
                          objective=getattr(self.objective, "name", self.options.objective))
        for name, lay in layouts.items():
            tp = plan.tables[name]
            tp.page_layout, tp.row_order = lay.method, lay.row_order
            tp.explain["read_amplification"] = {"layout": lay.read_amplification,
                                                "id_order": lay.id_order_read_amplification}
        return PlanResult(plan, cand, placement, estimate, scored)

    def report(self, plan: Plan) -> str:
        return self.reporter.report(plan)


def plan_model(tables: Sequence[TableSpec], hotness: Sequence[TableHotness], hw, opts: PlanOptions | None = None,
               model_name: str = "model", *, trace=None, **stages: Any) -> PlanResult:
    """`Planner.from_options(opts, **stages).plan(...)`: the default pipeline for one hardware spec."""
    return Planner.from_options(opts, **stages).plan(tables, hotness, hw, trace=trace, model_name=model_name)


def dram_curve(tables: Sequence[TableSpec], hotness: Sequence[TableHotness], hw, opts: PlanOptions,
               **stages: Any) -> list[tuple[float, float]]:
    """(DRAM GB, share of lookups served above SCM) over a ladder of DRAM sizes (for plots)."""
    if hw.scm is None:
        return []
    o = dataclasses.replace(opts, objective="min-latency", dram_ladder=(1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
                            whole_dimms=False, progress=False)
    res = plan_model(tables, hotness, hw, o, **stages)
    return [(c.knobs["dram_bytes"] / 1e9, 1.0 - e.hit_rate["scm"]) for c, _p, e in res.scored]


def split_cache_budget(budget_bytes: int, occupancy_bytes: np.ndarray, beyond_lookups: np.ndarray,
                       size_bytes: np.ndarray) -> np.ndarray:
    """Each table's share of one DRAM cache budget, in bytes (the shares sum to the budget).

    A table gets its expected occupancy of the one cache (never more than the budget in all), and
    the part the occupancies leave unused is spread in proportion to each table's lookups that reach
    past its pinned rows (`beyond_lookups`; by size when none do): the tables most likely to read
    rows the profile did not see get most of the room for them. Used by the planner (occupancy
    predicted by the estimator) and by the store's default placement (bytes of the rows ranked
    into the cache).
    """
    occ = np.asarray(occupancy_bytes, np.float64)
    n = occ.size
    if budget_bytes <= 0 or n == 0:
        return np.zeros(n, np.int64)
    occ = occ * min(1.0, budget_bytes / max(occ.sum(), 1e-300))
    beyond = np.asarray(beyond_lookups, np.float64)
    weight = beyond if beyond.sum() > 0 else np.asarray(size_bytes, np.float64)
    share = np.floor(occ + (budget_bytes - occ.sum()) * weight / weight.sum()).astype(np.int64)
    share[int(np.argmax(weight))] += budget_bytes - int(share.sum())     # rounding: shares sum to the budget
    return share


def split_dram_cache(tables: Sequence[TableSpec], hotness: Sequence[TableHotness], est: Estimate) -> dict[str, int]:
    """The estimate's cache budget split over tables (`split_cache_budget` of its predictions)."""
    budget = int(est.detail.get("dram_cache_bytes", 0) or 0)
    occ = [float(est.detail.get("dram_cache_bytes_per_table", {}).get(t.name, 0.0)) for t in tables]
    rate = est.detail["per_table_hit_rate"]
    beyond = [(rate[t.name]["dram_cache"] + rate[t.name]["scm"]) * h.total_lookups for t, h in zip(tables, hotness)] \
        if budget > 0 else [0.0] * len(tables)
    share = split_cache_budget(budget, np.array(occ), np.array(beyond), np.array([float(t.size_bytes) for t in tables]))
    return {t.name: int(b) for t, b in zip(tables, share)}


def count_model(hotness: Sequence[TableHotness]) -> str:
    """How the profile's counts were read: "good-turing" (adjusted for future traffic) or "raw"."""
    return "good-turing" if any(h.raw_counts is not None for h in hotness) else "raw"


def build_plan(tables: Sequence[TableSpec], hotness: Sequence[TableHotness], cand: Candidate, placement: Placement,
               est: Estimate, opts: PlanOptions, model_name: str = "model", *, objective: str | None = None) -> Plan:
    per_rate = est.detail["per_table_hit_rate"]
    cache_share = split_dram_cache(tables, hotness, est)
    tier_info = [{"tier": t.name, "device": t.device, "cards": t.cards, "capacity_bytes": t.capacity_bytes,
                  "used_bytes": int(placement.tier_used_bytes.get(t.name, 0)),
                  "latency_s": t.latency_s, "iops": t.iops, "access_bytes": t.access_bytes,
                  "density_threshold": placement.thresholds.get(t.name)} for t in cand.tiers]
    out: dict[str, TablePlan] = {}
    for spec, hot in zip(tables, hotness):
        tp_in = placement.tables[spec.name]
        total = hot.total_lookups
        rows_by_tier: dict[str, int] = {}
        for tier, _c, rows in tp_in.pinned:
            rows_by_tier[tier] = rows_by_tier.get(tier, 0) + rows.count
        rows_by_tier[placement.backing_tier] = spec.num_rows - sum(rows_by_tier.values())
        explain = {
            **tp_in.explain,
            "lookups": total, "row_bytes": spec.row_bytes,
            "table_density": total / spec.size_bytes,
            "tracked_rows": int(hot.ids.size), "tail_rows": hot.tail_rows,
            "tail_lookups": hot.tail_lookups,
            "rows_by_tier": rows_by_tier,
            "lookups_by_tier": tp_in.lookups_by_tier,
        }
        out[spec.name] = TablePlan(
            spec.name, spec.num_rows, spec.dim, spec.row_format, spec.row_bytes,
            placements=[TierPlacement(t, c, r) for t, c, r in tp_in.pinned],
            dram_cache_bytes=int(round(cache_share.get(spec.name, 0.0))),
            dram_cache_policy=cand.dram_cache_policy,
            predicted_hit_rate=per_rate[spec.name], explain=explain, backing_tier=placement.backing_tier)
    summary = {
        "candidate": cand.name, "model_bytes": sum(t.size_bytes for t in tables),
        "dram_bytes": cand.knobs.get("dram_bytes"), "shards": cand.knobs.get("shards", 1),
        "count_model": count_model(hotness), "headline_model": "tiers (sdm.placement.objectives)",
        "hit_rate": est.hit_rate, "latency_s": est.latency_s, "p99_latency_s": est.p99_latency_s,
        "qps_per_server": est.qps_per_server, "watts": est.watts, "watts_idle": est.detail["watts_idle"],
        "psu_efficiency": opts.power.psu_efficiency,
        "capex_usd": est.capex_usd, "energy_usd_per_year": est.detail["energy_usd_per_year"],
        "reads_per_request": est.detail["reads_per_request"], "tier_time_s": est.detail["tier_time_s"],
        "qps_limits": est.detail["qps_limits"], "watts_components": est.detail["watts_components"],
        "capex_components": est.detail["capex_components"],
        "dram_cache_bytes": est.detail["dram_cache_bytes"], "dram_cache_policy": cand.dram_cache_policy,
        "workload": {"items_per_request": opts.workload.items_per_request,
                     "latency_budget_s": opts.workload.latency_budget_s, "budget_on": opts.workload.budget_on,
                     "qps_target": opts.workload.qps_target,
                     "compute_qps_per_server": opts.workload.compute_qps_per_server},
        "assumptions": {"dram_usable_fraction": opts.dram_usable_fraction,
                        "sram_usable_fraction": opts.sram_usable_fraction,
                        "lpddr_usable_fraction": opts.lpddr_usable_fraction,
                        "scm_queue_depth": opts.scm_queue_depth, "dram_queue_depth": opts.dram_queue_depth},
    }
    hw_name = getattr(cand.hardware, "name", cand.name)
    return Plan(model_name, hw_name, objective or opts.objective, placement.policy, out, summary, tier_info)
