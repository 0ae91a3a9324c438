"""Page layout benchmark: bytes read from SCM with the co-access layout vs id order.

Target (issue 5): >= 2x fewer bytes read than id-order layout on a trace with co-access structure.

Workload: rows belong to co-access groups of 16 (e.g. items of one campaign), scattered over the
table by a random permutation (as hashed ids are); each sample reads 2-8 rows of one group, groups
Zipf(1.2)-popular. The layout is learnt on the first 3/4 of the samples and measured on the last
1/4 (held out). Three measurements, each against id order in the same run:
  1. model: distinct pages per sample x page bytes (no cache);
  2. cachesim: the same stream through an LRU page cache (sdm.cachesim, page mode) of a few sizes;
  3. real: both layouts written to a PageStore (files read with O_DIRECT) and the held-out samples
     read back with `read_rows`, one call per request of --items samples; bytes from the store's clock.
A control trace with no co-access (independent Zipf ids) shows what the layout does without structure.

    .venv/bin/python tools/bench_page_layout.py
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdm.cachesim import simulate  # noqa: E402
from sdm.placement.page_layout import _order_to_slots, co_access_layout, read_bytes  # noqa: E402
from sdm.tiers.pagestore import PageStore  # noqa: E402
from sdm.traces.sampling import zipf_ranks  # noqa: E402


def co_access(rng, groups, n):
    g = np.minimum(rng.zipf(1.2, n) - 1, len(groups) - 1)
    k = rng.integers(2, 9, n)
    off = np.r_[0, np.cumsum(k)]
    return groups[np.repeat(g, k), rng.integers(0, groups.shape[1], off[-1])], off


def independent(rng, rows, n, perm):
    k = rng.integers(2, 9, n)
    off = np.r_[0, np.cumsum(k)]
    return perm[zipf_ranks(rng, int(off[-1]), rows, 1.05)], off


def _takes_progress(ps) -> bool:
    import inspect
    return "progress" in inspect.signature(ps.add_table).parameters


def run_case(name, ids, off, rows, row_bytes, page_bytes, items, real_requests, tmp):
    n_bags = off.size - 1
    cut = n_bags * 3 // 4
    tr = (ids[: off[cut]], off[: cut + 1])
    te_ids, te_off = ids[off[cut]:], off[cut:] - off[cut]
    t0 = time.perf_counter()
    res = co_access_layout(*tr, rows, row_bytes, page_bytes)
    layout_s = time.perf_counter() - t0
    slots = _order_to_slots(res.row_order)
    rpp = res.rows_per_page
    b_lay, used = read_bytes(te_ids, te_off, slots, rpp, row_bytes, page_bytes)
    b_id, _ = read_bytes(te_ids, te_off, None, rpp, row_bytes, page_bytes)
    print(f"\n== {name}: {rows:,} rows x {row_bytes} B, {rpp} rows per {page_bytes} B page; "
          f"{cut:,} training / {n_bags - cut:,} held-out samples; layout '{res.method}' in {layout_s:.1f} s")
    print(f"model, no cache:      id-order {b_id / 2**20:8.1f} MiB, layout {b_lay / 2**20:8.1f} MiB "
          f"-> {b_id / b_lay:.2f}x fewer bytes; read amplification {b_id / used:.2f} -> {b_lay / used:.2f}")
    page_id = np.arange(rows) // rpp
    page_lay = slots // rpp
    for frac in (0.01, 0.05):
        cap = int(rows * row_bytes * frac)
        s_id = simulate(te_ids, policy="lru", capacity_bytes=cap, page_of=page_id, row_bytes=row_bytes,
                        page_bytes=page_bytes)
        s_lay = simulate(te_ids, policy="lru", capacity_bytes=cap, page_of=page_lay, row_bytes=row_bytes,
                         page_bytes=page_bytes)
        print(f"cachesim LRU {frac:4.0%} :  id-order {s_id.bytes_read / 2**20:8.1f} MiB, layout "
              f"{s_lay.bytes_read / 2**20:8.1f} MiB -> {s_id.bytes_read / max(s_lay.bytes_read, 1):.2f}x fewer bytes")
    # real reads through the page store
    dim = row_bytes // 4
    weights = np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)
    got = {}
    for label, order in (("id-order", None), ("layout", res.row_order)):
        path = Path(tmp) / f"{name.split()[0]}-{label}"
        with PageStore.create(path, "nand", page_bytes=page_bytes) as ps:
            ps.add_table("t", weights, row_order=order, progress=False) if _takes_progress(ps) else \
                ps.add_table("t", weights, row_order=order)
            ps.clock.reset()
            t0 = time.perf_counter()
            req = 0
            for s in range(0, te_off.size - 1, items):            # one read_rows call per request
                if req >= real_requests:
                    break
                e = min(s + items, te_off.size - 1)
                want = te_ids[te_off[s]:te_off[e]]
                r = ps.read_rows("t", want)
                req += 1
            wall = time.perf_counter() - t0
            ch = ps.clock.snapshot()["scm"]
            got[label] = (ch.bytes, ch.ops, wall, ch.modelled_s)
            assert np.array_equal(r, weights[want])                  # the layout changes no values
    (bi, oi, wi, mi), (bl, ol, wl, ml) = got["id-order"], got["layout"]
    print(f"real PageStore ({req} requests of {items} samples, O_DIRECT): id-order {bi / 2**20:.1f} MiB in "
          f"{oi:,} page reads ({wi:.2f} s), layout {bl / 2**20:.1f} MiB in {ol:,} ({wl:.2f} s) -> "
          f"{bi / max(bl, 1):.2f}x fewer bytes; modelled NAND time {mi:.2f} s -> {ml:.2f} s")
    return b_id / b_lay, bi / max(bl, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--samples", type=int, default=160_000)
    ap.add_argument("--row-bytes", type=int, default=256)
    ap.add_argument("--items", type=int, default=165, help="samples per request for the real reads")
    ap.add_argument("--real-requests", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    groups = rng.permutation(args.rows).reshape(-1, 16)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        model_x, real_x = run_case("co-access trace", *co_access(rng, groups, args.samples), args.rows,
                                   args.row_bytes, 4096, args.items, args.real_requests, tmp)
        run_case("control (no co-access)", *independent(rng, args.rows, args.samples, rng.permutation(args.rows)),
                 args.rows, args.row_bytes, 4096, args.items, args.real_requests, tmp)
    print(f"\ntarget >= 2x fewer bytes than id order on the co-access trace: model {model_x:.2f}x, "
          f"real reads {real_x:.2f}x -> {'MET' if min(model_x, real_x) >= 2 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
