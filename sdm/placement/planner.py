"""The default planning pipeline: enumerate -> partition (policy) -> estimate -> propose -> plan file.

Each stage is one of the interfaces in `sdm.placement.types` and can be swapped:
- `HardwareEnumerator` turns a HardwareSpec into candidate configurations (tiers with their
  capacities and device models; for power/cost objectives also a ladder of smaller DRAM fits);
- a `PlacementPolicy` (sdm.placement.policies) puts rows on tiers and cards;
- `DefaultEstimator` (sdm.placement.objectives) predicts hit rates, latency, QPS, watts, $;
- a proposer (objective) keeps one candidate, or raises InfeasibleError saying why none fits;
- `build_plan` writes the result as a `Plan` with per-table explanations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sdm.hardware.platform import CARD_QUEUE_DEPTH, HOST_QUEUE_DEPTH, SCM_QUEUE_DEPTH
from sdm.core.errors import InfeasibleError, InvalidInputError
from sdm.core.spec import TableSpec
from sdm.placement.cost import CostDefaults
from sdm.placement.objectives import DefaultEstimator, Workload, objective as make_objective
from sdm.placement.plan import Plan, TablePlan, TierPlacement
from sdm.placement.policies import Placement, check_hotness, policy as make_policy
from sdm.placement.power import PowerDefaults, parts_from_hardware
from sdm.placement.types import Candidate, Estimate, TableHotness, TierSpec

GIB = 1 << 30


@dataclass
class PlanOptions:
    policy: str = "row"
    objective: str = "min-latency"
    workload: Workload = field(default_factory=Workload)
    power: PowerDefaults = field(default_factory=PowerDefaults)
    cost: CostDefaults = field(default_factory=CostDefaults)
    dram_cache_fraction: float = 0.0     # share of usable host DRAM run as a cache in front of SCM
    dram_cache_policy: str = "lru"
    # Shares of each memory left for embedding rows; the rest holds dense weights, activations,
    # the OS and the store's indexes. *assumptions*, override per deployment.
    dram_usable_fraction: float = 0.85
    sram_usable_fraction: float = 0.5
    lpddr_usable_fraction: float = 0.75
    # Queue depths the device models are priced at: the same model choices as the six-card
    # timeline's (sdm.hardware.platform, each explained there), so planner and runtime agree.
    scm_queue_depth: int = SCM_QUEUE_DEPTH     # outstanding reads per SSD (the page store's default)
    dram_queue_depth: int = HOST_QUEUE_DEPTH   # outstanding DRAM misses of one host core (*assumption*)
    card_queue_depth: int = CARD_QUEUE_DEPTH   # outstanding row reads per card (*assumption*)
    dram_ladder: Sequence[float] | None = None   # fractions of the preset's DRAM to try
    whole_dimms: bool = True             # ladder steps are whole DIMMs (False: any size, for curves)
    shard: bool = False                  # spread a model too big for one server over several (a replica)
    pages_per_scm_read: dict[str, float] = field(default_factory=dict)   # from page layouts
    progress: bool = False

    def __post_init__(self) -> None:
        from sdm.cache.policies import RUNTIME_POLICIES as RUNTIME_CACHE_POLICIES   # what the store can run

        if self.dram_cache_policy not in RUNTIME_CACHE_POLICIES:
            raise InvalidInputError(f"unknown DRAM cache policy {self.dram_cache_policy!r}; the runtime has "
                                    f"{sorted(RUNTIME_CACHE_POLICIES)}")
        if not 0.0 <= self.dram_cache_fraction <= 1.0:
            raise InvalidInputError(f"dram_cache_fraction must be in [0, 1], got {self.dram_cache_fraction}")
        for n in ("dram_usable_fraction", "sram_usable_fraction", "lpddr_usable_fraction"):
            if not 0.0 < getattr(self, n) <= 1.0:
                raise InvalidInputError(f"{n} must be in (0, 1], got {getattr(self, n)}")


def _tier_from_device(name: str, dev, capacity_bytes: int, count: int, qd: int, cards: int = 0) -> TierSpec:
    return TierSpec(
        name=name, capacity_bytes=int(capacity_bytes), access_bytes=int(dev.access_bytes),
        latency_s=float(dev.latency_s(qd, dev.access_bytes)),
        iops=float(dev.iops(qd, dev.access_bytes)) * count,
        bandwidth_bytes_per_s=float(dev.bandwidth_bytes_per_s) * count, cards=cards, device=dev.name)


def tiers_from_hardware(hw, opts: PlanOptions, dram_bytes: int | None = None, shards: int = 1) -> tuple[TierSpec, ...]:
    """Tiers fastest first; the last is the backing tier (SCM, or DRAM on DRAM-only hardware).

    With `shards` > 1 the tiers are those of a replica spread over that many servers (capacity and
    device throughput add up); the estimator divides the replica's throughput back per server.
    """
    tiers = []
    cards = tuple(hw.cards)
    if cards:
        n = len(cards)
        c0 = cards[0]
        tiers.append(_tier_from_device("sram", c0.sram, n * c0.sram.capacity_bytes * opts.sram_usable_fraction * shards,
                                       n * shards, opts.card_queue_depth, n * shards))
        tiers.append(_tier_from_device("lpddr", c0.lpddr, n * c0.lpddr.capacity_bytes * opts.lpddr_usable_fraction * shards,
                                       n * shards, opts.card_queue_depth, n * shards))
    dram = int(hw.dram_capacity_bytes if dram_bytes is None else dram_bytes)
    usable = dram * opts.dram_usable_fraction
    pinned = usable * (1.0 - opts.dram_cache_fraction) if hw.scm is not None else usable
    tiers.append(_tier_from_device("dram", hw.host.dram, pinned * shards, shards, opts.dram_queue_depth))
    if hw.scm is not None:
        tiers.append(_tier_from_device("scm", hw.scm, hw.scm_capacity_bytes * shards, hw.scm_count * shards,
                                       opts.scm_queue_depth))
    return tuple(tiers)


@dataclass
class HardwareEnumerator:
    opts: PlanOptions

    def enumerate(self, hw, model_bytes: int) -> list[Candidate]:
        ladder = self.opts.dram_ladder
        if ladder is None:
            ladder = (1.0,) if self.opts.objective == "min-latency" else (1.0, 0.5, 0.25, 0.125)
        dimm = hw.host.dimm_capacity_bytes
        out, seen = [], set()
        for f in ladder:
            if not 0 < f <= 1:
                raise InvalidInputError(f"DRAM ladder fractions must be in (0, 1], got {f}")
            # the preset's DRAM as given; smaller fits in whole DIMMs (unless only sweeping a curve)
            dram = int(hw.dram_capacity_bytes * f)
            if f != 1.0 and self.opts.whole_dimms:
                dram = max(dimm, int(round(hw.dram_capacity_bytes * f / dimm)) * dimm)
            if dram in seen:
                continue
            seen.add(dram)
            shards = 1
            if hw.scm is not None and hw.scm_capacity_bytes < model_bytes and self.opts.shard:
                shards = math.ceil(model_bytes / hw.scm_capacity_bytes)
            elif hw.scm is None:
                fast = sum(t.capacity_bytes for t in tiers_from_hardware(hw, self.opts, dram))
                if fast < model_bytes:
                    if not self.opts.shard:
                        raise InfeasibleError(
                            f"capacity: hardware {hw.name!r} has no SCM and holds {fast / GIB:.1f} GiB of "
                            f"embedding rows ({self.opts.dram_usable_fraction:.0%} of {dram / GIB:.0f} GiB DRAM"
                            f"{' + card memory' if hw.cards else ''}); the model needs {model_bytes / GIB:.1f} GiB "
                            f"(short by {(model_bytes - fast) / GIB:.1f} GiB). Use SCM hardware, or `compare`, "
                            f"which shards DRAM-only models over several servers")
                    shards = math.ceil(model_bytes / fast)
            tiers = tiers_from_hardware(hw, self.opts, dram, shards)
            name = hw.name if len(ladder) == 1 else f"{hw.name}@{dram / 1e9:.0f}GB"
            parts = parts_from_hardware(hw, dram)
            cache = int(dram * self.opts.dram_usable_fraction * self.opts.dram_cache_fraction) if hw.scm is not None else 0
            out.append(Candidate(name, tiers, self.opts.dram_cache_fraction, self.opts.dram_cache_policy, hw,
                                 knobs={"parts": parts, "dram_bytes": dram, "shards": shards,
                                        "dram_cache_bytes": cache,
                                        "pages_per_scm_read": self.opts.pages_per_scm_read}))
        return out


def check_capacity(candidate: Candidate, model_bytes: int) -> None:
    backing = candidate.tiers[-1]
    if backing.name == "scm" and backing.capacity_bytes < model_bytes:
        raise InfeasibleError(
            f"capacity: SCM of {candidate.name!r} holds {backing.capacity_bytes / 1e9:.1f} GB, the model needs "
            f"{model_bytes / 1e9:.1f} GB (short by {(model_bytes - backing.capacity_bytes) / 1e9:.1f} GB); "
            f"add drives (scm_count) or larger ones")


@dataclass
class PlanResult:
    plan: Plan
    candidate: Candidate
    placement: Placement
    estimate: Estimate
    scored: list[tuple[Candidate, Placement, Estimate]]


def plan_model(tables: Sequence[TableSpec], hotness: Sequence[TableHotness], hw, opts: PlanOptions | None = None,
               model_name: str = "model") -> PlanResult:
    """Run the pipeline for one hardware spec; returns the chosen plan and every scored candidate."""
    opts = opts or PlanOptions()
    check_hotness(tables, hotness)            # before any candidate is enumerated or priced
    model_bytes = sum(t.size_bytes for t in tables)
    pol = make_policy(opts.policy)
    est = DefaultEstimator(opts.workload, opts.power, opts.cost)
    proposer = make_objective(opts.objective, opts.workload)
    candidates = HardwareEnumerator(opts).enumerate(hw, model_bytes)
    scored, errors = [], []
    bar = None
    if opts.progress and len(candidates) > 1:
        from tqdm import tqdm
        bar = tqdm(total=len(candidates), desc=f"plan {hw.name}", unit="config")
    for cand in candidates:
        try:
            check_capacity(cand, model_bytes)
        except InfeasibleError as exc:
            errors.append(str(exc))
            continue
        placement = pol.place(tables, hotness, cand.tiers)
        scored.append((cand, placement, est.estimate(cand, placement, tables, hotness)))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if not scored:
        raise InfeasibleError(errors[0] if len(errors) == 1 else "; ".join(errors))
    cand, placement, estimate = proposer.propose(scored)
    plan = build_plan(tables, hotness, cand, placement, estimate, opts, model_name)
    return PlanResult(plan, cand, placement, estimate, scored)


def split_dram_cache(tables: Sequence[TableSpec], hotness: Sequence[TableHotness], est: Estimate) -> dict[str, int]:
    """Each table's share of the whole DRAM cache budget, in bytes (the shares sum to the budget).

    A table gets its predicted occupancy of the one global cache, and the part of the budget the
    prediction leaves unused is spread in proportion to each table's lookups that reach past its
    pinned rows (SCM-bound): a store built from the plan gets the whole cache, and the tables most
    likely to read rows the profile did not see get most of the room for them.
    """
    budget = int(est.detail.get("dram_cache_bytes", 0) or 0)
    occ = np.array([float(est.detail.get("dram_cache_bytes_per_table", {}).get(t.name, 0.0)) for t in tables])
    if budget <= 0 or not tables:
        return {t.name: 0 for t in tables}
    occ = occ * min(1.0, budget / max(occ.sum(), 1e-300))            # never more than the budget
    rate = est.detail["per_table_hit_rate"]
    beyond = np.array([(rate[t.name]["dram_cache"] + rate[t.name]["scm"]) * h.total_lookups
                       for t, h in zip(tables, hotness)])
    weight = beyond if beyond.sum() > 0 else np.array([float(t.size_bytes) for t in tables])
    share = np.floor(occ + (budget - occ.sum()) * weight / weight.sum()).astype(np.int64)
    share[int(np.argmax(weight))] += budget - int(share.sum())        # rounding: shares sum to the budget
    return {t.name: int(b) for t, b in zip(tables, share)}


def build_plan(tables: Sequence[TableSpec], hotness: Sequence[TableHotness], cand: Candidate, placement: Placement,
               est: Estimate, opts: PlanOptions, model_name: str = "model") -> Plan:
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
        "hit_rate": est.hit_rate, "latency_s": est.latency_s, "p99_latency_s": est.p99_latency_s,
        "qps_per_server": est.qps_per_server, "watts": est.watts, "watts_idle": est.detail["watts_idle"],
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
    return Plan(model_name, hw_name, opts.objective, placement.policy, out, summary, tier_info)
