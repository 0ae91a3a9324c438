"""Fleet sizing: servers needed for a model size and a QPS target; total power and cost; savings.

A configuration is summarised per server (`ServerProfile`: bytes of model it can hold, requests/s
it sustains within its limits, idle/load watts, capex). The fleet needs
    servers = max(ceil(model_bytes / capacity_bytes), ceil(qps_target / qps))
i.e. enough memory for one copy of the model (a DRAM-only model bigger than one server is sharded
over several, each serving its shard of every request) and enough throughput for the load.
Assumption, stated: sharding costs no throughput (network and fan-out overheads are not modelled);
this favours the DRAM-only baseline, so savings are if anything understated.
Fleet power is servers x (idle + u (load - idle)) with u = qps_target / (servers x qps).

`python -m sdm.placement.fleet` prints the documented scenarios (docs/placement.md).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from sdm.core.errors import InvalidInputError
from sdm.placement.cost import CostDefaults, energy_usd_per_year


@dataclass(frozen=True)
class ServerProfile:
    name: str
    capacity_bytes: float         # model bytes one server holds (SCM, or usable DRAM + card memory)
    qps: float                    # requests/s one server sustains (tier and compute limits)
    idle_watts: float
    load_watts: float
    capex_usd: float
    latency_s: float = 0.0
    p99_latency_s: float = 0.0
    bottleneck: str = ""

    @classmethod
    def from_plan(cls, result, headline: dict | None = None) -> "ServerProfile":
        """From a `sdm.placement.planner.PlanResult`; `headline` (latency_s, p99_latency_s,
        qps_per_server, qps_limits, watts, watts_idle), when given, replaces the tier model's figures."""
        est, cand = result.estimate, result.candidate
        shards = int(cand.knobs.get("shards", 1))
        backing = cand.tiers[-1]
        if backing.name == "scm":
            capacity = backing.capacity_bytes / shards
        else:
            capacity = sum(t.capacity_bytes for t in cand.tiers) / shards
        h = headline or {"latency_s": est.latency_s, "p99_latency_s": est.p99_latency_s,
                         "qps_per_server": est.qps_per_server, "qps_limits": est.detail["qps_limits"],
                         "watts": est.watts, "watts_idle": est.detail["watts_idle"]}
        limits = h["qps_limits"]
        return cls(cand.name, capacity, h["qps_per_server"], h["watts_idle"], h["watts"], est.capex_usd,
                   h["latency_s"], h["p99_latency_s"], min(limits, key=limits.get))


@dataclass(frozen=True)
class FleetResult:
    name: str
    servers: int
    servers_for_capacity: int
    servers_for_qps: int
    utilization: float
    watts: float
    capex_usd: float
    energy_usd_per_year: float
    tco_usd: float
    bound_by: str                 # "capacity" or "qps (<bottleneck tier>)"
    latency_s: float
    p99_latency_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def size_fleet(server: ServerProfile, model_bytes: float, qps_target: float,
               cost: CostDefaults = CostDefaults()) -> FleetResult:
    if model_bytes <= 0 or qps_target <= 0:
        raise InvalidInputError(f"fleet sizing needs model_bytes > 0 and qps_target > 0, got {model_bytes}, {qps_target}")
    if server.capacity_bytes <= 0 or server.qps <= 0:
        raise InvalidInputError(f"configuration {server.name!r} holds no model bytes or serves no requests")
    by_cap = math.ceil(model_bytes / server.capacity_bytes)
    by_qps = math.ceil(qps_target / server.qps)
    n = max(by_cap, by_qps)
    u = qps_target / (n * server.qps)
    watts = n * (server.idle_watts + u * (server.load_watts - server.idle_watts))
    capex = n * server.capex_usd
    energy = energy_usd_per_year(watts, cost)
    bound = "capacity" if by_cap >= by_qps else f"qps ({server.bottleneck})"
    return FleetResult(server.name, n, by_cap, by_qps, u, watts, capex, energy, capex + cost.years * energy, bound,
                       server.latency_s, server.p99_latency_s)


def savings(baseline: FleetResult, other: FleetResult) -> dict[str, float]:
    """Fractions saved vs the baseline (positive = other is cheaper)."""
    def frac(a, b):
        return (a - b) / a if a else 0.0
    return {"power": frac(baseline.watts, other.watts), "capex": frac(baseline.capex_usd, other.capex_usd),
            "tco": frac(baseline.tco_usd, other.tco_usd), "servers": frac(baseline.servers, other.servers)}
