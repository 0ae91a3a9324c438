"""Power of one server: CPU socket(s), DIMMs, SSDs, accelerator cards and the base platform.

Each component has an idle and a loaded draw; a server at utilisation u draws
idle + u * (load - idle) per component, divided by the supply's efficiency. Figures come from the
hardware preset (HostSpec: socket_watts/socket_idle_watts, dimm_watts, base_platform_watts;
DeviceSpec idle/active_watts for SSDs; CardSpec idle/load_watts; carrier_watts), each with its
source there, else from the sourced defaults below. Every default can be
overridden (`PowerDefaults(...)`, `--set power.NAME=VALUE` on the CLI).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from sdm.hardware.card import NNPI_M2
from sdm.core.errors import InvalidInputError
from sdm.core.checks import real_number
from sdm.hardware.overrides import apply_overrides

GIB = 1 << 30


@dataclass(frozen=True)
class PowerDefaults:
    """Used only when the hardware preset does not carry the figure itself."""

    base_platform_watts: float = 50.0
    cpu_socket_idle_watts: float = 30.0
    cpu_socket_load_watts: float = 86.0
    dimm_bytes: int = 32 * GIB
    dimm_idle_watts: float = 1.5
    dimm_load_watts: float = 3.5
    card_idle_watts: float = NNPI_M2.idle_watts     # one figure per fact: the card preset's
    card_load_watts: float = NNPI_M2.load_watts
    psu_efficiency: float = 0.94
    sources: dict = field(default_factory=lambda: {
        "base_platform_watts": "*unconfirmed* assumption: fans, NIC, BMC, boot drive and board of a "
                               "sled-class server; override for your platform",
        "cpu_socket_idle_watts": "*unconfirmed* assumption: ~1/3 of TDP at idle",
        "cpu_socket_load_watts": "Intel ARK Xeon D-2191 TDP 86 W (Yosemite V2 hosts use Xeon D; "
                                 "*unconfirmed* which SKU)",
        "dimm_bytes": "*unconfirmed* assumption: 32 GB DDR4 RDIMMs",
        "dimm_idle_watts": "REFERENCE Devices: DDR4 RDIMM ~1.5-3.5 W per module (*weak source*), low end",
        "dimm_load_watts": "REFERENCE Devices: DDR4 RDIMM ~1.5-3.5 W per module (*weak source*), high end",
        "card_idle_watts": f"card preset nnpi-m2 (sdm.hardware.card): {NNPI_M2.sources['idle_watts']}",
        "card_load_watts": f"card preset nnpi-m2 (sdm.hardware.card): {NNPI_M2.sources['load_watts']}",
        "psu_efficiency": "*unconfirmed* assumption: 80 PLUS Platinum-class supply at 50% load (~94%)",
    })

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name != "sources":
                real_number(getattr(self, f.name), f"power default {f.name}", minimum=0)
        if not 0 < self.psu_efficiency <= 1:
            raise InvalidInputError(f"power default psu_efficiency must be in (0, 1], got {self.psu_efficiency}")

    def replace(self, **overrides: Any) -> "PowerDefaults":
        """A copy with fields overridden; text values ("0.9", "64GiB") are read as numbers, unknown
        names and unreadable values raise InvalidInputError, and each field's source says "override"."""
        return apply_overrides(self, overrides, source="override")


@dataclass(frozen=True)
class ServerParts:
    """The parts of one server that draw power and cost money (from a HardwareSpec or by hand)."""

    name: str
    sockets: int = 1
    dram_bytes: int = 64 * GIB
    dimm_bytes: int | None = None          # None: PowerDefaults.dimm_bytes
    dimm_idle_watts: float | None = None
    dimm_load_watts: float | None = None
    cpu_idle_watts: float | None = None    # per socket
    cpu_load_watts: float | None = None
    base_watts: float | None = None        # platform draw (board, NIC, fans, BMC, boot drive)
    carrier_watts: float = 0.0             # card carrier board incl. its PCIe switch (always on)
    scm: Any = None                        # DeviceSpec or None
    scm_count: int = 0
    cards: int = 0
    card_idle_watts: float | None = None
    card_load_watts: float | None = None
    card_usd: float | None = None
    cpu_usd: float | None = None
    base_usd: float | None = None          # platform price
    carrier_usd: float = 0.0
    dram_usd_per_gb: float | None = None

    @property
    def dimm_count(self) -> int:
        per = self.dimm_bytes or PowerDefaults.dimm_bytes
        return max(1, -(-int(self.dram_bytes) // int(per)))


def parts_from_hardware(hw, dram_bytes: int | None = None) -> ServerParts:
    """The priced parts of a `sdm.hardware.server.HardwareSpec` (optionally with less DRAM fitted).
    Cards overridden one by one (`cards.0.idle_watts`) count by their mean, so the sums hold."""
    host = hw.host
    cards = tuple(hw.cards)
    dram = int(hw.dram_capacity_bytes if dram_bytes is None else dram_bytes)
    mean = (lambda attr: sum(getattr(c, attr) for c in cards) / len(cards)) if cards else (lambda attr: None)
    return ServerParts(
        name=hw.name, sockets=host.sockets, dram_bytes=dram, dimm_bytes=host.dimm_capacity_bytes,
        dimm_idle_watts=host.dimm_watts, dimm_load_watts=host.dimm_watts,
        cpu_idle_watts=host.socket_idle_watts, cpu_load_watts=host.socket_watts,
        base_watts=host.base_platform_watts, carrier_watts=float(hw.carrier_watts),
        scm=hw.scm, scm_count=hw.scm_count, cards=len(cards),
        card_idle_watts=mean("idle_watts"), card_load_watts=mean("load_watts"), card_usd=mean("usd"),
        cpu_usd=host.socket_usd, base_usd=host.base_platform_usd, carrier_usd=float(hw.carrier_usd),
        dram_usd_per_gb=host.dram.usd_per_gb,
    )


@dataclass(frozen=True)
class PowerBreakdown:
    components: dict[str, tuple[float, float]]     # name -> (idle W, load W) drawn by the part
    psu_efficiency: float

    @property
    def idle_watts(self) -> float:
        return sum(i for i, _ in self.components.values()) / self.psu_efficiency

    @property
    def load_watts(self) -> float:
        return sum(l for _, l in self.components.values()) / self.psu_efficiency

    def at(self, utilization: float) -> float:
        """Wall power with every part at utilisation in [0, 1]."""
        u = min(max(float(utilization), 0.0), 1.0)
        return self.idle_watts + u * (self.load_watts - self.idle_watts)

    def components_at(self, utilization: dict[str, float]) -> dict[str, float]:
        """Each part's draw before the supply (W), each at its own utilisation in [0, 1] (parts not
        named idle): the six-card report's per-part figures come from here."""
        out = {}
        for name, (idle, load) in self.components.items():
            u = min(max(float(utilization.get(name, 0.0)), 0.0), 1.0)
            out[name] = idle + u * (load - idle)
        return out


def server_power(parts: ServerParts, defaults: PowerDefaults = PowerDefaults()) -> PowerBreakdown:
    d = defaults
    c: dict[str, tuple[float, float]] = {}
    base = parts.base_watts if parts.base_watts is not None else d.base_platform_watts
    c["platform"] = (base, base)
    if parts.carrier_watts:
        c["carrier"] = (parts.carrier_watts, parts.carrier_watts)
    c["cpu"] = (parts.sockets * (parts.cpu_idle_watts if parts.cpu_idle_watts is not None else d.cpu_socket_idle_watts),
                parts.sockets * (parts.cpu_load_watts if parts.cpu_load_watts is not None else d.cpu_socket_load_watts))
    n_dimm = parts.dimm_count
    c["dram"] = (n_dimm * (parts.dimm_idle_watts if parts.dimm_idle_watts is not None else d.dimm_idle_watts),
                 n_dimm * (parts.dimm_load_watts if parts.dimm_load_watts is not None else d.dimm_load_watts))
    if parts.scm is not None and parts.scm_count:
        c["scm"] = (parts.scm_count * parts.scm.idle_watts, parts.scm_count * parts.scm.active_watts)
    if parts.cards:
        c["cards"] = (parts.cards * (parts.card_idle_watts if parts.card_idle_watts is not None else d.card_idle_watts),
                      parts.cards * (parts.card_load_watts if parts.card_load_watts is not None else d.card_load_watts))
    return PowerBreakdown(c, d.psu_efficiency)
