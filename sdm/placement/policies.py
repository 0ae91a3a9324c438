"""Placement policies: which rows go to which tier (and card). All share one interface.

- `RowLevel` ("row"): hot rows up, cold rows down, across all tables. Rows are ranked by access
  density (lookups per byte) with one argsort over every tracked row, then cut against the
  cumulative tier capacities with one cumsum + searchsorted. For the fractional problem (rows of
  any size, nested tiers, per-lookup cost increasing down the hierarchy) this greedy minimises the
  expected lookup cost, whatever the exact per-tier costs are.
- `TableLevel` ("table"): whole tables by access density (lookups per byte), a greedy 0/1
  knapsack per tier and per card (table-wise sharding, as the accelerator path partitions tables).
- `WholeTablesBaseline` ("baseline"): the simple approach: tables in declared order, each into
  the fastest tier with room, blind to hotness. What a planner without profiles does.

Tiers are given fastest first; the last one is the backing tier that holds every row not pinned
above (SCM, or host DRAM on DRAM-only hardware). Each returns a `Placement`; `lookups_by_tier` is computed by one shared function from the row
sets, so policies cannot disagree on how hits are counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError
from ..spec import TableSpec
from .plan import RowSet
from .types import ACCEL_TIERS, TableHotness, TierSpec


@dataclass
class TablePlacement:
    pinned: list[tuple[str, int | None, RowSet]] = field(default_factory=list)   # (tier, card, rows)
    lookups_by_tier: dict[str, float] = field(default_factory=dict)
    explain: dict = field(default_factory=dict)


@dataclass
class Placement:
    policy: str
    tables: dict[str, TablePlacement]
    tier_used_bytes: dict[str, int]
    tier_capacity_bytes: dict[str, int]
    thresholds: dict[str, float] = field(default_factory=dict)   # tier -> lowest density placed there
    backing_tier: str = "scm"            # holds every row not pinned above (the last tier given)


def _check(tables: Sequence[TableSpec], hotness: Sequence[TableHotness]) -> None:
    if len(tables) != len(hotness):
        raise InvalidInputError(f"{len(tables)} tables but {len(hotness)} hotness profiles")
    for t, h in zip(tables, hotness):
        if t.name != h.name or t.num_rows != h.num_rows:
            raise InvalidInputError(
                f"profile for table {h.name!r} ({h.num_rows} rows) does not match model table "
                f"{t.name!r} ({t.num_rows} rows)")


def lookups_in(rows: RowSet, hot: TableHotness) -> float:
    """Lookups (of the profile) that fall on `rows`: tracked counts + their share of the tail."""
    if rows.count == 0:
        return 0.0
    m = rows.contains(hot.ids)
    tracked_rows = int(m.sum())
    return float(hot.counts[m].sum()) + (rows.count - tracked_rows) * hot.tail_count_per_row


def _finish(policy: str, tables, hotness, tiers, per_table: dict[str, TablePlacement],
            thresholds: dict[str, float]) -> Placement:
    used = {t.name: 0 for t in tiers}
    for spec, hot in zip(tables, hotness):
        tp = per_table[spec.name]
        pinned_lookups = 0.0
        for tier, _card, rows in tp.pinned:
            n = lookups_in(rows, hot)
            tp.lookups_by_tier[tier] = tp.lookups_by_tier.get(tier, 0.0) + n
            pinned_lookups += n
            used[tier] += rows.count * spec.row_bytes
        # every row not pinned above is served by the backing tier (SCM, or DRAM without SCM)
        backing = tiers[-1].name
        tp.lookups_by_tier[backing] = tp.lookups_by_tier.get(backing, 0.0) + max(hot.total_lookups - pinned_lookups, 0.0)
        used[backing] += (spec.num_rows - sum(r.count for _t, _c, r in tp.pinned)) * spec.row_bytes
    return Placement(policy, per_table, used, {t.name: t.capacity_bytes for t in tiers}, thresholds,
                     tiers[-1].name)


def _split_over_cards(tier: TierSpec, items: list[tuple[str, RowSet, int]],
                      per_table: dict[str, TablePlacement], allow_split: bool = True) -> list[str]:
    """Pack (table, row set, row_bytes) onto `tier.cards` equal bins, largest first.

    Loops over tables (hundreds), never rows. Returns names of tables that did not fit (only
    when allow_split is False).
    """
    n_cards = max(tier.cards, 1)
    free = np.full(n_cards, tier.capacity_bytes // n_cards, dtype=np.int64)
    left_out = []
    for name, rows, rb in sorted(items, key=lambda x: -x[1].count * x[2]):
        start, n = 0, rows.count
        while start < n:
            card = int(np.argmax(free))
            fit = int(free[card] // rb)
            if fit <= 0 or (not allow_split and fit < n - start):
                if not allow_split:
                    left_out.append(name)
                break
            take = min(fit, n - start)
            per_table[name].pinned.append((tier.name, card if tier.cards else None, rows.slice(start, start + take)))
            free[card] -= take * rb
            start += take
    return left_out


def _untracked(ids: np.ndarray, num_rows: int) -> RowSet:
    """The rows not in sorted `ids`, as ranges (the gaps between tracked rows)."""
    starts = np.r_[0, ids + 1]
    stops = np.r_[ids, num_rows]
    keep = stops > starts
    return RowSet(ranges=np.stack([starts[keep], stops[keep]], axis=1))


class RowLevel:
    """Hot rows up, cold rows down, across tables (see module docstring)."""

    name = "row"

    def place(self, tables: Sequence[TableSpec], hotness: Sequence[TableHotness],
              tiers: Sequence[TierSpec]) -> Placement:
        _check(tables, hotness)
        fast = list(tiers[:-1])                 # the last tier is the backing tier
        rb_all = np.array([t.row_bytes for t in tables], dtype=np.int64)
        max_rb = int(rb_all.max())
        # Cumulative capacity boundaries; one row of slack per boundary so that a row straddling
        # a boundary (sent to the slower tier) never overfills it.
        caps = np.array([max(t.capacity_bytes - max_rb, 0) for t in fast], dtype=np.int64)
        bounds = np.cumsum(caps)

        # Tracked rows of all tables, one flat array each (no per-row Python).
        sizes = np.array([h.ids.size for h in hotness], dtype=np.int64)
        tix = np.repeat(np.arange(len(tables), dtype=np.int32), sizes)
        counts = np.concatenate([h.counts for h in hotness]) if sizes.sum() else np.zeros(0)
        rbytes = rb_all[tix]
        density = counts / rbytes
        # Untracked tails: one divisible segment per table, uniform density.
        tail_d = np.array([h.tail_count_per_row / t.row_bytes for t, h in zip(tables, hotness)])
        tail_bytes = np.array([h.tail_rows for h in hotness], dtype=np.int64) * rb_all
        tail_t = np.flatnonzero((tail_d > 0) & (tail_bytes > 0))

        # One ranking over tracked rows and tail segments together.
        all_d = np.concatenate([density, tail_d[tail_t]])
        all_b = np.concatenate([rbytes, tail_bytes[tail_t]])
        order = np.argsort(-all_d, kind="stable")
        end = np.cumsum(all_b[order])
        start = end - all_b[order]
        n_tracked = density.size
        is_tail = order >= n_tracked

        tier_of = np.searchsorted(bounds, end, side="left")          # indivisible rows
        tier_of[all_d[order] <= 0] = len(fast)                      # never-read rows stay in SCM
        placed_rows: dict[int, list[np.ndarray]] = {}               # tier -> row positions (tracked)
        thresholds: dict[str, float] = {}
        for k, tier in enumerate(fast):
            sel = (tier_of == k) & ~is_tail
            placed_rows[k] = order[sel]
            in_tier = all_d[order][tier_of == k]
            if in_tier.size:
                thresholds[tier.name] = float(in_tier.min())
        # tail segments are divided by byte overlap with each tier's interval
        lo = np.r_[0, bounds[:-1]]
        tail_rows_in = {}
        for pos in np.flatnonzero(is_tail):                          # <= one per table
            t = int(tail_t[order[pos] - n_tracked])
            ov = np.clip(np.minimum(end[pos], bounds) - np.maximum(start[pos], lo), 0, None)
            tail_rows_in[t] = ov // rb_all[t]
            for k, tier in enumerate(fast):
                if ov[k] >= rb_all[t]:
                    thresholds[tier.name] = min(thresholds.get(tier.name, np.inf), float(tail_d[t]))

        per_table = {t.name: TablePlacement() for t in tables}
        gid_base = np.r_[0, np.cumsum(sizes)]
        for k, tier in enumerate(fast):
            pos = placed_rows[k]
            t_of = tix[pos]
            srt = np.lexsort((pos, t_of))                            # group by table, keep id order
            pos, t_of = pos[srt], t_of[srt]
            cut = np.searchsorted(t_of, np.arange(len(tables) + 1))
            items = []
            for ti in np.flatnonzero(np.diff(cut) > 0):
                h = hotness[ti]
                ids = h.ids[pos[cut[ti]:cut[ti + 1]] - gid_base[ti]]
                items.append((tables[ti].name, RowSet.from_ids(ids, assume_sorted=True), int(rb_all[ti])))
            for ti, rows_per_tier in tail_rows_in.items():
                n = int(rows_per_tier[k])
                if n > 0:
                    # which untracked rows: all have the same density, so take them in id order,
                    # skipping those already given to faster tiers
                    done = int(rows_per_tier[:k].sum())
                    gaps = _untracked(hotness[ti].ids, tables[ti].num_rows)
                    items.append((tables[ti].name, gaps.slice(done, done + n), int(rb_all[ti])))
            if tier.name in ACCEL_TIERS:
                _split_over_cards(tier, items, per_table)
            else:
                for name, rows, _rb in items:
                    per_table[name].pinned.append((tier.name, None, rows))
        for spec, hot in zip(tables, hotness):
            per_table[spec.name].explain = {
                "density_max": float(hot.counts.max() / spec.row_bytes) if hot.counts.size else 0.0,
                "tail_density": float(hot.tail_count_per_row / spec.row_bytes),
            }
        return _finish(self.name, tables, hotness, tiers, per_table, thresholds)


class TableLevel:
    """Whole tables by access density: greedy 0/1 knapsack per tier (per card for accel tiers)."""

    name = "table"
    hotness_blind = False

    def _order(self, tables, hotness) -> list[int]:
        dens = [h.total_lookups / t.size_bytes for t, h in zip(tables, hotness)]
        return sorted(range(len(tables)), key=lambda i: -dens[i])

    def place(self, tables: Sequence[TableSpec], hotness: Sequence[TableHotness],
              tiers: Sequence[TierSpec]) -> Placement:
        _check(tables, hotness)
        per_table = {t.name: TablePlacement() for t in tables}
        remaining = self._order(tables, hotness)
        thresholds: dict[str, float] = {}
        for tier in tiers[:-1]:
            n_bins = max(tier.cards, 1)
            free = np.full(n_bins, tier.capacity_bytes // n_bins, dtype=np.int64)
            left = []
            for i in remaining:
                spec, hot = tables[i], hotness[i]
                if not self.hotness_blind and hot.total_lookups <= 0:
                    left.append(i)
                    continue
                b = int(np.argmax(free))
                if spec.size_bytes <= free[b]:
                    free[b] -= spec.size_bytes
                    per_table[spec.name].pinned.append(
                        (tier.name, b if tier.cards else None, RowSet(ranges=[[0, spec.num_rows]])))
                    d = hot.total_lookups / spec.size_bytes
                    thresholds[tier.name] = min(thresholds.get(tier.name, np.inf), d)
                else:
                    left.append(i)
            remaining = left
        for spec, hot in zip(tables, hotness):
            per_table[spec.name].explain = {"table_density": hot.total_lookups / spec.size_bytes}
        return _finish(self.name, tables, hotness, tiers, per_table, thresholds)


class WholeTablesBaseline(TableLevel):
    """Tables in declared order into the fastest tier with room, blind to hotness."""

    name = "baseline"
    hotness_blind = True

    def _order(self, tables, hotness) -> list[int]:
        return list(range(len(tables)))


POLICIES = {p.name: p for p in (RowLevel, TableLevel, WholeTablesBaseline)}


def policy(name: str):
    try:
        return POLICIES[name]()
    except KeyError:
        raise InvalidInputError(f"unknown placement policy {name!r}; choose from {sorted(POLICIES)}") from None
