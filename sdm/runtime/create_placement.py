"""The placement `EmbeddingStore.create` writes for each table: the plan's, or the default one
(sdm/runtime/store_placement.py), with the DRAM cache budget split over the tables, the profile's
hottest-first order, and the SCM page order the `page_layout` asks for.
"""
from __future__ import annotations

from sdm.core.spec import TableSpec
from sdm.runtime.store_config import card_memory
from sdm.runtime.store_placement import (
    TablePlacement,
    check_placement,
    default_placement,
    hot_orders,
    hotness_row_order,
    placement_from_plan,
)

__all__ = ["create_placement", "split_cache_budget"]


def split_cache_budget(places: dict[str, TablePlacement], specs: list[TableSpec], total_bytes: int) -> None:
    """Give each table its share of a DRAM cache budget of `total_bytes`: the shares the tables have
    (a plan's, or the stored ones), or shares by table size when none has any."""
    have = sum(p.dram_cache_bytes for p in places.values())
    sizes = sum(s.size_bytes for s in specs)
    for s in specs:
        p = places[s.name]
        p.dram_cache_bytes = int(total_bytes * p.dram_cache_bytes / have) if have else int(total_bytes * s.size_bytes / sizes)


def create_placement(specs, hw, plan, dram_cache_bytes, policy, profile, page_layout) -> dict[str, TablePlacement]:
    """Each table's placement: the plan's (its cache split rescaled to an explicit budget), else the
    default one; the profile's hottest-first order and the SCM page order set from `page_layout`."""
    if plan is not None:
        place = placement_from_plan(plan, specs)
        if dram_cache_bytes is not None:  # explicit budget wins: rescale the plan's split
            split_cache_budget(place, specs, dram_cache_bytes)
    else:
        if dram_cache_bytes is None:
            # half the host's DRAM (the rest for the model and OS), no more than the tables need
            total_bytes = sum(s.size_bytes for s in specs)
            host = int(getattr(hw, "dram_capacity_bytes", 0) or 0) if hw is not None else 0
            dram_cache_bytes = min(host // 2, total_bytes) if host else total_bytes // 10
        _, accel_bytes = card_memory(hw)
        place = default_placement(
            specs, accel_bytes=accel_bytes, dram_cache_bytes=int(dram_cache_bytes), policy=policy, profile=profile
        )
    if profile is not None:
        for name, order in hot_orders(profile, specs).items():
            place[name].hot_order = order
    for s in specs:
        p = place[s.name]
        if page_layout == "id":
            p.row_order = None
        elif p.hot_order is not None and (page_layout == "hot" or p.row_order is None):
            p.row_order = hotness_row_order(p.hot_order, s.num_rows)
        check_placement(p, s)
    return place
