"""`sdm-plan simulate TRACE`: miss ratios of cache policies over capacities, beside Belady's OPT.

All tables share one cache by default (global row ids, in the order a batched server reads them);
`--table` restricts the replay to some tables. With `--page-bytes` the backing tier reads pages:
`--fill page` (default) caches whole pages of rows laid out in id order, `--fill row` caches only
the missed row. Rows sit on pages in id order, or in a plan's page layout (`--plan`). OPT is
always run so every line shows its gap to the optimum.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sdm.core.errors import InvalidInputError

DEFAULT_POLICIES = "lru,lfu,fifo,s3fifo,static,setassoc"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="replay a trace through cache policies and Belady's optimum",
        description="Replay a trace (sdm .npz or directory, Meta .pt.gz, DLRM text, CSV) through cache "
        "policies at one or more capacities; print miss ratios, bytes read, read amplification and "
        "the gap to Belady's offline optimum (OPT).",
    )
    p.add_argument("trace", help="trace file or directory")
    cap = p.add_mutually_exclusive_group(required=True)
    cap.add_argument("--capacity", nargs="+", type=int, metavar="ROWS", help="cache capacities in rows")
    cap.add_argument("--capacity-bytes", nargs="+", metavar="BYTES",
                     help="cache capacities in bytes (units allowed: KiB MiB GiB, KB MB GB)")
    p.add_argument("--policy", default=DEFAULT_POLICIES,
                   help=f"comma-separated policies (default {DEFAULT_POLICIES}); names: lru lfu lfu-global "
                   "fifo s3fifo static setassoc setassocN opt opt-demand, and runtime-lru runtime-lfu "
                   "runtime-fifo runtime-static runtime-s3lru runtime-sketch-lfu runtime-duel (the store's own 16-way DRAM cache, batch by batch). "
                   "OPT is always added.")
    p.add_argument("--dim", type=int, default=None,
                   help="embedding dim, for row bytes (default: the --plan's row size, else 64)")
    p.add_argument("--row-format", default=None, help="fp32 | fp16 | int8 (default fp32)")
    p.add_argument("--row-bytes", type=int, default=None, help="bytes per row (overrides --dim/--row-format)")
    p.add_argument("--page-bytes", type=int, default=None,
                   help="the backing tier reads pages of this size (4096 NAND, 512 3DXP)")
    p.add_argument("--fill", choices=("page", "row"), default="page",
                   help="with --page-bytes: cache whole pages (default) or only the missed row")
    p.add_argument("--table", action="append", default=None, help="only this table (repeatable)")
    p.add_argument("--batches", type=int, default=None, help="only the first N batches")
    p.add_argument("--warmup-batches", type=int, default=0,
                   help="replay the first N batches to warm the caches but count only the rest (default 0)")
    p.add_argument("--profile", default=None,
                   help="profile file (sdm-plan profile) whose hottest rows the static policy pins; "
                   "default: the trace's own top rows (best static set in hindsight)")
    p.add_argument("--plan", default=None,
                   help="plan file whose page layout (row order per table) places rows on pages; default id order")
    p.add_argument("--batch-size", type=int, default=None, help="batch size for formats that do not store it")
    p.add_argument("--lookahead", type=int, default=0, metavar="K",
                   help="runtime-NAME policies: prefetch K batches ahead (sdm.cache.window's rule; a row read "
                   "ahead counts as a miss of its batch, read by the prefetch thread). Default 0")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _capacities(args) -> tuple[list[int] | None, list[int] | None]:
    if args.capacity is not None:
        bad = [c for c in args.capacity if c < 0]
        if bad:
            raise InvalidInputError(f"--capacity must be >= 0 rows, got {bad[0]}")
        return sorted(set(args.capacity)), None
    from sdm.hardware.overrides import parse_quantity

    caps = [int(parse_quantity(text, "--capacity-bytes")) for text in args.capacity_bytes]
    bad = [c for c in caps if c < 0]
    if bad:
        raise InvalidInputError(f"--capacity-bytes must be >= 0, got {bad[0]}")
    return None, sorted(set(caps))


def _policies(text: str) -> list:
    from sdm.cachesim import resolve_policy

    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise InvalidInputError("--policy: give at least one policy name")
    policies = [resolve_policy(n) for n in names]  # unknown names raise here, before any work
    if not any(p.name == "opt" for p in policies):
        from sdm.cachesim import OPT

        policies.append(OPT())
    seen, out = set(), []
    for p in policies:
        if p.name not in seen:
            seen.add(p.name)
            out.append(p)
    return out


def _static_from_profile(path: str, trace, max_rows: int, rows_per_page: int | None, row_orders):
    """A Static policy pinning the hottest rows over all replayed tables, by the profile's counts."""
    from sdm.cachesim import Static
    from sdm.cachesim.stream import layout_page
    from sdm.placement.profile import Profile

    profile = Profile.load(path)
    rows, counts = [], []
    for t, name in enumerate(trace.table_names):
        try:
            tp = profile[name]
        except (KeyError, InvalidInputError) as exc:
            raise InvalidInputError(f"profile {path!r} has no table {name!r} of the trace") from exc
        hot = np.asarray(tp.hot_rows(min(max_rows, trace.num_rows[t])), dtype=np.int64)
        rows.append(hot + int(trace.table_base[t]))
        counts.append(np.asarray(tp.count(hot), dtype=np.int64))
    rows, counts = np.concatenate(rows), np.concatenate(counts)
    hot = rows[np.lexsort((rows, -counts))[:max_rows]]
    # page mode replays remapped rows: pin the pages of the hot rows in the same id-order layout
    pages = None if rows_per_page is None else layout_page(hot, trace.num_rows, rows_per_page, row_orders)
    static = Static(hot_ids=hot, hot_pages=pages)
    static.name = "static-profile"
    return static


def _row_orders(path: str, trace) -> tuple[list, int]:
    """Each trace table's SCM row order from a plan file (None where the plan keeps id order), and
    the plan's row size in bytes (one for all tables: pages hold rows of one size here)."""
    from sdm.placement.plan import Plan

    plan = Plan.load(path)
    orders, sizes = [], {}
    for name, rows in zip(trace.table_names, trace.num_rows):
        tp = plan.table(name)
        if tp.num_rows != rows:
            raise InvalidInputError(f"plan {path!r}: table {name!r} has {tp.num_rows} rows, the trace {rows}")
        orders.append(tp.row_order)
        sizes[name] = int(tp.row_bytes)
    if len(set(sizes.values())) > 1:
        raise InvalidInputError(f"plan {path!r}: tables have different row sizes {sizes}; simulate one size at "
                                f"a time (--table NAME) or give --row-bytes")
    return orders, next(iter(sizes.values()))


def run(args: argparse.Namespace) -> int:
    from sdm.cachesim import miss_ratio_curve, prepare
    from sdm.cachesim.stream import layout_pages
    from sdm.core.spec import row_bytes as spec_row_bytes
    from sdm.traces.loaders import load_trace

    caps_rows, caps_bytes = _capacities(args)
    policies = _policies(args.policy)
    if args.row_bytes is not None:
        row_bytes = args.row_bytes
    elif args.plan and args.dim is None and args.row_format is None:
        row_bytes = None                                   # the plan's row size, read below
    else:
        row_bytes = spec_row_bytes(64 if args.dim is None else args.dim, args.row_format or "fp32")
    if row_bytes is not None and row_bytes <= 0:
        raise InvalidInputError(f"--row-bytes must be > 0, got {row_bytes}")
    if args.page_bytes is not None and args.page_bytes <= 0:
        raise InvalidInputError(f"--page-bytes must be > 0, got {args.page_bytes}")
    if args.batches is not None and args.batches <= 0:
        raise InvalidInputError(f"--batches must be > 0, got {args.batches}")

    path = Path(args.trace)
    kwargs = {}
    if args.batch_size is not None and not (path.is_dir() or path.name.endswith(".npz")):
        kwargs["batch_size"] = args.batch_size
    trace = load_trace(path, **kwargs)
    if args.table or args.batches:
        trace = trace.subset(args.table, args.batches)
    ids = trace.global_stream()
    if not 0 <= args.warmup_batches < trace.num_batches:
        raise InvalidInputError(
            f"--warmup-batches must be in [0, {trace.num_batches - 1}] for a trace of {trace.num_batches} batches, "
            f"got {args.warmup_batches}"
        )
    warmup = trace.subset(num_batches=args.warmup_batches).num_lookups if args.warmup_batches else 0

    paged = args.page_bytes is not None and args.fill == "page"
    if args.plan and not paged:
        raise InvalidInputError("--plan gives a page layout: use it with --page-bytes (and --fill page)")
    row_orders = None
    if args.plan:
        row_orders, plan_row_bytes = _row_orders(args.plan, trace)
        if row_bytes is None:
            row_bytes = plan_row_bytes
        elif row_bytes != plan_row_bytes:
            raise InvalidInputError(f"plan {args.plan!r} has rows of {plan_row_bytes} B but --dim/--row-format/"
                                    f"--row-bytes give {row_bytes} B; drop them to use the plan's")
    max_rows = max(caps_rows) if caps_rows else max(caps_bytes) // row_bytes
    if args.profile:
        rpp = args.page_bytes // row_bytes if paged and row_bytes <= args.page_bytes else None
        policies = [_static_from_profile(args.profile, trace, max_rows, rpp, row_orders) if p.name == "static"
                    else p for p in policies]

    if paged:
        if row_bytes > args.page_bytes:
            raise InvalidInputError(f"--fill page needs rows no larger than a page (row {row_bytes} B > "
                                    f"page {args.page_bytes} B); use --fill row")
        dense, page_of = layout_pages(ids, trace.num_rows, args.page_bytes // row_bytes, row_orders)
        stream = prepare(dense, page_of=page_of)
    else:
        stream = prepare(ids)
    from sdm.cachesim import RuntimeCache

    if args.lookahead < 0:
        raise InvalidInputError(f"--lookahead must be >= 0 batches, got {args.lookahead}")
    for p in policies:
        if isinstance(p, RuntimeCache):
            if paged:
                raise InvalidInputError(f"--policy {p.name}: the runtime's cache holds rows; use --fill row")
            # the runtime serves a batch at a time: the trace's batches, in the stream's order
            batch_of = trace.batch_of_lookup()
            p.batch_starts = np.flatnonzero(np.r_[True, batch_of[1:] != batch_of[:-1]]) if batch_of.size else None
            if args.lookahead:   # the prefetcher's window rule; its reads count as misses of their batch
                p.lookahead = args.lookahead
                p.name = f"{p.name}-pf{args.lookahead}"
    if paged:
        mode = "page cache, plan layout" if args.plan else "page cache, id-order layout"
    else:
        mode = "row cache, page reads" if args.page_bytes else "row cache"

    show = not args.no_progress and sys.stderr.isatty()
    steps = len(policies) * len(caps_rows or caps_bytes)
    from tqdm import tqdm

    bar = tqdm(total=steps, desc="simulate", unit="run", disable=not show, file=sys.stderr)
    curves = {}
    for pol in policies:
        bar.set_postfix_str(pol.name)
        curves[pol.name] = miss_ratio_curve(
            stream, caps_rows, pol, capacities_bytes=caps_bytes, row_bytes=row_bytes, page_bytes=args.page_bytes,
            warmup=warmup, progress=bar.update,
        )
    bar.close()

    opt = curves["opt"].results
    rows = []
    for name, curve in curves.items():
        for res, best in zip(curve.results, opt):
            d = res.to_dict()
            d["opt_miss_ratio"] = best.miss_ratio
            d["gap_to_opt"] = res.miss_ratio - best.miss_ratio
            d["misses_vs_opt"] = res.misses / best.misses if best.misses else None
            rows.append(d)
    rows.sort(key=lambda d: (d["capacity_rows"], d["policy"] != "opt", d["miss_ratio"]))
    if args.json:
        print(json.dumps({
            "trace": str(path), "tables": trace.table_names, "lookups": int(stream.num_lookups),
            "unique_units": int(stream.num_ids), "mode": mode, "row_bytes": row_bytes,
            "page_bytes": args.page_bytes, "warmup_lookups": warmup, "results": rows,
        }, indent=1))
        return 0
    print(f"trace {path}: {trace.num_tables} tables, {stream.num_lookups} lookups, {stream.num_ids} unique "
          f"{'pages' if paged else 'rows'}; {mode}, row {row_bytes} B"
          + (f", page {args.page_bytes} B" if args.page_bytes else ""))
    print(format_table(rows))
    if warmup:
        print(f"first {args.warmup_batches} batches ({warmup} lookups) warmed the caches and are not counted")
    if any(d["preloaded_units"] for d in rows):
        print("static pins its set before the replay (one read each, not counted above) and chose it with "
              "hindsight or a profile, so it can beat OPT, which pays for every fill it makes")
    return 0


def format_table(rows: list[dict]) -> str:
    head = ["capacity", "cap MiB", "policy", "miss ratio", "gap to OPT", "x OPT misses", "read MiB", "read amp"]
    lines = []
    for d in rows:
        lines.append([
            str(d["capacity_rows"]), f"{d['capacity_bytes'] / 2**20:.2f}", d["policy"], f"{d['miss_ratio']:.4f}",
            "-" if d["policy"] == "opt" else f"{d['gap_to_opt']:+.4f}",
            "-" if d["misses_vs_opt"] is None or d["policy"] == "opt" else f"{d['misses_vs_opt']:.2f}",
            f"{d['bytes_read'] / 2**20:.2f}", f"{d['read_amplification']:.2f}",
        ])
    widths = [max(len(h), *(len(r[i]) for r in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.rjust(w) if i != 2 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in lines])
