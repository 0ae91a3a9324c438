"""Read engines of the SCM tier: same bytes as a plain read, every completion reported once, short reads caught."""
from __future__ import annotations

import os

import numpy as np
import pytest

from sdm.tiers.direct_io import ShortReadError, aligned_empty, open_direct, probe_io_align
from sdm.tiers.read_engines import make_reader


@pytest.fixture
def datafile(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 64 * 4096, dtype=np.uint8)
    path = tmp_path / "f"
    data.tofile(path)
    return str(path), data


ENGINES = ["aio", "threads"]


def _reader(engine: str, queue_depth: int):
    reader = make_reader(engine, queue_depth)
    assert reader.name == engine, f"asked for {engine}, got {reader.name}"
    return reader


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("queue_depth", [1, 4, 32])
def test_engine_reads_exact_bytes(datafile, engine, queue_depth):
    path, data = datafile
    fd, direct = open_direct(path)
    reader = _reader(engine, queue_depth)
    try:
        assert direct and reader.name == engine
        pages = np.random.default_rng(1).permutation(64)[:50]
        buf = aligned_empty(50 * 4096)
        seen = []
        reader.read(fd, pages * 4096, np.full(50, 4096, np.int64), buf, 4096, seen.append)
        np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(50))  # each index once
        assert np.array_equal(buf.reshape(50, 4096), data.reshape(64, 4096)[pages])
    finally:
        reader.close()
        os.close(fd)


@pytest.mark.parametrize("engine", ENGINES)
def test_short_read_names_file_and_offset(datafile, engine):
    path, _ = datafile
    fd, _ = open_direct(path)
    reader = _reader(engine, 4)
    try:
        buf = aligned_empty(3 * 4096)
        offsets = np.array([0, 64 * 4096, 4096], dtype=np.int64)  # the second is past the end
        with pytest.raises(ShortReadError, match=rf"short read from {path} at offset {64 * 4096}"):
            reader.read(fd, offsets, np.full(3, 4096, np.int64), buf, 4096)
    finally:
        reader.close()
        os.close(fd)


def test_alignment_probe_and_bad_engine(tmp_path):
    assert probe_io_align(tmp_path) in (512, 4096)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="unknown I/O engine"):
        make_reader("io_uring")


@pytest.mark.parametrize("engine", ENGINES)
def test_concurrent_callers_share_the_queue_depth(datafile, engine):
    """Several threads read through one reader at once: all bytes right, nothing left in flight."""
    import threading

    path, data = datafile
    fd, _ = open_direct(path)
    reader = _reader(engine, 8)
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        buf = aligned_empty(40 * 4096)
        for _ in range(10):
            pages = rng.integers(0, 64, 40)
            reader.read(fd, pages * 4096, np.full(40, 4096, np.int64), buf, 4096)
            if not np.array_equal(buf.reshape(40, 4096), data.reshape(64, 4096)[pages]):
                errors.append(seed)

    try:
        threads = [threading.Thread(target=work, args=(s,)) for s in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert getattr(reader, "_in_flight", 0) == 0
    finally:
        reader.close()
        os.close(fd)


def test_no_aio_kernel_falls_back_to_threads_not_a_second_loop(monkeypatch):
    """Where the numba kernel cannot be built, "auto" uses the thread pool and "aio" says why."""
    import warnings

    from sdm.tiers import aio_engine

    monkeypatch.setattr(aio_engine, "_PUMP", None)
    monkeypatch.setattr(aio_engine, "_PUMP_ERROR", ImportError("no numba"))
    with pytest.raises(OSError, match="numba AIO kernel unavailable"):
        make_reader("aio", 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader = make_reader("auto", 4)
    try:
        assert reader.name == "threads"
        assert any("numba AIO kernel unavailable" in str(w.message) for w in caught)
    finally:
        reader.close()
