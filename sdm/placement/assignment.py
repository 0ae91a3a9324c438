"""What a proposer hands on: which rows of each table are pinned in which tier (and card).

`TableAssignment` is one table's pinned row sets; `Placement` all tables' plus the tiers' use.
Every proposer finishes with `finish_placement`, the one function that counts the lookups each tier
serves from the row sets, so proposers cannot disagree on how hits are counted. (The store's
per-table view of a plan is `sdm.runtime.store_placement.TablePlacement`, another concept.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.placement.plan import RowSet
from sdm.placement.types import TableHotness, TierSpec


@dataclass
class TableAssignment:
    pinned: list[tuple[str, int | None, RowSet]] = field(default_factory=list)   # (tier, card, rows)
    lookups_by_tier: dict[str, float] = field(default_factory=dict)
    explain: dict = field(default_factory=dict)
    tracked_pinned: np.ndarray | None = None     # mask over the profile's tracked rows (set by _finish)
    band_rows_pinned: np.ndarray | None = None   # pinned untracked rows per tail band


@dataclass
class Placement:
    policy: str
    tables: dict[str, TableAssignment]
    tier_used_bytes: dict[str, int]
    tier_capacity_bytes: dict[str, int]
    thresholds: dict[str, float] = field(default_factory=dict)   # tier -> lowest density placed there
    backing_tier: str = "scm"            # holds every row not pinned above (the last tier given)


def check_hotness(tables: Sequence[TableSpec], hotness: Sequence[TableHotness]) -> None:
    """One hotness profile per model table, in the same order, names unique; else InvalidInputError."""
    if not tables:
        raise InvalidInputError("no tables to place: the model has no embedding tables")
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InvalidInputError(f"table {dup!r} appears more than once in the model")
    if len(tables) != len(hotness):
        raise InvalidInputError(f"{len(tables)} tables but {len(hotness)} hotness profiles")
    for t, h in zip(tables, hotness):
        if t.name != h.name or t.num_rows != h.num_rows:
            raise InvalidInputError(
                f"profile for table {h.name!r} ({h.num_rows} rows) does not match model table "
                f"{t.name!r} ({t.num_rows} rows)")


def rows_by_band(rows: RowSet, hot: TableHotness) -> tuple[np.ndarray, np.ndarray]:
    """(mask of tracked rows in `rows`, untracked rows of `rows` in each tail band)."""
    bounds = hot.band_bounds
    if rows.ids is not None:
        ids = rows.ids
        m = np.zeros(hot.ids.size, bool)
        if hot.ids.size:
            pos = np.searchsorted(hot.ids, ids)
            tracked = hot.ids[np.minimum(pos, hot.ids.size - 1)] == ids
            m[pos[tracked]] = True
            untracked_pos = (ids - pos)[~tracked]                 # untracked rank = id - tracked below it
        else:
            untracked_pos = ids
        band = np.searchsorted(bounds, untracked_pos, side="right") - 1
        per_band = np.bincount(band, minlength=bounds.size - 1)[: bounds.size - 1]
    else:
        m = rows.contains(hot.ids)
        # untracked rows of range [a, b) are the untracked positions [u(a), u(b)): contiguous
        ua = hot.untracked_position(rows.ranges[:, 0])[:, None]
        ub = hot.untracked_position(rows.ranges[:, 1])[:, None]
        ov = np.minimum(ub, bounds[None, 1:]) - np.maximum(ua, bounds[None, :-1])
        per_band = np.clip(ov, 0, None).sum(axis=0)
    return m, per_band.astype(np.int64)


def lookups_in(rows: RowSet, hot: TableHotness) -> float:
    """Lookups (of the profile) that fall on `rows`: tracked counts + their share of the tail bands."""
    if rows.count == 0:
        return 0.0
    m, per_band = rows_by_band(rows, hot)
    return float(hot.counts[m].sum()) + float((per_band * hot.band_count_per_row).sum())


def finish_placement(policy: str, tables: Sequence[TableSpec], hotness: Sequence[TableHotness],
                     tiers: Sequence[TierSpec], per_table: dict[str, TableAssignment],
                     thresholds: dict[str, float]) -> Placement:
    """The `Placement` of `per_table`'s pinned rows: lookups and bytes per tier; every row not
    pinned above is served by the last tier (the backing tier)."""
    used = {t.name: 0 for t in tiers}
    for spec, hot in zip(tables, hotness):
        tp = per_table[spec.name]
        pinned_lookups = 0.0
        tp.tracked_pinned = np.zeros(hot.ids.size, bool)
        tp.band_rows_pinned = np.zeros(hot.bands.shape[0], np.int64)
        per_row = hot.band_count_per_row
        for tier, _card, rows in tp.pinned:
            m, per_band = rows_by_band(rows, hot)
            tp.tracked_pinned |= m
            tp.band_rows_pinned += per_band
            n = float(hot.counts[m].sum()) + float((per_band * per_row).sum())
            tp.lookups_by_tier[tier] = tp.lookups_by_tier.get(tier, 0.0) + n
            pinned_lookups += n
            used[tier] += rows.count * spec.row_bytes
        # every row not pinned above is served by the backing tier (SCM, or DRAM without SCM)
        backing = tiers[-1].name
        tp.lookups_by_tier[backing] = tp.lookups_by_tier.get(backing, 0.0) + max(hot.total_lookups - pinned_lookups, 0.0)
        used[backing] += (spec.num_rows - sum(r.count for _t, _c, r in tp.pinned)) * spec.row_bytes
    return Placement(policy, per_table, used, {t.name: t.capacity_bytes for t in tiers}, thresholds,
                     tiers[-1].name)
