"""Capital and energy cost of one server.

capex = platform (+ card carrier) + CPU socket(s) + DRAM GB x $/GB + SCM GB x $/GB + cards; energy $/year =
wall watts x PUE x 8766 h x $/kWh. DRAM and SCM prices come from the DeviceSpec (`usd_per_gb`,
each with its source in sdm.hardware.presets); the rest from the sourced defaults below, all
overridable (`CostDefaults(...).replace(...)`, `--set cost.NAME=VALUE`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from sdm.hardware.card import NNPI_M2
from sdm.core.checks import real_number
from sdm.hardware.overrides import apply_overrides
from sdm.placement.power import ServerParts

HOURS_PER_YEAR = 8766.0          # 365.25 days


@dataclass(frozen=True)
class CostDefaults:
    platform_usd: float = 3000.0
    cpu_socket_usd: float = 2400.0
    dram_usd_per_gb: float = 200 / 32
    card_usd: float = NNPI_M2.usd                   # one figure per fact: the card preset's
    usd_per_kwh: float = 0.07
    pue: float = 1.1
    years: float = 3.0
    sources: dict = field(default_factory=lambda: {
        "platform_usd": "*unconfirmed* assumption: sled chassis, board, NIC, boot drive",
        "cpu_socket_usd": "*unconfirmed*: Intel ARK list price of a Xeon D-2191 class part (~$2.4k)",
        "dram_usd_per_gb": "DRAMeXchange contract price via DigiTimes 2017-01-12: 32 GB DDR4 RDIMM > US$200 "
                           "(same figure as sdm.hardware.presets ddr4; used only if the preset lacks it)",
        "card_usd": f"card preset nnpi-m2 (sdm.hardware.card): {NNPI_M2.sources['usd']}",
        "usd_per_kwh": "*unconfirmed*: US EIA average industrial electricity price, 2020-2021 (~7 cents/kWh)",
        "pue": "*unconfirmed*: hyperscale data-centre PUE ~1.1 (operators' sustainability reports)",
        "years": "assumption: 3-year server amortisation",
    })

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name != "sources":
                real_number(getattr(self, f.name), f"cost default {f.name}", minimum=0)
        real_number(self.pue, "cost default pue", minimum=1)   # a data centre cannot use less than its IT load

    def replace(self, **overrides: Any) -> "CostDefaults":
        """A copy with fields overridden; text values ("0.9", "64GiB") are read as numbers, unknown
        names and unreadable values raise InvalidInputError, and each field's source says "override"."""
        return apply_overrides(self, overrides, source="override")


@dataclass(frozen=True)
class CostBreakdown:
    components_usd: dict[str, float]

    @property
    def capex_usd(self) -> float:
        return sum(self.components_usd.values())


def server_capex(parts: ServerParts, defaults: CostDefaults = CostDefaults()) -> CostBreakdown:
    d = defaults
    dram_usd_per_gb = parts.dram_usd_per_gb
    c = {
        "platform": parts.base_usd if parts.base_usd is not None else d.platform_usd,
        **({"carrier": parts.carrier_usd} if parts.carrier_usd else {}),
        "cpu": parts.sockets * (parts.cpu_usd if parts.cpu_usd is not None else d.cpu_socket_usd),
        "dram": parts.dram_bytes / 1e9 * (dram_usd_per_gb if dram_usd_per_gb else d.dram_usd_per_gb),
    }
    if parts.scm is not None and parts.scm_count:
        c["scm"] = parts.scm_count * parts.scm.capacity_bytes / 1e9 * parts.scm.usd_per_gb
    if parts.cards:
        c["cards"] = parts.cards * (parts.card_usd if parts.card_usd is not None else d.card_usd)
    return CostBreakdown(c)


def energy_usd_per_year(wall_watts: float, defaults: CostDefaults = CostDefaults()) -> float:
    return wall_watts * defaults.pue * HOURS_PER_YEAR / 1000.0 * defaults.usd_per_kwh


def tco_usd(capex_usd: float, wall_watts: float, defaults: CostDefaults = CostDefaults()) -> float:
    """Capex plus energy over the amortisation period."""
    return capex_usd + defaults.years * energy_usd_per_year(wall_watts, defaults)
