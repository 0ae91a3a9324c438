"""Plots of plans and comparisons (`sdm-plan plan --plot`, `compare --plot`): matplotlib, loaded on use."""
from __future__ import annotations

from typing import Sequence

def plot_plan(result, curve: list[tuple[float, float]], path: str, *, qps: float | None = None, cost=None) -> None:
    """`plot` of one `PlanResult`: its fleet for `qps` requests/s (default its own per-server QPS)
    and its hit rate over DRAM sizes (`curve`, sdm.placement.planner.dram_curve)."""
    from sdm.placement.cost import CostDefaults
    from sdm.placement.fleet import ServerProfile, size_fleet

    model_bytes = result.plan.summary["model_bytes"]
    fleet = size_fleet(ServerProfile.from_plan(result), model_bytes, qps or result.estimate.qps_per_server,
                       cost or CostDefaults())
    row = {"name": result.candidate.name, "p99_latency_s": result.estimate.p99_latency_s, "fleet": fleet.as_dict()}
    plot([row], {getattr(result.candidate.hardware, "name", result.candidate.name): curve}, path)


def plot(results: Sequence[dict], curves: dict[str, list[tuple[float, float]]], path: str) -> None:
    """Left: power vs p99 latency per configuration. Right: hit rate above SCM vs DRAM size."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in results:
        a.scatter(r["p99_latency_s"] * 1e3, r["fleet"]["watts"] / 1e3)
        a.annotate(r["name"], (r["p99_latency_s"] * 1e3, r["fleet"]["watts"] / 1e3), fontsize=8,
                   xytext=(4, 4), textcoords="offset points")
    a.set_xlabel("modelled p99 latency per request (ms)")
    a.set_ylabel("fleet power (kW)")
    a.set_title("power vs p99 latency")
    a.grid(alpha=0.3)
    for name, pts in curves.items():
        if pts:
            xs, ys = zip(*sorted(pts))
            b.plot(xs, [100 * y for y in ys], marker="o", label=name)
    b.set_xscale("log")
    b.set_xlabel("host DRAM (GB)")
    b.set_ylabel("lookups served above SCM (%)")
    b.set_title("hit rate vs DRAM size")
    b.grid(alpha=0.3)
    if curves:
        b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
