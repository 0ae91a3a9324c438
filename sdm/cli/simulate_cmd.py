"""`sdm-plan simulate TRACE`: miss ratios of cache policies over capacities, beside Belady's OPT.

All tables share one cache by default (global row ids, in the order a batched server reads them);
`--table` restricts the replay to some tables. With `--page-bytes` the backing tier reads pages:
`--fill page` (default) caches whole pages of rows laid out in id order, `--fill row` caches only
the missed row. OPT is always run so every line shows its gap to the optimum.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError

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
                   "fifo s3fifo static setassoc setassocN opt opt-demand. OPT is always added.")
    p.add_argument("--dim", type=int, default=64, help="embedding dim, for row bytes (default 64)")
    p.add_argument("--row-format", default="fp32", help="fp32 | fp16 | int8 (default fp32)")
    p.add_argument("--row-bytes", type=int, default=None, help="bytes per row (overrides --dim/--row-format)")
    p.add_argument("--page-bytes", type=int, default=None,
                   help="the backing tier reads pages of this size (4096 NAND, 512 3DXP)")
    p.add_argument("--fill", choices=("page", "row"), default="page",
                   help="with --page-bytes: cache whole pages (default) or only the missed row")
    p.add_argument("--table", action="append", default=None, help="only this table (repeatable)")
    p.add_argument("--batches", type=int, default=None, help="only the first N batches")
    p.add_argument("--profile", default=None,
                   help="profile file (sdm-plan profile) whose hottest rows the static policy pins; "
                   "default: the trace's own top rows (best static set in hindsight)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size for formats that do not store it")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _capacities(args) -> tuple[list[int] | None, list[int] | None]:
    if args.capacity is not None:
        bad = [c for c in args.capacity if c < 0]
        if bad:
            raise InvalidInputError(f"--capacity must be >= 0 rows, got {bad[0]}")
        return sorted(set(args.capacity)), None
    from ..tiers.toml_overrides import parse_quantity

    caps = [int(parse_quantity(text, "--capacity-bytes")) for text in args.capacity_bytes]
    bad = [c for c in caps if c < 0]
    if bad:
        raise InvalidInputError(f"--capacity-bytes must be >= 0, got {bad[0]}")
    return None, sorted(set(caps))


def _policies(text: str) -> list:
    from ..cachesim import get_policy

    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise InvalidInputError("--policy: give at least one policy name")
    policies = [get_policy(n) for n in names]  # unknown names raise here, before any work
    if not any(p.name == "opt" for p in policies):
        from ..cachesim import OPT

        policies.append(OPT())
    seen, out = set(), []
    for p in policies:
        if p.name not in seen:
            seen.add(p.name)
            out.append(p)
    return out


def _static_from_profile(path: str, trace, max_rows: int):
    """A Static policy pinning the hottest rows over all replayed tables, by the profile's counts."""
    from ..cachesim import Static
    from ..placement.profile import Profile

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
    order = np.lexsort((rows, -counts))[:max_rows]
    static = Static(hot_ids=rows[order])
    static.name = "static-profile"
    return static


def _id_order_pages(trace, ids: np.ndarray, row_bytes: int, page_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(dense row ids, page of each dense row) for rows laid out in id order, pages not shared
    between tables. Only the rows the trace touches get an entry, so huge tables cost nothing."""
    from ..cachesim.stream import dense_remap

    if row_bytes > page_bytes:
        raise InvalidInputError(
            f"--fill page needs rows no larger than a page (row {row_bytes} B > page {page_bytes} B); use --fill row"
        )
    rpp = page_bytes // row_bytes
    dense, keys = dense_remap(ids)
    base = np.asarray(trace.table_base, dtype=np.int64)
    pages_per_table = -(-np.asarray(trace.num_rows, dtype=np.int64) // rpp)
    page_base = np.concatenate([[0], np.cumsum(pages_per_table)[:-1]])
    t = np.searchsorted(base, keys, side="right") - 1
    return dense, page_base[t] + (keys - base[t]) // rpp


def run(args: argparse.Namespace) -> int:
    from ..cachesim import miss_ratio_curve, prepare
    from ..spec import row_bytes as spec_row_bytes
    from ..traces.loaders import load_trace

    caps_rows, caps_bytes = _capacities(args)
    policies = _policies(args.policy)
    row_bytes = args.row_bytes if args.row_bytes is not None else spec_row_bytes(args.dim, args.row_format)
    if row_bytes <= 0:
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

    max_rows = max(caps_rows) if caps_rows else max(caps_bytes) // row_bytes
    if args.profile:
        policies = [_static_from_profile(args.profile, trace, max_rows) if p.name == "static" else p
                    for p in policies]

    paged = args.page_bytes is not None and args.fill == "page"
    if paged:
        dense, page_of = _id_order_pages(trace, ids, row_bytes, args.page_bytes)
        stream = prepare(dense, page_of=page_of)
    else:
        stream = prepare(ids)
    mode = "page" if paged else ("row, page reads" if args.page_bytes else "row")

    show = not args.no_progress and sys.stderr.isatty()
    steps = len(policies) * len(caps_rows or caps_bytes)
    from tqdm import tqdm

    bar = tqdm(total=steps, desc="simulate", unit="run", disable=not show, file=sys.stderr)
    curves = {}
    for pol in policies:
        bar.set_postfix_str(pol.name)
        curves[pol.name] = miss_ratio_curve(
            stream, caps_rows, pol, capacities_bytes=caps_bytes, row_bytes=row_bytes, page_bytes=args.page_bytes,
            progress=bar.update,
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
            "page_bytes": args.page_bytes, "results": rows,
        }, indent=1))
        return 0
    print(f"trace {path}: {trace.num_tables} tables, {stream.num_lookups} lookups, {stream.num_ids} unique "
          f"{'pages' if paged else 'rows'}; {mode} mode, row {row_bytes} B"
          + (f", page {args.page_bytes} B" if args.page_bytes else ""))
    print(format_table(rows))
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
