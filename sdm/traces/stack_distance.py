"""`stack_distance_trace`: temporal locality through an LRU stack-distance model (as in the DLRM
reference's synthetic trace generator), replayed by a compiled kernel.

The replay is numba: each access moves a row to the top of the stack, so access i depends on every
access before it (inherently sequential); a Fenwick tree keeps each step O(log n).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numba import njit

from sdm.core.errors import InvalidInputError
from sdm.traces.sampling import Scrambler, bag_lengths, offsets_of, zipf_ranks
from sdm.traces.table_sets import check_counts, per_table, table_names_of, table_rows
from sdm.traces.trace import Trace


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
    check_counts(num_samples, batch_size)
    pools, betas, colds = (per_table(v, T, w) for v, w in ((pooling, "pooling"), (beta, "beta"),
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
    return Trace(table_names_of(table_names, T), rows, idx, off, batch_size)
