"""`sdm-plan profile TRACE`: per-table hotness summary of a trace, and the profile file it writes."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sdm.core.errors import InvalidInputError
from sdm.core.text_table import text_table


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "profile",
        help="profile a trace: per-table hotness, skew, pooling, co-access",
        description="Read a trace (sdm .npz or directory, Meta .pt.gz, DLRM text/.bin, CSV), print a "
        "per-table summary and write the profile (.npz) for the planner and the cache simulator.",
    )
    p.add_argument("trace", help="trace file or directory")
    p.add_argument("--out", help="profile file to write (default: TRACE with suffix .profile.npz)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.add_argument("--memory-budget-mb", type=float, default=32.0,
                   help="per-table memory for counts; larger tables use a count-min sketch (default 32)")
    p.add_argument("--eps", type=float, default=None,
                   help="sketch error as a fraction of a table's lookups (default: as the budget allows)")
    p.add_argument("--delta", type=float, default=1e-3, help="sketch failure probability (default 1e-3)")
    p.add_argument("--heavy-hitters", type=int, default=4096, help="hottest rows kept per table (default 4096)")
    p.add_argument("--coaccess-rows", type=int, default=256, help="hot rows with co-access lists (default 256)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size for formats that do not store it")
    p.add_argument("--reuse", nargs="?", const="", metavar="FILE.json",
                   help="also print batch 0's reuse table beside a published one: FILE.json (unique_share, "
                        "lookup_share over the 17 buckets; docs/traces.md), or Meta's 2021 table without FILE")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _default_out(trace: Path) -> Path:
    name = trace.name.rstrip("/")
    for suffix in (".pt.gz", ".npz", ".csv", ".txt", ".bin", ".gz", ".pt"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return trace.with_name(name + ".profile.npz")


def run(args: argparse.Namespace) -> int:
    from sdm.placement.profile import Profile
    from sdm.traces.loaders import load_trace

    if args.memory_budget_mb <= 0:
        raise InvalidInputError(f"--memory-budget-mb must be > 0, got {args.memory_budget_mb}")
    if args.heavy_hitters < 1 or args.coaccess_rows < 0:
        raise InvalidInputError("--heavy-hitters must be >= 1 and --coaccess-rows >= 0")
    path = Path(args.trace)
    kwargs = {}
    if args.batch_size is not None and not (path.is_dir() or path.name.endswith(".npz")):
        kwargs["batch_size"] = args.batch_size
    given = None
    if args.reuse is not None:                       # read before the work: a bad file costs nothing
        from sdm.traces.reuse import META_2021_REUSE, load_reuse

        given = load_reuse(args.reuse) if args.reuse else META_2021_REUSE
    if args.out:
        from sdm.cli.plan_cmd import check_out_dir

        check_out_dir(args.out, "--out")
    trace = load_trace(path, **kwargs)
    profile = Profile.from_trace(
        trace, progress=not args.no_progress, source=str(path),
        memory_budget_bytes=int(args.memory_budget_mb * (1 << 20)), eps=args.eps, delta=args.delta,
        heavy_hitters=args.heavy_hitters, coaccess_rows=args.coaccess_rows,
    )
    out = Path(args.out) if args.out else _default_out(path)
    profile.save(out)
    rows = profile.summary()
    reuse = None
    if given is not None:
        from sdm.traces.reuse import min_batch_lookups, reuse_table

        batch0 = trace.global_stream(0, 1)
        reuse = reuse_table(batch0)
        diff = reuse.max_abs_diff(given)
        need = min_batch_lookups(given)
    if args.json:
        doc = {"trace": str(path), "profile": str(out), "num_samples": trace.num_samples,
               "batch_size": trace.batch_size, "tables": rows}
        if reuse is not None:
            doc["reuse_batch0"] = {"unique_share": reuse.unique_share.round(4).tolist(),
                                   "lookup_share": reuse.lookup_share.round(4).tolist(),
                                   "given": {"source": given.source, "unique_share": given.unique_share.tolist(),
                                             "lookup_share": given.lookup_share.tolist()},
                                   "max_abs_diff_vs_published": {"unique": diff[0], "lookups": diff[1]},
                                   "batch_lookups": int(batch0.size), "lookups_needed_for_every_bucket": need}
        print(json.dumps(doc, indent=1))
        return 0
    print(f"trace {path}: {trace.num_tables} tables, {trace.num_samples} samples, "
          f"{trace.num_batches} batches of {trace.batch_size}, {trace.num_lookups} lookups")
    print(format_table(rows))
    print(f"profile written to {out} ({profile.memory_bytes / 2**20:.1f} MiB in memory)")
    if reuse is not None:
        print("reuse table of batch 0 (achieved):")
        print(reuse.format())
        print(f"given ({given.source}):")
        print(given.format())
        print(f"max |difference| from the given table: unique {diff[0]:.3f}, lookups {diff[1]:.3f}")
        if batch0.size < need:
            print(f"note: batch 0 holds {batch0.size:,} lookups; the given table's top buckets need batches of "
                  f">= {need:,} lookups to be reachable")
    sketched = [r for r in rows if r["mode"] == "sketch"]
    if sketched:
        tp = profile[sketched[0]["table"]]
        print(f"{len(sketched)} table(s) sketched: counts over-estimate by at most eps*lookups "
              f"(eps={tp.eps:.2e}) with probability {1 - tp.delta:.4f}; unique rows +-{tp.unique_relative_error:.1%} "
              f"(1 s.e.); top-x shares beyond the heavy hitters are lower bounds")
    return 0


def format_table(rows: list[dict]) -> str:
    cols = [("table", "table", "{}"), ("rows", "rows", "{:,}"), ("lookups", "lookups", "{:,}"),
            ("unique", "unique", "{:,}"), ("pooling", "pooling", "{:.2f}"), ("top1%", "top 1%", "{:.1%}"),
            ("top10%", "top 10%", "{:.1%}"), ("mode", "counts", "{}"), ("memory_bytes", "memory", None)]
    cells = [[_mib(r[key]) if fmt is None else fmt.format(r[key]) for key, _, fmt in cols] for r in rows]
    return text_table([h for _, h, _ in cols], cells, align="l" + "r" * (len(cols) - 1))


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 1 << 20 else f"{n / 1024:.1f} KiB"
