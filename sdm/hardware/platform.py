"""The six-card platform as the timeline and executor see it: host + cards + PCIe switch.

Built from a `HardwareSpec` (sdm.hardware.server; cards are `CardSpec`s from sdm.hardware.card). Every
figure comes from those specs (and so names its source there); the few figures that are choices of
this model, not of the hardware, are the keyword arguments of `Platform.from_hardware`, documented
where they are defined.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sdm.core.errors import InvalidInputError
from sdm.hardware.pcie import PcieLink
from sdm.hardware.server import hardware

# Model choices (not hardware figures), each overridable in Platform.from_hardware:
CARD_QUEUE_DEPTH = 64   # outstanding row reads a card keeps in flight (memory-level parallelism of its
                        # cores); ~ LPDDR bandwidth x latency / 64 B = 68e9 * 120e-9 / 64 ~ 127 would
                        # saturate the LPDDR, so 64 leaves it latency-bound at small batches (*assumption*)
HOST_QUEUE_DEPTH = 10   # outstanding DRAM misses of one host core (line fill buffers; Intel optimisation
                        # manual gives 10-12 for Skylake-SP) (*assumption*: one core per request)
SCM_QUEUE_DEPTH = 32    # the EmbeddingStore / PageStore default queue depth
MAX_BATCH = 64          # tensors per batched PCIe command (*assumption*: seed 000/001 describe command
                        # batching but give no limit)


@dataclass(frozen=True)
class Platform:
    name: str
    cards: tuple           # CardSpec, one per card
    card_links: tuple      # PcieLink per card (the card's own link to the switch)
    host_link: PcieLink    # host <-> switch
    dram: Any              # DeviceSpec of host DRAM
    scm: Any               # DeviceSpec of the SCM drive, or None
    scm_count: int
    host: Any              # HostSpec
    host_threads: int      # host cores serving host-side lookups concurrently
    dense_on: int = 0      # card that runs the dense part (bottom/top MLP, interaction)
    card_queue_depth: int = CARD_QUEUE_DEPTH
    host_queue_depth: int = HOST_QUEUE_DEPTH
    scm_queue_depth: int = SCM_QUEUE_DEPTH
    hardware: Any = None

    @property
    def num_cards(self) -> int:
        return len(self.cards)

    @classmethod
    def from_hardware(cls, hw, *, dense_on: int = 0, max_batch: int = MAX_BATCH,
                      card_queue_depth: int = CARD_QUEUE_DEPTH, host_queue_depth: int = HOST_QUEUE_DEPTH,
                      scm_queue_depth: int = SCM_QUEUE_DEPTH, host_threads: int | None = None) -> "Platform":
        """A platform from a HardwareSpec (or a preset name)."""
        if isinstance(hw, str):
            hw = hardware(hw)
        cards = tuple(hw.cards)
        if not cards:
            raise InvalidInputError(f"hardware {hw.name!r} has no accelerator cards; "
                                    f"use a yosemite-v2-* preset for the six-card path")
        if not 0 <= dense_on < len(cards):
            raise InvalidInputError(f"dense_on={dense_on}: hardware {hw.name!r} has cards 0..{len(cards) - 1}")
        links = tuple(_card_link(c, k, max_batch) for k, c in enumerate(cards))
        host_link = _host_link(hw, max_batch)
        cores = int(getattr(hw.host, "cores", 1) or 1)
        return cls(name=hw.name, cards=cards, card_links=links, host_link=host_link, dram=hw.host.dram,
                   scm=hw.scm, scm_count=int(getattr(hw, "scm_count", 1) or 0), host=hw.host,
                   host_threads=int(host_threads or cores), dense_on=dense_on,
                   card_queue_depth=card_queue_depth, host_queue_depth=host_queue_depth,
                   scm_queue_depth=scm_queue_depth, hardware=hw)

    # ---- what the timeline asks -------------------------------------------------------------
    def card_device(self, k: int, tier: str):
        c = self.cards[k]
        if tier == "sram":
            return c.sram
        if tier == "lpddr":
            return c.lpddr
        raise InvalidInputError(f"card {k}: unknown tier {tier!r} (expected 'sram' or 'lpddr')")

    def card_ops_per_s(self, k: int, row_format: str) -> float:
        """Pooling / dense throughput: int8 rows at the int8 rate; fp16 and fp32 at the fp16 rate
        (the card has no fast fp32 path; fp32 tables are modelled as converted to fp16 on load)."""
        return self.cards[k].ops_per_s(row_format)

    def card_idle_watts(self, k: int) -> float:
        return float(self.cards[k].idle_watts)

    def card_load_watts(self, k: int) -> float:
        return float(self.cards[k].load_watts)

    def card_usable_bytes(self, reserve_bytes: int = 0) -> list[int]:
        """SRAM + LPDDR per card, minus `reserve_bytes` kept for activations, dense weights, runtime."""
        return [max(0, int(c.sram.capacity_bytes + c.lpddr.capacity_bytes) - int(reserve_bytes)) for c in self.cards]

    def card_sram_bytes(self) -> list[int]:
        return [int(c.sram.capacity_bytes) for c in self.cards]

    def describe(self) -> dict:
        return {"name": self.name, "cards": len(self.cards), "dense_on": self.dense_on,
                "card_links": [l.as_dict() for l in self.card_links], "host_link": self.host_link.as_dict(),
                "card_queue_depth": self.card_queue_depth, "host_queue_depth": self.host_queue_depth,
                "scm_queue_depth": self.scm_queue_depth, "host_threads": self.host_threads}


def _with_batch(link: PcieLink, name: str, max_batch: int) -> PcieLink:
    src = dict(link.sources)
    src["max_batch"] = "sdm.hardware.platform.MAX_BATCH (*assumption*)"
    return replace(link, name=name, max_batch=int(max_batch), sources=src)


def _card_link(card, k: int, max_batch: int) -> PcieLink:
    return _with_batch(card.link, f"card{k}", max_batch)


def _host_link(hw, max_batch: int) -> PcieLink:
    return _with_batch(hw.pcie, "host-switch", max_batch)
