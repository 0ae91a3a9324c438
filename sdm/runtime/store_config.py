"""What an EmbeddingStore's tables are run with: each table's nn.EmbeddingBag options, the store-wide
settings (queue depth, page size, cache ways and layout, admission modes), and the checks of the mode
names, so that `create`, `open` and the per-table path share one list of each.
"""
from __future__ import annotations

from dataclasses import dataclass

from sdm.core.errors import InvalidInputError

__all__ = ["BagOptions", "StoreSettings", "ADMISSION_MODES", "PAGE_ADMIT_MODES", "PAGE_LAYOUTS", "CACHE_LAYOUTS",
           "check_choice", "resolve_admission", "resolve_page_admit", "card_memory"]

# SCM page layout (the order rows are written into pages): see EmbeddingStore.create
PAGE_LAYOUTS = ("auto", "id", "hot")
# DRAM cache layout (how rows map to cache slots): see sdm.cache.dram_cache.DramCache
CACHE_LAYOUTS = ("auto", "hashed")
ADMISSION_MODES = ("auto", "all", "warm")
PAGE_ADMIT_MODES = ("auto", "off", "warm", "all")


@dataclass(frozen=True)
class BagOptions:
    """The nn.EmbeddingBag options a table is looked up with."""

    mode: str = "sum"
    include_last_offset: bool = False
    padding_idx: int | None = None


@dataclass(frozen=True)
class StoreSettings:
    """Store-wide settings each table runs with: the stored ones, with `open`'s overrides applied."""

    queue_depth: int               # SCM reads in flight per batch
    page_bytes: int                # SCM page size
    ways: int                      # DRAM cache associativity
    cache_layout: str = "auto"     # one of CACHE_LAYOUTS
    admission: str = "auto"        # one of ADMISSION_MODES
    page_admit: str = "auto"       # one of PAGE_ADMIT_MODES
    accel_device: str | None = None  # torch device of the card tier (None: CUDA if present, else CPU)


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> str:
    """`value` when it is one of `allowed`, else InvalidInputError naming `what`."""
    if value not in allowed:
        raise InvalidInputError(f"{what} must be one of {allowed}, got {value!r}")
    return value


def resolve_admission(mode: str, has_profile: bool, table: str) -> str:
    """Demand-miss admission of one table: "auto" -> "warm" with a profile, else "all"."""
    check_choice("admission", mode, ADMISSION_MODES)
    if mode == "auto":
        return "warm" if has_profile else "all"
    return _needs_profile("admission", mode, has_profile, table)


def resolve_page_admit(mode: str, has_profile: bool, table: str, admission: str) -> str:
    """Page-mate admission of one table: "auto" -> "warm" with a profile when admission is "all",
    else "off" (measured: with warm admission the warm rows are already cached and page mates
    bring nothing; tools/bench_dlrm.py)."""
    check_choice("page_admit", mode, PAGE_ADMIT_MODES)
    if mode == "auto":
        return "warm" if has_profile and admission == "all" else "off"
    return _needs_profile("page_admit", mode, has_profile, table)


def _needs_profile(what: str, mode: str, has_profile: bool, table: str) -> str:
    if mode == "warm" and not has_profile:
        raise InvalidInputError(f"table {table!r}: {what}='warm' needs a profile (create(..., profile=...))")
    return mode


def card_memory(hw):
    """(memory model of a card, total card memory bytes) of the hardware; (None, 0) without cards."""
    cards = getattr(hw, "cards", ()) if hw is not None else ()
    if not cards:
        return None, 0
    return cards[0].lpddr, int(getattr(hw, "card_memory_bytes", 0) or sum(int(c.lpddr.capacity_bytes) for c in cards))
