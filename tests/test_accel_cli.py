"""`sdm-plan run`: replays a trace through the executor and prints the report."""
from __future__ import annotations

import json

import numpy as np

from sdm.cli import main

MODEL = "3000-200-9000-50-4000-12000:8:fp32:3"


def test_run_prints_report_json_and_plot(tmp_path, capsys):
    png = tmp_path / "util.png"
    # a small card reserve leaves ~1 MB per card, so the big tables go to the host's store on SCM
    rc = main(["run", "--model", MODEL, "--trace", "zipf", "--samples", "900", "--batch-size", "150",
               "--reserve-bytes", str(16 * 2**30 + 75 * 2**20 - 2**17), "--json", "--plot", str(png),
               "--store", str(tmp_path / "store"), "--move", "t0"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["requests"] == 6 and rep["items_per_request"] == 150
    assert rep["latency"]["p99_s"] >= rep["latency"]["p50_s"] > 0
    assert rep["host"]["shards"] >= 1 and rep["host"]["measured_s"] > 0
    assert rep["throughput"]["max_qps"] > 0 and len(rep["cards"]) == 6
    assert rep["power"]["server_watts"] > 0
    assert {m["table"] for m in rep["moves"]} == {"t0"}
    assert png.stat().st_size > 1000
    assert rep["executed"]["samples_per_s"] > 0


def test_run_text_and_plan_and_no_batching(tmp_path, capsys):
    from sdm.placement.plan import Plan, RowSet, TablePlan, TierPlacement
    rows = [3000, 200, 9000, 50, 4000, 12000]
    tps = {f"t{i}": TablePlan(f"t{i}", r, 8, "fp32", 32) for i, r in enumerate(rows)}
    tps["t2"].placements = [TierPlacement("sram", 3, RowSet(ranges=np.array([[0, 9000]])))]
    Plan("m", "yosemite-v2-nand", "latency", "test", tps).save(tmp_path / "plan.json")
    rc = main(["run", "--model", MODEL, "--trace", "zipf", "--samples", "300", "--plan", str(tmp_path / "plan.json"),
               "--no-batching", "--host-time", "measured"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "command batching off" in out and "p99" in out and "what moving one table" in out
    assert "card3" in out


def test_run_bad_input_is_a_clear_error(capsys):
    assert main(["run", "--model", "100-200:8", "--trace", "zipf", "--batch-size", "0"]) == 1
    assert "--batch-size" in capsys.readouterr().err
    assert main(["run", "--model", "100-200:8", "--trace", "zipf", "--hardware", "host-nand"]) == 1
    assert "no accelerator cards" in capsys.readouterr().err
    assert main(["run", "--model", "100-200:8", "--trace", "/nonexistent/trace.npz"]) == 1
    assert "/nonexistent/trace.npz" in capsys.readouterr().err      # the missing file is named


def test_run_reads_a_trace_file_and_checks_it_against_the_model(tmp_path, capsys):
    from sdm.traces.generators import zipf_trace
    tr = zipf_trace([300, 40], 200, batch_size=50, pooling=2, seed=2)
    tr.save(tmp_path / "t.npz")
    assert main(["run", "--model", "300-40:8", "--trace", str(tmp_path / "t.npz"), "--json",
                 "--hardware", "yosemite-v2-3dxp"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["requests"] == 4 and rep["platform"] == "yosemite-v2-3dxp"
    assert main(["run", "--model", "300-40-7:8", "--trace", str(tmp_path / "t.npz")]) == 1
    assert "has 2 tables, model has 3" in capsys.readouterr().err
    assert main(["run", "--model", "200-40:8", "--trace", str(tmp_path / "t.npz")]) == 1
    assert "300" in capsys.readouterr().err


def test_run_refuses_a_model_too_big_to_execute(capsys):
    assert main(["run", "--model", "600000000:64", "--trace", "zipf"]) == 1
    assert "GiB of embeddings" in capsys.readouterr().err
