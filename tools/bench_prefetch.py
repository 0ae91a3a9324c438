"""Distinct SCM row reads of the runtime's cache with look-ahead prefetch vs Belady, LRU and S3-FIFO.

One table's stream, in batches. Every figure counts distinct rows read from SCM: each batch's
repeats are removed first (a batch reads a row once, however often it looks it up), so
  Belady   = BatchOPT (sdm.cache.window_opt): the least any batch cache of that many rows can
             read (a batch's rows all at hand at once; the sequential OPT of the deduplicated
             stream, printed as seqOPT, is 0-2% above it and is not a lower bound of batches),
  LRU, S3-FIFO = the simulator's fully associative replays of that stream,
  P-kN     = the runtime's set-associative cache (16 ways, sdm.cache.index) with policy P (lru,
             s3lru, sketch-lfu, duel) replayed batch by batch with a look-ahead of N batches
             (sdm.cachesim.lookahead_replay: the prefetcher's rule, demand and prefetch reads
             summed); P-k0 = no prefetch.
  ideal-kN = the fully associative window rule (sdm.cache.window_opt.window_reads, hits
             protected): rows used in the next N batches by next use, the rest by the better of
             two base orders, LRU or exact read counts (LFU that never forgets): what a cache
             that sees N batches ahead reads without set conflicts and with true frequencies.
             Not a proof of a bound, a measured reference: where it is above 1.15 at N = 2, a
             better base policy alone does not bring the runtime to the target.
Ratios are reads / Belady. Targets (issue 11): P-k2.. <= 1.15x Belady and <= P-k0; P-k0 <= min(LRU, S3-FIFO).
`--curve` prints reads / Belady against the depth (0, 2, 4, 8, 16) for each runtime policy and the ideal.

    python tools/bench_prefetch.py            # production-like + Zipf 1.05 / 1.2, caches 1/5/10/20 %, batches 64 / 1024
    python tools/bench_prefetch.py --quick    # small streams (a test runs this)
    python tools/bench_prefetch.py --curve    # the depth curve
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdm.cache.index import CacheIndex  # noqa: E402
from sdm.cache.window_opt import batch_opt_reads, window_reads  # noqa: E402
from sdm.cachesim import simulate  # noqa: E402
from sdm.cachesim.lookahead_replay import replay_lookahead  # noqa: E402
from sdm.core.text_table import text_table  # noqa: E402
from sdm.traces.generators import zipf_trace  # noqa: E402
from sdm.traces.production import production_trace  # noqa: E402

CACHE_SHARES = (0.01, 0.05, 0.10, 0.20)
BATCHES = (64, 1024)
DEPTHS = (0, 2, 4)
CURVE_DEPTHS = (0, 2, 4, 8, 16)
RUNTIME_POLICIES = ("lru", "s3lru", "sketch-lfu", "duel")
WAYS = 16


COLUMNS = tuple(f"{p}-k{k}" for p in RUNTIME_POLICIES for k in DEPTHS)


def stream(kind: str, lookups: int, rows: int, seed: int = 0) -> np.ndarray:
    """One table's ids in time order."""
    if kind == "production":
        t = production_trace([rows], max(1, lookups // 4096), batch_size=256, pooling=16.0, seed=seed)
    else:
        t = zipf_trace([rows], lookups, batch_size=1024, alpha=float(kind.split("-")[1]), seed=seed)
    return np.asarray(t.indices[0], np.int64)


def dedup(ids: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids with each batch's repeats removed, batch starts in it)."""
    parts = [np.unique(ids[a:a + batch]) for a in range(0, len(ids), batch)]
    starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
    return np.concatenate(parts), starts.astype(np.int64)


def measure(ids: np.ndarray, batch: int, share: float, depths=DEPTHS) -> dict:
    d, starts = dedup(ids, batch)
    unique = int(np.unique(ids).size)
    cap = max(WAYS, int(share * unique))
    row = {"rows": cap}
    for name in ("lru", "s3fifo"):
        row[name] = simulate(d, cap, name).misses
    row["seqopt"] = simulate(d, cap, "opt").misses
    batch_starts = np.arange(0, len(ids), batch)
    row["opt"] = batch_opt_reads(ids, batch_starts, cap)
    for k in depths:
        row[f"ideal-k{k}"] = min(window_reads(ids, batch_starts, cap, k, base, protect_hits=True)
                                 for base in ("lru", "lfu"))
    top = int(ids.max()) + 1
    for pol in RUNTIME_POLICIES:
        for k in depths:
            # the store's cache is per batch over the original stream; repeats in a batch read once
            idx = CacheIndex(top, cap, ways=WAYS, layout="hashed", policy=pol)
            row[f"{pol}-k{k}"] = replay_lookahead(idx, ids, np.arange(0, len(ids), batch), k).reads
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small streams (seconds)")
    ap.add_argument("--lookups", type=int, default=None, help="lookups per stream (default 200k, quick 20k)")
    ap.add_argument("--curve", action="store_true", help="reads / Belady against the look-ahead depth")
    args = ap.parse_args(argv)
    lookups = args.lookups or (20_000 if args.quick else 200_000)
    rows = 50_000 if args.quick else 400_000
    kinds = ("production", "zipf-1.05") if args.quick else ("production", "zipf-1.05", "zipf-1.2")
    out, worst, logs = [], {}, {}
    t0 = time.perf_counter()
    if args.curve:
        return curve(kinds, lookups, rows, t0)
    for kind in kinds:
        ids = stream(kind, lookups, rows)
        for batch in BATCHES:
            for share in CACHE_SHARES:
                r = measure(ids, batch, share)
                opt = max(r["opt"], 1)
                for pol in RUNTIME_POLICIES:
                    k0 = r[f"{pol}-k0"]
                    pf = [r[f"{pol}-k{k}"] for k in DEPTHS if k >= 2]
                    w = worst.setdefault(pol, {"pf_vs_opt": 0.0, "pf_vs_k0": 0.0, "k0_vs_best": 0.0})
                    w["pf_vs_opt"] = max(w["pf_vs_opt"], max(pf) / opt)
                    w["pf_vs_k0"] = max(w["pf_vs_k0"], max(pf) / max(k0, 1))
                    w["k0_vs_best"] = max(w["k0_vs_best"], k0 / max(min(r["lru"], r["s3fifo"]), 1))
                    logs.setdefault(pol, []).append((np.log(k0 / max(min(r["lru"], r["s3fifo"]), 1)),
                                                     np.log(r[f"{pol}-k2"] / opt)))
                w = worst.setdefault("ideal", {"pf_vs_opt": 0.0})
                w["pf_vs_opt"] = max(w["pf_vs_opt"], r["ideal-k2"] / opt)
                out.append([kind, batch, f"{share:.0%}", r["rows"], r["opt"], f"{r['seqopt'] / opt:.3f}",
                            f"{r['lru'] / opt:.3f}", f"{r['s3fifo'] / opt:.3f}"]
                           + [f"{r[c] / opt:.3f}" for c in COLUMNS] + [f"{r['ideal-k2'] / opt:.3f}"])
    print(f"distinct SCM row reads / Belady ({lookups} lookups a stream, {WAYS}-way runtime cache)")
    print(text_table(["stream", "batch", "cache", "rows", "Belady", "seqOPT", "LRU", "S3-FIFO"] + list(COLUMNS)
                     + ["ideal-k2"], out))
    ideal = worst.pop("ideal")["pf_vs_opt"]
    for pol, w in worst.items():
        print(f"worst, runtime {pol}: look-ahead >= 2 vs Belady {w['pf_vs_opt']:.3f}x (target <= 1.15), "
              f"vs no prefetch {w['pf_vs_k0']:.3f}x (target <= 1), "
              f"no prefetch vs best of LRU/S3-FIFO {w['k0_vs_best']:.3f}x (target <= 1)")
    for pol, pairs in logs.items():
        k0_log, k2_log = np.mean(pairs, axis=0)
        print(f"geomean over the rows, runtime {pol}: no prefetch vs best of LRU/S3-FIFO {np.exp(k0_log):.3f}x, "
              f"look-ahead 2 vs Belady {np.exp(k2_log):.3f}x")
    print(f"worst, ideal (fully associative window rule, best of LRU / exact-count LFU base) at look-ahead 2 "
          f"vs Belady {ideal:.3f}x")
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


def curve(kinds, lookups: int, rows: int, t0: float) -> int:
    """Reads / Belady against the look-ahead depth, per stream, batch and cache size."""
    names = list(RUNTIME_POLICIES) + ["ideal"]
    out = []
    for kind in kinds:
        ids = stream(kind, lookups, rows)
        for batch in BATCHES:
            for share in CACHE_SHARES:
                r = measure(ids, batch, share, CURVE_DEPTHS)
                opt = max(r["opt"], 1)
                out.append([kind, batch, f"{share:.0%}", r["rows"], r["opt"]]
                           + [" ".join(f"{r[f'{p}-k{k}'] / opt:.2f}" for k in CURVE_DEPTHS) for p in names])
    print(f"distinct SCM row reads / Belady at look-ahead k = {', '.join(map(str, CURVE_DEPTHS))} "
          f"({lookups} lookups a stream, {WAYS}-way runtime cache; ideal = fully associative window rule, best of LRU / LFU base)")
    print(text_table(["stream", "batch", "cache", "rows", "Belady"] + names, out))
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
