"""Synthetic trace generators, deterministic under a seed and vectorized.

- `zipf_trace`: independent Zipf(alpha) lookups per table (no temporal structure beyond popularity).
- `stack_distance_trace`: temporal locality through an LRU stack-distance model (as in the DLRM
  reference's synthetic trace generator), replayed by a compiled O(log n) kernel.
- `production_trace`: batches whose reuse statistics match Meta's published table (REFERENCE.md,
  "Data"), with hot rows that persist across batches and optional co-access groups.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numba import njit

from sdm.core.errors import InvalidInputError
from sdm.core.checks import whole_number
from sdm.traces.reuse import BUCKET_LOWER, BUCKET_UPPER, META_2021_REUSE, ReuseTable
from sdm.traces.sampling import Scrambler, bag_lengths, offsets_of, splitmix64, unit_float, zipf_ranks
from sdm.traces.trace import Trace

# Criteo table sizes, REFERENCE.md "Data" (Criteo Kaggle Display Advertising, 26 categorical
# features; Criteo Terabyte with MLPerf's 40M-row cap, dim 128).
CRITEO_KAGGLE_ROWS = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
    5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)
CRITEO_TERABYTE_ROWS = (
    39884406, 39043, 17289, 7420, 20263, 3, 7120, 1543, 63, 38532951, 2953546, 403346, 10, 2208,
    11938, 155, 4, 976, 14, 39979771, 25641295, 39664984, 585935, 12972, 108, 36,
)
TABLE_SETS = {"criteo-kaggle": CRITEO_KAGGLE_ROWS, "criteo-terabyte": CRITEO_TERABYTE_ROWS}


def table_rows(spec: int | str | Sequence[int]) -> list[int]:
    """Row counts from a name ('criteo-kaggle', 'criteo-terabyte'), 'N,N,...', an int or a list."""
    if isinstance(spec, str):
        if spec in TABLE_SETS:
            return list(TABLE_SETS[spec])
        try:
            rows = [int(x) for x in spec.split(",") if x.strip()]
        except ValueError:
            raise InvalidInputError(
                f"table sizes {spec!r}: expected one of {sorted(TABLE_SETS)} or comma-separated integers"
            ) from None
    elif isinstance(spec, (int, np.integer)):
        rows = [int(spec)]
    else:
        rows = [int(x) for x in spec]
    if not rows or min(rows) <= 0:
        raise InvalidInputError(f"table sizes must be positive integers, got {spec!r}")
    return rows


def _per_table(value, T: int, what: str) -> list:
    if np.ndim(value) == 0:
        return [value] * T
    value = list(value)
    if len(value) != T:
        raise InvalidInputError(f"{what}: got {len(value)} values for {T} tables")
    return value


def _names(table_names, T: int) -> list[str]:
    names = [f"t{t}" for t in range(T)] if table_names is None else [str(n) for n in table_names]
    if len(names) != T:
        raise InvalidInputError(f"got {len(names)} table names for {T} tables")
    return names


def _check_counts(num_samples: int, batch_size: int) -> None:
    whole_number(num_samples, "num_samples", minimum=1)
    whole_number(batch_size, "batch_size", minimum=1)


# ------------------------------------------------------------------------------------------ Zipf
def zipf_trace(
    num_rows: int | str | Sequence[int],
    num_samples: int,
    *,
    batch_size: int = 1024,
    pooling: float | Sequence[float] = 1.0,
    alpha: float | Sequence[float] = 1.05,
    seed: int = 0,
    table_names: Sequence[str] | None = None,
    pooling_dist: str = "fixed",
    scramble: bool = True,
) -> Trace:
    """Each lookup of table t independently picks rank k with probability ~ (k+1)^-alpha[t].

    With `scramble`, ranks map to row ids through a per-table bijection, so hot rows are spread
    over the table as hashed ids are in production.
    """
    rows = table_rows(num_rows)
    T = len(rows)
    _check_counts(num_samples, batch_size)
    pools, alphas = _per_table(pooling, T, "pooling"), _per_table(alpha, T, "alpha")
    ss = np.random.SeedSequence(seed)
    idx, off = [], []
    for t, child in enumerate(ss.spawn(T)):
        rng = np.random.default_rng(child)
        lens = bag_lengths(rng, int(num_samples), float(pools[t]), pooling_dist)
        ranks = zipf_ranks(rng, int(lens.sum()), rows[t], float(alphas[t]))
        idx.append(Scrambler(rows[t], seed * 1_000_003 + t)(ranks) if scramble else ranks)
        off.append(offsets_of(lens))
    return Trace(_names(table_names, T), rows, idx, off, batch_size)


# -------------------------------------------------------------------------------- stack distance
@njit(cache=True)
def _stack_replay(depths, cold, new_rows):  # pragma: no cover - compiled
    """Replay an LRU stack: access i reuses the row at stack depth depths[i] (0 = most recent) or,
    if cold[i] or the stack is shallower than that, touches the next never-seen row.

    The stack is kept implicitly: a Fenwick tree over time marks, for every row seen so far, the
    time of its last access; the row at depth d is the (M - d)-th marked time. O(log n) per access.
    """
    n = depths.size
    tree = np.zeros(n + 1, np.int32)
    row_at = np.empty(n, np.int64)
    out = np.empty(n, np.int64)
    top = 1
    while top * 2 <= n:
        top *= 2
    stack_size = 0
    next_new = 0
    max_new = new_rows.size
    for i in range(n):
        d = depths[i]
        fresh = (cold[i] or d >= stack_size) and next_new < max_new
        if fresh:
            row = new_rows[next_new]
            next_new += 1
            stack_size += 1
        else:
            if stack_size == 0:
                row = new_rows[0]
            else:
                d = d % stack_size
                k = stack_size - d  # k-th marked time, counting from the oldest
                pos = 0
                step = top
                while step > 0:
                    nxt = pos + step
                    if nxt <= n and tree[nxt] < k:
                        pos = nxt
                        k -= tree[nxt]
                    step //= 2
                # pos + 1 is the 1-based time of that access; unmark it
                row = row_at[pos]
                j = pos + 1
                while j <= n:
                    tree[j] -= 1
                    j += j & (-j)
        out[i] = row
        row_at[i] = row
        j = i + 1
        while j <= n:
            tree[j] += 1
            j += j & (-j)
    return out


def stack_distance_trace(
    num_rows: int | str | Sequence[int],
    num_samples: int,
    *,
    batch_size: int = 1024,
    pooling: float | Sequence[float] = 1.0,
    beta: float | Sequence[float] = 1.0,
    cold_share: float | Sequence[float] = 0.05,
    distance_pmf: np.ndarray | None = None,
    seed: int = 0,
    table_names: Sequence[str] | None = None,
    pooling_dist: str = "fixed",
) -> Trace:
    """Temporal locality through stack distances, per table.

    Each access is a first touch of a new row with probability `cold_share`; otherwise it re-reads
    the row at LRU stack depth d, with P(d) ~ (d+1)^-beta (or `distance_pmf[d]` if given, e.g. a
    histogram measured on a real trace). So an LRU cache of c rows hits about P(d < c) of reuses:
    the miss-ratio curve is set by the distance distribution, as in Mattson's model.
    """
    rows = table_rows(num_rows)
    T = len(rows)
    _check_counts(num_samples, batch_size)
    pools, betas, colds = (_per_table(v, T, w) for v, w in ((pooling, "pooling"), (beta, "beta"),
                                                             (cold_share, "cold_share")))
    if distance_pmf is not None:
        pmf = np.asarray(distance_pmf, dtype=float)
        if pmf.ndim != 1 or pmf.size == 0 or (pmf < 0).any() or pmf.sum() <= 0:
            raise InvalidInputError("distance_pmf must be a 1-D array of non-negative weights with a positive sum")
        cdf = np.cumsum(pmf / pmf.sum())
    for c in colds:
        if not 0 <= float(c) <= 1:
            raise InvalidInputError(f"cold_share must be in [0, 1], got {c}")
    ss = np.random.SeedSequence(seed)
    idx, off = [], []
    for t, child in enumerate(ss.spawn(T)):
        rng = np.random.default_rng(child)
        lens = bag_lengths(rng, int(num_samples), float(pools[t]), pooling_dist)
        n = int(lens.sum())
        if distance_pmf is None:
            depths = zipf_ranks(rng, n, rows[t], float(betas[t]))
        else:
            depths = np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64)
        cold = rng.random(n) < float(colds[t])
        new_rows = Scrambler(rows[t], seed * 1_000_003 + t)(np.arange(min(n, rows[t]) or 1, dtype=np.int64))
        idx.append(_stack_replay(depths, cold, new_rows))
        off.append(offsets_of(lens))
    return Trace(_names(table_names, T), rows, idx, off, batch_size)


# --------------------------------------------------------------------------- production-like
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
    _check_counts(num_batches, batch_size)
    pools = np.array(_per_table(pooling, T, "pooling"), dtype=float)
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
    return Trace(_names(table_names, T), rows, idx, off, B)
