"""The runtime's own DRAM cache as a simulator policy: `sdm.cache.index.CacheIndex`, driven batch by batch.

A batch is served as `sdm.runtime.store_table.StoreTable` serves it (one table, no prefetch, no
page-mate admission): its distinct ids, ascending, are probed; the rows found are touched (one
policy stamp for the batch); the rest are placed in one call with the found rows protected, so a
batch never evicts its own rows. Every lookup of a row found at the probe is a hit; every lookup
of a row that was missing is a miss, repeats in the same batch included (they read SCM together).
Same index code, so the same ways, hash, capacity rounding to whole sets, direct layout, admission
and protection as the store; `tests/test_cachesim_runtime.py` holds the two equal hit for hit.

Names: "runtime-lru", "runtime-lfu", ... (16 ways, one lookup per batch unless given).
"""
from __future__ import annotations

import numpy as np

from sdm.cache.base import CachePolicy
from sdm.cache.index import CacheIndex, geometry
from sdm.cache.policies import make_policy
from sdm.cachesim.lookahead_replay import replay_lookahead
from sdm.core.checks import whole_number
from sdm.core.errors import InvalidInputError

RUNTIME_PREFIX = "runtime-"
RUNTIME_WAYS = 16   # the store's default (EmbeddingStore.create(ways=16))


def replay_batches(index: CacheIndex, ids: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Hit flag per lookup of `ids` (original row ids) replayed through `index` in batches that
    begin at positions `starts` (ascending, starts[0] == 0)."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    hits = np.zeros(ids.size, dtype=bool)
    bounds = np.append(np.asarray(starts, np.int64), ids.size)
    for a, b in zip(bounds[:-1], bounds[1:]):
        if a == b:
            continue
        u, inverse = np.unique(ids[a:b], return_inverse=True)
        slots = index.probe(u)
        found = slots >= 0
        index.touch(slots[found])
        index.place(u[~found], protect_slots=slots[found])
        hits[a:b] = found[inverse.reshape(-1)]
    return hits


class RuntimeCache:
    """Policy `policy` run by the runtime's set-associative cache (`ways` None: one set, fully
    associative). `batch_size` lookups a batch, or batches starting at `batch_starts`. `num_rows`:
    the table's rows (direct layout when the cache covers them; default: the largest id + 1).
    `admit_mask`: the store's "warm" admission (bool per row id). `lookahead`: batches the
    prefetcher reads ahead (`sdm.cachesim.lookahead_replay`; a row it read counts as a miss of its batch)."""

    def __init__(self, policy: str | CachePolicy = "lru", *, ways: int | None = RUNTIME_WAYS, batch_size: int = 1,
                 batch_starts=None, layout: str = "auto", num_rows: int | None = None, hot_ids=None,
                 admit_mask: np.ndarray | None = None, lookahead: int = 0) -> None:
        self.policy = policy
        self.hot_ids = hot_ids
        base = make_policy(policy, hot_ids, runtime=True)        # unknown or offline-only names fail here
        self.ways = None if ways is None else whole_number(ways, "RuntimeCache: ways", minimum=1)
        self.batch_size = whole_number(batch_size, "RuntimeCache: batch_size", minimum=1)
        self.batch_starts = None if batch_starts is None else np.asarray(batch_starts, np.int64)
        if layout not in ("auto", "hashed"):
            raise InvalidInputError(f"RuntimeCache: layout must be 'auto' or 'hashed', got {layout!r}")
        self.layout = layout
        self.num_rows = None if num_rows is None else whole_number(num_rows, "RuntimeCache: num_rows", minimum=1)
        self.admit_mask = admit_mask
        self.lookahead = whole_number(lookahead, "RuntimeCache: lookahead", minimum=0)
        self.name = RUNTIME_PREFIX + base.name + (f"-pf{self.lookahead}" if self.lookahead else "")
        self._units: dict[int, int] = {}

    def _num_rows(self, keys: np.ndarray) -> int:
        return self.num_rows if self.num_rows is not None else (int(keys.max()) + 1 if keys.size else 1)

    def index(self, capacity: int, num_rows: int) -> CacheIndex:
        """A fresh index of `capacity` slots (before rounding) over a table of `num_rows` rows."""
        ways = int(capacity) if self.ways is None else self.ways
        # a fresh policy object per replay: a plugin object is used as given
        pol = make_policy(self.policy, self.hot_ids, runtime=True) if isinstance(self.policy, str) else self.policy
        idx = CacheIndex(num_rows, int(capacity), ways=max(ways, 1), policy=pol, layout=self.layout)
        if self.admit_mask is not None and not idx.direct:
            idx.admit_mask = self.admit_mask
        if idx.policy.name == "static" and self.hot_ids is not None and idx.capacity_rows:
            # the store loads the hot set once at open (StoreTable: needs_static_fill)
            idx.place(np.asarray(self.hot_ids, np.int64)[: idx.capacity_rows])
        return idx

    def capacity_units(self, capacity: int) -> int:
        """Slots the runtime keeps of `capacity`: whole sets (as in the last replay at that size)."""
        if int(capacity) in self._units:
            return self._units[int(capacity)]
        ways = int(capacity) if self.ways is None else self.ways
        direct, sets, w = geometry(self.num_rows or 2**62, int(capacity), max(ways, 1), self.layout)
        return sets * w

    def starts(self, n: int) -> np.ndarray:
        if self.batch_starts is None:
            return np.arange(0, n, self.batch_size, dtype=np.int64)
        s = self.batch_starts
        if s.ndim != 1 or (s.size and (s[0] != 0 or np.any(np.diff(s) < 0) or s[-1] > n)):
            raise InvalidInputError(f"RuntimeCache: batch_starts must ascend from 0 within the {n} lookups")
        return s

    def replay(self, stream, capacity: int) -> np.ndarray:
        if stream.unit != "row":
            raise InvalidInputError("the runtime's cache holds rows: replay it on a row stream (no page_of)")
        ids = stream.keys[stream.ids]                             # original ids: the hash is over them
        idx = self.index(int(capacity), self._num_rows(stream.keys))
        self._units[int(capacity)] = idx.capacity_rows
        if not idx.capacity_rows:
            return np.zeros(ids.size, dtype=bool)
        if self.lookahead:
            return ~replay_lookahead(idx, ids, self.starts(ids.size), self.lookahead).misses
        return replay_batches(idx, ids, self.starts(ids.size))


def resolve_policy(policy):
    """What the simulator replays for `policy`: a name of the one registry (`sdm.cache.policies`;
    its compiled fully associative replay), "runtime-NAME" (the runtime's cache), or an object:
    one with `replay` as it is, one with only the cache hooks through the runtime's cache (one set)."""
    if isinstance(policy, str) and policy.strip().lower().startswith(RUNTIME_PREFIX):
        return RuntimeCache(policy.strip().lower()[len(RUNTIME_PREFIX):])
    pol = make_policy(policy)
    if hasattr(pol, "replay"):
        return pol
    return RuntimeCache(pol, ways=None)
