"""The host DRAM cache's predicted hits (the estimate stage's cache model, sdm.placement.objectives).

Rows pinned in a tier are hit whenever read, so their share is the profile's counts.
The host DRAM cache in front of SCM (dynamic, LRU by default) is predicted with Che's
characteristic-time approximation over the lookups that reach it: find T with
    sum_i bytes_i * (1 - exp(-k_i T / N)) = cache_bytes
then row i with k_i reads hits (k_i - 1) * (1 - exp(-k_i T / N)) times (its first read is always a
miss: the correction that makes the estimate match a replay of a finite trace). Rows are grouped by
(table, count), so this costs a few thousand exp() per bisection step, not one per row.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from sdm.core.spec import TableSpec
from sdm.placement.assignment import Placement, rows_by_band
from sdm.placement.types import TableHotness


# ---- DRAM cache hit rate ------------------------------------------------------------------------
def che_lru_hits(k: np.ndarray, m: np.ndarray, b: np.ndarray, cache_bytes: float,
                 batches: float | None = None, expected: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expected LRU hits and expected bytes resident, per group (k reads per row, m rows, b bytes).

    Vectorized over groups; bisection on the characteristic time T. Without `batches` every
    lookup is its own step (what sdm.cachesim replays): a row is resident if read within the last
    T lookups, 1 - exp(-k T / N).
    With `batches` (the profiled trace cut into that many batches), time runs in batches, as in
    the runtime: a batch reads each missing row once and fills the cache after, so a row's reads
    within one batch all hit or all miss. A row's reads fall in a batch as Poisson(k / B), so it
    is read in a given batch with p = 1 - exp(-k / B), in d = B p distinct batches, and its
    reads outside the first such batch hit if it is resident:
    - cache >= one batch's distinct rows: resident if read within the last T >= 1 batches,
      1 - exp(-(k / B) T) = 1 - (1 - p)^T. (Not 1 - exp(-p T): that treats a row read in every
      batch as often evicted, and under-predicted the runtime by 2-4 points with T of ~2 batches.)
    - cache < one batch's distinct rows (the runtime's misses flood it): each batch keeps the
      rows it hit (protected) and admits misses until the set is full; the rest bypass. The
      runtime picks the admitted misses by row id, not by heat, and the same ids win every batch,
      so a fixed share theta of rows (hotness-blind) ever gets in, each resident while read in
      consecutive batches: resident = theta p, with theta p summed = the cache.
    Groups marked `expected` hold expected counts (Good-Turing, sketch tails): their reads are
    taken as Poisson, so a row expected 0.6 times still sometimes repeats (E[(X - 1)+] > 0).
    """
    k, m, b = (np.asarray(x, dtype=np.float64) for x in (k, m, b))
    expected = np.zeros(k.shape, bool) if expected is None else np.asarray(expected, bool)
    n = float((k * m).sum())
    if n <= 0 or cache_bytes <= 0:
        return np.zeros_like(k), np.zeros_like(k)
    kb = k / batches if batches else np.zeros_like(k)
    # reads in a row's first batch (or its first read): exact k -> k/d; Poisson(k) -> E over draws
    first = np.where(kb > 0, kb / -np.expm1(-np.where(kb > 0, kb, 1.0)), 1.0)    # reads per occupied batch
    exact_repeat = k - np.where(kb > 0, k / np.maximum(-np.expm1(-kb) * (batches or 1), 1e-300), 1.0)
    poisson_repeat = k + np.expm1(-k) * first                                     # k - P(X > 0) * first
    repeat_hits = m * np.maximum(np.where(expected, poisson_repeat, exact_repeat), 0.0)
    occupying = m * b * np.where(expected, -np.expm1(-k), k > 0)
    if occupying.sum() <= cache_bytes:
        return repeat_hits, occupying                    # everything read fits: only first reads miss
    rate = kb if batches else k / n                      # reads per step (batch or lookup)
    t_min = 0.0
    if batches:
        per_batch = m * b * -np.expm1(-kb)               # expected bytes of one batch's distinct rows
        if per_batch.sum() > cache_bytes:                # flooded: a fixed, hotness-blind share gets in
            theta = cache_bytes / float(per_batch.sum())
            inside = theta * -np.expm1(-kb)
            return repeat_hits * inside, m * b * inside
        t_min = 1.0                                      # the cache holds at least the last batch

    def occupancy(t: float) -> float:
        return float((m * b * -np.expm1(-rate * t)).sum())

    lo, hi = t_min, t_min + 1.0
    while occupancy(hi) < cache_bytes:
        hi *= 4.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if occupancy(mid) < cache_bytes:
            lo = mid
        else:
            hi = mid
    t = 0.5 * (lo + hi)
    inside = -np.expm1(-rate * t)
    return repeat_hits * inside, m * b * inside


def static_cache_hits(k, m, b, cache_bytes) -> tuple[np.ndarray, np.ndarray]:
    """A cache that keeps the densest rows once read: hits = (k - 1) for rows that fit."""
    k, m, b = (np.asarray(x, dtype=np.float64) for x in (k, m, b))
    order = np.argsort(-(k / b), kind="stable")
    rows_fit = np.clip((cache_bytes - np.r_[0, np.cumsum((m * b)[order])[:-1]]) / b[order], 0, m[order])
    hits, occ = np.zeros_like(k), np.zeros_like(k)
    hits[order] = rows_fit * np.maximum(k[order] - 1, 0)
    occ[order] = rows_fit * b[order]
    return hits, occ


# Good-Turing adjusts counts up to this many reads (TableHotness.good_turing's default max_count);
# rows read more often are modelled with their raw counts.
GT_MAX_COUNT: int = TableHotness.good_turing.__defaults__[0]


def _mixture_atoms(mu: np.ndarray, max_points: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Rates and row counts of the smallest mixture of Poisson rates with moments mu[0..2n-1]
    (Gauss quadrature from moments: roots of the orthogonal polynomial, Vandermonde weights),
    for the largest n <= max_points whose moments give real rates >= 0 and weights >= 0."""
    for n in range(min(max_points, mu.size // 2), 0, -1):
        m = mu[:2 * n]
        if not np.all(np.isfinite(m)) or m[0] <= 0 or m[1] <= 0:
            continue
        if n == 1:
            return np.array([m[1] / m[0]]), np.array([m[0]])
        scale = m[1] / m[0]                       # rates of order 1: a well conditioned system
        ms = m / scale ** np.arange(2 * n)
        hankel = np.array([[ms[i + j] for j in range(n)] for i in range(n)])
        try:
            coef = np.linalg.solve(hankel, -ms[n:2 * n])
        except np.linalg.LinAlgError:
            continue
        x = np.roots(np.r_[1.0, coef[::-1]])
        if np.any(np.abs(x.imag) > 1e-9 * np.abs(x).max()) or np.any(x.real < 0):
            continue
        x = np.sort(x.real)
        try:
            w = np.linalg.solve(np.vander(x, n, increasing=True).T, ms[:n])
        except np.linalg.LinAlgError:
            continue
        if np.all(w >= 0) and np.all(np.diff(x) > 0):
            return x * scale, w
    return np.zeros(0), np.zeros(0)


def _good_turing_groups(hot: TableHotness, pinned: np.ndarray, band_left: np.ndarray):
    """(reads per row, rows, expected?) of a Good-Turing table's unpinned rows, for the cache model.

    A dynamic cache's hits come from rows read more than once, so they depend on how reads spread
    over rows, not only on each row's mean. Rows read often (raw count > GT_MAX_COUNT) keep their
    raw counts, which carry that spread. Rows read k <= GT_MAX_COUNT times (k = 0: never seen, the
    tail bands) are a mixture: a few were unlucky warm rows, most are cold. At one Poisson rate k*
    per class the warm ones' repeats vanish (a row seen once or never gets ~0 cache hits, where a
    replay gets several points). Good-Turing gives every moment of a class's future rate from the
    frequencies of frequencies N(j):  E[rate^j | k] = (k+1)(k+2)...(k+j) N(k+j) / N(k);
    each class becomes the few-point mixture of Poisson rates with its first moments (up to 3
    points, fewer where the N(j) run out), scaled to carry the lookups Good-Turing gave the class.
    """
    raw = hot.raw_counts[~pinned]
    few = raw <= GT_MAX_COUNT
    v_raw, m_raw = np.unique(raw[~few], return_counts=True)           # exact reads: raw counts
    kr = np.rint(raw[few]).astype(np.int64)
    n_of = np.bincount(np.rint(hot.raw_counts).astype(np.int64), minlength=GT_MAX_COUNT + 8).astype(np.float64)
    n_of[0] = float(hot.bands[:, 0].sum())                             # rows never seen: the tail
    # per class k: unpinned rows and the lookups Good-Turing gives them (k = 0: the tail bands)
    rows_k = np.bincount(kr, minlength=GT_MAX_COUNT + 1).astype(np.float64)
    lookups_k = np.bincount(kr, weights=hot.counts[~pinned][few], minlength=GT_MAX_COUNT + 1)
    rows_k[0] = float(np.maximum(band_left, 0).sum())
    lookups_k[0] = float((np.maximum(band_left, 0) * hot.band_count_per_row).sum())
    vals, mult = [v_raw.astype(np.float64)], [m_raw.astype(np.float64)]
    for k in np.flatnonzero((rows_k > 0) & (lookups_k > 0)):         # at most GT_MAX_COUNT + 1 classes
        j = np.arange(6)
        rising = np.array([np.prod(np.arange(k + 1, k + 1 + jj, dtype=np.float64)) for jj in j])
        mu = rows_k[k] * rising * n_of[k + j] / max(n_of[k], 1.0)
        rate, rows = _mixture_atoms(mu)
        if rate.size == 0 or float((rate * rows).sum()) <= 0:
            rate, rows = np.array([lookups_k[k] / rows_k[k]]), np.array([rows_k[k]])
        rate = rate * lookups_k[k] / float((rate * rows).sum())         # the class's Good-Turing lookups
        counts, rows_with = _poisson_realized(rate, rows)
        vals.append(counts); mult.append(rows_with)
    return np.concatenate(vals), np.concatenate(mult), np.zeros(sum(v.size for v in vals), bool)


def _poisson_realized(rate: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows at Poisson `rate`s as the expected number of rows read exactly j = 1, 2, ... times.

    A cache sees realized counts: the rows that happen to repeat in a sample are the ones it
    keeps. Handing the cache model a Poisson mean instead (its hit ratio taken at the mean rate)
    loses that correlation and predicted under half the replayed hits here."""
    top = float(rate.max(initial=0.0))
    j = np.arange(1, int(math.ceil(top + 8.0 * math.sqrt(top) + 8.0)) + 1, dtype=np.float64)
    log_fact = np.cumsum(np.log(j))
    with np.errstate(divide="ignore"):
        logp = j[None, :] * np.log(rate)[:, None] - rate[:, None] - log_fact[None, :]
    expected_rows = (rows[:, None] * np.exp(logp)).sum(axis=0)
    return j, expected_rows


def residual_groups(tables: Sequence[TableSpec], hotness: Sequence[TableHotness], placement: Placement):
    """(table index, reads per row, rows, bytes per row, expected?) of rows left to SCM, by count."""
    tix, ks, ms, bs, ex = [], [], [], [], []
    for i, (spec, hot) in enumerate(zip(tables, hotness)):
        tp = placement.tables[spec.name]
        if tp.tracked_pinned is not None:                      # computed once by the policy
            pinned, band_left = tp.tracked_pinned, hot.band_rows - tp.band_rows_pinned
        else:
            pinned = np.zeros(hot.ids.size, bool)
            band_left = hot.band_rows.copy()
            for _tier, _card, rows in tp.pinned:
                m, per_band = rows_by_band(rows, hot)
                pinned |= m
                band_left -= per_band
        if hot.raw_counts is not None:
            vals, mult, is_exp = _good_turing_groups(hot, pinned, band_left)
        else:
            vals, mult = np.unique(hot.counts[~pinned], return_counts=True)
            is_exp = np.r_[np.full(vals.size, hot.expected), np.ones(hot.bands.shape[0], bool)]
            vals, mult = np.r_[vals, hot.band_count_per_row], np.r_[mult, np.maximum(band_left, 0)]
        keep = (vals > 0) & (mult > 0)
        tix.append(np.full(int(keep.sum()), i)); ks.append(vals[keep]); ms.append(mult[keep])
        bs.append(np.full(int(keep.sum()), spec.row_bytes)); ex.append(is_exp[keep])
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
    return cat(tix).astype(np.int64), cat(ks), cat(ms), cat(bs), cat(ex).astype(bool)
