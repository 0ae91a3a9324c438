"""`sdm-plan plan`: model + trace (or profile) + hardware -> plan.json, with the stats table.

    sdm-plan plan --model 1460-583-10131227:64 --trace trace.npz --hardware host-nand --out plan.json
    sdm-plan plan --model model.toml --profile p.npz --hardware yosemite-v2-3dxp --objective min-power --json

On a preset with accelerator cards (yosemite-v2-*) it also shows the plan per card and, given a
trace, the modelled six-card timeline of its requests (sdm.accel.report.plan_summary).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.placement.model_spec import ModelSpec, load_model
from sdm.placement.objectives import Workload
from sdm.placement.planner import PlanOptions, PlanResult, plan_model
from sdm.placement.types import TableHotness


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
    p.set_defaults(func=run)


PLAN_EXAMPLES = """examples:
  python tools/gen_trace.py zipf --tables 200000,50000,8000 --samples 20000 --pooling 4 --out t.npz
  sdm-plan plan --model 200000-50000-8000:32 --trace t.npz --hardware host-nand --dram-cache-fraction 0.2
  sdm-plan plan --model 200000-50000-8000:32 --trace t.npz --hardware yosemite-v2-nand --out plan.json
  sdm-plan explain plan.json t0            # why rows of t0 went where
  sdm-plan run --model 200000-50000-8000:32 --trace t.npz --plan plan.json   # execute it on the card path
MODEL: TOML/JSON file or a DLRM-style list ROWS-ROWS-...:DIM[:FORMAT[:POOLING]]; hardware presets:
`sdm-plan hardware`."""


# ---- shared helpers (compare_cmd uses them) ---------------------------------------------------------
def split_sets(items: list[str]) -> tuple[dict, dict, dict, dict]:
    hw, power, cost, plan = {}, {}, {}, {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InvalidInputError(f"--set {item!r}: expected FIELD=VALUE")
        key, value = key.strip(), value.strip()
        for prefix, d in (("power.", power), ("cost.", cost), ("plan.", plan)):
            if key.startswith(prefix):
                try:
                    d[key[len(prefix):]] = float(value)
                except ValueError:
                    raise InvalidInputError(f"--set {item!r}: {prefix}* values must be numbers") from None
                break
        else:
            hw[key] = value
    return hw, power, cost, plan


def load_hardware(name: str, overrides: dict):
    from sdm.hardware.server import hardware, hardware_from_toml

    if name.endswith(".toml"):
        if not Path(name).exists():
            raise InvalidInputError(f"hardware file {name!r} does not exist")
        return hardware_from_toml(name, **overrides)
    return hardware(name, **overrides)


def load_inputs(model: ModelSpec, args):
    """(hotness per model table, the trace in the model's table order or None for --profile)."""
    trace = None
    if args.profile:
        from sdm.placement.profile import Profile

        hot = hotness_from_profile(model, Profile.load(args.profile))
    else:
        from sdm.traces.loaders import load_trace

        trace = model_trace(model, load_trace(args.trace))
        hot = hotness_from_trace(model, trace, progress=not args.no_progress)
    # good_turing() leaves sketch-style profiles (heavy hitters + tail) as they are
    return ([h.good_turing() for h in hot] if args.counts == "good-turing" else hot), trace


def model_trace(model: ModelSpec, trace, batch_size: int | None = None):
    """The trace with the model's tables, names and row counts, in the model's order (tables matched
    by name, else by position), re-batched to `batch_size` samples if given. Ids are checked against
    the model's rows (InvalidInputError naming table and position)."""
    from sdm.traces.trace import Trace

    names = [t.name for t in model.tables]
    rows = [t.num_rows for t in model.tables]
    B = int(batch_size or trace.batch_size)
    if list(trace.table_names) == names and list(trace.num_rows) == rows and B == trace.batch_size:
        return trace
    idx = _match(model, list(trace.table_names), "trace")
    return Trace(names, rows, [trace.indices[i] for i in idx], [trace.offsets[i] for i in idx], B)


def _match(model: ModelSpec, names: list[str], what: str) -> list[int | None]:
    """Trace/profile table index for each model table: by name, else by position when counts agree."""
    by_name = {n: i for i, n in enumerate(names)}
    if all(t.name in by_name for t in model.tables):
        return [by_name[t.name] for t in model.tables]
    if len(names) == len(model.tables):
        return list(range(len(names)))
    missing = [t.name for t in model.tables if t.name not in by_name][:5]
    raise InvalidInputError(f"{what} has tables {names[:5]}{'...' if len(names) > 5 else ''}; model tables "
                            f"{missing} are not among them and the table counts differ "
                            f"({len(names)} vs {len(model.tables)})")


# The per-card view (sdm.accel.partitioner.partition_from_plan + routing) holds per-row arrays: about
# 10 B per row for the partition and 12 B more to route a trace (measured: 33.7M rows, +0.73 GB).
# Planning itself stays within its 4 GiB target at 4e9 rows; this view would not, so it is bounded.
CARD_VIEW_MAX_ROWS = 50_000_000


def card_view(plan, hw, trace=None, hot=None, items_per_request: int | None = None) -> dict | None:
    """Per-card placement and (with a trace) the modelled six-card timeline of `plan` on `hw`, or None
    when `hw` has no cards. A request is `items_per_request` samples of the trace, as the plan assumes.
    A plan that cannot be shown per card (one spanning several servers) gives {"note": why}."""
    from sdm.accel.report import plan_summary

    if not hw.cards:
        return None
    rows = sum(int(tp.num_rows) for tp in plan.tables.values())
    if rows > CARD_VIEW_MAX_ROWS:
        return {"cards": [], "timeline": None,
                "note": f"the model has {rows:,} rows; the per-card view builds per-row arrays (about 22 B per "
                        f"row) and is skipped above {CARD_VIEW_MAX_ROWS:,} rows"}
    loads = None
    if hot and all(h.num_samples > 0 for h in hot):
        loads = [h.total_lookups / h.num_samples for h in hot]
    if trace is not None and items_per_request:
        from sdm.traces.trace import Trace

        if trace.batch_size != items_per_request:
            trace = Trace(trace.table_names, trace.num_rows, trace.indices, trace.offsets, items_per_request)
    try:
        # reserve 0: the plan's own usable fractions (plan.sram/lpddr_usable_fraction) already keep
        # card memory for dense weights and activations
        return plan_summary(plan, hw, trace, reserve_bytes=0, loads=loads)
    except InvalidInputError as exc:
        return {"cards": [], "timeline": None, "note": str(exc)}


def format_card_view(view: dict, hw_name: str) -> str:
    from sdm.accel.report import format_plan_summary

    head = f"per card on {hw_name} (six-card platform):"
    if view.get("note"):
        return f"{head} not shown: {view['note']}"
    return head + "\n" + format_plan_summary(view)


def hotness_from_trace(model: ModelSpec, trace, progress: bool = False) -> list[TableHotness]:
    idx = _match(model, list(trace.table_names), "trace")
    it = list(zip(model.tables, idx))
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="count trace", unit="table", file=sys.stderr)
    return [TableHotness.from_ids(t.name, t.num_rows, trace.indices[i], trace.num_samples) for t, i in it]


def hotness_from_profile(model: ModelSpec, profile) -> list[TableHotness]:
    names = list(profile.tables)
    idx = _match(model, names, "profile")
    out = []
    for t, i in zip(model.tables, idx):
        tp = profile.tables[names[i]]
        if tp.num_rows != t.num_rows:
            raise InvalidInputError(f"table {t.name!r}: profile has {tp.num_rows} rows, model {t.num_rows}")
        if tp.exact:
            h = TableHotness.from_counts(t.name, np.asarray(tp.counts), tp.num_samples)
        else:
            # Heavy hitters (count-min upper estimates) + the rest as one uniform band over all
            # untracked rows (which of them were read is unknown, so pinning any is worth the
            # average). Rows beyond the heavy hitters were each read at least once, so the tail
            # has at least unique - k lookups; heavy-hitter counts are scaled down to leave it.
            order = np.argsort(tp.hh_rows)
            ids, counts = tp.hh_rows[order], tp.hh_counts[order].astype(np.float64)
            lookups = float(tp.num_lookups)
            tail = min(max(lookups - counts.sum(), float(tp.unique_rows - ids.size), 0.0), lookups)
            if counts.sum() > lookups - tail > 0:
                counts *= (lookups - tail) / counts.sum()
            h = TableHotness(t.name, t.num_rows, ids, counts, tail, tp.num_samples, expected=True)
        out.append(h)
    return out


def options_from_args(args, policy: str | None = None, plan_sets: dict | None = None,
                      power_sets: dict | None = None, cost_sets: dict | None = None) -> PlanOptions:
    from sdm.placement.cost import CostDefaults
    from sdm.placement.power import PowerDefaults

    wl = Workload(items_per_request=args.items_per_request, latency_budget_s=args.latency_budget_ms / 1e3,
                  qps_target=args.qps, compute_qps_per_server=args.compute_qps, budget_on=args.budget_on)
    ladder = None
    if args.dram_ladder:
        try:
            ladder = tuple(float(x) for x in args.dram_ladder.split(","))
        except ValueError:
            raise InvalidInputError(f"--dram-ladder {args.dram_ladder!r}: expected numbers like 1,0.5,0.25") from None
    plan_sets = dict(plan_sets or {})
    known = set(PlanOptions.__dataclass_fields__) - {"workload", "power", "cost", "pages_per_scm_read", "progress",
                                                     "whole_dimms", "policy", "objective", "dram_ladder",
                                                     "dram_cache_policy", "shard"}
    bad = set(plan_sets) - known
    if bad:
        raise InvalidInputError(f"unknown plan.* field(s) {sorted(bad)}; known: {sorted(known)}")
    for k in ("scm_queue_depth", "dram_queue_depth", "card_queue_depth"):
        if k in plan_sets:
            plan_sets[k] = int(plan_sets[k])
    return PlanOptions(policy=policy or args.policy, objective=args.objective, workload=wl,
                       power=PowerDefaults().replace(**(power_sets or {})),
                       cost=CostDefaults().replace(**(cost_sets or {})),
                       dram_cache_fraction=args.dram_cache_fraction, dram_cache_policy=args.dram_cache_policy,
                       dram_ladder=ladder, progress=not args.no_progress, **plan_sets)


def dram_curve(model: ModelSpec, hot, hw, opts: PlanOptions) -> list[tuple[float, float]]:
    """(DRAM GB, share of lookups served above SCM) over a ladder of DRAM sizes (for --plot)."""
    import dataclasses

    if hw.scm is None:
        return []
    o = dataclasses.replace(opts, objective="min-latency", dram_ladder=(1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
                            whole_dimms=False, progress=False)
    res = plan_model(model.tables, hot, hw, o, model.name)
    return [(c.knobs["dram_bytes"] / 1e9, 1.0 - e.hit_rate["scm"]) for c, _p, e in res.scored]


# ---- the command ----------------------------------------------------------------------------------------
def run(args) -> int:
    from sdm.placement import report

    model = load_model(args.model)
    hw_sets, power_sets, cost_sets, plan_sets = split_sets(args.sets)
    hw = load_hardware(args.hardware, hw_sets)
    opts = options_from_args(args, plan_sets=plan_sets, power_sets=power_sets, cost_sets=cost_sets)
    if args.page_layout == "co-access" and not args.trace:
        raise InvalidInputError("--page-layout co-access needs --trace (co-access is read from the samples)")
    hot, trace = load_inputs(model, args)
    layouts = {}
    if args.page_layout == "co-access":
        layouts = compute_layouts(model, trace, hw, not args.no_progress)
        opts.pages_per_scm_read = {n: lay["pages_per_read"] for n, lay in layouts.items()}
    result: PlanResult = plan_model(model.tables, hot, hw, opts, model.name)
    plan = result.plan
    for name, lay in layouts.items():
        tp = plan.tables[name]
        tp.page_layout = lay["method"]
        tp.row_order = lay["row_order"]
        tp.explain["read_amplification"] = {"layout": lay["read_amplification"], "id_order": lay["id_order"]}
    cards = card_view(plan, hw, trace, hot, args.items_per_request)
    out = plan.save(args.out)
    if args.plot:
        from sdm.placement.fleet import ServerProfile, size_fleet
        fleet = size_fleet(ServerProfile.from_plan(result), model.size_bytes, args.qps or result.estimate.qps_per_server,
                           opts.cost)
        r = {"name": result.candidate.name, "p99_latency_s": result.estimate.p99_latency_s, "fleet": fleet.as_dict()}
        report.plot([r], {hw.name: dram_curve(model, hot, hw, opts)}, args.plot)
    if args.json:
        doc = json.loads(Path(out).read_text())
        doc.pop("tables")
        doc["plan_file"] = str(out)
        if cards is not None:
            doc["cards"] = cards
        print(json.dumps(doc, indent=1, default=float))
    else:
        print(report.format_plan(plan, args.top))
        if cards is not None:
            print("\n" + format_card_view(cards, hw.name))
        print(f"\nwrote {out}" + (f" and {args.plot}" if args.plot else "")
              + f"; next: sdm-plan explain {out} {next(iter(plan.tables))}"
              + (f", sdm-plan run --model ... --trace ... --plan {out}" if hw.cards else ""))
    return 0


def compute_layouts(model: ModelSpec, trace, hw, progress: bool) -> dict[str, dict]:
    """Co-access page layout per table from the trace (a path or a `Trace`; page = the SCM device's
    read unit, >= 4 KiB)."""
    from sdm.placement.page_layout import _order_to_slots, co_access_layout, pages_per_read

    if not hasattr(trace, "indices"):
        from sdm.traces.loaders import load_trace

        trace = load_trace(trace)
    idx = _match(model, list(trace.table_names), "trace")
    page_bytes = max(4096, int(hw.scm.access_bytes)) if hw.scm is not None else 4096
    it = list(zip(model.tables, idx))
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="page layout", unit="table", file=sys.stderr)
    out = {}
    for t, i in it:
        ids, offs = np.asarray(trace.indices[i]), np.asarray(trace.offsets[i])
        res = co_access_layout(ids, offs, t.num_rows, t.row_bytes, page_bytes, table=t.name)
        ppr_id = pages_per_read(ids, offs, None, res.rows_per_page)
        ppr = pages_per_read(ids, offs, _order_to_slots(res.row_order), res.rows_per_page)
        # The latency model counts one page per SCM read; scale by how much the layout saves.
        out[t.name] = {"row_order": res.row_order if res.method != "id-order" else None, "method": res.method,
                       "read_amplification": res.read_amplification, "id_order": res.id_order_read_amplification,
                       "pages_per_read": ppr / ppr_id if ppr_id else 1.0}
    return out
