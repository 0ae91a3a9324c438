"""Direct I/O files for the SCM tier: O_DIRECT opens, aligned buffers, page-cache control and checks.

The page store's contract is that the OS page cache never serves an SCM read, so data files are
opened with O_DIRECT (with a warning where the filesystem refuses it or lives in RAM), read into
buffers aligned as O_DIRECT requires, and dropped from the page cache after writes. The read
engines that issue batches of reads on these files are in `read_engines` (kernel AIO in
`aio_engine`, a thread pool in `thread_engine`).
"""
from __future__ import annotations

import ctypes
import errno
import mmap
import os
import warnings

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
    """A read returned fewer bytes than the page table promised (truncated or damaged file). Internal:
    the page store turns it into ShortFileError naming the table and page; `offset` is the read's."""

    offset: int = -1


def short_read(fd: int, offset: int, want: int, got: int) -> ShortReadError:
    """The error for a read of `want` bytes at `offset` that returned `got`, naming the file."""
    try:
        where = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        where = f"fd {fd}"
    exc = ShortReadError(errno.EIO, f"short read from {where} at offset {offset}: {got} of {want} bytes")
    exc.offset = int(offset)
    return exc
