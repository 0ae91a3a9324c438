#!/usr/bin/env python
"""Benchmark 2: DLRM inference with a DRAM cache of 10% of the embedding bytes, the rest on SCM.

One process, one trace, one model. Three runs over the same batches:
  baseline   all tables in memory (plain nn.EmbeddingBag)
  sdm        tables in an EmbeddingStore on NAND emulation (real O_DIRECT reads of files)
  sdm+pf     the same with the look-ahead prefetcher (depth k) reading batches i+1..i+k ahead
Prints QPS (samples/s), p50/p99 batch latency, hit rates and SCM reads of each, and the QPS ratio
of sdm to the baseline (target >= 0.8x). The first --warm batches fill the cache and are not timed.

    .venv/bin/python tools/bench_dlrm.py                      # defaults: 8 tables x 250k x 32, Zipf 1.05
    .venv/bin/python tools/bench_dlrm.py --trace production   # reuse calibrated to Meta's 2021 dataset
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdm.dlrm import DLRM  # noqa: E402
from sdm.embedding_store import wrap  # noqa: E402
from sdm.prefetch import Prefetcher  # noqa: E402


def make_trace(kind: str, rows: list[int], samples: int, batch: int, pooling: int, alpha: float, seed: int):
    from sdm.traces import generators as g

    if kind == "zipf":
        return g.zipf_trace(rows, samples, batch_size=batch, pooling=pooling, alpha=alpha, seed=seed)
    return g.production_trace(rows, samples // batch, batch_size=batch, pooling=pooling, seed=seed)


def inputs(trace, b: int, num_dense: int):
    bags = trace.batch(b)
    n = len(bags[0][1]) - 1
    dense = torch.from_numpy(np.random.default_rng(b).random((n, num_dense), dtype=np.float32))
    lS_i = [torch.from_numpy(np.ascontiguousarray(i, dtype=np.int64)) for i, _ in bags]
    lS_o = [torch.from_numpy(np.ascontiguousarray(o[:-1], dtype=np.int64)) for _, o in bags]
    return dense, lS_o, lS_i


def run(model, batches, timed_from: int, source=None):
    """Per-batch latency of model forward over `batches` (an iterable of inputs), after warm-up."""
    lat = []
    with torch.no_grad():
        t_start = None
        for k, (dense, lS_o, lS_i) in enumerate(source if source is not None else batches):
            if k == timed_from:
                t_start = time.perf_counter()
            t = time.perf_counter()
            model(dense, lS_o, lS_i)
            if k >= timed_from:
                lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - t_start
    return lat, wall


def report(name, lat, wall, samples, extra=""):
    qps = samples / wall
    print(f"{name:10s} QPS {qps:10.0f}  p50 {np.percentile(lat, 50) * 1e3:7.2f} ms  "
          f"p99 {np.percentile(lat, 99) * 1e3:7.2f} ms  {extra}")
    return qps


def hit_summary(store) -> str:
    t = store.stats()["total"]
    h = t["hit_rate"]
    sc = t["tiers"]["scm"]
    pf = t["prefetch"]
    p99 = max(x["latency"]["p99_s"] for x in store.stats()["tables"].values())
    return (f"lookup p99 {p99 * 1e3:.2f} ms; hits accel {h['accel']:.3f} dram {h['dram']:.3f} scm {h['scm']:.3f}; "
            f"SCM pages {sc['reads']} (+{pf['reads']} prefetched), modelled SCM {sc['modelled_s'] + pf['modelled_s']:.3f} s, "
            f"measured SCM {sc['measured_s'] + pf['measured_s']:.3f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", type=int, default=8)
    ap.add_argument("--rows", type=int, default=250_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--pooling", type=int, default=16)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--warm", type=int, default=15, help="untimed batches that fill the cache")
    ap.add_argument("--cache-share", type=float, default=0.10, help="DRAM cache / embedding bytes")
    ap.add_argument("--trace", default="zipf", choices=["zipf", "production"])
    ap.add_argument("--alpha", type=float, default=1.05)
    ap.add_argument("--depth", type=int, default=2, help="prefetch look-ahead in batches")
    ap.add_argument("--queue-depth", type=int, default=32)
    ap.add_argument("--policy", default="lru", choices=["lru", "lfu"])
    ap.add_argument("--hardware", default="host-nand")
    ap.add_argument("--hot-layout", action="store_true",
                    help="lay rows out on SCM pages hottest first, from a profile of a separate history "
                         "trace (same distribution, another seed): misses then share pages more often")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for every run (default 1: on a shared machine, OpenMP "
                         "teams of several threads stall badly when cores are oversubscribed)")
    ap.add_argument("--dir", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = [a.rows] * a.tables
    model = DLRM(rows, dim=a.dim, seed=0).eval()
    total = a.batches + a.warm
    trace = make_trace(a.trace, rows, total * a.batch, a.batch, a.pooling, a.alpha, seed=1)
    batches = [inputs(trace, b, model.num_dense) for b in range(total)]
    timed_samples = a.batches * a.batch
    emb_bytes = sum(r * a.dim * 4 for r in rows)
    print(f"{a.tables} tables x {a.rows} rows x {a.dim} fp32 = {emb_bytes / 2**20:.0f} MiB; trace {a.trace}"
          f"{f' (alpha {a.alpha})' if a.trace == 'zipf' else ''}; batch {a.batch} x pooling {a.pooling}; "
          f"{a.batches} timed batches after {a.warm} warm-up; DRAM cache {a.cache_share:.0%} = "
          f"{a.cache_share * emb_bytes / 2**20:.1f} MiB, policy {a.policy}, hardware {a.hardware}, QD {a.queue_depth}, "
          f"page layout {'hottest first (history profile)' if a.hot_layout else 'id order'}, "
          f"torch threads {torch.get_num_threads()}")
    lat, wall = run(model, batches, a.warm)
    base = report("baseline", lat, wall, timed_samples, "(all tables in memory)")
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        sdm_model = copy.deepcopy(model)
        t0 = time.perf_counter()
        plan = None
        if a.hot_layout:
            history = make_trace(a.trace, rows, total * a.batch, a.batch, a.pooling, a.alpha, seed=2)
            plan = {"dram_cache_bytes": int(a.cache_share * emb_bytes), "policy": a.policy, "tables": {}}
            for t in range(a.tables):
                counts = np.bincount(history.table_stream(t), minlength=rows[t])
                plan["tables"][f"emb_l.{t}"] = {"row_order": np.argsort(-counts, kind="stable")}
        store = wrap(sdm_model, Path(d) / "s", hardware=a.hardware, dram_cache_bytes=int(a.cache_share * emb_bytes),
                     policy=a.policy, queue_depth=a.queue_depth, plan=plan)
        print(f"store written in {time.perf_counter() - t0:.1f} s")
        results, modelled_io = {}, {}
        for name, use_pf in (("sdm", False), ("sdm+pf", True)):
            store.close()
            from sdm.embedding_store import EmbeddingStore

            store = EmbeddingStore.open(Path(d) / "s", queue_depth=a.queue_depth)   # cold cache each run
            sdm_model.emb_l = store.as_embedding_bags()
            src = Prefetcher(store, batches, depth=a.depth, ids_of=lambda x: dict(zip(store.tables, x[2]))) if use_pf else None
            # stats count the timed part only: reset once the warm-up batches are through
            counted = _ResetAt(store, a.warm, src if src is not None else batches)
            lat, wall = run(sdm_model, batches, a.warm, source=counted)
            results[name] = report(name, lat, wall, timed_samples, hit_summary(store))
            tot = store.stats()["total"]
            modelled_io[name] = tot["tiers"]["scm"]["modelled_s"] + tot["prefetch"]["modelled_s"]
            device = store.scm.device.name
        store.close()
    print(f"ratio sdm / baseline QPS     : {results['sdm'] / base:.3f}x  (target >= 0.8x)")
    print(f"ratio sdm+pf / baseline QPS  : {results['sdm+pf'] / base:.3f}x  (prefetch depth {a.depth})")
    # What the device model predicts if this disk were the emulated device: baseline compute plus
    # (no prefetch) or overlapped with (prefetch) the modelled SCM time. A model, not a measurement.
    compute = timed_samples / base
    print(f"modelled on {device}: sdm {compute / (compute + modelled_io['sdm']):.3f}x, "
          f"sdm+pf {compute / max(compute, modelled_io['sdm+pf']):.3f}x of baseline QPS "
          f"(SCM {modelled_io['sdm'] / a.batches * 1e3:.1f} ms/batch modelled vs {compute / a.batches * 1e3:.1f} ms compute)")
    return 0


class _ResetAt:
    """Iterate a batch source, resetting the store's stats when batch `k` comes up."""

    def __init__(self, store, k, source):
        self.store, self.k, self.source = store, k, source

    def __iter__(self):
        for i, b in enumerate(self.source):
            if i == self.k:
                self.store.reset_stats()
            yield b


if __name__ == "__main__":
    sys.exit(main())
