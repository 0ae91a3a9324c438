"""One table's hotness profile: how often each row is read, how skewed, how pooled, what co-occurs.

A `TableProfile` counts exactly (one uint32 per row, from `np.bincount`) when that fits the memory
budget, and otherwise keeps a count-min sketch + heavy-hitter set + HyperLogLog whose error is
stated (`count_error_bound`, `eps`, `delta`, `unique_relative_error`). Either way its stored memory
is `memory_bytes`, bounded by the budget plus the small fixed parts (CDF grid, co-access arrays).
`profile_table` builds one from a table's ids and bag offsets; `sdm.placement.profile.Profile`
holds one per table and is the file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.core.checks import integer_array, real_number, whole_number
from sdm.traces.trace import check_bags
from sdm.placement.sketch import CountMinSketch, HeavyHitters, HyperLogLog

# "top x of rows" grid for the stored CDF: log-spaced from one row in 10^8 up to all rows.
CDF_GRID = np.unique(np.concatenate([np.logspace(-8, 0, 161), [0.001, 0.01, 0.05, 0.1, 0.2, 0.5]]))


@dataclass
class PoolingStats:
    """Lookups per sample (bag size) of one table."""

    mean: float
    std: float
    min: int
    p50: float
    p99: float
    max: int

    @classmethod
    def of(cls, offsets: np.ndarray) -> "PoolingStats":
        lens = np.diff(np.asarray(offsets))
        if lens.size == 0:
            return cls(0.0, 0.0, 0, 0.0, 0.0, 0)
        p50, p99 = np.percentile(lens, [50, 99])
        return cls(float(lens.mean()), float(lens.std()), int(lens.min()), float(p50), float(p99), int(lens.max()))


@dataclass
class TableProfile:
    name: str
    num_rows: int
    num_lookups: int
    num_samples: int
    unique_rows: int
    pooling: PoolingStats
    cdf_x: np.ndarray  # fraction of the table's rows, hottest first
    cdf_y: np.ndarray  # share of lookups those rows receive
    hh_rows: np.ndarray  # hottest rows, descending count (all touched rows up to `heavy_hitters`)
    hh_counts: np.ndarray
    coaccess_rows: np.ndarray  # [H] hot rows with co-access information
    coaccess_partners: np.ndarray  # [H, m] rows most often in the same sample, -1 padded
    coaccess_counts: np.ndarray  # [H, m] co-occurrences: (hot occurrence, partner occurrence) pairs
    #                              in one sample, i.e. samples shared when bags hold no duplicates
    coaccess_samples: int = 0  # samples whose bags were scanned for pairs
    counts: np.ndarray | None = None  # exact mode: reads per row (uint32)
    sketch: CountMinSketch | None = None  # sketch mode
    unique_relative_error: float = 0.0
    memory_budget_bytes: int = 0
    extra: dict = field(default_factory=dict)

    # --------------------------------------------------------------------------------- queries
    @property
    def exact(self) -> bool:
        return self.counts is not None

    @property
    def eps(self) -> float:
        return 0.0 if self.exact else self.sketch.eps

    @property
    def delta(self) -> float:
        return 0.0 if self.exact else self.sketch.delta

    @property
    def count_error_bound(self) -> float:
        """Per-row count estimates exceed the truth by at most this many lookups (w.p. 1 - delta)."""
        return 0.0 if self.exact else self.sketch.eps * self.num_lookups

    @property
    def pooling_factor(self) -> float:
        return self.pooling.mean

    @property
    def memory_bytes(self) -> int:
        arrays = [self.cdf_x, self.cdf_y, self.hh_rows, self.hh_counts, self.coaccess_rows,
                  self.coaccess_partners, self.coaccess_counts]
        n = sum(int(a.nbytes) for a in arrays)
        if self.exact:
            n += int(self.counts.nbytes)
        else:
            n += self.sketch.memory_bytes + int(self.extra.get("hll_bytes", 0))
        return n

    def count(self, rows: np.ndarray) -> np.ndarray:
        """Reads of each row: exact, or a count-min estimate (never below the truth)."""
        rows = self._check_rows(rows)
        return self.counts[rows].astype(np.int64) if self.exact else self.sketch.query(rows)

    def hot_rows(self, k: int) -> np.ndarray:
        """The k most-read rows, hottest first (ties by id). In sketch mode at most the heavy-hitter
        set is known, so fewer than k may come back."""
        k = whole_number(k, f"table {self.name!r}: hot_rows(k)")
        if not self.exact or k <= self.hh_rows.size:
            return self.hh_rows[:k].copy()
        return _top_k(self.counts, min(k, self.num_rows))

    def top_share(self, x: float) -> float:
        """Share of lookups that go to the hottest fraction x of the table's rows.

        Exact mode computes it from the counts; sketch mode interpolates the stored CDF (count-min
        upper estimates inside the heavy-hitter set, a linear lower bound beyond it).
        """
        if not 0 <= real_number(x, f"table {self.name!r}: top_share(x)") <= 1:
            raise InvalidInputError(f"table {self.name!r}: top_share(x) needs 0 <= x <= 1, got {x}")
        if self.num_lookups == 0:
            return 0.0
        if self.exact:
            k = int(math.floor(x * self.num_rows))
            if k <= 0:
                return 0.0
            c = self.counts[self.counts > 0].astype(np.int64)
            top = np.partition(c, c.size - k)[c.size - k :] if k < c.size else c
            return float(top.sum() / self.num_lookups)
        return float(np.interp(x, self.cdf_x, self.cdf_y))

    def cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """(fraction of rows, share of lookups) on a log-spaced grid, hottest rows first."""
        return self.cdf_x, self.cdf_y

    def coaccess(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(partners, co-occurrence counts) of a hot row, most frequent first (ties by id); empty if
        the row is not among `coaccess_rows`."""
        hit = np.flatnonzero(self.coaccess_rows == int(row))
        if hit.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        p, c = self.coaccess_partners[hit[0]], self.coaccess_counts[hit[0]]
        keep = p >= 0
        return p[keep], c[keep]

    def _check_rows(self, rows) -> np.ndarray:
        rows = integer_array(rows, f"table {self.name!r}: rows")
        bad = np.flatnonzero((rows < 0) | (rows >= self.num_rows))
        if bad.size:
            raise InvalidInputError(
                f"table {self.name!r}: row {int(rows[bad[0]])} at position {int(bad[0])} is out of range [0, {self.num_rows})"
            )
        return rows

    def summary(self) -> dict:
        return {
            "table": self.name,
            "rows": self.num_rows,
            "lookups": self.num_lookups,
            "unique": self.unique_rows,
            "pooling": round(self.pooling.mean, 3),
            "top1%": round(self.top_share(0.01), 4),
            "top10%": round(self.top_share(0.10), 4),
            "mode": "exact" if self.exact else "sketch",
            "memory_bytes": self.memory_bytes,
            "count_error_bound": self.count_error_bound,
        }


# ------------------------------------------------------------------------------------ building
def _top_k(counts: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k largest counts, descending, ties broken by smaller id (deterministic).

    Works on the non-zero counts only: selection over a mostly-zero array is slow in numpy."""
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    c = counts.astype(np.int64, copy=False)
    nz = np.flatnonzero(c)
    cn = c[nz]
    if k >= nz.size:
        top = nz[np.lexsort((nz, -cn))]
        if k > nz.size:  # then zero-count rows, in id order
            zeros = np.flatnonzero(c == 0)[: k - nz.size]
            top = np.concatenate([top, zeros])
        return top
    thr = np.partition(cn, cn.size - k)[cn.size - k]  # k-th largest value
    above = nz[cn > thr]
    at = nz[cn == thr][: k - above.size]  # in id order
    top = np.concatenate([above, at])
    return top[np.lexsort((top, -c[top]))]


def _cdf_from_sorted(sorted_desc: np.ndarray, num_rows: int, num_lookups: int) -> np.ndarray:
    cum = np.concatenate([[0], np.cumsum(sorted_desc, dtype=np.int64)])
    k = np.minimum(np.floor(CDF_GRID * num_rows).astype(np.int64), sorted_desc.size)
    return cum[k] / max(1, num_lookups)


def _coaccess(stream: np.ndarray, offsets: np.ndarray, hot: np.ndarray, partners: int, max_pairs: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """For each hot row, the `partners` rows that share the most samples with it.

    Pairs come from every occurrence of a hot row and the other ids of its sample; if that is more
    than `max_pairs`, a random subset of occurrences is used (counts then cover a sample of bags).
    Memory is O(max_pairs) while building and O(H * partners) kept.
    """
    H = hot.size
    out_p = np.full((H, partners), -1, dtype=np.int64)
    out_c = np.zeros((H, partners), dtype=np.int64)
    if H == 0 or stream.size == 0:
        return out_p, out_c, 0
    stream = np.asarray(stream)
    hot_sorted = np.sort(hot)
    pos_in_sorted = np.searchsorted(hot_sorted, stream)
    is_hot = hot_sorted[np.minimum(pos_in_sorted, H - 1)] == stream
    occ = np.flatnonzero(is_hot)
    lens = np.diff(offsets)
    sample_of = np.searchsorted(offsets, occ, side="right") - 1
    pair_n = lens[sample_of] - 1
    keep = pair_n > 0
    occ, sample_of, pair_n = occ[keep], sample_of[keep], pair_n[keep]
    if occ.size == 0:
        return out_p, out_c, 0
    if pair_n.sum() > max_pairs:  # subsample occurrences to stay within the pair budget
        frac = max_pairs / float(pair_n.sum())
        pick = rng.random(occ.size) < frac
        occ, sample_of, pair_n = occ[pick], sample_of[pick], pair_n[pick]
    bag_n = pair_n + 1
    starts = offsets[sample_of]
    out_start = np.concatenate([[0], np.cumsum(bag_n)[:-1]])
    total = int(bag_n.sum())
    pos = np.repeat(starts - out_start, bag_n) + np.arange(total)
    owner = np.repeat(np.arange(occ.size), bag_n)
    not_self = pos != occ[owner]
    pos, owner = pos[not_self], owner[not_self]
    a = np.searchsorted(hot_sorted, stream[occ[owner]])  # index of the hot row in hot_sorted
    b = stream[pos]
    keep = b != stream[occ[owner]]  # a row repeated in its own bag is not a partner
    a, b = a[keep], b[keep]
    if a.size == 0:
        return out_p, out_c, int(np.unique(sample_of).size)
    key = a.astype(np.int64) * (int(b.max()) + 1) + b
    uk, cnt = np.unique(key, return_counts=True)
    ua, ub = uk // (int(b.max()) + 1), uk % (int(b.max()) + 1)
    order = np.lexsort((ub, -cnt, ua))
    ua, ub, cnt = ua[order], ub[order], cnt[order]
    first = np.searchsorted(ua, np.arange(H))
    rank = np.arange(ua.size) - first[ua]
    sel = rank < partners
    # rows of hot_sorted -> rows in the order of `hot`
    slot_of_sorted = np.argsort(hot)
    out_p[slot_of_sorted[ua[sel]], rank[sel]] = ub[sel]
    out_c[slot_of_sorted[ua[sel]], rank[sel]] = cnt[sel]
    return out_p, out_c, int(np.unique(sample_of).size)


def profile_table(
    name: str,
    num_rows: int,
    stream: np.ndarray,
    offsets: np.ndarray,
    *,
    memory_budget_bytes: int = 32 << 20,
    eps: float | None = None,
    delta: float = 1e-3,
    heavy_hitters: int = 4096,
    coaccess_rows: int = 256,
    coaccess_partners: int = 8,
    max_pairs: int = 500_000,
    chunk_lookups: int = 1 << 22,
    seed: int = 0,
    progress=None,
) -> TableProfile:
    """Profile one table's lookups (`stream` in time order, bag `offsets`)."""
    num_rows = whole_number(num_rows, f"table {name!r}: num_rows", minimum=1)
    memory_budget_bytes = whole_number(memory_budget_bytes, f"table {name!r}: memory_budget_bytes")
    if not 0 < real_number(delta, f"table {name!r}: delta") < 1:
        raise InvalidInputError(f"table {name!r}: delta must be in (0, 1), got {delta}")
    # ids are range-checked below (chunk by chunk in sketch mode, where the stream may be on disk)
    stream, offsets = check_bags(name, stream, offsets, num_rows, check_ids=False)
    L = int(stream.size)
    rng = np.random.default_rng(seed)
    exact = 4 * num_rows <= memory_budget_bytes
    if exact:
        stream = np.asarray(stream)
        if L and (stream.min() < 0 or stream.max() >= num_rows):
            bad = int(np.flatnonzero((stream < 0) | (stream >= num_rows))[0])
            raise InvalidInputError(
                f"table {name!r}: row {int(stream[bad])} at position {bad} is out of range [0, {num_rows})"
            )
        counts64 = np.bincount(stream, minlength=num_rows)
        counts = counts64.astype(np.uint32) if counts64.max(initial=0) < 2**32 else counts64
        nz = np.flatnonzero(counts64)
        unique = int(nz.size)
        sorted_desc = np.sort(counts64[nz])[::-1]
        hh_rows = _top_k(counts64, min(heavy_hitters, unique))
        hh_counts = counts64[hh_rows]
        cdf_y = _cdf_from_sorted(sorted_desc, num_rows, L)
        sketch, unique_err, extra = None, 0.0, {}
        if progress is not None:
            progress.update(L)
    else:
        sketch = (CountMinSketch.for_error(eps, delta, seed) if eps is not None
                  else CountMinSketch.for_memory(memory_budget_bytes - heavy_hitters * 16 - (1 << 14), delta, seed))
        hh = HeavyHitters(heavy_hitters, sketch)
        hll = HyperLogLog(14)
        for s in range(0, L, chunk_lookups):
            chunk = np.asarray(stream[s : s + chunk_lookups])
            if chunk.size and (chunk.min() < 0 or chunk.max() >= num_rows):
                bad = int(np.flatnonzero((chunk < 0) | (chunk >= num_rows))[0])
                raise InvalidInputError(
                    f"table {name!r}: row {int(chunk[bad])} at position {s + bad} is out of range [0, {num_rows})"
                )
            hh.add(chunk)
            hll.add(chunk)
            if progress is not None:
                progress.update(chunk.size)
        hh_rows, hh_counts = hh.rows, hh.counts()
        unique = int(round(min(hll.estimate(), num_rows, L)))
        unique = max(unique, int(hh_rows.size))
        # CDF: heavy hitters' estimates (upper), then a straight line to (unique/num_rows, 1), which
        # lies below the true concave CDF, so the stored curve brackets the truth from both sides.
        k_hh = hh_rows.size
        y_hh = np.minimum(np.cumsum(hh_counts) / max(1, L), 1.0)
        kx = np.floor(CDF_GRID * num_rows).astype(np.int64)
        y_at_k = np.concatenate([[0.0], y_hh])[np.minimum(kx, k_hh)]
        y_k = y_hh[-1] if k_hh else 0.0
        slope = (1.0 - y_k) / max(1, unique - k_hh)
        cdf_y = np.where(kx <= k_hh, y_at_k, np.minimum(1.0, y_k + (kx - k_hh) * slope))
        cdf_y = np.maximum.accumulate(cdf_y)
        counts, unique_err = None, hll.relative_error
        extra = {"hll_bytes": hll.memory_bytes}
    hot = hh_rows[: int(coaccess_rows)]
    partners, pcounts, scanned = _coaccess(stream, np.asarray(offsets), hot, int(coaccess_partners), int(max_pairs), rng)
    return TableProfile(
        name=name, num_rows=int(num_rows), num_lookups=L, num_samples=int(len(offsets) - 1),
        unique_rows=unique, pooling=PoolingStats.of(offsets), cdf_x=CDF_GRID.copy(), cdf_y=cdf_y,
        hh_rows=hh_rows.astype(np.int64), hh_counts=hh_counts.astype(np.int64),
        coaccess_rows=hot.astype(np.int64), coaccess_partners=partners, coaccess_counts=pcounts,
        coaccess_samples=scanned, counts=counts, sketch=sketch, unique_relative_error=unique_err,
        memory_budget_bytes=int(memory_budget_bytes), extra=extra,
    )


# ------------------------------------------------------------------------------------ profile
