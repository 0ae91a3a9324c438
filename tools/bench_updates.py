#!/usr/bin/env python
"""Live tables on this machine: update throughput beside ingest, lookup QPS while updates stream,
torn rows, and disk after compaction, in one run.

  ingest      rows/s of EmbeddingStore.create (the SCM page store's ingest, encode included)
  update      rows/s of sdm.runtime.updates.apply_update, random rows in batches (validate, shadow
              pages + fsync + LMDB commit, compaction at the default 1.2x bound, cache tiers updated)
  lookups     QPS of `--readers` threads with no writer, then with a writer streaming
              `--stream-rows-per-s` rows in batches of `--batch-rows` (target: >= 0.8x)
  torn rows   every looked-up row carries one stamp in all its columns: a row mixing two is torn
  disk        SCM data files / live page bytes after the stream (target: <= 1.2x)

    .venv/bin/python tools/bench_updates.py            # defaults: about a minute on a quiet 2-core box
    .venv/bin/python tools/bench_updates.py --rows 1000000 --seconds 10
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from sdm import EmbeddingStore, TableSpec
from sdm.runtime.updates import apply_update


def stamped(ids: np.ndarray, version: int, dim: int) -> np.ndarray:
    return np.repeat((version + ids / 1e7)[:, None], dim, axis=1).astype(np.float32)


def lookup_qps(store, rows: int, readers: int, seconds: float, lookup_ids: int, writer=None,
               until_lookups: int | None = None) -> tuple[float, int, int]:
    """(lookups/s over `readers` threads, lookups, torn rows seen) for `seconds` (or until
    `until_lookups` lookups were made), with `writer` running."""
    stop, counts, torn = threading.Event(), [0] * readers, [0] * readers
    offsets = torch.arange(lookup_ids)

    def read(i: int) -> None:
        rng = np.random.default_rng(i)
        while not stop.is_set():
            ids = rng.zipf(1.2, lookup_ids) % rows
            got = store.lookup("t", torch.from_numpy(ids), offsets).numpy()
            torn[i] += int((got != got[:, :1]).any(axis=1).sum())
            counts[i] += 1

    threads = [threading.Thread(target=read, args=(i,)) for i in range(readers)]
    w = None if writer is None else threading.Thread(target=writer, args=(stop,))
    for t in threads + ([w] if w else []):
        t.start()
    t0 = time.perf_counter()
    if until_lookups is None:
        time.sleep(seconds)
    else:
        while sum(counts) < until_lookups:
            time.sleep(0.05)
    stop.set()
    for t in threads + ([w] if w else []):
        t.join()
    return sum(counts) / (time.perf_counter() - t0), sum(counts), sum(torn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--cache-frac", type=float, default=0.1, help="DRAM cache, fraction of the table")
    ap.add_argument("--batch-rows", type=int, default=1000, help="rows per update batch")
    ap.add_argument("--update-batches", type=int, default=30, help="batches for the update-throughput run")
    ap.add_argument("--stream-rows-per-s", type=float, default=5000.0)
    ap.add_argument("--readers", type=int, default=2)
    ap.add_argument("--lookup-ids", type=int, default=256, help="ids per lookup (bags of one)")
    ap.add_argument("--seconds", type=float, default=4.0, help="per QPS measurement")
    ap.add_argument("--rounds", type=int, default=3, help="alternating without/with rounds (median ratio)")
    ap.add_argument("--torn-readers", type=int, default=8)
    ap.add_argument("--torn-lookups", type=int, default=100_000, help="lookups of the torn-row check")
    ap.add_argument("--torn-lookup-ids", type=int, default=16, help="ids per lookup in the torn-row check")
    ap.add_argument("--max-space-amp", type=float, default=None, help="compaction bound (default: the store's, 1.2)")
    ap.add_argument("--dir", default=None, help="where to put the store (default: a temp dir)")
    ap.add_argument("--update-alpha", type=float, default=None,
                    help="update ids Zipf(alpha) over the lookups' hot rows (retrained rows are the read "
                         "ones) instead of uniform random rows")
    args = ap.parse_args()
    rows, dim = args.rows, args.dim
    spec = TableSpec("t", rows, dim)
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench_updates_"))
    rng = np.random.default_rng(0)

    t0 = time.perf_counter()
    store = EmbeddingStore.create(base / "s", [spec], weights={"t": stamped(np.arange(rows), 0, dim)},
                                  dram_cache_bytes=int(args.cache_frac * rows * spec.row_bytes), overwrite=True)
    ingest_s = time.perf_counter() - t0
    if args.max_space_amp is not None:
        store.scm.max_space_amp = args.max_space_amp
    print(f"ingest    {rows / ingest_s:12,.0f} rows/s   ({rows:,} rows x {dim} fp32 in {ingest_s:.2f} s)")

    def update_ids(g: np.random.Generator) -> np.ndarray:
        """One batch's distinct ids: uniform, or Zipf-ranked like the lookups (hot rows updated most)."""
        if args.update_alpha is None:
            return g.choice(rows, args.batch_rows, replace=False)
        got = np.unique(g.zipf(args.update_alpha, 4 * args.batch_rows) % rows)
        return g.permutation(got)[: args.batch_rows]

    version, updated = [0], [0]   # batches, rows
    t0 = time.perf_counter()
    for _ in range(args.update_batches):
        version[0] += 1
        ids = update_ids(rng)
        apply_update(store, "t", ids, stamped(ids, version[0], dim))
        updated[0] += len(ids)
    upd_s = time.perf_counter() - t0
    kind = "random" if args.update_alpha is None else f"Zipf({args.update_alpha}) distinct"
    print(f"update    {updated[0] / upd_s:12,.0f} rows/s   ({args.update_batches} batches of <= {args.batch_rows} {kind} "
          f"rows, {upd_s / args.update_batches * 1e3:.1f} ms a batch)")

    def writer(stop: threading.Event) -> None:
        wrng = np.random.default_rng(1)
        period = args.batch_rows / args.stream_rows_per_s   # (a Zipf batch of fewer distinct rows: a lighter stream)
        nxt = time.perf_counter()
        while not stop.is_set():
            version[0] += 1
            ids = update_ids(wrng)
            apply_update(store, "t", ids, stamped(ids, version[0], dim))
            updated[0] += len(ids)
            nxt += period
            stop.wait(max(0.0, nxt - time.perf_counter()))

    lookup_qps(store, rows, args.readers, 1.0, args.lookup_ids)  # warm the cache
    ratios, torn = [], 0
    for r in range(args.rounds):   # alternating: without, then with, each round
        q0, _, t0_ = lookup_qps(store, rows, args.readers, args.seconds, args.lookup_ids)
        u_before = updated[0]
        q1, _, t1_ = lookup_qps(store, rows, args.readers, args.seconds, args.lookup_ids, writer)
        streamed = updated[0] - u_before
        ratios.append(q1 / q0)
        torn += t0_ + t1_
        print(f"lookups   {q0:12,.0f} /s without updates; {q1:,.0f} /s while {streamed / args.seconds:,.0f} rows/s "
              f"streamed: {q1 / q0:.2f}x (round {r + 1})")
    print(f"lookups   median {float(np.median(ratios)):.2f}x over {args.rounds} rounds of {args.readers} readers "
          f"(target >= 0.80)")
    _, n_t, torn_t = lookup_qps(store, rows, args.torn_readers, 0.0, args.torn_lookup_ids, writer,
                                until_lookups=args.torn_lookups)
    print(f"torn rows {torn + torn_t:12d}        {args.torn_readers} readers + 1 writer: {n_t:,} lookups of "
          f"{args.torn_lookup_ids} rows (and the rounds above; target 0)")
    w = store.clock.snapshot().get("scm_write")
    if w is not None:
        print(f"writes    {w.ops:12,d} pages, {w.bytes / 1e6:,.1f} MB, measured {w.measured_s:.2f} s, "
              f"modelled {w.modelled_s:.3f} s on {store.scm.device.name} (updates + compactions, clock tier scm_write)")
    info = store.scm.table_info("t")
    data = sum(os.path.getsize(os.path.join(info.data_file.rsplit(os.sep, 1)[0], f))
               for f in os.listdir(info.data_file.rsplit(os.sep, 1)[0]))
    print(f"disk      {data / info.live_stored_bytes:12.3f}x live data ({data / 1e6:.1f} MB of files, "
          f"{info.live_stored_bytes / 1e6:.1f} MB live pages; target <= 1.20)")
    store.close()


if __name__ == "__main__":
    main()
