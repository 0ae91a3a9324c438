"""The look-ahead window of a cache: rows that coming batches will read, kept until those batches ran.

Shared by the runtime (`sdm.runtime.store_table.StoreTable.prefetch` and its lookup path) and the
simulator (`sdm.cachesim.lookahead_replay`), so both run one rule:

- **Window protection.** With a look-ahead of k batches the cache knows every row batches i..i+k
  will read. Those rows are protected: no insert (a lookup's misses, a prefetch, page mates) may
  evict them, so a row prefetched for batch j stays until batch j has used it. Eviction therefore
  takes rows with no use in the window first, in the base policy's order (LRU: least recently
  read); a miss whose set holds only window rows bypasses the cache. That is Belady's rule inside
  the window with bypass: a row of the newest batch j is needed no sooner than any protected row
  (their next uses all fall in i..j), so OPT would not cache it either. It approaches Belady as k
  grows (tools/bench_prefetch.py measures how far).
- **No read twice.** A prefetch reads only rows that will get a slot: the placement is tried first
  on a copy of the index (`fits`, a dry run of `CacheIndex.place`, same victims, same admission),
  so a prefetched row is never dropped and read again by the lookup (the landed prefetcher read
  rows it then could not keep).
- **Inside the budget.** Rows the cache cannot take are not staged beside it beyond the room its
  empty slots leave (`staging_room`), so cache + staging never exceed the DRAM budget at staging time.
"""
from __future__ import annotations

import copy

import numpy as np

from sdm.cache.index import CacheIndex


def window_ids(*parts) -> np.ndarray:
    """Sorted distinct ids of the rows the window's batches read (any iterable of id arrays; None skipped)."""
    arrs = [np.asarray(p, np.int64).reshape(-1) for p in parts if p is not None]
    return np.unique(np.concatenate(arrs)) if arrs else np.zeros(0, np.int64)


def protected_slots(index: CacheIndex, window: np.ndarray, *also: np.ndarray) -> np.ndarray:
    """Slots holding rows of `window` (sorted distinct ids), with `also` (slots) appended: what an
    insert must not evict. Caller holds the cache's lock."""
    extra = [np.asarray(a, np.int64) for a in also if a is not None and len(a)]
    if len(window) and index.capacity_rows:
        s = index.probe(window)
        extra.append(s[s >= 0])
    return np.concatenate(extra) if extra else np.zeros(0, np.int64)


def fits(index: CacheIndex, ids: np.ndarray, protect_slots: np.ndarray | None, **place_kwargs) -> np.ndarray:
    """Bool per id of `ids` (distinct, absent): would `index.place(ids, protect_slots, ...)` give it a
    slot? A dry run on a copy of the tags and scores: the index itself is unchanged. Caller holds the lock."""
    ids = np.ascontiguousarray(ids, np.int64)
    if not len(ids) or not index.capacity_rows:
        return np.zeros(len(ids), np.bool_)
    shadow = copy.copy(index)      # shares admit_mask (read only); own tags, scores, clock, policy
    shadow.tags = index.tags.copy()
    shadow.score = index.score.copy()
    shadow.policy = copy.deepcopy(index.policy)   # a policy with state (S3-LRU's ghost) learns nothing
    return CacheIndex.place(shadow, ids, protect_slots, **place_kwargs) >= 0


def place_by_next_use(index: CacheIndex, ids: np.ndarray, hit_slots: np.ndarray, coming: list,
                      insert=None) -> np.ndarray:
    """Place a lookup's missed rows `ids` (distinct, absent) with the batch's `hit_slots` protected
    and the window's rows ordered by next use: `coming` = the coming batches' distinct ids, soonest
    first. A miss next read by coming batch b may evict rows outside the window and window rows
    next read after b, never one read by b or sooner; a miss with no read in the window evicts
    rows outside the window only. Misses read sooner are placed first. Slot per id or -1.
    `insert(positions, protect_slots) -> slots`: how to place ids[positions] (default `index.place`;
    the DRAM cache passes its `insert`, which also copies the rows)."""
    ids = np.ascontiguousarray(ids, np.int64)
    out = np.full(len(ids), -1, np.int64)
    if not len(ids) or not index.capacity_rows:
        return out
    prot = [np.asarray(hit_slots, np.int64)]
    todo = np.ones(len(ids), np.bool_)
    for batch in list(coming) + [None]:
        if batch is None:               # no read in the window: every window row stays
            group = np.flatnonzero(todo)
        else:
            b = np.asarray(batch, np.int64)
            s = index.probe(b)
            prot.append(s[s >= 0])      # rows read by b stay for the misses read after b
            group = np.flatnonzero(todo & np.isin(ids, b))
        if len(group):
            p = np.concatenate(prot)
            got = index.place(ids[group], p) if insert is None else insert(group, p)
            out[group] = got
            prot.append(got[got >= 0])
            todo[group] = False
    return out


class Frontier:
    """Which rows a prefetch may read: in window order, never past a batch that did not fit.

    Rows of an earlier window batch that could not be prefetched will be read by their lookup and
    need a slot before any later batch's rows (their next use is sooner): prefetching beyond them
    would take the slots they need and be evicted, or make them bypass, before use. So a prefetch
    whose earlier window still holds such a row (absent, `blocked`) reads nothing, and its own
    absent rows wait behind it; otherwise it reads the rows that `fits` gives a slot.
    """

    def __init__(self) -> None:
        self.blocked = np.zeros(0, np.int64)   # sorted ids left to their lookups

    def admit(self, index: CacheIndex, ahead: np.ndarray, absent: np.ndarray, protect_slots: np.ndarray,
              **place_kwargs) -> np.ndarray:
        """Rows of `absent` (distinct, absent rows of the batch being prefetched) to read now;
        `ahead`: sorted ids of the window's earlier batches. Caller holds the lock."""
        late = self.blocked[np.isin(self.blocked, ahead, assume_unique=True)] if len(self.blocked) else self.blocked
        if len(late) and index.capacity_rows:
            late = late[index.probe(late) < 0]
        if len(late):
            self.blocked = np.union1d(late, absent)
            return absent[:0]
        ok = fits(index, absent, protect_slots, **place_kwargs)
        left = absent[~ok]
        if index.admit_mask is not None:
            # rows outside the admission mask enter at low priority only, never taking a read
            # row's slot, on demand as ahead: they claim no slot, so they hold nothing back
            left = left[index.admit_mask[left]]
        self.blocked = np.sort(left)
        return absent[ok]


class Lookahead:
    """The batches a table's prefetcher has read ahead (distinct ids each, oldest first, with the
    rows read for each), so its lookups know what comes next. A prefetch call drops batches no
    longer in its window (rows outside `protect` + its own ids: consumed); a lookup drops its own
    batch and those before it. Callers serialize (the DRAM cache's lock): both threads change it.

    A batch no lookup has matched within MAX_AGE_LOOKUPS lookups of its prefetch is dropped too: no
    prefetcher runs that far ahead, so it is not coming (a warm-up `store.prefetch(hot_ids)` is
    such a batch; kept, it would hold its rows protected and send every lookup down the slower
    windowed path for good)."""

    MAX_BATCHES = 64   # bound on remembered batches (a prefetcher runs a few ahead)
    MAX_AGE_LOOKUPS = 2 * MAX_BATCHES   # (a margin over the deepest window a prefetcher keeps)

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []
        self.read: list[np.ndarray] = []     # rows the prefetcher read for each batch (sorted)
        self.born: list[int] = []            # `lookups` when each batch was prefetched
        self.lookups = 0
        self.frontier = Frontier()

    def window(self) -> np.ndarray:
        return window_ids(*self.batches)

    def _keep(self, keep) -> None:
        self.batches, self.read, self.born = ([x[k] for k in keep] for x in (self.batches, self.read, self.born))

    def note_lookup(self) -> None:
        """Count one lookup of the table; drop the batches it proves stale (see the class doc)."""
        self.lookups += 1
        if self.born and self.lookups - self.born[0] > self.MAX_AGE_LOOKUPS:
            self._keep([k for k, b in enumerate(self.born) if self.lookups - b <= self.MAX_AGE_LOOKUPS])

    def note_prefetch(self, ids: np.ndarray, protect: np.ndarray | None) -> np.ndarray:
        """Record a prefetch of the batch `ids` (sorted distinct) with window `protect`; return the
        sorted ids of the window's earlier batches (what `Frontier.admit` calls `ahead`)."""
        if protect is None:
            keep = list(range(len(self.batches)))
            ahead = self.window()
        else:
            ahead = window_ids(protect)
            inside = np.union1d(ahead, ids)
            keep = [k for k, b in enumerate(self.batches) if np.isin(b, inside, assume_unique=True).all()]
        self._keep(keep)
        if len(ids):
            self.batches, self.read, self.born = self.batches + [ids], self.read + [ids[:0]], self.born + [self.lookups]
        self._keep(range(max(0, len(self.batches) - self.MAX_BATCHES), len(self.batches)))
        return ahead

    def note_read(self, ids: np.ndarray) -> None:
        """The rows the last prefetch read for its batch."""
        if self.read:
            self.read[-1] = np.sort(np.asarray(ids, np.int64))

    def coming(self, ids: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """At a lookup of the batch `ids` (sorted distinct): (the batches after it, soonest first;
        the rows read ahead for it). A batch not read ahead finds every remembered batch to come.
        The rows read ahead for a batch are its first reads, not re-reads: a policy that promotes
        rows read again (S3-LRU) must not be told they were hit (`fresh_hits`)."""
        for k, b in enumerate(self.batches):
            if len(b) == len(ids) and np.array_equal(b, ids):
                mine = self.read[k]
                self._keep(range(k + 1, len(self.batches)))
                return list(self.batches), mine
        return list(self.batches), ids[:0]


def fresh_hits(hit_ids: np.ndarray, hit_slots: np.ndarray, read_ahead: np.ndarray) -> np.ndarray:
    """Slots of `hit_slots` to touch: hits on rows other than those read ahead for this batch."""
    if not len(read_ahead) or not len(hit_slots):
        return hit_slots
    return hit_slots[~np.isin(hit_ids, read_ahead)]


def staging_room(index: CacheIndex, staged_rows: int) -> int:
    """Rows a staging buffer beside `index` may still take: the cache's empty slots less what is
    already staged, so cache rows + staged rows stay within the slots the budget bought."""
    return max(0, int(index.capacity_rows) - int(index.resident_rows) - int(staged_rows))


def staged_positions(staged_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of `ids` found in the sorted `staged_ids` of a staging buffer, their positions there)."""
    if not len(staged_ids) or not len(ids):
        return np.zeros(len(ids), np.bool_), np.zeros(0, np.int64)
    pos = np.minimum(np.searchsorted(staged_ids, ids), len(staged_ids) - 1)
    found = staged_ids[pos] == ids
    return found, pos[found]
