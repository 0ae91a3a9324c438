"""The planner's options: objective and policy names, workload, power and cost defaults, and the
stated assumptions (usable shares of each memory, queue depths the device models are priced at)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from sdm.core.errors import InvalidInputError
from sdm.hardware.overrides import apply_overrides
from sdm.hardware.platform import CARD_QUEUE_DEPTH, HOST_QUEUE_DEPTH, SCM_QUEUE_DEPTH
from sdm.placement.cost import CostDefaults
from sdm.placement.objectives import Workload
from sdm.placement.power import PowerDefaults


@dataclass
class PlanOptions:
    policy: str = "row"
    objective: str = "min-latency"
    workload: Workload = field(default_factory=Workload)
    power: PowerDefaults = field(default_factory=PowerDefaults)
    cost: CostDefaults = field(default_factory=CostDefaults)
    dram_cache_fraction: float = 0.0     # share of usable host DRAM run as a cache in front of SCM
    dram_cache_policy: str = "lru"
    # Shares of each memory left for embedding rows; the rest holds dense weights, activations,
    # the OS and the store's indexes. *assumptions*, override per deployment.
    dram_usable_fraction: float = 0.85
    sram_usable_fraction: float = 0.5
    lpddr_usable_fraction: float = 0.75
    # Queue depths the device models are priced at: the same model choices as the six-card
    # timeline's (sdm.hardware.platform, each explained there), so planner and runtime agree.
    scm_queue_depth: int = SCM_QUEUE_DEPTH     # outstanding reads per SSD (the page store's default)
    dram_queue_depth: int = HOST_QUEUE_DEPTH   # outstanding DRAM misses of one host core (*assumption*)
    card_queue_depth: int = CARD_QUEUE_DEPTH   # outstanding row reads per card (*assumption*)
    dram_ladder: Sequence[float] | None = None   # fractions of the preset's DRAM to try
    whole_dimms: bool = True             # ladder steps are whole DIMMs (False: any size, for curves)
    shard: bool = False                  # spread a model too big for one server over several (a replica)
    pages_per_scm_read: dict[str, float] = field(default_factory=dict)   # from page layouts
    progress: bool = False

    def __post_init__(self) -> None:
        from sdm.cache.policies import RUNTIME_POLICIES as RUNTIME_CACHE_POLICIES   # what the store can run

        if self.dram_cache_policy not in RUNTIME_CACHE_POLICIES:
            raise InvalidInputError(f"unknown DRAM cache policy {self.dram_cache_policy!r}; the runtime has "
                                    f"{sorted(RUNTIME_CACHE_POLICIES)}")
        if not 0.0 <= self.dram_cache_fraction <= 1.0:
            raise InvalidInputError(f"dram_cache_fraction must be in [0, 1], got {self.dram_cache_fraction}")
        for n in ("dram_usable_fraction", "sram_usable_fraction", "lpddr_usable_fraction"):
            if not 0.0 < getattr(self, n) <= 1.0:
                raise InvalidInputError(f"{n} must be in (0, 1], got {getattr(self, n)}")

    def replace(self, **overrides: Any) -> "PlanOptions":
        """A copy with the settable fields (SETTABLE: `--set plan.NAME=VALUE`) overridden. Text values
        are read by the one override parser (sdm.hardware.overrides): a fractional value for an
        integer field (`scm_queue_depth=2.7`) is an error, never truncated."""
        bad = set(overrides) - set(SETTABLE)
        if bad:
            raise InvalidInputError(f"unknown plan.* field(s) {sorted(bad)}; known: {sorted(SETTABLE)}")
        return apply_overrides(self, overrides, prefix="plan.")


# the knobs a deployment overrides by name; the rest are set by the planner's callers
SETTABLE = ("dram_cache_fraction", "dram_usable_fraction", "sram_usable_fraction", "lpddr_usable_fraction",
            "scm_queue_depth", "dram_queue_depth", "card_queue_depth")
