"""Direct I/O for the SCM tier: O_DIRECT files, aligned buffers, batched reads at a queue depth.

The page store's contract is that the OS page cache never serves an SCM read, so data files are
opened with O_DIRECT. Two read engines issue a batch of (offset, length) reads with `queue_depth`
requests in flight:

- `AioReader`: Linux kernel AIO (io_setup / io_submit / io_getevents) called through `ctypes`
  syscall numbers, so it needs no library. One thread keeps the queue full; iocbs are built for the
  whole batch at once as a numpy structured array, so Python work is per batch, not per read.
- `ThreadReader`: a pool of `queue_depth` threads, each looping `os.preadv` over its share of the
  batch (the GIL is released inside the syscall).

Measured on the development VM (4 KiB random reads, QD32, 1 GiB file; see docs/pagestore.md):
AIO ~55k reads/s at ~0.3 CPU cores, threads ~47k reads/s at ~1.4 cores, fio io_uring ~60k. AIO is the
default wherever the syscalls exist; the thread pool is the portable fallback.
"""
from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor, wait
from collections.abc import Callable
from typing import Protocol

import numpy as np

# Memory alignment for O_DIRECT buffers: 4096 satisfies both 512 B and 4 KiB logical-block devices.
BUFFER_ALIGN_BYTES = 4096


class DirectIOWarning(RuntimeWarning):
    """O_DIRECT was refused (e.g. tmpfs): reads go through the page cache."""


def open_direct(path: str | os.PathLike, *, write: bool = False, create: bool = False) -> tuple[int, bool]:
    """Open `path` with O_DIRECT; returns (fd, is_direct).

    Filesystems that refuse O_DIRECT (tmpfs, some overlays) get a buffered fd and a DirectIOWarning,
    because then the page cache serves SCM reads and measured SCM times are really DRAM times.
    """
    flags = (os.O_RDWR if write else os.O_RDONLY) | (os.O_CREAT if create else 0)
    fs = filesystem_type(path)
    if fs in RAM_FILESYSTEMS:  # Linux >= 6.6 tmpfs accepts O_DIRECT, but the data is still in RAM
        warnings.warn(
            f"{path}: on {fs}, so the data lives in RAM; measured SCM read times are DRAM times and "
            "the device model is the only honest SCM figure",
            DirectIOWarning,
            stacklevel=2,
        )
    try:
        return os.open(path, flags | os.O_DIRECT, 0o644), True
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    warnings.warn(
        f"{path}: filesystem refuses O_DIRECT; SCM reads will be served by the OS page cache, so "
        "measured SCM read times are DRAM times and the device model is the only honest SCM figure",
        DirectIOWarning,
        stacklevel=2,
    )
    return os.open(path, flags, 0o644), False


RAM_FILESYSTEMS = ("tmpfs", "ramfs")


def filesystem_type(path: str | os.PathLike) -> str | None:
    """Filesystem type of `path` from /proc/self/mounts (longest mount-point prefix), or None."""
    try:
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1:3] for line in f]
    except OSError:
        return None
    real = os.path.realpath(path)
    best, kind = "", None
    for mnt, fs in mounts:
        mnt = mnt.replace("\\040", " ")
        if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
            best, kind = mnt, fs
    return kind


def aligned_empty(nbytes: int, align: int = BUFFER_ALIGN_BYTES) -> np.ndarray:
    """A uint8 array of `nbytes` whose data pointer is `align`-aligned (as O_DIRECT requires)."""
    raw = np.empty(int(nbytes) + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start : start + int(nbytes)]


def probe_io_align(directory: str | os.PathLike) -> int:
    """Smallest offset/length alignment (512 or 4096) that O_DIRECT reads accept in `directory`.

    Compressed pages are padded to this alignment, so 512 keeps more of the compression gain.
    """
    probe = os.path.join(directory, ".align_probe")
    with open(probe, "wb") as f:
        f.write(b"\0" * 8192)
        f.flush()
        os.fsync(f.fileno())
    try:
        fd = os.open(probe, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        os.unlink(probe)
        return BUFFER_ALIGN_BYTES
    try:
        buf = aligned_empty(BUFFER_ALIGN_BYTES)
        os.preadv(fd, [memoryview(buf)[:512]], 512)
        return 512
    except OSError:
        return BUFFER_ALIGN_BYTES
    finally:
        os.close(fd)
        os.unlink(probe)


def drop_cached(fd: int, offset: int = 0, length: int = 0) -> None:
    """Ask the kernel to drop clean cached pages of a file range (after fsync, so they are clean)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def resident_bytes(path: str | os.PathLike) -> tuple[int, int]:
    """(bytes of `path` in the page cache, file size), via mmap + mincore (what `fincore` reports)."""
    size = os.path.getsize(path)
    if size == 0:
        return 0, 0
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    npages = (size + page - 1) // page
    vec = np.zeros(npages, dtype=np.uint8)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as mm:
        view = np.frombuffer(mm, dtype=np.uint8)  # mapping does not fault pages in; mincore only looks
        rc = libc.mincore(ctypes.c_void_p(view.ctypes.data), ctypes.c_size_t(size),
                          ctypes.c_void_p(vec.ctypes.data))
        del view  # release the buffer so the mapping can close
        if rc != 0:
            raise OSError(ctypes.get_errno(), f"mincore failed on {path}")
    return int(np.count_nonzero(vec & 1)) * page, size


class ShortReadError(OSError):
    """A read returned fewer bytes than the page table promised (truncated or damaged file)."""


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


def _short_read(fd: int, offset: int, want: int, got: int) -> ShortReadError:
    try:
        where = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        where = f"fd {fd}"
    return ShortReadError(errno.EIO, f"short read from {where} at offset {offset}: {got} of {want} bytes")


class ThreadReader:
    """`queue_depth` threads, each looping `os.preadv` over an interleaved share of the batch.

    The pool is shared by concurrent callers, so `queue_depth` bounds the reads in flight per reader
    (per store); the AIO reader bounds them per call instead.
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
                    raise _short_read(fd, offs[i], lens[i], got)

        if workers == 1:
            work(0)
            return
        futs = [self._pool.submit(work, k) for k in range(workers)]
        wait(futs)  # all of them, even after a failure: none may write into `buf` once we return
        for fut in futs:
            fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


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


class AioReader:
    """Linux kernel AIO through raw syscalls; one submitting thread keeps `queue_depth` reads in flight.

    Each concurrent caller takes its own AIO context from a small pool, so readers in several threads
    never steal each other's completions; they share one budget of `queue_depth` reads in flight, so
    the depth is per reader (per store), as with `ThreadReader`, and overlapping callers keep the
    device queue full across each other's batch boundaries.
    """

    name = "aio"
    use_pump = True  # inner loop in numba (aio_pump); measured 1.07x the Python loop, paired

    def __init__(self, queue_depth: int = 32) -> None:
        nums = _AIO_SYSCALLS.get(platform.machine())
        if nums is None or not hasattr(os, "O_DIRECT"):
            raise OSError(errno.ENOSYS, f"kernel AIO syscall numbers unknown for {platform.machine()}")
        self._setup, self._destroy, self._getevents, self._submit = nums
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.syscall.restype = ctypes.c_long
        self.queue_depth = int(queue_depth)
        self._free: list[int] = []
        self._all: list[int] = []
        self._lock = threading.Lock()
        self._budget = threading.Condition(threading.Lock())
        self._in_flight = 0  # reads in flight over all callers, <= queue_depth
        self._release(self._acquire())  # fail now, not on the first read, if AIO is unavailable
        self.use_pump = self.use_pump and _pump_ready()

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
        qd = self.queue_depth
        # One event slot per read: io_getevents writes completions at `done`, so the loop does no
        # numpy work per wake-up and all results are checked once, as one vector op, at the end.
        events = np.zeros(n, dtype=IO_EVENT_DTYPE)
        if self.use_pump:
            return self._read_pump(fd, offsets, lengths, ptrs, events, n, on_complete)
        ctx = self._acquire()
        syscall, submit, getevents = self._libc.syscall, self._submit, self._getevents
        c_ctx, c_one = ctypes.c_ulong(ctx), ctypes.c_long(1)
        pbase, ebase, esize = ptrs.ctypes.data, events.ctypes.data, IO_EVENT_DTYPE.itemsize
        submitted = done = checked = 0
        step = max(2 * qd, 64)  # completions per on_complete call: few calls, still overlapped
        budget = self._budget
        try:
            while done < n:
                room = 0
                if submitted < n:
                    with budget:  # take free slots of the shared budget; wait only if we hold none
                        while (room := min(qd - self._in_flight, n - submitted)) <= 0 and submitted == done:
                            budget.wait()
                        room = max(room, 0)
                        self._in_flight += room
                if room > 0:
                    r = syscall(submit, c_ctx, ctypes.c_long(room), ctypes.c_void_p(pbase + 8 * submitted))
                    with budget:
                        self._in_flight -= room - max(r, 0)
                    if r < 0:
                        err = ctypes.get_errno()
                        if err != errno.EAGAIN or submitted == done:
                            raise OSError(err, f"io_submit failed: {os.strerror(err)}")
                    else:
                        submitted += r
                # min_nr=1: refill the queue as soon as any read is back (waking on a quarter of the
                # queue instead measured no better: 0.96x paired, 16 rounds)
                r = syscall(getevents, c_ctx, c_one, ctypes.c_long(min(qd, n - done)),
                            ctypes.c_void_p(ebase + esize * done), None)
                if r < 0:
                    err = ctypes.get_errno()
                    if err == errno.EINTR:
                        continue
                    raise OSError(err, f"io_getevents failed: {os.strerror(err)}")
                done += r
                with budget:
                    self._in_flight -= r
                    budget.notify_all()
                if on_complete is not None and (done - checked >= step or done == n):
                    # Hand finished reads over in slices, while the queue is still full, so
                    # checksumming overlaps the device time instead of following it.
                    idx = self._check(fd, events[checked:done], offsets, lengths)
                    checked = done
                    on_complete(idx)
        except BaseException:
            # Reads still in flight write into `buf`; drop the context (io_destroy waits for them).
            self._destroy_ctx(ctx)
            with budget:
                self._in_flight -= submitted - done
                budget.notify_all()
            raise
        self._release(ctx)
        if on_complete is None:
            self._check(fd, events, offsets, lengths)

    def _read_pump(self, fd, offsets, lengths, ptrs, events, n, on_complete) -> None:
        """The same loop with its inner part in the numba kernel `aio_pump.pump`."""
        from sdm.tiers.aio_pump import PUMP_OK, PUMP_SUBMIT_FAILED, pump

        qd = self.queue_depth
        step = max(2 * qd, 64)
        state = np.zeros(3, dtype=np.int64)
        ctx = self._acquire()
        budget = self._budget
        held = checked = 0
        pbase, ebase = ptrs.ctypes.data, events.ctypes.data
        try:
            while state[1] < n:
                submitted, done = int(state[0]), int(state[1])
                with budget:  # slots of the shared budget this call may keep in flight
                    while True:
                        grant = max(0, min(qd - self._in_flight, min(qd, n - done) - held))
                        if held + grant > 0:
                            break
                        budget.wait()
                    held += grant
                    self._in_flight += grant
                rc = pump(self._submit, self._getevents, ctx, pbase, ebase, IO_EVENT_DTYPE.itemsize, n, state,
                          held, min(n, done + step))
                if rc != PUMP_OK:
                    err = int(state[2])
                    if not (rc == PUMP_SUBMIT_FAILED and err == errno.EAGAIN and state[0] > state[1]):
                        name = "io_submit" if rc == PUMP_SUBMIT_FAILED else "io_getevents"
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
        with budget:
            self._in_flight -= held
            budget.notify_all()
        if on_complete is None:
            self._check(fd, events, offsets, lengths)

    @staticmethod
    def _check(fd: int, events: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Indices of the completed reads in `events`, after checking each returned its full length."""
        idx = events["data"].astype(np.int64)
        bad = np.flatnonzero(events["res"] != lengths[idx])
        if len(bad):
            res, i = int(events["res"][bad[0]]), int(idx[bad[0]])
            if res < 0:
                raise OSError(-res, f"AIO read at offset {int(offsets[i])} failed: {os.strerror(-res)}")
            raise _short_read(fd, int(offsets[i]), int(lengths[i]), res)
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


_PUMP_READY: bool | None = None


def _pump_ready() -> bool:
    """Compile (or load from cache) the numba AIO kernel once; False, with a warning, if it fails."""
    global _PUMP_READY
    if _PUMP_READY is None:
        try:
            from sdm.tiers.aio_pump import pump

            pump(0, 0, 0, 0, 0, 32, 0, np.zeros(3, dtype=np.int64), 1, 0)  # until=0: no syscall made
            _PUMP_READY = True
        except Exception as exc:  # noqa: BLE001 - any numba failure means: use the Python loop
            warnings.warn(f"numba AIO kernel unavailable ({exc!r}); using the Python AIO loop",
                          RuntimeWarning, stacklevel=3)
            _PUMP_READY = False
    return _PUMP_READY


ENGINES = ("auto", "aio", "threads")


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
