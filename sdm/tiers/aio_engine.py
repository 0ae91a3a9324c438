"""The default read engine: Linux kernel AIO (io_setup / io_submit / io_getevents) through raw syscalls.

It needs no library: the syscalls are made by number through libc's `syscall`. iocbs for a whole
batch are built at once as a numpy structured array, so Python work is per batch, not per read; the
submit/reap loop itself is the numba kernel `aio_pump.pump`, which runs without the GIL and returns
every `step` completions so checksums are checked while later reads are still in flight. That
kernel is the only AIO loop: where it cannot be built, `read_engines.make_reader` falls back to the
thread-pool engine, not to a second loop.

Measured on the development VM (4 KiB random reads, QD32, 1 GiB file; see docs/pagestore.md):
AIO ~55k reads/s at ~0.3 CPU cores, the thread pool ~47k reads/s at ~1.4 cores, fio io_uring ~60k.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import threading
from collections.abc import Callable

import numpy as np

from sdm.tiers.direct_io import short_read

# Kernel AIO syscall numbers (io_setup, io_destroy, io_getevents, io_submit) per architecture.
_AIO_SYSCALLS = {"x86_64": (206, 207, 208, 209), "aarch64": (0, 1, 4, 2), "arm64": (0, 1, 4, 2)}

# struct iocb and struct io_event from <linux/aio_abi.h> (little-endian field order).
IOCB_DTYPE = np.dtype(
    [
        ("data", "<u8"), ("key", "<u4"), ("rw_flags", "<u4"), ("opcode", "<u2"), ("reqprio", "<i2"),
        ("fildes", "<u4"), ("buf", "<u8"), ("nbytes", "<u8"), ("offset", "<i8"), ("reserved2", "<u8"),
        ("flags", "<u4"), ("resfd", "<u4"),
    ]
)
IO_EVENT_DTYPE = np.dtype([("data", "<u8"), ("obj", "<u8"), ("res", "<i8"), ("res2", "<i8")])
_IOCB_CMD_PREAD = 0
MIN_STEP_READS = 64  # completions per hand-over to on_complete (at least 2 x queue_depth): few calls, still overlapped


class AioReader:
    """Linux kernel AIO; the numba kernel keeps up to `queue_depth` reads in flight per reader.

    Each concurrent caller takes its own AIO context from a small pool, so readers in several threads
    never steal each other's completions; they share one budget of `queue_depth` reads in flight, so
    the depth is per reader (per store), as with `ThreadReader`, and overlapping callers keep the
    device queue full across each other's batch boundaries.
    """

    name = "aio"

    def __init__(self, queue_depth: int = 32) -> None:
        nums = _AIO_SYSCALLS.get(platform.machine())
        if nums is None or not hasattr(os, "O_DIRECT"):
            raise OSError(errno.ENOSYS, f"kernel AIO syscall numbers unknown for {platform.machine()}")
        self._setup, self._destroy, self._getevents, self._submit = nums
        self._pump = load_pump()
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.syscall.restype = ctypes.c_long
        self.queue_depth = int(queue_depth)
        self._free: list[int] = []
        self._all: list[int] = []
        self._lock = threading.Lock()
        self._budget = threading.Condition(threading.Lock())
        self._in_flight = 0  # reads in flight over all callers, <= queue_depth
        self._release(self._acquire())  # fail now, not on the first read, if AIO is unavailable

    def _acquire(self) -> int:
        with self._lock:
            if self._free:
                return self._free.pop()
        ctx = ctypes.c_ulong(0)
        if self._libc.syscall(self._setup, ctypes.c_long(self.queue_depth), ctypes.byref(ctx)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"io_setup({self.queue_depth}) failed: {os.strerror(err)}")
        with self._lock:
            self._all.append(ctx.value)
        return ctx.value

    def _release(self, ctx: int) -> None:
        with self._lock:
            self._free.append(ctx)

    def read(self, fd: int, offsets: np.ndarray, lengths: np.ndarray, buf: np.ndarray, stride: int,
             on_complete: Callable[[np.ndarray], None] | None = None) -> None:
        n = len(offsets)
        if n == 0:
            return
        cbs = np.zeros(n, dtype=IOCB_DTYPE)
        cbs["data"] = np.arange(n, dtype=np.uint64)
        cbs["opcode"] = _IOCB_CMD_PREAD
        cbs["fildes"] = fd
        cbs["buf"] = buf.ctypes.data + np.arange(n, dtype=np.uint64) * np.uint64(stride)
        cbs["nbytes"] = lengths
        cbs["offset"] = offsets
        ptrs = cbs.ctypes.data + np.arange(n, dtype=np.uint64) * np.uint64(IOCB_DTYPE.itemsize)
        # One event slot per read: io_getevents writes completions at `done`, so the loop does no
        # numpy work per wake-up and results are checked as one vector op per hand-over.
        events = np.zeros(n, dtype=IO_EVENT_DTYPE)
        self._run(fd, offsets, lengths, ptrs, events, on_complete)
        if on_complete is None:
            self._check(fd, events, offsets, lengths)

    def _run(self, fd, offsets, lengths, ptrs, events, on_complete) -> None:
        """Drive the kernel: take slots of the shared budget, pump, hand finished reads over, repeat."""
        from sdm.tiers.aio_pump import PUMP_OK, PUMP_SUBMIT_FAILED

        n, qd = len(events), self.queue_depth
        step = max(2 * qd, MIN_STEP_READS)
        state = np.zeros(3, dtype=np.int64)  # [submitted, done, errno], advanced by the kernel
        ctx = self._acquire()
        budget = self._budget
        held = checked = 0  # budget slots this call holds; reads handed to on_complete
        pbase, ebase = ptrs.ctypes.data, events.ctypes.data
        try:
            while state[1] < n:
                done = int(state[1])
                with budget:  # wait only when this call holds no slot and none is free
                    while True:
                        grant = max(0, min(qd - self._in_flight, min(qd, n - done) - held))
                        if held + grant > 0:
                            break
                        budget.wait()
                    held += grant
                    self._in_flight += grant
                rc = self._pump(self._submit, self._getevents, ctx, pbase, ebase, IO_EVENT_DTYPE.itemsize, n,
                                state, held, min(n, done + step))
                if rc != PUMP_OK:
                    name = "io_submit" if rc == PUMP_SUBMIT_FAILED else "io_getevents"
                    err = int(state[2])
                    raise OSError(err, f"{name} failed: {os.strerror(err)}")
                submitted, done = int(state[0]), int(state[1])
                with budget:  # keep only the slots covering reads still in flight
                    spare = held - (submitted - done)
                    held -= spare
                    self._in_flight -= spare
                    budget.notify_all()
                if on_complete is not None and (done - checked >= step or done == n):
                    idx = self._check(fd, events[checked:done], offsets, lengths)
                    checked = done
                    on_complete(idx)
        except BaseException:
            self._destroy_ctx(ctx)  # waits for reads in flight, which write into the buffer
            with budget:
                self._in_flight -= held
                budget.notify_all()
            raise
        self._release(ctx)

    @staticmethod
    def _check(fd: int, events: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Indices of the completed reads in `events`, after checking each returned its full length."""
        idx = events["data"].astype(np.int64)
        bad = np.flatnonzero(events["res"] != lengths[idx])
        if len(bad):
            res, i = int(events["res"][bad[0]]), int(idx[bad[0]])
            if res < 0:
                raise OSError(-res, f"AIO read at offset {int(offsets[i])} failed: {os.strerror(-res)}")
            raise short_read(fd, int(offsets[i]), int(lengths[i]), res)
        return idx

    def _destroy_ctx(self, ctx: int) -> None:
        self._libc.syscall(self._destroy, ctypes.c_ulong(ctx))
        with self._lock:
            if ctx in self._all:
                self._all.remove(ctx)

    def close(self) -> None:
        with self._lock:
            ctxs, self._all, self._free = self._all, [], []
        for ctx in ctxs:
            self._libc.syscall(self._destroy, ctypes.c_ulong(ctx))


_PUMP = None
_PUMP_ERROR: Exception | None = None


def load_pump():
    """The numba AIO kernel, compiled (or loaded from numba's disk cache) once per process; an OSError
    saying why when it cannot be built, so the caller can fall back to the thread-pool engine."""
    global _PUMP, _PUMP_ERROR
    if _PUMP is None and _PUMP_ERROR is None:
        try:
            from sdm.tiers.aio_pump import pump

            pump(0, 0, 0, 0, 0, 32, 0, np.zeros(3, dtype=np.int64), 1, 0)  # until=0: compiles, no syscall
            _PUMP = pump
        except Exception as exc:  # noqa: BLE001 - any numba failure means: no AIO engine here
            _PUMP_ERROR = exc  # remembered: a failed compile is not retried on every open
    if _PUMP is None:
        raise OSError(errno.ENOSYS, f"numba AIO kernel unavailable ({_PUMP_ERROR!r})")
    return _PUMP
