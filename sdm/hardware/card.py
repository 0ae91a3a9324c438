"""One accelerator card: on-chip SRAM, LPDDR, compute rates, its PCIe link and its power; and the
carrier board the cards sit on.

The first-generation preset follows REFERENCE.md "Platform": a plausible card is Intel's NNP-I M.2
module (that Meta deployed it is *unconfirmed*). Six of them sit on a Glacier Point V2 carrier
behind a PCIe switch (`sdm.hardware.server` builds the platform; the carrier figures are here, as
every spec that gains cards, `card_count=N`, gains the carrier with them).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdm.core.errors import InvalidInputError
from sdm.core.checks import real_number
from sdm.hardware.devices import DeviceSpec
from sdm.hardware.overrides import apply_overrides
from sdm.hardware.pcie import PcieLink
from sdm.hardware.presets import device

# PCIe 3.0: 8 GT/s per lane with 128b/130b coding -> 0.985 GB/s per lane per direction.
PCIE3_LANE_BYTES_PER_S = 8e9 * 128 / 130 / 8


def pcie3_link(name: str, lanes: int, latency_s: float = 1e-6, **sources: str) -> PcieLink:
    """A PCIe 3.0 link of `lanes` lanes (one direction)."""
    return PcieLink(
        name=name,
        bandwidth_bytes_per_s=lanes * PCIE3_LANE_BYTES_PER_S,
        latency_s=latency_s,
        sources={
            "bandwidth_bytes_per_s": f"PCI-SIG PCIe 3.0: 8 GT/s x {lanes} lanes, 128b/130b coding "
            f"(REFERENCE Platform: x4 ~3.9 GB/s per direction)",
            "latency_s": "*unconfirmed*: ~1 us per DMA command (descriptor fetch + completion), a common "
            "order of magnitude for PCIe 3.0 devices",
            "max_batch": "model choice (sdm.hardware.pcie)",
            **sources,
        },
    )


@dataclass(frozen=True)
class CardSpec:
    """An accelerator card. Memory devices carry latency/bandwidth; power is counted per card."""

    name: str
    sram: DeviceSpec
    lpddr: DeviceSpec
    int8_ops_per_s: float
    fp16_ops_per_s: float
    link: PcieLink
    idle_watts: float
    load_watts: float
    usd: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for fname in ("int8_ops_per_s", "fp16_ops_per_s"):
            real_number(getattr(self, fname), f"card {self.name!r}: {fname}", above=0)
        for fname in ("idle_watts", "load_watts", "usd"):
            real_number(getattr(self, fname), f"card {self.name!r}: {fname}", minimum=0)
        if self.load_watts < self.idle_watts:
            raise InvalidInputError(
                f"card {self.name!r}: load_watts={self.load_watts} must be >= idle_watts={self.idle_watts}"
            )

    @property
    def memory_capacity_bytes(self) -> int:
        """SRAM + LPDDR bytes (what a partitioner may fill, before any reserve it keeps)."""
        return int(self.sram.capacity_bytes + self.lpddr.capacity_bytes)

    def ops_per_s(self, row_format: str = "int8") -> float:
        """Peak compute rate for a row format; fp32 rows are computed in fp16 (the card has no fp32 path)."""
        if row_format == "int8":
            return float(self.int8_ops_per_s)
        if row_format in ("fp16", "fp32"):
            return float(self.fp16_ops_per_s)
        raise InvalidInputError(f"card {self.name!r}: unknown row format {row_format!r}; expected int8, fp16, fp32")

    def power_watts(self, utilization: float) -> float:
        """Linear between idle (0) and load (1) power; utilization outside [0, 1] is an error."""
        if not 0.0 <= utilization <= 1.0:
            raise InvalidInputError(f"card {self.name!r}: utilization must be in [0, 1], got {utilization}")
        return self.idle_watts + (self.load_watts - self.idle_watts) * utilization

    def replace(self, **overrides: Any) -> "CardSpec":
        return apply_overrides(self, overrides, named={DeviceSpec: device})

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "sram": self.sram.to_dict(),
            "lpddr": self.lpddr.to_dict(),
            "int8_ops_per_s": self.int8_ops_per_s,
            "fp16_ops_per_s": self.fp16_ops_per_s,
            "link": self.link.as_dict(),
            "idle_watts": self.idle_watts,
            "load_watts": self.load_watts,
            "usd": self.usd,
            "sources": dict(self.sources),
        }


_NNPI = "*unconfirmed* that Meta used NNP-I (REFERENCE Platform)"

NNPI_M2 = CardSpec(
    name="nnpi-m2",
    sram=device("sram"),
    lpddr=device("lpddr4x"),
    int8_ops_per_s=50e12,
    fp16_ops_per_s=25e12,
    link=pcie3_link("card-pcie3-x4", 4),
    idle_watts=3.0,
    load_watts=12.0,
    usd=1000.0,
    sources={
        "name": f"Intel NNP-I 1100 M.2 module; {_NNPI}",
        "sram": "REFERENCE Platform: 75 MB on-chip SRAM (preset 'sram')",
        "lpddr": "REFERENCE Platform: 16 GB LPDDR4x, 68 GB/s (preset 'lpddr4x')",
        "int8_ops_per_s": "WikiChip NNP-I 1100: peak 50 TOPS int8 at 12 W TDP (REFERENCE Platform: up to "
        "4.8 TOPS/W, ~12 W M.2 TDP -> ~58 TOPS bound)",
        "fp16_ops_per_s": "*unconfirmed*: fp16 assumed at half the int8 rate (the usual ratio of inference "
        "engines, e.g. NVIDIA T4 65 TFLOPS fp16 / 130 TOPS int8)",
        "link": "REFERENCE Platform: PCIe 3.0 x4 on M.2 (~3.9 GB/s per direction)",
        "idle_watts": "*unconfirmed*: no published idle figure; 25% of the 12 W TDP assumed",
        "load_watts": "REFERENCE Platform: ~12 W TDP for M.2 (10-50 W envelope of the silicon)",
        "usd": "*unconfirmed*: no public price for the NNP-I M.2 module; placeholder, override with a quote",
    },
)

CARD_PRESETS: dict[str, CardSpec] = {NNPI_M2.name: NNPI_M2}


def card(name: str = "nnpi-m2", **overrides: Any) -> CardSpec:
    """A card preset by name, with fields overridden by keyword (dotted names reach sram/lpddr/link)."""
    if name not in CARD_PRESETS:
        raise InvalidInputError(f"unknown card {name!r}; known cards: {', '.join(sorted(CARD_PRESETS))}")
    spec = CARD_PRESETS[name]
    return spec.replace(**overrides) if overrides else spec



# ---- the carrier: the board the cards sit on, with its PCIe switch and host uplink ---------------
CARRIER_UPLINK = pcie3_link(
    "host-switch-pcie3-x16",
    16,
    bandwidth_bytes_per_s="PCIe 3.0 x16 host uplink to the carrier's PCIe switch: 8 GT/s x 16, 128b/130b "
    "(*unconfirmed* lane count; REFERENCE Platform says only 'through a PCIe switch')",
)
CARRIER_WATTS = 25.0
CARRIER_USD = 500.0
CARRIER_SOURCES = {
    "pcie": "see the link's own sources",
    "carrier_watts": "*unconfirmed*: Glacier Point V2 carrier with its PCIe switch",
    "carrier_usd": "*unconfirmed*: carrier board + PCIe switch",
}
NO_CARRIER_SOURCES = {"pcie": "no card uplink", "carrier_watts": "no carrier", "carrier_usd": "no carrier"}
