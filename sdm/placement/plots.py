"""Plots of plans and comparisons (`sdm-plan plan --plot`, `compare --plot`): matplotlib, loaded on use."""
from __future__ import annotations

from typing import Sequence

def plot_plan(result, curve: list[tuple[float, float]], path: str, *, qps: float | None = None, cost=None) -> None:
    """`plot` of one `PlanResult`: its fleet for `qps` requests/s (default its own per-server QPS)
    and its hit rate over DRAM sizes (`curve`, sdm.placement.planner.dram_curve)."""
    from sdm.placement.cost import CostDefaults
    from sdm.placement.fleet import ServerProfile, size_fleet

    s = result.plan.summary                     # the plan's one answer (timeline-reconciled on cards)
    server = ServerProfile.from_plan(result, s if "tier_model" in s else None)
    fleet = size_fleet(server, s["model_bytes"], qps or server.qps, cost or CostDefaults())
    row = {"name": result.candidate.name, "hardware": getattr(result.candidate.hardware, "name", result.candidate.name),
           "p99_latency_s": server.p99_latency_s, "fleet": fleet.as_dict()}
    plot([row], {getattr(result.candidate.hardware, "name", result.candidate.name): curve}, path)


def plot(results: Sequence[dict], curves: dict[str, list[tuple[float, float]]], path: str) -> None:
    """Left: power vs p99 latency per configuration. Right: hit rate above SCM vs DRAM size. One
    colour per configuration in both panels."""
    import matplotlib.pyplot as plt

    fig = figure(results, curves)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def config_colors(names: Sequence[str]) -> dict[str, str]:
    """A fixed colour per configuration name (in first-seen order), shared by every panel."""
    palette = [f"C{i}" for i in range(10)]
    out: dict[str, str] = {}
    for n in names:
        out.setdefault(n, palette[len(out) % len(palette)])
    return out


def figure(results: Sequence[dict], curves: dict[str, list[tuple[float, float]]]):
    """The figure `plot` saves (returned open, for tests)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    key = lambda r: r.get("hardware", r["name"])  # noqa: E731 - curves are keyed by hardware name
    colors = config_colors([key(r) for r in results] + list(curves))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in results:
        x, y = r["p99_latency_s"] * 1e3, r["fleet"]["watts"] / 1e3
        a.scatter([x], [y], color=colors[key(r)], label=r["name"], zorder=3)
        a.annotate(r["name"], (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    xs_all = [r["p99_latency_s"] * 1e3 for r in results]
    if xs_all and min(xs_all) > 0 and max(xs_all) / min(xs_all) > 20:     # spans decades: log axis
        a.set_xscale("log")
    a.set_xlabel("modelled p99 latency per request (ms)")
    a.set_ylabel("fleet power at the wall (kW)")
    a.set_ylim(bottom=0)
    a.set_title("power vs p99 latency")
    a.grid(alpha=0.3)
    for name, pts in curves.items():
        if pts:
            xs, ys = zip(*sorted(pts))
            b.plot(xs, [100 * min(max(y, 0.0), 1.0) for y in ys], marker="o", label=name, color=colors[name])
    b.set_xscale("log")
    # plain numbers at 1-2-5 steps, no minor labels: the default minor labels overprint each other
    b.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    b.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    b.xaxis.set_minor_formatter(NullFormatter())
    b.set_ylim(0, 100)                                   # a share of lookups: 0-100%, never 104%
    b.set_xlabel("host DRAM (GB)")
    b.set_ylabel("lookups served above SCM (%)")
    b.set_title("hit rate vs DRAM size")
    b.grid(alpha=0.3)
    if curves:
        b.legend(fontsize=8)
    fig.tight_layout()
    return fig
