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


# Mean reads of a row in each bucket, when a file gives no num_lookups / num_unique: the bucket's
# upper bound for (0,1] and (1,2], else the midpoint; 32K+ as 48K. Only sets the mean reuse.
_BUCKET_MID = np.r_[1.0, 2.0, (BUCKET_LOWER[2:16] + BUCKET_UPPER[2:16]) / 2.0, 1.5 * (1 << 15)]


def load_reuse(path) -> ReuseTable:
    """A published reuse table from JSON: `unique_share` and `lookup_share` (17 numbers each, over the
    buckets (0,1], (1,2], (2,4], ..., (16K,32K], 32K+), optionally `buckets` (those labels, checked),
    `num_lookups` and `num_unique` (else the mean reuse is estimated from the bucket midpoints) and
    `source`. Shares are normalised to sum to 1. InvalidInputError names what is wrong."""
    import json
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"reuse file {str(p)!r} does not exist")
    try:
        doc = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"reuse file {str(p)!r} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError(f"reuse file {str(p)!r}: expected an object with unique_share and lookup_share")
    if "buckets" in doc and list(doc["buckets"]) != BUCKET_LABELS:
        raise InvalidInputError(f"reuse file {str(p)!r}: buckets must be {BUCKET_LABELS}, got {doc['buckets']}")
    shares = []
    for key in ("unique_share", "lookup_share"):
        v = doc.get(key)
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            a = np.zeros(0)
        if a.shape != (BUCKET_UPPER.size,) or not np.all(np.isfinite(a)) or (a < 0).any() or a.sum() <= 0:
            raise InvalidInputError(f"reuse file {str(p)!r}: {key} must be {BUCKET_UPPER.size} numbers >= 0 "
                                    f"(buckets {BUCKET_LABELS[0]} .. {BUCKET_LABELS[-1]}), not all 0; got {v!r}")
        shares.append(a / a.sum())
    u, lk = shares
    if "num_lookups" in doc or "num_unique" in doc:
        try:
            n_l, n_u = int(doc["num_lookups"]), int(doc["num_unique"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInputError(f"reuse file {str(p)!r}: give both num_lookups and num_unique as integers") from None
        if not 0 < n_u <= n_l:
            raise InvalidInputError(f"reuse file {str(p)!r}: need 0 < num_unique <= num_lookups, got {n_u}, {n_l}")
    else:
        n_u = 1_000_000
        n_l = int(round(n_u * max(1.0, float((u * _BUCKET_MID).sum()))))
    return ReuseTable(u, lk, n_l, n_u, str(doc.get("source", p.name)))


def min_batch_lookups(table: ReuseTable) -> int:
    """Lookups a batch needs for every bucket of `table` to be reachable: a bucket (lo, hi] holding
    a share x of lookups needs a row read more than lo times, so x * lookups >= lo + 1. Smaller
    batches push those lookups into lower buckets (what `production_trace` then does)."""
    x = table.lookup_share
    need = np.where(x > 0, (BUCKET_LOWER + 1) / np.maximum(x, 1e-300), 0.0)
    return int(np.ceil(need.max()))
