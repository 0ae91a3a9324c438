"""The partition stage: spread the rows a proposer gave an accelerator tier over its cards.

`CardPartitioner` balances lookups: each card should serve about the same number (see
`partition`). Any object with the same `partition` method can replace it
(`Planner(partitioner=...)`, sdm.placement.types.Partitioner).
"""
from __future__ import annotations

import numpy as np

from sdm.placement.assignment import TableAssignment
from sdm.placement.plan import RowSet
from sdm.placement.types import TierSpec


class CardPartitioner:
    """Pieces longest-processing-time first by lookups; hot pieces row-sharded over cards."""

    def partition(self, tier: TierSpec, items: list[tuple], per_table: dict[str, TableAssignment],
                  allow_split: bool = True) -> list[str]:
        return _split_over_cards(tier, items, per_table, allow_split)


def _split_over_cards(tier: TierSpec, items: list[tuple], per_table: dict[str, TableAssignment],
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


def _balance_over_cards(tier: TierSpec, items: list[tuple], per_table: dict[str, TableAssignment],
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


def _pack_by_bytes(tier: TierSpec, items: list[tuple], per_table: dict[str, TableAssignment],
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
