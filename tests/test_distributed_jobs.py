"""Sharded jobs on two local processes (gloo, 127.0.0.1): outputs bitwise equal to the unsharded
module for table-wise and column-wise shards, each rank's store holding its share, the merged
report, and a rank killed mid-job (the other stops with a clear error; a restart reopens the stores)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchrec", reason="torchrec is not installed: the sharded path runs on TorchRec")

from sdm.distributed.rank_store import model_rows  # noqa: E402
from sdm.placement.host_plan import HostPlan, HostSection  # noqa: E402
from sdm.placement.hosts import HostShard  # noqa: E402
from sdm.traces.generators import zipf_trace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "serve_sharded.py"
BIN = Path(sys.executable).parent
ROWS, DIM, SAMPLES, BATCH, POOL = 3000, 12, 1024, 128, 4.0
ARGS = ["--tables", "4", "--rows", str(ROWS), "--dim", str(DIM), "--samples", str(SAMPLES),
        "--batch-size", str(BATCH), "--pooling-factor", str(POOL), "--pooling-dist", "poisson"]


def env_for(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra)
    env.pop("TORCHELASTIC_RESTART_COUNT", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def the_trace():
    # the tool's trace: same generator, same arguments, seed 7
    return zipf_trace([ROWS] * 4, SAMPLES, batch_size=BATCH, pooling=POOL, alpha=1.05, seed=7,
                      table_names=[f"t{i}" for i in range(4)], pooling_dist="poisson")


def mixed_plan() -> HostPlan:
    """t0, t1 whole (table-wise); t2 cut unevenly 0:5 | 5:12 and t3 0:8 | 8:12 (column-wise)."""
    def sh(t, h, a, b):
        return HostShard(t, h, a, b, DIM, ROWS, "fp32", POOL, 0.0)
    s0 = [sh("t0", 0, 0, DIM), sh("t2", 0, 5, DIM), sh("t3", 0, 0, 8)]
    s1 = [sh("t1", 1, 0, DIM), sh("t2", 1, 0, 5), sh("t3", 1, 8, DIM)]
    tables = {f"t{i}": {"num_rows": ROWS, "dim": DIM, "row_format": "fp32"} for i in range(4)}
    return HostPlan("mixed", tables, [HostSection(0, "host-nand", s0), HostSection(1, "host-nand", s1)], "column")


def launch_ranks(root: Path, port: int, *extra: str) -> list[subprocess.Popen]:
    env = env_for(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2")
    return [subprocess.Popen([sys.executable, str(TOOL), "--root", str(root), "--timeout-s", "20", *ARGS, *extra],
                             env={**env, "RANK": str(r)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for r in range(2)]


@pytest.fixture(scope="module")
def killed_job(tmp_path_factory):
    """The mixed plan served by two plain processes; rank 1 SIGKILLs itself after batch 2."""
    root = tmp_path_factory.mktemp("sharded")
    mixed_plan().save(root / "hosts.json")
    procs = launch_ranks(root, free_port(), "--plan", str(root / "hosts.json"), "--kill-rank", "1", "--kill-after", "2")
    t0 = time.monotonic()
    try:
        out0, err0 = procs[0].communicate(timeout=90)
        procs[1].communicate(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return root, [p.returncode for p in procs], err0, time.monotonic() - t0


def test_a_killed_rank_stops_the_other_with_a_clear_error(killed_job):
    _, rcs, err0, elapsed_s = killed_job
    assert rcs[1] == -9                                           # SIGKILLed by the drill
    assert rcs[0] == 3, err0[-2000:]
    assert "rank 0: batch 2 failed: a peer rank died or stopped answering" in err0
    assert elapsed_s < 90                                         # never hangs: bounded by the timeout


def test_restarted_job_reopens_stores_and_equals_unsharded(killed_job):
    """torchrun relaunches both ranks on the killed job's directory: each reopens its store at its
    last commit, and every output is bitwise equal to nn.EmbeddingBag over the model's rows."""
    tmp_path = killed_job[0]
    plan = mixed_plan()
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(TOOL), "--root", str(tmp_path),
           "--plan", str(tmp_path / "hosts.json"), "--dump", str(tmp_path / "out"), "--json",
           str(tmp_path / "report.json"), "--timeout-s", "30", *ARGS]
    run = subprocess.run(cmd, env=env_for(), capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "all-to-all bytes per batch" in run.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    trace = the_trace()
    iters = (SAMPLES // BATCH) // 2
    bags = {n: torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(model_rows(n, 0, ROWS, DIM, ROWS)), mode="sum")
            for n in trace.table_names}
    compared = 0
    for r in range(2):
        got = torch.load(tmp_path / "out" / f"rank{r}.pt")
        assert sorted(got) == list(range(iters))
        for i in range(iters):
            for t, (idx, off) in zip(trace.table_names, trace.batch(2 * i + r)):
                want = bags[t](torch.from_numpy(idx), torch.from_numpy(off[:-1]))
                assert torch.equal(got[i][t], want), f"rank {r} batch {i} feature {t}"
                compared += 1
    assert compared == 2 * iters * 4

    # each rank's store holds its share; the shares add up to the model
    ranks = {x["rank"]: x for x in report["ranks"]}
    for r in range(2):
        sec = plan.section(r)
        assert sorted(ranks[r]["tables"]) == sorted(s.name for s in sec.shards)
        assert ranks[r]["row_bytes"] == sec.size_bytes
        assert ranks[r]["reopened"]
    assert report["row_bytes"] == 4 * ROWS * DIM * 4

    # lookups: every shard sees every id of its table in every served batch
    served = [trace.batch(b) for b in range(2 * iters)]
    ids = {t: sum(len(bag[k][0]) for bag in served) for k, t in enumerate(trace.table_names)}
    shards = plan.shards()
    assert report["indices"] == sum(ids[s.table] for s in shards)
    assert sum(report["tiers"][t]["hits"] for t in ("accel", "dram", "scm")) == report["indices"]
    # all-to-all: ids (int64) and lengths (int32) from the other rank in, pooled rows back
    want_in = want_out = 0
    for s in shards:
        other = 1 - s.host
        for i in range(iters):
            idx, off = served[2 * i + other][trace.table_names.index(s.table)]
            want_in += len(idx) * 8 + (len(off) - 1) * 4
            want_out += (len(off) - 1) * s.dim * 4
    a2a = report["a2a_per_batch"]
    assert a2a["measured_input_bytes"] * iters == want_in
    assert a2a["measured_output_bytes"] * iters == want_out
    assert a2a["modelled_output_bytes"] == want_out / iters          # output bytes do not depend on bag sizes
    assert abs(a2a["modelled_input_bytes"] - want_in / iters) < 0.1 * a2a["modelled_input_bytes"]


