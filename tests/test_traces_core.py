"""The Trace type: batching, streams, validation, save/load."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdm.core.atomic_file import MissingFileError
from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.traces import Trace, from_bags


def small_trace() -> Trace:
    # 2 tables, 5 samples, batch 2 -> 3 batches (last one short)
    return from_bags(
        ["a", "b"], [10, 4],
        [[[1, 2], [3], [], [9, 9, 0], [5]], [[0], [1, 2], [3], [], [2]]],
        batch_size=2,
    )


def naive_global_stream(tr: Trace) -> list[int]:
    out = []
    for b in range(tr.num_batches):
        for t in range(tr.num_tables):
            s0, s1 = b * tr.batch_size, min((b + 1) * tr.batch_size, tr.num_samples)
            for s in range(s0, s1):
                out += [int(tr.table_base[t] + i) for i in tr.indices[t][tr.offsets[t][s]:tr.offsets[t][s + 1]]]
    return out


def test_counts_and_batches():
    tr = small_trace()
    assert (tr.num_tables, tr.num_samples, tr.num_batches, tr.num_lookups) == (2, 5, 3, 12)
    assert tr.table_base.tolist() == [0, 10]
    (ia, oa), (ib, ob) = tr.batch(1)
    assert ia.tolist() == [9, 9, 0] and oa.tolist() == [0, 0, 3]
    assert ib.tolist() == [3] and ob.tolist() == [0, 1, 1]
    last = tr.batch(2)
    assert last[0][0].tolist() == [5] and last[0][1].tolist() == [0, 1]
    assert len(list(tr.iter_batches())) == 3
    assert tr.table_stream("b").tolist() == [0, 1, 2, 3, 2]
    assert tr.pooling_factors().tolist() == [7 / 5, 5 / 5]


def test_global_stream_order():
    tr = small_trace()
    assert tr.global_stream().tolist() == [1, 2, 3, 10, 11, 12, 9, 9, 0, 13, 5, 12]
    assert tr.global_stream(1, 3).tolist() == [9, 9, 0, 13, 5, 12]
    assert tr.batch_of_lookup().tolist() == [0] * 6 + [1] * 4 + [2] * 2


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_global_stream_matches_naive(data):
    T = data.draw(st.integers(1, 4))
    S = data.draw(st.integers(1, 12))
    rows = data.draw(st.lists(st.integers(1, 20), min_size=T, max_size=T))
    bags = [[data.draw(st.lists(st.integers(0, rows[t] - 1), max_size=4)) for _ in range(S)] for t in range(T)]
    tr = from_bags([f"t{t}" for t in range(T)], rows, bags, batch_size=data.draw(st.integers(1, 5)))
    assert tr.global_stream().tolist() == naive_global_stream(tr)
    assert tr.batch_of_lookup().size == tr.num_lookups


@pytest.mark.parametrize("suffix", [".npz", "_dir"])
def test_save_load_roundtrip(tmp_path, suffix):
    tr = small_trace()
    path = tr.save(tmp_path / f"t{suffix}")
    back = Trace.load(path)
    assert back.table_names == tr.table_names and back.num_rows == tr.num_rows
    assert back.batch_size == tr.batch_size
    assert back.global_stream().tolist() == tr.global_stream().tolist()
    if suffix == "_dir":
        assert isinstance(back.indices[0], np.memmap)  # large traces stay on disk
    tr.save(path)  # overwrite in place works
    assert not (tmp_path / f"t{suffix}.tmp").exists()


def test_validation_names_table_and_position():
    with pytest.raises(InvalidInputError, match=r"table 'b'.*index 7 at position 2.*\[0, 4\)"):
        from_bags(["a", "b"], [10, 4], [[[1], [2]], [[0], [1, 7]]], batch_size=1)
    with pytest.raises(InvalidInputError, match=r"table 'a'.*non-decreasing; offsets\[2\]=1 < offsets\[1\]=2"):
        Trace(["a"], [5], [np.array([1, 2])], [np.array([0, 2, 1, 2])], 1)
    with pytest.raises(InvalidInputError, match=r"table 'a': offsets\[1\]=1 but there are 2 indices"):
        Trace(["a"], [5], [np.array([1, 2])], [np.array([0, 1])], 1)
    with pytest.raises(InvalidInputError, match="table 'b' has 1 samples"):
        Trace(["a", "b"], [5, 5], [np.array([1, 2]), np.array([0])], [np.array([0, 1, 2]), np.array([0, 1])], 1)
    with pytest.raises(InvalidInputError, match="integers"):
        Trace(["a"], [5], [np.array([1.5])], [np.array([0, 1])], 1)
    with pytest.raises(InvalidInputError, match="batch 3 out of range"):
        small_trace().batch(3)
    with pytest.raises(InvalidInputError, match="unknown table 'zz'"):
        small_trace().table_stream("zz")
    with pytest.raises(InvalidInputError, match="batch_size must be a whole number >= 1, got 2.5"):
        Trace(["a"], [5], [np.array([1])], [np.array([0, 1])], 2.5)
    with pytest.raises(InvalidInputError, match=r"num_rows\[0\] of trace must be a whole number >= 1"):
        Trace(["a"], [0], [np.array([], dtype=np.int64)], [np.array([0])], 1)
    with pytest.raises(InvalidInputError, match="num_batches must be a whole number"):
        small_trace().subset(num_batches=-1)


def test_load_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):  # old callers catch this; it is also the one MissingFileError
        Trace.load(tmp_path / "missing.npz")
    with pytest.raises(MissingFileError, match="trace .*missing_dir.* does not exist"):
        Trace.load(tmp_path / "missing_dir")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(StoreFormatError, match="bad.npz"):
        Trace.load(bad)
    np.savez(tmp_path / "other.npz", x=np.arange(3))
    with pytest.raises(StoreFormatError, match="not an sdm trace"):
        Trace.load(tmp_path / "other.npz")
    (tmp_path / "d").mkdir()
    with pytest.raises(StoreFormatError, match="no meta.json"):
        Trace.load(tmp_path / "d")


def test_subset():
    tr = small_trace()
    sub = tr.subset(["b"], num_batches=2)
    assert sub.table_names == ["b"] and sub.num_samples == 4
    assert sub.global_stream().tolist() == [0, 1, 2, 3]
