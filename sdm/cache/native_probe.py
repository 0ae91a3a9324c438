"""The C probe kernel (sdm/cache/native/probe.c): built at first use, loaded with ctypes.

Why built here and not at install: it is compiled with `-march=native` for the machine it runs on
(AVX-512 or AVX2 compares of a whole tag set), needs nothing but a C compiler, and takes about a second. The
library is cached under `$SDM_NATIVE_DIR` (default `~/.cache/sdm/native`, `$XDG_CACHE_HOME`
honoured), named by a hash of the source, the flags, the compiler's version and the CPU's flags, so
an edited source, a new compiler or another CPU builds afresh; it is written to a temporary name and
renamed into place, so processes building at once never load a half-written file.

It is built with OpenMP (`-fopenmp`; without it where that fails): the library then needs
libgomp.so.1, which the dynamic loader finds already loaded by torch (whose CPU kernels run on it),
so the all-hit pass splits a large batch over torch's own thread pool, `torch.get_num_threads()`
threads, as torch's pooling kernels do; torch is imported before the library is loaded for that.
(A torch built on another OpenMP runtime, such as Intel's libiomp5 in some conda builds, leaves
libgomp a second pool beside torch's: still correct, but both pools then spin on the same cores.)

When no compiler is found or the build fails, `kernel()` returns None (with one warning naming the
reason) and the cache index keeps its numba kernels: same answers, about half the speed.
`SDM_NATIVE=0` turns the C kernel off (tests compare both paths).

ctypes calls foreign functions with the GIL released: probes of different tables run in parallel
threads.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch   # (first: its libgomp is the one the library binds to)

SOURCE = Path(__file__).with_name("native") / "probe.c"
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-std=c11")
OPENMP = ("-fopenmp",)
_lock = threading.Lock()
_loaded: list = []   # [library or None] once tried
# A forked child runs the pass on one thread: libgomp's pool does not survive fork (the child's
# first parallel region waits forever for the parent's workers; torch's own kernels hang there alike)
_forked: list = []
os.register_at_fork(after_in_child=lambda: _forked.append(True))


def _cache_dir() -> Path:
    if os.environ.get("SDM_NATIVE_DIR"):
        return Path(os.environ["SDM_NATIVE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sdm" / "native"


def _compiler() -> str | None:
    cc = os.environ.get("CC") or "cc"
    return shutil.which(cc)


def _cpu_flags() -> str:
    """The CPU's feature flags (Linux), part of the library's key: -march=native code built on one
    machine must not be loaded on another with fewer instructions (a shared home directory)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        import platform
        return platform.processor() + platform.machine()


def _build(cc: str) -> Path:
    try:
        return _build_with(cc, FLAGS + OPENMP)
    except OSError:   # (no OpenMP runtime to link: one thread)
        return _build_with(cc, FLAGS)


def _build_with(cc: str, flags: tuple[str, ...]) -> Path:
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(flags).encode() + version.encode()
                         + _cpu_flags().encode()).hexdigest()[:16]
    out_dir = _cache_dir()
    lib = out_dir / f"sdm_probe_{key}.so"
    if lib.exists():
        return lib
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build_", suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        done = subprocess.run([cc, *flags, "-o", tmp, str(SOURCE)], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise OSError(f"{cc} failed: {done.stderr.strip()[-500:]}")
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


def _declare(lib) -> None:
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.sdm_probe32.restype = i64
    lib.sdm_probe32.argtypes = [p, i64, i64, p, i64, i64, p, p, p]
    lib.sdm_probe_stamp32.restype = i64
    lib.sdm_probe_stamp32.argtypes = [p, i64, i64, p, i64, p, p, ctypes.c_int32, p, i64]
    lib.sdm_stamp32.restype = None
    lib.sdm_stamp32.argtypes = [p, p, p, i64, ctypes.c_int32, p, p]


def _load(path: Path, cc: str):
    """The library at `path`; a cached file that does not load (truncated, foreign) is built again once."""
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        path.unlink(missing_ok=True)
        lib = ctypes.CDLL(str(_build(cc)))
    _declare(lib)
    return lib


def kernel():
    """The loaded library, or None (no compiler, build failed, or SDM_NATIVE=0)."""
    if os.environ.get("SDM_NATIVE", "1") == "0":
        return None
    if not _loaded:
        with _lock:
            if not _loaded:
                lib, why = None, None
                cc = _compiler()
                if cc is None:
                    why = "no C compiler (cc, or $CC) on PATH"
                else:
                    try:
                        lib = _load(_build(cc), cc)
                    except (OSError, subprocess.SubprocessError) as e:
                        lib, why = None, str(e)
                if lib is None:
                    warnings.warn(f"sdm: C probe kernel not built ({why}); using the numba probe", RuntimeWarning,
                                  stacklevel=2)
                _loaded.append(lib)
    return _loaded[0]


def usable(tags: np.ndarray) -> bool:
    """Whether the C kernel can probe these tags (int32, C-contiguous) and was built."""
    return tags.dtype == np.int32 and tags.flags.c_contiguous and kernel() is not None


def probe(tags: np.ndarray, num_sets: int, ids: np.ndarray, out: np.ndarray, stop_at_miss: bool,
          seen: np.ndarray | None = None) -> tuple[int, int]:
    """Slots of `ids` (int64, contiguous) into `out` (int64, len(ids)): (sdm_probe32's answer, the
    distinct slots newly marked in `seen`, uint64 bits per slot, or 0 without it); see probe.c.
    One thread: split over two threads beside torch's OpenMP pool (whose idle workers spin) it ran
    slower on two cores (tools/bench_lookup.py --threads 0)."""
    distinct = ctypes.c_int64(0)
    got = kernel().sdm_probe32(tags.ctypes.data, num_sets, tags.shape[1], ids.ctypes.data, len(ids),
                               int(stop_at_miss), out.ctypes.data, None if seen is None else seen.ctypes.data,
                               ctypes.byref(distinct))
    return got, distinct.value


def probe_stamp(tags: np.ndarray, num_sets: int, ids: np.ndarray, out: np.ndarray, score: np.ndarray, value: int,
                mask: np.ndarray | None) -> int:
    """The all-hit pass in one call: slots of `ids` into `out` (int32) and, once every id is proved
    cached, score[slot] = value for each whose row is inside `mask` (bool per row id; None: all).
    -1 when every id is cached, else an absent id's position with no score written. `score` is int32
    of the tags' shape. Large batches run on torch's intra-op threads (see the module doc)."""
    return kernel().sdm_probe_stamp32(tags.ctypes.data, num_sets, tags.shape[1], ids.ctypes.data, len(ids),
                                      out.ctypes.data, score.ctypes.data, value,
                                      None if mask is None else mask.ctypes.data,
                                      1 if _forked else torch.get_num_threads())


def stamp(score: np.ndarray, slots: np.ndarray, ids: np.ndarray, value: int, mask: np.ndarray | None,
          skip: np.ndarray | None = None) -> None:
    """score[slot] = value for each of `slots` whose row is inside `mask` (bool per row id; None:
    all) and whose bit is clear in `skip` (uint64 bits per slot; None: none skipped)."""
    kernel().sdm_stamp32(score.ctypes.data, slots.ctypes.data, ids.ctypes.data, len(slots), value,
                         None if mask is None else mask.ctypes.data, None if skip is None else skip.ctypes.data)
