"""Replacement policies of the DRAM cache: each a small class overriding a few vectorized hooks.

A policy owns the meaning of the cache's per-slot `score` (int32): the set-associative cache
evicts, within a set, the slot whose `victim_key` is lowest. Hooks get whole batches of slots,
never single rows. Adding a policy touches nothing else: subclass `CachePolicy` and register it.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from sdm.core.errors import InvalidInputError

_INT32_MAX = np.iinfo(np.int32).max


@runtime_checkable
class CachePolicy(Protocol):
    name: str

    def admit(self, ids: np.ndarray) -> np.ndarray | None:
        """Bool mask of which missed ids may enter the cache (None: all)."""

    def on_hit(self, score: np.ndarray, slots: np.ndarray, stamp: int) -> None:
        """Update flat `score` for slots just read (duplicates possible)."""

    def on_insert(self, score: np.ndarray, slots: np.ndarray, stamp: int) -> None:
        """Set flat `score` for slots just filled (distinct)."""

    # Optional hook (not part of the protocol, so older policy objects still qualify):
    # on_insert_low(score, slots, stamp): set `score` for slots filled at low priority (rows that
    # came along on a fetched page, not asked for) so they go before any row a lookup has read.
    # Without it, the cache uses on_insert.

    def victim_key(self, score_rows: np.ndarray) -> np.ndarray:
        """Eviction key for each slot of some sets [k, ways]; lowest goes first."""


class LRU:
    """Least recently used: score = stamp of the last batch that read the row."""

    name = "lru"

    def admit(self, ids):
        return None

    def on_hit(self, score, slots, stamp):
        score[slots] = stamp

    def on_insert(self, score, slots, stamp):
        score[slots] = stamp

    def on_insert_low(self, score, slots, stamp):
        # older than anything read: evicted first unless read before the set fills
        score[slots] = 0

    def victim_key(self, score_rows):
        return score_rows


class LFU:
    """Least frequently used: score = reads since the row entered (saturating at int32 max)."""

    name = "lfu"

    def admit(self, ids):
        return None

    def on_hit(self, score, slots, stamp):
        # saturate rather than wrap: a row read 2**31 times stays the most frequent
        np.add.at(score, slots[score[slots] < _INT32_MAX], 1)

    def on_insert(self, score, slots, stamp):
        score[slots] = 1

    def on_insert_low(self, score, slots, stamp):
        score[slots] = 0  # never read yet: below every row that was

    def victim_key(self, score_rows):
        return score_rows


class StaticHotSet:
    """A fixed set of hot rows (from a profile or plan), loaded once and never evicted.

    Rows outside the set are never admitted, so misses on them go to SCM every time: the
    behaviour of a static placement, for comparison with the dynamic policies.
    """

    name = "static"

    def __init__(self, hot_ids: np.ndarray):
        self.hot_ids = np.unique(np.asarray(hot_ids, dtype=np.int64))

    def admit(self, ids):
        return np.isin(ids, self.hot_ids, assume_unique=False)

    def on_hit(self, score, slots, stamp):
        pass

    def on_insert(self, score, slots, stamp):
        score[slots] = 0

    def on_insert_low(self, score, slots, stamp):
        score[slots] = 0

    def victim_key(self, score_rows):
        return score_rows


POLICIES = {"lru": LRU, "lfu": LFU, "static": StaticHotSet}


def make_policy(policy: str | CachePolicy, hot_ids: np.ndarray | None = None, *, table: str = "?") -> CachePolicy:
    """A policy object from a name ("lru", "lfu", "static") or pass an object through."""
    if not isinstance(policy, str):
        if not isinstance(policy, CachePolicy):
            raise InvalidInputError(f"table {table!r}: cache policy {policy!r} lacks the CachePolicy hooks")
        return policy
    if policy not in POLICIES:
        raise InvalidInputError(f"table {table!r}: unknown cache policy {policy!r}; expected one of {sorted(POLICIES)}")
    if policy == "static":
        return StaticHotSet(np.zeros(0, np.int64) if hot_ids is None else hot_ids)
    return POLICIES[policy]()
