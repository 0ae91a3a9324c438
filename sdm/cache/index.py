"""The set-associative index of the DRAM cache: which row sits in which slot, and which slot goes next.

Layout: `num_sets` sets of `ways` slots. A row id maps to one set by a multiplicative hash; a
lookup compares the id against the set's `ways` tags (a compiled loop over the batch, no per-row
Python). `place` admits a whole batch of missed rows at once: misses are sorted by set, ranked
within their set, and the r-th miss of a set takes the set's r-th best victim (empty slots first,
then lowest policy key); protected slots (rows the current or coming batches still need) are never
chosen, and misses that find no victim bypass the cache.

Direct layout: when the rows cover the whole table (and layout="auto"), row r simply lives in
slot r (num_sets = num_rows, one way): a probe is one compare and nothing is ever evicted.

This class holds no row data: `sdm.cache.dram_cache.DramCache` adds the rows (and a lock) on top,
and the simulator (`sdm.cachesim.runtime_replay`) drives this very code to replay the runtime's cache.

Memory: int32 tags when row ids fit (else int64) + the policy's score (int32; int64 for LFU, which
packs a count beside the stamp): 8 bytes per slot (12 for LFU), or 12 (16) for tables of >= 2**31 rows.
"""
from __future__ import annotations

import numpy as np

from sdm.cache import native_probe
from sdm.cache.base import CachePolicy, ScorePolicy
from sdm.cache.probe_kernels import _marked_slots, _probe, _probe_all_hit, _set_of, _stamp
from sdm.cache.policies import make_policy
from sdm.core.checks import whole_number
from sdm.core.errors import InvalidInputError

_INT32_TAG_LIMIT = 2**31 - 1
# Index bytes per cached row: tag (int32 when row ids fit, else int64) + the policy's score
# (int32, int64 for LFU). INDEX_BYTES_PER_ROW: the largest case.
INDEX_BYTES_PER_ROW = 8 + 8


def _score_dtype(policy) -> np.dtype:
    return np.dtype(getattr(policy, "score_dtype", np.int32))


def index_bytes_per_row(num_rows: int, policy: str | CachePolicy = "lru") -> int:
    """Bytes of index per cached row of a table of `num_rows` rows under `policy` (tag + score)."""
    pol = make_policy(policy, runtime=True) if isinstance(policy, str) else policy
    return (4 if num_rows <= _INT32_TAG_LIMIT else 8) + _score_dtype(pol).itemsize \
        + int(getattr(pol, "extra_bytes_per_row", 0))    # per-slot state beside the score (a ghost)


# Ids of a batch tried against each read-ahead batch before the all-hit pass tracks slots for the
# window rule: one not in b proves the batch is not b (then the rule is the plain pass: all fresh).
WINDOW_SAMPLE = 8


def _could_match(ids: np.ndarray, batches) -> list[int]:
    """Positions of the read-ahead `batches` (sorted distinct ids each) that may hold the distinct ids
    of `ids`: no longer than the batch, and holding WINDOW_SAMPLE of its ids spread over it."""
    sample = ids[np.linspace(0, len(ids) - 1, min(WINDOW_SAMPLE, len(ids))).astype(np.int64)]
    out = []
    for k, b in enumerate(batches):
        if 0 < len(b) <= len(ids):
            pos = np.minimum(np.searchsorted(b, sample), len(b) - 1)
            if (b[pos] == sample).all():
                out.append(k)
    return out


def geometry(num_rows: int, rows: int, ways: int, layout: str = "auto") -> tuple[bool, int, int]:
    """(direct, num_sets, ways) of a cache of `rows` slots over a table of `num_rows` rows: direct
    when the rows cover the table (layout "auto"), else whole sets of `ways` (fewer ways when the
    cache is smaller than one set), the remainder unused."""
    if layout not in ("auto", "hashed"):
        raise InvalidInputError(f"layout must be 'auto' or 'hashed', got {layout!r}")
    if layout == "auto" and rows >= num_rows:
        return True, num_rows, 1
    ways = max(1, min(ways, rows))   # (layout="hashed" may be given more room than the table)
    return False, rows // ways, ways


def _keys(key) -> tuple[np.ndarray, object, object]:
    """(keys as a writable copy, value that goes first, value that never goes). Integer keys stay
    int64 (LFU packs a count and a 40-bit stamp: a float would round the stamp away)."""
    key = np.asarray(key)
    if np.issubdtype(key.dtype, np.integer):
        info = np.iinfo(np.int64)
        return key.astype(np.int64, copy=True), info.min, info.max
    return key.astype(np.float64, copy=True), -np.inf, np.inf


class CacheIndex:
    """Tags and policy scores of a set-associative cache of `rows` slots (see module doc)."""

    def __init__(self, num_rows: int, rows: int, *, ways: int = 16, policy: str | CachePolicy = "lru",
                 hot_ids: np.ndarray | None = None, table: str = "?", layout: str = "auto"):
        ways = whole_number(ways, f"table {table!r}: ways", minimum=1)
        if layout not in ("auto", "hashed"):
            raise InvalidInputError(f"table {table!r}: layout must be 'auto' or 'hashed', got {layout!r}")
        self.table = table
        self.num_rows = int(num_rows)
        self.policy = make_policy(policy, hot_ids, table=table, runtime=True)
        self.index_bytes_per_row = index_bytes_per_row(self.num_rows, self.policy)
        self.direct, self.num_sets, self.ways = geometry(self.num_rows, int(rows), ways, layout)
        self.capacity_rows = self.num_sets * self.ways
        tag_dtype = np.int32 if self.num_rows <= _INT32_TAG_LIMIT else np.int64
        shape = (max(self.num_sets, 1), self.ways) if self.capacity_rows else (0, self.ways)
        self.tags = np.full(shape, -1, dtype=tag_dtype)
        self.score = np.zeros(self.tags.shape, dtype=_score_dtype(self.policy))
        limit = getattr(self.policy, "stamp_limit", None)
        self._stamp_limit = limit() if limit is not None else int(np.iinfo(self.score.dtype).max)
        # Optional admission filter (bool per row id, e.g. "predicted warm" from a profile): rows
        # outside it enter at low priority only (free or low-priority slots), so a stream of
        # one-off cold misses cannot flush warm rows, yet room the warm rows leave is used.
        self.admit_mask: np.ndarray | None = None
        self._resident = 0
        self.stamp = 0  # touch/insert calls so far: the policies' clock

    @property
    def index_bytes(self) -> int:
        """Bytes of the index arrays (tags, scores), not counting row data."""
        return self.tags.nbytes + self.score.nbytes

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
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not self.direct and native_probe.usable(self.tags):
            out = np.empty(len(ids), np.int64)
            native_probe.probe(self.tags, self.num_sets, ids, out, stop_at_miss=False)
            return out
        return _probe(self.tags, ids, self.num_sets, self.direct)

    def probe_all_hit(self, ids: np.ndarray, lookahead=None) -> np.ndarray | None:
        """Slots of `ids` (int64; int32 from the C kernel's stamping pass) when every one is cached,
        each read told to the policy as `touch` would (one compiled pass, GIL released, for LRU-like
        policies whose hit is a stamp); None,
        with nothing changed, when some id is absent (ids out of the table's range never are
        cached, so a non-None answer also proves them in range).

        `lookahead`: an open look-ahead window (`sdm.cache.window.Lookahead`, duck-typed: this
        layer sits below it). Then the lookup path's window rule holds as on the general path:
        the batch is matched against the batches read ahead (`Lookahead.coming`, which drops the
        matched batch and those before it) and only fresh hits are told to the policy, not the
        rows read ahead for this very batch (`sdm.cache.window.fresh_hits`: their first reads)."""
        if not self.capacity_rows or not len(ids):
            return None if len(ids) else np.zeros(0, np.int64)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        windowed = lookahead is not None and len(lookahead.batches) > 0 and bool(_could_match(ids, lookahead.batches))
        if self.direct:   # no evictions: nothing to tell the policy
            if ids.min() < 0 or ids.max() >= self.num_rows:   # (the probe indexes by id)
                return None
            if not windowed:
                slots = self.probe(ids)
                return slots if slots.min() >= 0 else None
        stamp_hits = type(self.policy).on_hit is ScorePolicy.on_hit and self.stamp < self._stamp_limit
        out = np.empty(len(ids), np.int64)
        mask = self.admit_mask if self.admit_mask is not None else np.zeros(0, np.bool_)
        seen = np.zeros((self.capacity_rows + 63) // 64 if windowed else 0, np.uint64)
        if not self.direct and native_probe.usable(self.tags):
            if stamp_hits and not windowed and self.score.dtype == np.int32:
                # probe and stamps in one C call (the stamps once every id is proved cached); int32
                # slots (the tags are: capacity < 2**31), half the bytes for the pooling to read
                out32 = np.empty(len(ids), np.int32)
                miss = native_probe.probe_stamp(self.tags, self.num_sets, ids, out32, self.score, self.stamp + 1,
                                                mask if len(mask) else None)
                if miss >= 0:
                    return None
                self.stamp += 1
                return out32
            # the C probe; the window's stamps (or the policy's touch) follow once every id is
            # proved cached, so a miss leaves everything as it was
            miss, distinct = native_probe.probe(self.tags, self.num_sets, ids, out, True, seen if windowed else None)
            if miss >= 0:
                return None
            if windowed:
                self._window_hits(ids, out, seen, distinct, lookahead, stamp_hits, mask)
            elif stamp_hits:
                self.stamp += 1
                self._stamp_slots(ids, out, mask, seen)
            else:
                self.touch(out)
            return out
        miss = _probe_all_hit(self.tags, ids, self.num_sets, self.direct, self.score, self.stamp + 1,
                              stamp_hits, mask, out, seen)
        if miss >= 0:
            return None
        if windowed:
            self._window_hits(ids, out, seen, -1 - miss, lookahead, stamp_hits, mask)
        elif stamp_hits:
            self.stamp += 1
        else:
            self.touch(out)
        return out

    def _stamp_slots(self, ids, slots, mask, skip) -> None:
        """score[slot] = self.stamp for `slots` whose row is in a non-empty `mask`, bit clear in a
        non-empty `skip` (the C kernel where it serves int32 scores, else numba's)."""
        if self.score.dtype == np.int32 and native_probe.usable(self.tags):
            native_probe.stamp(self.score, slots, ids, self.stamp, mask if len(mask) else None,
                               skip if len(skip) else None)
        else:
            _stamp(self.score, ids, slots, self.stamp, mask, skip)

    def _window_hits(self, ids, slots, seen, distinct, lookahead, stamp_hits, mask) -> None:
        """The window rule of an all-hit batch whose slots are marked in `seen` (`distinct` of them):
        its distinct ids equal a read-ahead batch b iff b has `distinct` ids, each cached in a
        marked slot (b is distinct; so no sort of the batch's ids is needed to match)."""
        read_ahead = None
        for k in _could_match(ids, lookahead.batches):
            b = lookahead.batches[k]
            if len(b) == distinct and _marked_slots(self.tags, b, self.num_sets, self.direct, seen, False) == distinct:
                _, read_ahead = lookahead.coming(b)   # (drops b and the batches before it)
                break
        if self.direct:
            return
        skip = np.zeros(len(seen) if read_ahead is not None and len(read_ahead) else 0, np.uint64)
        fresh = distinct - (_marked_slots(self.tags, read_ahead, self.num_sets, False, skip, True) if len(skip) else 0)
        if not fresh:   # every row read ahead for this batch: no policy update, no tick (as `touch([])`)
            return
        if stamp_hits:
            self.stamp += 1
            self._stamp_slots(ids, slots, mask, skip)
        else:
            self.touch(slots if not len(skip) else slots[~np.isin(ids, read_ahead)])

    def touch(self, slots: np.ndarray) -> None:
        """Tell the policy one batch read these slots (moot in the direct layout: no evictions)."""
        if len(slots) and not self.direct:
            if self.admit_mask is not None:
                # rows outside the admission mask (prefetched cold rows) stay low priority
                slots = slots[self.admit_mask[self.tags.reshape(-1)[slots]]]
            self._tick()
            self.policy.on_hit(self.score.reshape(-1), slots, self.stamp)

    def place(self, ids: np.ndarray, protect_slots: np.ndarray | None = None, *, low_priority: bool = False,
              ignore_mask: bool = False) -> np.ndarray:
        """Assign slots to distinct absent ids (their tags set, the policy told); each one's slot or -1.

        Slots in `protect_slots` are not evicted. Misses that find no evictable slot in their set,
        or that the policy does not admit, get -1 (bypass). Rows outside `admit_mask` are placed at
        low priority. `low_priority` (rows that came along on a fetched page, unasked): they take
        empty slots or replace other low-priority rows only (score 0: never read), never a row some
        lookup has read, and are scored by the policy's `on_insert_low` (first to go).
        `ignore_mask`: skip `admit_mask` (prefetched rows, which a coming batch is known to need).
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
                out[wi] = self.place(ids[wi], protect_slots, ignore_mask=True)
                placed = out[wi][out[wi] >= 0]
                prot = placed if protect_slots is None else np.concatenate([np.asarray(protect_slots, np.int64), placed])
                out[ci] = self.place(ids[ci], prot, low_priority=True, ignore_mask=True)
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
        by_set = getattr(self.policy, "victim_key_sets", None)   # a policy whose order differs by set (duel)
        key, first, never = _keys(self.policy.victim_key(self.score[usets]) if by_set is None
                                  else by_set(self.score[usets], usets, self.num_sets))
        if low_priority:  # only empty or other low-priority (never read, score 0) slots
            key[self.score[usets] != 0] = never
        key[self.tags[usets] < 0] = first  # empty slots first
        if protect_slots is not None and len(protect_slots):
            # protected slots in the sets at hand (usets is sorted): never chosen
            prot = np.asarray(protect_slots, np.int64)
            row = np.minimum(np.searchsorted(usets, prot // self.ways), len(usets) - 1)
            mine = usets[row] == prot // self.ways
            key[row[mine], prot[mine] % self.ways] = never
        victims = np.argsort(key, axis=1, kind="stable")
        evictable = (key != never).sum(axis=1)
        ok = rank < evictable[set_row]
        slots = sets[ok] * self.ways + victims[set_row[ok], rank[ok]]
        placed = cand[ok]
        flat_tags = self.tags.reshape(-1)
        self._resident += int((flat_tags[slots] < 0).sum())
        flat_tags[slots] = ids[placed]
        self._tick()
        hook = getattr(self.policy, "on_insert_low", None) if low_priority else None
        with_ids = None if low_priority else getattr(self.policy, "on_insert_ids", None)
        if with_ids is not None:   # a policy that scores new rows by their ids (S3-LRU's ghost)
            with_ids(self.score.reshape(-1), slots, ids[placed], self.stamp)
        else:
            (hook or self.policy.on_insert)(self.score.reshape(-1), slots, self.stamp)
        out[placed] = slots
        return out

    def _tick(self) -> None:
        """Advance the policies' clock; renumber the stamps first when it would pass their limit."""
        if self.stamp >= self._stamp_limit and hasattr(self.policy, "renumber"):
            self.stamp = self.policy.renumber(self.score.reshape(-1))
        self.stamp += 1

    def clear_index(self) -> None:
        self.tags.fill(-1)
        self.score.fill(0)
        self._resident = 0
