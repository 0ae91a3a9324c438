"""The enumerate stage: a HardwareSpec -> candidate configurations (tiers with capacities and device
models; for power/cost objectives also a ladder of smaller DRAM fits, in whole DIMMs)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from sdm.core.errors import InfeasibleError, InvalidInputError
from sdm.placement.options import PlanOptions
from sdm.placement.power import parts_from_hardware
from sdm.placement.types import Candidate, TierSpec

GIB = 1 << 30


def _tier_from_device(name: str, dev, capacity_bytes: int, count: int, qd: int, cards: int = 0) -> TierSpec:
    return TierSpec(
        name=name, capacity_bytes=int(capacity_bytes), access_bytes=int(dev.access_bytes),
        latency_s=float(dev.latency_s(qd, dev.access_bytes)),
        iops=float(dev.iops(qd, dev.access_bytes)) * count,
        bandwidth_bytes_per_s=float(dev.bandwidth_bytes_per_s) * count, cards=cards, device=dev.name)


def tiers_from_hardware(hw, opts: PlanOptions, dram_bytes: int | None = None, shards: int = 1) -> tuple[TierSpec, ...]:
    """Tiers fastest first; the last is the backing tier (SCM, or DRAM on DRAM-only hardware).

    With `shards` > 1 the tiers are those of a replica spread over that many servers (capacity and
    device throughput add up); the estimator divides the replica's throughput back per server.
    """
    tiers = []
    cards = tuple(hw.cards)
    if cards:
        n = len(cards)
        c0 = cards[0]
        tiers.append(_tier_from_device("sram", c0.sram, n * c0.sram.capacity_bytes * opts.sram_usable_fraction * shards,
                                       n * shards, opts.card_queue_depth, n * shards))
        tiers.append(_tier_from_device("lpddr", c0.lpddr, n * c0.lpddr.capacity_bytes * opts.lpddr_usable_fraction * shards,
                                       n * shards, opts.card_queue_depth, n * shards))
    dram = int(hw.dram_capacity_bytes if dram_bytes is None else dram_bytes)
    usable = dram * opts.dram_usable_fraction
    pinned = usable * (1.0 - opts.dram_cache_fraction) if hw.scm is not None else usable
    tiers.append(_tier_from_device("dram", hw.host.dram, pinned * shards, shards, opts.dram_queue_depth))
    if hw.scm is not None:
        tiers.append(_tier_from_device("scm", hw.scm, hw.scm_capacity_bytes * shards, hw.scm_count * shards,
                                       opts.scm_queue_depth))
    return tuple(tiers)


@dataclass
class HardwareEnumerator:
    opts: PlanOptions

    def enumerate(self, hw, model_bytes: int) -> list[Candidate]:
        ladder = self.opts.dram_ladder
        if ladder is None:
            ladder = (1.0,) if self.opts.objective == "min-latency" else (1.0, 0.5, 0.25, 0.125)
        dimm = hw.host.dimm_capacity_bytes
        out, seen = [], set()
        for f in ladder:
            if not 0 < f <= 1:
                raise InvalidInputError(f"DRAM ladder fractions must be in (0, 1], got {f}")
            # the preset's DRAM as given; smaller fits in whole DIMMs (unless only sweeping a curve)
            dram = int(hw.dram_capacity_bytes * f)
            if f != 1.0 and self.opts.whole_dimms:
                dram = max(dimm, int(round(hw.dram_capacity_bytes * f / dimm)) * dimm)
            if dram in seen:
                continue
            seen.add(dram)
            shards = 1
            if hw.scm is not None and hw.scm_capacity_bytes < model_bytes and self.opts.shard:
                shards = math.ceil(model_bytes / hw.scm_capacity_bytes)
            elif hw.scm is None:
                fast = sum(t.capacity_bytes for t in tiers_from_hardware(hw, self.opts, dram))
                if fast < model_bytes:
                    if not self.opts.shard:
                        raise InfeasibleError(
                            f"capacity: hardware {hw.name!r} has no SCM and holds {fast / GIB:.1f} GiB of "
                            f"embedding rows ({self.opts.dram_usable_fraction:.0%} of {dram / GIB:.0f} GiB DRAM"
                            f"{' + card memory' if hw.cards else ''}); the model needs {model_bytes / GIB:.1f} GiB "
                            f"(short by {(model_bytes - fast) / GIB:.1f} GiB). Use SCM hardware, or `compare`, "
                            f"which shards DRAM-only models over several servers")
                    shards = math.ceil(model_bytes / fast)
            tiers = tiers_from_hardware(hw, self.opts, dram, shards)
            name = hw.name if len(ladder) == 1 else f"{hw.name}@{dram / 1e9:.0f}GB"
            parts = parts_from_hardware(hw, dram)
            cache = int(dram * self.opts.dram_usable_fraction * self.opts.dram_cache_fraction) if hw.scm is not None else 0
            out.append(Candidate(name, tiers, self.opts.dram_cache_fraction, self.opts.dram_cache_policy, hw,
                                 knobs={"parts": parts, "dram_bytes": dram, "shards": shards,
                                        "dram_cache_bytes": cache,
                                        "pages_per_scm_read": self.opts.pages_per_scm_read}))
        return out


def check_capacity(candidate: Candidate, model_bytes: int) -> None:
    backing = candidate.tiers[-1]
    if backing.name == "scm" and backing.capacity_bytes < model_bytes:
        raise InfeasibleError(
            f"capacity: SCM of {candidate.name!r} holds {backing.capacity_bytes / 1e9:.1f} GB, the model needs "
            f"{model_bytes / 1e9:.1f} GB (short by {(model_bytes - backing.capacity_bytes) / 1e9:.1f} GB); "
            f"add drives (scm_count) or larger ones")
