"""Static: a fixed hot set chosen ahead of time (top-k of a profile, or a given list); no fills.

This is what pinning the hottest rows in a fast tier does. Replay is one vectorized membership
test. With no hot set given, the top-capacity ids by count in the replayed stream itself are used:
the best static set in hindsight. Ties in count go to the smaller id so the choice is deterministic.
In page mode, given hot rows are mapped to their pages (first-listed first); counts rank pages.

Runtime hooks: admit only the hot ids (the DRAM cache loads them once at open, `needs_static_fill`);
nothing is scored, so nothing the set holds is preferred over another. Without hot ids the runtime
admits nothing.
"""
from __future__ import annotations

import numpy as np

from sdm.cache.base import ScorePolicy
from sdm.core.checks import integer_array
from sdm.core.errors import InvalidInputError


def _ids(values, what: str) -> np.ndarray:
    arr = integer_array(values, f"Static: {what}").reshape(-1)
    if arr.size and arr.min() < 0:
        pos = int(np.argmax(arr < 0))
        raise InvalidInputError(f"Static: {what}: negative id {arr[pos]} at position {pos}")
    return arr


def top_k(counts: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest counts, ties to the smaller key (keys ascending)."""
    k = max(0, min(int(k), counts.size))
    order = np.lexsort((keys, -counts))
    return order[:k]


def _first_unique(values: np.ndarray) -> np.ndarray:
    """Distinct values in order of first appearance."""
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


class Static(ScorePolicy):
    """Pinned set: `hot_ids` in priority order (original ids), or `counts` indexed by original id,
    or neither (top ids by count in the stream). `hot_pages` (page ids in priority order) overrides
    the mapping of hot_ids through the stream's page_of in page mode, for callers whose stream
    holds remapped rows."""

    name = "static"

    def __init__(self, hot_ids=None, counts=None, *, hot_pages=None) -> None:
        if hot_ids is not None and counts is not None:
            raise InvalidInputError("Static: give hot_ids or counts, not both")
        self.hot_ids = None if hot_ids is None else _ids(hot_ids, "hot_ids")
        self.hot_pages = None if hot_pages is None else _ids(hot_pages, "hot_pages")
        self.counts = None if counts is None else np.asarray(counts)
        if self.counts is not None and (self.counts.ndim != 1 or (self.counts.size and self.counts.min() < 0)):
            raise InvalidInputError("Static: counts must be a 1-D array of non-negative counts per id")

    # ---- runtime hooks ----
    def admit(self, ids):
        if self.hot_ids is None:
            return np.zeros(len(ids), dtype=bool)
        return np.isin(ids, self.hot_ids)

    def on_hit(self, score, slots, stamp):
        pass

    def on_insert(self, score, slots, stamp):
        score[slots] = 0

    on_insert_low = on_insert

    @classmethod
    def from_profile(cls, profile, k: int) -> "Static":
        """Top-k rows of a table profile (anything with `hot_rows(k)`, e.g. TableProfile)."""
        return cls(hot_ids=np.asarray(profile.hot_rows(int(k))))

    def hot_units(self, stream, capacity: int) -> np.ndarray:
        """Original ids (rows, or pages in page mode) of the pinned set, at most `capacity`."""
        capacity = max(0, int(capacity))
        if stream.unit == "page" and self.hot_pages is not None:
            return _first_unique(self.hot_pages)[:capacity]
        if self.hot_ids is not None:
            hot = self.hot_ids
            if stream.unit == "page":
                if hot.size and hot.max() >= stream.page_of.size:
                    raise InvalidInputError(f"Static: hot id {hot.max()} has no page in page_of")
                hot = _first_unique(stream.page_of[hot])
            return _first_unique(hot)[:capacity]
        if self.counts is None:
            return stream.keys[top_k(stream.counts(), stream.keys, capacity)]
        counts = self.counts
        if stream.unit == "page":  # a page is as hot as the sum of its rows
            n = min(counts.size, stream.page_of.size)
            counts = np.bincount(stream.page_of[:n], weights=counts[:n])
        keys = np.arange(counts.size, dtype=np.int64)
        return keys[top_k(counts, keys, capacity)]

    def preloaded_units(self, stream, capacity: int) -> int:
        return int(self.hot_units(stream, capacity).size)

    def replay(self, stream, capacity: int) -> np.ndarray:
        hot = self.hot_units(stream, capacity)
        pinned = np.zeros(stream.num_ids, dtype=bool)
        idx = np.searchsorted(stream.keys, hot)
        ok = idx < stream.keys.size
        ok[ok] = stream.keys[idx[ok]] == hot[ok]
        pinned[idx[ok]] = True
        return pinned[stream.ids]
