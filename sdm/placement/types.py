"""The planner's stage interfaces and the plain data they pass between them.

Shaped like TorchRec's planner: enumerate candidate configurations, estimate each one, propose,
partition rows onto tiers and cards, report. Each stage is a `Protocol`, so any stage can be
replaced without touching the others (see `sdm.placement.planner` for the default pipeline).

Data passed between stages is deliberately plain: per-table hotness is two numpy arrays (tracked
row ids and their counts) plus untracked tail bands, so profiles from exact counts, from sketches,
or from a 100M-lookup trace all look the same to a policy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.core.checks import integer_array, real_number
from sdm.core.spec import TableSpec

# Tier names, fastest first. "scm" always holds every row (the backing copy); faster tiers hold
# copies of hot rows. Accelerator tiers exist once per card.
TIER_ORDER = ("sram", "lpddr", "dram", "scm")
ACCEL_TIERS = ("sram", "lpddr")


@dataclass(frozen=True)
class TierSpec:
    """One level of the hierarchy as the planner sees it (all cards of a kind pooled).

    `latency_s` is the mean latency of one access at the working queue depth; `iops` the
    sustained rate of accesses of `access_bytes` (for all devices of the tier together).
    """

    name: str
    capacity_bytes: int
    access_bytes: int
    latency_s: float
    iops: float
    bandwidth_bytes_per_s: float
    cards: int = 0                     # >0 for accelerator tiers: capacity is split evenly
    device: str = ""                   # preset/device name this came from, for reports

    def read_time_s(self, n_reads: float, row_bytes: int) -> float:
        """Modelled time to serve `n_reads` row reads of `row_bytes` each, issued in parallel."""
        if n_reads <= 0:
            return 0.0
        unit = max(self.access_bytes, 1)
        read_bytes = -(-int(row_bytes) // unit) * unit          # whole access units are read
        per_op_s = max(1.0 / self.iops, read_bytes / self.bandwidth_bytes_per_s)
        return self.latency_s + n_reads * per_op_s


@dataclass
class TableHotness:
    """How often each row of one table is read, in a form that scales to billions of rows.

    `ids` (sorted, unique int64) are the rows tracked exactly with `counts` (float64 lookups).
    The other `num_rows - len(ids)` rows (the untracked rows, in id order) form the tail, split
    into `bands` of uniform density, hottest band first: band b is `bands[b, 0]` rows sharing
    `bands[b, 1]` lookups evenly. Without bands the tail is one band of `tail_lookups` (0 when
    the profile is exact: untouched rows). A count-min/heavy-hitter profile maps onto this as
    heavy hitters + tail bands from its CDF, which bounds planner memory for huge tables.
    """

    name: str
    num_rows: int
    ids: np.ndarray
    counts: np.ndarray
    tail_lookups: float = 0.0
    num_samples: int = 0               # samples (bags) in the profiled trace, for pooling factor
    bands: np.ndarray | None = None    # [n_bands, 2]: (rows, lookups), decreasing density
    expected: bool = False             # counts are expected reads (Good-Turing, sketch, model),
                                       # not the exact reads of one trace; tail bands always are
    raw_counts: np.ndarray | None = None   # the sample's own counts when `counts` were adjusted

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=np.int64)
        self.counts = np.asarray(self.counts, dtype=np.float64)
        if self.ids.shape != self.counts.shape or self.ids.ndim != 1:
            raise InvalidInputError(f"table {self.name!r}: ids and counts must be 1-D arrays of one length")
        if self.ids.size:
            if self.ids[0] < 0 or self.ids[-1] >= self.num_rows:
                bad = int(self.ids[0] if self.ids[0] < 0 else self.ids[-1])
                raise InvalidInputError(f"table {self.name!r}: row id {bad} outside [0, {self.num_rows})")
            if np.any(np.diff(self.ids) <= 0):
                raise InvalidInputError(f"table {self.name!r}: hotness ids must be sorted and unique")
        if not np.all(np.isfinite(self.counts) & (self.counts >= 0)) or not self.tail_lookups >= 0:
            raise InvalidInputError(f"table {self.name!r}: counts must be finite and >= 0")
        untracked = self.num_rows - self.ids.size
        if self.bands is None:
            self.bands = np.array([[untracked, self.tail_lookups]], dtype=np.float64)
        else:
            self.bands = np.asarray(self.bands, dtype=np.float64).reshape(-1, 2)
            if np.any(self.bands < 0) or int(self.bands[:, 0].sum()) != untracked:
                raise InvalidInputError(
                    f"table {self.name!r}: tail bands must be >= 0 and cover the {untracked} untracked rows "
                    f"(they cover {int(self.bands[:, 0].sum())})")
            self.tail_lookups = float(self.bands[:, 1].sum())

    @classmethod
    def from_counts(cls, name: str, counts: np.ndarray, num_samples: int = 0) -> "TableHotness":
        """Exact per-row counts (length num_rows); keeps only rows read at least once."""
        counts = np.asarray(counts)
        ids = np.flatnonzero(counts)
        return cls(name, int(counts.size), ids, counts[ids].astype(np.float64), 0.0, num_samples)

    @classmethod
    def from_ids(cls, name: str, num_rows: int, row_ids: np.ndarray, num_samples: int = 0) -> "TableHotness":
        """Count a stream of row ids (np.unique, no per-row Python)."""
        row_ids = integer_array(row_ids, f"table {name!r}: row ids")
        if row_ids.size and (row_ids.min() < 0 or row_ids.max() >= num_rows):
            pos = int(np.flatnonzero((row_ids < 0) | (row_ids >= num_rows))[0])
            raise InvalidInputError(
                f"table {name!r}: row id {int(row_ids[pos])} at position {pos} outside [0, {num_rows})")
        ids, counts = np.unique(row_ids, return_counts=True)
        return cls(name, int(num_rows), ids, counts.astype(np.float64), 0.0, num_samples)

    @classmethod
    def zipf(cls, name: str, num_rows: int, lookups: float, alpha: float, tracked: int = 4096,
             num_samples: int = 0) -> "TableHotness":
        """Expected counts of a Zipf(alpha) table (rank = row id): the top `tracked` rows exactly,
        the rest as geometric bands of ranks [2^j, 2^(j+1)) (midpoint-rule integrals)."""
        alpha = real_number(alpha, f"table {name!r}: zipf alpha", minimum=0)
        lookups = real_number(lookups, f"table {name!r}: lookups", minimum=0)
        def integral(a, b):                      # sum of x^-alpha over ranks a..b-1, 1-based
            a, b = np.asarray(a, np.float64) - 0.5, np.asarray(b, np.float64) - 0.5
            if abs(alpha - 1.0) < 1e-9:
                return np.log(b / a)
            return (b ** (1 - alpha) - a ** (1 - alpha)) / (1 - alpha)
        k = min(int(tracked), int(num_rows))
        head = np.arange(1, k + 1, dtype=np.float64) ** -alpha
        edges = np.unique(np.r_[k + 1, np.minimum(2 ** np.arange(int(np.log2(max(k, 1))) + 1, 64), num_rows + 1)
                                .astype(np.float64), num_rows + 1])
        edges = edges[edges >= k + 1]
        band_sum = integral(edges[:-1], edges[1:]) if edges.size > 1 else np.zeros(0)
        norm = head.sum() + band_sum.sum()
        bands = np.stack([np.diff(edges), band_sum / norm * lookups], axis=1) if edges.size > 1 else None
        return cls(name, int(num_rows), np.arange(k), head / norm * lookups, 0.0, num_samples, bands, True)

    def good_turing(self, max_count: int = 8) -> "TableHotness":
        """Counts adjusted for predicting *future* reads from a finite sample (Good-Turing).

        A row read k times in the sample is expected to be read k* = (k+1) N(k+1) / N(k) times in
        a sample of the same size (N(k): rows read exactly k times), for k <= max_count where those
        frequencies of frequencies are well estimated; the mass N(1) moves to the rows never seen
        (the tail). Raw counts predict a replay of the same trace exactly but overstate what rows
        picked as hot will get next time; these do not (tests/test_placement_predict.py).
        """
        if self.tail_lookups > 0 or self.counts.size == 0:
            return self                    # already a sketch-style profile, or nothing to adjust
        k = np.rint(self.counts).astype(np.int64)
        nk = np.bincount(k, minlength=max_count + 2).astype(np.float64)
        adj = self.counts.copy()
        small = k <= max_count
        ks = k[small]
        ok = nk[ks + 1] > 0
        star = np.where(ok, (ks + 1) * nk[np.minimum(ks + 1, nk.size - 1)] / np.maximum(nk[ks], 1), ks)
        adj[small] = star
        unseen = float(nk[1]) if self.tail_rows > 0 else 0.0
        # keep the total: scale adjusted counts so that adjusted + unseen mass = observed lookups
        total = float(self.counts.sum())
        adj *= (total - unseen) / max(float(adj.sum()), 1e-300)
        return TableHotness(self.name, self.num_rows, self.ids, adj, unseen, self.num_samples, expected=True,
                            raw_counts=self.counts)

    @property
    def total_lookups(self) -> float:
        return float(self.counts.sum()) + self.tail_lookups

    @property
    def tail_rows(self) -> int:
        return int(self.num_rows - self.ids.size)

    @property
    def band_rows(self) -> np.ndarray:
        return self.bands[:, 0].astype(np.int64)

    @property
    def band_count_per_row(self) -> np.ndarray:
        """Lookups per row in each tail band."""
        r = self.bands[:, 0]
        return np.divide(self.bands[:, 1], r, out=np.zeros_like(r), where=r > 0)

    @property
    def band_bounds(self) -> np.ndarray:
        """Band b covers untracked positions [bounds[b], bounds[b + 1]) (untracked rows in id order)."""
        return np.r_[0, np.cumsum(self.band_rows)]

    def untracked_position(self, row_ids: np.ndarray) -> np.ndarray:
        """Rank of a row among the untracked rows (valid for untracked rows and range ends)."""
        row_ids = np.asarray(row_ids, dtype=np.int64)
        return row_ids - np.searchsorted(self.ids, row_ids, side="left")

    @property
    def memory_bytes(self) -> int:
        return int(self.ids.nbytes + self.counts.nbytes + self.bands.nbytes)


@dataclass
class Candidate:
    """One configuration to evaluate: hardware tiers and knobs of the plan (enumerate stage)."""

    name: str
    tiers: tuple[TierSpec, ...]
    dram_cache_fraction: float = 0.0     # share of host DRAM used as a dynamic cache, not pinned rows
    dram_cache_policy: str = "lru"
    hardware: Any = None                 # the HardwareSpec it came from, if any
    knobs: dict = field(default_factory=dict)


@dataclass
class Estimate:
    """What a candidate is predicted to do (estimate stage)."""

    hit_rate: dict[str, float]           # tier -> share of lookups served there (incl. "dram_cache")
    latency_s: float                     # modelled mean embedding time per request
    p99_latency_s: float
    qps_per_server: float
    watts: float                         # per server under load
    capex_usd: float                     # per server
    detail: dict = field(default_factory=dict)


# ---- the planner's stages (sdm.placement.planner.Planner takes one object of each) --------------------
class Enumerator(Protocol):
    """Candidate configurations of `hardware` (tiers with capacities and device models) for a model
    of `model_bytes`; default `sdm.placement.enumerator.HardwareEnumerator`."""

    def enumerate(self, hardware: Any, model_bytes: int) -> Sequence[Candidate]: ...


class Partitioner(Protocol):
    """Spreads the rows a proposer gave one accelerator tier over its cards: appends (tier, card, rows)
    to `per_table[name].pinned` for each item (name, RowSet, row_bytes, lookups per row or per row of a
    uniform band); returns the names left out (only when `allow_split` is False). Default
    `sdm.placement.card_partition.CardPartitioner`."""

    def partition(self, tier: TierSpec, items: list[tuple], per_table: dict, allow_split: bool = True
                  ) -> list[str]: ...


class Proposer(Protocol):
    """Which rows of which table go to which tier (the placement policy; `--policy`). Registry:
    `sdm.placement.proposers.PROPOSERS`. Returns a `sdm.placement.assignment.Placement`."""

    name: str

    def propose(self, tables: Sequence[TableSpec], hotness: Sequence[TableHotness],
                tiers: Sequence[TierSpec], partitioner: Partitioner | None = None) -> Any: ...


class Estimator(Protocol):
    """Predicted hit rates, latency, QPS, watts and $ of one candidate's placement; default
    `sdm.placement.objectives.DefaultEstimator`."""

    def estimate(self, candidate: Candidate, placement: Any, tables: Sequence[TableSpec],
                 hotness: Sequence[TableHotness]) -> Estimate: ...


class Objective(Protocol):
    """Keeps one scored (candidate, placement, estimate), or raises InfeasibleError saying why none
    fits (`--objective`; sdm.placement.objectives.objective)."""

    name: str

    def select(self, scored: Sequence[tuple[Candidate, Any, Estimate]]) -> tuple[Candidate, Any, Estimate]: ...


class PageLayout(Protocol):
    """SCM page layout per table: {table: LayoutChoice} from a trace (None: no trace, id order);
    default `sdm.placement.layout_stage.IdOrderLayout`, or `CoAccessLayout` (`--page-layout`)."""

    def layout(self, tables: Sequence[TableSpec], trace: Any, hardware: Any) -> dict: ...


class Reporter(Protocol):
    """Text a person reads for a plan; default `sdm.placement.report.TextReporter`."""

    def report(self, plan: Any) -> str: ...
