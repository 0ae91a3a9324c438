"""Random building blocks shared by the generators: Zipf ranks, id scrambling, bag lengths, hashing.

Everything works on whole arrays; nothing allocates memory proportional to a table's row count, so
40M-row (Criteo Terabyte) tables cost no more than small ones.
"""
from __future__ import annotations

import math

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.core.checks import real_number

# Ranks below this get an exact Zipf probability table; the tail uses the integral of x^-alpha
# (midpoint rule: relative error ~ alpha (alpha + 1) / (24 k^2) < 1e-7 per rank beyond 4096, far
# below sampling noise). A small head keeps the binary search in cache.
_EXACT_HEAD = 1 << 12


def zipf_ranks(rng: np.random.Generator, n: int, num_rows: int, alpha: float) -> np.ndarray:
    """`n` 0-based ranks in [0, num_rows) with P(rank = k) proportional to (k + 1) ** -alpha.

    The exact head and one "tail" outcome are drawn with Walker's alias method (O(1) per draw;
    a binary search per draw is several times slower); tail draws invert the integral.
    """
    if num_rows <= 0:
        raise InvalidInputError(f"zipf: num_rows must be > 0, got {num_rows}")
    alpha = real_number(alpha, "zipf: alpha", minimum=0)
    K = min(num_rows, _EXACT_HEAD)
    head_pmf = np.arange(1, K + 1, dtype=float) ** -alpha
    a, b = K + 0.5, num_rows + 0.5
    if num_rows > K:
        tail = math.log(b / a) if alpha == 1 else (b ** (1 - alpha) - a ** (1 - alpha)) / (1 - alpha)
    else:
        tail = 0.0
    prob, alias = _alias_table(np.append(head_pmf, tail))
    j = rng.integers(0, K + 1, n)
    ranks = np.where(rng.random(n) < prob[j], j, alias[j])
    in_tail = np.flatnonzero(ranks == K)
    if in_tail.size:
        v = rng.random(in_tail.size) * tail
        x = a * np.exp(v) if alpha == 1 else (a ** (1 - alpha) + v * (1 - alpha)) ** (1 / (1 - alpha))
        # x in [K+0.5, N+0.5) -> 1-based k = floor(x + 0.5) in [K+1, N] -> 0-based k - 1
        ranks[in_tail] = np.floor(x + 0.5).astype(np.int64) - 1
    return np.clip(ranks, 0, num_rows - 1)


def _alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias tables for sampling index i with probability weights[i] / sum."""
    m = weights.size
    p = weights * (m / weights.sum())
    prob = np.ones(m)
    alias = np.arange(m)
    small = [i for i in range(m) if p[i] < 1.0]
    large = [i for i in range(m) if p[i] >= 1.0]
    while small and large:  # O(m) once per call; m is at most 4097
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = p[s], g
        p[g] -= 1.0 - p[s]
        (small if p[g] < 1.0 else large).append(g)
    return prob, alias


class Scrambler:
    """A bijection of [0, num_rows): rank -> row id, `(a * rank + c) mod num_rows` with gcd(a, n) = 1.

    Spreads hot ranks over the id space (real tables are hashed, so hot rows are not the low ids)
    in O(1) memory, where a stored permutation of a 40M-row table would take 320 MB.
    """

    def __init__(self, num_rows: int, seed: int):
        self.num_rows = int(num_rows)
        rng = np.random.default_rng(seed)
        n = self.num_rows
        a = 1
        if n > 2:
            # Near the golden ratio of n: consecutive ranks land far apart.
            a = int(n * 0.6180339887) | 1
            a += int(rng.integers(0, max(1, n // 16)))
            while math.gcd(a, n) != 1:
                a += 1
        self.a = a % n if n > 1 else 0
        self.c = int(rng.integers(0, n)) if n > 1 else 0

    def __call__(self, ranks: np.ndarray) -> np.ndarray:
        r = np.asarray(ranks, dtype=np.int64)
        if self.num_rows == 1:
            return np.zeros_like(r)
        # a < 2^31 for tables below 2^31 rows and rank < n, so a * rank fits in int64.
        return (r * self.a + self.c) % self.num_rows


def bag_lengths(rng: np.random.Generator, num_samples: int, total_or_mean: float, dist: str,
                *, total: bool = False) -> np.ndarray:
    """Lookups per sample.

    dist="fixed": every bag gets floor(mean) or ceil(mean) (the mean is kept); "poisson": independent
    Poisson(mean) bag sizes. With total=True the first argument is the exact number of lookups to
    split over the samples (fixed: as even as possible; poisson: multinomial, i.e. Poisson given
    the total).
    """
    if num_samples <= 0:
        raise InvalidInputError(f"num_samples must be > 0, got {num_samples}")
    if dist not in ("fixed", "poisson"):
        raise InvalidInputError(f"pooling distribution must be 'fixed' or 'poisson', got {dist!r}")
    if total:
        L = int(total_or_mean)
        if dist == "fixed":
            lens = np.full(num_samples, L // num_samples, dtype=np.int64)
            lens[rng.permutation(num_samples)[: L % num_samples]] += 1
            return lens
        return rng.multinomial(L, np.full(num_samples, 1.0 / num_samples)).astype(np.int64)
    mean = float(total_or_mean)
    if mean < 0:
        raise InvalidInputError(f"pooling factor must be >= 0, got {mean}")
    if dist == "fixed":
        base = math.floor(mean)
        return base + (rng.random(num_samples) < mean - base).astype(np.int64)
    return rng.poisson(mean, num_samples).astype(np.int64)


def offsets_of(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of each uint64 (SplitMix64 finalizer), vectorized."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def unit_float(h: np.ndarray) -> np.ndarray:
    """uint64 hash -> float in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
