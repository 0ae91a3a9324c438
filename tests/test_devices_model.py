"""Device model: published QD1/QD16 points, read amplification, batch service time, bad input."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdm.core.errors import InvalidInputError
from sdm.hardware.devices import MEDIA, DeviceSpec, fit_queue_model
from sdm.hardware.presets import DEVICE_PRESETS, PUBLISHED_POINTS, device, device_names

POINTS = [(name, qd, iops, lat) for name, pts in PUBLISHED_POINTS.items() for qd, (iops, lat) in pts.items()]


@pytest.mark.parametrize("name,qd,iops,latency_s", POINTS)
def test_reproduces_published_points_within_10_percent(name, qd, iops, latency_s):
    d = device(name)
    assert d.iops(qd, 4096) == pytest.approx(iops, rel=0.10)
    assert d.latency_s(qd, 4096) == pytest.approx(latency_s, rel=0.10)


def test_issue_points_are_covered():
    # The issue names the P4800X and the P3700 at QD1 and QD16: both must be in the checked set.
    for name in ("p4800x", "p3700"):
        assert set(PUBLISHED_POINTS[name]) == {1, 16}
    assert device("nand").name == "p3700" and device("3dxp").name == "p4800x"


def test_batch_time_matches_published_throughput():
    # 16 000 reads at QD16 take n / IOPS: the batch form of the published QD16 point.
    for name in ("p4800x", "p3700"):
        iops = PUBLISHED_POINTS[name][16][0]
        t = device(name).read_time_s(16_000, 4096, 16)
        assert 16_000 / t == pytest.approx(iops, rel=0.10)


def test_growth_parameters_are_the_fit_of_the_published_latencies():
    for name in ("p4800x", "p3700", "micron-9100-max"):
        d = device(name)
        (_, lat1), (_, lat16) = PUBLISHED_POINTS[name][1], PUBLISHED_POINTS[name][16]
        assert d.qd1_latency_s == lat1
        assert d.latency_growth_per_qd == pytest.approx(fit_queue_model(lat1, 16, lat16))


def test_3dxp_is_faster_than_nand_at_low_depth_and_dram_faster_still():
    nand, xp, dram = device("nand"), device("3dxp"), device("ddr4")
    assert dram.latency_s(1) < xp.latency_s(1) < nand.latency_s(1) / 5


def test_read_amplification_whole_access_units():
    nand, xp = device("nand"), device("3dxp")
    assert nand.effective_bytes(100) == 4096
    assert nand.effective_bytes(4097) == 8192
    assert xp.effective_bytes(100) == 512
    assert xp.effective_bytes(513) == 1024
    assert nand.read_amplification(128) == pytest.approx(32.0)
    # a 128 B row costs a NAND reader exactly what a 4 KiB page does
    assert nand.read_time_s(1000, 128, 32) == pytest.approx(nand.read_time_s(1000, 4096, 32))
    # bigger reads cost more: extra transfer time at the device bandwidth
    assert nand.latency_s(1, 65536) > nand.latency_s(1, 4096)
    # a 512 B read from 3DXP is faster than a 4 KiB one (shorter transfer), never free
    assert 0 < xp.latency_s(1, 512) < xp.latency_s(1, 4096)


def test_read_time_small_batches_run_at_their_own_depth():
    d = device("nand")
    assert d.read_time_s(0, 4096, 32) == 0.0
    assert d.read_time_s(1, 4096, 32) == pytest.approx(d.latency_s(1))
    assert d.read_time_s(5, 4096, 32) == pytest.approx(d.latency_s(5))
    assert d.read_time_s(64, 4096, 32) == pytest.approx(64 / d.iops(32))


def test_bandwidth_caps_large_reads():
    d = device("p4800x")
    rb = 1 << 20
    assert d.iops(64, rb) * d.effective_bytes(rb) <= d.bandwidth_bytes_per_s * (1 + 1e-12)
    assert d.read_time_s(1000, rb, 64) >= 1000 * rb / d.bandwidth_bytes_per_s


def test_vectorized_equals_scalar():
    d = device("p3700")
    n = np.array([0, 1, 7, 31, 32, 1000])
    qd = np.array([1, 4, 8, 16, 32, 64])
    vec = d.read_time_s(n, 4096, 32)
    assert np.allclose(vec, [d.read_time_s(int(x), 4096, 32) for x in n])
    assert np.allclose(d.iops(qd), [d.iops(int(q)) for q in qd])
    assert np.allclose(d.latency_s(qd, 512), [d.latency_s(int(q), 512) for q in qd])


@pytest.mark.parametrize("name", sorted(DEVICE_PRESETS))
def test_scalar_fast_path_equals_array_path_exactly(name):
    """Plain ints take the scalar path, arrays the numpy one: the same float bits at every point."""
    d = device(name)
    rng = np.random.default_rng(7)
    n = np.concatenate([[0, 1, 2, 15, 16, 17], rng.integers(0, 100_000, 400)])
    rb = np.concatenate([[1, 63, 64, 65, 512, 4096, 4097], rng.integers(1, 1 << 20, n.size - 7)])
    qd = np.concatenate([[1, 1, 2, 16, 16, 32], rng.integers(1, 512, n.size - 6)])
    vec_t, vec_iops, vec_lat = d.read_time_s(n, rb, qd), d.iops(qd, rb), d.latency_s(qd, rb)
    assert isinstance(vec_t, np.ndarray) and vec_t.shape == n.shape
    for i in range(n.size):
        a, b, c = int(n[i]), int(rb[i]), int(qd[i])
        t = d.read_time_s(a, b, c)
        assert type(t) is float and t == vec_t[i], (a, b, c)
        assert d.read_time_s(n[i], rb[i], qd[i]) == t  # numpy integer scalars take the same path
        assert d.iops(c, b) == vec_iops[i] and d.latency_s(c, b) == vec_lat[i], (b, c)
    assert d.iops(16) == d.iops(np.array([16]))[0]  # default read size


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(DEVICE_PRESETS)),
    qd_a=st.integers(1, 256),
    qd_b=st.integers(1, 256),
    read_bytes=st.integers(1, 1 << 20),
)
def test_queue_model_laws(name, qd_a, qd_b, read_bytes):
    d = device(name)
    lo, hi = sorted((qd_a, qd_b))
    # throughput and latency never fall with depth; Little's law holds; the caps hold
    assert d.iops(hi, read_bytes) >= d.iops(lo, read_bytes) * (1 - 1e-12)
    assert d.latency_s(hi, read_bytes) >= d.latency_s(lo, read_bytes) * (1 - 1e-12)
    assert d.iops(hi, read_bytes) * d.latency_s(hi, read_bytes) == pytest.approx(hi)
    assert d.iops(hi, read_bytes) <= d.peak_iops * (1 + 1e-12)
    assert d.iops(hi, read_bytes) * d.effective_bytes(read_bytes) <= d.bandwidth_bytes_per_s * (1 + 1e-9)
    # a batch takes at least one read's latency and never less than n / the depth's throughput
    n = hi * 3 + 1
    t = d.read_time_s(n, read_bytes, hi)
    assert t >= d.latency_s(1, read_bytes) * (1 - 1e-12)
    assert t == pytest.approx(n / d.iops(hi, read_bytes))


def test_every_preset_figure_names_its_source():
    skip = {"name", "medium", "sources"}
    for name, d in DEVICE_PRESETS.items():
        missing = [f.name for f in dataclasses.fields(d) if f.name not in skip and not d.sources.get(f.name)]
        assert not missing, f"{name}: no source for {missing}"
        assert d.medium in MEDIA


def test_every_medium_has_a_preset():
    assert {d.medium for d in DEVICE_PRESETS.values()} == set(MEDIA)
    for alias in ("nand", "3dxp", "p4500", "micron-9100-max", "sram", "lpddr4x", "hbm2", "ddr4"):
        assert alias in device_names()


def test_power_and_energy():
    d = device("p4800x")
    assert d.power_watts(0) == d.idle_watts
    assert d.power_watts(d.bandwidth_bytes_per_s) == pytest.approx(d.active_watts)
    assert d.power_watts(10 * d.bandwidth_bytes_per_s) == pytest.approx(d.active_watts)  # capped
    assert d.read_energy_j(10, 100) == pytest.approx(10 * 512 * d.energy_j_per_byte)  # amplification counted
    with pytest.raises(InvalidInputError, match="bytes_per_s"):
        d.power_watts(-1)


def test_overrides_and_sources():
    d = device("nand", qd1_latency_s=1e-4, capacity_bytes="4TB")
    assert d.qd1_latency_s == 1e-4 and d.capacity_bytes == 4 * 10**12
    assert d.sources["qd1_latency_s"] == "user override"
    assert device("nand").qd1_latency_s == 77.9e-6  # the preset is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.qd1_latency_s = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"qd1_latancy_s": 1e-5}, "qd1_latancy_s"),
        ({"qd1_latency_s": -1.0}, "qd1_latency_s"),
        ({"qd1_latency_s": float("nan")}, "qd1_latency_s"),
        ({"access_bytes": 0}, "access_bytes"),
        ({"access_bytes": 1.5}, "access_bytes"),
        ({"medium": "tape"}, "medium"),
        ({"peak_iops": "lots"}, "peak_iops"),
        ({"idle_watts": 30.0}, "active_watts"),
        ({"endurance_dwpd": -1}, "endurance_dwpd"),
    ],
)
def test_bad_overrides_name_the_field(kwargs, needle):
    with pytest.raises(InvalidInputError, match=needle):
        device("nand", **kwargs)


def test_unknown_field_lists_valid_ones():
    with pytest.raises(InvalidInputError) as exc:
        device("3dxp", latency=1)
    assert "'latency'" in str(exc.value) and "qd1_latency_s" in str(exc.value)


def test_unknown_device_lists_presets():
    with pytest.raises(InvalidInputError, match="p4800x"):
        device("floppy")


@pytest.mark.parametrize(
    "args",
    [(10, 4096, 0), (10, 0, 32), (-1, 4096, 32), (1.5, 4096, 32), (10, 4096, 2.5), (10, True, 32),
     (np.array([1, -2]), 4096, 4)],
)
def test_bad_read_arguments(args):
    with pytest.raises(InvalidInputError, match="p3700"):
        device("nand").read_time_s(*args)


def test_transfer_longer_than_latency_is_rejected():
    # a 4 KiB calibration read cannot be shorter than its own transfer at the stated bandwidth
    with pytest.raises(InvalidInputError, match="qd1_latency_s"):
        DeviceSpec(name="x", medium="3dxp", capacity_bytes=1, access_bytes=512, qd1_latency_s=1e-9,
                   peak_iops=1.0, bandwidth_bytes_per_s=1e6)


def test_fit_queue_model_rejects_nonsense():
    assert fit_queue_model(1e-5, 16, 2.5e-5) == pytest.approx(0.1)
    with pytest.raises(InvalidInputError):
        fit_queue_model(1e-5, 1, 2e-5)
    with pytest.raises(InvalidInputError):
        fit_queue_model(1e-5, 16, 5e-6)
    assert math.isfinite(device("p4500").latency_growth_per_qd)


def test_device_memory_tier_prices_reads_at_the_models_queue_depth():
    from sdm.hardware.platform import CARD_QUEUE_DEPTH, HOST_QUEUE_DEPTH
    from sdm.tiers.device_memory import DeviceMemoryTier

    rows = np.zeros((10, 4), np.float32)
    card = DeviceMemoryTier("a", 100, np.arange(10), rows, device="cpu", memory=device("lpddr4x"))
    host = DeviceMemoryTier("a", 100, np.arange(10), rows, device="cpu", memory=device("ddr4"))
    # the same depth the planner and the six-card timeline price card / host gathers at
    assert card.modelled_read_s(1000) == pytest.approx(device("lpddr4x").read_time_s(1000, 16, CARD_QUEUE_DEPTH))
    assert host.modelled_read_s(1000) == pytest.approx(device("ddr4").read_time_s(1000, 16, HOST_QUEUE_DEPTH))
    assert card.modelled_read_s(1000) < device("lpddr4x").read_time_s(1000, 16, 1) / 10
    assert card.modelled_read_s(0) == 0.0
    with pytest.raises(InvalidInputError, match="queue_depth"):
        DeviceMemoryTier("a", 100, np.arange(10), rows, device="cpu", memory=device("ddr4"), queue_depth=0)
