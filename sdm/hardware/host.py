"""The host server: CPU socket(s), DRAM (a device pool and its DIMMs), base platform; and the two
host presets the hardware presets are built on. Every figure names its source in `sources`."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from sdm.core.checks import real_number, whole_number
from sdm.core.errors import InvalidInputError
from sdm.hardware.devices import DeviceSpec
from sdm.hardware.presets import device

GB = 10**9


@dataclass(frozen=True)
class HostSpec:
    """The host server: CPU socket(s), DRAM (as a device pool + its DIMMs), base platform."""

    name: str
    cpu_model: str
    sockets: int
    cores: int
    memory_channels: int
    dram: DeviceSpec
    dimm_capacity_bytes: int
    dimm_watts: float
    socket_watts: float  # TDP: power at full load
    socket_idle_watts: float
    socket_usd: float
    base_platform_watts: float  # board, NIC, fans, BMC, boot drive
    base_platform_usd: float
    nic_bytes_per_s: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for fname in ("sockets", "cores", "memory_channels", "dimm_capacity_bytes"):  # stored as ints
            object.__setattr__(self, fname, whole_number(getattr(self, fname), f"host {self.name!r}: {fname}", minimum=1))
        for fname in ("dimm_watts", "socket_watts", "socket_idle_watts", "socket_usd", "base_platform_watts",
                      "base_platform_usd", "nic_bytes_per_s"):
            real_number(getattr(self, fname), f"host {self.name!r}: {fname}", minimum=0)
        if self.socket_idle_watts > self.socket_watts:
            raise InvalidInputError(
                f"host {self.name!r}: socket_idle_watts={self.socket_idle_watts} exceeds socket_watts={self.socket_watts}"
            )

    @property
    def dimm_count(self) -> int:
        """DIMMs needed for the DRAM capacity (whole modules)."""
        return -(-int(self.dram.capacity_bytes) // int(self.dimm_capacity_bytes))

    @property
    def dram_watts(self) -> float:
        return self.dimm_count * self.dimm_watts

    @property
    def dram_usd(self) -> float:
        return self.dram.capacity_bytes / GB * self.dram.usd_per_gb


# ---- hosts -------------------------------------------------------------------------------------
_WEAK_DIMM = "REFERENCE Devices: DDR4 RDIMM ~1.5-3.5 W per module (*weak source*); midpoint"

XEON_SP_HOST = HostSpec(
    name="xeon-sp-1s",
    cpu_model="Intel Xeon Gold 6138 (Skylake-SP, 20 cores)",
    sockets=1,
    cores=20,
    memory_channels=6,
    dram=device("ddr4"),
    dimm_capacity_bytes=16 * GB,
    dimm_watts=2.5,
    socket_watts=125.0,
    socket_idle_watts=40.0,
    socket_usd=2612.0,
    base_platform_watts=60.0,
    base_platform_usd=1500.0,
    nic_bytes_per_s=25e9 / 8,
    sources={
        "cpu_model": "a generic single-socket inference host of the SDM paper's era (*unconfirmed* which CPU "
        "the paper used)",
        "sockets": "single-socket host, as the SDM paper's and the inference platform's (REFERENCE Platform)",
        "cores": "Intel ARK Xeon Gold 6138: 20 cores",
        "memory_channels": "Intel ARK Xeon Gold 6138: 6 DDR4-2666 channels",
        "dram": "preset 'ddr4'; capacity chosen per hardware preset (see sdm.hardware.server docstring)",
        "dimm_capacity_bytes": "16 GB RDIMMs, one per channel (model choice)",
        "dimm_watts": _WEAK_DIMM,
        "socket_watts": "Intel ARK Xeon Gold 6138: TDP 125 W",
        "socket_idle_watts": "*unconfirmed*: ~1/3 of TDP at idle, typical for Xeon SP package power",
        "socket_usd": "Intel ARK Xeon Gold 6138: recommended customer price $2612",
        "base_platform_watts": "*unconfirmed*: board, NIC, fans, BMC, boot drive of a 1U server",
        "base_platform_usd": "*unconfirmed*: chassis, board, PSU, NIC of a 1U server",
        "nic_bytes_per_s": "*unconfirmed*: 25 Gb/s NIC assumed for a generic host",
    },
)

TWIN_LAKES_HOST = HostSpec(
    name="yosemite-v2-server-card",
    cpu_model="Intel Xeon D-2100 class (e.g. D-2191, 18 cores)",
    sockets=1,
    cores=18,
    memory_channels=4,
    dram=replace(
        device("ddr4"),
        bandwidth_bytes_per_s=4 * 2400e6 * 8,
        peak_iops=4 * 2400e6 * 8 / 64,
        sources={
            **device("ddr4").sources,
            "bandwidth_bytes_per_s": "JEDEC DDR4-2400: 2400 MT/s x 8 B x 4 channels (Intel ARK Xeon D-2191)",
            "peak_iops": "derived: bandwidth / 64 B line",
        },
    ),
    dimm_capacity_bytes=16 * GB,
    dimm_watts=2.5,
    socket_watts=86.0,
    socket_idle_watts=25.0,
    socket_usd=2407.0,
    base_platform_watts=25.0,
    base_platform_usd=800.0,
    nic_bytes_per_s=50e9 / 8,
    sources={
        "cpu_model": "REFERENCE Platform: single-socket host on Yosemite V2; Xeon D server card "
        "(*unconfirmed* which SKU)",
        "sockets": "REFERENCE Platform: single-socket host CPU (seed 000, arXiv 2107.04140)",
        "cores": "Intel ARK Xeon D-2191: 18 cores (*unconfirmed* SKU)",
        "memory_channels": "Intel ARK Xeon D-2100: 4 DDR4 channels",
        "dram": "preset 'ddr4' at DDR4-2400 x 4 channels, 64 GB",
        "dimm_capacity_bytes": "16 GB RDIMMs, one per channel (model choice)",
        "dimm_watts": _WEAK_DIMM,
        "socket_watts": "Intel ARK Xeon D-2191: TDP 86 W (*unconfirmed* SKU)",
        "socket_idle_watts": "*unconfirmed*: ~30% of TDP at idle",
        "socket_usd": "*unconfirmed*: Intel ARK list price of the Xeon D-2191 as remembered, ~$2400",
        "base_platform_watts": "*unconfirmed*: server card share of the Yosemite V2 sled (board, BMC, boot SSD)",
        "base_platform_usd": "*unconfirmed*: server card board share of the sled",
        "nic_bytes_per_s": "REFERENCE Platform: 50 Gb/s network per host (OCP 2020 talk)",
    },
)
