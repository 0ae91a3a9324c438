"""Place embedding tables on the six cards (whole or row-sharded), keep the rest on the host.

Three small stages, each a plain function over per-table numbers (no per-row Python):
1. `choose_card_tables`: net-split. Tables go to the cards in order of access density (bytes read per
   sample per byte stored) until the cards' memory is full; what does not fit, or is never read, stays
   on the host, where `EmbeddingStore` serves it from DRAM and SCM. Dense tables first is what makes
   the cards' small memory pay: the host keeps the big, cold tables that SCM serves cheaply.
2. `shard_tables`: a table whose lookup load is above a card's fair share, or which is bigger than a
   card, is split into row ranges of equal load (equal cumulative counts when a profile is given).
3. `assign_shards`: longest-processing-time-first onto the card with the least load that has room, then
   within each card the densest shards fill SRAM and the rest go to LPDDR.
`partition(...)` runs the three; `partition_from_plan(...)` honours a planner's `Plan` instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec

HOST = -1  # location of a shard served by the host (EmbeddingStore over DRAM + SCM)


@dataclass(eq=False)
class Shard:
    """Rows of one table placed in one place. Rows are `[row_start, row_end)` unless `rows` is given."""

    table: str
    table_index: int
    location: int            # card index 0..K-1, or HOST
    tier: str                # "sram" | "lpddr" on a card; "host" on the host
    row_start: int
    row_end: int
    size_bytes: int
    load_share: float        # fraction of the table's lookups that land here (from counts, or by rows)
    reason: str = ""
    rows: np.ndarray | None = None   # explicit row ids (a plan's hot set); overrides the range

    @property
    def num_rows(self) -> int:
        return int(self.rows.size) if self.rows is not None else self.row_end - self.row_start

    @property
    def on_card(self) -> bool:
        return self.location != HOST

    def where(self) -> str:
        return "host" if self.location == HOST else f"card{self.location}:{self.tier}"


@dataclass
class Partition:
    """Where every table's rows live. Every row of every table is in exactly one shard."""

    tables: list[TableSpec]
    shards: list[Shard]
    card_capacity_bytes: np.ndarray   # usable bytes per card (SRAM + LPDDR - reserve)
    card_sram_bytes: np.ndarray
    lookups_per_sample: np.ndarray    # per table, the load the partition was balanced for

    @property
    def num_cards(self) -> int:
        return int(self.card_capacity_bytes.size)

    def shards_of(self, table: str) -> list[Shard]:
        return [s for s in self.shards if s.table == table]

    def card_bytes(self) -> np.ndarray:
        out = np.zeros(self.num_cards, dtype=np.int64)
        for s in self.shards:
            if s.on_card:
                out[s.location] += s.size_bytes
        return out

    def card_load_bytes(self) -> np.ndarray:
        """Expected embedding bytes each card reads per sample (the quantity balanced)."""
        out = np.zeros(self.num_cards)
        for s in self.shards:
            if s.on_card:
                t = self.tables[s.table_index]
                out[s.location] += self.lookups_per_sample[s.table_index] * s.load_share * t.row_bytes
        return out

    def host_bytes(self) -> int:
        return int(sum(s.size_bytes for s in self.shards if not s.on_card))

    def describe(self) -> list[dict]:
        return [
            {"table": s.table, "where": s.where(), "rows": [s.row_start, s.row_end] if s.rows is None
             else f"{s.rows.size} listed rows", "num_rows": s.num_rows, "size_bytes": s.size_bytes,
             "load_share": round(s.load_share, 4), "reason": s.reason}
            for s in self.shards
        ]


def _check_tables(tables: Sequence[TableSpec]) -> None:
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInputError(f"duplicate table names: {dup}")


def table_loads(tables: Sequence[TableSpec], loads: Mapping[str, float] | Sequence[float] | None) -> np.ndarray:
    """Lookups per sample per table: given, else each table's `pooling_factor`."""
    if loads is None:
        return np.array([t.pooling_factor for t in tables], dtype=np.float64)
    if isinstance(loads, Mapping):
        unknown = sorted(set(loads) - {t.name for t in tables})
        if unknown:
            raise InvalidInputError(f"loads name unknown tables: {unknown}")
        arr = np.array([float(loads.get(t.name, t.pooling_factor)) for t in tables])
    else:
        arr = np.asarray(loads, dtype=np.float64)
        if arr.shape != (len(tables),):
            raise InvalidInputError(f"loads has shape {arr.shape}; expected ({len(tables)},), one per table")
    bad = np.flatnonzero(~(arr >= 0))
    if bad.size:
        raise InvalidInputError(f"table {tables[bad[0]].name!r}: load must be >= 0, got {arr[bad[0]]}")
    return arr


def choose_card_tables(sizes: np.ndarray, load_bytes: np.ndarray, capacity_bytes: float,
                       fill: float = 0.95) -> np.ndarray:
    """Net-split: True for tables placed on cards. Densest first until `fill` of total capacity.

    The prefix is taken in one cumsum; afterwards smaller, less dense tables that still fit are added
    (a greedy knapsack), so a big table that does not fit does not strand the space after it.
    """
    on = np.zeros(sizes.size, dtype=bool)
    read = load_bytes > 0  # never-read tables are cheaper on the host: they cost card memory, earn nothing
    density = np.where(sizes > 0, load_bytes / np.maximum(sizes, 1), 0.0)
    order = np.argsort(-density, kind="stable")
    order = order[read[order]]
    budget = capacity_bytes * fill
    fits = np.cumsum(sizes[order]) <= budget
    n = int(np.argmin(fits)) if not fits.all() else fits.size
    on[order[:n]] = True
    left = budget - sizes[order[:n]].sum()
    for i in order[n:]:  # per table, not per row: fill the gaps
        if sizes[i] <= left:
            on[i] = True
            left -= sizes[i]
    return on


def shard_bounds(num_rows: int, k: int, counts: np.ndarray | None) -> np.ndarray:
    """k+1 row boundaries splitting a table into k ranges of equal load (or equal rows)."""
    if k <= 1:
        return np.array([0, num_rows], dtype=np.int64)
    if counts is None or counts.sum() <= 0:
        return np.linspace(0, num_rows, k + 1).round().astype(np.int64)
    cum = np.cumsum(counts, dtype=np.float64)
    targets = cum[-1] * np.arange(1, k) / k
    inner = np.searchsorted(cum, targets, side="left") + 1
    bounds = np.concatenate([[0], np.clip(inner, 1, num_rows - 1), [num_rows]]).astype(np.int64)
    return np.maximum.accumulate(bounds)


def partition(tables: Sequence[TableSpec], card_capacity_bytes: Sequence[int], card_sram_bytes: Sequence[int],
              *, loads: Mapping[str, float] | Sequence[float] | None = None,
              row_counts: Mapping[str, np.ndarray] | None = None,
              host_tables: Sequence[str] = (), imbalance_tol: float = 0.10,
              fill: float = 0.95) -> Partition:
    """Partition `tables` over cards with the given usable capacities (bytes), SRAM first within a card.

    `loads`: lookups per sample per table (default: pooling factors). `row_counts`: per-table access
    counts per row from a profile; used for equal-load shard boundaries and load shares.
    `host_tables`: names forced onto the host. No per-row Python: per-table loops and numpy only.
    `imbalance_tol`: a table whose load exceeds a card's fair share by more than this is row-sharded
    (0.10: model choice; sharding below ~10% buys little and costs a shard's PCIe command).
    `fill`: share of the usable card memory the net-split may fill (0.95: model choice, headroom for
    shards that bin-pack imperfectly onto whole cards).
    """
    tables = list(tables)
    _check_tables(tables)
    cap = np.asarray(card_capacity_bytes, dtype=np.int64)
    sram = np.asarray(card_sram_bytes, dtype=np.int64)
    if cap.ndim != 1 or sram.shape != cap.shape:
        raise InvalidInputError(f"card capacities {cap.shape} and SRAM sizes {sram.shape} must be 1-D, equal")
    if np.any(cap < 0):
        raise InvalidInputError(f"card {int(np.flatnonzero(cap < 0)[0])}: negative usable capacity")
    unknown = sorted(set(host_tables) - {t.name for t in tables})
    if unknown:
        raise InvalidInputError(f"host_tables name unknown tables: {unknown}")
    counts = dict(row_counts or {})
    for t in tables:
        c = counts.get(t.name)
        if c is not None and np.asarray(c).shape != (t.num_rows,):
            raise InvalidInputError(f"table {t.name!r}: row_counts has shape {np.asarray(c).shape}, "
                                    f"expected ({t.num_rows},)")
    lps = table_loads(tables, loads)
    sizes = np.array([t.size_bytes for t in tables], dtype=np.int64)
    load_bytes = lps * np.array([t.row_bytes for t in tables])
    K = cap.size

    on_card = choose_card_tables(sizes, load_bytes, float(cap.sum()), fill) if K else np.zeros(len(tables), bool)
    forced = np.array([t.name in set(host_tables) for t in tables], dtype=bool)
    on_card &= ~forced

    shards: list[Shard] = []
    pending: list[tuple[Shard, float]] = []  # (shard, load bytes) waiting for a card
    fair = load_bytes[on_card].sum() / max(K, 1)
    per_card = int(cap.max()) if K else 0
    for i, t in enumerate(tables):
        if not on_card[i]:
            why = ("forced to host" if forced[i] else "never read: cheaper on host" if load_bytes[i] == 0
                   else "cards full: lower access density than the tables placed on cards")
            shards.append(Shard(t.name, i, HOST, "host", 0, t.num_rows, int(sizes[i]), 1.0, why))
            continue
        k = 1
        if fair > 0 and load_bytes[i] > fair * (1 + imbalance_tol):
            k = int(np.ceil(load_bytes[i] / fair))
        if per_card > 0 and sizes[i] > per_card * fill:
            k = max(k, int(np.ceil(sizes[i] / (per_card * fill))))
        k = int(min(max(k, 1), K, t.num_rows))
        c = counts.get(t.name)
        c = None if c is None else np.asarray(c, dtype=np.float64)
        bounds = shard_bounds(t.num_rows, k, c)
        total = c.sum() if c is not None and c.sum() > 0 else None
        for a, b in zip(bounds[:-1], bounds[1:]):
            if b <= a:
                continue
            share = (c[a:b].sum() / total) if total is not None else (b - a) / t.num_rows
            why = "whole table" if k == 1 else f"row-sharded {k} ways: load {load_bytes[i] / max(fair, 1e-30):.2f}x a card's fair share" \
                if load_bytes[i] > fair * (1 + imbalance_tol) else f"row-sharded {k} ways: larger than one card"
            s = Shard(t.name, i, HOST, "host", int(a), int(b), int((b - a) * t.row_bytes), float(share), why)
            pending.append((s, float(load_bytes[i] * share)))

    assign_shards(pending, cap, sram)
    shards.extend(s for s, _ in pending)
    shards = _merge_host_shards(shards, tables)
    shards.sort(key=lambda s: (s.table_index, s.row_start))
    return Partition(tables, shards, cap, sram, lps)


def _merge_host_shards(shards: list[Shard], tables: list[TableSpec]) -> list[Shard]:
    """A table whose shards all fell back to the host becomes one host shard (one store lookup)."""
    by_table: dict[int, list[Shard]] = {}
    for s in shards:
        by_table.setdefault(s.table_index, []).append(s)
    out: list[Shard] = []
    for i, group in by_table.items():
        if len(group) > 1 and all(not s.on_card for s in group):
            t = tables[i]
            out.append(Shard(t.name, i, HOST, "host", 0, t.num_rows, t.size_bytes, 1.0,
                             group[0].reason.split(";")[-1].strip() or "host"))
        else:
            out.extend(group)
    return out


def assign_shards(pending: list[tuple[Shard, float]], cap: np.ndarray, sram: np.ndarray) -> None:
    """LPT: heaviest shard to the least-loaded card with room (avoiding a card holding the same table),
    then SRAM by density within each card. Shards that fit nowhere go back to the host."""
    K = cap.size
    free = cap.astype(np.int64).copy()
    load = np.zeros(K)
    held: list[set[str]] = [set() for _ in range(K)]
    for s, lb in sorted(pending, key=lambda p: (-p[1], -p[0].size_bytes)):
        room = free >= s.size_bytes
        if not room.any():
            s.location, s.tier = HOST, "host"
            s.reason += "; no card had room after balancing, kept on host"
            continue
        fresh = room & np.array([s.table not in h for h in held])
        cand = fresh if fresh.any() else room
        key = np.where(cand, load, np.inf)
        k = int(np.argmin(key))
        s.location = k
        free[k] -= s.size_bytes
        load[k] += lb
        held[k].add(s.table)
    sram_free = sram.astype(np.int64).copy()
    by_density = sorted((p for p in pending if p[0].on_card), key=lambda p: -p[1] / max(p[0].size_bytes, 1))
    for s, _ in by_density:
        if s.size_bytes <= sram_free[s.location]:
            s.tier = "sram"
            sram_free[s.location] -= s.size_bytes
        else:
            s.tier = "lpddr"


def partition_from_plan(plan, tables: Sequence[TableSpec], card_capacity_bytes: Sequence[int],
                        card_sram_bytes: Sequence[int], *, loads=None,
                        row_counts: Mapping[str, np.ndarray] | None = None) -> Partition:
    """Honour a planner's `Plan` (sdm.placement.plan): rows it pins to a card's SRAM or LPDDR become
    card shards; every other row of the table (host DRAM pin, DRAM cache, SCM) is one host shard.

    Checks that the plan's tables and shapes match the model and that no card is over capacity.
    """
    tables = list(tables)
    _check_tables(tables)
    cap = np.asarray(card_capacity_bytes, dtype=np.int64)
    sram = np.asarray(card_sram_bytes, dtype=np.int64)
    lps = table_loads(tables, loads)
    counts = dict(row_counts or {})
    missing = [t.name for t in tables if t.name not in plan.tables]
    if missing:
        raise InvalidInputError(f"plan has no placement for tables {missing[:10]}")
    shards: list[Shard] = []
    for i, t in enumerate(tables):
        tp = plan.tables[t.name]
        if int(tp.num_rows) != t.num_rows or int(tp.dim) != t.dim:
            raise InvalidInputError(f"table {t.name!r}: plan has {tp.num_rows} rows x {tp.dim}, "
                                    f"model has {t.num_rows} x {t.dim}")
        c = counts.get(t.name)
        c = None if c is None else np.asarray(c, dtype=np.float64)
        total = c.sum() if c is not None and c.sum() > 0 else None
        on_card = np.zeros(t.num_rows, dtype=bool)
        for p in tp.placements:
            if p.tier not in ("sram", "lpddr"):
                continue
            if p.card is None or not 0 <= int(p.card) < cap.size:
                raise InvalidInputError(f"table {t.name!r}: plan puts rows in {p.tier} of card {p.card}, "
                                        f"but the platform has cards 0..{cap.size - 1}")
            ids = p.rows.to_ids()
            if ids.size == 0:
                continue
            if ids.min() < 0 or ids.max() >= t.num_rows:
                raise InvalidInputError(f"table {t.name!r}: plan row {int(ids.max())} out of range 0..{t.num_rows - 1}")
            if on_card[ids].any():
                raise InvalidInputError(f"table {t.name!r}: plan places row {int(ids[on_card[ids]][0])} twice")
            on_card[ids] = True
            share = (c[ids].sum() / total) if total is not None else ids.size / t.num_rows
            lo, hi = int(ids.min()), int(ids.max()) + 1
            contiguous = ids.size == hi - lo   # a range: no row list to carry
            shards.append(Shard(t.name, i, int(p.card), p.tier, lo, hi, int(ids.size * t.row_bytes),
                                float(share), f"plan: {p.tier} of card {p.card}", None if contiguous else ids))
        if not on_card.all():
            rest = np.flatnonzero(~on_card)
            share = (c[rest].sum() / total) if total is not None else rest.size / t.num_rows
            lo, hi = int(rest[0]), int(rest[-1]) + 1
            shards.append(Shard(t.name, i, HOST, "host", lo, hi, int(rest.size * t.row_bytes), float(share),
                                "plan: host DRAM / SCM", None if rest.size == hi - lo else rest))
    part = Partition(tables, shards, cap, sram, lps)
    over = np.flatnonzero(part.card_bytes() > cap)
    if over.size:
        k = int(over[0])
        raise InvalidInputError(f"plan puts {part.card_bytes()[k]} bytes on card {k}, which has {cap[k]} usable")
    return part
