"""Disk full (ENOSPC) in a data write and in the LMDB commit, on a small tmpfs mounted for the test:
DiskFullError (an OSError with errno ENOSPC) naming store and table, and the store still at its last
committed version. Needs root and mount(2); skipped with the reason otherwise."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from sdm.core.errors import DiskFullError
from sdm.tiers.pagestore import PageStore
from small_tmpfs import small_tmpfs


@pytest.fixture
def small_fs(tmp_path):
    with small_tmpfs(tmp_path, "4m") as mnt:
        yield mnt


def _small_store(path):
    st = PageStore.create(path, compression="zstd")
    st.add_table("small", np.arange(400, dtype=np.float32).reshape(100, 4))
    return st


def test_disk_full_in_data_write(small_fs):
    path = small_fs / "s"
    with _small_store(path) as st:
        big = np.random.default_rng(0).standard_normal((300_000, 4)).astype(np.float32)  # 4.8 MB, incompressible
        with pytest.raises(DiskFullError, match=r"disk full during writing data/t[0-9a-f]{12}\.pages \(table 'big'\)") as ei:
            st.add_table("big", big)
        assert ei.value.errno == errno.ENOSPC and isinstance(ei.value, OSError)
        assert (ei.value.store, ei.value.table) == (str(path), "big")
        assert st.tables == ["small"] and len(os.listdir(path / "data")) == 1  # the partial file is gone
        rng = np.random.default_rng(1)
        with pytest.raises(DiskFullError):  # updates append shadow pages until one cannot fit
            for _ in range(5000):
                last = rng.standard_normal((100, 4)).astype(np.float32)  # incompressible: a full page each
                st.update_rows("small", np.arange(100), last)
                committed = last
        version = st.version
    with PageStore.open(path) as st:
        assert st.tables == ["small"] and st.version == version
        assert np.array_equal(st.read_rows("small", np.arange(100)), committed)  # the last committed update


def test_disk_full_in_lmdb_commit(small_fs):
    """Pages of zeros compress to almost nothing while the slot map of a row_order is 8 B per row in
    LMDB: the data write fits and the commit does not. LMDB says `Input/output error`; sdm says disk full."""
    path = small_fs / "s"
    n = 1_000_000
    with _small_store(path) as st:
        with pytest.raises(DiskFullError, match=r"disk full during commit \(table 'slots'\)") as ei:
            st.add_table("slots", np.zeros((n, 1), np.uint8), row_order=np.arange(n)[::-1].copy())
        assert ei.value.errno == errno.ENOSPC and ei.value.table == "slots"
        assert st.tables == ["small"] and len(os.listdir(path / "data")) == 1
    with PageStore.open(path) as st:
        assert st.tables == ["small"] and st.version == 1
        assert np.array_equal(st.read_rows("small", np.arange(100)), np.arange(400, dtype=np.float32).reshape(100, 4))


def test_disk_full_at_create(small_fs):
    with open(small_fs / "filler", "wb") as f:  # fill the filesystem to the last block
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with pytest.raises(DiskFullError, match=r"disk full during creating the store"):
        PageStore.create(small_fs / "s")
