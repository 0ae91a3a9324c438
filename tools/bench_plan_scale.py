"""Scale benchmark: plan a ~1 TB model (800 tables, 4e9 rows) from a 100M-lookup trace.

Target (issue 5): <= 60 s and <= 4 GiB peak memory on the 2-core dev machine.

The trace is generated table by table (Zipf ranks through sdm.traces.sampling, scrambled ids) and
counted as it is generated (`TableHotness.from_ids`: np.unique per table), so the 100M lookups are
never all in memory at once; the timed part is counting + planning + estimating + writing the plan.
Generation time is printed separately. Peak memory is the process's max RSS (getrusage), which
includes generation.

Baselines in the same run: the table-level knapsack and the whole-tables baseline on the same
input (the row-level policy is the one with the scale target).

    .venv/bin/python tools/bench_plan_scale.py                    # full size
    .venv/bin/python tools/bench_plan_scale.py --lookups 1e7      # quicker
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdm.placement.planner import PlanOptions, plan_model  # noqa: E402
from sdm.placement.types import TableHotness  # noqa: E402
from sdm.core.spec import TableSpec  # noqa: E402
from sdm.hardware.server import hardware  # noqa: E402
from sdm.traces.sampling import Scrambler, zipf_ranks  # noqa: E402


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30   # Linux: KiB


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=800)
    ap.add_argument("--rows", type=float, default=4e9, help="total rows over all tables")
    ap.add_argument("--lookups", type=float, default=1e8)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--hardware", default="yosemite-v2-nand")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--profile", action="store_true", help="cProfile the row-level planning step")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    # table sizes: log-uniform spread (a few huge tables, many small), scaled to the total
    w = np.exp(rng.uniform(np.log(1e3), np.log(1e8), args.tables))
    rows = np.maximum((w / w.sum() * args.rows).astype(np.int64), 10)
    alpha = rng.uniform(0.8, 1.2, args.tables)
    # lookups per table ~ pooling factor: bigger tables a little busier
    share = rows ** 0.3
    lookups = np.maximum((share / share.sum() * args.lookups).astype(np.int64), 1)
    samples = 100_000
    tables = [TableSpec(f"t{i}", int(r), args.dim, "fp32", float(lk / samples)) for i, (r, lk) in enumerate(zip(rows, lookups))]
    model_bytes = sum(t.size_bytes for t in tables)
    print(f"model: {len(tables)} tables, {rows.sum():.3g} rows, {model_bytes / 1e12:.3f} TB; "
          f"trace: {lookups.sum():.3g} lookups")

    gen_s = count_s = 0.0
    hot = []
    from tqdm import tqdm
    for i in tqdm(range(args.tables), desc="generate+count", unit="table", file=sys.stderr, mininterval=2):
        t0 = time.perf_counter()
        r = np.random.default_rng([args.seed, i])
        ids = Scrambler(int(rows[i]), i)(zipf_ranks(r, int(lookups[i]), int(rows[i]), float(alpha[i])))
        t1 = time.perf_counter()
        # Good-Turing counts (the CLI default): rows seen once share their mass with unseen rows
        hot.append(TableHotness.from_ids(tables[i].name, int(rows[i]), ids, samples).good_turing())
        del ids
        t2 = time.perf_counter()
        gen_s += t1 - t0
        count_s += t2 - t1
    tracked = sum(h.ids.size for h in hot)
    print(f"generated in {gen_s:.1f} s (not timed); counted in {count_s:.1f} s: {tracked:.3g} distinct rows, "
          f"hotness {sum(h.memory_bytes for h in hot) / 2**30:.2f} GiB")

    hw = hardware(args.hardware)
    # The estimator imports the DRAM cache (and with it torch, ~1.5-3 s) on first use; import it
    # here, untimed, as the module-level import did before it moved (sdm-plan --help stays fast).
    import sdm.cache.dram_cache  # noqa: F401
    results = {}
    for pol in ["row"] + ([] if args.skip_baselines else ["table", "baseline"]):
        t0 = time.perf_counter()
        opts = PlanOptions(policy=pol, dram_cache_fraction=0.25)
        if args.profile and pol == "row":
            import cProfile
            import pstats
            prof = cProfile.Profile()
            res = prof.runcall(plan_model, tables, hot, hw, opts, "bench-1TB")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        else:
            res = plan_model(tables, hot, hw, opts, "bench-1TB")
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            res.plan.save(Path(d) / "plan.json")
            side = sum(f.stat().st_size for f in Path(d).rglob("*") if f.is_file())
        t2 = time.perf_counter()
        results[pol] = (t1 - t0, t2 - t1, res, side)
        above = 1 - res.estimate.hit_rate["scm"]
        print(f"policy {pol:8s}: plan {t1 - t0:6.1f} s, write {t2 - t1:5.1f} s ({side / 2**20:.0f} MiB); "
              f"served above SCM {100 * above:.1f}%, p99 {res.estimate.p99_latency_s * 1e3:.2f} ms, "
              f"peak RSS so far {peak_rss_gib():.2f} GiB")

    plan_s, write_s, res, _ = results["row"]
    total = count_s + plan_s + write_s
    peak = peak_rss_gib()
    print()
    print(f"row-level plan of {model_bytes / 1e12:.2f} TB / {lookups.sum():.3g} lookups: "
          f"count {count_s:.1f} s + plan {plan_s:.1f} s + write {write_s:.1f} s = {total:.1f} s (target <= 60 s: "
          f"{'MET' if total <= 60 else 'MISSED'})")
    print(f"peak memory {peak:.2f} GiB (target <= 4 GiB: {'MET' if peak <= 4 else 'MISSED'})")
    if len(results) > 1:
        for pol in ("table", "baseline"):
            p, _w, r, _ = results[pol]
            print(f"vs {pol}: {p / plan_s:.2f}x the row-level planning time; serves "
                  f"{100 * (1 - r.estimate.hit_rate['scm']):.1f}% above SCM vs row-level "
                  f"{100 * (1 - res.estimate.hit_rate['scm']):.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
