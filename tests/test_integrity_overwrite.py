"""`create(..., overwrite=True)` builds the new store beside the old one and swaps it in only after its
commit: a failure midway (a weights callable that raises, a full disk) leaves the old store intact
and openable. Failed opens close what they opened (no file descriptor leaks)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from sdm.core.atomic_file import write_json
from sdm.core.errors import DiskFullError, InvalidInputError, SdmError
from sdm.core.spec import TableSpec
from sdm.runtime import store_create
from sdm.runtime.embedding_store import EmbeddingStore
from small_tmpfs import small_tmpfs

OLD = {"t": np.arange(200 * 4, dtype=np.float32).reshape(200, 4)}


def _old(path):
    EmbeddingStore.create(path, [TableSpec("t", 200, 4)], hardware=None, weights=OLD, dram_cache_bytes=0).close()


def _rows(path) -> np.ndarray:
    with EmbeddingStore.open(path) as st:
        return st.lookup("t", torch.arange(200), torch.arange(200)).numpy()


def _no_siblings(path):
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_weights_callable_that_raises_leaves_the_old_store(tmp_path):
    path = tmp_path / "s"
    _old(path)

    def weights(name, start, stop):   # the first table is written whole, then the source fails
        if name == "u":
            raise RuntimeError("source went away")
        return np.ones((stop - start, 8), np.float32)

    with pytest.raises(RuntimeError, match="source went away"):
        EmbeddingStore.create(path, [TableSpec("t", 5000, 8), TableSpec("u", 10, 8)], hardware=None,
                              weights=weights, overwrite=True)
    assert np.array_equal(_rows(path), OLD["t"])
    _no_siblings(path)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two_renames"])
def test_overwrite_swaps_in_the_new_store(tmp_path, monkeypatch, exchange):
    path = tmp_path / "s"
    _old(path)
    if not exchange:
        monkeypatch.setattr(store_create, "_exchange", lambda a, b: False)
    new = {"t": -OLD["t"]}
    EmbeddingStore.create(path, [TableSpec("t", 200, 4)], hardware=None, weights=new, overwrite=True).close()
    assert np.array_equal(_rows(path), new["t"])
    _no_siblings(path)


def test_stale_siblings_of_a_crashed_overwrite_are_cleared(tmp_path):
    path = tmp_path / "s"
    _old(path)
    (tmp_path / ".s.sdm-new").mkdir()
    (tmp_path / ".s.sdm-new" / "junk").write_text("x")
    EmbeddingStore.create(path, [TableSpec("t", 200, 4)], hardware=None, weights=OLD, overwrite=True).close()
    _no_siblings(path)


def test_bad_arguments_to_an_overwrite_change_nothing(tmp_path):
    path = tmp_path / "s"
    _old(path)
    with pytest.raises(InvalidInputError):
        EmbeddingStore.create(path, [TableSpec("t", 200, 4)], hardware=None, weights=OLD, overwrite=True, ways=0)
    assert np.array_equal(_rows(path), OLD["t"])
    _no_siblings(path)


def test_disk_full_during_an_overwrite_leaves_the_old_store(tmp_path):
    """A 2 MiB tmpfs holding the old store; the new one cannot fit beside it (root only)."""
    with small_tmpfs(tmp_path, "2m") as mnt:
        path = mnt / "s"
        _old(path)
        big = np.random.default_rng(0).standard_normal((200_000, 4)).astype(np.float32)   # 3.2 MB
        with pytest.raises(DiskFullError):
            EmbeddingStore.create(path, [TableSpec("t", 200_000, 4)], hardware=None, weights={"t": big},
                                  overwrite=True)
        assert np.array_equal(_rows(path), OLD["t"])
        _no_siblings(path)


# ---- failed opens leak nothing -------------------------------------------------------------------
def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _reseal(path, change):
    meta = json.loads((path / "store.json").read_text())
    meta.pop("xxh3_64")
    change(meta)
    write_json(path / "store.json", meta, checksum=True)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("fault", ["store_json", "spec_vs_pages", "table_setup", "page_store"])
def test_a_failed_open_closes_what_it_opened(tmp_path, fault):
    path = tmp_path / "s"
    _old(path)
    kw = {}
    if fault == "store_json":
        (path / "store.json").write_bytes(b"\xff" + (path / "store.json").read_bytes()[1:])
    elif fault == "spec_vs_pages":   # read_store passes; the page store says otherwise (after it is open)
        _reseal(path, lambda m: m["tables"][0]["spec"].update(dim=8))
    elif fault == "table_setup":     # StoreTable refuses: warm admission needs a profile
        kw = {"admission": "warm"}
    else:
        lmdb_file = path / "scm" / "meta.lmdb" / "data.mdb"
        buf = bytearray(lmdb_file.read_bytes())
        buf[len(buf) // 2: len(buf) // 2 + 64] = bytes(64)
        lmdb_file.write_bytes(bytes(buf))
    with pytest.raises(SdmError):   # the first failure may warm caches (imports, numba): count after it
        EmbeddingStore.open(path, **kw)
    before = _fds()
    kept = []   # the errors are kept (as a caller that logs them would): their tracebacks hold the frames
    for _ in range(20):
        with pytest.raises(SdmError) as info:
            EmbeddingStore.open(path, **kw)
        kept.append(info.value)
    assert _fds() == before, f"{_fds() - before} file descriptors leaked by 20 failed opens"
