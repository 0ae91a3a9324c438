"""Bounded-memory counting for tables too large for one counter per row.

- `CountMinSketch` (Cormode & Muthukrishnan 2005): depth d rows of width w counters. An estimate is
  never below the true count and, with probability >= 1 - delta, at most eps * N above it, where
  N is the number of lookups counted, eps = e / w and delta = exp(-d).
- `HeavyHitters`: the K rows with the largest sketch estimates, kept as candidates chunk by chunk
  (a row evicted from the set comes back with its full count, because the sketch never forgets).
- `HyperLogLog` (Flajolet et al. 2007): distinct-row estimate, standard error 1.04 / sqrt(2^p).
All updates take whole arrays of ids.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.traces.sampling import splitmix64

_SALT = 0x5BD1E9955BD1E995
_MASK64 = (1 << 64) - 1


class CountMinSketch:
    def __init__(self, width_log2: int, depth: int, seed: int = 0, table: np.ndarray | None = None,
                 total: int = 0):
        if not 1 <= int(width_log2) <= 32 or int(depth) < 1:
            raise InvalidInputError(f"count-min sketch needs 1 <= width_log2 <= 32 and depth >= 1, "
                                    f"got {width_log2}, {depth}")
        self.width_log2, self.depth, self.seed = int(width_log2), int(depth), int(seed)
        w = 1 << self.width_log2
        self.table = np.zeros((self.depth, w), dtype=np.uint32) if table is None else table
        self.total = int(total)

    @classmethod
    def for_error(cls, eps: float, delta: float, seed: int = 0) -> "CountMinSketch":
        """Smallest sketch with error <= eps * N with probability >= 1 - delta."""
        if not 0 < eps < 1 or not 0 < delta < 1:
            raise InvalidInputError(f"eps and delta must be in (0, 1), got {eps}, {delta}")
        return cls(max(1, math.ceil(math.log2(math.e / eps))), math.ceil(math.log(1 / delta)), seed)

    @classmethod
    def for_memory(cls, memory_bytes: int, delta: float, seed: int = 0) -> "CountMinSketch":
        """The widest sketch of depth ln(1/delta) that fits in `memory_bytes`."""
        depth = math.ceil(math.log(1 / delta))
        width_log2 = int(math.floor(math.log2(max(2, memory_bytes // (4 * depth)))))
        return cls(max(1, min(32, width_log2)), depth, seed)

    @property
    def width(self) -> int:
        return 1 << self.width_log2

    @property
    def eps(self) -> float:
        return math.e / self.width

    @property
    def delta(self) -> float:
        return math.exp(-self.depth)

    @property
    def memory_bytes(self) -> int:
        return int(self.table.nbytes)

    def _hashes(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Two independent 64-bit hashes; row d uses h1 + d * h2 (Kirsch & Mitzenmacher 2006), which
        # keeps count-min's guarantees while hashing each id twice instead of `depth` times.
        x = np.asarray(ids, dtype=np.int64).view(np.uint64)
        h1 = splitmix64(x ^ np.uint64((_SALT * (1 + self.seed)) & _MASK64))
        h2 = splitmix64(x ^ np.uint64((_SALT * (7919 + self.seed)) & _MASK64)) | np.uint64(1)
        return h1, h2

    def _bucket(self, h1: np.ndarray, h2: np.ndarray, d: int) -> np.ndarray:
        h = h1 + h2 * np.uint64(d) if d else h1
        return (h >> np.uint64(64 - self.width_log2)).astype(np.int64)

    def add(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        h1, h2 = self._hashes(ids)
        for d in range(self.depth):
            counts = np.bincount(self._bucket(h1, h2, d), minlength=self.width)
            # saturate instead of wrapping: an estimate must never fall below the true count
            self.table[d] = np.minimum(self.table[d].astype(np.int64) + counts, np.iinfo(np.uint32).max)
        self.total += int(ids.size)

    def query(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        h1, h2 = self._hashes(ids)
        est = np.full(ids.size, np.iinfo(np.int64).max, dtype=np.int64)
        for d in range(self.depth):
            np.minimum(est, self.table[d][self._bucket(h1, h2, d)], out=est)
        return est

    @property
    def error_bound(self) -> float:
        """Additive error (lookups) that an estimate stays under with probability 1 - delta."""
        return self.eps * self.total


class HeavyHitters:
    """Top-`k` rows by count-min estimate, maintained over chunks of ids."""

    def __init__(self, k: int, sketch: CountMinSketch):
        if int(k) < 1:
            raise InvalidInputError(f"heavy hitters: k must be >= 1, got {k}")
        self.k, self.sketch = int(k), sketch
        self.rows = np.empty(0, dtype=np.int64)

    def add(self, ids: np.ndarray) -> None:
        self.sketch.add(ids)
        cand = sorted_unique(np.concatenate([self.rows, np.asarray(ids, dtype=np.int64)]))
        est = self.sketch.query(cand)
        if cand.size > self.k:
            keep = np.argpartition(-est, self.k - 1)[: self.k]
            cand, est = cand[keep], est[keep]
        order = np.lexsort((cand, -est))  # by estimate descending, ties by id: deterministic
        self.rows = cand[order]

    def counts(self) -> np.ndarray:
        return self.sketch.query(self.rows)


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """np.unique by sort + mask: several times faster than numpy 2's hash-based unique on ids."""
    a = np.sort(a)
    if a.size:
        a = a[np.concatenate([[True], a[1:] != a[:-1]])]
    return a


@dataclass
class HyperLogLog:
    p: int = 14
    registers: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not 4 <= self.p <= 18:
            raise InvalidInputError(f"HyperLogLog precision p must be in [4, 18], got {self.p}")
        if self.registers is None:
            self.registers = np.zeros(1 << self.p, dtype=np.uint8)

    def add(self, ids: np.ndarray) -> None:
        h = splitmix64(np.asarray(ids, dtype=np.int64).view(np.uint64) ^ np.uint64(0x2545F4914F6CDD1D))
        idx = (h >> np.uint64(64 - self.p)).astype(np.int64)
        low = (h & np.uint64(0xFFFFFFFF)).astype(np.float64)
        bit_length = np.frexp(low)[1]  # 0 for w == 0
        rho = (33 - bit_length).astype(np.uint8)  # position of the leftmost 1 in 32 bits, 33 if none
        np.maximum.at(self.registers, idx, rho)

    def estimate(self) -> float:
        m = self.registers.size
        alpha = 0.7213 / (1 + 1.079 / m)
        e = alpha * m * m / np.sum(np.ldexp(1.0, -self.registers.astype(np.int64)))
        zeros = int(np.count_nonzero(self.registers == 0))
        if e <= 2.5 * m and zeros:
            e = m * math.log(m / zeros)  # linear counting for small cardinalities
        return float(e)

    @property
    def relative_error(self) -> float:
        return 1.04 / math.sqrt(self.registers.size)

    @property
    def memory_bytes(self) -> int:
        return int(self.registers.nbytes)
