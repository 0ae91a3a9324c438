"""Documented fleet scenarios: plan one synthetic model on each hardware preset, size the fleets and
report savings against DRAM-only (`python -m sdm.placement.scenarios`; docs/placement.md).

Kept apart from `sdm.placement.fleet` (the fleet model) because it runs the whole planner."""
from __future__ import annotations

from sdm.core.spec import TableSpec, row_bytes
from sdm.hardware.server import hardware
from sdm.placement.fleet import ServerProfile, savings, size_fleet
from sdm.placement.objectives import Workload
from sdm.placement.planner import PlanOptions, plan_model
from sdm.placement.types import TableHotness


def scenario_rows(model_tb: float, qps_target: float, alpha: float = 1.05, compute_qps: float | None = None,
                  lookups_per_item: float = 100.0, hardware_names=("host-dram", "host-nand", "host-3dxp"),
                  tables: int = 20, dram_cache_fraction: float = 0.0, overrides: dict | None = None) -> list[dict]:
    """Plan one synthetic model on each hardware, size fleets, and report savings vs the first.

    The model: `tables` equal tables of 64-dim fp32 rows, `model_tb` TB in all; hotness: Zipf(alpha)
    expected counts (`TableHotness.zipf`: top rows exact, the rest in geometric bands). Requests
    of 165 items, `lookups_per_item` lookups per item; `compute_qps` defaults to the Workload's
    dense-compute limit per server.
    """
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
