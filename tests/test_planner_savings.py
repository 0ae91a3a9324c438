"""Issue 12: compare says where savings come from (per part, servers needed, what sizes the fleet,
the SDM paper's band) and shows the other count model's answer where it flips a saving's sign."""
from __future__ import annotations

import json

import pytest

from sdm.cli import main
from sdm.placement.savings import band_position

MODEL = "2000000-500000-80000:128"


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    from sdm.traces.generators import zipf_trace

    d = tmp_path_factory.mktemp("sav")
    zipf_trace([2_000_000, 500_000, 80_000], 20000, pooling=20, seed=0).save(d / "t.npz")
    return d / "t.npz"


def _compare(capsys, trace, *extra):
    rc = main(["compare", "--model", MODEL, "--trace", str(trace), "--hardware", "host-dram,host-nand",
               "--no-progress", "--qps", "1000", "--set", "host.dram.capacity_bytes=1GB", *extra])
    assert rc == 0
    return capsys.readouterr().out


def test_breakdown_sums_to_the_fleet(compared, capsys):
    doc = json.loads(_compare(capsys, compared, "--json"))
    assert doc["count_model"] == "good-turing"
    base = doc["configs"][0]
    for r in doc["configs"]:
        parts = r["breakdown"]["parts"]
        assert sum(p["watts"] for p in parts.values()) == pytest.approx(r["fleet"]["watts"])
        assert sum(p["capex_usd"] for p in parts.values()) == pytest.approx(r["fleet"]["capex_usd"])
        assert sum(p["base_watts"] for p in parts.values()) == pytest.approx(base["fleet"]["watts"])
        saved = sum(p["saved_watts"] for p in parts.values()) / base["fleet"]["watts"]
        assert saved == pytest.approx(r["savings"]["power"])
        assert r["breakdown"]["sized_by"]["this"] in ("memory", "throughput")
        assert r["breakdown"]["servers"]["this"] == r["fleet"]["servers"]
        assert "SDM paper" in r["power_saving_vs_band"]


def test_other_count_model_shown_when_it_flips_a_sign(compared, capsys):
    doc = json.loads(_compare(capsys, compared, "--json"))
    nand = next(r for r in doc["configs"] if r["hardware"] == "host-nand")
    o = nand["other_count_model"]
    assert o["count_model"] == "raw"
    raw = json.loads(_compare(capsys, compared, "--json", "--counts", "raw"))
    nand_raw = next(r for r in raw["configs"] if r["hardware"] == "host-nand")
    assert o["savings"] == pytest.approx(nand_raw["savings"])        # the same run as --counts raw
    flips = [k for k in ("power", "capex", "tco") if (nand["savings"][k] > 0) != (nand_raw["savings"][k] > 0)]
    assert o["flips"] == flips and flips                              # this input flips the sign
    text = _compare(capsys, compared)
    assert "the count model decides host-nand's savings" in text and "counts good-turing" in text
    assert "where the savings come from" in text and "sized by" in text


@pytest.mark.parametrize("saving,where", [(0.01, "below"), (0.05, "inside"), (0.2, "inside"), (0.4, "above")])
def test_band_position(saving, where):
    assert band_position(saving).startswith(where)
