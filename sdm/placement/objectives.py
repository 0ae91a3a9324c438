"""Estimate a placement (hit rates, latency, QPS, watts, $) and pick one by objective.

Hit rates: pinned rows by the profile's counts; the DRAM cache in front of SCM by
sdm.placement.cache_model (Che's approximation).

Latency per request (`Workload.items_per_request` samples, default 165: the seeds' 150-180 items):
each tier serves its share of the request's lookups with the tier's queue-depth model; tiers are
charged one after another (a conservative choice: they could overlap). p99 treats the number of SCM
reads per request as Poisson. QPS per server is the lowest of the tier throughput limits and the
host's compute limit.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sdm.core.checks import real_number, whole_number
from sdm.core.errors import InfeasibleError, InvalidInputError
from sdm.core.spec import TableSpec
from sdm.placement.cost import CostDefaults, energy_usd_per_year, server_capex
from sdm.placement.assignment import Placement
from sdm.placement.cache_model import (  # noqa: F401  (che_lru_hits: public here too)
    che_lru_hits, residual_groups, static_cache_hits)
from sdm.placement.power import PowerDefaults, ServerParts, server_power
from sdm.placement.report import ms as fmt_ms   # unit-aware: "50.0 us", "12.30 ms"
from sdm.placement.types import Candidate, Estimate, TableHotness


@dataclass(frozen=True)
class Workload:
    items_per_request: int = 165           # REFERENCE Workload (seed 004 Table I): 150-180 items per request
    latency_budget_s: float = 0.100        # REFERENCE Workload: 100 ms per request
    qps_target: float | None = None        # requests/s the fleet must serve (fleet sizing)
    compute_qps_per_server: float = 1000.0  # *unconfirmed* assumption: dense compute limit per host
    budget_on: str = "p99"                 # "p99" or "mean" latency is held to the budget
    cache_steps: str = "batch"             # DRAM-cache model: "batch" (the runtime looks up a request
                                           # at once) or "lookup" (each lookup a step, as sdm.cachesim)
    sources: dict = field(default_factory=lambda: {
        "items_per_request": "REFERENCE Workload (seed 004 Table I): 100 ms per 150-180 items",
        "latency_budget_s": "REFERENCE Workload (seed 004 Table I)",
        "compute_qps_per_server": "*unconfirmed* assumption; override with a measured figure",
    })

    def __post_init__(self) -> None:
        whole_number(self.items_per_request, "items per request", minimum=1)
        for name in ("latency_budget_s", "compute_qps_per_server") + (("qps_target",) if self.qps_target is not None else ()):
            real_number(getattr(self, name), name.replace("_", " "), above=0)
        if self.budget_on not in ("p99", "mean"):
            raise InvalidInputError(f"budget_on must be 'p99' or 'mean', got {self.budget_on!r}")


def tier_time_s(tier, n_reads: float, row_bytes: int) -> tuple[float, float]:
    """(mean time per request, busy time per request) of a tier read `n_reads` times per request.

    A request reads the tier Poisson(n_reads) times and pays its latency only when it reads it at
    all: a tier with 1e-14 reads per request costs ~nothing, not one whole read."""
    if n_reads <= 0:
        return 0.0, 0.0
    busy_s = tier.read_time_s(n_reads, row_bytes) - tier.latency_s      # transfer time, no latency
    return -math.expm1(-n_reads) * tier.latency_s + busy_s, busy_s


def poisson_quantile(mean: float, q: float) -> float:
    """The q-quantile of Poisson(mean): exact below a mean of 50, the normal approximation above."""
    if mean <= 0:
        return 0.0
    if mean >= 50:
        return mean + NormalDist().inv_cdf(q) * math.sqrt(mean)
    p = cum = math.exp(-mean)
    k = 0
    while cum < q:
        k += 1
        p *= mean / k
        cum += p
    return float(k)


# ---- estimator ------------------------------------------------------------------------------------
@dataclass
class DefaultEstimator:
    workload: Workload = Workload()
    power: PowerDefaults = PowerDefaults()
    cost: CostDefaults = CostDefaults()

    def estimate(self, candidate: Candidate, placement: Placement, tables: Sequence[TableSpec],
                 hotness: Sequence[TableHotness]) -> Estimate:
        tiers = {t.name: t for t in candidate.tiers}
        nt = len(tables)
        total = np.array([h.total_lookups for h in hotness])
        share = {name: np.array([placement.tables[t.name].lookups_by_tier.get(name, 0.0) for t in tables])
                 for name in ("sram", "lpddr", "dram", "scm")}
        # DRAM cache in front of SCM
        cache_bytes = int(candidate.knobs.get("dram_cache_bytes", 0))
        cache_hits, cache_occ = np.zeros(nt), np.zeros(nt)
        if cache_bytes > 0 and placement.backing_tier == "scm":
            from sdm.cache.dram_cache import index_bytes_per_row   # here: it brings torch (slow --help)

            tix, k, m, b, ex = residual_groups(tables, hotness, placement)
            # a cached row costs the runtime its index entry too (sdm.cache.dram_cache): the
            # budget buys fewer rows than bytes / row_bytes (~7% fewer for 128-byte rows)
            b = b + np.array([index_bytes_per_row(t.num_rows) for t in tables], np.float64)[tix]
            if candidate.dram_cache_policy == "static":
                hits, occ = static_cache_hits(k, m, b, cache_bytes)
            else:
                samples = max((h.num_samples for h in hotness), default=0)
                batches = samples / self.workload.items_per_request if self.workload.cache_steps == "batch" else None
                hits, occ = che_lru_hits(k, m, b, cache_bytes, batches or None, ex)
            cache_hits = np.bincount(tix, weights=hits, minlength=nt)
            cache_occ = np.bincount(tix, weights=occ, minlength=nt)
        scm_reads = np.maximum(share["scm"] - cache_hits, 0.0)
        grand = max(total.sum(), 1e-300)
        hit_rate = {name: float(share[name].sum() / grand) for name in ("sram", "lpddr", "dram")}
        hit_rate["dram_cache"] = float(cache_hits.sum() / grand)
        hit_rate["scm"] = float(scm_reads.sum() / grand)
        per_table_rate = {
            t.name: {**{n: float(share[n][i] / total[i]) if total[i] else 0.0 for n in ("sram", "lpddr", "dram")},
                     "dram_cache": float(cache_hits[i] / total[i]) if total[i] else 0.0,
                     "scm": float(scm_reads[i] / total[i]) if total[i] else 0.0}
            for i, t in enumerate(tables)}

        # lookups per request per table, then per tier
        pooling = np.array([h.total_lookups / h.num_samples if h.num_samples else t.pooling_factor
                            for t, h in zip(tables, hotness)])
        per_req = self.workload.items_per_request * pooling
        frac = lambda x: np.divide(x, total, out=np.zeros(nt), where=total > 0)  # noqa: E731
        rb = np.array([t.row_bytes for t in tables], dtype=np.float64)
        pages_per_read = np.array([float(candidate.knobs.get("pages_per_scm_read", {}).get(t.name, 1.0))
                                   for t in tables])
        reads = {n: per_req * frac(share[n]) for n in ("sram", "lpddr", "dram")}
        reads["dram"] = reads["dram"] + per_req * frac(cache_hits)
        reads["scm"] = per_req * frac(scm_reads) * pages_per_read
        time_s, qps_limits, p99_extra = {}, {}, 0.0
        for name, n in reads.items():
            n_tot = float(n.sum())
            if n_tot <= 0:
                continue
            tier = tiers.get(name)
            if tier is None:
                raise InfeasibleError(f"placement sends {n_tot:.0f} reads per request to tier {name!r}, "
                                      f"which hardware {candidate.name!r} does not have")
            mean_rb = int(max(1, round(float((n * rb).sum() / n_tot))))
            time_s[name], busy_s = tier_time_s(tier, n_tot, mean_rb)
            qps_limits[name] = 1.0 / max(busy_s, 1e-12)
            if name == "scm":
                n99 = poisson_quantile(n_tot, 0.99)           # p99 of SCM reads per request
                p99_extra = (tier.read_time_s(n99, mean_rb) if n99 > 0 else 0.0) - time_s[name]
        latency = sum(time_s.values())
        shards = int(candidate.knobs.get("shards", 1))       # a replica over `shards` servers
        qps_limits = {k: v / shards for k, v in qps_limits.items()}
        qps_limits["compute"] = self.workload.compute_qps_per_server
        qps = min(qps_limits.values())

        parts: ServerParts = candidate.knobs["parts"]
        pw = server_power(parts, self.power)
        capex = server_capex(parts, self.cost)
        return Estimate(
            hit_rate=hit_rate, latency_s=latency, p99_latency_s=latency + p99_extra,
            qps_per_server=qps, watts=pw.load_watts, capex_usd=capex.capex_usd,
            detail={
                "per_table_hit_rate": per_table_rate,
                "reads_per_request": {k: float(v.sum()) for k, v in reads.items()},
                "tier_time_s": time_s, "qps_limits": qps_limits,
                "watts_idle": pw.idle_watts, "watts_components": pw.components,
                "capex_components": capex.components_usd,
                "energy_usd_per_year": energy_usd_per_year(pw.load_watts, self.cost),
                "dram_cache_bytes": cache_bytes,
                "dram_cache_bytes_per_table": {t.name: float(cache_occ[i]) for i, t in enumerate(tables)},
            })


# ---- objectives: which scored candidate to keep ---------------------------------------------------
def _budget_value(est: Estimate, workload: Workload) -> float:
    return est.p99_latency_s if workload.budget_on == "p99" else est.latency_s


def budget_missed(name: str, value_s: float, n_scored: int, workload: Workload) -> InfeasibleError:
    """The error for a budget no candidate meets, with the fastest one's figure."""
    budget = workload.latency_budget_s
    return InfeasibleError(
        f"latency budget not met: {workload.budget_on} latency per request of {workload.items_per_request} "
        f"items must be <= {fmt_ms(budget)}; the fastest of {n_scored} candidate(s), {name!r}, needs "
        f"{fmt_ms(value_s)} (over by {fmt_ms(value_s - budget)})")


@dataclass
class MinLatency:
    """Lowest modelled latency; ties go to lower power."""

    workload: Workload = Workload()
    name: str = "min-latency"

    def select(self, scored):
        if not scored:
            raise InfeasibleError("no candidate configuration to choose from")
        # the fastest, budget met or not: the plan says MISSED and by how much; `sdm-plan plan`
        # refuses to write such a plan (sdm.cli.plan_cmd), library callers read its summary
        return min(scored, key=lambda s: (_budget_value(s[2], self.workload), s[2].watts))


@dataclass
class MinWithinBudget:
    """Lowest power (or capex) whose latency meets the budget; says by how much it fails if none does."""

    workload: Workload = Workload()
    metric: str = "power"                  # "power" | "cost"
    name: str = "min-power"

    def value(self, est: Estimate) -> float:
        per_server = est.watts if self.metric == "power" else est.capex_usd
        if self.workload.qps_target:       # fleet view: servers needed for the QPS target
            return per_server * math.ceil(self.workload.qps_target / max(est.qps_per_server, 1e-12))
        return per_server

    def select(self, scored):
        if not scored:
            raise InfeasibleError("no candidate configuration to choose from")
        budget = self.workload.latency_budget_s
        ok = [s for s in scored if _budget_value(s[2], self.workload) <= budget]
        if not ok:
            best = min(scored, key=lambda s: _budget_value(s[2], self.workload))
            raise budget_missed(best[0].name, _budget_value(best[2], self.workload), len(scored), self.workload)
        return min(ok, key=lambda s: (self.value(s[2]), _budget_value(s[2], self.workload)))


def objective(name: str, workload: Workload):
    if name == "min-latency":
        return MinLatency(workload)
    if name in ("min-power", "min-cost"):
        return MinWithinBudget(workload, metric=name.split("-")[1], name=name)
    raise InvalidInputError(f"unknown objective {name!r}; choose min-latency, min-power or min-cost")
