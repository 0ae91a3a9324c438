"""Host DRAM row cache: set-associative, vectorized, with pluggable replacement policies.

Layout: `num_sets` sets of `ways` slots. A row id maps to one set by a multiplicative hash; a
lookup compares the id against the set's `ways` tags (a compiled loop over the batch, no per-row
Python). Inserts place a whole batch of missed rows at once: misses are sorted by set, ranked
within their set, and the r-th miss of a set takes the set's r-th best victim (empty slots first,
then lowest policy key); protected slots (rows the current or coming batches still need) are never
chosen, and misses that find no victim bypass the cache.

Memory: the data tensor holds `capacity_rows` rows in the table's stored format; the index costs
9 bytes per cached row (int32 tag + int32 policy score + 1-byte scratch mark used by inserts), or
13 with int64 tags for tables of 2**31 rows or more: within the 16-byte budget. `capacity_bytes`
covers data + index.

Thread safety: callers hold `cache.lock` around probe/insert and while reading `data` at slots
they probed (an insert may overwrite any unprotected slot).

Direct layout: when the budget covers the whole table (and layout="auto"), row r simply lives in
slot r (num_sets = num_rows, one way): a probe is one compare, nothing is ever evicted, and once
every row is resident (`complete`) a lookup pools straight from `data` with the ids as they are.
"""
from __future__ import annotations

import threading

import numba
import numpy as np
import torch

from sdm.core.errors import InvalidInputError
from sdm.core.checks import whole_number
from sdm.cache.policies import CachePolicy, make_policy

# Index bytes per cached row: tag (int32 when row ids fit, else int64) + int32 policy score +
# 1-byte scratch mark used by inserts. INDEX_BYTES_PER_ROW is the larger case.
INDEX_BYTES_PER_ROW = 8 + 4 + 1
_INT32_TAG_LIMIT = 2**31 - 1


def index_bytes_per_row(num_rows: int) -> int:
    return (4 if num_rows <= _INT32_TAG_LIMIT else 8) + 4 + 1


# Fibonacci hashing (top 32 bits of x * 2**64/phi) spreads strided or clustered ids; the set is
# then picked by a multiply-shift (Lemire's fastrange) instead of a division.
@numba.njit(cache=True, nogil=True, inline="always")
def _hash_set(x, num_sets):
    h = (np.uint64(x) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    return np.int64((h * np.uint64(num_sets)) >> np.uint64(32))


@numba.njit(cache=True, nogil=True)
def _set_of(ids, num_sets, direct):
    out = np.empty(ids.shape[0], np.int64)
    for i in range(ids.shape[0]):
        out[i] = ids[i] if direct else _hash_set(ids[i], num_sets)
    return out


@numba.njit(cache=True, nogil=True)
def _probe(tags, ids, num_sets, direct):
    ways = tags.shape[1]
    out = np.empty(ids.shape[0], np.int64)
    for i in range(ids.shape[0]):
        x = ids[i]
        s = x if direct else _hash_set(x, num_sets)
        found = -1
        for w in range(ways):  # no early exit: a fixed-length loop the compiler can unroll
            if tags[s, w] == x:
                found = w
        out[i] = s * ways + found if found >= 0 else -1
    return out


class DramCache:
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
        ways = whole_number(ways, f"table {table!r}: ways", minimum=1)
        self.table = table
        self.num_rows = int(num_rows)
        self.row_bytes = row_width * torch.empty(0, dtype=dtype).element_size()
        self.index_bytes_per_row = index_bytes_per_row(self.num_rows)
        rows = int(capacity_bytes) // (self.row_bytes + self.index_bytes_per_row)
        if layout not in ("auto", "hashed"):
            raise InvalidInputError(f"table {table!r}: layout must be 'auto' or 'hashed', got {layout!r}")
        # A budget that covers the whole table needs no associativity: row r lives in slot r
        # (one way per set, set = id), so a probe is one compare and nothing is ever evicted.
        self.direct = layout == "auto" and rows >= self.num_rows
        if self.direct:
            self.ways, self.num_sets = 1, self.num_rows
        else:
            # (layout="hashed" may be given more room than the table: sets fill unevenly)
            self.ways = max(1, min(ways, rows))
            self.num_sets = rows // self.ways
        self.capacity_rows = self.num_sets * self.ways
        self.capacity_bytes = int(capacity_bytes)
        self.policy = make_policy(policy, hot_ids, table=table)
        shape = (max(self.num_sets, 1), self.ways)
        tag_dtype = np.int32 if self.num_rows <= _INT32_TAG_LIMIT else np.int64
        self.tags = np.full(shape if self.capacity_rows else (0, self.ways), -1, dtype=tag_dtype)
        self.score = np.zeros(self.tags.shape, dtype=np.int32)
        self._mark = np.zeros(self.tags.size, dtype=np.bool_)
        self.data = torch.zeros((self.capacity_rows, row_width), dtype=dtype)
        self.lock = threading.RLock()
        # Optional admission filter (bool per row id, e.g. "predicted warm" from a profile): rows
        # outside it enter at low priority only (free or low-priority slots), so a stream of
        # one-off cold misses cannot flush warm rows, yet room the warm rows leave is used.
        self.admit_mask: np.ndarray | None = None
        self._resident = 0
        self.stamp = 0  # batch counter for recency
        if self.policy.name == "static" and hot_ids is not None and self.capacity_rows:
            self._static_ids = np.asarray(hot_ids, dtype=np.int64)
        else:
            self._static_ids = None

    # ---- index ---------------------------------------------------------------------------------
    @property
    def index_bytes(self) -> int:
        """Bytes of the index arrays (tags, scores, scratch marks), not counting row data."""
        return self.tags.nbytes + self.score.nbytes + self._mark.nbytes

    @property
    def resident_rows(self) -> int:
        return self._resident

    @property
    def complete(self) -> bool:
        """Every row of the table is cached in the direct layout: row r is at slot r."""
        return self.direct and self._resident == self.num_rows

    def contents(self) -> np.ndarray:
        """Sorted ids of the cached rows (a copy; for tests and reports)."""
        return np.sort(self.tags[self.tags >= 0]).astype(np.int64)

    def probe(self, ids: np.ndarray) -> np.ndarray:
        """Slot of each id, -1 where absent. Changes nothing."""
        if not self.capacity_rows:
            return np.full(len(ids), -1, dtype=np.int64)
        return _probe(self.tags, np.ascontiguousarray(ids, dtype=np.int64), self.num_sets, self.direct)

    def touch(self, slots: np.ndarray) -> None:
        """Tell the policy these slots were read by one batch (moot in the direct layout: no evictions)."""
        if len(slots) and not self.direct:
            if self.admit_mask is not None:
                # rows outside the admission mask (prefetched cold rows) stay low priority
                slots = slots[self.admit_mask[self.tags.reshape(-1)[slots]]]
            self.stamp += 1
            self.policy.on_hit(self.score.reshape(-1), slots, self.stamp)

    def needs_static_fill(self) -> np.ndarray | None:
        """For the static policy: hot ids still to load (once, at open)."""
        ids, self._static_ids = self._static_ids, None
        return ids

    # ---- insert --------------------------------------------------------------------------------
    def insert(self, ids: np.ndarray, rows: torch.Tensor, protect_slots: np.ndarray | None = None,
               *, low_priority: bool = False, ignore_mask: bool = False) -> np.ndarray:
        """Place rows (stored format, [n, width]) of distinct absent ids; return each one's slot or -1.

        Slots in `protect_slots` are not evicted. Misses that find no evictable slot in their set,
        or that the policy does not admit, get -1 (bypass). Rows outside `admit_mask` are inserted
        at low priority.
        `low_priority` (rows that came along on a fetched page, unasked): they take empty slots or
        replace other low-priority rows only, never a row some lookup has read, and are scored by
        the policy's `on_insert_low` (first to go). `ignore_mask`: skip `admit_mask` (prefetched
        rows, which a coming batch is known to need).
        """
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        out = np.full(len(ids), -1, dtype=np.int64)
        if not self.capacity_rows or not len(ids):
            return out
        if self.admit_mask is not None and not ignore_mask and not low_priority:
            # rows outside the mask (predicted cold) come in at low priority only: they use room
            # the warm rows leave free and never evict a row that was read
            warm = self.admit_mask[ids]
            if not warm.all():
                wi, ci = np.flatnonzero(warm), np.flatnonzero(~warm)
                out[wi] = self.insert(ids[wi], rows[torch.from_numpy(wi)], protect_slots, ignore_mask=True)
                placed = out[wi][out[wi] >= 0]
                prot = placed if protect_slots is None else np.concatenate([np.asarray(protect_slots, np.int64), placed])
                out[ci] = self.insert(ids[ci], rows[torch.from_numpy(ci)], prot, low_priority=True, ignore_mask=True)
                return out
        admit = self.policy.admit(ids)
        cand = np.arange(len(ids)) if admit is None else np.flatnonzero(admit)
        if not len(cand):
            return out
        sets = _set_of(ids[cand], self.num_sets, self.direct)
        order = np.argsort(sets, kind="stable")
        cand, sets = cand[order], sets[order]
        rank = np.arange(len(sets)) - np.searchsorted(sets, sets, side="left")
        usets, set_row = np.unique(sets, return_inverse=True)
        key = self.policy.victim_key(self.score[usets]).astype(np.float64)
        if low_priority:  # only empty or other low-priority (never read, score 0) slots
            key[self.score[usets] != 0] = np.inf
        key[self.tags[usets] < 0] = -np.inf  # empty slots first
        if protect_slots is not None and len(protect_slots):
            self._mark[protect_slots] = True
            key[self._mark.reshape(self.tags.shape)[usets]] = np.inf
            self._mark[protect_slots] = False
        victims = np.argsort(key, axis=1, kind="stable")
        evictable = (key != np.inf).sum(axis=1)
        ok = rank < evictable[set_row]
        way = victims[set_row[ok], rank[ok]]
        slots = sets[ok] * self.ways + way
        placed = cand[ok]
        self._resident += int((self.tags.reshape(-1)[slots] < 0).sum())
        self.tags.reshape(-1)[slots] = ids[placed]
        self.stamp += 1
        hook = getattr(self.policy, "on_insert_low", None) if low_priority else None
        (hook or self.policy.on_insert)(self.score.reshape(-1), slots, self.stamp)
        t_slots = torch.from_numpy(slots)
        self.data.index_copy_(0, t_slots, rows[torch.from_numpy(placed)])
        out[placed] = slots
        return out

    def clear(self) -> None:
        with self.lock:
            self.tags.fill(-1)
            self.score.fill(0)
            self._resident = 0
