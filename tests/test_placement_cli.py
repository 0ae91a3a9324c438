"""`sdm-plan plan / compare / explain` end to end on a small trace, and their errors."""
from __future__ import annotations

import json

import pytest

from sdm.cli import main
from sdm.placement.plan import Plan
from sdm.traces.generators import zipf_trace

MODEL = "20000-5000-800-30000:32"


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("tr") / "t.npz"
    zipf_trace([20000, 5000, 800, 30000], 4000, pooling=[3, 2, 1, 4], seed=2, batch_size=256).save(p)
    return str(p)


def test_plan_then_explain(tmp_path, trace_path, capsys):
    out = tmp_path / "plan.json"
    rc = main(["plan", "--model", MODEL, "--trace", trace_path, "--hardware", "yosemite-v2-nand",
               "--set", "plan.lpddr_usable_fraction=0.0001", "--set", "plan.sram_usable_fraction=0.01",
               "--dram-cache-fraction", "0.2", "--page-layout", "co-access", "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0 and "per tier:" in text and "per table" in text and "power and cost" in text
    plan = Plan.load(out)
    assert set(plan.tables) == {"t0", "t1", "t2", "t3"}
    assert plan.summary["watts"] > 0 and plan.summary["capex_usd"] > 0
    assert any(p.tier == "sram" and p.card is not None for tp in plan.tables.values() for p in tp.placements)
    assert main(["explain", str(out), "t0"]) == 0
    text = capsys.readouterr().out
    assert "why:" in text and "density" in text
    assert main(["explain", str(out), "t0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["table"] == "t0"
    assert main(["explain", str(out), "nope"]) == 1
    assert "no table 'nope'" in capsys.readouterr().err


def test_plan_json_and_plot(tmp_path, trace_path, capsys):
    png = tmp_path / "p.png"
    rc = main(["plan", "--model", MODEL, "--trace", trace_path, "--hardware", "host-3dxp", "--json",
               "--objective", "min-power", "--plot", str(png), "--out", str(tmp_path / "p.json"), "--no-progress"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["objective"] == "min-power" and "hit_rate" in doc["summary"]
    assert png.stat().st_size > 10_000


def test_compare_reports_savings(tmp_path, trace_path, capsys):
    rc = main(["compare", "--model", MODEL, "--trace", trace_path, "--hardware", "host-dram,host-nand,host-3dxp",
               "--qps", "3000", "--json", "--no-progress", "--plot", str(tmp_path / "c.png")])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["hardware"] for c in doc["configs"]] == ["host-dram", "host-nand", "host-3dxp"]
    assert doc["configs"][0]["savings"]["power"] == 0.0
    for c in doc["configs"]:
        assert c["fleet"]["servers"] >= 1 and c["watts"] > 0
    assert (tmp_path / "c.png").exists()
    assert main(["compare", "--model", MODEL, "--trace", trace_path, "--no-progress"]) == 0
    assert "savings vs host-dram" in capsys.readouterr().out


@pytest.mark.parametrize("argv,msg", [
    (["--model", "10-x:4"], "bad row count"),
    (["--model", "nope.toml"], "does not exist"),
    (["--model", "3000000000-3000000000-3000000000-3000000000:64", "--hardware", "host-dram"], "short by"),
    (["--model", "4000000000-4000000000-4000000000-4000000000:64", "--hardware", "host-nand"], "short by"),
    (["--model", MODEL, "--objective", "min-power", "--latency-budget-ms", "0.000001"], "over by"),
    (["--model", MODEL, "--set", "plan.bogus=1"], "unknown plan"),
])
def test_plan_errors_are_clear(tmp_path, trace_path, capsys, argv, msg):
    args = ["plan", "--trace", trace_path, "--out", str(tmp_path / "x.json"), "--no-progress"] + argv
    if "--hardware" not in argv:
        args += ["--hardware", "host-nand"]
    assert main(args) == 1
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_plan_from_sketched_profile(tmp_path, trace_path, capsys):
    from sdm.placement.profile import Profile
    from sdm.traces.loaders import load_trace

    prof = tmp_path / "p.npz"
    Profile.from_trace(load_trace(trace_path), memory_budget_bytes=40_000).save(prof)   # big tables sketched
    out = tmp_path / "plan.json"
    args = ["plan", "--model", MODEL, "--hardware", "host-3dxp", "--set", "plan.dram_usable_fraction=0.00003",
            "--out", str(out), "--no-progress", "--json"]
    assert main(args + ["--profile", str(prof)]) == 0
    sk = json.loads(capsys.readouterr().out)["summary"]["hit_rate"]
    assert main(args + ["--trace", trace_path]) == 0
    ex = json.loads(capsys.readouterr().out)["summary"]["hit_rate"]
    assert 0.0 < sk["scm"] < 1.0
    assert abs(sk["dram"] - ex["dram"]) < 0.1          # sketch and exact counts plan alike
