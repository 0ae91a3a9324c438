"""The C probe kernel (sdm/cache/native/probe.c) gives the numba kernels' answers, and sdm falls back
to numba, with a warning, when it cannot be built."""
import copy
import os
import signal
import time

import numpy as np
import pytest

from sdm.cache import native_probe
from sdm.cache.index import CacheIndex


def _filled(ways: int, policy: str = "lru", seed: int = 0, rows: int = 50_000, slots: int = 4096):
    rng = np.random.default_rng(seed)
    idx = CacheIndex(rows, slots, ways=ways, policy=policy, layout="hashed")
    idx.place(np.sort(rng.choice(rows, int(0.7 * slots), replace=False)))
    return idx, rng


needs_cc = pytest.mark.skipif(native_probe.kernel() is None, reason="no C compiler: the C probe is not built")


def _native_and_numba(monkeypatch, a, b, ids):
    """`a.probe_all_hit(ids)` on the C kernel and `b.probe_all_hit(ids)` on numba's."""
    got_native = a.probe_all_hit(ids)
    monkeypatch.setenv("SDM_NATIVE", "0")
    got_numba = b.probe_all_hit(ids)
    monkeypatch.delenv("SDM_NATIVE")
    return got_native, got_numba


@needs_cc
@pytest.mark.parametrize("ways", [16, 8, 3, 1])
def test_probe_equals_numba(monkeypatch, ways):
    idx, rng = _filled(ways)
    cached = idx.contents()
    ids = np.concatenate([rng.choice(cached, 3000), rng.integers(-5, idx.num_rows + 5, 3000),
                          np.array([-1, 2**31 - 1, 2**31, 2**40], np.int64)])
    rng.shuffle(ids)
    native = idx.probe(ids)
    monkeypatch.setenv("SDM_NATIVE", "0")
    assert np.array_equal(native, idx.probe(ids))
    assert (native[np.isin(ids, cached)] >= 0).all() and (native[~np.isin(ids, cached)] == -1).all()


@needs_cc
@pytest.mark.parametrize("policy", ["lru", "lfu", "s3lru"])
def test_all_hit_pass_equals_numba(monkeypatch, policy):
    """Same slots, same scores and clock after a run of all-hit batches and batches with a miss
    (which must change nothing), with and without an admission mask."""
    a, rng = _filled(16, policy)
    cached = a.contents()
    for masked in (False, True):
        if masked:
            a.admit_mask = np.zeros(a.num_rows, np.bool_)
            a.admit_mask[cached[::2]] = True
        b = copy.deepcopy(a)
        for step in range(12):
            ids = rng.choice(cached, 2000)
            if step % 3 == 2:
                ids[rng.integers(len(ids))] = int(np.setdiff1d(np.arange(a.num_rows), cached)[step])
            got_native, got_numba = _native_and_numba(monkeypatch, a, b, ids)
            assert (got_native is None) == (got_numba is None) == (step % 3 == 2)
            if got_native is not None:
                assert np.array_equal(got_native, got_numba)
            assert a.stamp == b.stamp and np.array_equal(a.score, b.score) and np.array_equal(a.tags, b.tags)


def test_no_compiler_falls_back_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setattr(native_probe, "_loaded", [])
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("SDM_NATIVE_DIR", str(tmp_path / "lib"))
    with pytest.warns(RuntimeWarning, match="no C compiler"):
        assert native_probe.kernel() is None
    idx, rng = _filled(16)
    ids = rng.choice(idx.contents(), 100)
    assert (idx.probe(ids) >= 0).all() and idx.probe_all_hit(ids) is not None   # the numba path serves


@needs_cc
def test_failed_build_and_corrupt_cached_library(monkeypatch, tmp_path):
    cc = native_probe._compiler()
    monkeypatch.setenv("SDM_NATIVE_DIR", str(tmp_path))
    bad = tmp_path / "bad-cc"
    bad.write_text("#!/bin/sh\necho broken >&2\nexit 1\n")
    bad.chmod(0o755)
    monkeypatch.setattr(native_probe, "_loaded", [])
    monkeypatch.setenv("CC", str(bad))
    with pytest.warns(RuntimeWarning, match="failed"):
        assert native_probe.kernel() is None
    assert not list(tmp_path.glob("*.so")) and not list(tmp_path.glob(".build_*"))   # nothing half-written left
    # a cached library that does not load (truncated) is built again, not trusted
    monkeypatch.setenv("CC", cc)
    good = native_probe._build(cc)
    good.write_bytes(good.read_bytes()[:100])
    monkeypatch.setattr(native_probe, "_loaded", [])
    assert native_probe.kernel() is not None
    assert good.stat().st_size > 100


def test_negative_and_out_of_range_ids_are_never_found(monkeypatch):
    """An empty slot's tag is -1: the probe must not report id -1 (or any id outside the table) as
    cached, in either kernel and either layout."""
    direct = CacheIndex(100, 100)
    direct.place(np.arange(0, 100, 2))
    hashed, _ = _filled(16)
    bad = np.array([-1, -2, -100, 100, 10**9, 2**31, 2**40], np.int64)
    for native in ("1", "0"):
        monkeypatch.setenv("SDM_NATIVE", native)
        assert (direct.probe(bad[bad < 0]) == -1).all() and (direct.probe(bad[bad >= 100]) == -1).all()
        assert (hashed.probe(bad) == -1).all()
        assert direct.probe(np.array([4]))[0] == 4


@needs_cc
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_large_batches_split_over_threads_equal_numba(monkeypatch, torch_threads, threads):
    """Batches from the C pass's split size on (16,384 ids) run on torch's threads: the same slots,
    scores and clock as numba's single pass; a miss anywhere (late in a thread's range too) changes
    no score, with and without an admission mask."""
    torch_threads(threads)
    rng = np.random.default_rng(threads)
    a = CacheIndex(400_000, 65_536, ways=16, layout="hashed")
    a.place(np.sort(rng.choice(400_000, 200_000, replace=False)))   # (every set full: each
    cached = a.contents()                                           # thread's last slot is used)
    assert len(cached) == a.capacity_rows
    absent = np.setdiff1d(np.arange(a.num_rows), cached)
    for masked in (False, True):
        if masked:
            a.admit_mask = np.zeros(a.num_rows, np.bool_)
            a.admit_mask[cached[::3]] = True
        b = copy.deepcopy(a)
        for step in range(8):
            ids = rng.permutation(np.concatenate([cached, rng.choice(cached, 20_000)]))   # every slot
            if step % 2:
                ids[int(rng.integers(len(ids) * (step % 4 == 1) // 2, len(ids)))] = absent[step]
            before = a.score.copy()
            got_native, got_numba = _native_and_numba(monkeypatch, a, b, ids)
            assert (got_native is None) == (got_numba is None) == bool(step % 2)
            if got_native is None:
                assert np.array_equal(a.score, before)
            else:
                assert got_native.dtype == np.int32 and np.array_equal(got_native, got_numba)
            assert a.stamp == b.stamp and np.array_equal(a.score, b.score)


@needs_cc
def test_build_without_openmp_when_it_does_not_link(monkeypatch, tmp_path):
    """A compiler that refuses -fopenmp still gives a (one-thread) kernel with the same answers."""
    cc = native_probe._compiler()
    wrapper = tmp_path / "cc-no-openmp"
    wrapper.write_text(f'#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && exit 1; done\nexec {cc} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("SDM_NATIVE_DIR", str(tmp_path / "lib"))
    monkeypatch.setenv("CC", str(wrapper))
    monkeypatch.setattr(native_probe, "_loaded", [])
    assert native_probe.kernel() is not None
    idx, rng = _filled(16, rows=400_000, slots=65_536)
    ids = rng.choice(idx.contents(), 20_000)
    got = idx.probe_all_hit(ids)
    monkeypatch.setenv("SDM_NATIVE", "0")
    assert np.array_equal(got, idx.probe(ids))


@needs_cc
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_forked_child_probes_without_the_parents_thread_pool(torch_threads):
    """libgomp's pool does not survive fork: a child entering it waits forever. After the parent ran
    the pass on two threads, a forked child's pass must still finish (it runs on one thread)."""
    torch_threads(2)
    idx, rng = _filled(16, rows=400_000, slots=65_536)
    ids = rng.choice(idx.contents(), 40_000)
    expected = idx.probe_all_hit(ids)
    assert expected is not None
    pid = os.fork()
    if pid == 0:   # child: no pytest machinery, only the pass and an exit code
        got = idx.probe_all_hit(ids)
        os._exit(0 if got is not None and np.array_equal(got, expected) else 1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child's all-hit pass hung")
