"""Page-granular admission: the rows that share an SCM page with rows a lookup or prefetch reads
come along at no extra page read; which of them the DRAM cache takes (sdm/runtime/store_table.py's
`page_admit` setting: "off", "warm" rows only, or "all" at low priority).

Functions of a StoreTable `t` (its cache, page layout, warm set and static tiers).
"""
from __future__ import annotations

import numpy as np
import torch

from sdm.runtime.store_stats import TierCounters
from sdm.runtime.updates import stale_mask


def page_mates(t, ids: np.ndarray) -> np.ndarray:
    """Rows on the SCM pages holding `ids` that page-granular admission would cache: reading
    them costs no extra page read. "warm": only rows predicted warm; "all": every one. Rows in
    a static tier are left out; cached ones (`ids` too, once inserted) by the probe in admit_mates."""
    if t.page_admit == "off" or not len(ids) or not t.cache.capacity_rows or t.cache.direct:
        return np.zeros(0, np.int64)
    rpp = t.rows_per_page
    pages = np.unique(t.scm.page_of(t.spec.name, ids))
    slots = (pages[:, None] * rpp + np.arange(rpp)).reshape(-1)
    slots = slots[slots < t.spec.num_rows]
    mates = t.row_order[slots] if t.row_order is not None else slots
    # an updated row lives in a delta page until compaction (tiers/page_writes): its home slot on
    # these pages holds a dead copy, so it is no mate (reading it would cost another page)
    mates = mates[np.isin(t.scm.page_of(t.spec.name, mates), pages)]
    if t.page_admit == "warm":
        mates = mates[t.warm[mates]]
    # (rows of `ids` among them are found by the cache probe in admit_mates once inserted)
    for static in (t.accel, t.pinned):
        if static is not None and len(mates):
            mates = mates[static.locate(mates) < 0]
    return mates.astype(np.int64, copy=False)


def admit_mates(t, mates: np.ndarray, rows: torch.Tensor, protect: np.ndarray, c: TierCounters,
                token: int | None = None) -> None:
    """Insert page mates still absent (caller holds the cache lock), never evicting `protect`;
    mates updated since `token` (read before an update's commit) are not inserted."""
    if token is not None and len(mates):
        fresh = np.flatnonzero(~stale_mask(t, token, mates))
        if len(fresh) < len(mates):
            mates, rows = mates[fresh], rows[torch.from_numpy(fresh)]
    if not len(mates):
        return
    absent = np.flatnonzero(t.cache.probe(mates) < 0)
    if not len(absent):
        return
    placed = t.cache.insert(mates[absent], rows[torch.from_numpy(absent)], protect_slots=protect,
                            low_priority=t.page_admit == "all")
    c.admitted += int((placed >= 0).sum())
