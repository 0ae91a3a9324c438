"""SCM page store: every bad input gets a clear error that names what is wrong, and changes nothing."""
from __future__ import annotations

import json
import os

import lmdb
import numpy as np
import pytest

from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.tiers.pagestore import PageStore


def _snapshot(root) -> dict:
    """Every file under `root` with its size: "nothing written" means this does not change."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f != "lock.mdb":  # LMDB's reader table; touched by any open
                p = os.path.join(d, f)
                out[os.path.relpath(p, root)] = os.path.getsize(p)
    return out


@pytest.fixture
def store(tmp_path):
    w = np.arange(300 * 8, dtype=np.float32).reshape(300, 8)
    st = PageStore.create(tmp_path / "s")
    st.add_table("emb", w)
    yield st, w
    st.close()


@pytest.mark.parametrize(
    "ids, match",
    [
        (np.array([0, -1, 5]), r"table 'emb': row ids: index -1 at position 1 is out of range \[0, 300\)"),
        (np.array([0, 299, 300, 301]), r"table 'emb': row ids: index 300 at position 2 is out of range \[0, 300\)"),
        (np.array([2**63 + 5, 1], np.uint64), r"row ids: value 9223372036854775813 at position 0 does not fit int64"),
        (np.array([1.0, 2.0]), r"table 'emb': row ids must be integers, got dtype float64"),
        (np.array([True, False]), r"row ids must be integers, got dtype bool"),
        (np.array([[1, 2]]), r"row ids must be 1-D, got shape \(1, 2\)"),
    ],
)
def test_bad_row_ids(store, ids, match):
    st, w = store
    with pytest.raises(InvalidInputError, match=match):
        st.read_rows("emb", ids)
    with pytest.raises(InvalidInputError, match=match):
        st.page_of("emb", ids)
    before = (_snapshot(st.path), st.version)
    with pytest.raises(InvalidInputError, match=match):
        st.update_rows("emb", ids, np.zeros((ids.shape[-1], 8), np.float32))
    assert (_snapshot(st.path), st.version) == before
    assert np.array_equal(st.read_rows("emb", np.arange(300)), w)


@pytest.mark.parametrize(
    "values, match",
    [
        (np.zeros((2, 8), np.float64), r"table 'emb': values have dtype float64, table stores float32"),
        (np.zeros((2, 9), np.float32), r"values have shape \(2, 9\), expected \(2, 8\)"),
        (np.zeros((3, 8), np.float32), r"values have shape \(3, 8\), expected \(2, 8\)"),
        ([[0.0] * 8] * 2, r"values must be a numpy array"),
    ],
)
def test_bad_update_values(store, values, match):
    st, w = store
    before = (_snapshot(st.path), st.version)
    with pytest.raises(InvalidInputError, match=match):
        st.update_rows("emb", np.array([3, 4]), values)
    assert (_snapshot(st.path), st.version) == before
    assert np.array_equal(st.read_rows("emb", np.arange(300)), w)


def test_duplicate_ids_in_update(store):
    st, _ = store
    with pytest.raises(InvalidInputError, match=r"row id 4 appears more than once"):
        st.update_rows("emb", np.array([4, 9, 4]), np.zeros((3, 8), np.float32))
    assert st.version == 1


def test_unknown_table(store):
    st, _ = store
    with pytest.raises(InvalidInputError, match=r"no table 'nope'.*\['emb'\]"):
        st.read_rows("nope", [0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(rows=np.zeros((4,), np.float32)), r"table 'x': rows must be 2-D"),
        (dict(rows=np.zeros((4, 8), np.float32), dim=9), r"table 'x': dim=9 but rows have shape \(4, 8\)"),
        (dict(rows=np.zeros((4, 8), np.float32), dtype=np.float16), r"dtype=float16 but rows have dtype float32"),
        (dict(rows=np.zeros((4, 2), object)), r"dtype object cannot be stored"),
        (dict(rows=np.zeros((0, 8), np.float32)), r"need at least one row"),
        (dict(rows=iter([])), r"no rows given"),
        (dict(rows=5), r"rows must be a 2-D array or an iterable"),
        (dict(rows=iter([np.zeros((4, 8), np.float32), np.zeros((4, 7), np.float32)])),
         r"chunk 1 \(row 4\) has rows of width 7, expected 8"),
        (dict(rows=iter([np.zeros((4, 8), np.float32), np.zeros((4, 8), np.float64)])),
         r"chunk 1 \(row 4\) has dtype float64, expected float32"),
        (dict(rows=iter([np.zeros((4, 8), np.float32)] * 3), num_rows=10), r"chunk 2 goes past num_rows=10"),
        (dict(rows=iter([np.zeros((4, 8), np.float32)] * 3), num_rows=13), r"got 12 rows, num_rows=13"),
        (dict(rows=np.zeros((4, 8), np.float32), row_order=np.array([0, 1, 1, 3])),
         r"row_order is not a permutation: row 1 appears 2 times"),
        (dict(rows=np.zeros((4, 8), np.float32), row_order=np.array([0, 1, 2])), r"row_order has 3 entries"),
        (dict(rows=np.zeros((4, 8), np.float32), row_order=np.array([0, 1, 2, 4])),
         r"table 'x': row_order: index 4 at position 3 is out of range \[0, 4\)"),
        (dict(rows=np.zeros((4, 8), np.float32), row_order=np.array([0.0, 1, 2, 3])),
         r"table 'x': row_order must be integers, got dtype float64"),
        (dict(rows=iter([np.zeros((4, 8), np.float32)] * 2), row_order=np.arange(9)), r"got 8 rows, num_rows=9"),
    ],
)
def test_bad_ingest_writes_nothing(store, kwargs, match):
    st, w = store
    before = (_snapshot(st.path), st.version)
    with pytest.raises(InvalidInputError, match=match):
        st.add_table("x", **kwargs)
    assert (_snapshot(st.path), st.version, st.tables) == (*before, ["emb"])


def test_bad_table_names(store):
    st, _ = store
    for name, match in [("", "non-empty string"), (3, "non-empty string"), ("emb", "already exists"),
                        ("n" * 300, "longer than 200 bytes")]:
        with pytest.raises(InvalidInputError, match=match):
            st.add_table(name, np.zeros((2, 2), np.float32))
    assert st.tables == ["emb"] and st.version == 1


def test_open_paths_that_are_not_stores(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(StoreFormatError, match=r"missing: not an sdm page store \(no such directory\)"):
        PageStore.open(missing)
    assert not missing.exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("hello")
    with pytest.raises(StoreFormatError, match=r"other: not an sdm page store"):
        PageStore.open(other)
    assert sorted(os.listdir(other)) == ["notes.txt"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(StoreFormatError, match="not an sdm page store"):
        PageStore.open(afile)
    # an LMDB environment that is not ours
    foreign = tmp_path / "foreign"
    (foreign / "meta.lmdb").mkdir(parents=True)
    env = lmdb.open(str(foreign / "meta.lmdb"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"k", b"v")
    env.close()
    with pytest.raises(StoreFormatError, match=r"no format_version"):
        PageStore.open(foreign)


def test_unknown_format_version(tmp_path):
    with PageStore.create(tmp_path / "s") as st:
        st.add_table("t", np.zeros((4, 4), np.float32))
    env = lmdb.open(str(tmp_path / "s" / "meta.lmdb"), map_size=1 << 38)
    with env.begin(write=True) as txn:
        txn.put(b"format_version", json.dumps(99).encode())
    env.close()
    before = _snapshot(tmp_path / "s")
    with pytest.raises(StoreFormatError, match=r"store format version 99 is not supported \(this sdm reads versions 1, 2, 3\)"):
        PageStore.open(tmp_path / "s")
    assert _snapshot(tmp_path / "s") == before


def test_create_refuses_existing_paths(tmp_path):
    with PageStore.create(tmp_path / "s") as st:
        st.add_table("t", np.zeros((4, 4), np.float32))
    with pytest.raises(InvalidInputError, match="exists and is not an empty directory"):
        PageStore.create(tmp_path / "s")
    with PageStore.open(tmp_path / "s") as st:
        assert st.tables == ["t"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(page_bytes=1000), "page_bytes must be a positive multiple of 4096"),
        (dict(compression="lz4"), "unknown compression 'lz4'"),
        (dict(device="floppy"), "unknown device 'floppy'"),
        (dict(queue_depth=0), "queue_depth must be a whole number >= 1, got 0"),
        (dict(queue_depth=2.5), "queue_depth must be a whole number >= 1, got 2.5"),
        (dict(page_bytes=4096.5), "page_bytes must be a whole number"),
    ],
)
def test_bad_create_arguments(tmp_path, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        PageStore.create(tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_closed_store(tmp_path):
    st = PageStore.create(tmp_path / "s")
    st.add_table("t", np.zeros((4, 4), np.float32))
    st.close()
    with pytest.raises(InvalidInputError, match="is closed"):
        st.read_rows("t", [0])


def test_second_open_in_same_process(store):
    st, _ = store
    with pytest.raises(InvalidInputError, match="already open in this process"):
        PageStore.open(st.path)
    assert st.read_rows("emb", [0]).shape == (1, 8)
