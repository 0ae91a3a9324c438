"""Synthetic trace generators, deterministic under a seed and vectorized.

- `zipf_trace` (here): independent Zipf(alpha) lookups per table (no temporal structure beyond popularity).
- `stack_distance_trace` (sdm.traces.stack_distance): temporal locality through an LRU stack-distance
  model (as in the DLRM reference's synthetic trace generator), replayed by a compiled O(log n) kernel.
- `production_trace` (sdm.traces.production): batches whose reuse statistics match Meta's published
  table (REFERENCE.md, "Data"), with hot rows that persist across batches and optional co-access groups.

Those two need numba (their loops are sequential: an LRU stack, a greedy heap); this module does
not, so a Zipf trace costs no JIT import.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sdm.traces.sampling import Scrambler, bag_lengths, offsets_of, zipf_ranks
from sdm.traces.table_sets import CRITEO_KAGGLE_ROWS, CRITEO_TERABYTE_ROWS, check_counts, per_table, table_names_of, table_rows
from sdm.traces.trace import Trace

__all__ = ["CRITEO_KAGGLE_ROWS", "CRITEO_TERABYTE_ROWS", "table_rows", "zipf_trace"]


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
    check_counts(num_samples, batch_size)
    pools, alphas = per_table(pooling, T, "pooling"), per_table(alpha, T, "alpha")
    ss = np.random.SeedSequence(seed)
    idx, off = [], []
    for t, child in enumerate(ss.spawn(T)):
        rng = np.random.default_rng(child)
        lens = bag_lengths(rng, int(num_samples), float(pools[t]), pooling_dist)
        ranks = zipf_ranks(rng, int(lens.sum()), rows[t], float(alphas[t]))
        idx.append(Scrambler(rows[t], seed * 1_000_003 + t)(ranks) if scramble else ranks)
        off.append(offsets_of(lens))
    return Trace(table_names_of(table_names, T), rows, idx, off, batch_size)
