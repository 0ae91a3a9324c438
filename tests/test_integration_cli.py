"""Every `sdm-plan` subcommand as a new user meets it: `--help` works, `--json` parses, and bad input
(missing file, bad model string, unknown hardware, impossible budget, mismatched plan) gives one
line on stderr and exit code 1, never a traceback, and writes nothing."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sdm.cli import COMMANDS, main
from sdm.traces.generators import zipf_trace

ROWS = [20_000, 5_000, 800, 30_000]
MODEL = "20000-5000-800-30000:16"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    zipf_trace(ROWS, 1500, pooling=[3, 2, 1, 4], seed=3, batch_size=150).save(d / "t.npz")
    assert main(["plan", "--model", MODEL, "--trace", str(d / "t.npz"), "--hardware", "yosemite-v2-nand",
                 "--out", str(d / "plan.json"), "--no-progress", "--json"]) == 0
    (d / "other.json").write_text(json.dumps({"format": "something-else"}))
    (d / "garbage.csv").write_bytes(bytes(range(128, 256)) * 20)        # not text, not a known format
    (d / "schema.json").write_text(json.dumps({"format": "sdm-plan", "version": 1}))
    (d / "schema2.json").write_text(json.dumps({"format": "sdm-plan", "version": 1, "model": "m", "hardware": "h",
                                                "objective": "o", "policy": "row", "tables": {"t0": {"dim": 4}}}))
    return d


def test_every_command_has_help(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: sdm-plan {name}"), name
    assert main([]) == 2 and "COMMAND" in capsys.readouterr().out


def _json(capsys, argv):
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return json.loads(cap.out)


def test_json_outputs_parse(files, capsys):
    d = files
    tr = str(d / "t.npz")
    assert {h["name"] for h in _json(capsys, ["hardware", "--json"])} >= {"host-nand", "yosemite-v2-nand"}
    assert len(_json(capsys, ["hardware", "yosemite-v2-nand", "--json"])["cards"]) == 6
    assert len(_json(capsys, ["profile", tr, "--out", str(d / "p.npz"), "--json", "--no-progress"])["tables"]) == 4
    assert _json(capsys, ["simulate", tr, "--capacity", "500", "--policy", "lru", "--json", "--no-progress"])["results"]
    doc = _json(capsys, ["plan", "--model", MODEL, "--profile", str(d / "p.npz"), "--hardware", "host-3dxp",
                         "--out", str(d / "h.json"), "--json", "--no-progress"])
    assert "cards" not in doc and doc["hardware"] == "host-3dxp"        # no cards: no per-card view
    cmp = _json(capsys, ["compare", "--model", MODEL, "--trace", tr, "--hardware", "host-dram,yosemite-v2-3dxp",
                         "--qps", "2000", "--json", "--no-progress"])
    ys = cmp["configs"][1]
    assert "cards" not in cmp["configs"][0] and len(ys["cards"]["cards"]) == 7
    assert ys["cards"]["timeline"]["latency"]["p99_s"] > 0 and ys["cards"]["timeline"]["requests"] == 10
    assert _json(capsys, ["explain", str(d / "plan.json"), "t1", "--json"])["table"] == "t1"
    rep = _json(capsys, ["run", "--model", MODEL, "--trace", tr, "--plan", str(d / "plan.json"), "--batches", "2",
                         "--json"])
    assert rep["requests"] == 2 and set(rep["plan_check"]["measured"]) == {"cards", "dram", "scm"}


def test_plan_and_compare_text_show_cards_for_yosemite(files, capsys):
    tr = str(files / "t.npz")
    assert main(["plan", "--model", MODEL, "--trace", tr, "--hardware", "yosemite-v2-3dxp",
                 "--out", str(files / "y.json"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "per card on yosemite-v2-3dxp" in out and "card5" in out and "timeline (modelled" in out
    assert main(["plan", "--model", MODEL, "--trace", tr, "--hardware", "host-nand",
                 "--out", str(files / "n.json"), "--no-progress"]) == 0
    assert "per card" not in capsys.readouterr().out
    assert main(["compare", "--model", MODEL, "--trace", tr, "--hardware", "host-nand,yosemite-v2-nand",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "savings vs host-nand" in out and out.count("per card on") == 1


BAD = [
    # (argv, words the one-line message must contain)
    (["plan", "--model", MODEL, "--trace", "{d}/missing.npz"], "does not exist"),
    (["plan", "--model", MODEL, "--profile", "{d}/missing.npz"], "does not exist"),
    (["plan", "--model", "10-x:4", "--trace", "{d}/t.npz"], "bad row count"),
    (["plan", "--model", "{d}/missing.toml", "--trace", "{d}/t.npz"], "missing.toml"),
    (["plan", "--model", MODEL, "--trace", "{d}/t.npz", "--hardware", "nope"], "unknown hardware 'nope'"),
    (["plan", "--model", MODEL, "--trace", "{d}/t.npz", "--hardware", "{d}/nope.toml"], "does not exist"),
    (["plan", "--model", MODEL, "--trace", "{d}/t.npz", "--objective", "min-power", "--latency-budget-ms", "0.001"],
     "latency budget not met"),
    (["plan", "--model", "4000000000-4000000000-4000000000-4000000000:64", "--trace", "{d}/t.npz",
      "--hardware", "host-nand"], "short by"),
    # issue 12: each bad input one line naming what is wrong
    (["plan", "--model", MODEL, "--trace", "{d}/garbage.csv"], "neither a known binary trace nor text"),
    (["plan", "--model", MODEL, "--trace", "{d}/t.npz", "--latency-budget-ms", "-5"], "--latency-budget-ms"),
    (["plan", "--model", MODEL, "--trace", "{d}/t.npz", "--latency-budget-ms", "0.000001"], "latency budget not met"),
    (["plan", "--model", MODEL, "--trace", "{d}/t.npz", "--items-per-request", "0"], "--items-per-request"),
    (["plan", "--model", MODEL, "--trace", "{d}/t.npz", "--qps", "-100"], "--qps must be > 0"),
    (["compare", "--model", MODEL, "--trace", "{d}/t.npz", "--qps", "-100"], "--qps must be > 0"),
    (["plan", "--model", MODEL, "--trace", "{d}/t.npz", "--out", "{d}/nonexistent/dir/plan.json"], "does not exist"),
    (["plan", "--model", "20000-5000:16", "--trace", "{d}/t.npz"], "trace tables ['t2', 't3'] are not in the model"),
    (["plan", "--model", "-".join(["1000"] * 80) + ":16", "--trace", "{d}/t.npz"], "table counts differ"),
    (["run", "--model", MODEL, "--trace", "zipf", "--plan", "{d}/plan.json", "--dram-cache-bytes", "-1"],
     "--dram-cache-bytes must be >= 0"),
    (["explain", "{d}/schema.json", "t0"], "missing field(s)"),
    (["explain", "{d}/schema2.json", "t0"], "missing or bad field"),
    (["plan", "--model", "200-300-400-500:16", "--trace", "{d}/t.npz"], "out of range"),
    (["compare", "--model", MODEL, "--trace", "{d}/t.npz", "--hardware", "host-dram,nope"], "unknown hardware"),
    (["compare", "--model", MODEL, "--trace", "{d}/t.npz", "--baseline", "nope"], "--baseline 'nope'"),
    (["compare", "--model", MODEL, "--trace", "{d}/t.npz", "--objective", "min-cost", "--latency-budget-ms",
      "0.001"], "no configuration could be planned"),
    (["explain", "{d}/missing.json", "t0"], "does not exist"),
    (["explain", "{d}/plan.json", "nope"], "no table 'nope'"),
    (["explain", "{d}/other.json", "t0"], "not an sdm plan"),
    (["explain", "{d}/t.npz", "t0"], "not JSON"),
    (["run", "--model", MODEL, "--trace", "{d}/missing.npz"], "does not exist"),
    (["run", "--model", "10-x:4", "--trace", "zipf"], "bad row count"),
    (["run", "--model", MODEL, "--trace", "zipf", "--hardware", "nope"], "unknown hardware"),
    (["run", "--model", MODEL, "--trace", "zipf", "--hardware", "host-nand"], "no accelerator cards"),
    (["run", "--model", MODEL, "--trace", "zipf", "--plan", "{d}/missing.json"], "does not exist"),
    (["run", "--model", "1000-2000-300-400:16", "--trace", "zipf", "--plan", "{d}/plan.json"], "plan has 20000 rows"),
    (["simulate", "{d}/missing.npz", "--capacity", "10"], "does not exist"),
    (["profile", "{d}/missing.npz"], "does not exist"),
    (["hardware", "nope"], "unknown hardware"),
]


@pytest.mark.parametrize("argv,words", BAD, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(BAD)])
def test_bad_input_is_one_clear_line(files, capsys, argv, words):
    argv = [a.format(d=files) for a in argv]
    if argv[0] in ("plan", "compare", "profile", "simulate"):
        argv.append("--no-progress")
    if argv[0] == "plan" and "--out" not in argv:
        argv += ["--out", str(files / "never.json")]
    assert main(argv) == 1
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sdm-plan {argv[0]}: error: "), cap.err
    assert words in lines[0]
    assert "Traceback" not in cap.err and cap.out == ""
    assert not (files / "never.json").exists()      # a failed plan writes nothing
    assert not (files / "nonexistent").exists() and not (files / "never.rows").exists()


def test_ctrl_c_exits_130_and_writes_nothing(files, capsys, monkeypatch):
    import sdm.placement.planner as planner

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(planner.Planner, "plan", interrupted)
    out = files / "ctrlc.json"
    assert main(["plan", "--model", MODEL, "--trace", str(files / "t.npz"), "--out", str(out), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["sdm-plan plan: interrupted (nothing written by the step in progress)"]
    assert not out.exists()


def test_no_traceback_from_the_installed_entry_point(files):
    """The real process: the same one line and exit status 1."""
    code = "import sys; from sdm.cli import main; sys.exit(main(sys.argv[1:]))"
    for argv in (["plan", "--model", "10-x:4", "--trace", str(files / "t.npz")],
                 ["explain", str(files / "missing.json"), "t0"]):
        p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
        assert p.returncode == 1
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
