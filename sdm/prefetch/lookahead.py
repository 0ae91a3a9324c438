"""Look-ahead prefetch: read the misses of batches i+1..i+k into the DRAM cache while batch i runs.

    for batch in Prefetcher(store, loader, depth=2):
        model(*batch)                    # its lookups now hit the DRAM cache

A background thread walks the batch source ahead of the consumer by at most `depth` batches. For
each upcoming batch it calls `store.prefetch`, which reads the rows missing from every tier from
SCM (one read per distinct page, at the store's queue depth) and inserts them into the DRAM cache,
protecting the rows of the batch being computed and of the batches already prefetched: the store's
tables follow `sdm.cache.window` (a row read ahead stays until its batch used it, only rows that
get a slot are read, lookups place their misses by next use in the window). Closing the prefetcher
empties the window. SCM reads release the GIL, so they overlap the consumer's compute.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch

from sdm.core.errors import InvalidInputError
from sdm.core.checks import whole_number

_END = object()


def default_ids_of(tables: list[str]) -> Callable[[Any], dict[str, np.ndarray]]:
    """Row ids per table of a batch given as {table: indices | (indices, offsets)} or as a
    sequence aligned with `tables` of (indices, offsets) pairs (what Trace.batch returns)."""

    def ids(x) -> np.ndarray:
        if isinstance(x, tuple):
            x = x[0]
        return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

    def ids_of(batch) -> dict[str, np.ndarray]:
        if isinstance(batch, Mapping):
            return {k: ids(v) for k, v in batch.items()}
        if len(batch) != len(tables):
            raise InvalidInputError(f"batch has {len(batch)} entries, store has {len(tables)} tables")
        return {t: ids(v) for t, v in zip(tables, batch)}

    return ids_of


class Prefetcher:
    """Iterate `batches` with a background thread prefetching up to `depth` batches ahead."""

    def __init__(self, store, batches: Iterable, depth: int = 2, ids_of: Callable[[Any], Mapping] | None = None):
        self.depth = whole_number(depth, "prefetch depth", minimum=1)
        if not callable(getattr(store, "prefetch", None)):
            raise InvalidInputError(f"Prefetcher needs an EmbeddingStore, got {type(store).__name__}")
        self.store = store
        self.batches = batches
        self.ids_of = ids_of or default_ids_of(store.tables)
        self._cond = threading.Condition()
        self._current = 0          # index of the batch the consumer is computing
        self._stop = False
        self._window: deque[tuple[int, Mapping]] = deque()  # (batch index, ids) not yet finished
        self._q: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._released = False
        # Overlap check: `wait_s` is the time the consumer (the lookup thread) sat blocked waiting
        # for a batch whose prefetch had not finished, `prefetch_s` the time the background thread
        # spent in store.prefetch (SCM reads + inserts). Fully overlapped: wait_s ~ 0.
        self.wait_s = 0.0
        self.prefetch_s = 0.0
        self.batches_done = 0

    def _protect(self) -> dict[str, np.ndarray]:
        per: dict[str, list] = {}
        for _, ids in self._window:
            for t, a in ids.items():
                per.setdefault(t, []).append(a)
        return {t: np.concatenate(v) for t, v in per.items()}

    def _run(self) -> None:
        try:
            for j, batch in enumerate(self.batches):
                ids = self.ids_of(batch)
                with self._cond:
                    self._cond.wait_for(lambda: self._stop or j <= self._current + self.depth)
                    if self._stop:
                        return
                    while self._window and self._window[0][0] < self._current:
                        self._window.popleft()
                    protect = self._protect()
                t0 = time.perf_counter()
                self.store.prefetch(ids, protect)
                self.prefetch_s += time.perf_counter() - t0
                with self._cond:
                    self._window.append((j, ids))
                self._q.put(batch)
        except BaseException as exc:  # handed to the consumer, raised there
            self._q.put(exc)
        finally:
            self._q.put(_END)

    def __iter__(self) -> Iterator:
        self._thread = threading.Thread(target=self._run, name="sdm-prefetch", daemon=True)
        self._thread.start()
        i = 0
        try:
            while True:
                t0 = time.perf_counter()
                item = self._q.get()
                if i > 0:  # the first batch has nothing to overlap with
                    self.wait_s += time.perf_counter() - t0
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                with self._cond:
                    self._current = i
                    self._cond.notify_all()
                yield item
                i += 1
                self.batches_done = i
        finally:
            self.close()

    def overlap(self) -> dict:
        """{"wait_s", "prefetch_s", "hidden": share of prefetch time not waited for (1 = fully
        overlapped)}, over the batches consumed so far (the first batch excluded from wait_s)."""
        hidden = 1.0 - self.wait_s / self.prefetch_s if self.prefetch_s > 0 else 1.0
        return {"wait_s": self.wait_s, "prefetch_s": self.prefetch_s, "hidden": max(0.0, hidden)}

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
            if not self._thread.is_alive() and not self._released:
                # an empty window: the rows this prefetcher protected may be evicted again
                self._released = True
                none = {t: np.zeros(0, np.int64) for t in self.store.tables}
                self.store.prefetch(none, none)
