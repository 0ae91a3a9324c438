#!/usr/bin/env python
"""Benchmark 2: DLRM inference with a DRAM cache of 10% of the embedding bytes, the rest on SCM.

One process, one trace, one model, the same batches for every run (target: sdm >= 0.8x baseline QPS):
  baseline     all tables in memory (plain nn.EmbeddingBag), timed before and after the sdm runs;
               the faster of the two is the ratio's denominator (the conservative choice)
  lru          EmbeddingStore, no profile: SCM pages in id order, LRU, every miss admitted, cold start
  profiled     EmbeddingStore built with a profile of *past* traffic (the --history batches that
               precede the served ones in the same stream; never the measured batches): SCM pages hottest first, DRAM budget
               split by hotness, only predicted-warm rows admitted (--admission), page-granular
               admission per --page-admit (auto: off under warm admission), cache warmed from the profile
  profiled+pf  the same with the look-ahead prefetcher (depth k) reading batches i+1..i+k ahead
Every sdm run opens the store afresh (cold cache), runs --warm untimed batches, resets its stats, and
times --batches batches (steady state). SCM is real: page files read with O_DIRECT on this disk.

Printed per run: QPS (samples/s), p50/p99 batch latency, DRAM hit rate, SCM pages per batch (lookup
path + prefetch), rows admitted from shared pages, lookup-thread I/O wait (prefetch runs), and the
ratios. Then the same run's SCM page counts priced by the NAND (P3700) and 3DXP (4 x P4800X) device
models, and the physical bound: pages per batch / IOPS of this disk vs compute per batch.

    .venv/bin/python tools/bench_dlrm.py                      # Zipf 1.05, 8 tables x 250k x 32 fp32
    .venv/bin/python tools/bench_dlrm.py --trace production   # reuse calibrated to Meta's 2021 data
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdm.runtime.dlrm import DLRM  # noqa: E402
from sdm.runtime.embedding_store import EmbeddingStore, wrap  # noqa: E402
from sdm.prefetch import Prefetcher  # noqa: E402
from sdm.hardware.server import hardware  # noqa: E402

RUNS = ("lru", "profiled", "profiled+pf")


def make_trace(kind: str, rows: list[int], samples: int, batch: int, pooling: int, alpha: float, seed: int):
    import sdm.traces as g

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


def line(name, lat, wall, samples, extra=""):
    qps = samples / wall
    print(f"{name:12s} QPS {qps:9.0f}  p50 {np.percentile(lat, 50) * 1e3:7.2f} ms  "
          f"p99 {np.percentile(lat, 99) * 1e3:7.2f} ms  {extra}", flush=True)
    return qps


class _ResetAt:
    """Iterate a batch source, resetting the store's stats when batch `k` comes up (and the
    prefetcher's wait counters, so both cover the timed batches only)."""

    def __init__(self, store, k, source, pf=None):
        self.store, self.k, self.source, self.pf = store, k, source, pf

    def __iter__(self):
        for i, b in enumerate(self.source):
            if i == self.k:
                self.store.reset_stats()
                if self.pf is not None:
                    self.pf.wait_s = self.pf.prefetch_s = 0.0
            yield b


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", type=int, default=8)
    ap.add_argument("--rows", type=int, default=250_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--pooling", type=int, default=16)
    ap.add_argument("--batches", type=int, default=60, help="timed batches per run")
    ap.add_argument("--warm", type=int, default=30, help="untimed batches before timing (steady state)")
    ap.add_argument("--cache-share", type=float, default=0.10, help="DRAM cache / embedding bytes")
    ap.add_argument("--history", type=int, default=200, help="batches of past traffic the profile is built from")
    ap.add_argument("--trace", default="zipf", choices=["zipf", "production"])
    ap.add_argument("--alpha", type=float, default=1.05)
    ap.add_argument("--depth", type=int, default=2, help="prefetch look-ahead in batches")
    ap.add_argument("--queue-depth", type=int, default=32)
    ap.add_argument("--policy", default="lru", choices=["lru", "lfu", "s3lru", "sketch-lfu", "duel"],
                    help="DRAM cache policy (each charged its index bytes in the same byte budget)")
    ap.add_argument("--hardware", default="host-nand")
    ap.add_argument("--page-admit", default="auto", choices=["auto", "off", "warm", "all"],
                    help="page-granular admission of the profiled store")
    ap.add_argument("--admission", default="warm", choices=["auto", "all", "warm"], help="admission of the profiled store")
    ap.add_argument("--page-layout", "--layout", dest="page_layout", default="hot", choices=["hot", "id"],
                    help="SCM page layout of the profiled store (--layout: its old name)")
    ap.add_argument("--no-warm-start", action="store_true", help="profiled runs: do not preload the hot set")
    ap.add_argument("--runs", default=",".join(RUNS), help=f"comma list of {RUNS}")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for every run (default 1: on a shared machine, OpenMP "
                         "teams of several threads stall badly when cores are oversubscribed)")
    ap.add_argument("--switch-interval", type=float, default=None,
                    help="sys.setswitchinterval for the run (Python's default 0.005 s: a thread that needs the "
                         "GIL, e.g. the prefetcher verifying a page, may wait that long behind the model thread)")
    ap.add_argument("--dir", default=None)
    a = ap.parse_args(argv)
    runs = [r for r in a.runs.split(",") if r]
    if set(runs) - set(RUNS):
        ap.error(f"unknown runs {sorted(set(runs) - set(RUNS))}; choose from {RUNS}")
    torch.set_num_threads(a.threads)
    if a.switch_interval is not None:
        sys.setswitchinterval(a.switch_interval)
    rows = [a.rows] * a.tables
    model = DLRM(rows, dim=a.dim, seed=0).eval()
    total = a.batches + a.warm
    # one stream: the first --history batches are past traffic (the profile's source, never
    # measured), the next warm + timed batches are served. (Another seed would not do: the
    # generators' id scrambling depends on the seed, so its hot rows would be other ids.)
    trace = make_trace(a.trace, rows, (a.history + total) * a.batch, a.batch, a.pooling, a.alpha, seed=1)
    batches = [inputs(trace, a.history + b, model.num_dense) for b in range(total)]
    timed_samples = a.batches * a.batch
    emb_bytes = sum(r * a.dim * 4 for r in rows)
    cache_bytes = int(a.cache_share * emb_bytes)
    print(f"{a.tables} tables x {a.rows} rows x {a.dim} fp32 = {emb_bytes / 2**20:.0f} MiB; trace {a.trace}"
          f"{f' (alpha {a.alpha})' if a.trace == 'zipf' else ' (production_trace, Meta 2021 reuse)'}; batch {a.batch} x "
          f"pooling {a.pooling}; {a.batches} timed batches after {a.warm} warm-up; DRAM cache {a.cache_share:.0%} = "
          f"{cache_bytes / 2**20:.1f} MiB, policy {a.policy}, hardware {a.hardware}, QD {a.queue_depth}, "
          f"torch threads {torch.get_num_threads()}, GIL switch interval {sys.getswitchinterval() * 1e3:g} ms", flush=True)
    lat, wall = run(model, batches, a.warm)
    base1 = line("baseline", lat, wall, timed_samples, "(all tables in memory; before)")
    res: dict[str, dict] = {}
    if a.dir:
        os.makedirs(a.dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        paths = {}
        if "lru" in runs:
            t0 = time.perf_counter()
            s = wrap(copy.deepcopy(model), Path(d) / "lru", hardware=a.hardware, dram_cache_bytes=cache_bytes,
                     policy=a.policy, queue_depth=a.queue_depth, admission="all", page_admit="off", page_layout="id")
            s.close()
            paths["lru"] = Path(d) / "lru"
            print(f"store 'lru' written in {time.perf_counter() - t0:.1f} s (id-order pages)", flush=True)
        if any(r.startswith("profiled") for r in runs):
            t0 = time.perf_counter()
            hist = [trace.batch(b) for b in range(a.history)]
            profile = {f"emb_l.{t}": np.bincount(np.concatenate([h[t][0] for h in hist]), minlength=rows[t])
                       for t in range(a.tables)}
            s = wrap(copy.deepcopy(model), Path(d) / "prof", hardware=a.hardware, dram_cache_bytes=cache_bytes,
                     policy=a.policy, queue_depth=a.queue_depth, profile=profile, page_layout=a.page_layout,
                     admission=a.admission, page_admit=a.page_admit)
            s.close()
            paths["profiled"] = paths["profiled+pf"] = Path(d) / "prof"
            print(f"store 'profiled' written in {time.perf_counter() - t0:.1f} s ({a.page_layout} page layout, admission "
                  f"{a.admission}, page admission {a.page_admit}; profile of the {a.history} batches before the served ones)", flush=True)
        sdm_model = copy.deepcopy(model)
        for name in runs:
            store = EmbeddingStore.open(paths[name], queue_depth=a.queue_depth)   # cold cache each run
            warmed = 0
            if name.startswith("profiled") and not a.no_warm_start:
                t0 = time.perf_counter()
                warmed = store.warm()
                print(f"  {name}: {warmed} hot rows preloaded from the profile in {time.perf_counter() - t0:.2f} s", flush=True)
            sdm_model.emb_l = store.as_embedding_bags()
            pf = None
            if name.endswith("+pf"):
                pf = Prefetcher(store, batches, depth=a.depth, ids_of=lambda x: dict(zip(store.tables, x[2])))
            counted = _ResetAt(store, a.warm, pf if pf is not None else batches, pf)
            cpu0 = time.process_time()
            lat, wall = run(sdm_model, batches, a.warm, source=counted)
            cpu_s = time.process_time() - cpu0   # this process's CPU time, all threads, warm-up included
            st = store.stats()["total"]
            sc, pre = st["tiers"]["scm"], st["prefetch"]
            pages = (sc["reads"] + pre["reads"]) / a.batches
            r = {"qps": timed_samples / wall, "wall": wall, "lat": lat, "pages": pages, "dram": st["hit_rate"]["dram"],
                 "scm_s": sc["measured_s"] + pre["measured_s"], "scm_path_s": sc["measured_s"],
                 "admitted": (sc["admitted"] + pre["admitted"]) / a.batches}
            # CPU used per batch (warm-up + timed batches): how much of a core the run had and used
            cpu_note = f"; process CPU {cpu_s / total * 1e3:.1f} ms/batch"
            extra = (f"DRAM hit {r['dram']:.3f}; SCM pages/batch {sc['reads'] / a.batches:.0f} on lookup path "
                     f"+ {pre['reads'] / a.batches:.0f} prefetched; page-mates admitted/batch {r['admitted']:.0f}; "
                     f"SCM read time {r['scm_s']:.2f} s{cpu_note}")
            if pf is not None:
                ov = pf.overlap()
                r["wait_s"] = ov["wait_s"]
                extra += (f"; lookup thread waited on I/O {ov['wait_s']:.2f} s of {wall:.2f} s "
                          f"(prefetch thread busy {ov['prefetch_s']:.2f} s, {ov['hidden']:.0%} hidden)")
            line(name, lat, wall, timed_samples, extra)
            res[name] = r
            store.close()
    lat, wall = run(model, batches, a.warm)
    base2 = line("baseline", lat, wall, timed_samples, "(all tables in memory; after)")
    base = max(base1, base2)
    compute_s = timed_samples / base / a.batches          # model time per batch, all in memory
    print(f"\nratios to baseline QPS {base:.0f} (target >= 0.8x):")
    for name, r in res.items():
        print(f"  {name:12s} {r['qps'] / base:.4f}x   DRAM hit {r['dram']:.3f}   SCM pages/batch {r['pages']:.0f}")
    hw_nand, hw_3dxp = hardware("host-nand"), hardware("host-3dxp")
    print(f"\nmodelled (same run's page counts priced by the device models, QD {a.queue_depth} per drive; "
          f"sdm's own CPU time per batch kept as measured):")
    for name, r in res.items():
        cpu = (r["wall"] - (r["scm_path_s"] if "wait_s" not in r else r["wait_s"])) / a.batches
        parts = []
        for label, hw in (("NAND 1 x P3700", hw_nand), ("3DXP 4 x P4800X", hw_3dxp)):
            io = float(hw.scm_read_time_s(int(round(r["pages"])), 4096, a.queue_depth))
            per_batch = max(cpu, io) if "wait_s" in r else cpu + io   # prefetch overlaps I/O with compute
            parts.append(f"{label}: {io * 1e3:.2f} ms I/O/batch -> {compute_s / per_batch:.3f}x")
        print(f"  {name:12s} " + "; ".join(parts))
    print("  device-only bound (baseline compute + the modelled I/O, zero sdm software time; serial / overlapped):")
    for name, r in res.items():
        parts = []
        for label, hw in (("NAND", hw_nand), ("3DXP", hw_3dxp)):
            io = float(hw.scm_read_time_s(int(round(r["pages"])), 4096, a.queue_depth))
            parts.append(f"{label} {compute_s / (compute_s + io):.3f}x / {compute_s / max(compute_s, io):.3f}x")
        print(f"  {name:12s} " + "; ".join(parts))
    print("\nphysical bound on this machine (I/O per batch vs compute per batch):")
    iops_of = {name: (r["pages"] * a.batches / r["scm_s"] if r["scm_s"] > 0 else float("inf"))
               for name, r in res.items()}
    best_iops = max(iops_of.values()) if iops_of else float("inf")
    for name, r in res.items():
        iops = iops_of[name]
        io = r["pages"] / iops
        bound = compute_s / max(compute_s, io)
        strict = compute_s / max(compute_s, r["pages"] / best_iops)   # at the best IOPS any run of this one reached
        print(f"  {name:12s} {r['pages']:.0f} pages/batch / {iops:,.0f} IOPS measured = {io * 1e3:.1f} ms vs "
              f"{compute_s * 1e3:.2f} ms compute: at best {compute_s / (compute_s + io):.4f}x serial, "
              f"{bound:.4f}x fully overlapped; 0.8x needs <= "
              f"{compute_s / 0.8 * iops - compute_s * iops:.1f} pages/batch (serial) at this IOPS")
        print(f"  {'':12s} QPS ratio {r['qps'] / base:.4f}x = {r['qps'] / base / bound:.2f}x this bound (target >= 0.9); "
              f"{r['qps'] / base / strict:.2f}x the bound at the run's best IOPS ({best_iops:,.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
