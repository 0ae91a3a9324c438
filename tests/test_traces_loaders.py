"""Loaders: Meta's dataset format (gzip'd torch.save), DLRM reference text/binary, CSV."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.traces import load_csv, load_dlrm_text, load_meta_dataset, load_trace


def write_meta(path, lengths, indices, offsets=None, compress=True):
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    if offsets is None:
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.reshape(-1).cumsum(0)])
    obj = (torch.as_tensor(indices, dtype=torch.int64), offsets, lengths)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        torch.save(obj, f)


def test_meta_dataset(tmp_path):
    # T=2 tables, B=3 samples, table-major: table 0 bags [5], [1, 2], []; table 1 [0, 0], [4], [3]
    p = tmp_path / "fbgemm_t2_bs3.pt.gz"
    write_meta(p, [[1, 2, 0], [2, 1, 1]], [5, 1, 2, 0, 0, 4, 3])
    tr = load_meta_dataset(p, num_rows=[8, 6])
    assert tr.num_rows == [8, 6] and tr.batch_size == 3 and tr.num_samples == 3
    (i0, o0), (i1, o1) = tr.batch(0)
    assert i0.tolist() == [5, 1, 2] and o0.tolist() == [0, 1, 3, 3]
    assert i1.tolist() == [0, 0, 4, 3] and o1.tolist() == [0, 2, 3, 4]
    assert load_trace(p).num_rows == [6, 5]  # inferred as max id + 1
    plain = tmp_path / "plain.pt"
    write_meta(plain, [[1, 2, 0], [2, 1, 1]], [5, 1, 2, 0, 0, 4, 3], compress=False)
    assert load_trace(plain, num_rows=[8, 6]).global_stream().tolist() == tr.global_stream().tolist()


def test_meta_dataset_errors(tmp_path):
    p = tmp_path / "bad_offsets.pt.gz"
    write_meta(p, [[1, 1]], [1, 2], offsets=torch.tensor([0, 2]))
    with pytest.raises(StoreFormatError, match="T\\*B\\+1 = 3"):
        load_meta_dataset(p)
    p = tmp_path / "range.pt.gz"
    write_meta(p, [[1, 1]], [1, 9])
    with pytest.raises(InvalidInputError, match="index 9 at position 1"):
        load_meta_dataset(p, num_rows=4)
    p = tmp_path / "junk.pt.gz"
    with gzip.open(p, "wb") as f:
        f.write(b"junk")
    with pytest.raises(StoreFormatError, match="junk.pt.gz"):
        load_meta_dataset(p)
    p = tmp_path / "two.pt.gz"
    with gzip.open(p, "wb") as f:
        torch.save((torch.tensor([1]), torch.tensor([0, 1])), f)
    with pytest.raises(StoreFormatError, match="tuple"):
        load_meta_dataset(p)


def test_dlrm_text_and_binary(tmp_path):
    p = tmp_path / "trace.log"
    p.write_text("3, 1, 4, 1, 5, 9, 2\n")  # as dlrm's write_trace_to_file writes it
    tr = load_dlrm_text(p, pooling=2, batch_size=2)
    assert tr.num_samples == 3 and tr.table_stream(0).tolist() == [3, 1, 4, 1, 5, 9]
    assert tr.num_rows == [10]
    b = tmp_path / "trace.bin"
    np.array([3, 1, 4], dtype="<u8").tofile(b)
    assert load_trace(b).table_stream(0).tolist() == [3, 1, 4]
    bad = tmp_path / "bad.txt"
    bad.write_text("1, 2, x3")
    with pytest.raises(InvalidInputError, match="'x3' at position 2"):
        load_dlrm_text(bad)
    with pytest.raises(InvalidInputError, match="out of range"):
        load_dlrm_text(p, num_rows=5)


def test_csv(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("sample,table,row\n10,user,4\n10,item,2\n10,user,1\n11,item,0\n12,user,3\n")
    tr = load_csv(p, batch_size=2)
    assert tr.table_names == ["user", "item"] and tr.num_samples == 3
    assert tr.batch(0)[0][0].tolist() == [4, 1] and tr.batch(0)[0][1].tolist() == [0, 2, 2]
    assert tr.batch(0)[1][1].tolist() == [0, 1, 2]
    assert load_trace(p).num_lookups == 5
    bad = tmp_path / "bad.csv"
    bad.write_text("sample,table,row\n0,a,1\n1,a,-2\n")
    with pytest.raises(InvalidInputError, match="negative row id -2 on line 3"):
        load_csv(bad)
    bad.write_text("sample,table,row\n0,a,1\n1,a,99999999999999999999999\n")
    with pytest.raises(InvalidInputError, match="line 3 holds '99999999999999999999999', beyond 64-bit"):
        load_csv(bad)
    bad.write_text("sample,table\n0,a\n")
    with pytest.raises(StoreFormatError, match="header"):
        load_csv(bad)
    bad.write_text("sample,table,row\n0,a,1\n1,a\n")
    with pytest.raises(StoreFormatError, match="line 3 has 2 fields"):
        load_csv(bad)


def test_load_trace_missing(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_trace(tmp_path / "nope.csv")
