"""`production_trace`: batches whose reuse statistics match Meta's published table (REFERENCE.md,
"Data"), with hot rows that persist across batches and optional co-access groups; and
`calibrated_counts`, the per-batch read counts it is built from.

Dealing rows to tables is numba: a greedy choice by the budget each earlier row left (inherently
sequential), kept O(U log T) by a heap.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numba import njit

from sdm.core.errors import InvalidInputError
from sdm.traces.reuse import BUCKET_LOWER, BUCKET_UPPER, META_2021_REUSE, ReuseTable
from sdm.traces.sampling import Scrambler, bag_lengths, offsets_of, splitmix64, unit_float
from sdm.traces.table_sets import check_counts, per_table, table_names_of, table_rows
from sdm.traces.trace import Trace


# Rows in a bucket (lo, hi] follow a count density ~ c^-2 (what Zipf(1) popularity gives); its
# mean, about 1.39 lo, matches the published buckets whose shares are printed with enough digits
# (e.g. (32,64]: .073 * 6.91 / .011 = 45.8 = 1.43 * 32). The open 32K+ bucket is capped at 64K.
def _bucket_bounds(b: int) -> tuple[int, int]:
    lo = int(BUCKET_LOWER[b])
    hi = int(BUCKET_UPPER[b]) if b < BUCKET_UPPER.size - 1 else 2 * lo
    return lo, hi


def _bucket_mean(table: ReuseTable, b: int) -> float:
    lo, hi = _bucket_bounds(b)
    u, l = table.unique_share[b], table.lookup_share[b]
    if u >= 0.004:  # printed with at least one significant digit: trust it
        return float(np.clip(l * table.mean_reuse / u, lo + 1, hi))
    if hi - lo <= 1:
        return float(hi)
    return float(np.clip(1.386 * lo, lo + 1, hi))  # mean of c^-2 on (lo, 2 lo]


def calibrated_counts(rng: np.random.Generator, num_lookups: int, table: ReuseTable = META_2021_REUSE) -> np.ndarray:
    """Read counts of the unique rows of one batch of `num_lookups` lookups, sorted descending.

    Per bucket: its lookup total is the published lookup share (exact up to rounding), its row count
    is that total over the bucket's mean count (so unique-row shares follow), and counts inside the
    bucket are drawn from c^-2 and then adjusted to hit the total exactly. Buckets that cannot hold
    a single row at this batch size (e.g. 32K+ below ~1.7M lookups) pass their lookups down.
    """
    L = int(num_lookups)
    if L <= 0:
        raise InvalidInputError(f"num_lookups must be > 0, got {num_lookups}")
    share = table.lookup_share / table.lookup_share.sum()
    nb = share.size
    target = np.floor(share * L).astype(np.int64)
    target[np.argsort(-(share * L - target))[: L - int(target.sum())]] += 1  # largest remainder
    parts = []
    carry = 0
    for b in range(nb - 1, -1, -1):  # top buckets first, so what they cannot hold moves down
        lo, hi = _bucket_bounds(b)
        tot = int(target[b]) + carry
        carry = 0
        if b == 0:
            parts.append(np.ones(tot, dtype=np.int64))
            continue
        n = int(round(tot / _bucket_mean(table, b)))
        n = min(n, tot // (lo + 1))
        if n <= 0:
            carry = tot
            continue
        if tot > n * hi:  # only for the capped open bucket
            n = -(-tot // hi)
        # c^-2 on (lo, hi] by inverse CDF, then rescale to the bucket total and fix rounding.
        a, z = 1.0 / (lo + 0.5), 1.0 / (hi + 0.5)
        c = np.rint(1.0 / (a - rng.random(n) * (a - z))).astype(np.int64)
        c = np.clip(np.rint(c * (tot / c.sum())).astype(np.int64), lo + 1, hi)
        diff = tot - int(c.sum())
        while diff != 0:
            room = np.flatnonzero(c < hi) if diff > 0 else np.flatnonzero(c > lo + 1)
            if room.size == 0:  # cannot happen given n's bounds; move the rest down to be safe
                carry = diff
                break
            pick = rng.choice(room, size=min(abs(diff), room.size), replace=False)
            c[pick] += 1 if diff > 0 else -1
            diff -= int(np.sign(diff)) * pick.size
        parts.append(c)
    counts = np.concatenate(parts)
    return np.sort(counts)[::-1].copy()


@njit(cache=True)
def _assign_tables(counts, budget, capacity):  # pragma: no cover - compiled
    """Greedy largest-first: each row (counts descending) goes to the table with the most lookup
    budget left that still has room for another unique row. A max-heap keyed by remaining budget
    makes it O(U log T)."""
    T = budget.size
    remaining = budget.copy()
    used = np.zeros(T, np.int64)
    heap = np.arange(T)
    size = T
    for s in range(T // 2 - 1, -1, -1):
        _sift(heap, remaining, s, size)
    table = np.full(counts.size, -1, np.int64)
    for i in range(counts.size):
        if size == 0:
            break
        t = heap[0]
        table[i] = t
        remaining[t] -= counts[i]
        used[t] += 1
        if used[t] >= capacity[t]:
            size -= 1
            heap[0] = heap[size]
        _sift(heap, remaining, 0, size)
    return table, remaining


@njit(cache=True)
def _sift(heap, key, i, size):  # pragma: no cover - compiled
    while True:
        l = 2 * i + 1
        best = i
        if l < size and key[heap[l]] > key[heap[best]]:
            best = l
        if l + 1 < size and key[heap[l + 1]] > key[heap[best]]:
            best = l + 1
        if best == i:
            return
        heap[i], heap[best] = heap[best], heap[i]
        i = best


def production_scrambler(num_rows: int, table: int, seed: int) -> Scrambler:
    """rank -> row id map of table `table` in `production_trace(seed=seed)`: the persistent
    (hot) row of rank k is `production_scrambler(...)(k)` in every batch."""
    return Scrambler(num_rows, seed * 1_000_003 + table)


def production_trace(
    num_rows: int | str | Sequence[int],
    num_batches: int,
    *,
    batch_size: int = 4096,
    pooling: float | Sequence[float] = 16.0,
    seed: int = 0,
    table_names: Sequence[str] | None = None,
    reuse: ReuseTable = META_2021_REUSE,
    persist_min_count: int = 3,
    coaccess_group: int = 0,
    coaccess_strength: float = 0.8,
    pooling_dist: str = "poisson",
) -> Trace:
    """Batches whose reuse statistics match `reuse` (default: Meta's published 2021 table).

    Per batch: (1) draw the read counts of its unique rows with `calibrated_counts` over all
    `batch_size * sum(pooling)` lookups, so the share of unique rows and of lookups per reuse bucket
    match the table; (2) deal rows, hottest first, to the table with the most lookup budget left
    (each table's budget is batch_size * pooling[t]; a table never gets more unique rows than it
    has); (3) within each table the k-th hottest row gets a fixed id for all batches if it is read
    at least `persist_min_count` times (hot rows persist, as in production), colder rows get fresh
    ids each batch; (4) shuffle the occurrences into the batch's samples.

    Co-access (`coaccess_group > 0`): rows of similar rank form groups of that many rows (scattered
    over the id space); with probability `coaccess_strength` an occurrence is placed next to the
    same-numbered occurrences of its group, so group members tend to share samples. Page-layout
    planners can then find them from a profile's co-access pairs.

    The calibration needs batches large enough to hold the top buckets (32K+ reads of a row needs
    about 1.7M lookups per batch); smaller batches move those lookups to lower buckets. A table
    too small for its share of unique rows gets its deficit as extra reads of its own rows.
    """
    rows = table_rows(num_rows)
    T = len(rows)
    check_counts(num_batches, batch_size)
    pools = np.array(per_table(pooling, T, "pooling"), dtype=float)
    if (pools < 0).any():
        raise InvalidInputError(f"pooling factors must be >= 0, got {pools.tolist()}")
    if coaccess_group < 0 or not 0 <= coaccess_strength <= 1:
        raise InvalidInputError("coaccess_group must be >= 0 and coaccess_strength in [0, 1]")
    B = int(batch_size)
    budget = np.rint(pools * B).astype(np.int64)
    L = int(budget.sum())
    if L <= 0:
        raise InvalidInputError("production_trace: pooling * batch_size gives no lookups")
    capacity = np.array(rows, dtype=np.int64)
    scramblers = [production_scrambler(rows[t], t, seed) for t in range(T)]
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    per_table_idx: list[list[np.ndarray]] = [[] for _ in range(T)]
    per_table_len: list[list[np.ndarray]] = [[] for _ in range(T)]
    for b in range(int(num_batches)):
        counts = calibrated_counts(rng, L, reuse)
        if counts.size > capacity.sum():
            raise InvalidInputError(
                f"production_trace: a batch needs {counts.size} unique rows but the tables hold "
                f"{int(capacity.sum())}; use larger tables or fewer lookups per batch"
            )
        table, remaining = _assign_tables(counts, budget, capacity)
        order = np.argsort(table, kind="stable")  # by table, hottest first within a table
        table, counts = table[order], counts[order]
        first = np.searchsorted(table, np.arange(T + 1))
        rank = np.arange(table.size) - first[table]
        # Tables out of unique rows but short of budget: extra reads of their own rows.
        for t in np.flatnonzero(remaining > 0):
            lo, hi = first[t], first[t + 1]
            if hi > lo:
                extra = int(remaining[t])
                w = counts[lo:hi] / counts[lo:hi].sum()
                add = np.floor(w * extra).astype(np.int64)
                add[: extra - int(add.sum())] += 1
                counts[lo:hi] += add
        ids = np.empty(table.size, dtype=np.int64)
        for t in range(T):
            lo, hi = first[t], first[t + 1]
            if hi == lo:
                continue
            r, c = rank[lo:hi], counts[lo:hi]
            persist = int(np.count_nonzero(c >= persist_min_count))
            cold = r >= persist
            ids_t = r.copy()
            n_cold_space = rows[t] - persist
            if cold.any():
                start = int(rng.integers(0, n_cold_space))
                ids_t[cold] = persist + (start + (r[cold] - persist)) % n_cold_space
            ids[lo:hi] = scramblers[t](ids_t)
        # occurrences, shuffled within each table (optionally grouped for co-access)
        occ_table = np.repeat(table, counts)
        occ_id = np.repeat(ids, counts)
        key = rng.random(occ_id.size)
        if coaccess_group > 0:
            occ_start = np.repeat(np.cumsum(counts) - counts, counts)
            j = np.arange(occ_id.size) - occ_start  # occurrence number within its row
            group = np.repeat(rank // coaccess_group, counts)
            h = splitmix64((occ_table.astype(np.uint64) << np.uint64(44))
                           ^ (group.astype(np.uint64) << np.uint64(20)) ^ j.astype(np.uint64)
                           ^ np.uint64(seed * 0x9E3779B1 + b))
            grouped = rng.random(occ_id.size) < coaccess_strength
            key = np.where(grouped, unit_float(h), key)
        order = np.argsort(occ_table + key)  # by table, then random key in [0, 1): one float sort
        occ_id = occ_id[order]
        per_t = np.bincount(occ_table, minlength=T)
        cut = offsets_of(per_t)
        for t in range(T):
            per_table_idx[t].append(occ_id[cut[t] : cut[t + 1]])
            per_table_len[t].append(bag_lengths(rng, B, int(per_t[t]), pooling_dist, total=True))
    idx = [np.concatenate(x) for x in per_table_idx]
    off = [offsets_of(np.concatenate(x)) for x in per_table_len]
    return Trace(table_names_of(table_names, T), rows, idx, off, B)
