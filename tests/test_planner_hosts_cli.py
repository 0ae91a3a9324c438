"""Issue 13 (planner side) and 14 (CLI part): `sdm-plan plan --hosts N` writes one plan file with a
section per host that each rank opens alone; `compare` reports hosts needed per hardware type;
`--update-rows-per-s` reports drive writes per day and years per SSD."""
from __future__ import annotations

import json
import math

import pytest

from sdm.cli import main
from sdm.placement.host_plan import HostPlan

MODEL = "20000-5000-800-12000:32"


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    from sdm.traces.generators import zipf_trace

    path = tmp_path_factory.mktemp("hosts") / "t.npz"
    zipf_trace([20000, 5000, 800, 12000], num_samples=2000, pooling=4, seed=3).save(path)
    return path


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_plan_hosts_one_file_a_section_per_host_each_rank_reads_its_own(tmp_path, trace, capsys):
    out = tmp_path / "hosts.json"
    assert main(["plan", "--model", MODEL, "--trace", str(trace), "--hardware", "host-nand", "--hosts", "2",
                 "--out", str(out), "--no-progress", "--json"]) == 0
    doc = _json(capsys)
    assert doc["format"] == "sdm-host-plan" and len(doc["sections"]) == 2 and doc["plan_file"] == str(out)
    sizes = {"t0": 20000, "t1": 5000, "t2": 800, "t3": 12000}
    assert sum(s["size_bytes"] for s in doc["sections"]) == sum(sizes.values()) * 32 * 4   # shares add up
    # balanced: each host's load (share of lookups + share of bytes) within the biggest piece of the even share
    per_host = [sum(sh["lookups"] for sh in s["shards"]) for s in doc["sections"]]
    assert min(per_host) > 0
    # each rank opens its own section; only its own Plan is read
    hp = HostPlan.load(out, host=1)
    assert hp.section(1).plan is not None and hp.section(0).plan is None
    names = {s.table for sec in hp.sections for s in sec.shards}
    assert names == set(sizes)
    rows1 = {s.name: s.num_rows for s in hp.section(1).shards}
    assert set(hp.section(1).plan.tables) == set(rows1)      # its Plan places exactly its shards
    # the text form names the per-host plans and how to serve them
    assert main(["plan", "--model", MODEL, "--trace", str(trace), "--hosts", "2", "--sharding", "column",
                 "--out", str(tmp_path / "col.json"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "t0@0:16" in text and "t0@16:32" in text and "torchrun --standalone --nproc_per_node=2" in text
    assert "counts good-turing" in text


@pytest.mark.parametrize("extra, says", [
    (["--hosts", "0"], "--hosts"),
    (["--hosts", "2", "--plot", "p.png"], "--plot"),
    (["--update-rows-per-s", "-5"], "--update-rows-per-s"),
    (["--update-rows-per-s", "nan"], "--update-rows-per-s"),
    (["--hardware", "host-dram", "--update-rows-per-s", "100"], "no SCM drives"),
    (["--hosts", "2", "--sharding", "table", "--set", "scm.capacity_bytes=100000", "--set", "scm_count=1"],
     "use more hosts"),
])
def test_bad_host_and_update_inputs_exit_1_and_write_nothing(tmp_path, trace, capsys, extra, says):
    out = tmp_path / "plan.json"
    rc = main(["plan", "--model", MODEL, "--trace", str(trace), "--out", str(out), "--no-progress", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and says in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_update_rate_reports_drive_writes_per_day_and_years(tmp_path, trace, capsys):
    def life(rate):
        assert main(["plan", "--model", MODEL, "--trace", str(trace), "--hardware", "host-nand", "--out",
                     str(tmp_path / "p.json"), "--no-progress", "--json", "--update-rows-per-s", str(rate)]) == 0
        return _json(capsys)["endurance"]

    e = life(2000)
    # by hand: updated rows are packed 32 a 4 KiB delta page (128 B each); compaction at space
    # amplification 1.2 rewrites 1/(1.2-1) = 5 more: 6 rows' bytes per row, on the one P3700 of
    # host-nand (1.6 TB, 10 DWPD)
    assert e["row_bytes"] == 128 and e["device"] == "p3700" and e["drives"] == 1
    per_s = 2000 * 128 * 1.2 / 0.2
    assert e["bytes_written_per_drive_per_s"] == pytest.approx(per_s)
    assert e["drive_writes_per_day"] == pytest.approx(per_s * 86400 / 1600e9)
    # rated: 10 drive writes/day for 5 years of the 1.6 TB drive
    assert e["lifetime_years"] == pytest.approx(10 * 1600e9 * 365 * 5 / (per_s * 86400 * 365), rel=0.01)
    assert life(4000)["lifetime_years"] == pytest.approx(e["lifetime_years"] / 2)
    assert main(["plan", "--model", MODEL, "--trace", str(trace), "--out", str(tmp_path / "p.json"),
                 "--no-progress", "--update-rows-per-s", "2000"]) == 0
    text = capsys.readouterr().out
    assert "drive writes per day" in text and "years to rated endurance" in text
    # over hosts: each host's drives see its share of the rows' updates
    assert main(["plan", "--model", MODEL, "--trace", str(trace), "--hosts", "2", "--out", str(tmp_path / "h.json"),
                 "--no-progress", "--json", "--update-rows-per-s", "2000"]) == 0
    per_host = _json(capsys)["summary"]["endurance"]
    assert sum(v["update_rows_per_s"] for v in per_host.values()) == pytest.approx(2000)


def test_compare_reports_hosts_needed_per_hardware(trace, capsys):
    # DRAM shrunk to 300 kB: host-dram must spread the 4.9 MB model; host-nand's 1.6 TB SSD holds it
    assert main(["compare", "--model", MODEL, "--trace", str(trace), "--hardware", "host-dram,host-nand",
                 "--set", "host.dram.capacity_bytes=3MB", "--no-progress", "--json"]) == 0
    doc = _json(capsys)
    hosts = {r["hardware"]: r["hosts"] for r in doc["hosts_per_hardware"]}
    model_bytes = (20000 + 5000 + 800 + 12000) * 128
    assert hosts["host-nand"] == 1
    assert hosts["host-dram"] >= math.ceil(model_bytes / 3e6) and hosts["host-dram"] > 1
    # a DRAM-only host holds what the planner gives rows (85% of DRAM), as the fleet counts it
    row = next(r for r in doc["hosts_per_hardware"] if r["hardware"] == "host-dram")
    fleet = next(r for r in doc["configs"] if r["hardware"] == "host-dram")["fleet"]
    assert row["host_capacity_bytes"] == int(3e6 * 0.85)
    assert hosts["host-dram"] >= fleet["servers_for_capacity"] == math.ceil(model_bytes / (3e6 * 0.85))
    assert main(["compare", "--model", MODEL, "--trace", str(trace), "--hardware", "host-dram,host-nand",
                 "--set", "host.dram.capacity_bytes=3MB", "--no-progress"]) == 0
    assert "hosts needed to hold the model" in capsys.readouterr().out
