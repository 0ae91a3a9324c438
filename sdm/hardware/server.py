"""Hardware presets: a host (CPU socket, DRAM), optional SCM drives, optional accelerator cards.

`hardware(name, **overrides)` returns a frozen `HardwareSpec`; overrides are flat or dotted field
names (`dram_capacity_bytes=64 << 30`, `**{"scm.qd1_latency_s": 1e-5}`, `card_count=4`,
`scm="p4500"`), applied with `dataclasses.replace` through `sdm.hardware.overrides`.
`hardware_from_toml(path)` reads the same overrides from a file (see docs/devices.md).

Why these capacities (every figure's source is in the specs' `sources`):
- `host-dram` holds the most DRAM its socket takes (12 x 64 GB = 768 GB, the Xeon Gold 6138's
  maximum): the all-DRAM baseline SDM is measured against.
- `host-nand` / `host-3dxp` keep one 16 GB DIMM per channel (96 GB: every channel populated, so full
  bandwidth, with the fewest DIMMs) and put ~1.5 TB of SCM beside it: one 1.6 TB P3700, or four
  375 GB P4800X (the drive whose figures were published), so NAND and 3DXP are compared at about
  the same capacity.
- `yosemite-v2-*`: a single-socket Xeon D server card with 64 GB DRAM, the same SCM, and six
  first-generation accelerator cards behind a PCIe switch (REFERENCE Platform).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from os import PathLike
from typing import Any

import numpy as np

from sdm.hardware.card import CardSpec, card, pcie3_link
from sdm.hardware.pcie import PcieLink
from sdm.core.errors import InvalidInputError
from sdm.core.checks import real_number, whole_number
from sdm.hardware.devices import DeviceSpec, device
from sdm.hardware.overrides import apply_overrides, flatten, load_toml

GB = 10**9
GIB = 1 << 30


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


@dataclass(frozen=True)
class HardwareSpec:
    """A server: host, SCM drives (`scm_count` x `scm`), accelerator cards behind a PCIe switch."""

    name: str
    description: str
    host: HostSpec
    scm: DeviceSpec | None
    scm_count: int
    cards: tuple[CardSpec, ...]
    pcie: PcieLink | None  # host <-> PCIe switch uplink shared by the cards; None without cards
    carrier_watts: float  # card carrier board incl. its PCIe switch; 0 without cards
    carrier_usd: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scm_count", whole_number(self.scm_count, f"hardware {self.name!r}: scm_count"))
        if self.scm is None and self.scm_count:
            raise InvalidInputError(
                f"hardware {self.name!r}: scm is None but scm_count={self.scm_count}; set scm_count=0 too"
            )
        if self.scm is not None and self.scm_count == 0:
            raise InvalidInputError(f"hardware {self.name!r}: scm {self.scm.name!r} given but scm_count=0")
        if self.scm is not None and self.scm.medium not in ("nand", "3dxp"):
            raise InvalidInputError(
                f"hardware {self.name!r}: scm must be a NAND or 3DXP device, got {self.scm.name!r} ({self.scm.medium})"
            )
        if not isinstance(self.cards, tuple) or not all(isinstance(c, CardSpec) for c in self.cards):
            raise InvalidInputError(f"hardware {self.name!r}: cards must be a tuple of CardSpec")
        if self.cards and self.pcie is None:
            raise InvalidInputError(f"hardware {self.name!r}: {len(self.cards)} cards need a pcie uplink")
        for fname in ("carrier_watts", "carrier_usd"):
            real_number(getattr(self, fname), f"hardware {self.name!r}: {fname}", minimum=0)

    # ---- capacities --------------------------------------------------------------------------
    @property
    def dram(self) -> DeviceSpec:
        return self.host.dram

    @property
    def dram_capacity_bytes(self) -> int:
        return int(self.host.dram.capacity_bytes)

    @property
    def scm_capacity_bytes(self) -> int:
        return int(self.scm.capacity_bytes) * self.scm_count if self.scm is not None else 0

    @property
    def num_cards(self) -> int:
        return len(self.cards)

    @property
    def card_memory_bytes(self) -> int:
        return sum(c.memory_capacity_bytes for c in self.cards)

    def scm_read_time_s(self, n_reads, read_bytes, queue_depth_per_drive):
        """Modelled time of `n_reads` spread evenly over the `scm_count` drives, each at its own depth.

        Pages striped round-robin over the drives (as a RAID-0 or a page store over several files
        would) put ceil(n / scm_count) reads on the busiest drive; the drives work in parallel.
        """
        if self.scm is None:
            raise InvalidInputError(f"hardware {self.name!r} has no SCM")
        n = np.asarray(n_reads)
        if np.any(n < 0):
            raise InvalidInputError(f"hardware {self.name!r}: n_reads must be >= 0, got {n_reads!r}")
        per_drive = -(-n.astype(np.int64) // self.scm_count)
        return self.scm.read_time_s(per_drive if per_drive.ndim else int(per_drive), read_bytes, queue_depth_per_drive)

    # ---- power and cost (simple sums; sdm.placement's power model refines with utilization) ----
    def idle_watts(self) -> float:
        h = self.host
        scm = self.scm.idle_watts * self.scm_count if self.scm is not None else 0.0
        cards = sum(c.idle_watts for c in self.cards)
        return h.base_platform_watts + h.sockets * h.socket_idle_watts + h.dram_watts + scm + self.carrier_watts + cards

    def peak_watts(self) -> float:
        h = self.host
        scm = self.scm.active_watts * self.scm_count if self.scm is not None else 0.0
        cards = sum(c.load_watts for c in self.cards)
        return h.base_platform_watts + h.sockets * h.socket_watts + h.dram_watts + scm + self.carrier_watts + cards

    def capex_usd(self) -> float:
        h = self.host
        scm = self.scm_capacity_bytes / GB * self.scm.usd_per_gb if self.scm is not None else 0.0
        cards = sum(c.usd for c in self.cards)
        return h.base_platform_usd + h.sockets * h.socket_usd + h.dram_usd + scm + self.carrier_usd + cards

    # ---- conversion --------------------------------------------------------------------------
    def replace(self, **overrides: Any) -> "HardwareSpec":
        return _apply(self, overrides, source="user override")

    def to_dict(self) -> dict:
        """JSON-ready: every field, every source, and the derived totals."""
        h = self.host
        host = {k: getattr(h, k) for k in h.__dataclass_fields__ if k not in ("dram", "sources")}
        host["dram"] = h.dram.to_dict()
        host["sources"] = dict(h.sources)
        return {
            "name": self.name,
            "description": self.description,
            "host": host,
            "scm": self.scm.to_dict() if self.scm is not None else None,
            "scm_count": self.scm_count,
            "cards": [c.to_dict() for c in self.cards],
            "pcie": self.pcie.as_dict() if self.pcie is not None else None,
            "carrier_watts": self.carrier_watts,
            "carrier_usd": self.carrier_usd,
            "sources": dict(self.sources),
            "derived": {
                "dram_capacity_bytes": self.dram_capacity_bytes,
                "dimm_count": h.dimm_count,
                "scm_capacity_bytes": self.scm_capacity_bytes,
                "num_cards": self.num_cards,
                "card_memory_bytes": self.card_memory_bytes,
                "idle_watts": self.idle_watts(),
                "peak_watts": self.peak_watts(),
                "capex_usd": self.capex_usd(),
            },
        }


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

_YV2_UPLINK = pcie3_link(
    "host-switch-pcie3-x16",
    16,
    bandwidth_bytes_per_s="PCIe 3.0 x16 host uplink to the carrier's PCIe switch: 8 GT/s x 16, 128b/130b "
    "(*unconfirmed* lane count; REFERENCE Platform says only 'through a PCIe switch')",
)


_CARRIER_WATTS = 25.0
_CARRIER_USD = 500.0
_CARRIER_SOURCES = {
    "pcie": "see the link's own sources",
    "carrier_watts": "*unconfirmed*: Glacier Point V2 carrier with its PCIe switch",
    "carrier_usd": "*unconfirmed*: carrier board + PCIe switch",
}
_NO_CARRIER_SOURCES = {"pcie": "no card uplink", "carrier_watts": "no carrier", "carrier_usd": "no carrier"}
_SIX_CARDS = "REFERENCE Platform: six accelerator cards beside a single-socket host (seed 000, arXiv 2107.04140)"


def _spec(name: str, description: str, host: HostSpec, scm: str | None, scm_count: int,
          host_overrides: Mapping[str, Any], cards: int = 0) -> HardwareSpec:
    host = apply_overrides(host, host_overrides, source="preset")
    with_cards = cards > 0
    return HardwareSpec(
        name=name,
        description=description,
        host=host,
        scm=device(scm) if scm else None,
        scm_count=scm_count,
        cards=tuple(card("nnpi-m2") for _ in range(cards)),
        pcie=_YV2_UPLINK if with_cards else None,
        carrier_watts=_CARRIER_WATTS if with_cards else 0.0,
        carrier_usd=_CARRIER_USD if with_cards else 0.0,
        sources={
            "scm": "REFERENCE Devices (preset named in scm.name)" if scm else "no SCM",
            "scm_count": "~1.5 TB of SCM per host, NAND and 3DXP at about equal capacity (model choice)"
            if scm else "no SCM",
            "cards": _SIX_CARDS if with_cards else "no accelerator cards",
            **(_CARRIER_SOURCES if with_cards else _NO_CARRIER_SOURCES),
        },
    )


def _dram(capacity_bytes: int, why: str, dimm_bytes: int | None = None, dimm_why: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"dram.capacity_bytes": capacity_bytes, "sources.dram.capacity_bytes": why}
    if dimm_bytes is not None:
        out["dimm_capacity_bytes"] = dimm_bytes
        out["sources.dimm_capacity_bytes"] = dimm_why
    return out


_BIG = _dram(768 * GB, "12 x 64 GB: the most DRAM a Xeon Gold 6138 takes (Intel ARK: 768 GB max)",
             64 * GB, "64 GB RDIMMs, two per channel (model choice)")
_SMALL = _dram(96 * GB, "6 x 16 GB: one DIMM per channel, full bandwidth with the fewest DIMMs (model choice)")
_YV2 = _dram(64 * GB, "4 x 16 GB, one DIMM per channel (model choice; *unconfirmed* for Yosemite V2)")

_PRESETS: dict[str, HardwareSpec] = {
    s.name: s
    for s in (
        _spec("host-dram", "single-socket host, all embeddings in DRAM (768 GB)", XEON_SP_HOST, None, 0, _BIG),
        _spec("host-nand", "single-socket host, 96 GB DRAM + 1 x 1.6 TB NAND SSD (Intel P3700)",
              XEON_SP_HOST, "p3700", 1, _SMALL),
        _spec("host-3dxp", "single-socket host, 96 GB DRAM + 4 x 375 GB 3DXP SSD (Optane P4800X)",
              XEON_SP_HOST, "p4800x", 4, _SMALL),
        _spec("yosemite-v2-nand", "Yosemite V2: Xeon D host, 64 GB DRAM, 1 x 1.6 TB NAND SSD, six accelerator "
              "cards behind a PCIe switch", TWIN_LAKES_HOST, "p3700", 1, _YV2, cards=6),
        _spec("yosemite-v2-3dxp", "Yosemite V2: Xeon D host, 64 GB DRAM, 4 x 375 GB 3DXP SSD, six accelerator "
              "cards behind a PCIe switch", TWIN_LAKES_HOST, "p4800x", 4, _YV2, cards=6),
    )
}

# Flat names that reach into nested fields, for the common cases.
SHORTCUTS = {
    "dram_capacity_bytes": "host.dram.capacity_bytes",
    "dram": "host.dram",
}


def hardware_names() -> list[str]:
    return list(_PRESETS)


def hardware(name: str, **overrides: Any) -> HardwareSpec:
    """A hardware preset by name (see `hardware_names()`), with any field overridden.

    Overrides: field names of HardwareSpec, dotted for nested fields (`host.dram.capacity_bytes`,
    `scm.qd1_latency_s`, `cards.lpddr.capacity_bytes` for every card, `cards.0.idle_watts` for one),
    the shortcuts `dram_capacity_bytes` and `dram`, `card_count=N` (N copies of the first card, or of
    the first-generation card preset), and `sources.<dotted field>=text` to name a figure's source.
    """
    if name not in _PRESETS:
        raise InvalidInputError(f"unknown hardware {name!r}; known hardware: {', '.join(hardware_names())}")
    return _apply(_PRESETS[name], overrides, source="user override")


def hardware_from_toml(path: str | PathLike, **overrides: Any) -> HardwareSpec:
    """A HardwareSpec from a TOML file: `base = "<preset>"` plus tables of fields to override.

    ```toml
    base = "host-nand"
    name = "my-box"
    dram_capacity_bytes = "64GiB"
    [scm]
    qd1_latency_s = 9e-5
    [sources]
    "scm.qd1_latency_s" = "fio on our drive, 2026-11"
    ```
    Keyword `overrides` apply after the file's.
    """
    data = load_toml(path)
    base = data.pop("base", None)
    if not isinstance(base, str):
        raise InvalidInputError(
            f"{path}: needs a top-level base = \"<preset>\" naming one of: {', '.join(hardware_names())}"
        )
    if base not in _PRESETS:
        raise InvalidInputError(f"{path}: unknown base {base!r}; known hardware: {', '.join(hardware_names())}")
    spec = _apply(_PRESETS[base], flatten(data), source=f"TOML file {path}")
    return _apply(spec, overrides, source="user override")


def _apply(spec: HardwareSpec, overrides: Mapping[str, Any], *, source: str) -> HardwareSpec:
    if not overrides:
        return spec
    ov = dict(overrides)
    if "card_count" in ov:
        spec = _with_card_count(spec, ov.pop("card_count"))
    expanded: dict[str, Any] = {}
    for key, value in ov.items():
        head, dot, rest = key.partition(".")
        if head in SHORTCUTS:
            key = SHORTCUTS[head] + dot + rest
        elif head == "sources" and rest.partition(".")[0] in SHORTCUTS:
            inner, dot2, rest2 = rest.partition(".")
            key = "sources." + SHORTCUTS[inner] + dot2 + rest2
        expanded[key] = value
    try:
        return apply_overrides(spec, expanded, source=source)
    except InvalidInputError as exc:
        if "unknown field" in str(exc):
            raise InvalidInputError(f"{exc}; shortcuts: {', '.join([*SHORTCUTS, 'card_count'])}") from None
        raise


def _with_card_count(spec: HardwareSpec, count: Any) -> HardwareSpec:
    """`count` copies of the spec's first card (or the first-generation preset); 0 removes the cards."""
    n = count
    if isinstance(count, str) and count.strip().isdigit():
        n = int(count)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidInputError(f"card_count: expected a whole number >= 0, got {count!r}")
    template = spec.cards[0] if spec.cards else card("nnpi-m2")
    if n == 0:
        return replace(spec, cards=(), pcie=None, carrier_watts=0.0, carrier_usd=0.0,
                       sources={**spec.sources, "cards": "user override: no cards", **_NO_CARRIER_SOURCES})
    if spec.cards:
        return replace(spec, cards=tuple(template for _ in range(n)),
                       sources={**spec.sources, "cards": f"user override: {n} x {template.name}"})
    return replace(spec, cards=tuple(template for _ in range(n)), pcie=_YV2_UPLINK, carrier_watts=_CARRIER_WATTS,
                   carrier_usd=_CARRIER_USD,
                   sources={**spec.sources, "cards": f"user override: {n} x {template.name}", **_CARRIER_SOURCES})
