"""The proposer stage: which rows go to which tier. All proposers share one interface
(sdm.placement.types.Proposer) and one registry, `PROPOSERS` / `proposer(name)`.

- `RowLevel` ("row"): hot rows up, cold rows down, across all tables. Rows are ranked by access
  density (lookups per byte) with one argsort over every tracked row, then cut against the
  cumulative tier capacities with one cumsum + searchsorted. For the fractional problem (rows of
  any size, nested tiers, per-lookup cost increasing down the hierarchy) this greedy minimises the
  expected lookup cost, whatever the exact per-tier costs are. The rows an accelerator tier gets
  are spread over its cards by the partition stage (`partitioner`, sdm.placement.card_partition).
- `TableLevel` ("table"): whole tables by access density (lookups per byte), a greedy 0/1
  knapsack per tier and per card (table-wise sharding, as the accelerator path partitions tables:
  whole tables are their own card partition).
- `WholeTablesBaseline` ("baseline"): the simple approach: tables in declared order, each into
  the fastest tier with room, blind to hotness. What a planner without profiles does.

Tiers are given fastest first; the last one is the backing tier that holds every row not pinned
above (SCM, or host DRAM on DRAM-only hardware). Each returns a `Placement`
(sdm.placement.assignment).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.placement.assignment import Placement, TableAssignment, check_hotness, finish_placement
from sdm.placement.card_partition import CardPartitioner
from sdm.placement.plan import RowSet
from sdm.placement.types import ACCEL_TIERS, Partitioner, TableHotness, TierSpec


def _untracked(ids: np.ndarray, num_rows: int) -> RowSet:
    """The rows not in sorted `ids`, as ranges (the gaps between tracked rows)."""
    starts = np.r_[0, ids + 1]
    stops = np.r_[ids, num_rows]
    keep = stops > starts
    return RowSet(ranges=np.stack([starts[keep], stops[keep]], axis=1))


def _share_ties(order: np.ndarray, d_sorted: np.ndarray, end: np.ndarray, bounds: np.ndarray,
                gid_base: np.ndarray, rb_all: np.ndarray) -> None:
    """In place: tracked rows of one density that a tier boundary cuts are interleaved across their
    tables (each table's k-th of m tied rows at key (k + 1/2) / m), so the faster tier takes the same
    share of every table's tied rows; the stable ranking alone gave them to the first table (all of
    them, for identical tables). Only the tie blocks at the boundaries are touched, sorted by a
    16-bit key (numpy's radix sort: linear in the block)."""
    n = order.size
    done = set()
    for b in bounds:
        k = int(np.searchsorted(end, b, side="left"))
        if k >= n or d_sorted[k] <= 0:
            continue
        i0 = int(np.searchsorted(-d_sorted, -d_sorted[k], side="left"))
        i1 = int(np.searchsorted(-d_sorted, -d_sorted[k], side="right"))
        if i1 - i0 < 2 or i0 in done:
            continue
        done.add(i0)
        blk = order[i0:i1]                                  # in global-id order: by table, then row
        t = np.searchsorted(gid_base, blk, side="right") - 1
        if t[0] == t[-1]:
            continue                                        # one table: nothing to share
        start = np.searchsorted(t, t, side="left")
        count = np.searchsorted(t, t, side="right") - start
        key = ((np.arange(blk.size) - start + 0.5) / count * 65535).astype(np.uint16)
        perm = np.argsort(key, kind="stable")
        if np.any(rb_all[t] != rb_all[t[0]]):              # bytes differ: the block's end offsets move
            base = end[i0] - rb_all[t[0]]
            end[i0:i1] = base + np.cumsum(rb_all[t[perm]])
        order[i0:i1] = blk[perm]


class RowLevel:
    """Hot rows up, cold rows down, across tables (see module docstring)."""

    name = "row"

    def propose(self, tables: Sequence[TableSpec], hotness: Sequence[TableHotness],
                tiers: Sequence[TierSpec], partitioner: Partitioner | None = None) -> Placement:
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

        _share_ties(order, d_sorted, end, bounds, gid_base, rb_all)
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
        # Bands of equal density (identical tables, or Good-Turing's one rate for unseen rows) are
        # one segment of the ranking: a tier boundary inside it splits every band of it in
        # proportion to its bytes, not the first table's band whole and the others none.
        group_of = np.r_[0, np.cumsum(tail_d[live][1:] != tail_d[live][:-1])].astype(np.int64) if live.size else live
        first = np.flatnonzero(np.r_[True, np.diff(group_of) != 0]) if live.size else live
        g_starts = np.minimum.reduceat(band_start, first) if live.size else band_start
        g_ends = np.maximum.reduceat(band_end, first) if live.size else band_end
        for j, bnd in enumerate(live):                               # a few per table
            t = int(band_t[bnd])
            g_start, g_end = float(g_starts[group_of[j]]), float(g_ends[group_of[j]])
            g_ov = np.clip(np.minimum(g_end, bounds) - np.maximum(g_start, lo), 0, None)
            ov = (g_ov * (tail_bytes[bnd] / max(g_end - g_start, 1.0))).astype(np.int64)
            tail_rows_in[int(bnd)] = ov // rb_all[t]
            for k, tier in enumerate(fast):
                if ov[k] >= rb_all[t]:
                    thresholds[tier.name] = min(thresholds.get(tier.name, np.inf), float(tail_d[bnd]))
        del d_sorted

        per_table = {t.name: TableAssignment() for t in tables}
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
                (partitioner or CardPartitioner()).partition(tier, items, per_table)
            else:
                for name, rows, *_ in items:
                    per_table[name].pinned.append((tier.name, None, rows))
        del order, tier_of
        for spec, hot in zip(tables, hotness):
            per_table[spec.name].explain = {
                "density_max": float(hot.counts.max() / spec.row_bytes) if hot.counts.size else 0.0,
                "tail_density_max": float(hot.band_count_per_row.max(initial=0.0) / spec.row_bytes),
            }
        return finish_placement(self.name, tables, hotness, tiers, per_table, thresholds)


class TableLevel:
    """Whole tables by access density: greedy 0/1 knapsack per tier (per card for accel tiers)."""

    name = "table"
    hotness_blind = False

    def _order(self, tables, hotness) -> list[int]:
        dens = [h.total_lookups / t.size_bytes for t, h in zip(tables, hotness)]
        return sorted(range(len(tables)), key=lambda i: -dens[i])

    def propose(self, tables: Sequence[TableSpec], hotness: Sequence[TableHotness],
                tiers: Sequence[TierSpec], partitioner: Partitioner | None = None) -> Placement:
        check_hotness(tables, hotness)
        per_table = {t.name: TableAssignment() for t in tables}
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
        return finish_placement(self.name, tables, hotness, tiers, per_table, thresholds)


class WholeTablesBaseline(TableLevel):
    """Tables in declared order into the fastest tier with room, blind to hotness."""

    name = "baseline"
    hotness_blind = True

    def _order(self, tables, hotness) -> list[int]:
        return list(range(len(tables)))


PROPOSERS = {p.name: p for p in (RowLevel, TableLevel, WholeTablesBaseline)}


def proposer(name: str) -> "RowLevel | TableLevel":
    """The proposer registered as `name` ("row", "table", "baseline": `--policy` on the CLI)."""
    try:
        return PROPOSERS[name]()
    except KeyError:
        raise InvalidInputError(f"unknown placement policy {name!r}; choose from {sorted(PROPOSERS)}") from None
