#!/usr/bin/env python
"""Benchmark 1: lookup throughput with every row cached in DRAM, vs torch.nn.EmbeddingBag.

Same weights, same batches, same process; the two are run alternately batch by batch so that
machine noise hits both alike. Prints rows/s of each and the ratio (target >= 0.9x).

    .venv/bin/python tools/bench_lookup.py                 # defaults: 500k x 64 fp32, batch 2048 x 32
    .venv/bin/python tools/bench_lookup.py --rows 2000000 --batches 100 --mode mean
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdm.runtime.embedding_store import BagOptions, EmbeddingStore  # noqa: E402
from sdm.core.spec import TableSpec  # noqa: E402
from sdm.cache.dram_cache import INDEX_BYTES_PER_ROW  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=2048, help="bags per lookup")
    ap.add_argument("--pooling", type=int, default=32, help="indices per bag")
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--mode", default="sum", choices=["sum", "mean", "max"])
    ap.add_argument("--alpha", type=float, default=0.0, help="Zipf exponent of ids (0: uniform)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for both (default 1; 0: leave torch's default)")
    ap.add_argument("--cache-layout", "--layout", dest="cache_layout", default="auto", choices=["auto", "hashed"],
                    help="DRAM cache layout (--layout: its old name): auto (direct: row r in slot r, as the budget covers the table) "
                         "or hashed (16-way set-associative, probe per index; needs ~7%% more budget)")
    ap.add_argument("--dir", default=None, help="where to put the store (default: a temp dir)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    ref = torch.nn.EmbeddingBag(a.rows, a.dim, mode=a.mode)
    ref.requires_grad_(False)
    n = a.batch * a.pooling
    if a.alpha > 0:
        p = 1.0 / np.arange(1, a.rows + 1) ** a.alpha
        batches = [rng.choice(a.rows, n, p=p / p.sum()) for _ in range(a.batches)]
    else:
        batches = [rng.integers(0, a.rows, n) for _ in range(a.batches)]
    batches = [torch.from_numpy(b.astype(np.int64)) for b in batches]
    offsets = torch.arange(0, n, a.pooling)
    # hashed: sets fill unevenly, so give it room for every row even in its fullest set
    per_row = a.dim * 4 + INDEX_BYTES_PER_ROW
    cache_bytes = a.rows * per_row if a.cache_layout == "auto" else int(a.rows * 1.5) * per_row
    if a.dir:
        os.makedirs(a.dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        t0 = time.perf_counter()
        store = EmbeddingStore.create(Path(d) / "s", [TableSpec("t", a.rows, a.dim)], hardware="host-nand",
                                      weights={"t": ref.weight}, dram_cache_bytes=cache_bytes,
                                      options={"t": BagOptions(a.mode)}, cache_layout=a.cache_layout)
        store.prefetch({"t": np.arange(a.rows)})          # warm: every row into the DRAM cache
        print(f"store built and warmed in {time.perf_counter() - t0:.1f} s; cache rows "
              f"{store.cache('t').resident_rows}/{a.rows} (slots {store.cache('t').capacity_rows}), "
              f"index {store.cache('t').index_bytes / store.cache('t').capacity_rows:.1f} B per slot")
        store.reset_stats()
        for b in batches[:3]:                              # warm both paths (allocator, numba)
            assert torch.equal(store.lookup("t", b, offsets), ref(b, offsets))
        t_ref, t_sdm = [], []
        with torch.no_grad():
            for k, b in enumerate(batches):
                # alternate which goes first, so neither always meets a cold cache for the batch's ids
                for which in ((0, 1) if k % 2 == 0 else (1, 0)):
                    t = time.perf_counter()
                    if which == 0:
                        ref(b, offsets)
                        t_ref.append(time.perf_counter() - t)
                    else:
                        store.lookup("t", b, offsets)
                        t_sdm.append(time.perf_counter() - t)
        s = store.stats()["tables"]["t"]
        store.close()
    rr = n / statistics.median(t_ref)
    rs = n / statistics.median(t_sdm)
    print(f"cache layout {a.cache_layout}; table {a.rows} x {a.dim} fp32, mode {a.mode}, batch {a.batch} x {a.pooling} = {n} ids, "
          f"{a.batches} batches, torch threads {torch.get_num_threads()}")
    print(f"nn.EmbeddingBag (baseline) : {rr / 1e6:8.2f} M rows/s  (median {statistics.median(t_ref) * 1e3:.2f} ms/batch)")
    print(f"sdm EmbeddingStore (DRAM)  : {rs / 1e6:8.2f} M rows/s  (median {statistics.median(t_sdm) * 1e3:.2f} ms/batch)")
    print(f"ratio sdm / baseline       : {rs / rr:8.3f}x   (target >= 0.9x)   DRAM hit rate {s['hit_rate']['dram']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
