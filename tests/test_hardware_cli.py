"""`sdm-plan hardware`: listing, the sourced table, --json, --set, --toml, --devices, errors."""
from __future__ import annotations

import json

import pytest

from sdm.cli import main
from sdm.hardware.server import hardware, hardware_names


def run(capsys, *argv):
    rc = main(["hardware", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_lists_every_preset(capsys):
    rc, out, _ = run(capsys)
    assert rc == 0
    for name in hardware_names():
        assert name in out
    rc, out, _ = run(capsys, "--json")
    assert [r["name"] for r in json.loads(out)] == hardware_names()


def test_table_shows_values_and_sources(capsys):
    rc, out, _ = run(capsys, "yosemite-v2-3dxp")
    assert rc == 0
    assert "source" in out.splitlines()[1]
    line = next(x for x in out.splitlines() if "qd1_latency_s" in x and x.startswith("scm"))
    assert "8.9 us" in line and "AnandTech" in line
    assert "cards[0..5].lpddr" in out and "REFERENCE Platform" in out
    assert "*unconfirmed*" in out  # weak figures say so
    assert "peak_watts" in out


def test_json_parses_and_matches_the_api(capsys):
    rc, out, _ = run(capsys, "host-nand", "--json")
    assert rc == 0
    d = json.loads(out)
    api = json.loads(json.dumps(hardware("host-nand").to_dict()))
    power = d["derived"]
    assert {k: v for k, v in d.items() if k != "derived"} == {k: v for k, v in api.items() if k != "derived"}
    assert api["derived"].items() <= power.items()
    # watts and dollars come from the planner's one model, so `hardware` and `plan` agree
    from sdm.placement.power import parts_from_hardware, server_power
    assert power["peak_watts"] == server_power(parts_from_hardware(hardware("host-nand"))).load_watts
    assert d["scm"]["sources"]["qd1_latency_s"].startswith("REFERENCE")


def test_set_overrides(capsys):
    rc, out, _ = run(capsys, "host-nand", "--json", "--set", "dram_capacity_bytes=64GiB",
                     "--set", "scm.qd1_latency_s=1e-5")
    assert rc == 0
    d = json.loads(out)
    assert d["host"]["dram"]["capacity_bytes"] == 64 << 30
    assert d["scm"]["qd1_latency_s"] == 1e-5 and d["scm"]["sources"]["qd1_latency_s"] == "user override"


def test_toml_then_set(tmp_path, capsys):
    f = tmp_path / "hw.toml"
    f.write_text('base = "host-3dxp"\nscm_count = 2\n[host]\ncores = 32\n')
    rc, out, _ = run(capsys, "--toml", str(f), "--json", "--set", "host.cores=24")
    assert rc == 0
    d = json.loads(out)
    assert d["name"] == "host-3dxp" and d["scm_count"] == 2 and d["host"]["cores"] == 24
    rc, out, _ = run(capsys, "--toml", str(f))
    assert rc == 0 and f"TOML file {f}" in out


def test_devices_listing(capsys):
    rc, out, _ = run(capsys, "--devices")
    assert rc == 0 and "p4800x" in out and "micron-9100-max" in out
    rc, out, _ = run(capsys, "--devices", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    # numbers in SI units, named by unit (issue 12: no "77.9 us" strings in JSON)
    from sdm.hardware.presets import device
    assert rows["p3700"]["qd1_latency_s"] == pytest.approx(device("p3700").latency_s(1, 4096))
    assert rows["p3700"]["qd1_latency_s"] == pytest.approx(77.9e-6, rel=1e-3)
    for r in rows.values():
        assert all(isinstance(v, (int, float)) for k, v in r.items() if k not in ("name", "medium")), r


def test_list_json_is_numeric(capsys):
    from sdm.placement.power import parts_from_hardware, server_power

    rc, out, _ = run(capsys, "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    nand = rows["host-nand"]
    assert nand["dram_bytes"] == hardware("host-nand").dram_capacity_bytes and nand["scm_count"] == 1
    assert nand["wall_peak_watts"] == pytest.approx(server_power(parts_from_hardware(hardware("host-nand"))).load_watts)
    for r in rows.values():
        assert all(isinstance(v, (int, float)) or v is None for k, v in r.items()
                   if k not in ("name", "description", "scm_device", "card_device")), r
    rc, out, _ = run(capsys)
    assert "peak_W (wall)" in out and "$5,512" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["nope"], "unknown hardware 'nope'"),
        (["host-nand", "--set", "dram_capacity=1"], "unknown field 'dram_capacity'"),
        (["host-nand", "--set", "justtext"], "FIELD=VALUE"),
        (["host-nand", "--set", "scm.qd1_latency_s=fast"], "scm.qd1_latency_s"),
        (["--set", "scm_count=1"], "--set needs"),
        (["host-nand", "--toml", "x.toml"], "not both"),
    ],
)
def test_errors_exit_1_with_a_message(capsys, argv, needle):
    rc, out, err = run(capsys, *argv)
    assert rc == 1 and needle in err and out == ""


def test_calibration_view_within_10_percent(capsys):
    rc, out, _ = run(capsys, "--calibration", "--json")
    assert rc == 0
    rows = json.loads(out)
    assert {(r["device"], r["queue_depth"]) for r in rows} >= {("p4800x", 1), ("p4800x", 16), ("p3700", 1), ("p3700", 16)}
    assert all(abs(r["iops_error"]) < 0.10 and abs(r["latency_error"]) < 0.10 for r in rows)
    rc, out, _ = run(capsys, "--calibration")
    assert rc == 0 and "latency_err" in out and "p4800x" in out
