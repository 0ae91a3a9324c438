"""The one cache-policy interface, shared by the runtime's DRAM cache and the simulator.

A policy owns the meaning of the cache's per-slot `score` (`score_dtype`, int32 unless the policy
needs more): the set-associative index
(`sdm.cache.index.CacheIndex`) evicts, within a set, the slot whose `victim_key` is lowest. Hooks
get whole batches of slots, never single rows (cachetools style: a small base, each policy
overriding two or three hooks). A policy may also carry `replay(stream, capacity)`, a compiled
fully associative replay one lookup at a time: the simulator's fast engine for the same rule.

Stamps: the index counts its touch and insert calls (`stamp`, 1, 2, ...); a hook gets the stamp
of the call, so "more recent" is "larger stamp". Policies that pack a count beside the stamp
(LFU) keep the stamp in the low STAMP_BITS bits. Before the clock passes `stamp_limit()` the
index calls `renumber(score)`: the stamps become their ranks (same order, same ties), so a
32-bit score serves forever (2**31 calls is about a day of one table at 10,000 batches a second).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from sdm.core.errors import InvalidInputError

# Low bits of a packed score that hold the stamp: 2**40 touch/insert calls, about 1.7 years of a
# table served at 20,000 batches a second; the 23 bits above hold a count (saturating).
STAMP_BITS = 40
STAMP_MASK = (1 << STAMP_BITS) - 1


@runtime_checkable
class CachePolicy(Protocol):
    """What the runtime's set-associative cache needs from a replacement/admission policy."""

    name: str

    def admit(self, ids: np.ndarray) -> np.ndarray | None:
        """Bool mask of which missed ids may enter the cache (None: all)."""

    def on_hit(self, score: np.ndarray, slots: np.ndarray, stamp: int) -> None:
        """Update flat `score` for the slots one batch read (a slot may repeat: count it once)."""

    def on_insert(self, score: np.ndarray, slots: np.ndarray, stamp: int) -> None:
        """Set flat `score` for slots just filled (distinct)."""

    # Optional hook (not part of the protocol, so older policy objects still qualify):
    # on_insert_low(score, slots, stamp): set `score` for slots filled at low priority (rows that
    # came along on a fetched page, not asked for) so they go before any row a lookup has read.
    # Without it, the cache uses on_insert.
    # victim_key_sets(score_rows, sets, num_sets): victim_key for a policy whose order differs by
    # set (sdm.cache.duel's leader sets); the index passes the sets' numbers when it has it.

    def victim_key(self, score_rows: np.ndarray) -> np.ndarray:
        """Eviction key for each slot of some sets [k, ways]; lowest goes first."""


class ScorePolicy:
    """Base of the runtime-capable policies: admit all, score = stamp of the last read (LRU)."""

    name = "base"
    runtime = True   # the DRAM cache can run it (its hooks are real)
    score_dtype = np.int32

    def stamp_limit(self) -> int:
        return int(np.iinfo(self.score_dtype).max)

    def renumber(self, score: np.ndarray) -> int:
        """Rewrite the stamps in flat `score` as ranks 1..k (0, "never read", stays 0); return k."""
        stamps = score & STAMP_MASK if self.score_dtype == np.int64 else score
        nz = np.flatnonzero(stamps)
        if not nz.size:
            return 0
        rank = np.unique(stamps[nz], return_inverse=True)[1].reshape(-1) + 1
        score[nz] = (score[nz] - stamps[nz]) + rank.astype(score.dtype)
        return int(rank.max())

    def admit(self, ids):
        return None

    def on_hit(self, score, slots, stamp):
        score[slots] = stamp

    def on_insert(self, score, slots, stamp):
        score[slots] = stamp

    def on_insert_low(self, score, slots, stamp):
        score[slots] = 0   # older than anything read: evicted first unless read before the set fills

    def victim_key(self, score_rows):
        return score_rows


class OfflinePolicy:
    """Base of the policies only the simulator runs: they need the future (Belady's OPT) or queues
    and ghost lists the set-associative index does not keep. Their hooks say so."""

    name = "offline"
    runtime = False

    def _refuse(self, *args, **kwargs):
        raise InvalidInputError(f"cache policy {self.name!r} runs only in the simulator (sdm.cachesim); "
                                "the DRAM cache runs the policies in sdm.cache.policies.RUNTIME_POLICIES")

    admit = on_hit = on_insert = victim_key = _refuse
