#!/usr/bin/env python
"""Benchmark 1: lookup speed with every looked-up row cached in DRAM, each case against its baseline.

Same weights (or codes), same batches, same process; store and baseline run alternately batch by
batch so machine noise hits both alike; each prints the median time of each and the ratio.
Cases (`--cases`, default all):
  fp32-direct   the DRAM cache covers the table (row r in slot r)      vs nn.EmbeddingBag
  fp32-hashed   table 4x its cache (set-associative), every id cached  vs nn.EmbeddingBag
  int8-direct / int8-hashed   int8 row-wise   vs torch.ops.quantized.embedding_bag_byte_rowwise_offsets on the same codes
  int4-direct / int4-hashed   int4 row-wise   vs torch.ops.quantized.embedding_bag_4bit_rowwise_offsets on the same codes
  fp16-direct / fp16-hashed   fp16            vs nn.EmbeddingBag over fp16 weights, or fbgemm-gpu-cpu's
                              IntNBit TBE (fp16) when importable, whichever is faster (both printed)
  batched       --tables tables x --tbags bags x --tpool ids, one store call (lookup_many) vs a loop of nn.EmbeddingBag
Targets: fp32-direct >= 0.95x, hashed >= 0.85x, int8/int4 >= 0.8x, fp16 >= 0.8x, batched >= 0.8x.
The single-table cases also time the baseline over a copy of the same codes on 2 MiB pages (as the
store's cache rows are, sdm.core.huge_pages) in the same rotation and print that ratio too: how much
of a ratio is the pages. (Three calls rotate, not two, so each follows either of the others.)

    .venv/bin/python tools/bench_lookup.py                       # one torch thread
    .venv/bin/python tools/bench_lookup.py --threads 0           # torch's default threads
    .venv/bin/python tools/bench_lookup.py --cases fp32-hashed,batched --rounds 60
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdm.cache.index import INDEX_BYTES_PER_ROW  # noqa: E402
from sdm.cache.window import Lookahead  # noqa: E402
from sdm.core import huge_pages  # noqa: E402
from sdm.core.spec import TableSpec  # noqa: E402
from sdm.runtime import row_formats  # noqa: E402
from sdm.runtime.embedding_store import EmbeddingStore  # noqa: E402

CASES = ["fp32-direct", "fp32-hashed", "int8-direct", "int8-hashed", "int4-direct", "int4-hashed",
         "fp16-direct", "fp16-hashed", "batched"]
TARGET = {"fp32-direct": 0.95, "fp32-hashed": 0.85, "batched": 0.8}
Q = torch.ops.quantized


def _zipf_ids(rng, pool: np.ndarray, n: int, alpha: float) -> torch.Tensor:
    """n ids drawn Zipf(alpha) over the ids of `pool` (pool[0] hottest)."""
    p = 1.0 / np.arange(1, len(pool) + 1) ** alpha
    return torch.from_numpy(pool[rng.choice(len(pool), n, p=p / p.sum())].astype(np.int64))


def _alternate_many(fns, batches, rounds: int) -> list[float]:
    """Median seconds of each of `fns` over `rounds` batches, run in turn (the order rotates)."""
    ts = [[] for _ in fns]
    for k in range(rounds):
        b = batches[k % len(batches)]
        for j in range(len(fns)):
            which = (j + k) % len(fns)
            t = time.perf_counter()
            fns[which](*b)
            ts[which].append(time.perf_counter() - t)
    return [statistics.median(t) for t in ts]


def _alternate(base, mine, batches, rounds: int) -> tuple[float, float]:
    """Median seconds of each over `rounds` batches, run alternately (which goes first alternates)."""
    tb, tm = _alternate_many([base, mine], batches, rounds)
    return tb, tm


def _fbgemm_fp16(codes: torch.Tensor):
    """fbgemm-gpu-cpu's IntNBit table-batched kernel over the fp16 rows `codes` (one table, sum,
    float32 out, int32 ids as it takes them), or None when fbgemm_gpu is not importable."""
    try:
        from fbgemm_gpu.split_embedding_configs import SparseType
        from fbgemm_gpu.split_table_batched_embeddings_ops_common import EmbeddingLocation, PoolingMode
        from fbgemm_gpu.split_table_batched_embeddings_ops_inference import IntNBitTableBatchedEmbeddingBagsCodegen
    except Exception:   # (an optional extra: not installed, or built against another torch)
        return None
    rows, dim = codes.shape
    tbe = IntNBitTableBatchedEmbeddingBagsCodegen([("t", rows, dim, SparseType.FP16, EmbeddingLocation.HOST)],
                                                  device="cpu", output_dtype=SparseType.FP32,
                                                  pooling_mode=PoolingMode.SUM)
    tbe.fill_random_weights()
    stored = tbe.split_embedding_weights()[0][0]
    if tuple(stored.shape) != (rows, 2 * dim):   # (rows padded to its alignment: not this layout)
        return None
    stored.copy_(codes.view(torch.uint8).view(rows, 2 * dim))
    return tbe


def _reference(fmt: str, codes: torch.Tensor):
    """The baseline op over `codes`: nn.EmbeddingBag's kernel (fp32, fp16) or torch's quantized op."""
    if fmt in ("fp32", "fp16"):
        return lambda i, o: F.embedding_bag(i, codes, o, mode="sum")
    op = Q.embedding_bag_byte_rowwise_offsets if fmt == "int8" else Q.embedding_bag_4bit_rowwise_offsets
    return lambda i, o: op(codes, i, o, False, 0, False, None, None, False)


def single_case(case: str, a, d: Path, rng):
    fmt, layout = case.split("-")
    spec = TableSpec("t", a.rows, a.dim, row_format=fmt)
    w = torch.randn(a.rows, a.dim)
    codes = torch.from_numpy(row_formats.encode(w, fmt))
    per_row = spec.row_bytes + INDEX_BYTES_PER_ROW
    budget = a.rows * per_row if layout == "direct" else a.rows // 4 * per_row
    store = EmbeddingStore.create(d / case, [spec], hardware="host-nand", weights={"t": w}, dram_cache_bytes=budget,
                                  cache_layout="auto" if layout == "direct" else "hashed", progress=False)
    cache = store.cache("t")
    if layout == "direct":
        store.prefetch({"t": np.arange(a.rows)})
        pool = rng.permutation(a.rows)
    else:   # a hot set of 60% of the slots, scattered over the table; ids drawn from what got cached
        store.prefetch({"t": rng.permutation(a.rows)[: int(0.6 * cache.capacity_rows)]})
        pool = rng.permutation(cache.contents())
    n = a.bags * a.pooling
    off = torch.arange(0, n, a.pooling)
    batches = [(_zipf_ids(rng, pool, n, a.alpha), off) for _ in range(8)]
    ref = _reference(fmt, codes)
    # the same baseline over the same codes on 2 MiB pages, as sdm's cache holds its rows
    # (sdm.core.huge_pages): how much of a ratio is the pages, not the code
    huge = huge_pages.zeros(tuple(codes.shape), codes.dtype)
    huge.copy_(codes)
    ref_huge = _reference(fmt, huge)
    mine = lambda i, o: store.lookup("t", i, o)  # noqa: E731
    for b in batches:   # warm both (allocator, numba) and check the store gives the baseline's bits
        r = ref(*b)
        assert torch.equal(mine(*b), r.float()), case
    for _ in range(Lookahead.MAX_AGE_LOOKUPS // len(batches) + 1):
        for b in batches:   # steady state: the warm-up prefetch's batch, never looked up, ages out of
            mine(*b)        # the look-ahead window (sdm.cache.window.Lookahead) as it does in serving
    extra = ""
    tbe = _fbgemm_fp16(codes) if fmt == "fp16" else None
    store.reset_stats()
    if tbe is None:
        tb, t_huge, tm = _alternate_many([ref, ref_huge, mine], batches, a.rounds)
    else:   # the fp16 baseline: nn.EmbeddingBag over fp16 or fbgemm's kernel, whichever is faster
        fb_batches = [(i, o, i.to(torch.int32), torch.cat([o, torch.tensor([n])]).to(torch.int32)) for i, o in batches]
        for i, o, i32, o32 in fb_batches:   # fbgemm accumulates in float32: within fp16 rounding of the torch op
            torch.testing.assert_close(tbe(i32, o32), ref(i, o).float(), rtol=2e-3, atol=1e-2)
        t_torch, t_huge, t_fb, tm = _alternate_many([lambda i, o, *_: ref(i, o), lambda i, o, *_: ref_huge(i, o),
                                                     lambda i, o, i32, o32: tbe(i32, o32),
                                                     lambda i, o, *_: mine(i, o)], fb_batches, a.rounds)
        tb = min(t_torch, t_fb)
        extra = f"; baselines: nn.EmbeddingBag fp16 {t_torch * 1e3:.3f} ms, fbgemm IntNBit TBE fp16 {t_fb * 1e3:.3f} ms"
    hit = store.stats()["tables"]["t"]["hit_rate"]["dram"]
    store.close()
    extra += f"; baseline on huge pages {t_huge * 1e3:.3f} ms (ratio {t_huge / tm:.3f})"
    return tb, tm, f"{n} ids/call, DRAM hit rate {hit:.3f}{extra}"


def batched_case(a, d: Path, rng):
    names = [f"t{k}" for k in range(a.tables)]
    rows = a.trows
    ws = [torch.randn(rows, a.dim) for _ in names]
    store = EmbeddingStore.create(d / "batched", [TableSpec(n, rows, a.dim) for n in names], hardware="host-nand",
                                  weights=dict(zip(names, ws)), progress=False,
                                  dram_cache_bytes=a.tables * rows * (4 * a.dim + INDEX_BYTES_PER_ROW))
    store.prefetch({n: np.arange(rows) for n in names})
    n = a.tbags * a.tpool
    off = torch.arange(0, n, a.tpool)
    lengths = torch.full((a.tables * a.tbags,), a.tpool)
    batches = []
    for _ in range(4):
        vals = [_zipf_ids(rng, rng.permutation(rows), n, a.alpha) for _ in names]
        batches.append((vals, torch.cat(vals)))
    bags = [torch.nn.EmbeddingBag(rows, a.dim, mode="sum", _weight=w) for w in ws]

    def ref(vals, _):
        return [bag(v, off) for bag, v in zip(bags, vals)]

    def mine(_, values):
        return store.lookup_many(names, values, lengths=lengths)

    with torch.no_grad():
        for b in batches:
            got = mine(*b)
            assert all(torch.equal(got[k], r) for k, r in enumerate(ref(*b)))
        tb, tm = _alternate(ref, mine, batches, a.rounds)
        # fixed cost per call: the same call with one id per table
        one = (None, torch.zeros(a.tables, dtype=torch.int64))
        ones = torch.ones(a.tables, dtype=torch.int64)
        t = []
        for _ in range(50):
            s = time.perf_counter()
            store.lookup_many(names, one[1], lengths=ones)
            t.append(time.perf_counter() - s)
    store.close()
    fixed_us = statistics.median(t) * 1e6
    return tb, tm, (f"{a.tables} tables x {a.tbags} bags x {a.tpool} ids per call; fixed cost {fixed_us:.0f} us "
                    f"per call ({fixed_us / a.tables:.2f} us per table)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=400_000, help="rows of the single-table cases")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--bags", type=int, default=4096, help="bags per lookup (single-table cases)")
    ap.add_argument("--pooling", type=int, default=32, help="ids per bag (single-table cases)")
    ap.add_argument("--alpha", type=float, default=1.05, help="Zipf exponent of the ids")
    ap.add_argument("--tables", type=int, default=100, help="tables of the batched case")
    ap.add_argument("--trows", type=int, default=20_000, help="rows per table of the batched case")
    ap.add_argument("--tbags", type=int, default=64)
    ap.add_argument("--tpool", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=40, help="alternating rounds per case (median taken)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--dir", default=None, help="where to put the stores (default: a temp dir)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    cases = [c for c in a.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        ap.error(f"unknown cases {sorted(unknown)}; expected some of {CASES}")
    rng = np.random.default_rng(0)
    print(f"torch threads {torch.get_num_threads()}; dim {a.dim}; Zipf({a.alpha}); median of {a.rounds} alternating rounds")
    print(f"{'case':<13} {'baseline ms':>11} {'sdm ms':>8} {'ratio':>7} {'target':>6}  notes")
    with tempfile.TemporaryDirectory(dir=a.dir) as d, torch.no_grad():
        for case in cases:
            tb, tm, note = batched_case(a, Path(d), rng) if case == "batched" else single_case(case, a, Path(d), rng)
            target = TARGET.get(case, 0.85 if case.endswith("hashed") and case.startswith("fp32") else 0.8)
            print(f"{case:<13} {tb * 1e3:11.3f} {tm * 1e3:8.3f} {tb / tm:7.3f} {target:6.2f}  {note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
