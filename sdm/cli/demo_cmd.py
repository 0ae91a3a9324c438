"""`sdm-plan demo`: a DLRM with generated weights, wrapped in an EmbeddingStore on NAND emulation.

Builds the compact DLRM, writes its tables to SCM page files in a temporary directory (real
O_DIRECT reads), runs inference on a generated Zipf trace with the look-ahead prefetcher, checks
the outputs against the in-memory model, and prints hit rates, modelled and measured latency, QPS.
"""
from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sdm.core.errors import InvalidInputError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run a DLRM on tiered embedding storage (NAND emulation) and print what it cost",
        description=__doc__,
    )
    p.add_argument("--tables", type=int, default=8, help="embedding tables (default 8)")
    p.add_argument("--rows", type=int, default=100_000, help="rows per table (default 100000)")
    p.add_argument("--dim", type=int, default=32, help="embedding dimension (default 32)")
    p.add_argument("--batch", type=int, default=256, help="samples per batch (default 256)")
    p.add_argument("--pooling", type=int, default=16, help="lookups per sample and table (default 16)")
    p.add_argument("--batches", type=int, default=40, help="batches to run (default 40)")
    p.add_argument("--alpha", type=float, default=1.05, help="Zipf exponent of the trace (default 1.05)")
    p.add_argument("--cache-share", type=float, default=0.10, help="DRAM cache / embedding bytes (default 0.10)")
    p.add_argument("--policy", default="lru", choices=["lru", "lfu", "s3lru"], help="DRAM cache policy")
    p.add_argument("--hardware", default="host-nand", help="hardware preset (default host-nand)")
    p.add_argument("--prefetch", type=int, default=2, help="prefetch look-ahead in batches, 0 = off (default 2)")
    p.add_argument("--inject", action="store_true", help="sleep so SCM reads take the modelled device time")
    p.add_argument("--dir", default=None, help="directory for the store (default: a temporary one)")
    p.set_defaults(func=run)


def run(args) -> int:
    from sdm.runtime.dlrm import DLRM
    from sdm.runtime.embedding_store import EmbeddingStore, wrap
    from sdm.prefetch import Prefetcher
    from sdm.traces.generators import zipf_trace

    if args.tables < 1 or args.rows < 1 or args.batches < 1 or args.batch < 1:
        raise InvalidInputError("--tables, --rows, --batch and --batches must be >= 1")
    if not 0 <= args.cache_share <= 1:
        raise InvalidInputError(f"--cache-share must be in [0, 1], got {args.cache_share}")
    rows = [args.rows] * args.tables
    model = DLRM(rows, dim=args.dim, seed=0).eval()
    trace = zipf_trace(rows, args.batches * args.batch, batch_size=args.batch, pooling=args.pooling,
                       alpha=args.alpha, seed=1)
    batches = []
    for b in range(args.batches):
        bags = trace.batch(b)
        n = len(bags[0][1]) - 1
        dense = torch.from_numpy(np.random.default_rng(b).random((n, model.num_dense), dtype=np.float32))
        batches.append((dense, [torch.from_numpy(o[:-1].astype(np.int64)) for _, o in bags],
                        [torch.from_numpy(i.astype(np.int64)) for i, _ in bags]))
    emb_bytes = sum(r * args.dim * 4 for r in rows)
    print(f"DLRM: {args.tables} tables x {args.rows} rows x {args.dim} fp32 = {emb_bytes / 2**20:.1f} MiB of embeddings")
    print(f"trace: Zipf alpha {args.alpha}, {args.batches} batches of {args.batch} samples x {args.pooling} lookups per table")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        served = copy.deepcopy(model)
        t0 = time.perf_counter()
        store = wrap(served, Path(d) / "store", hardware=args.hardware,
                     dram_cache_bytes=int(args.cache_share * emb_bytes), policy=args.policy)
        store.close()
        store = EmbeddingStore.open(Path(d) / "store", inject=args.inject)
        served.emb_l = store.as_embedding_bags()
        print(f"store: {store.path} on {args.hardware} (SCM device {store.scm.device.name}), "
              f"DRAM cache {args.cache_share:.0%} = {args.cache_share * emb_bytes / 2**20:.1f} MiB {args.policy}, "
              f"written in {time.perf_counter() - t0:.1f} s")
        source = (Prefetcher(store, batches, depth=args.prefetch, ids_of=lambda x: dict(zip(store.tables, x[2])))
                  if args.prefetch > 0 else batches)
        lat, mismatches = [], 0
        t_start = time.perf_counter()
        with torch.no_grad():
            for dense, lS_o, lS_i in source:
                t = time.perf_counter()
                out = served(dense, lS_o, lS_i)
                lat.append(time.perf_counter() - t)
                mismatches += int(not torch.equal(out, model(dense, lS_o, lS_i)))
        wall = time.perf_counter() - t_start
        s = store.stats()
        store.close()
    tot = s["total"]
    h = tot["hit_rate"]
    sc, pf = tot["tiers"]["scm"], tot["prefetch"]
    print(f"outputs identical to the in-memory model: {'yes' if not mismatches else f'NO ({mismatches} batches differ)'}")
    rs, by = tot["row_share"], tot["scm_by_thread"]
    print(f"lookups served (share of indices, repeats included): accel {h['accel']:.3f}  DRAM {h['dram']:.3f}  "
          f"SCM {h['scm']:.3f}")
    print(f"distinct rows a batch read, where the lookup thread found them: accel {rs['accel']:.3f}  "
          f"DRAM {rs['dram']:.3f} (incl. rows the prefetcher read)  SCM {rs['scm']:.3f}")
    print(f"SCM reads by thread: lookup {by['lookup']['rows']} rows / {by['lookup']['pages']} pages, "
          f"prefetch {by['prefetch']['rows']} rows / {by['prefetch']['pages']} pages; "
          f"{by['rows_per_distinct_row']:.3f} SCM row reads per distinct row looked up")
    print(f"SCM time: measured {sc['measured_s'] + pf['measured_s']:.3f} s, modelled {sc['modelled_s'] + pf['modelled_s']:.3f} s "
          "(both threads)")
    lk = [t["latency"] for t in s["tables"].values()]
    print(f"embedding lookups: measured {tot['latency']['measured_total_s']:.3f} s, "
          f"modelled {tot['latency']['modelled_total_s']:.3f} s in total; per table call p99 measured "
          f"{max(x['p99_s'] for x in lk) * 1e3:.2f} ms, modelled {max(x['modelled_p99_s'] for x in lk) * 1e3:.2f} ms")
    print(f"batch latency (incl. the in-memory check): p50 {np.percentile(lat, 50) * 1e3:.1f} ms  "
          f"p99 {np.percentile(lat, 99) * 1e3:.1f} ms")
    print(f"QPS: {args.batches * args.batch / wall:.0f} samples/s over {wall:.1f} s (checking against the reference included)")
    return 0 if not mismatches else 1
