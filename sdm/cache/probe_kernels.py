"""The cache index's compiled kernels (numba): hash of an id to its set, probe, the all-hit pass,
recency stamps, slot marks. sdm/cache/index.py drives them; sdm/cache/native/probe.c is the C twin
of `_probe` (same hash, same slots) that index.py prefers where it is built.
"""
from __future__ import annotations

import numba
import numpy as np


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
        if x < 0 or (direct and x >= num_sets):
            out[i] = -1   # never cached; and an empty slot's tag is -1: id -1 would "find" one
            continue
        s = x if direct else _hash_set(x, num_sets)
        found = -1
        for w in range(ways):  # no early exit: a fixed-length loop the compiler can unroll
            if tags[s, w] == x:
                found = w
        out[i] = s * ways + found if found >= 0 else -1
    return out


# How many ids ahead the all-hit pass reads the tag set of (a software prefetch; 8-32 measured alike).
PROBE_AHEAD = 16


@numba.njit(cache=True, nogil=True)
def _probe_all_hit(tags, ids, num_sets, direct, score, stamp, stamp_hits, mask, out, seen):
    """The all-hit path in one call: each id's slot into `out`; at the first absent id, its
    position is returned with nothing changed; when every id is cached (-1), with `stamp_hits`,
    the recency stamp is written to each slot's score (rows outside a non-empty `mask` keep theirs).
    With a non-empty `seen` (one bit per slot, zeroed), each hit slot's bit is set instead of
    stamping, and -1 - (distinct slots) is returned (a look-ahead window decides what to stamp)."""
    ways = tags.shape[1]
    n = ids.shape[0]
    touched = 0
    track = seen.shape[0] > 0
    distinct = 0
    key = np.empty(1, tags.dtype)
    tag_max = np.iinfo(tags.dtype).max
    for i in range(n):
        if not direct and i + PROBE_AHEAD < n:
            # read the set of the id PROBE_AHEAD places on now: more tag-line misses in flight
            # than the out-of-order window alone keeps (measured ~30% off the pass)
            touched += tags[_hash_set(ids[i + PROBE_AHEAD], num_sets), 0]
        x = ids[i]
        s = x if direct else _hash_set(x, num_sets)
        found = -1
        if 0 <= x <= tag_max:  # (an empty slot's tag is -1: a negative id is never cached)
            key[0] = x          # compared in the tags' own width (int32 mostly): ~5% off the pass
            xt = key[0]
            for w in range(ways):  # fixed length, as in _probe
                if tags[s, w] == xt:
                    found = w
        if found < 0:
            return i
        slot = s * ways + found
        out[i] = slot
        if track:   # branch-free (a data-dependent branch here mispredicts on every new slot)
            word, sh = slot >> 6, np.uint64(slot & 63)
            old = seen[word]
            distinct += np.int64(((old >> sh) & np.uint64(1)) ^ np.uint64(1))
            seen[word] = old | (np.uint64(1) << sh)
    if stamp_hits and not track:
        _stamp(score, ids, out, stamp, mask, seen)
    return -1 - distinct - (touched & 0)   # (uses the look-ahead reads so the compiler keeps them)


@numba.njit(cache=True, nogil=True)
def _stamp(score, ids, slots, stamp, mask, skip):
    """score[slot] = stamp for each of `slots` whose row is inside a non-empty `mask` and whose
    bit is not set in a non-empty `skip` (one bit per slot)."""
    flat_score = score.reshape(-1)
    masked = mask.shape[0] > 0
    skipping = skip.shape[0] > 0
    for i in range(slots.shape[0]):
        s = slots[i]
        if skipping and skip[s >> 6] & (np.uint64(1) << np.uint64(s & 63)):
            continue
        if not masked or mask[ids[i]]:
            flat_score[s] = stamp


@numba.njit(cache=True, nogil=True)
def _marked_slots(tags, ids, num_sets, direct, bits, mark):
    """For sorted distinct `ids`: with `mark`, set the bit of each cached one's slot in `bits` and
    return how many are cached; without, return how many are cached with their slot's bit set."""
    ways = tags.shape[1]
    count = 0
    for i in range(ids.shape[0]):
        x = ids[i]
        if x < 0 or (direct and x >= num_sets):
            continue
        s = x if direct else _hash_set(x, num_sets)
        for w in range(ways):
            if tags[s, w] == x:
                slot = s * ways + w
                word, bit = slot >> 6, np.uint64(1) << np.uint64(slot & 63)
                if mark:
                    bits[word] |= bit
                    count += 1
                elif bits[word] & bit:
                    count += 1
    return count
