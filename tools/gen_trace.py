#!/usr/bin/env python
"""Generate a synthetic trace file, or time the generators and the profiler.

  python tools/gen_trace.py zipf --tables criteo-kaggle --samples 100000 --alpha 1.05 --out t.npz
  python tools/gen_trace.py stack --tables 1000000,50000 --samples 100000 --pooling 8 --out t.npz
  python tools/gen_trace.py production --tables 2000000x16 --batches 4 --batch-size 8192 \\
      --pooling 16 --coaccess-group 4 --out prod.npz      # prints the achieved reuse table
  python tools/gen_trace.py bench --lookups 10000000      # seconds per 10M-lookup trace, with baselines

Outputs ending in .npz are single files; any other name becomes a memory-mappable directory.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from sdm.core.errors import SdmError  # noqa: E402
from sdm.traces.generators import zipf_trace  # noqa: E402
from sdm.traces.production import production_trace  # noqa: E402
from sdm.traces.stack_distance import stack_distance_trace  # noqa: E402
from sdm.traces.table_sets import TABLE_SETS, table_rows  # noqa: E402
from sdm.traces.reuse import META_2021_REUSE, load_reuse, min_batch_lookups, reuse_table  # noqa: E402


def parse_tables(spec: str) -> list[int]:
    """'criteo-kaggle', 'criteo-terabyte', 'N,N,...' or 'NxK' (K tables of N rows)."""
    if "x" in spec and "," not in spec and spec not in TABLE_SETS:
        n, k = spec.split("x")
        return [int(n)] * int(k)
    return table_rows(spec)


def build(args):
    rows = parse_tables(args.tables)
    if args.kind == "zipf":
        return zipf_trace(rows, args.samples, batch_size=args.batch_size, pooling=args.pooling,
                          alpha=args.alpha, seed=args.seed, pooling_dist=args.pooling_dist)
    if args.kind == "stack":
        return stack_distance_trace(rows, args.samples, batch_size=args.batch_size, pooling=args.pooling,
                                    beta=args.beta, cold_share=args.cold_share, seed=args.seed,
                                    pooling_dist=args.pooling_dist)
    return production_trace(rows, args.batches, batch_size=args.batch_size, pooling=args.pooling,
                            seed=args.seed, coaccess_group=args.coaccess_group,
                            coaccess_strength=args.coaccess_strength, reuse=given_reuse(args))


def given_reuse(args):
    """The reuse table to calibrate to: --reuse FILE.json, else Meta's published 2021 one."""
    return load_reuse(args.reuse) if getattr(args, "reuse", None) else META_2021_REUSE


def print_reuse(trace, given=META_2021_REUSE) -> None:
    batch0 = trace.global_stream(0, 1)
    achieved = reuse_table(batch0)
    du, dl = achieved.max_abs_diff(given)
    print("achieved reuse table of batch 0:")
    print(achieved.format())
    print(f"given ({given.source}):")
    print(given.format())
    print(f"max |difference|: unique-row shares {du:.4f}, lookup shares {dl:.4f} (target <= 0.02)")
    need, have = min_batch_lookups(given), int(batch0.size)
    if have < need:
        print(f"note: a batch holds {have:,} lookups; every bucket of the given table is reachable only with "
              f">= {need:,} (a bucket (lo, hi] with a share x of lookups needs x * lookups > lo): raise "
              "--batch-size or --pooling")


def bench(args) -> int:
    """Time each generator on a trace of about `--lookups` lookups, next to a baseline measured in the
    same run: drawing the same number of uniform random ids (numpy's floor for 'any generator')."""
    from sdm.placement.profile import Profile

    L = args.lookups
    rows = [4_000_000] * 8
    B = 8192
    t0 = time.perf_counter()
    base = np.random.default_rng(0).integers(0, 4_000_000, L)
    t_base = time.perf_counter() - t0
    del base
    print(f"{L:,} lookups, 8 tables x 4M rows; baseline rng.integers of {L:,} ids: {t_base:.3f} s")
    # warm the compiled kernels so the figures are steady-state (numba caches them on disk anyway)
    stack_distance_trace([1000], 100, seed=0)
    production_trace([100_000] * 2, 1, batch_size=256, pooling=4)
    print(f"{'generator':<12}{'seconds':>10}{'M lookups/s':>14}{'x baseline time':>17}")
    made = {}
    for name, fn in [
        ("zipf", lambda: zipf_trace(rows, L // len(rows), batch_size=B, pooling=1.0, alpha=1.05)),
        ("stack", lambda: stack_distance_trace(rows, L // len(rows), batch_size=B, pooling=1.0)),
        # 4 batches of 8192 samples with the pooling that makes L lookups (Meta's mean is ~16)
        ("production", lambda: production_trace(rows, 4, batch_size=B, pooling=L / (4 * B * len(rows)))),
    ]:
        t0 = time.perf_counter()
        tr = fn()
        dt = time.perf_counter() - t0
        made[name] = tr
        print(f"{name:<12}{dt:>10.2f}{tr.num_lookups / dt / 1e6:>14.1f}{dt / t_base:>17.1f}   ({tr.num_lookups:,} lookups)")
    tr = made["zipf"]
    t0 = time.perf_counter()
    np.bincount(tr.global_stream(), minlength=tr.total_rows)
    t_bc = time.perf_counter() - t0
    t0 = time.perf_counter()
    Profile.from_trace(tr, coaccess_rows=0)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = Profile.from_trace(tr, memory_budget_bytes=2 << 20, coaccess_rows=0)
    t_sketch = time.perf_counter() - t0
    print(f"profile of the zipf trace: exact {t_exact:.2f} s, sketch (2 MiB/table) {t_sketch:.2f} s; "
          f"baseline one bincount of the global stream {t_bc:.2f} s; "
          f"sketch memory {p.memory_bytes / 2**20:.1f} MiB vs exact {4 * tr.total_rows / 2**20:.1f} MiB")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["zipf", "stack", "production", "bench"])
    ap.add_argument("--tables", default="criteo-kaggle", help="criteo-kaggle | criteo-terabyte | N,N,... | NxK")
    ap.add_argument("--samples", type=int, default=100_000, help="samples (zipf, stack)")
    ap.add_argument("--batches", type=int, default=4, help="batches (production)")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--pooling", type=float, default=1.0, help="mean lookups per sample per table")
    ap.add_argument("--pooling-dist", choices=["fixed", "poisson"], default="fixed")
    ap.add_argument("--alpha", type=float, default=1.05, help="Zipf exponent (zipf)")
    ap.add_argument("--beta", type=float, default=1.0, help="stack-distance exponent (stack)")
    ap.add_argument("--cold-share", type=float, default=0.05, help="share of first touches (stack)")
    ap.add_argument("--coaccess-group", type=int, default=0, help="rows per co-access group (production)")
    ap.add_argument("--coaccess-strength", type=float, default=0.8)
    ap.add_argument("--reuse", metavar="FILE.json",
                    help="production: calibrate to this published reuse table (unique_share, lookup_share over "
                         "17 buckets; docs/traces.md) instead of Meta's 2021 one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lookups", type=int, default=10_000_000, help="trace size for bench")
    ap.add_argument("--out", help="trace file (.npz) or directory to write")
    args = ap.parse_args(argv)
    try:
        if args.kind == "bench":
            return bench(args)
        t0 = time.perf_counter()
        trace = build(args)
        dt = time.perf_counter() - t0
        print(f"{trace!r} generated in {dt:.2f} s ({trace.num_lookups / dt / 1e6:.1f} M lookups/s)")
        if args.kind == "production":
            print_reuse(trace, given_reuse(args))
        if args.out:
            print(f"written to {trace.save(args.out)}")
    except SdmError as exc:
        print(f"gen_trace: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
