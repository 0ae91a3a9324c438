"""Device presets, and `device(name)` to look one up. Every figure names its source in the preset's
`sources` (field -> text).

"REFERENCE" means ../shared/REFERENCE.md (section named); other sources are public specs or reviews
named in full. Figures that could not be read from a primary source say *unconfirmed*; override them
(keyword, `--set`, or TOML) when you have a better number.

Queue-depth calibration of the SSDs (see `sdm.hardware.devices` for the model): `qd1_latency_s` is the
published QD1 mean latency at 4 KiB, `latency_growth_per_qd` is `fit_queue_model` through the
published QD16 mean latency, and `peak_iops` caps throughput where the drive saturates. The AnandTech
points themselves are not exactly consistent with Little's law (P4800X: 16 / 25.5 us = 627k, measured
584.8k), so a closed-loop model cannot match both QD16 numbers of that drive exactly; it matches IOPS
and is 7% high on latency (tests/test_devices_model.py checks every point within 10%).
"""
from __future__ import annotations

from typing import Any

from sdm.core.errors import InvalidInputError
from sdm.hardware.devices import DeviceSpec, fit_queue_model

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
GB, TB = 10**9, 10**12

_ANANDTECH = "REFERENCE Devices table (AnandTech Optane P4800X review, 4 KiB random read)"
_PAGE_NOTE = "REFERENCE Devices: NAND reads whole 4 KiB pages"
_UNCONF_NAND_USD = (
    "*unconfirmed*: order of magnitude of 2017-era enterprise NVMe NAND SSD prices; no primary source "
    "found, override with a real quote"
)
_DRAM_USD = (
    "DRAMeXchange contract price via DigiTimes 2017-01-12: 32 GB DDR4 RDIMM > US$200 (~$6.25/GB); "
    "dated, *unconfirmed* for later years"
)

# --- SSDs -------------------------------------------------------------------------------------

P4800X = DeviceSpec(
    name="p4800x",
    medium="3dxp",
    capacity_bytes=375 * GB,
    access_bytes=512,
    qd1_latency_s=8.9e-6,
    peak_iops=584.8e3,
    bandwidth_bytes_per_s=2400e6,
    latency_growth_per_qd=fit_queue_model(8.9e-6, 16, 25.5e-6),
    calibration_read_bytes=4096,
    idle_watts=5.0,
    active_watts=8.0,
    energy_j_per_byte=(8.0 - 5.0) / 2400e6,
    usd_per_gb=1520 / 375,
    endurance_dwpd=30.0,
    write_qd1_latency_s=10e-6,
    write_iops=500e3,
    write_bandwidth_bytes_per_s=2000e6,
    write_watts=13.0,
    sources={
        "capacity_bytes": "REFERENCE Devices: Optane P4800X 375 GB (the drive AnandTech measured)",
        "access_bytes": "REFERENCE Devices: 3DXP SSDs read 512 B sectors",
        "qd1_latency_s": f"{_ANANDTECH}: QD1 mean 8.9 us",
        "peak_iops": f"{_ANANDTECH}: QD16 584.8k IOPS, where the drive saturates (Intel rates 550k at QD16)",
        "bandwidth_bytes_per_s": "REFERENCE Devices: P4800X spec 2400 MB/s sequential read",
        "latency_growth_per_qd": f"fit_queue_model through {_ANANDTECH}: QD16 mean 25.5 us",
        "calibration_read_bytes": "published points are 4 KiB random reads",
        "idle_watts": "REFERENCE Devices: P4800X spec idle 5 W (375 GB)",
        "active_watts": "REFERENCE Devices: P4800X spec read power 8 W (375 GB)",
        "energy_j_per_byte": "derived: (read 8 W - idle 5 W) / 2400 MB/s",
        "usd_per_gb": "AnandTech P4800X 750GB review, spec table: MSRP $1520 for 375 GB (2017)",
        "endurance_dwpd": "REFERENCE Devices: P4800X spec 30 drive writes per day",
        "write_qd1_latency_s": "AnandTech Optane SSD DC P4800X 750GB hands-on review, spec table: typical latency (R/W) <10 us (the bound taken)",
        "write_iops": "AnandTech Optane SSD DC P4800X 750GB hands-on review, spec table: random write (4 kB) 500,000 IOPS at QD16",
        "write_bandwidth_bytes_per_s": "AnandTech Optane SSD DC P4800X 750GB hands-on review, spec table: sequential write (64 kB) 2000 MB/s",
        "write_watts": "AnandTech Optane SSD DC P4800X 750GB hands-on review, spec table: active write power 13 W (375 GB)",
        "endurance_rating_years": "AnandTech Optane SSD DC P4800X 750GB hands-on review, spec table: 30 DWPD, 5-year warranty",
    },
)

P3700 = DeviceSpec(
    name="p3700",
    medium="nand",
    capacity_bytes=1600 * GB,
    access_bytes=4096,
    qd1_latency_s=77.9e-6,
    peak_iops=450e3,
    bandwidth_bytes_per_s=2800e6,
    latency_growth_per_qd=fit_queue_model(77.9e-6, 16, 93.9e-6),
    calibration_read_bytes=4096,
    idle_watts=4.0,
    active_watts=25.0,
    energy_j_per_byte=(25.0 - 4.0) / 2800e6,
    usd_per_gb=0.5,
    endurance_dwpd=10.0,
    write_qd1_latency_s=20e-6,
    write_iops=150e3,
    write_bandwidth_bytes_per_s=1900e6,
    write_watts=25.0,
    sources={
        "capacity_bytes": "Tom's Hardware Micron 9100 MAX review test pool: 1.6 TB Intel DC P3700 "
        "(*unconfirmed* that AnandTech measured the same capacity)",
        "access_bytes": _PAGE_NOTE,
        "qd1_latency_s": f"{_ANANDTECH}: QD1 mean 77.9 us",
        "peak_iops": "Tom's Hardware Micron 9100 MAX review spec table: P3700 1.6 TB 450,000 random read IOPS "
        "(Intel datasheet 330566: up to 460K)",
        "bandwidth_bytes_per_s": "Intel DC P3700 product specification 330566: seq read up to 2800 MB/s",
        "latency_growth_per_qd": f"fit_queue_model through {_ANANDTECH}: QD16 mean 93.9 us",
        "calibration_read_bytes": "published points are 4 KiB random reads",
        "idle_watts": "Intel DC P3700 product specification 330566: idle 4 W (typ)",
        "active_watts": "Intel DC P3700 product specification 330566-005, front page: 'Active/Idle (TYP): "
        "Up to 25W/4W' -- one active ceiling for reads and writes alike (no separate read power is "
        "published there); a read-only load is at most this, *unconfirmed* how much less",
        "energy_j_per_byte": "derived: (active 25 W - idle 4 W) / 2800 MB/s",
        "usd_per_gb": _UNCONF_NAND_USD,
        "endurance_dwpd": "Intel DC P3700 product specification 330566-005: 10 drive writes/day",
        "write_qd1_latency_s": "Intel DC P3700 product specification 330566: seq latency (typ) R/W 20/20 us (used for 4 KiB random writes too: *unconfirmed*)",
        "write_iops": "Tom's Hardware Micron 9100 MAX 2.4TB review spec table: P3700 1.6 TB random write 150,000 IOPS (Intel 330566: up to 175K, largest capacity)",
        "write_bandwidth_bytes_per_s": "Tom's Hardware Micron 9100 MAX 2.4TB review spec table: P3700 1.6 TB sequential write 1.9 GB/s (Intel 330566: up to 2000 MB/s)",
        "write_watts": "Intel DC P3700 product specification 330566-005: 'Active/Idle (TYP): Up to 25W/4W' "
        "(the same active ceiling as reads)",
        "endurance_rating_years": "Intel DC P3700 product specification 330566: 36.5 PBW = 10 DWPD x 2 TB x 5 years",
    },
)

MICRON_9100_MAX = DeviceSpec(
    name="micron-9100-max",
    medium="nand",
    capacity_bytes=2400 * GB,
    access_bytes=4096,
    qd1_latency_s=107.7e-6,
    peak_iops=750e3,
    bandwidth_bytes_per_s=3200e6,
    latency_growth_per_qd=fit_queue_model(107.7e-6, 16, 116.2e-6),
    calibration_read_bytes=4096,
    idle_watts=7.0,
    active_watts=30.0,
    energy_j_per_byte=(30.0 - 7.0) / 3200e6,
    usd_per_gb=0.5,
    endurance_dwpd=2.7,
    write_qd1_latency_s=20e-6,
    write_iops=300e3,
    write_bandwidth_bytes_per_s=2200e6,
    write_watts=28.0,
    endurance_rating_years=2.78,
    sources={
        "capacity_bytes": "Tom's Hardware Micron 9100 MAX NVMe 2.4TB review (the drive class AnandTech measured)",
        "access_bytes": _PAGE_NOTE,
        "qd1_latency_s": f"{_ANANDTECH}: QD1 mean 107.7 us",
        "peak_iops": "Tom's Hardware 9100 MAX 2.4TB review spec table: 750,000 random read IOPS",
        "bandwidth_bytes_per_s": "Tom's Hardware 9100 MAX 2.4TB review spec table: 3.2 GB/s sequential read",
        "latency_growth_per_qd": f"fit_queue_model through {_ANANDTECH}: QD16 mean 116.2 us",
        "calibration_read_bytes": "published points are 4 KiB random reads",
        "idle_watts": "Tom's Hardware 9100 MAX review spec table 'Active Power 7-30' read as 7 W low end "
        "(*unconfirmed* that 7 W is idle)",
        "active_watts": "Tom's Hardware 9100 MAX review spec table: up to 30 W",
        "energy_j_per_byte": "derived: (30 W - 7 W) / 3.2 GB/s",
        "usd_per_gb": _UNCONF_NAND_USD,
        "endurance_dwpd": "Tom's Hardware 9100 MAX review spec table: 6.57 PB / 2.7 DWPD",
        "write_qd1_latency_s": "*unconfirmed*: no published write latency found; the P3700 / P4500 class figure (20 us)",
        "write_iops": "Tom's Hardware Micron 9100 MAX 2.4TB review spec table: random write 300,000 IOPS",
        "write_bandwidth_bytes_per_s": "Tom's Hardware Micron 9100 MAX 2.4TB review spec table: sequential write 2.2 GB/s",
        "write_watts": "Tom's Hardware 9100 MAX 2.4TB review, 128KB sequential: measured peak 28 W while writing",
        "endurance_rating_years": "derived from Tom's Hardware Micron 9100 MAX 2.4TB review spec table: 6.57 PB / (2.7 DWPD x 2.4 TB x 365 d) = 2.78 years",
    },
)

# No published QD16 point for the P4500: it borrows the P3700's queue growth (same NAND SSD class).
P4500 = DeviceSpec(
    name="p4500",
    medium="nand",
    capacity_bytes=2000 * GB,
    access_bytes=4096,
    qd1_latency_s=85e-6,
    peak_iops=490e3,
    bandwidth_bytes_per_s=3200e6,
    latency_growth_per_qd=P3700.latency_growth_per_qd,
    calibration_read_bytes=4096,
    idle_watts=5.0,
    active_watts=12.0,
    energy_j_per_byte=(12.0 - 5.0) / 3200e6,
    usd_per_gb=0.3,
    endurance_dwpd=0.5,
    write_qd1_latency_s=20e-6,
    write_iops=38e3,
    write_bandwidth_bytes_per_s=1050e6,
    write_watts=12.0,
    sources={
        "capacity_bytes": "REFERENCE Devices: Intel P4500 1 / 2 / 4 TB (2 TB chosen)",
        "access_bytes": _PAGE_NOTE,
        "qd1_latency_s": "REFERENCE Devices: P4500 read latency 85-115 us (Lenovo P4500 product guide: "
        "random read 85 us for 1 and 2 TB, 115 us for 4 TB)",
        "peak_iops": "REFERENCE Devices: P4500 4K read IOPS 490k (2 TB)",
        "bandwidth_bytes_per_s": "Lenovo Intel P4500 product guide, technical specifications: sequential read 3.2 GBps",
        "latency_growth_per_qd": "*unconfirmed*: no published QD16 point; P3700's fitted growth reused (same class)",
        "calibration_read_bytes": "published figures are 4 KiB random reads",
        "idle_watts": "*unconfirmed*: typical idle of a 2017 data-center NVMe SSD (P3700 4 W, P4800X 5 W)",
        "active_watts": "*unconfirmed*: typical read power of a U.2 TLC NVMe SSD of that generation",
        "energy_j_per_byte": "derived: (active - idle) / sequential read bandwidth",
        "usd_per_gb": "*unconfirmed*: 2017-era data-center TLC NVMe price order of magnitude; override",
        "endurance_dwpd": "Lenovo Intel P4500 product guide: 0.5 DWPD over 5 years (2 TB)",
        "write_qd1_latency_s": "Lenovo Intel P4500 product guide, technical specifications: write access latency random 20 us",
        "write_iops": "Lenovo Intel P4500 product guide, technical specifications: IOPS write (4 KB) 38,000 (2 TB)",
        "write_bandwidth_bytes_per_s": "Lenovo Intel P4500 product guide, technical specifications: sequential write 1.05 GBps (2 TB)",
        "write_watts": "*unconfirmed*: set to the (also unconfirmed) active_watts; no published write power found",
        "endurance_rating_years": "Lenovo Intel P4500 product guide: 1.89 PB = 0.5 DWPD x 2 TB over 5 years",
    },
)

# A memory's writes are priced with its read figures (DeviceSpec.write_time_s); no endurance rating.
_NO_WRITE_FIGURES = {
    "write_qd1_latency_s": "not set: writes priced with the read figures (DRAM/SRAM/HBM write about as fast)",
    "write_iops": "not set: writes priced with the read figures",
    "write_bandwidth_bytes_per_s": "not set: writes priced with the read figures",
    "write_watts": "not set: active_watts covers reads and writes",
    "endurance_rating_years": "unused: a memory has no endurance rating (endurance_dwpd None)",
}

# --- memories ---------------------------------------------------------------------------------
# "Queue depth" for a memory is the number of outstanding misses (memory-level parallelism).
# DRAM latency stays flat until the channels saturate, so growth is 0 and the bandwidth cap alone
# bends the curve (Little's law does the rest).

DDR4 = DeviceSpec(
    name="ddr4",
    medium="ddr4",
    capacity_bytes=64 * GIB,
    access_bytes=64,
    qd1_latency_s=305e-9 / 3,
    peak_iops=6 * 2666e6 * 8 / 64,
    bandwidth_bytes_per_s=6 * 2666e6 * 8,
    latency_growth_per_qd=0.0,
    calibration_read_bytes=64,
    idle_watts=0.0,
    active_watts=0.0,
    energy_j_per_byte=70e-12 * 8,
    usd_per_gb=200 / 32,
    endurance_dwpd=None,
    sources={
        **_NO_WRITE_FIGURES,
        "capacity_bytes": "placeholder pool size; hardware presets set it (see sdm.hardware.server)",
        "access_bytes": "REFERENCE Devices: 64 B DRAM line",
        "qd1_latency_s": "REFERENCE Devices: Optane DIMM random read ~305 ns is ~3x DRAM -> ~100 ns",
        "peak_iops": "derived: bandwidth / 64 B line",
        "bandwidth_bytes_per_s": "JEDEC DDR4-2666: 2666 MT/s x 8 B per channel, x 6 channels of a "
        "Skylake-SP socket (Intel ARK Xeon Gold 6138)",
        "latency_growth_per_qd": "DRAM latency is flat until bandwidth saturates (model choice)",
        "calibration_read_bytes": "one 64 B line",
        "idle_watts": "0 here: DIMM power is counted per module in HostSpec (dimm_watts x dimm_count)",
        "active_watts": "0 here: see idle_watts",
        "energy_j_per_byte": "REFERENCE Devices (Chatterjee et al. MICRO'17 via Accelergy): DDR3 70 pJ/bit; "
        "no DDR4 figure there, DDR3's used as an upper bound (*unconfirmed* for DDR4)",
        "usd_per_gb": _DRAM_USD,
        "endurance_dwpd": "not applicable to DRAM",
    },
)

LPDDR4X = DeviceSpec(
    name="lpddr4x",
    medium="lpddr4x",
    capacity_bytes=16 * GIB,
    access_bytes=64,
    qd1_latency_s=120e-9,
    peak_iops=68e9 / 64,
    bandwidth_bytes_per_s=68e9,
    latency_growth_per_qd=0.0,
    calibration_read_bytes=64,
    idle_watts=0.0,
    active_watts=0.0,
    energy_j_per_byte=8e-12 * 8,
    usd_per_gb=0.0,
    endurance_dwpd=None,
    sources={
        **_NO_WRITE_FIGURES,
        "capacity_bytes": "REFERENCE Platform: 16 GB LPDDR4x on the M.2 module (*unconfirmed* that Meta used NNP-I)",
        "access_bytes": "64 B line, as the card's cores fetch (model choice; LPDDR4 x16 burst is 32 B)",
        "qd1_latency_s": "*unconfirmed*: LPDDR4x loaded latency is typically above DDR4's ~100 ns; 120 ns assumed",
        "peak_iops": "derived: bandwidth / 64 B",
        "bandwidth_bytes_per_s": "REFERENCE Platform: 68 GB/s DRAM bandwidth (AnandTech Hot Chips 31 live blog)",
        "latency_growth_per_qd": "flat until bandwidth saturates (model choice)",
        "calibration_read_bytes": "one 64 B line",
        "idle_watts": "0 here: counted in the card's idle watts (sdm.hardware.card)",
        "active_watts": "0 here: counted in the card's load watts (sdm.hardware.card)",
        "energy_j_per_byte": "REFERENCE Devices (Chatterjee et al. MICRO'17 via Accelergy): LPDDR4 8 pJ/bit",
        "usd_per_gb": "0 here: included in the card's price (sdm.hardware.card)",
        "endurance_dwpd": "not applicable",
    },
)

SRAM = DeviceSpec(
    name="sram",
    medium="sram",
    capacity_bytes=75 * MIB,
    access_bytes=64,
    qd1_latency_s=20e-9,
    peak_iops=1e12 / 64,
    bandwidth_bytes_per_s=1e12,
    latency_growth_per_qd=0.0,
    calibration_read_bytes=64,
    idle_watts=0.0,
    active_watts=0.0,
    energy_j_per_byte=100e-12 / 8,
    usd_per_gb=0.0,
    endurance_dwpd=None,
    sources={
        **_NO_WRITE_FIGURES,
        "capacity_bytes": "REFERENCE Platform: 75 MB on-chip SRAM (24 MB LLC + 48 MB deep SRAM, + 3 MB TCM "
        "per WikiChip NNP-I 1100) (*unconfirmed* that Meta used NNP-I)",
        "access_bytes": "64 B line (model choice)",
        "qd1_latency_s": "*unconfirmed*: last-level-cache class latency assumed (20 ns)",
        "peak_iops": "derived: bandwidth / 64 B",
        "bandwidth_bytes_per_s": "*unconfirmed*: no published figure; 1 TB/s assumed (order of magnitude of "
        "on-chip SRAM, ~15x the card's 68 GB/s DRAM)",
        "latency_growth_per_qd": "flat until bandwidth saturates (model choice)",
        "calibration_read_bytes": "one 64 B line",
        "idle_watts": "0 here: counted in the card's idle watts (sdm.hardware.card)",
        "active_watts": "0 here: counted in the card's load watts (sdm.hardware.card)",
        "energy_j_per_byte": "Horowitz, 'Computing's energy problem', ISSCC 2014: ~100 pJ per 64-bit read "
        "of a 1 MB SRAM (45 nm); *unconfirmed* for 10 nm",
        "usd_per_gb": "0 here: part of the accelerator chip",
        "endurance_dwpd": "not applicable",
    },
)

HBM2 = DeviceSpec(
    name="hbm2",
    medium="hbm2",
    capacity_bytes=8 * GIB,
    access_bytes=64,
    qd1_latency_s=120e-9,
    peak_iops=256e9 / 64,
    bandwidth_bytes_per_s=256e9,
    latency_growth_per_qd=0.0,
    calibration_read_bytes=64,
    idle_watts=0.0,
    active_watts=0.0,
    energy_j_per_byte=3.9e-12 * 8,
    usd_per_gb=20.0,
    endurance_dwpd=None,
    sources={
        **_NO_WRITE_FIGURES,
        "capacity_bytes": "JEDEC JESD235B HBM2: up to 8 GB per stack (one stack)",
        "access_bytes": "64 B line (model choice; HBM2 pseudo-channel burst is 32 B)",
        "qd1_latency_s": "*unconfirmed*: DRAM-class latency assumed (120 ns)",
        "peak_iops": "derived: bandwidth / 64 B",
        "bandwidth_bytes_per_s": "JEDEC JESD235B HBM2: 2 Gb/s per pin x 1024 pins = 256 GB/s per stack",
        "latency_growth_per_qd": "flat until bandwidth saturates (model choice)",
        "calibration_read_bytes": "one 64 B line",
        "idle_watts": "0 here: counted with the package that carries the stack",
        "active_watts": "0 here: see idle_watts",
        "energy_j_per_byte": "REFERENCE Devices (Chatterjee et al. MICRO'17 via Accelergy): HBM2 3.9 pJ/bit",
        "usd_per_gb": "*unconfirmed*: no public HBM2 price; ~3x DDR4 per GB assumed",
        "endurance_dwpd": "not applicable",
    },
)

DEVICE_PRESETS: dict[str, DeviceSpec] = {
    d.name: d for d in (SRAM, LPDDR4X, HBM2, DDR4, P3700, P4500, MICRON_9100_MAX, P4800X)
}
DEVICE_ALIASES: dict[str, str] = {
    "nand": "p3700",
    "3dxp": "p4800x",
    "optane": "p4800x",
    "9100max": "micron-9100-max",
    "dram": "ddr4",
}

# Published points the SSD presets are checked against (REFERENCE Devices table):
# device -> {queue_depth: (iops, mean_latency_s)}
PUBLISHED_POINTS: dict[str, dict[int, tuple[float, float]]] = {
    "p4800x": {1: (108.3e3, 8.9e-6), 16: (584.8e3, 25.5e-6)},
    "p3700": {1: (12.8e3, 77.9e-6), 16: (167.2e3, 93.9e-6)},
    "micron-9100-max": {1: (9.2e3, 107.7e-6), 16: (135.7e3, 116.2e-6)},
}


def device(name: str, **overrides: Any) -> DeviceSpec:
    """A device preset by name (see `device_names()`), with fields overridden by keyword."""
    key = DEVICE_ALIASES.get(name, name)
    if key not in DEVICE_PRESETS:
        raise InvalidInputError(f"unknown device {name!r}; known devices: {', '.join(device_names())}")
    spec = DEVICE_PRESETS[key]
    return spec.replace(**overrides) if overrides else spec


def device_names() -> list[str]:
    """Preset names and aliases accepted by `device()`."""
    return sorted(set(DEVICE_PRESETS) | set(DEVICE_ALIASES))
