"""`sdm-plan run`: replay a trace through the six-card executor and print the report.

    sdm-plan run --model 5000-300-20000-100-7000-50000:16 --trace zipf --hardware yosemite-v2-nand
    sdm-plan run --model model.toml --trace trace.npz --plan plan.json --json --plot util.png

Real inference runs on this machine (tables held in memory by the model, host-side tables in an
EmbeddingStore on disk); the cards' time is modelled. Model weights must fit in this machine's memory.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from sdm.core.errors import InvalidInputError

def max_weight_bytes() -> int:
    """Embedding bytes `run` accepts: real inference keeps every table in memory (the model's emb_l,
    plus the executor's fused per-card copy of card tables: up to twice the weights), so at most 40%
    of this machine's physical memory (the rest: the trace, the host store's cache, Python).
    Was a fixed 2 GiB, which refused the README's own 2.6 GB model."""
    import os

    try:
        phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        phys = 8 << 30                                   # unknown platform: assume a small machine
    return int(0.4 * phys)


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="replay a trace through the six-card accelerator path and report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="TOML/JSON model file or DLRM list like 1460-583-10131227:64")
    p.add_argument("--trace", required=True,
                   help="trace file (.npz, trace directory, Meta .pt.gz, text, csv), or 'zipf' / 'production' "
                        "to generate one over the model's tables")
    p.add_argument("--hardware", default="yosemite-v2-nand", help="preset name or TOML file (default yosemite-v2-nand)")
    p.add_argument("--plan", help="plan.json from `sdm-plan plan`: card rows as planned, the rest on the host")
    p.add_argument("--samples", type=int, default=20 * 180, help="samples of a generated trace (default 3600)")
    p.add_argument("--batch-size", type=int, help="items per request (re-batches the trace; default: the "
                                                  "trace's, 180 for a generated trace: the budget's worst case)")
    p.add_argument("--batches", type=int, help="replay at most this many requests")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=1.05, help="Zipf exponent of a generated trace")
    p.add_argument("--dram-cache-bytes", metavar="BYTES",
                   help="host DRAM cache in front of SCM, e.g. 64MiB (default: the plan's with --plan, else the "
                        "store's: half the host DRAM, at most the host tables' size)")
    p.add_argument("--reserve-bytes", metavar="BYTES", default=str(1 << 30),
                   help="card memory kept for dense weights, activations and runtime, e.g. 512MiB (default 1 GiB, "
                        "*assumption*)")
    p.add_argument("--host-time", choices=("modelled", "measured"), default="modelled",
                   help="host lookup time on the critical path: the device model, or what this machine measured")
    p.add_argument("--no-batching", action="store_true", help="one PCIe command per tensor (no command batching)")
    p.add_argument("--fp16-transfers", action="store_true",
                   help="model partial tensors crossing PCIe as fp16 (half the bytes; numerics stay fp32)")
    p.add_argument("--move", action="append", default=[], metavar="TABLE",
                   help="what-if: report moving TABLE between card, host DRAM and SCM (default: top 3 tables)")
    p.add_argument("--store", help="directory for the host-side EmbeddingStore (default: a temporary one)")
    p.add_argument("--dense-on", type=int, default=0, help="card running the dense part (default 0)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads for the executed inference (default 1: the cards' work runs one "
                        "after another on this host, and extra OpenMP threads only spin on a busy machine)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="write a per-card utilisation chart (PNG)")
    p.set_defaults(func=handle)


def _hardware(arg: str):
    from sdm.hardware.server import hardware, hardware_from_toml
    return hardware_from_toml(arg) if arg.endswith(".toml") else hardware(arg)


def _trace(args, tables):
    from sdm.traces.trace import Trace
    names = [t.name for t in tables]
    rows = [t.num_rows for t in tables]
    pooling = [t.pooling_factor for t in tables]
    if args.trace in ("zipf", "production"):
        B = args.batch_size or 180
        if args.trace == "zipf":
            from sdm.traces.generators import zipf_trace
            return zipf_trace(rows, args.samples, batch_size=B, pooling=pooling, alpha=args.alpha,
                              seed=args.seed, table_names=names)
        from sdm.traces.production import production_trace
        return production_trace(rows, -(-args.samples // B), batch_size=B, pooling=pooling, seed=args.seed,
                                table_names=names)
    from sdm.traces.loaders import load_trace
    tr = load_trace(args.trace)
    if len(tr.table_names) != len(names):
        raise InvalidInputError(f"trace {args.trace!r} has {len(tr.table_names)} tables, model has {len(names)}")
    bad = [i for i, (a, b) in enumerate(zip(tr.num_rows, rows)) if a > b]
    if bad:
        raise InvalidInputError(f"trace {args.trace!r}: table {tr.table_names[bad[0]]!r} has {tr.num_rows[bad[0]]} "
                                f"rows, model table {names[bad[0]]!r} only {rows[bad[0]]}")
    # tables are matched by position; the model's names and row counts win
    return Trace(names, rows, tr.indices, tr.offsets, args.batch_size or tr.batch_size)


def handle(args) -> int:
    import torch

    from sdm.accel.executor import AccelExecutor, build_host_store, dense_flops_per_sample, replay
    from sdm.accel.partitioner import partition, partition_from_plan
    from sdm.hardware.platform import Platform
    from sdm.accel.report import build_report, format_report, plot_utilisation
    from sdm.accel.what_if import what_if_moves
    from sdm.accel.timeline import model_timeline
    from sdm.runtime.dlrm import DLRM
    from sdm.placement.model_spec import load_model
    from sdm.hardware.overrides import parse_quantity

    args.reserve_bytes = int(parse_quantity(str(args.reserve_bytes), "--reserve-bytes"))
    if args.dram_cache_bytes is not None:
        args.dram_cache_bytes = int(parse_quantity(str(args.dram_cache_bytes), "--dram-cache-bytes"))
        if args.dram_cache_bytes < 0:
            raise InvalidInputError(f"--dram-cache-bytes must be >= 0, got {args.dram_cache_bytes}")
    if args.threads < 1:
        raise InvalidInputError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    model_spec = load_model(args.model)
    tables = list(model_spec.tables)
    dims = {t.dim for t in tables}
    if len(dims) != 1:
        raise InvalidInputError(f"model {model_spec.name!r}: the DLRM's dot interaction needs one embedding dim, "
                                f"got {sorted(dims)}")
    if any(t.row_format != "fp32" for t in tables):
        raise InvalidInputError("sdm-plan run executes fp32 tables; model has "
                                f"{sorted({t.row_format for t in tables})}")
    weight_bytes = sum(t.size_bytes for t in tables)
    limit = max_weight_bytes()
    if weight_bytes > limit:
        raise InvalidInputError(f"model {model_spec.name!r} has {weight_bytes / 2**30:.1f} GiB of embeddings; "
                                f"`run` executes real inference and holds them in memory, up to twice (limit "
                                f"{limit / 2**30:.1f} GiB: 40% of this machine's memory): use `sdm-plan plan` "
                                "to size it")
    if args.batch_size is not None and args.batch_size <= 0:
        raise InvalidInputError(f"--batch-size must be > 0, got {args.batch_size}")
    hw = _hardware(args.hardware)
    platform = Platform.from_hardware(hw, dense_on=args.dense_on)
    trace = _trace(args, tables)
    counts_per_row = {t.name: np.bincount(trace.indices[i], minlength=t.num_rows) for i, t in enumerate(tables)}
    loads = [trace.indices[i].size / max(trace.num_samples, 1) for i in range(len(tables))]
    cap = platform.card_usable_bytes(args.reserve_bytes)
    plan = None
    if args.plan:
        from sdm.placement.plan import Plan
        plan = Plan.load(args.plan)
        part = partition_from_plan(plan, tables, cap, platform.card_sram_bytes(), loads=loads,
                                   row_counts=counts_per_row)
    else:
        part = partition(tables, cap, platform.card_sram_bytes(), loads=loads, row_counts=counts_per_row)

    dim = dims.pop()
    model = DLRM([t.num_rows for t in tables], dim=dim, seed=args.seed).eval()
    tmp = None
    store_dir = args.store
    if store_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="sdm-run-")
        store_dir = tmp.name
    try:
        # with a plan, the host store keeps the plan's DRAM pins, cache sizes and page layout
        store = build_host_store(model, part, Path(store_dir), hw, dram_cache_bytes=args.dram_cache_bytes,
                                 **({"plan": host_plan(plan, part)} if plan is not None else {}))
        ex = AccelExecutor(model, part, store=store, dense_on=args.dense_on)
        with torch.no_grad():
            res = replay(ex, trace, num_dense=model.num_dense, max_batches=args.batches, seed=args.seed,
                         progress=sys.stderr.isatty())
        host_hit = np.ones(len(part.shards))
        store_summary = None
        if store is not None:
            st = store.stats()
            for i, s in enumerate(part.shards):
                if not s.on_card:
                    hr = st["tables"][s.table]["hit_rate"]
                    host_hit[i] = 1.0 - hr.get("scm", 0.0)
            tot = st["total"]
            store_summary = {"hit_rate": tot["hit_rate"], "measured_s": tot["latency"]["measured_total_s"],
                             "modelled_s": tot["latency"]["modelled_total_s"]}
            store.close()
    finally:
        if tmp is not None:
            tmp.cleanup()

    kw = dict(dense_flops_per_sample=dense_flops_per_sample(model, len(tables), dim),
              dense_in_bytes_per_sample=4.0 * model.num_dense, batching=not args.no_batching,
              partial_bytes=2 if args.fp16_transfers else 4,
              host_time=args.host_time, host_measured_s=res.host_measured_s)
    tl = model_timeline(platform, part, res.counts, res.batch_sizes, host_hit_rate=host_hit, **kw)
    host_rows = [i for i, s in enumerate(part.shards) if not s.on_card]
    scm_hit = float(np.mean(host_hit[host_rows])) if host_rows else 0.0
    moves = what_if_moves(platform, part, res.counts, res.batch_sizes,
                          {**kw, "host_time": "modelled", "host_measured_s": None},
                          host_hit_rate=host_hit, scm_hit_rate=scm_hit, tables=args.move or None, top=3)
    rep = build_report(tl, platform, part, moves=moves)
    rep["executed"] = {"samples_per_s": res.samples_per_s, "wall_s": res.wall_s,
                       "card_pooling_measured_s": float(res.card_measured_s.sum(axis=1).mean()),
                       "host_lookup_measured_s": float(res.host_measured_s.mean()),
                       "dense_measured_s": float(res.dense_measured_s.mean()),
                       "device": str(ex.dense_device), "store": store_summary}
    rep["partition"] = part.describe()
    if plan is not None:
        rep["plan_check"] = plan_check(plan, part, res.counts, store_summary, args.plan)
    if args.plot:
        plot_utilisation(rep, args.plot)
    if args.json:
        print(json.dumps(rep, indent=1, default=float))
    else:
        print(format_report(rep))
        e = rep["executed"]
        print(f"\nexecuted on this machine ({e['device']}): {e['samples_per_s']:.0f} samples/s; per request "
              f"card pooling {e['card_pooling_measured_s'] * 1e3:.2f} ms, host lookups "
              f"{e['host_lookup_measured_s'] * 1e3:.2f} ms, dense {e['dense_measured_s'] * 1e3:.2f} ms (measured)")
        if "plan_check" in rep:
            c = rep["plan_check"]
            print(f"plan {c['plan_file']}: share of lookups predicted / measured (this replay): " + ", ".join(
                f"{k} {100 * c['predicted'][k]:.1f}% / {100 * c['measured'][k]:.1f}%" for k in c["predicted"]))
        if args.plot:
            print(f"wrote {args.plot}")
    return 0


def host_plan(plan, part):
    """The plan restricted to what the host store serves: host-side tables, their DRAM pins, DRAM
    cache share and page layout (card rows are the partition's; the store must not pin them again)."""
    from dataclasses import replace

    host = {s.table for s in part.shards if not s.on_card}
    tables = {n: replace(tp, placements=[p for p in tp.placements if p.tier == "dram"])
              for n, tp in plan.tables.items() if n in host}
    return replace(plan, tables=tables)


def plan_check(plan, part, counts: np.ndarray, store_summary: dict | None, plan_file: str) -> dict:
    """The plan's predicted share of lookups per tier (accelerator cards, host DRAM pinned + cache,
    SCM) beside what this replay measured: lookups routed to card shards, and the host store's hits."""
    pred_t = plan.summary.get("hit_rate", {})
    predicted = {"cards": float(pred_t.get("sram", 0.0) + pred_t.get("lpddr", 0.0)),
                 "dram": float(pred_t.get("dram", 0.0) + pred_t.get("dram_cache", 0.0)),
                 "scm": float(pred_t.get("scm", 0.0))}
    on_card = np.array([s.on_card for s in part.shards])
    total = max(float(counts.sum()), 1.0)
    host = float(counts[:, ~on_card].sum()) / total
    hr = (store_summary or {}).get("hit_rate", {})
    measured = {"cards": float(counts[:, on_card].sum()) / total,
                "dram": host * float(hr.get("dram", 0.0) + hr.get("accel", 0.0)), "scm": host * float(hr.get("scm", 0.0))}
    return {"plan_file": str(plan_file), "predicted": predicted, "measured": measured,
            "note": "predicted: the plan's summary.hit_rate (for the traffic it was planned for: with Good-Turing "
                    "counts, new traffic; with --counts raw, a replay of its own trace); measured: this replay"}
