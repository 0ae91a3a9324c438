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

from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.placement.plan import RowSet
from sdm.placement.types import ACCEL_TIERS, TableHotness, TierSpec


@dataclass
class TablePlacement:
    pinned: list[tuple[str, int | None, RowSet]] = field(default_factory=list)   # (tier, card, rows)
    lookups_by_tier: dict[str, float] = field(default_factory=dict)
    explain: dict = field(default_factory=dict)
    tracked_pinned: np.ndarray | None = None     # mask over the profile's tracked rows (set by _finish)
    band_rows_pinned: np.ndarray | None = None   # pinned untracked rows per tail band


@dataclass
class Placement:
    policy: str
    tables: dict[str, TablePlacement]
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


def _finish(policy: str, tables, hotness, tiers, per_table: dict[str, TablePlacement],
            thresholds: dict[str, float]) -> Placement:
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


def _split_over_cards(tier: TierSpec, items: list[tuple], per_table: dict[str, TablePlacement],
                      allow_split: bool = True) -> list[str]:
    """Spread (table, row set, row_bytes[, lookups]) over `tier.cards` equal cards; `lookups` is
    an array (per row, in id order) or a float (every row alike: a tail band).

    Each card should serve about the same number of lookups: packing by bytes alone, largest
    first, left cold rows on cards 0-2 and hot rows on 3-5 (max/mean card lookups 3.23 in the
    integration review). So pieces go longest-processing-time first by lookups to the least loaded
    card with room, and a piece hotter than a card's fair share is row-sharded: its rows, hottest
    first, are dealt in snake order (0..k-1, k-1..0, ...) over the k least loaded cards. A piece
    stays whole otherwise, because each shard costs a card a read latency and partial sums on
    the link per request (sdm.accel.timeline). Loops over pieces (tables), numpy over rows.
    Returns names of tables that did not fit (only when allow_split is False).
    """
    if tier.cards > 1 and allow_split and items and all(len(it) > 3 and it[3] is not None for it in items):
        _balance_over_cards(tier, items, per_table)
        return []
    return _pack_by_bytes(tier, items, per_table, allow_split)


def _balance_over_cards(tier: TierSpec, items: list[tuple], per_table: dict[str, TablePlacement],
                        tolerance: float = 0.10) -> None:
    n_cards = tier.cards
    free = np.full(n_cards, tier.capacity_bytes // n_cards, dtype=np.int64)
    load = np.zeros(n_cards)

    def lookups_of(it) -> float:
        return float(np.sum(it[3])) if isinstance(it[3], np.ndarray) else it[1].count * float(it[3])

    def put(name, rows: RowSet, rb: int, lk: float, card: int) -> None:
        per_table[name].pinned.append((tier.name, card, rows))
        free[card] -= rows.count * rb
        load[card] += lk

    def put_by_room(name, rows: RowSet, rb: int, per_row) -> None:
        """Whole where it fits on the least loaded card; else in slices over cards with room (rows
        no card has room for stay on the backing tier, as packing by bytes leaves them)."""
        start = 0
        for card in np.argsort(load, kind="stable"):
            if start >= rows.count:
                break
            take = min(int(free[card] // rb), rows.count - start)
            if take <= 0 or (start == 0 and take < rows.count and np.any(free >= rows.count * rb)):
                continue
            part = rows.slice(start, start + take)
            lk = float(per_row[start:start + take].sum()) if isinstance(per_row, np.ndarray) else take * float(per_row)
            put(name, part, rb, lk, int(card))
            start += take

    lk_items = np.array([lookups_of(it) for it in items])
    for i in np.argsort(-lk_items, kind="stable"):
        name, rows, rb, per_row = items[i][:4]
        share = _water_fill(load, lk_items[i])
        share[share < 0.05] = 0.0                    # no shard for under 5% of a piece: latency per shard
        if share.max() >= 1.0 - tolerance or rows.count < 2 * n_cards:
            put_by_room(name, rows, rb, per_row)     # whole, on the least loaded card with room
            continue
        cards = np.flatnonzero(share > 0)
        n_rows = np.floor(share[cards] / share[cards].sum() * rows.count).astype(np.int64)
        n_rows[np.argmax(n_rows)] += rows.count - int(n_rows.sum())
        if isinstance(per_row, np.ndarray):
            # each card's rows spread evenly over the hotness ranking: a repeating pattern of 256
            # slots in which card j has a share_j part, evenly spaced
            per = np.maximum(np.round(share[cards] / share[cards].sum() * 256).astype(np.int64), 1)
            slot = np.concatenate([(np.arange(m) + 0.5) / m for m in per])
            pattern = np.repeat(np.arange(cards.size), per)[np.argsort(slot, kind="stable")].astype(np.int8)
            which = np.empty(rows.count, np.int8)
            which[np.argsort(-per_row, kind="stable")] = np.resize(pattern, rows.count)
            by_card = np.argsort(which, kind="stable")          # ids stay ascending within a card
            cuts = np.r_[0, np.cumsum(np.bincount(which, minlength=cards.size))]
            ids, pr_sorted = rows.to_ids()[by_card], per_row[by_card]
            pieces = [(RowSet.from_ids(ids[cuts[j]:cuts[j + 1]], assume_sorted=True), pr_sorted[cuts[j]:cuts[j + 1]])
                      for j in range(cards.size)]
        else:                                        # uniform rows: slices of those sizes
            bounds = np.r_[0, np.cumsum(n_rows)]
            pieces = [(rows.slice(int(bounds[j]), int(bounds[j + 1])), per_row) for j in range(cards.size)]
        for j, (part, pr) in enumerate(pieces):
            card = int(cards[j])
            if part.count and part.count * rb <= free[card]:
                put(name, part, rb, float(pr.sum()) if isinstance(pr, np.ndarray) else part.count * float(pr), card)
            elif part.count:
                put_by_room(name, part, rb, pr)


def _water_fill(load: np.ndarray, amount: float) -> np.ndarray:
    """Share of `amount` each card takes so that the least loaded cards rise to one level."""
    if amount <= 0:
        return np.zeros(load.size)
    order = np.argsort(load, kind="stable")
    srt = load[order]
    level = (amount + np.cumsum(srt)) / np.arange(1, srt.size + 1)   # level if the first m cards share it
    m = int(np.flatnonzero(level >= srt)[-1]) + 1                      # cards below the level
    out = np.zeros(load.size)
    out[order[:m]] = (level[m - 1] - srt[:m]) / amount
    return out


def _pack_by_bytes(tier: TierSpec, items: list[tuple], per_table: dict[str, TablePlacement],
                   allow_split: bool = True) -> list[str]:
    """Pack (table, row set, row_bytes, ...) onto `tier.cards` equal bins, largest first."""
    n_cards = max(tier.cards, 1)
    free = np.full(n_cards, tier.capacity_bytes // n_cards, dtype=np.int64)
    left_out = []
    for name, rows, rb, *_ in sorted(items, key=lambda x: -x[1].count * x[2]):
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
        check_hotness(tables, hotness)
        fast = list(tiers[:-1])                 # the last tier is the backing tier
        rb_all = np.array([t.row_bytes for t in tables], dtype=np.int64)
        max_rb = int(rb_all.max())
        # Cumulative capacity boundaries; one row of slack per boundary so that a row straddling
        # a boundary (sent to the slower tier) never overfills it.
        caps = np.array([max(t.capacity_bytes - max_rb, 0) for t in fast], dtype=np.int64)
        bounds = np.cumsum(caps)

        # Tracked rows of all tables in one flat "global id" space: table i owns
        # [gid_base[i], gid_base[i+1]), in id order. Memory is a few arrays of 8 B per tracked row.
        sizes = np.array([h.ids.size for h in hotness], dtype=np.int64)
        gid_base = np.r_[0, np.cumsum(sizes)]
        n = int(gid_base[-1])
        density = np.empty(n, np.float64)
        for i, h in enumerate(hotness):                             # per table, vectorized inside
            np.divide(h.counts, rb_all[i], out=density[gid_base[i]:gid_base[i + 1]])
        order = np.argsort(-density, kind="stable")                  # the one ranking of all rows
        d_sorted = density[order]
        del density
        # cumulative bytes of the ranking (without the tail bands)
        if np.all(rb_all == rb_all[0]):
            end = np.arange(1, n + 1, dtype=np.int64) * rb_all[0]
        else:
            end = rb_all[np.searchsorted(gid_base, order, side="right") - 1]
            np.cumsum(end, out=end)

        # Untracked tail bands: divisible segments of uniform density (a few per table), merged
        # into the ranking at their density: each band sits after the tracked rows at least as dense.
        n_bands = np.array([h.bands.shape[0] for h in hotness])
        band_t = np.repeat(np.arange(len(tables)), n_bands)                  # table of each band
        band_k = np.concatenate([np.arange(k) for k in n_bands])            # band index in its table
        tail_d = np.concatenate([h.band_count_per_row for h in hotness]) / rb_all[band_t]
        tail_bytes = np.concatenate([h.band_rows for h in hotness]) * rb_all[band_t]
        live = np.flatnonzero((tail_d > 0) & (tail_bytes > 0))              # bands worth placing
        live = live[np.argsort(-tail_d[live], kind="stable")]
        p_band = np.searchsorted(-d_sorted, -tail_d[live], side="right")    # tracked rows before it
        band_start = np.where(p_band > 0, end[np.maximum(p_band - 1, 0)], 0) + \
            np.r_[0, np.cumsum(tail_bytes[live])[:-1]]
        band_end = band_start + tail_bytes[live]
        if live.size:
            add = np.zeros(n + 1, np.int64)
            np.add.at(add, p_band, tail_bytes[live])
            np.cumsum(add, out=add)
            end += add[:n]
            del add

        tier_of = np.searchsorted(bounds, end, side="left").astype(np.int8)   # indivisible rows
        del end
        tier_of[d_sorted <= 0] = len(fast)                          # never-read rows stay in SCM
        thresholds: dict[str, float] = {}
        for k, tier in enumerate(fast):
            idx = np.flatnonzero(tier_of == k)
            if idx.size:
                thresholds[tier.name] = float(d_sorted[idx[-1]])
        # tail bands are divided by byte overlap with each tier's interval
        lo = np.r_[0, bounds[:-1]]
        tail_rows_in = {}                                             # band -> rows per tier
        for j, bnd in enumerate(live):                               # a few per table
            t = int(band_t[bnd])
            ov = np.clip(np.minimum(band_end[j], bounds) - np.maximum(band_start[j], lo), 0, None)
            tail_rows_in[int(bnd)] = ov // rb_all[t]
            for k, tier in enumerate(fast):
                if ov[k] >= rb_all[t]:
                    thresholds[tier.name] = min(thresholds.get(tier.name, np.inf), float(tail_d[bnd]))
        del d_sorted

        per_table = {t.name: TablePlacement() for t in tables}
        for k, tier in enumerate(fast):
            # global ids sort by table, then row id: no lexsort needed
            pos = np.sort(order[tier_of == k])
            cut = np.searchsorted(pos, gid_base)
            items = []
            for ti in np.flatnonzero(np.diff(cut) > 0):
                h = hotness[ti]
                local = pos[cut[ti]:cut[ti + 1]] - gid_base[ti]
                items.append((tables[ti].name, RowSet.from_ids(h.ids[local], assume_sorted=True), int(rb_all[ti]),
                              h.counts[local]))            # lookups per row: cards are balanced by them
            for bnd, rows_per_tier in tail_rows_in.items():
                n = int(rows_per_tier[k])
                if n > 0:
                    # which untracked rows: all rows of a band have the same density, so take the
                    # band's rows in id order, skipping those already given to faster tiers
                    ti = int(band_t[bnd])
                    first = int(hotness[ti].band_bounds[band_k[bnd]]) + int(rows_per_tier[:k].sum())
                    gaps = _untracked(hotness[ti].ids, tables[ti].num_rows)
                    items.append((tables[ti].name, gaps.slice(first, first + n), int(rb_all[ti]),
                                  float(hotness[ti].band_count_per_row[band_k[bnd]])))   # uniform lookups
            if tier.name in ACCEL_TIERS:
                _split_over_cards(tier, items, per_table)
            else:
                for name, rows, *_ in items:
                    per_table[name].pinned.append((tier.name, None, rows))
        del order, tier_of
        for spec, hot in zip(tables, hotness):
            per_table[spec.name].explain = {
                "density_max": float(hot.counts.max() / spec.row_bytes) if hot.counts.size else 0.0,
                "tail_density_max": float(hot.band_count_per_row.max(initial=0.0) / spec.row_bytes),
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
        check_hotness(tables, hotness)
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
