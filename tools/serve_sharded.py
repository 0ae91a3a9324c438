"""Serve a generated trace through sdm stores sharded over ranks (TorchRec, gloo, loopback).

    torchrun --standalone --nproc_per_node=2 tools/serve_sharded.py --root /tmp/sharded --check

Rank 0 plans the hosts (sdm.placement.host_plan.plan_hosts; hosts = ranks) into ROOT/hosts.json,
unless --plan names one or ROOT/hosts.json exists (a restarted job keeps its plan); every rank
opens its own section and its own store under ROOT/rank<r>/ (reopened if complete), serves its
share of the trace, and rank 0 prints the merged report. --kill-rank R --kill-after N is a fault
drill: rank R kills itself (SIGKILL) after batch N on the first attempt only (a torchrun restart,
--max-restarts=1, then runs clean and reopens every store at its last commit).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, help="directory for the host plan and each rank's store")
    p.add_argument("--plan", help="a host plan file (default: ROOT/hosts.json, planned by rank 0 if absent)")
    p.add_argument("--tables", type=int, default=4)
    p.add_argument("--rows", type=int, default=20000, help="rows per table")
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=256, help="samples per rank per batch")
    p.add_argument("--pooling-factor", type=float, default=8.0)
    p.add_argument("--pooling-dist", default="poisson", choices=("fixed", "poisson"), help="bag sizes")
    p.add_argument("--alpha", type=float, default=1.05, help="zipf exponent of the generated trace")
    p.add_argument("--sharding", default="auto", choices=("auto", "table", "column"))
    p.add_argument("--hardware", default="host-nand")
    p.add_argument("--planned", action="store_true",
                   help="give each host section a Plan from the planner (hotness from the trace)")
    p.add_argument("--dram-cache-bytes", type=int, default=None)
    p.add_argument("--timeout-s", type=float, default=30.0, help="process-group timeout for every collective")
    p.add_argument("--check", action="store_true", help="compare every output with the unsharded module")
    p.add_argument("--json", help="write the merged report here (rank 0)")
    p.add_argument("--dump", help="directory: each rank saves its outputs (rank<r>.pt: {batch: {feature: tensor}})")
    p.add_argument("--kill-rank", type=int, default=None)
    p.add_argument("--kill-after", type=int, default=1)
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    import torch
    import torch.distributed as dist

    from sdm.core.spec import TableSpec
    from sdm.distributed.job_report import format_report
    from sdm.distributed.process_group import PeerLostError, collective_guard, init_loopback
    from sdm.distributed.rank_store import model_rows
    from sdm.distributed.serve import serve_trace
    from sdm.placement.host_plan import HostPlan, plan_hosts
    from sdm.traces.generators import zipf_trace

    rank, world = init_loopback(a.timeout_s)
    try:
        names = [f"t{i}" for i in range(a.tables)]
        trace = zipf_trace([a.rows] * a.tables, a.samples, batch_size=a.batch_size, pooling=a.pooling_factor,
                           alpha=a.alpha, seed=7, table_names=names, pooling_dist=a.pooling_dist)
        root = Path(a.root)
        plan_path = Path(a.plan) if a.plan else root / "hosts.json"
        if rank == 0 and not plan_path.exists():
            root.mkdir(parents=True, exist_ok=True)
            specs = [TableSpec(n, a.rows, a.dim, pooling_factor=a.pooling_factor) for n in names]
            hot = None
            if a.planned:
                from sdm.placement.hotness import hotness_from_trace

                hot = hotness_from_trace(specs, trace)
            plan_hosts(specs, a.hardware, world, hotness=hot, sharding=a.sharding, model_name="generated").save(plan_path)
        with collective_guard(rank, "waiting for the host plan", a.timeout_s):
            dist.barrier()
        host_plan = HostPlan.load(plan_path, host=rank)
        first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"

        def after_batch(r, i):
            if a.kill_rank == r and i + 1 == a.kill_after and first_attempt:
                print(f"rank {r}: fault drill: killing myself after batch {i}", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)

        checked = {"equal": 0, "total": 0}
        on_batch = None
        if a.check:
            from torchrec import EmbeddingBagCollection

            from sdm.distributed.sharder import bag_configs

            ref = EmbeddingBagCollection(tables=bag_configs(host_plan), device=torch.device("cpu"))
            with torch.no_grad():
                for n in names:
                    ref.embedding_bags[n].weight.copy_(torch.from_numpy(model_rows(n, 0, a.rows, a.dim, a.rows)))

            def on_batch(i, kjt, kt):
                with torch.no_grad():
                    want = ref(kjt).to_dict()
                got = kt.to_dict()
                for k in names:
                    checked["total"] += 1
                    checked["equal"] += int(torch.equal(got[k], want[k]))

        dumped = {}
        if a.dump:
            inner = on_batch

            def on_batch(i, kjt, kt):
                if inner is not None:
                    inner(i, kjt, kt)
                dumped[i] = {k: v.clone() for k, v in kt.to_dict().items()}

        kw = {} if a.dram_cache_bytes is None else {"dram_cache_bytes": a.dram_cache_bytes}
        report = serve_trace(trace, host_plan, root, timeout_s=a.timeout_s, on_batch=on_batch,
                             after_batch=after_batch, **kw)
        if a.dump:
            Path(a.dump).mkdir(parents=True, exist_ok=True)
            torch.save(dumped, Path(a.dump) / f"rank{rank}.pt")
        if a.check:
            equal = [None] * world
            with collective_guard(rank, "gathering the check", a.timeout_s):
                dist.all_gather_object(equal, checked)
            report["check"] = {"equal": sum(c["equal"] for c in equal), "total": sum(c["total"] for c in equal)}
        if rank == 0:
            print(format_report(report))
            if a.check:
                c = report["check"]
                print(f"check: {c['equal']}/{c['total']} feature outputs bitwise equal to the unsharded "
                      f"EmbeddingBagCollection")
            if a.json:
                Path(a.json).write_text(json.dumps(report, indent=1, default=str))
        dist.destroy_process_group()
        return 0 if not a.check or report["check"]["equal"] == report["check"]["total"] else 2
    except PeerLostError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(3)       # no process-group teardown: it would wait on the dead peer


if __name__ == "__main__":
    sys.exit(main())
