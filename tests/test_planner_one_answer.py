"""Issue 12: one reconciled answer per plan. The headline, the tier rows, the six-card timeline and
`compare` print the same latency, QPS and watts; a tier with ~no reads costs ~no time."""
from __future__ import annotations

import json

import numpy as np

import pytest

from sdm.cli import main
from sdm.placement.objectives import poisson_quantile


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    from sdm.traces.generators import zipf_trace

    d = tmp_path_factory.mktemp("one")
    tr = zipf_trace([20000, 5000, 800], num_samples=2000, pooling=4, seed=1)
    path = d / "t.npz"
    tr.save(path)
    return d, path


def _plan(tmp, trace, hw, *extra):
    out = tmp / f"{hw}.json"
    rc = main(["plan", "--model", "20000-5000-800:32", "--trace", str(trace), "--hardware", hw,
               "--out", str(out), "--no-progress", "--json", *extra])
    assert rc == 0
    return out


def test_plan_headline_is_the_timeline_on_cards(trace_file, capsys):
    d, trace = trace_file
    out = _plan(d, trace, "yosemite-v2-nand")
    doc = json.loads(capsys.readouterr().out)
    s, t = doc["summary"], doc["cards"]["timeline"]
    assert s["headline_model"].startswith("six-card timeline")
    assert s["p99_latency_s"] == t["latency"]["p99_s"] and s["latency_s"] == t["latency"]["mean_s"]
    assert s["qps_per_server"] == t["throughput"]["max_qps"]
    assert s["watts"] == t["power"]["server_watts"] and t["power"]["at_qps"] == s["qps_per_server"]
    assert s["count_model"] == "good-turing" and "tier_model" in s
    assert json.loads(out.read_text())["summary"]["watts"] == s["watts"]      # the file says the same
    # compare prints the same figures for the same configuration
    rc = main(["compare", "--model", "20000-5000-800:32", "--trace", str(trace), "--hardware",
               "host-nand,yosemite-v2-nand", "--no-progress", "--json", "--qps", "500"])
    assert rc == 0
    cmp = json.loads(capsys.readouterr().out)
    row = next(r for r in cmp["configs"] if r["hardware"] == "yosemite-v2-nand")
    assert row["p99_latency_s"] == s["p99_latency_s"] and row["qps_per_server"] == s["qps_per_server"]
    assert row["watts"] == s["watts"] and cmp["count_model"] == "good-turing"
    f = row["fleet"]
    assert f["watts"] == pytest.approx(f["servers"] * (row["watts_idle"] + f["utilization"]
                                                         * (row["watts"] - row["watts_idle"])))


def test_host_headline_is_the_sum_of_tier_rows(trace_file, capsys):
    d, trace = trace_file
    _plan(d, trace, "host-nand", "--counts", "raw")
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["count_model"] == "raw"
    assert s["latency_s"] == pytest.approx(sum(s["tier_time_s"].values()))


def test_a_tier_with_no_reads_costs_no_time():
    from sdm.placement.objectives import tier_time_s
    from sdm.placement.types import TierSpec

    scm = TierSpec("scm", 10**12, 4096, 111.2e-6, 2e5, 2.8e9)
    mean, busy = tier_time_s(scm, 1e-14, 128)
    assert mean < 1e-15 and busy < 1e-15                  # was a whole 111.2 us read
    assert tier_time_s(scm, 0.0, 128) == (0.0, 0.0)
    mean, busy = tier_time_s(scm, 200.0, 128)             # many reads: latency + transfer, as before
    assert mean == pytest.approx(scm.read_time_s(200.0, 128)) and busy == pytest.approx(200 / 2e5)
    mean, _ = tier_time_s(scm, 0.5, 128)
    assert mean == pytest.approx((1 - np.exp(-0.5)) * 111.2e-6 + 0.5 / 2e5)
    assert poisson_quantile(1e-14, 0.99) == 0.0
    assert poisson_quantile(0.5, 0.99) == 3.0            # P(N <= 2) = 0.986, P(N <= 3) = 0.998
    assert poisson_quantile(400.0, 0.99) == pytest.approx(400 + 2.326 * 20, rel=1e-3)


def test_near_empty_scm_tier_is_not_charged_a_whole_read(trace_file, capsys):
    d, trace = trace_file
    _plan(d, trace, "host-nand")                          # everything fits in DRAM
    s = json.loads(capsys.readouterr().out)["summary"]
    scm_reads = s["reads_per_request"].get("scm", 0.0)
    assert scm_reads < 1e-3
    assert s["tier_time_s"].get("scm", 0.0) < 1e-3 * 77.9e-6 + 1e-9
    assert s["p99_latency_s"] == pytest.approx(s["latency_s"]) and s["p99_latency_s"] < 77.9e-6   # no SCM read at p99


def test_explain_says_why_in_words_with_the_deciding_numbers(trace_file, capsys):
    d, trace = trace_file
    out = d / "e.json"
    assert main(["plan", "--model", "20000-5000-800:32", "--trace", str(trace), "--hardware", "host-nand",
                 "--set", "plan.dram_usable_fraction=0.0000004", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["explain", str(out), "t0", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    dram = next(r for r in e["reasons"] if r.startswith("dram"))
    thr = next(t for t in e["tiers"] if t["tier"] == "dram")["density_threshold"]
    assert f"{thr:.4g} lookups/B" in dram and f"{thr * e['row_bytes']:.3g} lookups per {e['row_bytes']}-byte row" in dram
    assert "Good-Turing" in dram and ("rows read at least" in dram or "whole table" in dram
                                      or "none of its rows" in dram)
