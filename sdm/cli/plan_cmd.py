"""`sdm-plan plan`: model + trace (or profile) + hardware -> plan.json, with the stats table.

    sdm-plan plan --model 1460-583-10131227:64 --trace trace.npz --hardware host-nand --out plan.json
    sdm-plan plan --model model.toml --profile p.npz --hardware yosemite-v2-3dxp --objective min-power --json

On a preset with accelerator cards (yosemite-v2-*) it also shows the plan per card and, given a
trace, the modelled six-card timeline of its requests (sdm.accel.plan_view.plan_summary).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from typing import TYPE_CHECKING

from sdm.cli.steps import step
from sdm.core.errors import InvalidInputError

if TYPE_CHECKING:
    from sdm.placement.model_spec import ModelSpec
    from sdm.placement.options import PlanOptions

# The planner (numpy, numba) is imported inside the functions that run it: `sdm-plan plan --help`
# and `compare --help` import none of it (tests/test_planner_cli_startup.py).


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="TOML/JSON model file or DLRM list like 1460-583-10131227:64")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trace", help="trace file (.npz/dir, Meta .pt.gz, DLRM text/.bin, .csv)")
    src.add_argument("--profile", help="profile .npz from `sdm-plan profile`")
    p.add_argument("--counts", default="good-turing", choices=["good-turing", "raw"],
                   help="trace counts as given (predicts a replay of the same trace exactly) or Good-Turing "
                        "adjusted (predicts future traffic without overfitting; default)")
    p.add_argument("--objective", default="min-latency", choices=["min-latency", "min-power", "min-cost"],
                   help="min-latency (default): fastest placement in the given hardware; min-power / min-cost: "
                        "the least power / capex that meets --latency-budget-ms, trying smaller DRAM")
    p.add_argument("--policy", default="row", choices=["row", "table", "baseline"],
                   help="row: hot rows up across tables; table: whole tables by density; baseline: tables in "
                        "order until memory is full")
    p.add_argument("--dram-cache-fraction", type=float, default=0.0,
                   help="share of usable host DRAM run as an LRU/static cache in front of SCM (default 0)")
    p.add_argument("--dram-cache-policy", default="lru", choices=["lru", "static"],
                   help="policy of that cache: lru (default) or static (the hottest remaining rows)")
    p.add_argument("--items-per-request", type=int, default=165, help="items (samples) per request (default 165)")
    p.add_argument("--latency-budget-ms", type=float, default=100.0, help="per request (default 100)")
    p.add_argument("--budget-on", default="p99", choices=["p99", "mean"],
                   help="latency the budget applies to (default p99)")
    p.add_argument("--qps", type=float, default=None, help="fleet QPS target (requests/s) for sizing and min-power")
    p.add_argument("--compute-qps", type=float, default=1000.0,
                   help="requests/s one host's dense compute sustains (*assumed* 1000; measure yours)")
    p.add_argument("--dram-ladder", default=None,
                   help="comma list of DRAM fractions to try (default 1 for min-latency, 1,.5,.25,.125 otherwise)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a hardware field (dotted, e.g. scm_count=2, host.dram.capacity_bytes=64GiB), "
                        "or power.NAME / cost.NAME / plan.NAME (e.g. plan.dram_usable_fraction=0.8)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--plot", metavar="FILE.png", help="plot power vs p99 latency and hit rate vs DRAM size")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


def register(subparsers) -> None:
    p = subparsers.add_parser("plan", help="place rows on tiers and cards; write plan.json",
                              description="Plan which rows of which table live in which tier and card; print "
                                          "predicted hit rates, latency, QPS, power and cost; write plan.json.",
                              epilog=PLAN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(p)
    p.add_argument("--hardware", default="host-nand", help="preset name or TOML file (default host-nand)")
    p.add_argument("--page-layout", default="id-order", choices=["id-order", "co-access"],
                   help="co-access: pack rows read together into the same SCM page (needs --trace)")
    p.add_argument("--out", default="plan.json", help="plan file to write (default plan.json)")
    p.add_argument("--top", type=int, default=20, help="tables shown in the per-table stats (default 20)")
    p.add_argument("--hosts", type=int, default=None, metavar="N",
                   help="plan the model over N hosts of --hardware: tables or column slices balanced by lookups "
                        "and bytes, each host planned on its own DRAM/SCM/cards; --out gets one section per host")
    p.add_argument("--sharding", default="auto", choices=["auto", "table", "column"],
                   help="with --hosts: auto (cut a table into column slices only when it must), table, column")
    p.add_argument("--update-rows-per-s", type=float, default=None, metavar="R",
                   help="report how long the SCM drives last under R row updates per second spread over the "
                        "model's rows (drive writes per day, years to rated endurance)")
    p.set_defaults(func=run)


PLAN_EXAMPLES = """examples:
  python tools/gen_trace.py zipf --tables 200000,50000,8000 --samples 20000 --pooling 4 --out t.npz
  sdm-plan plan --model 200000-50000-8000:32 --trace t.npz --hardware host-nand --dram-cache-fraction 0.2
  sdm-plan plan --model 200000-50000-8000:32 --trace t.npz --hardware yosemite-v2-nand --out plan.json
  sdm-plan plan --model 200000-50000-8000:32 --trace t.npz --hosts 2 --out hosts.json   # one section per host
  sdm-plan plan --model 200000-50000-8000:32 --trace t.npz --update-rows-per-s 5000  # SSD lifetime
  sdm-plan explain plan.json t0            # why rows of t0 went where
  sdm-plan run --model 200000-50000-8000:32 --trace t.npz --plan plan.json   # execute it on the card path
MODEL: TOML/JSON file or a DLRM-style list ROWS-ROWS-...:DIM[:FORMAT[:POOLING]]; hardware presets:
`sdm-plan hardware`."""


# ---- shared helpers (compare_cmd uses them) ---------------------------------------------------------
def split_sets(items: list[str]) -> tuple[dict, dict, dict, dict]:
    """`--set` items (read by the one FIELD=VALUE parser) split into hardware, power.*, cost.* and
    plan.* overrides; values stay text and are typed by the object they override."""
    from sdm.hardware.overrides import parse_assignments

    hw, power, cost, plan = {}, {}, {}, {}
    for key, value in parse_assignments(items, "--set").items():
        for prefix, d in (("power.", power), ("cost.", cost), ("plan.", plan)):
            if key.startswith(prefix):
                d[key[len(prefix):]] = value
                break
        else:
            hw[key] = value
    return hw, power, cost, plan


def check_out_dir(path: str, flag: str) -> None:
    """Refuse, before any work, an output whose folder does not exist (nothing is created for it)."""
    parent = Path(path).parent
    if not parent.is_dir():
        raise InvalidInputError(f"{flag} {path}: folder {str(parent)!r} does not exist (nothing written)")


def load_hardware(name: str, overrides: dict):
    from sdm.hardware.server import hardware, hardware_from_toml

    if name.endswith(".toml"):
        if not Path(name).exists():
            raise InvalidInputError(f"hardware file {name!r} does not exist")
        return hardware_from_toml(name, **overrides)
    return hardware(name, **overrides)


def load_inputs(model: "ModelSpec", args):
    """(hotness per model table, the trace in the model's table order or None for --profile)."""
    from sdm.placement.hotness import load_hotness

    return load_hotness(model.tables, trace_path=args.trace, profile_path=args.profile, counts=args.counts,
                        progress=not args.no_progress)


def options_from_args(args, policy: str | None = None, plan_sets: dict | None = None,
                      power_sets: dict | None = None, cost_sets: dict | None = None) -> "PlanOptions":
    from sdm.core.checks import real_number, whole_number
    from sdm.placement.cost import CostDefaults
    from sdm.placement.objectives import Workload
    from sdm.placement.options import PlanOptions
    from sdm.placement.power import PowerDefaults

    # each flag checked by its own name before the workload (whose names are the API's)
    whole_number(args.items_per_request, "--items-per-request", minimum=1)
    real_number(args.latency_budget_ms, "--latency-budget-ms", above=0)
    real_number(args.compute_qps, "--compute-qps", above=0)
    if args.qps is not None:
        real_number(args.qps, "--qps", above=0)
    wl = Workload(items_per_request=args.items_per_request, latency_budget_s=args.latency_budget_ms / 1e3,
                  qps_target=args.qps, compute_qps_per_server=args.compute_qps, budget_on=args.budget_on)
    ladder = None
    if args.dram_ladder:
        try:
            ladder = tuple(float(x) for x in args.dram_ladder.split(","))
        except ValueError:
            raise InvalidInputError(f"--dram-ladder {args.dram_ladder!r}: expected numbers like 1,0.5,0.25") from None
    opts = PlanOptions(policy=policy or args.policy, objective=args.objective, workload=wl,
                       power=PowerDefaults().replace(**(power_sets or {})),
                       cost=CostDefaults().replace(**(cost_sets or {})),
                       dram_cache_fraction=args.dram_cache_fraction, dram_cache_policy=args.dram_cache_policy,
                       dram_ladder=ladder, progress=not args.no_progress)
    return opts.replace(**(plan_sets or {}))


def reconcile(summary: dict, cards: dict | None, opts: "PlanOptions") -> dict:
    """One answer per plan: the six-card timeline's figures in the headline when there is one."""
    from sdm.accel.plan_view import apply_operating_point, operating_point
    from sdm.placement.cost import energy_usd_per_year

    op = operating_point(cards, summary["watts_idle"])
    if op is not None:
        apply_operating_point(summary, op)
        summary["energy_usd_per_year"] = energy_usd_per_year(summary["watts"], opts.cost)
    return summary


# ---- the command ----------------------------------------------------------------------------------------
def run(args) -> int:
    from sdm.accel.plan_view import card_view, format_card_view
    from sdm.cli.plan_extras import check_extras, format_lifetime, lifetime_doc, lifetime_rows, run_hosts
    from sdm.placement.layout_stage import page_layout
    from sdm.placement.model_spec import load_model
    from sdm.placement.planner import Planner, dram_curve
    from sdm.placement.report import TextReporter

    check_out_dir(args.out, "--out")
    if args.plot:
        check_out_dir(args.plot, "--plot")
    model = load_model(args.model)
    hw_sets, power_sets, cost_sets, plan_sets = split_sets(args.sets)
    hw = load_hardware(args.hardware, hw_sets)
    opts = options_from_args(args, plan_sets=plan_sets, power_sets=power_sets, cost_sets=cost_sets)
    if args.page_layout == "co-access" and not args.trace:
        raise InvalidInputError("--page-layout co-access needs --trace (co-access is read from the samples)")
    check_extras(args, hw)
    hot, trace = load_inputs(model, args)
    if args.hosts is not None:
        return run_hosts(args, model, hw, opts, hot, not args.no_progress)
    layout = page_layout(args.page_layout, progress=not args.no_progress) if args.page_layout != "id-order" else None
    planner = Planner.from_options(opts, page_layout=layout, reporter=TextReporter(args.top))
    result = planner.plan(model.tables, hot, hw, trace=trace, model_name=model.name)
    plan = result.plan
    show = not args.no_progress
    with step("six-card view and timeline", show and bool(hw.cards)):
        cards = card_view(plan, hw, trace, hot, args.items_per_request)
    reconcile(plan.summary, cards, opts)
    s = plan.summary
    value = s["p99_latency_s"] if opts.workload.budget_on == "p99" else s["latency_s"]
    if value > opts.workload.latency_budget_s:         # the fastest placement misses: no plan to write
        from sdm.placement.objectives import budget_missed

        raise budget_missed(s["candidate"], value, len(result.scored), opts.workload)
    life = None
    if args.update_rows_per_s is not None:
        life = lifetime_rows(hw, args.update_rows_per_s, sum(t.num_rows for t in model.tables), model.size_bytes,
                             sum(t.num_rows for t in model.tables))
    rows = sum(int(tp.num_rows) for tp in plan.tables.values())
    with step(f"writing {args.out} ({len(plan.tables)} tables, {rows:,} rows)", show and rows > 10_000_000):
        out = plan.save(args.out)
    if args.plot:
        from sdm.placement.plots import plot_plan

        with step(f"plotting {args.plot} (hit rate over six DRAM sizes)", show):
            plot_plan(result, dram_curve(model.tables, hot, hw, opts), args.plot, qps=args.qps, cost=opts.cost)
    if args.json:
        doc = json.loads(Path(out).read_text())
        doc.pop("tables")
        doc["plan_file"] = str(out)
        doc["companion_folder"] = str(Path(out).parent / doc["companion_folder"]) if doc.get("companion_folder") else None
        if cards is not None:
            doc["cards"] = cards
        if life is not None:
            doc["endurance"] = lifetime_doc(life)
        print(json.dumps(doc, indent=1, default=float))
    else:
        print(planner.report(plan))
        if cards is not None:
            print("\n" + format_card_view(cards, hw.name))
        if life is not None:
            print("\n" + format_lifetime(life, f"SSD lifetime under {args.update_rows_per_s:,.0f} row updates/s "
                                               "spread over the model's rows (sdm.tiers.endurance):"))
        side = json.loads(Path(out).read_text()).get("companion_folder")
        print(f"\nwrote {out}" + (f" with its companion folder {Path(out).parent / side}/ (the plan's row sets: "
                                   "copy or move them together)" if side else " (self-contained)")
              + (f" and {args.plot}" if args.plot else "")
              + f"; next: sdm-plan explain {out} {next(iter(plan.tables))}"
              + (f", sdm-plan run --model ... --trace ... --plan {out}" if hw.cards else ""))
    return 0
