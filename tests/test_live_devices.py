"""Device write models and endurance: the write figures of the SSD presets, write_time_s (scalar
fast path == array path), drive writes per day and years of an update stream (ssd_lifetime)."""
from __future__ import annotations

import numpy as np
import pytest

import sdm
from sdm.core.errors import InvalidInputError
from sdm.hardware.presets import MICRON_9100_MAX, P3700, P4500, P4800X
from sdm.tiers.endurance import ssd_lifetime

SSDS = [P4800X, P3700, P4500, MICRON_9100_MAX]


@pytest.mark.parametrize("dev", SSDS, ids=lambda d: d.name)
def test_write_figures_have_sources(dev):
    for f in ("write_qd1_latency_s", "write_iops", "write_bandwidth_bytes_per_s", "write_watts",
              "endurance_rating_years"):
        assert getattr(dev, f) is not None and dev.sources.get(f), f
    assert dev.write_watts >= dev.idle_watts


@pytest.mark.parametrize("dev", SSDS, ids=lambda d: d.name)
def test_write_time_scalar_matches_array(dev):
    for n, b, qd in [(1, 4096, 1), (100, 4096, 32), (1000, 65536, 8), (7, 512, 64), (0, 4096, 4)]:
        s = dev.write_time_s(n, b, qd)
        a = dev.write_time_s(np.array([n]), np.array(b), qd)
        assert s == float(a[0])
    # ceilings: deep queues run at the write IOPS (4 KiB) or write bandwidth (large writes)
    assert dev.write_time_s(10**6, 4096, 1024) == pytest.approx(10**6 / min(dev.write_iops, dev.write_bandwidth_bytes_per_s / 4096))
    assert dev.write_time_s(1000, 1 << 20, 1024) == pytest.approx(1000 * (1 << 20) / dev.write_bandwidth_bytes_per_s)
    # QD1: one write latency each (or the IOPS ceiling where that binds first: P4500)
    assert dev.write_time_s(10, 4096, 1) == pytest.approx(10 * max(dev.write_qd1_latency_s, 1 / dev.write_iops))


def test_write_model_checks():
    with pytest.raises(InvalidInputError, match="go together"):
        P3700.replace(write_iops=None)
    with pytest.raises(InvalidInputError, match="n_writes"):
        P3700.write_time_s(np.array([-1]), 4096, 4)
    ddr = sdm.hardware("host-nand").host.dram
    assert ddr.write_time_s(100, 64, 8) == ddr.read_time_s(100, 64, 8)  # no write figures: read model


def test_endurance_arithmetic():
    rate = P4500.capacity_bytes / 86400.0  # one drive write per day
    assert P4500.drive_writes_per_day(rate) == pytest.approx(1.0)
    assert P4500.endurance_years(rate) == pytest.approx(0.5 * 5.0)  # 0.5 DWPD rated over 5 years
    assert P4500.endurance_years(0.0) == float("inf")
    assert sdm.hardware("host-nand").host.dram.endurance_years(1.0) is None


def test_ssd_lifetime():
    hw = sdm.hardware("host-nand")
    a = ssd_lifetime(hw, 10_000, 256)
    # row shadowing packs 16 rows a 4 KiB delta page, x 1.2/0.2 for compaction at the default bound
    assert a.write_amplification == pytest.approx(6.0)
    assert a.bytes_written_per_s == pytest.approx(10_000 * 256 * 6.0 / hw.scm_count)
    assert a.dwpd_used == pytest.approx(hw.scm.drive_writes_per_day(a.bytes_written_per_s))
    assert a.years == pytest.approx(hw.scm.endurance_years(a.bytes_written_per_s))
    single = ssd_lifetime(hw, 10_000, 256, batch_rows=1)  # a whole page per row
    assert single.years == pytest.approx(a.years / 16)
    assert ssd_lifetime(hw, 10_000, 256, batch_rows=24).write_amplification == pytest.approx(6.0 * 2 * 16 / 24)
    looser = ssd_lifetime(hw, 10_000, 256, max_space_amp=2.0)
    assert looser.years == pytest.approx(a.years * 6.0 / 2.0)
    assert 0 < a.write_busy_fraction < 1 and a.write_watts > 0
    assert any("years" in label for label, _ in a.rows())
    with pytest.raises(InvalidInputError, match="update_rows_per_s"):
        ssd_lifetime(hw, -1, 256)
    with pytest.raises(InvalidInputError, match="max_space_amp"):
        ssd_lifetime(hw, 1, 256, max_space_amp=1.0)
