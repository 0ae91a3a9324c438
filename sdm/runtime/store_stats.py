"""Counters of an EmbeddingStore: per table and tier hits, rows, bytes, measured and modelled time,
and a latency histogram of lookup calls. Thread-safe; `snapshot()` returns plain dicts.

What each figure counts (stats that do not flatter): `hit_rate` = share of lookup indices, repeats
in a batch included; `row_share` = share of distinct rows (each row once a batch) per tier as the
lookup thread found them (a row the prefetcher brought in counts as DRAM there); `scm_by_thread` =
rows, pages and bytes read from SCM by the lookup thread and by the prefetch thread, and their sum
per distinct row looked up (what a cache-policy comparison should use).
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

import numpy as np

TIERS = ("accel", "dram", "scm")
# log-spaced latency buckets from 1 us to 10 s (8 per decade): the upper edges of each bucket
LATENCY_EDGES_S = np.logspace(-6, 1, 57)
_RECENT = 1 << 16  # exact percentiles over the most recent lookups


@dataclass
class TierCounters:
    hits: int = 0          # lookup indices served from this tier
    rows: int = 0          # distinct rows read from it
    reads: int = 0         # device operations (SCM: pages; others: rows)
    bytes: int = 0
    measured_s: float = 0.0
    modelled_s: float = 0.0
    admitted: int = 0      # SCM: rows cached because they shared a fetched page (not asked for)

    def add(self, other: "TierCounters") -> None:
        # field by field: dataclasses.asdict deep-copies and costs more than a cached lookup
        self.hits += other.hits
        self.rows += other.rows
        self.reads += other.reads
        self.bytes += other.bytes
        self.measured_s += other.measured_s
        self.modelled_s += other.modelled_s
        self.admitted += other.admitted


@dataclass
class LookupRecord:
    """What one lookup (or one prefetch) did, per tier."""

    tiers: dict[str, TierCounters] = field(default_factory=lambda: {t: TierCounters() for t in TIERS})
    modelled_s: float = 0.0   # modelled latency of the whole lookup


@dataclass
class _TableStats:
    lookups: int = 0
    indices: int = 0
    tiers: dict = field(default_factory=lambda: {t: TierCounters() for t in TIERS})
    prefetch: TierCounters = field(default_factory=TierCounters)
    hist: np.ndarray = field(default_factory=lambda: np.zeros(len(LATENCY_EDGES_S) + 1, np.int64))
    recent: np.ndarray = field(default_factory=lambda: np.zeros(_RECENT, np.float64))
    recent_modelled: np.ndarray = field(default_factory=lambda: np.zeros(_RECENT, np.float64))
    measured_s: float = 0.0
    modelled_s: float = 0.0


class StoreStats:
    def __init__(self, tables: list[str]):
        self._lock = threading.Lock()
        self._names = list(tables)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._t = {n: _TableStats() for n in self._names}

    def record(self, table: str, rec: LookupRecord, n_indices: int, measured_s: float) -> None:
        bucket = int(np.searchsorted(LATENCY_EDGES_S, measured_s))
        with self._lock:
            self._add(self._t[table], rec, n_indices, measured_s, bucket)

    def record_many(self, records) -> None:
        """`record` for each (table, rec, n_indices, measured_s) of a table-batched lookup: one lock,
        one histogram search for all (a fixed cost per table otherwise)."""
        records = list(records)
        buckets = np.searchsorted(LATENCY_EDGES_S, [r[3] for r in records]).tolist()
        with self._lock:
            for (table, rec, n_indices, measured_s), bucket in zip(records, buckets):
                self._add(self._t[table], rec, n_indices, measured_s, bucket)

    @staticmethod
    def _add(s: "_TableStats", rec: LookupRecord, n_indices: int, measured_s: float, bucket: int) -> None:
        """One lookup into table stats `s` (the caller holds the lock)."""
        i = s.lookups % _RECENT
        s.lookups += 1
        s.indices += n_indices
        for k, c in rec.tiers.items():
            s.tiers[k].add(c)
        s.hist[bucket] += 1
        s.recent[i] = measured_s
        s.recent_modelled[i] = rec.modelled_s
        s.measured_s += measured_s
        s.modelled_s += rec.modelled_s

    def record_prefetch(self, table: str, scm: TierCounters) -> None:
        with self._lock:
            self._t[table].prefetch.add(scm)

    @staticmethod
    def _summary(s: _TableStats) -> dict:
        k = min(s.lookups, _RECENT)
        lat = s.recent[:k]
        mod = s.recent_modelled[:k]
        hits = {t: c.hits for t, c in s.tiers.items()}
        rows = sum(c.rows for c in s.tiers.values())
        scm, pf = s.tiers["scm"], s.prefetch
        return {
            "lookups": s.lookups,
            "indices": s.indices,
            # share of lookup indices (repeats in a batch included) each tier served
            "hit_rate": {t: (h / s.indices if s.indices else 0.0) for t, h in hits.items()},
            # share of the distinct rows the batches read (each row once a batch) each tier gave
            # the lookup thread; DRAM includes rows the prefetch thread had read from SCM
            "row_share": {t: (c.rows / rows if rows else 0.0) for t, c in s.tiers.items()},
            # what came off SCM, by the thread that read it: the honest SCM figure with prefetch on
            "scm_by_thread": {
                "lookup": {"rows": scm.rows, "pages": scm.reads, "bytes": scm.bytes},
                "prefetch": {"rows": pf.rows, "pages": pf.reads, "bytes": pf.bytes},
                "rows_per_distinct_row": (scm.rows + pf.rows) / rows if rows else 0.0,
            },
            "tiers": {t: asdict(c) for t, c in s.tiers.items()},
            "prefetch": asdict(s.prefetch),
            "latency": {
                "measured_total_s": s.measured_s,
                "modelled_total_s": s.modelled_s,
                "p50_s": float(np.percentile(lat, 50)) if k else 0.0,
                "p99_s": float(np.percentile(lat, 99)) if k else 0.0,
                "modelled_p50_s": float(np.percentile(mod, 50)) if k else 0.0,
                "modelled_p99_s": float(np.percentile(mod, 99)) if k else 0.0,
                "hist_upper_edges_s": LATENCY_EDGES_S.tolist() + [float("inf")],
                "hist_counts": s.hist.tolist(),
            },
        }

    def snapshot(self) -> dict:
        """{"tables": {name: summary}, "total": summary over all tables}."""
        with self._lock:
            tables = {n: self._summary(s) for n, s in self._t.items()}
            tot = _TableStats()
            for s in self._t.values():
                tot.lookups += s.lookups
                tot.indices += s.indices
                for k, c in s.tiers.items():
                    tot.tiers[k].add(c)
                tot.prefetch.add(s.prefetch)
                tot.hist += s.hist
                tot.measured_s += s.measured_s
                tot.modelled_s += s.modelled_s
            total = self._summary(tot)
            # percentiles of the total are per table call; keep only the exact totals
            for key in ("p50_s", "p99_s", "modelled_p50_s", "modelled_p99_s"):
                total["latency"].pop(key)
        return {"tables": tables, "total": total}
