"""Host DRAM row cache: the set-associative index (`sdm.cache.index`) plus the rows it points at.

A byte budget buys `capacity_bytes // (row_bytes + index_bytes_per_row)` slots, rounded down to
whole sets of `ways` (16 by default), or one slot per row of the table (direct layout) when the
budget covers it; see `sdm.cache.index` for the layout, the hash and how a batch of misses picks
its victims. The data tensor holds `capacity_rows` rows in the table's stored format; data + index
stay within `capacity_bytes`.

Thread safety: callers hold `cache.lock` around probe/insert and while reading `data` at slots
they probed (an insert may overwrite any unprotected slot).

Direct layout: once every row is resident (`complete`) a lookup pools straight from `data` with
the ids as they are.
"""
from __future__ import annotations

import threading

import numpy as np
import torch

from sdm.cache.base import CachePolicy
from sdm.cache.index import INDEX_BYTES_PER_ROW, CacheIndex, index_bytes_per_row
from sdm.cache.policies import make_policy
from sdm.core import huge_pages
from sdm.core.checks import whole_number

__all__ = ["DramCache", "INDEX_BYTES_PER_ROW", "index_bytes_per_row", "rows_for_budget"]


def rows_for_budget(capacity_bytes: int, row_bytes: int, num_rows: int, policy: str | CachePolicy = "lru") -> int:
    """Slots a byte budget buys before rounding to whole sets: each costs its row and its index entry."""
    return int(capacity_bytes) // (int(row_bytes) + index_bytes_per_row(num_rows, policy))


class DramCache(CacheIndex):
    """Cache of one table's rows in host DRAM (see module doc)."""

    def __init__(
        self,
        num_rows: int,
        row_width: int,
        dtype: torch.dtype,
        capacity_bytes: int,
        *,
        ways: int = 16,
        policy: str | CachePolicy = "lru",
        hot_ids: np.ndarray | None = None,
        table: str = "?",
        layout: str = "auto",
    ):
        capacity_bytes = whole_number(capacity_bytes, f"table {table!r}: DRAM cache capacity_bytes")
        self.row_bytes = row_width * torch.empty(0, dtype=dtype).element_size()
        policy = make_policy(policy, hot_ids, table=table, runtime=True)
        rows = rows_for_budget(capacity_bytes, self.row_bytes, num_rows, policy)
        super().__init__(num_rows, rows, ways=ways, policy=policy, hot_ids=hot_ids, table=table, layout=layout)
        self.capacity_bytes = int(capacity_bytes)
        # rows are read scattered: on huge pages their reads do not also miss the TLB (huge_pages.py)
        self.data = huge_pages.zeros((self.capacity_rows, row_width), dtype)
        self.lock = threading.RLock()
        if self.policy.name == "static" and hot_ids is not None and self.capacity_rows:
            self._static_ids = np.asarray(hot_ids, dtype=np.int64)
        else:
            self._static_ids = None

    def needs_static_fill(self) -> np.ndarray | None:
        """For the static policy: hot ids still to load (once, at open)."""
        ids, self._static_ids = self._static_ids, None
        return ids

    def insert(self, ids: np.ndarray, rows: torch.Tensor, protect_slots: np.ndarray | None = None,
               *, low_priority: bool = False, ignore_mask: bool = False) -> np.ndarray:
        """Place rows (stored format, [n, width]) of distinct absent ids; return each one's slot or -1
        (see `CacheIndex.place` for protection, bypass, admission and low priority)."""
        out = self.place(ids, protect_slots, low_priority=low_priority, ignore_mask=ignore_mask)
        placed = np.flatnonzero(out >= 0)
        if len(placed):
            self.data.index_copy_(0, torch.from_numpy(out[placed]), rows[torch.from_numpy(placed)])
        return out

    def clear(self) -> None:
        with self.lock:
            self.clear_index()
