"""The small interfaces of the cache simulator: what it replays (`Replayer`) and what it reports.

A policy is a `sdm.cache.base.CachePolicy` (one registry, `sdm.cache.policies`). A `Replayer` is
what the simulator runs for it: `replay(stream, capacity) -> hits`, a bool per access for a whole
stream. The policies of `sdm.cache` carry one (a numba kernel, or one numpy expression, whose
inner loop is written as the classic hooks: find, insert, evict); `sdm.cachesim.runtime_replay.
RuntimeCache` replays the runtime's own set-associative cache batch by batch. The plain-Python
references the tests hold them to live in tests/cache_reference*.py.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sdm.cachesim.stream import DenseStream


@runtime_checkable
class Replayer(Protocol):
    """A policy's replay. `capacity` is in cache units (rows, or pages in page mode)."""

    name: str

    def replay(self, stream: "DenseStream", capacity: int) -> np.ndarray:
        """Bool array, True where the access at that position hits."""
        ...


@dataclass(frozen=True)
class SimResult:
    """Outcome of replaying one stream through one policy at one capacity.

    unit             "row": the cache holds rows; "page": it holds whole pages (page_of given)
    capacity_rows    the budget asked for, in rows (capacity_bytes / row_bytes)
    capacity_units   what the cache actually holds: rows, or pages; a set-associative cache
                     rounds down to whole sets
    bytes_read       bytes fetched from the backing tier on misses (whole pages when paged)
    bytes_used       of those, the bytes of rows that were actually looked up while resident
    preloaded_units  units placed before the replay (a static policy's pinned set); their one-time
                     fill is not in bytes_read, and OPT's bound counts it as misses
    warmup_lookups   leading lookups replayed to warm the cache but not counted in lookups/hits/bytes
    """

    policy: str
    unit: str
    capacity_rows: int
    capacity_units: int
    lookups: int
    hits: int
    misses: int
    unique_ids: int
    row_bytes: int
    page_bytes: int | None
    bytes_read: int
    bytes_used: int
    preloaded_units: int = 0
    warmup_lookups: int = 0

    @property
    def miss_ratio(self) -> float:
        return self.misses / self.lookups if self.lookups else 0.0

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0

    @property
    def read_amplification(self) -> float:
        """bytes read / bytes used: 1.0 for row reads; up to page_bytes / row_bytes when paged."""
        return self.bytes_read / self.bytes_used if self.bytes_used else 1.0

    @property
    def capacity_bytes(self) -> int:
        return self.capacity_rows * self.row_bytes

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            miss_ratio=self.miss_ratio,
            hit_ratio=self.hit_ratio,
            read_amplification=self.read_amplification,
            capacity_bytes=self.capacity_bytes,
        )
        return d
