"""Replay an id stream through a cache policy: hits, misses, bytes read, read amplification.

Three modes, by what a miss reads:
- rows (default): the cache holds rows; a miss reads `row_bytes`.
- rows read in pages (`page_bytes` given, no `page_of`): the cache holds rows, but the medium reads
  whole pages, so a miss reads ceil(row_bytes / page_bytes) pages (rows scattered over SCM).
- pages (`page_of` given): the cache holds whole pages (capacity_bytes // page_bytes of them); a miss
  reads one page, and any row of a resident page hits. bytes_used counts the distinct rows looked up
  during each residency, so read amplification shows how well the page layout groups hot rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from numba import njit

from sdm.core.errors import InvalidInputError
from sdm.core.checks import whole_number
from sdm.core.spec import row_bytes as spec_row_bytes
from sdm.cache.lru import LRU
from sdm.cachesim.runtime_replay import resolve_policy
from sdm.cachesim.stream import DenseStream, prepare
from sdm.cachesim.types import Replayer, SimResult

# Default row: 64 fp32 values (DLRM's common embedding dim; sdm.core.spec.row_bytes).
DEFAULT_ROW_BYTES = spec_row_bytes(64, "fp32")
# NAND reads whole 4 KiB pages (REFERENCE.md, "NAND reads whole 4 KiB pages; 3DXP ... 512 B").
NAND_PAGE_BYTES = 4096
XPOINT_PAGE_BYTES = 512


@dataclass(frozen=True)
class Geometry:
    """How a byte budget and a miss translate into cache units and bytes for one replay."""

    row_bytes: int
    page_bytes: int | None
    paged: bool  # cache unit is the page

    def units(self, capacity_rows: int) -> int:
        if self.paged:
            return capacity_rows * self.row_bytes // self.page_bytes
        return capacity_rows

    @property
    def bytes_per_miss(self) -> int:
        if self.paged:
            return self.page_bytes
        if self.page_bytes:
            return -(-self.row_bytes // self.page_bytes) * self.page_bytes
        return self.row_bytes


def _geometry(stream: DenseStream, row_bytes: int, page_bytes: int | None) -> Geometry:
    row_bytes = whole_number(row_bytes, "row_bytes", minimum=1)
    if page_bytes is not None:
        page_bytes = whole_number(page_bytes, "page_bytes", minimum=1)
    paged = stream.unit == "page"
    if paged:
        page_bytes = NAND_PAGE_BYTES if page_bytes is None else int(page_bytes)
        if row_bytes > page_bytes:
            raise InvalidInputError(
                f"page mode needs rows no larger than a page: row_bytes={row_bytes} > page_bytes={page_bytes}; "
                "rows that span pages share none, so simulate rows with page_bytes set instead of page_of"
            )
        per_page = np.bincount(stream.page_of) if stream.page_of.size else np.zeros(0, np.int64)
        fits = page_bytes // row_bytes
        if per_page.size and per_page.max() > fits:
            bad = int(per_page.argmax())
            raise InvalidInputError(
                f"page_of puts {per_page[bad]} rows in page {bad}, but a {page_bytes}-byte page holds "
                f"only {fits} rows of {row_bytes} bytes"
            )
    return Geometry(int(row_bytes), None if page_bytes is None else int(page_bytes), paged)


@njit(cache=True)
def _rows_used_per_residency(pages, rows, hits, num_pages, num_rows, warmup):
    # A miss on a page opens a residency (stamped with its time); each row counts once per
    # residency of its page. Pages pinned before the replay (hits with no opening miss) and
    # residencies opened during the warm-up are not counted.
    opened = np.full(num_pages, -1, dtype=np.int64)
    counted = np.full(num_rows, -1, dtype=np.int64)
    used = 0
    for t in range(pages.shape[0]):
        p = pages[t]
        if not hits[t]:
            opened[p] = t if t >= warmup else -1
        o = opened[p]
        r = rows[t]
        if o >= 0 and counted[r] != o:
            counted[r] = o
            used += 1
    return used


def _bytes_used_paged(stream: DenseStream, hits: np.ndarray, row_bytes: int, warmup: int) -> int:
    """Bytes of distinct rows looked up during each residency of a page that a miss brought in."""
    if stream.num_lookups == 0:
        return 0
    num_rows = int(stream.rows.max()) + 1
    return int(_rows_used_per_residency(stream.ids, stream.rows, hits, stream.num_ids, num_rows, warmup)) * row_bytes


def _result(policy: Replayer, stream: DenseStream, geo: Geometry, capacity_rows: int, units: int,
            hits: np.ndarray, warmup: int = 0) -> SimResult:
    counted = hits[warmup:]
    n_hits = int(np.count_nonzero(counted))
    misses = counted.size - n_hits
    bytes_read = misses * geo.bytes_per_miss
    if geo.paged:
        bytes_used = _bytes_used_paged(stream, hits, geo.row_bytes, warmup)
    else:
        bytes_used = misses * geo.row_bytes
    if hasattr(policy, "capacity_units"):
        units = policy.capacity_units(units)
    return SimResult(
        policy=policy.name,
        unit=stream.unit,
        capacity_rows=int(capacity_rows),
        capacity_units=int(units),
        lookups=int(counted.size),
        hits=n_hits,
        misses=misses,
        unique_ids=int(stream.num_ids),
        row_bytes=geo.row_bytes,
        page_bytes=geo.page_bytes,
        bytes_read=int(bytes_read),
        bytes_used=int(bytes_used),
        preloaded_units=int(getattr(policy, "preloaded_units", lambda s, u: 0)(stream, units)),
        warmup_lookups=int(warmup),
    )


def _warmup(warmup: int, stream: DenseStream) -> int:
    if not 0 <= whole_number(warmup, "warmup") <= stream.num_lookups:
        raise InvalidInputError(f"warmup must be in [0, {stream.num_lookups}] lookups, got {warmup}")
    return int(warmup)


def _capacity_rows(capacity_rows, capacity_bytes, row_bytes: int) -> int:
    if (capacity_rows is None) == (capacity_bytes is None):
        raise InvalidInputError("give exactly one of capacity_rows and capacity_bytes")
    if capacity_bytes is not None:
        return whole_number(capacity_bytes, "capacity_bytes") // int(row_bytes)
    return whole_number(capacity_rows, "capacity_rows")


def _stream(ids, page_of) -> DenseStream:
    if isinstance(ids, DenseStream):
        if page_of is not None:
            raise InvalidInputError("page_of is fixed when the stream is prepared; pass it to prepare()")
        return ids
    return prepare(ids, page_of=page_of)


def simulate(
    ids,
    capacity_rows: int | None = None,
    policy: str | Replayer = "lru",
    *,
    capacity_bytes: int | None = None,
    page_of=None,
    row_bytes: int = DEFAULT_ROW_BYTES,
    page_bytes: int | None = None,
    warmup: int = 0,
) -> SimResult:
    """Replay `ids` (row ids in time order, or a prepared DenseStream) through one cache.

    Capacity is `capacity_rows`, or `capacity_bytes` // row_bytes. See the module doc for page modes.
    The first `warmup` lookups fill the cache but are not counted (a warm-cache measurement).
    """
    stream = _stream(ids, page_of)
    pol = resolve_policy(policy)
    geo = _geometry(stream, row_bytes, page_bytes)
    cap_rows = _capacity_rows(capacity_rows, capacity_bytes, geo.row_bytes)
    units = geo.units(cap_rows)
    warmup = _warmup(warmup, stream)
    return _result(pol, stream, geo, cap_rows, units, pol.replay(stream, units), warmup)


@dataclass(frozen=True)
class MissRatioCurve:
    """Results of one policy over several capacities (ascending as given)."""

    policy: str
    results: list[SimResult] = field(default_factory=list)

    @property
    def capacities_rows(self) -> np.ndarray:
        return np.array([r.capacity_rows for r in self.results], dtype=np.int64)

    @property
    def miss_ratios(self) -> np.ndarray:
        return np.array([r.miss_ratio for r in self.results])

    @property
    def bytes_read(self) -> np.ndarray:
        return np.array([r.bytes_read for r in self.results], dtype=np.int64)


def miss_ratio_curve(
    ids,
    capacities: Sequence[int] | None = None,
    policy: str | Replayer = "lru",
    *,
    capacities_bytes: Sequence[int] | None = None,
    page_of=None,
    row_bytes: int = DEFAULT_ROW_BYTES,
    page_bytes: int | None = None,
    warmup: int = 0,
    progress: Callable[[int], None] | None = None,
) -> MissRatioCurve:
    """Miss ratio at each capacity (rows, or bytes). LRU takes one pass (stack distances); other
    policies replay once per capacity. `progress(1)` is called after each capacity."""
    stream = _stream(ids, page_of)
    pol = resolve_policy(policy)
    geo = _geometry(stream, row_bytes, page_bytes)
    if (capacities is None) == (capacities_bytes is None):
        raise InvalidInputError("give exactly one of capacities (rows) and capacities_bytes")
    if capacities is not None:
        caps = [_capacity_rows(c, None, geo.row_bytes) for c in capacities]
    else:
        caps = [_capacity_rows(None, b, geo.row_bytes) for b in capacities_bytes]
    warmup = _warmup(warmup, stream)
    results = []
    for c in caps:
        u = geo.units(c)
        # LRU of any size hits exactly the accesses whose stack distance fits: one pass for all sizes
        hits = stream.stack_distances() <= u if isinstance(pol, LRU) else pol.replay(stream, u)
        results.append(_result(pol, stream, geo, c, u, hits, warmup))
        if progress:
            progress(1)
    return MissRatioCurve(pol.name, results)
