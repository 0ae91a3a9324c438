"""Where a fleet's savings against a baseline come from: watts and capex per server part (sockets,
DIMMs, SSDs, cards, carrier, platform) over the whole fleet, the servers each needs and what sizes
it (memory or throughput), and where the power saving falls against the SDM paper's 5-29% band
(docs/placement.md "Scenarios" says which assumptions move it).

A part's fleet draw is servers x (idle + u x (draw at the server's max QPS - idle)) / PSU efficiency,
u the fleet's utilisation: the same formula as the fleet total (sdm.placement.fleet), so the parts
sum to it exactly.
"""
from __future__ import annotations

# Ardestani et al., "Supporting Massive DLRM Inference Through Software Defined Memory" (the SDM
# paper, 2021): 5-29% power saved against DRAM-only serving; docs/placement.md "Scenarios".
SEEDS_BAND = (0.05, 0.29)


def fleet_parts(summary: dict, fleet: dict) -> dict[str, dict[str, float]]:
    """Per part of one configuration: fleet watts (at the wall) and fleet capex."""
    comps = summary["watts_components"]                    # part -> (idle W, load W) before the PSU
    at_qps = summary.get("watts_components_at_qps") or {k: v[1] for k, v in comps.items()}
    psu = float(summary.get("psu_efficiency", 1.0))
    n, u = fleet["servers"], fleet["utilization"]
    out = {}
    for k in sorted(set(comps) | set(summary["capex_components"])):
        idle, _load = comps.get(k, (0.0, 0.0))
        w = n * (idle + u * (float(at_qps.get(k, _load)) - idle)) / psu
        out[k] = {"fleet_watts": w, "fleet_capex_usd": n * float(summary["capex_components"].get(k, 0.0))}
    return out


def breakdown(base_summary: dict, base_fleet: dict, summary: dict, fleet: dict) -> dict:
    """Per part: baseline and this fleet's watts and capex, and what is saved (positive = cheaper)."""
    b, t = fleet_parts(base_summary, base_fleet), fleet_parts(summary, fleet)
    zero = {"fleet_watts": 0.0, "fleet_capex_usd": 0.0}
    parts = {k: {"base_watts": b.get(k, zero)["fleet_watts"], "watts": t.get(k, zero)["fleet_watts"],
                 "base_capex_usd": b.get(k, zero)["fleet_capex_usd"], "capex_usd": t.get(k, zero)["fleet_capex_usd"]}
             for k in sorted(set(b) | set(t))}
    for p in parts.values():
        p["saved_watts"] = p["base_watts"] - p["watts"]
        p["saved_capex_usd"] = p["base_capex_usd"] - p["capex_usd"]
    return {"parts": parts, "servers": {"base": base_fleet["servers"], "this": fleet["servers"]},
            "sized_by": {"base": sized_by(base_fleet), "this": sized_by(fleet)}}


def sized_by(fleet: dict) -> str:
    """What sets the server count: "memory" (one copy of the model) or "throughput" (the QPS target)."""
    return "memory" if fleet["servers_for_capacity"] >= fleet["servers_for_qps"] else "throughput"


def band_position(power_saving: float) -> str:
    lo, hi = SEEDS_BAND
    where = ("below" if power_saving < lo else "above" if power_saving > hi else "inside")
    return f"{where} the SDM paper's {lo:.0%}-{hi:.0%} band"
