"""Row shadowing: updates pack rows into delta pages and log them (delta/ keys), compaction writes
every row back to its planned slot; a delta log that disagrees with its record is corrupt."""
from __future__ import annotations

import json
import re
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch

from sdm.core.errors import CorruptMetadataError
from sdm.core.spec import TableSpec
from sdm.runtime.embedding_store import EmbeddingStore
from sdm.tiers.pagestore import PageStore
from sdm.tiers.record_seal import seal, unseal

ROWS, DIM = 3000, 16   # 64 B rows: 64 a page, 47 home pages


def _keys(path) -> dict[bytes, bytes]:
    env = lmdb.open(str(Path(path) / "meta.lmdb"), map_size=1 << 38)
    with env.begin() as txn:
        out = {bytes(k): bytes(v) for k, v in txn.cursor()}
    env.close()
    return out


def _put(path, key: bytes, val: bytes | None) -> None:
    env = lmdb.open(str(Path(path) / "meta.lmdb"), map_size=1 << 38)
    with env.begin(write=True) as txn:
        if val is None:
            txn.delete(key)
        else:
            txn.put(key, val)
    env.close()


@pytest.mark.parametrize("compression", [None, "zstd"])
@pytest.mark.parametrize("ordered", [False, True])
def test_random_updates_reopen_and_compact_back_to_the_plan(tmp_path, compression, ordered):
    rng = np.random.default_rng(3)
    order = rng.permutation(ROWS) if ordered else None
    cur = np.arange(ROWS * DIM, dtype=np.float32).reshape(ROWS, DIM)
    with PageStore.create(tmp_path / "s", "nand", compression=compression, max_space_amp=50.0) as st:
        st.add_table("a", cur, row_order=order)
        planned = st.page_of("a", np.arange(ROWS))
        for k in range(25):  # small and large batches, rows updated many times
            ids = rng.choice(ROWS if k % 3 else 40, int(rng.integers(1, 40 if k % 3 == 0 else 400)), replace=False)
            vals = rng.standard_normal((len(ids), DIM)).astype(np.float32)
            cur[ids] = vals
            st.update_rows("a", ids, vals)
        info = st.table_info("a")
        assert info.delta_pages > 0 and info.dead_pages == 0
        assert np.array_equal(st.read_rows("a", np.arange(ROWS)), cur)
    with PageStore.open(tmp_path / "s") as st:  # the slot map rebuilt from the plan and the delta log
        assert np.array_equal(st.read_rows("a", np.arange(ROWS)), cur)
        assert not st.verify().damage
        st.compact("a")
        assert st.table_info("a").delta_pages == 0
        assert np.array_equal(st.page_of("a", np.arange(ROWS)), planned)  # every row in its planned page
        assert np.array_equal(st.read_rows("a", np.arange(ROWS)), cur)
    keys = _keys(tmp_path / "s")
    assert not [k for k in keys if k.startswith(b"delta/")]  # compaction dropped the log
    with PageStore.open(tmp_path / "s") as st:
        assert np.array_equal(st.read_rows("a", np.arange(ROWS)), cur) and not st.verify().damage


def test_an_update_writes_one_log_entry_and_never_the_slot_map(tmp_path):
    w = np.zeros((ROWS, DIM), np.float32)
    with PageStore.create(tmp_path / "s", "nand") as st:
        st.add_table("a", w, row_order=np.arange(ROWS)[::-1].copy())
    before = _keys(tmp_path / "s")
    with PageStore.open(tmp_path / "s") as st:
        ids = np.array([5, 2999, 1000])
        st.update_rows("a", ids, np.ones((3, DIM), np.float32))
        info = st.table_info("a")
    after = _keys(tmp_path / "s")
    changed = sorted(k.split(b"/")[0] for k in after if before.get(k) != after[k])
    assert changed == [b"delta", b"pt", b"table", b"version"]  # the slot map's segments untouched
    tid = json.loads(unseal(b"table/a", after[b"table/a"], legacy_ok=False)[0])["table_id"]
    log = unseal(f"delta/{tid}/{47:010d}".encode(), after[f"delta/{tid}/{47:010d}".encode()], legacy_ok=False)[0]
    assert sorted(np.frombuffer(log, "<i8").tolist()) == [5, 1000, 2999] and info.delta_pages == 1


def _log_key(path) -> bytes:
    (key,) = [k for k in _keys(path) if k.startswith(b"delta/")]
    return key


@pytest.mark.parametrize("damage, match", [
    ("dup", "names a row twice"),
    ("range", r"names row 3000, outside \[0, 3000\)"),
    ("moved", "starts at page 48, expected 47"),
    ("lost", "delta log covers pages up to 47, the record has 48"),
])
def test_a_damaged_delta_log_is_corrupt_under_a_valid_seal(tmp_path, damage, match):
    path = tmp_path / "s"
    with PageStore.create(path, "nand") as st:
        st.add_table("a", np.zeros((ROWS, DIM), np.float32))
        st.update_rows("a", np.array([1, 2, 3]), np.ones((3, DIM), np.float32))
    key = _log_key(path)
    ids = {"dup": [1, 2, 2], "range": [1, 2, 3000]}.get(damage)
    if ids is not None:
        _put(path, key, seal(key, np.array(ids, "<i8").tobytes()))
    elif damage == "moved":
        raw = _keys(path)[key]
        new = key.replace(b"0000000047", b"0000000048")
        _put(path, key, None)
        _put(path, new, seal(new, unseal(key, raw, legacy_ok=False)[0]))
    else:
        _put(path, key, None)
    with pytest.raises(CorruptMetadataError, match=match):
        PageStore.open(path)
    from sdm.tiers.store_verify import verify_store

    rep = verify_store(path)
    assert not rep.ok and any(re.search(match, d.message) for d in rep.damage)


def test_a_moved_row_is_no_page_mate(tmp_path):
    """Page-granular admission caches the rows of a fetched page; an updated row's copy there is
    dead (it lives in a delta page), so it must not come along."""
    n, dim = 4096, 8                                         # 128 rows a page
    w = torch.randn(n, dim)
    s = EmbeddingStore.create(tmp_path / "s", [TableSpec("t", n, dim)], hardware="host-nand", weights={"t": w},
                              dram_cache_bytes=1024 * (dim * 4 + 9), page_admit="all")
    try:
        new = torch.full((1, dim), 7.0)
        s.update("t", np.array([3]), new)
        s.reset_stats()
        got = s.lookup("t", torch.tensor([5]), torch.tensor([0]))
        assert torch.equal(got, w[[5]])
        st = s.stats()["tables"]["t"]["tiers"]["scm"]
        assert st["reads"] == 1 and st["admitted"] == 128 - 2   # page 0's rows but 5 itself and moved row 3
        assert (s.cache("t").probe(np.array([3])) < 0).all()
        assert torch.equal(s.lookup("t", torch.tensor([3]), torch.tensor([0])), new)
    finally:
        s.close()


def test_merge_in_small_chunks_and_short_reads(tmp_path, monkeypatch):
    """The merge's chunking (home pages and delta pages a chunk at a time) and its preadv split give
    the same table as one step would: chunks of 8 pages and preadv calls of 3 over 47 home pages."""
    from sdm.tiers import row_merge

    monkeypatch.setattr(row_merge, "MERGE_CHUNK_PAGES", 8)
    monkeypatch.setattr(row_merge, "IOV_MAX", 3)
    rng = np.random.default_rng(5)
    cur = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    with PageStore.create(tmp_path / "s", "nand", max_space_amp=50.0) as st:
        st.add_table("a", cur, row_order=rng.permutation(ROWS))
        planned = st.page_of("a", np.arange(ROWS))
        for _ in range(4):
            ids = rng.choice(ROWS, 700, replace=False)
            cur[ids] = rng.standard_normal((700, DIM)).astype(np.float32)
            st.update_rows("a", ids, cur[ids])
        st.compact("a")
        assert np.array_equal(st.page_of("a", np.arange(ROWS)), planned)
        assert np.array_equal(st.read_rows("a", np.arange(ROWS)), cur) and not st.verify().damage
