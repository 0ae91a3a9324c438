"""Reuse statistics of a batch: how many times each row is read, bucketed as Meta publishes them.

The published table (REFERENCE.md, "Data": Meta's embedding-lookup dataset, 2021,
`fbgemm_t856_bs65536.pt`: 887,017,990 lookups over 128,435,723 unique rows) gives, per reuse bucket
(0,1], (1,2], (2,4], ..., (16K,32K], 32K+, the share of unique rows and the share of all lookups
that those rows receive. The production-like generator is calibrated to it and tests compare
generated batches with it through `reuse_table`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdm.core.errors import InvalidInputError

# Bucket k holds rows read c times with LOWER[k] < c <= UPPER[k]; the last bucket is open (32K+).
BUCKET_UPPER = np.array([1 << k for k in range(16)] + [np.iinfo(np.int64).max], dtype=np.int64)
BUCKET_LOWER = np.concatenate([[0], BUCKET_UPPER[:-1]]).astype(np.int64)
BUCKET_LABELS = ["(0,1]", "(1,2]", "(2,4]", "(4,8]", "(8,16]", "(16,32]", "(32,64]", "(64,128]", "(128,256]",
                 "(256,512]", "(512,1K]", "(1K,2K]", "(2K,4K]", "(4K,8K]", "(8K,16K]", "(16K,32K]", "32K+"]


@dataclass(frozen=True)
class ReuseTable:
    """Share of unique rows and share of lookups per reuse bucket (each sums to ~1)."""

    unique_share: np.ndarray
    lookup_share: np.ndarray
    num_lookups: int
    num_unique: int
    source: str = ""

    @property
    def mean_reuse(self) -> float:
        return self.num_lookups / max(1, self.num_unique)

    def max_abs_diff(self, other: "ReuseTable") -> tuple[float, float]:
        """Largest absolute difference of (unique shares, lookup shares) over buckets."""
        return (
            float(np.abs(self.unique_share - other.unique_share).max()),
            float(np.abs(self.lookup_share - other.lookup_share).max()),
        )

    def format(self) -> str:
        w = 10
        lines = ["reuse     " + "".join(f"{b:>{w}}" for b in BUCKET_LABELS)]
        lines.append("unique    " + "".join(f"{x:>{w}.3f}" for x in self.unique_share))
        lines.append("lookups   " + "".join(f"{x:>{w}.3f}" for x in self.lookup_share))
        lines.append(f"{self.num_lookups} lookups over {self.num_unique} unique rows (mean reuse {self.mean_reuse:.2f})")
        return "\n".join(lines)


# Published figures, REFERENCE.md "Data" (facebookresearch/dlrm_datasets, 2021 file). Shares printed
# with three decimals, so the unique-row shares of buckets above 512 read .000 although they hold rows.
META_2021_REUSE = ReuseTable(
    unique_share=np.array(
        [.473, .152, .139, .112, .072, .032, .011, .005, .002, .001, 0, 0, 0, 0, 0, 0, 0], dtype=float
    ),
    lookup_share=np.array(
        [.069, .044, .068, .101, .121, .104, .073, .058, .052, .050, .049, .048, .048, .043, .031, .023, .019],
        dtype=float,
    ),
    num_lookups=887_017_990,
    num_unique=128_435_723,
    source="REFERENCE.md Data: Meta dlrm_datasets fbgemm_t856_bs65536.pt (2021) reuse table",
)


def bucket_of_count(counts: np.ndarray) -> np.ndarray:
    """Reuse bucket of each count (counts must be >= 1)."""
    return np.searchsorted(BUCKET_UPPER, np.asarray(counts), side="left")


def reuse_table(ids: np.ndarray) -> ReuseTable:
    """Reuse table of one batch of (global) row ids: shares of unique rows and lookups per bucket."""
    ids = np.asarray(ids)
    if ids.size == 0:
        raise InvalidInputError("reuse_table needs at least one lookup")
    if ids.min() < 0:
        raise InvalidInputError(f"reuse_table: negative id at position {int(np.argmin(ids))}")
    _, counts = np.unique(ids, return_counts=True)
    return reuse_table_of_counts(counts)


def reuse_table_of_counts(counts: np.ndarray) -> ReuseTable:
    """Reuse table from per-row read counts (zeros ignored)."""
    counts = np.asarray(counts)
    counts = counts[counts > 0].astype(np.int64)
    b = bucket_of_count(counts)
    nb = BUCKET_UPPER.size
    rows = np.bincount(b, minlength=nb).astype(float)
    lookups = np.bincount(b, weights=counts, minlength=nb).astype(float)
    return ReuseTable(rows / rows.sum(), lookups / lookups.sum(), int(counts.sum()), int(counts.size))
