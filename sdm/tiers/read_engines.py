"""The read engines of the SCM tier behind one Protocol, and the one place that picks an engine.

An engine issues a batch of (offset, length) O_DIRECT reads with `queue_depth` requests in flight:
- "aio" (`aio_engine.AioReader`): Linux kernel AIO, its submit/reap loop a numba kernel; the
  default wherever the syscalls exist and the kernel builds;
- "threads" (`thread_engine.ThreadReader`): a pool of threads looping `os.preadv`; the portable
  fallback, and the only one ("auto" never falls back to a second AIO loop).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Protocol

import numpy as np

from sdm.tiers.aio_engine import AioReader
from sdm.tiers.thread_engine import ThreadReader

ENGINES = ("auto", "aio", "threads")


class Reader(Protocol):
    """Reads `lengths[i]` bytes at `offsets[i]` of `fd` into `buf[i*stride:]`, `queue_depth` in flight.

    `on_complete(indices)` is called with indices of reads that have landed in full (every index
    exactly once), so callers can check them while later reads are still in flight; an exception it
    raises aborts the batch and propagates.
    """

    queue_depth: int
    name: str

    def read(self, fd: int, offsets: np.ndarray, lengths: np.ndarray, buf: np.ndarray, stride: int,
             on_complete: Callable[[np.ndarray], None] | None = None) -> None: ...

    def close(self) -> None: ...


def make_reader(engine: str = "auto", queue_depth: int = 32) -> Reader:
    """The read engine: "aio" (default where available), "threads", or "auto" (aio, else threads)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown I/O engine {engine!r}; expected one of {ENGINES}")
    if int(queue_depth) < 1:
        raise ValueError(f"queue_depth must be >= 1, got {queue_depth}")
    if engine in ("auto", "aio"):
        try:
            return AioReader(queue_depth)
        except OSError as exc:
            if engine == "aio":
                raise
            warnings.warn(f"kernel AIO unavailable ({exc}); using the thread-pool reader", RuntimeWarning,
                          stacklevel=2)
    return ThreadReader(queue_depth)
