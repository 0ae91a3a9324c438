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
    def from_plan(cls, result) -> "ServerProfile":
        """From a `sdm.placement.planner.PlanResult`."""
        est, cand = result.estimate, result.candidate
        shards = int(cand.knobs.get("shards", 1))
        backing = cand.tiers[-1]
        if backing.name == "scm":
            capacity = backing.capacity_bytes / shards
        else:
            capacity = sum(t.capacity_bytes for t in cand.tiers) / shards
        limits = est.detail["qps_limits"]
        return cls(cand.name, capacity, est.qps_per_server, est.detail["watts_idle"], est.watts, est.capex_usd,
                   est.latency_s, est.p99_latency_s, min(limits, key=limits.get))


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


# ---- documented scenarios --------------------------------------------------------------------------
def scenario_rows(model_tb: float, qps_target: float, alpha: float = 1.05, compute_qps: float | None = None,
                  lookups_per_item: float = 100.0, hardware_names=("host-dram", "host-nand", "host-3dxp"),
                  tables: int = 20, dram_cache_fraction: float = 0.0, overrides: dict | None = None) -> list[dict]:
    """Plan one synthetic model on each hardware, size fleets, and report savings vs the first.

    The model: `tables` equal tables of 64-dim fp32 rows, `model_tb` TB in all; hotness: Zipf(alpha)
    expected counts (`TableHotness.zipf`: top rows exact, the rest in geometric bands). Requests
    of 165 items, `lookups_per_item` lookups per item; `compute_qps` defaults to the Workload's
    dense-compute limit per server.
    """
    from sdm.core.spec import TableSpec, row_bytes
    from sdm.hardware.server import hardware
    from sdm.placement.objectives import Workload
    from sdm.placement.planner import PlanOptions, plan_model
    from sdm.placement.types import TableHotness

    rows = int(model_tb * 1e12 / row_bytes(64, "fp32") / tables)
    specs = [TableSpec(f"t{i}", rows, 64, "fp32", lookups_per_item / tables) for i in range(tables)]
    lookups = 1e9                                     # per table; only ratios matter
    samples = int(lookups / (lookups_per_item / tables))
    hot = [TableHotness.zipf(s.name, rows, lookups, alpha, 4096, samples) for s in specs]
    wl = Workload() if compute_qps is None else Workload(compute_qps_per_server=compute_qps)
    out, base = [], None
    for name in hardware_names:
        hw = hardware(name, **(overrides or {}).get(name, {}))
        opts = PlanOptions(workload=wl, shard=True, dram_cache_fraction=dram_cache_fraction)
        res = plan_model(specs, hot, hw, opts, model_name=f"{model_tb}TB")
        fleet = size_fleet(ServerProfile.from_plan(res), sum(s.size_bytes for s in specs), qps_target, opts.cost)
        base = base or fleet
        sv = savings(base, fleet)
        out.append({"hardware": name, "servers": fleet.servers, "bound_by": fleet.bound_by,
                    "kW": fleet.watts / 1e3, "capex_k$": fleet.capex_usd / 1e3, "tco_k$": fleet.tco_usd / 1e3,
                    "p99_ms": fleet.p99_latency_s * 1e3, "scm_hit": res.estimate.hit_rate["scm"],
                    "power_saving": sv["power"], "tco_saving": sv["tco"]})
    return out


SCENARIOS = {
    # name: (kwargs, what it shows). Defaults: 20 tables of 64-dim fp32 rows, Zipf(1.05) hotness,
    # 165 items per request, 100 lookups per item, 1000 requests/s of dense compute per host.
    "A capacity-bound, light load": (dict(model_tb=2.0, qps_target=1000), "DRAM-only needs 4 servers for memory"),
    "B capacity and load balanced": (dict(model_tb=2.0, qps_target=3000), "SCM servers need more for QPS"),
    "C load-bound": (dict(model_tb=0.5, qps_target=20000), "fleet sized by compute: only per-server watts differ"),
    "D flatter hotness": (dict(model_tb=2.0, qps_target=3000, alpha=0.8), "more SCM reads: NAND IOPS bind"),
    "E 5 W DIMMs": (dict(model_tb=2.0, qps_target=3000, overrides={"host-dram": {"host.dimm_watts": 5.0},
                                                                   "host-nand": {"host.dimm_watts": 5.0},
                                                                   "host-3dxp": {"host.dimm_watts": 5.0}}),
                    "DIMM power is the weakest-sourced figure"),
    "F four NAND drives": (dict(model_tb=2.0, qps_target=3000, overrides={"host-nand": {"scm_count": 4}}),
                           "NAND IOPS scale with drives; the preset has one"),
    "G large model, light load": (dict(model_tb=8.0, qps_target=500),
                                  "memory sizes every fleet: NAND's cheap capacity wins"),
}


def _md(rows: list[dict]) -> str:
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(
            (f"{100 * v:+.0f}%" if k.endswith("saving") else f"{v:.3g}") if isinstance(v, float) else str(v)
            for k, v in r.items()) + " |")
    return "\n".join(out)


def qps_sweep(model_tb: float = 2.0, qps=(500, 1000, 2000, 3000, 4000, 6000, 8000), **kw) -> list[dict]:
    """Power saving of NAND and 3DXP vs DRAM-only as the load grows (capacity-bound -> load-bound)."""
    out = []
    for q in qps:
        rows = {r["hardware"]: r for r in scenario_rows(model_tb, q, **kw)}
        out.append({"qps": q, "dram_servers": rows["host-dram"]["servers"],
                    "nand_servers": rows["host-nand"]["servers"], "3dxp_servers": rows["host-3dxp"]["servers"],
                    "nand_power_saving": rows["host-nand"]["power_saving"],
                    "3dxp_power_saving": rows["host-3dxp"]["power_saving"],
                    "3dxp_tco_saving": rows["host-3dxp"]["tco_saving"]})
    return out


def main() -> None:
    for name, (kw, why) in SCENARIOS.items():
        print(f"\n**{name}**: {why} (`{kw}`)\n")
        print(_md(scenario_rows(**kw)))
    print("\n**QPS sweep, 2 TB model**\n")
    print(_md(qps_sweep()))


if __name__ == "__main__":
    main()
