"""`sdm-plan compare`: one model and trace on several hardware configurations, side by side.

    sdm-plan compare --model model.toml --trace t.npz --hardware host-dram,host-nand,host-3dxp --qps 5000

Each configuration is planned (DRAM-only ones are sharded over as many servers as the model needs),
then a fleet is sized for the model and the QPS target; savings are against the first configuration
(or the one named by --baseline). Configurations with accelerator cards (yosemite-v2-*) also show
their plan per card and, given a trace, the modelled six-card timeline (sdm.accel.plan_view.plan_summary).
"""
from __future__ import annotations

import argparse
import json

from sdm.cli.steps import step
from sdm.core.errors import InfeasibleError, InvalidInputError
from sdm.cli.plan_cmd import add_common, load_hardware, options_from_args, split_sets


COMPARE_EXAMPLES = """examples:
  sdm-plan compare --model 200000-50000-8000:32 --trace t.npz --qps 3000
  sdm-plan compare --model 200000-50000-8000:32 --trace t.npz --hardware host-dram,host-3dxp,yosemite-v2-3dxp \\
      --baseline host-dram --json"""


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="latency, QPS, watts, $ and savings of several hardware configs",
                              description="Plan one model on several hardware configurations and compare fleets "
                                          "(servers, power, capex, TCO) and their savings against a baseline.",
                              epilog=COMPARE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(p)
    p.add_argument("--hardware", default="host-dram,host-nand,host-3dxp",
                   help="comma list of presets or TOML files (default host-dram,host-nand,host-3dxp)")
    p.add_argument("--baseline", help="configuration savings are measured against (default: the first)")
    p.set_defaults(func=run)


def run(args) -> int:
    from sdm.accel.plan_view import card_view, format_card_view, operating_point
    from sdm.cli.plan_cmd import check_out_dir, reconcile
    from sdm.placement import report
    from sdm.placement.compare import compare_hardware
    from sdm.placement.model_spec import load_model

    if args.plot:
        check_out_dir(args.plot, "--plot")
    model = load_model(args.model)
    hw_sets, power_sets, cost_sets, plan_sets = split_sets(args.sets)
    names = [h.strip() for h in args.hardware.split(",") if h.strip()]
    if not names:
        raise InvalidInputError("--hardware: give at least one configuration")
    hws = [load_hardware(n, hw_sets) for n in names]
    opts = options_from_args(args, plan_sets=plan_sets, power_sets=power_sets, cost_sets=cost_sets)
    from sdm.placement.hotness import load_hotness

    raw, trace = load_hotness(model.tables, trace_path=args.trace, profile_path=args.profile, counts="raw",
                              progress=not args.no_progress)
    by_model = {"raw": raw, "good-turing": [h.good_turing() for h in raw]}
    hot = by_model[args.counts]
    views: dict[int, dict] = {}

    def timeline_headline(res):
        """The six-card timeline's figures for a card platform (one answer: plan prints the same)."""
        view = card_view(res.plan, res.candidate.hardware, trace, hot, args.items_per_request)
        if view is None:
            return None
        views[id(res)] = view
        reconcile(res.plan.summary, view, opts)
        return operating_point(view, res.plan.summary["watts_idle"])

    def run_compare(hotness, curves):
        return compare_hardware(model.tables, hotness, hws, opts, qps_target=args.qps, baseline=args.baseline,
                                model_name=model.name, curves=curves, operating_point=timeline_headline)

    cmp = run_compare(hot, bool(args.plot))
    results, failed = cmp.configs, cmp.failed
    # the same comparison under the other count model: where it flips a saving's sign, say so
    other = "raw" if args.counts == "good-turing" else "good-turing"
    try:
        with step(f"planning again with --counts {other} (does the count model flip a saving?)",
                  not args.no_progress):
            alt = {r["hardware"]: r for r in run_compare(by_model[other], False).configs}
    except InfeasibleError:
        alt = {}
    for r in results:
        a = alt.get(r["hardware"])
        if a is not None:
            flips = [k for k in ("power", "capex", "tco")
                     if abs(r["savings"][k]) > 1e-9 and abs(a["savings"][k]) > 1e-9
                     and (r["savings"][k] > 0) != (a["savings"][k] > 0)]
            r["other_count_model"] = {"count_model": other, "savings": a["savings"],
                                      "servers": a["fleet"]["servers"], "flips": flips}
    for r, res in zip(results, cmp.results):
        if id(res) in views:
            r["cards"] = views[id(res)]
    base = next(r for r in results if r["hardware"] == cmp.baseline)
    from sdm.cli.plan_extras import format_hosts_needed, hosts_rows

    hosts = hosts_rows(model.tables, hws, hot, opts)
    if args.plot:
        from sdm.placement.plots import plot

        plot(results, cmp.curves, args.plot)
    if args.json:
        print(json.dumps({"model": model.name, "model_bytes": model.size_bytes, "qps_target": args.qps,
                          "count_model": args.counts,
                          "baseline": base["hardware"], "configs": results, "failed": failed,
                          "hosts_per_hardware": hosts},
                         indent=1, default=float))
        return 0
    qps_note = f"{args.qps:.0f} requests/s" if args.qps else "each config's own per-server QPS (give --qps)"
    print(f"model {model.name!r}: {model.size_bytes / 1e9:.2f} GB, {len(model.tables)} tables; fleet for {qps_note}; "
          f"savings vs {base['hardware']}; counts {args.counts}")
    print("W/server: at the wall, at the fleet's utilisation (util_%), so fleet_kW = servers x W/server")
    print(report.table(report.compare_rows(results)))
    for r in results:
        if not r["meets_budget"]:
            print(f"note: {r['name']} misses the {opts.workload.latency_budget_s * 1e3:.0f} ms "
                  f"{opts.workload.budget_on} budget (p99 {r['p99_latency_s'] * 1e3:.1f} ms)")
    for r in results:
        o = r.get("other_count_model")
        if o and o["flips"]:
            now = ", ".join(f"{k} {100 * r['savings'][k]:+.1f}%" for k in o["flips"])
            then = ", ".join(f"{k} {100 * o['savings'][k]:+.1f}%" for k in o["flips"])
            print(f"note: the count model decides {r['name']}'s savings: {now} with counts {args.counts}, "
                  f"{then} with --counts {o['count_model']} ({o['servers']} server(s) vs {r['fleet']['servers']}); "
                  "good-turing predicts future traffic (rows the trace did not see get reads), raw replays "
                  "the trace exactly")
    print("\nwhere the savings come from (fleet watts at the wall and capex per part; saved = baseline - this):")
    for r in results:
        if r is not base:
            print(report.format_breakdown(r, base["hardware"]))
    for r in results:
        if "cards" in r:
            print("\n" + format_card_view(r["cards"], r["name"]))
    print("\n" + format_hosts_needed(hosts, results))
    for f in failed:
        print(f"not planned: {f}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
