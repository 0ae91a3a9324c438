"""The portable read engine: a pool of `queue_depth` threads, each looping `os.preadv` (GIL released
inside the syscall) over an interleaved share of a batch. Used where kernel AIO or its numba kernel
is unavailable, or when asked for (`engine="threads"`); it costs ~3x the CPU per read of AIO.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from sdm.tiers.direct_io import short_read


class ThreadReader:
    """`queue_depth` threads, each looping `os.preadv` over an interleaved share of the batch.

    The pool is shared by concurrent callers, so `queue_depth` bounds the reads in flight per reader
    (per store), as the AIO reader's shared budget does.
    """

    name = "threads"

    def __init__(self, queue_depth: int = 32) -> None:
        self.queue_depth = int(queue_depth)
        self._pool = ThreadPoolExecutor(self.queue_depth, thread_name_prefix="sdm-scm-read")

    def read(self, fd: int, offsets: np.ndarray, lengths: np.ndarray, buf: np.ndarray, stride: int,
             on_complete: Callable[[np.ndarray], None] | None = None) -> None:
        n = len(offsets)
        if n == 0:
            return
        self._read(fd, offsets, lengths, buf, stride)
        if on_complete is not None:
            on_complete(np.arange(n))

    def _read(self, fd: int, offsets: np.ndarray, lengths: np.ndarray, buf: np.ndarray, stride: int) -> None:
        n = len(offsets)
        mv = memoryview(buf)
        offs = offsets.tolist()
        lens = lengths.tolist()
        workers = min(self.queue_depth, n)

        def work(k: int) -> None:
            for i in range(k, n, workers):
                got = os.preadv(fd, [mv[i * stride : i * stride + lens[i]]], offs[i])
                if got != lens[i]:
                    raise short_read(fd, offs[i], lens[i], got)

        if workers == 1:
            work(0)
            return
        futs = [self._pool.submit(work, k) for k in range(workers)]
        wait(futs)  # all of them, even after a failure: none may write into `buf` once we return
        for fut in futs:
            fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
