"""A server as one spec: host, SCM drives, accelerator cards behind a PCIe switch; its capacities, its
power and cost sums, and the overrides it takes (`replace`). The presets are in `sdm.hardware.server`."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sdm.core.checks import real_number, whole_number
from sdm.core.errors import InvalidInputError
from sdm.hardware.card import (CARRIER_SOURCES, CARRIER_UPLINK, CARRIER_USD, CARRIER_WATTS, NO_CARRIER_SOURCES,
                               CardSpec, card)
from sdm.hardware.devices import DeviceSpec
from sdm.hardware.host import HostSpec
from sdm.hardware.overrides import apply_overrides, parse_quantity
from sdm.hardware.pcie import PcieLink
from sdm.hardware.presets import device

GB = 10**9


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
        if type(n_reads) is int and n_reads >= 0:  # the scalar fast path of DeviceSpec.read_time_s
            return self.scm.read_time_s(-(-n_reads // self.scm_count), read_bytes, queue_depth_per_drive)
        n = np.asarray(n_reads)
        if np.any(n < 0):
            raise InvalidInputError(f"hardware {self.name!r}: n_reads must be >= 0, got {n_reads!r}")
        per_drive = -(-n.astype(np.int64) // self.scm_count)
        return self.scm.read_time_s(per_drive if per_drive.ndim else int(per_drive), read_bytes, queue_depth_per_drive)

    # ---- conversion --------------------------------------------------------------------------
    def replace(self, **overrides: Any) -> "HardwareSpec":
        """A copy with fields overridden (see `with_overrides`), each recorded as a user override."""
        return self.with_overrides(overrides, source="user override")

    def with_overrides(self, overrides: Mapping[str, Any], *, source: str) -> "HardwareSpec":
        """A copy with `overrides` applied, each overridden figure's source set to `source`.

        Keys: field names, dotted for nested fields (`host.dram.capacity_bytes`, `scm.qd1_latency_s`,
        `cards.lpddr.capacity_bytes` for every card, `cards.0.idle_watts` for one), the SHORTCUTS
        `dram_capacity_bytes` and `dram`, `card_count=N` (N copies of the first card, or of the
        first-generation card preset), and `sources.<dotted field>=text` to name a figure's source.
        A device field may be given as a preset name (`scm="p4500"`).
        """
        return _apply(self, overrides, source=source)

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
            },
        }


# Flat names that reach into nested fields, for the common cases.
SHORTCUTS = {
    "dram_capacity_bytes": "host.dram.capacity_bytes",
    "dram": "host.dram",
}


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
        return apply_overrides(spec, expanded, source=source, named={DeviceSpec: device})
    except InvalidInputError as exc:
        if "unknown field" in str(exc):
            raise InvalidInputError(f"{exc}; shortcuts: {', '.join([*SHORTCUTS, 'card_count'])}") from None
        raise


def _with_card_count(spec: HardwareSpec, count: Any) -> HardwareSpec:
    """`count` copies of the spec's first card (or the first-generation preset); 0 removes the cards."""
    n = whole_number(parse_quantity(count, "card_count") if isinstance(count, str) else count, "card_count")
    template = spec.cards[0] if spec.cards else card("nnpi-m2")
    if n == 0:
        return replace(spec, cards=(), pcie=None, carrier_watts=0.0, carrier_usd=0.0,
                       sources={**spec.sources, "cards": "user override: no cards", **NO_CARRIER_SOURCES})
    if spec.cards:
        return replace(spec, cards=tuple(template for _ in range(n)),
                       sources={**spec.sources, "cards": f"user override: {n} x {template.name}"})
    return replace(spec, cards=tuple(template for _ in range(n)), pcie=CARRIER_UPLINK, carrier_watts=CARRIER_WATTS,
                   carrier_usd=CARRIER_USD,
                   sources={**spec.sources, "cards": f"user override: {n} x {template.name}", **CARRIER_SOURCES})
