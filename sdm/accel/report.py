"""What a replay on the six-card platform says: latency breakdown, p50/p99 against the seeds' budget,
QPS at that budget, power per card and server. What moving one table elsewhere would change:
sdm.accel.what_if; the per-card view of a planner's plan: sdm.accel.plan_view.

Budget (seed 004, Table I, REFERENCE.md "Workload"): 100 ms per request of 150-180 items.
"""
from __future__ import annotations

import numpy as np

from sdm.accel.partitioner import HOST, Partition
from sdm.accel.timeline import Timeline
from sdm.core.text_table import text_table

BUDGET_S = 0.100          # REFERENCE.md "Workload": latency budget 100 ms ...
BUDGET_ITEMS = (150, 180)  # ... per 150-180 items (seed 004, Table I)


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else 0.0


def latency_breakdown(tl: Timeline) -> dict[str, float]:
    """Mean seconds per request of each stage, on the critical path's producer and after it."""
    R = np.arange(tl.num_requests)
    crit = tl.critical
    on_card = crit != HOST
    k = np.where(on_card, crit, 0)
    pick = lambda a: np.where(on_card, a[R, k], 0.0)  # noqa: E731 - the critical card's stage time
    return {
        "ids_to_card_s": float(pick(tl.card_in_s).mean()),
        "card_sram_s": float(pick(tl.card_sram_s).mean()),
        "card_lpddr_s": float(pick(tl.card_lpddr_s).mean()),
        "card_pooling_s": float(pick(tl.card_pool_s).mean()),
        "host_lookup_s": float(np.where(on_card, 0.0, tl.host_used_s).mean()),
        "partial_transfer_s": float(np.where(on_card, tl.card_out_s[R, k], tl.host_out_s).mean()),
        "link_queueing_s": float(tl.queue_s.mean()),
        "dense_s": float(tl.dense_s.mean()),
        "result_transfer_s": float(tl.result_s.mean()),
        "total_s": float(tl.latency_s.mean()),
    }


def card_power_watts(platform, util: np.ndarray) -> np.ndarray:
    """Per card: idle + (load - idle) x utilisation (the card's own figures, CardSpec); their sum is
    the "cards" part of the server model (sdm.placement.power) at the cards' mean utilisation."""
    idle = np.array([platform.card_idle_watts(k) for k in range(platform.num_cards)])
    load = np.array([platform.card_load_watts(k) for k in range(platform.num_cards)])
    return idle + (load - idle) * np.clip(util, 0.0, 1.0)


def server_power_watts(platform, card_util: np.ndarray, host_util: float, scm_util: float) -> dict:
    """Server power from the one server model (sdm.placement.power over the HardwareSpec): each part at
    its utilisation (CPU and DIMMs at the host's, SCM at its own, cards at theirs; platform and card
    carrier always on), the sum divided by the PSU efficiency: the wall figure."""
    from sdm.placement.power import parts_from_hardware, server_power

    pb = server_power(parts_from_hardware(platform.hardware))
    u = np.clip(np.asarray(card_util, np.float64), 0.0, 1.0)
    w = pb.components_at({"cpu": host_util, "dram": host_util, "scm": scm_util,
                          "cards": float(u.mean()) if u.size else 0.0})
    host_w = w.get("platform", 0.0) + w.get("cpu", 0.0) + w.get("dram", 0.0)
    return {"cards_watts": w.get("cards", 0.0), "host_watts": host_w, "scm_watts": w.get("scm", 0.0),
            "carrier_watts": w.get("carrier", 0.0), "psu_efficiency": pb.psu_efficiency,
            "server_watts": sum(w.values()) / pb.psu_efficiency, "components_watts": w,
            "note": "sdm.placement.power over the HardwareSpec, each part at its utilisation; at the wall"}


def build_report(tl: Timeline, platform, partition: Partition, *, budget_s: float = BUDGET_S,
                 moves: list[dict] | None = None) -> dict:
    """Everything `sdm-plan run` prints, as a JSON-ready dict."""
    lat = tl.latency_s
    p50, p99 = _pct(lat, 50), _pct(lat, 99)
    B = float(np.mean(tl.batch_sizes)) if tl.num_requests else 0.0
    bottleneck, busy = tl.bottleneck()
    qps_max = tl.max_qps()
    meets = p99 <= budget_s
    qps = qps_max if meets else 0.0
    util = tl.utilisation(qps_max if meets else None)
    cards_w = card_power_watts(platform, util)
    host_util = min(1.0, float(tl.host_used_s.mean()) * (qps if meets else qps_max) / max(tl.host_threads, 1))
    scm_rate = float((tl.host_scm_s > 0).mean())  # share of requests that touch SCM
    scm_util = min(1.0, float(tl.host_scm_s.mean()) * (qps if meets else qps_max))
    power = server_power_watts(platform, util, host_util, scm_util)
    items_note = ("" if BUDGET_ITEMS[0] <= B <= BUDGET_ITEMS[1]
                  else f"requests hold {B:.0f} items; the budget is stated for {BUDGET_ITEMS[0]}-{BUDGET_ITEMS[1]}")
    card_rows = []
    busy_k = tl.card_busy_s().mean(axis=0)
    for k in range(tl.num_cards):
        sh = [s for s in partition.shards if s.location == k]
        card_rows.append({
            "card": k, "shards": len(sh), "tables": sorted({s.table for s in sh}),
            "sram_bytes": int(sum(s.size_bytes for s in sh if s.tier == "sram")),
            "lpddr_bytes": int(sum(s.size_bytes for s in sh if s.tier == "lpddr")),
            "lookups_per_request": float(tl.card_lookups[:, k].mean()),
            "busy_s_per_request": float(busy_k[k]),
            "sram_s": float(tl.card_sram_s[:, k].mean()), "lpddr_s": float(tl.card_lpddr_s[:, k].mean()),
            "pooling_s": float(tl.card_pool_s[:, k].mean()),
            "dense_s": float(tl.dense_s.mean()) if k == tl.dense_on else 0.0,
            "pcie_s": float(tl.link_busy_s()[:, k].mean()),
            "utilisation": float(util[k]), "watts": float(cards_w[k]),
            "pcie_utilisation": float(min(1.0, tl.link_busy_s()[:, k].mean() * (qps if meets else qps_max))),
        })
    host = {
        "shards": sum(1 for s in partition.shards if not s.on_card),
        "bytes": partition.host_bytes(),
        "lookups_per_request": float(tl.host_lookups.mean()),
        "modelled_s": float(tl.host_modelled_s.mean()), "dram_s": float(tl.host_dram_s.mean()),
        "scm_s": float(tl.host_scm_s.mean()), "share_of_requests_reading_scm": scm_rate,
        "measured_s": None if tl.host_measured_s is None else float(tl.host_measured_s.mean()),
        "measured_p99_s": None if tl.host_measured_s is None else _pct(tl.host_measured_s, 99),
        "used_on_critical_path": tl.meta.get("host_time", "modelled"),
    }
    return {
        "platform": platform.name, "requests": tl.num_requests, "items_per_request": B,
        "command_batching": tl.batching, "pcie_commands_per_request": int(tl.commands[0]) if tl.num_requests else 0,
        "latency": {"p50_s": p50, "p99_s": p99, "mean_s": float(lat.mean()) if lat.size else 0.0,
                    "budget_s": budget_s, "budget_items": list(BUDGET_ITEMS), "meets_budget": bool(meets),
                    "p99_over_budget_s": max(0.0, p99 - budget_s), "note": items_note},
        "breakdown_s": latency_breakdown(tl),
        "critical_path_share": tl.critical_share(),
        "throughput": {"bottleneck": bottleneck, "bottleneck_busy_s": busy, "max_qps": qps_max,
                       "qps_at_budget": qps, "items_per_s_at_budget": qps * B},
        "load_imbalance": tl.load_imbalance(),
        "cards": card_rows, "host": host,
        "power": {**power, "at_qps": qps if meets else qps_max},
        "moves": moves or [],
    }


# ---- text ----------------------------------------------------------------------------------------
def _ms(x: float | None) -> str:
    """Seconds in the unit that keeps three significant figures readable (us below 1 ms)."""
    if x is None:
        return "-"
    return f"{x * 1e6:.1f} us" if abs(x) < 1e-3 else f"{x * 1e3:.3f} ms"


def _mb(x: int) -> str:
    """Bytes as B / KB / MB / GB (powers of 1000), so a few KB in SRAM do not print as 0.0 MB."""
    from sdm.placement.report import nbytes
    return nbytes(x)


def format_report(rep: dict) -> str:
    L = rep["latency"]
    T = rep["throughput"]
    P = rep["power"]
    lines = [
        f"platform {rep['platform']}: {rep['requests']} requests of {rep['items_per_request']:.0f} items, "
        f"command batching {'on' if rep['command_batching'] else 'off'} "
        f"({rep['pcie_commands_per_request']} PCIe commands per request)",
        f"latency p50 {_ms(L['p50_s'])}  p99 {_ms(L['p99_s'])}  budget {_ms(L['budget_s'])} per "
        f"{L['budget_items'][0]}-{L['budget_items'][1]} items: {'MET' if L['meets_budget'] else 'MISSED by ' + _ms(L['p99_over_budget_s'])}"
        + (f"  ({L['note']})" if L["note"] else ""),
        f"throughput: max {T['max_qps']:.0f} requests/s (bottleneck {T['bottleneck']}, "
        f"{_ms(T['bottleneck_busy_s'])} per request); at budget {T['qps_at_budget']:.0f} requests/s = "
        f"{T['items_per_s_at_budget']:.0f} items/s",
        f"load imbalance (max/mean card busy) {rep['load_imbalance']:.2f}; critical path through "
        + ", ".join(f"{k} {v:.0%}" for k, v in sorted(rep["critical_path_share"].items())),
        "", "latency breakdown (mean per request, critical path):",
        text_table(["stage", "time"], [[k[:-2], _ms(v)] for k, v in rep["breakdown_s"].items()], align="lr",
                   rule=False),
        "",
        text_table(["card", "tables", "SRAM", "LPDDR", "lookups", "SRAM t", "LPDDR t", "pool t", "dense t", "PCIe t",
                    "util", "watts"],
                   [[f"card{c['card']}", len(c["tables"]), _mb(c["sram_bytes"]), _mb(c["lpddr_bytes"]),
                     f"{c['lookups_per_request']:.0f}", _ms(c["sram_s"]), _ms(c["lpddr_s"]), _ms(c["pooling_s"]),
                     _ms(c["dense_s"]), _ms(c["pcie_s"]), f"{c['utilisation']:.0%}", f"{c['watts']:.1f}"]
                    for c in rep["cards"]], align="l" + "r" * 11),
    ]
    h = rep["host"]
    lines += [f"host: {h['shards']} shards, {_mb(h['bytes'])}, {h['lookups_per_request']:.0f} lookups/request; "
              f"modelled {_ms(h['modelled_s'])} (DRAM {_ms(h['dram_s'])}, SCM {_ms(h['scm_s'])}), "
              f"measured {_ms(h['measured_s'])} (p99 {_ms(h['measured_p99_s'])}); critical path uses "
              f"{h['used_on_critical_path']}",
              f"power at {P['at_qps']:.0f} requests/s: cards {P['cards_watts']:.1f} W, host {P['host_watts']:.1f} W, "
              f"SCM {P['scm_watts']:.1f} W, carrier {P['carrier_watts']:.1f} W, server at the wall {P['server_watts']:.1f} W"]
    if rep["moves"]:
        lines += ["", "what moving one table changes (modelled):",
                  text_table(["table", "now", "to", "p99", "d p99", "max QPS", "d QPS"],
                             [[m["table"], m["now"][:27], m["to"][:25], _ms(m["p99_s"]),
                               ("+" if m["delta_p99_s"] >= 0 else "-") + _ms(abs(m["delta_p99_s"])),
                               f"{m['max_qps']:.0f}", f"{m['delta_qps']:+.0f}"] for m in rep["moves"]],
                             align="lllrrrr")]
    return "\n".join(lines)


def plot_utilisation(rep: dict, path: str) -> None:
    """Per card at the reported operating point: compute utilisation split by stage (left) and PCIe
    link utilisation (right). Axes scale to the data, since a card idling at 1% is the usual answer."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cards = rep["cards"]
    x = np.arange(len(cards))
    busy = np.array([c["busy_s_per_request"] for c in cards])
    scale = np.divide([c["utilisation"] for c in cards], busy, out=np.zeros(len(cards)), where=busy > 0)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    bottom = np.zeros(len(cards))
    for key, label in (("sram_s", "SRAM reads"), ("lpddr_s", "LPDDR reads"), ("pooling_s", "pooling"),
                       ("dense_s", "dense MLPs")):
        v = np.array([c[key] for c in cards]) * scale * 100
        ax.bar(x, v, bottom=bottom, label=label)
        bottom += v
    ax.set_xticks(x, [f"card{c['card']}" for c in cards])
    ax.set_ylabel("compute / memory utilisation (%)")
    ax.set_ylim(0, max(bottom.max() * 1.25, 1e-3))
    ax.legend(fontsize=8)
    ax.set_title(f"cards (load imbalance {rep['load_imbalance']:.2f})", fontsize=9)
    link = np.array([c.get("pcie_utilisation", 0.0) for c in cards]) * 100
    ax2.bar(x, link, color="tab:gray")
    ax2.set_xticks(x, [f"card{c['card']}" for c in cards])
    ax2.set_ylabel("PCIe link utilisation (%)")
    ax2.set_ylim(0, max(link.max() * 1.25, 1e-3))
    ax2.set_title(f"links (bottleneck: {rep['throughput']['bottleneck']})", fontsize=9)
    fig.suptitle(f"{rep['platform']} at {rep['power']['at_qps']:.0f} requests/s of "
                 f"{rep['items_per_request']:.0f} items", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
