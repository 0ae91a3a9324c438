"""Quantized and fp16 rows pooled by fused kernels straight from the stored codes (sdm.runtime.quantized).

The reference for int8 / int4 is torch's own fused op (fbgemm's kernels) over the table's codes with
the same ids: the store must give the very same bits on every path (direct cache, hashed cache with
every row cached, SCM misses). fp16: nn.EmbeddingBag over the fp16 weights, the same bits.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.runtime import row_formats
from sdm.runtime.embedding_store import BagOptions, EmbeddingStore

Q = torch.ops.quantized
OPS = {"int8": Q.embedding_bag_byte_rowwise_offsets, "int4": Q.embedding_bag_4bit_rowwise_offsets}
ROWS, DIM = 600, 16


def _store(tmp_path, fmt, w, path, mode="sum", include_last_offset=False, padding_idx=None):
    """(store, stored codes of the whole table) for one cache path: 'direct' (every row cached at
    slot = id), 'hashed' (set-associative, every looked-up row cached), 'scm' (a tiny cache)."""
    per_row = TableSpec("t", ROWS, DIM, row_format=fmt).row_bytes + 16
    budget = {"direct": ROWS * per_row, "hashed": 2 * ROWS * per_row, "scm": 4 * per_row}[path]
    store = EmbeddingStore.create(tmp_path / f"{fmt}-{path}-{mode}", [TableSpec("t", ROWS, DIM, row_format=fmt)],
                                  weights={"t": w}, hardware="host-nand", dram_cache_bytes=budget,
                                  cache_layout="hashed" if path == "hashed" else "auto",
                                  options={"t": BagOptions(mode, include_last_offset, padding_idx)})
    if path != "scm":
        store.prefetch({"t": np.arange(ROWS)})
    return store, torch.from_numpy(row_formats.encode(w, fmt))


def _batch(seed, n=400, bags=37):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, ROWS, (n,), generator=g)
    off = torch.sort(torch.randint(0, n, (bags,), generator=g)).values
    off[0] = 0
    return idx, off, torch.rand(n, generator=g)


@pytest.mark.parametrize("fmt", ["int8", "int4"])
@pytest.mark.parametrize("path", ["direct", "hashed", "scm"])
def test_fused_sum_bitwise_equal_to_torch_quantized_op(tmp_path, fmt, path):
    w = torch.randn(ROWS, DIM) * 2
    store, codes = _store(tmp_path, fmt, w, path)
    op = OPS[fmt]
    for seed in range(3):
        idx, off, psw = _batch(seed)
        assert torch.equal(store.lookup("t", idx, off), op(codes, idx, off, False, 0, False, None, None, False))
        got = store.lookup("t", idx, off, per_sample_weights=psw)
        assert torch.equal(got, op(codes, idx, off, False, 0, False, psw, None, False))
    if path != "scm":
        assert store.stats()["tables"]["t"]["hit_rate"]["dram"] == 1.0
    store.close()


@pytest.mark.parametrize("fmt", ["int8", "int4"])
def test_fused_include_last_offset_and_mean(tmp_path, fmt):
    w = torch.randn(ROWS, DIM)
    idx, off, _ = _batch(7)
    last = torch.cat([off, torch.tensor([idx.numel()])])
    store, codes = _store(tmp_path, fmt, w, "hashed", include_last_offset=True)
    assert torch.equal(store.lookup("t", idx, last), OPS[fmt](codes, idx, last, False, 0, False, None, None, True))
    store.close()
    store, codes = _store(tmp_path, fmt, w, "direct", mode="mean")
    decoded = row_formats.decode(codes, fmt)
    ref = F.embedding_bag(idx, decoded, off, mode="mean")
    got = store.lookup("t", idx, off)
    # the op's sum divided by the bag's length: within float32 rounding of the sums
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5)
    store.close()


@pytest.mark.parametrize("fmt", ["int8", "int4", "fp16"])
@pytest.mark.parametrize("path", ["direct", "hashed", "scm"])
def test_max_and_padding_pool_the_decoded_rows_exactly(tmp_path, fmt, path):
    w = torch.randn(ROWS, DIM)
    idx, off, _ = _batch(3)
    store, codes = _store(tmp_path, fmt, w, path, mode="max")
    decoded = row_formats.decode(codes, fmt)
    assert torch.equal(store.lookup("t", idx, off), F.embedding_bag(idx, decoded, off, mode="max"))
    store.close()
    store, codes = _store(tmp_path, fmt, w, path, padding_idx=int(idx[5]))
    ref = F.embedding_bag(idx, decoded, off, mode="sum", padding_idx=int(idx[5]))
    got = store.lookup("t", idx, off)
    if fmt == "fp16":  # the fp16 kernel (its pooled value rounded to fp16 once)
        ref = F.embedding_bag(idx, decoded.half(), off, mode="sum", padding_idx=int(idx[5])).float()
    assert torch.equal(got, ref)
    store.close()


@pytest.mark.parametrize("path", ["direct", "hashed", "scm"])
def test_fp16_equals_embedding_bag_over_fp16_weights(tmp_path, path):
    w = torch.randn(ROWS, DIM) * 4
    store, codes = _store(tmp_path, "fp16", w, path)
    for seed in range(3):
        idx, off, psw = _batch(seed)
        ref = F.embedding_bag(idx, codes, off, mode="sum")
        assert torch.equal(store.lookup("t", idx, off), ref.float())
        # with per_sample_weights: exact float32 pooling of the decoded rows
        ref_w = F.embedding_bag(idx, codes.float(), off, mode="sum", per_sample_weights=psw)
        assert torch.equal(store.lookup("t", idx, off, per_sample_weights=psw), ref_w)
    store.close()


def test_fp16_overflowing_sum_falls_back_to_float32(tmp_path):
    w = torch.full((ROWS, DIM), 60000.0)
    store, _ = _store(tmp_path, "fp16", w, "direct")
    got = store.lookup("t", torch.tensor([1, 2, 3]), torch.tensor([0]))
    assert torch.equal(got, torch.full((1, DIM), 180000.0))
    store.close()


def test_int8_layout_is_fbgemms():
    w = torch.randn(50, 12) * 3
    codes = torch.from_numpy(row_formats.encode(w, "int8"))
    # the same codes, scale and bias (fbgemm's unpack rounds code * scale + bias in one fma)
    assert torch.allclose(row_formats.decode(codes, "int8"), Q.embedding_bag_byte_unpack(codes), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dim", [2, 8, 64, 130])
def test_int4_layout_and_error_bound(dim):
    g = torch.Generator().manual_seed(dim)
    w = torch.randn(300, dim, generator=g) * torch.rand(300, 1, generator=g) * 10
    w[0] = 1.25                      # a constant row: scale 0, exact
    w[1, : dim // 2] = 1e-6          # a tiny range: subnormal fp16 scale
    codes = torch.from_numpy(row_formats.encode(w, "int4"))
    assert codes.shape == (300, dim // 2 + 4) and codes.dtype == torch.uint8
    dec = row_formats.decode(codes, "int4")
    assert torch.equal(dec, Q.embedding_bag_4bit_unpack(codes))   # fbgemm reads the same values
    err = (dec - w).abs().numpy()
    bound = row_formats.error_bound(w.numpy(), "int4")
    assert (err <= bound).all()
    if dim >= 8:  # (with 2 values a row, both are the row's min and max: near exact)
        assert err[2:].max() > 0.3 * bound[2:].max()               # the bound is not loose by far
    assert torch.equal(dec[0], w[0])
    # pooled sums: within the per-row bounds summed (plus float32 rounding of the sums)
    idx = torch.arange(300)
    off = torch.tensor([0, 100, 200])
    pooled = Q.embedding_bag_4bit_rowwise_offsets(codes, idx, off, False, 0, False, None, None, False)
    ref = F.embedding_bag(idx, w, off, mode="sum")
    b = torch.tensor(bound)
    bags = torch.stack([b[:100].sum(0), b[100:200].sum(0), b[200:].sum(0)]).float()
    assert ((pooled - ref).abs() <= bags * 1.001 + 1e-4).all()


def test_int4_refuses_odd_dim_and_out_of_range_rows():
    with pytest.raises(InvalidInputError, match="even dim"):
        TableSpec("t", 10, 7, row_format="int4")
    with pytest.raises(InvalidInputError, match="int4"):
        row_formats.encode(np.array([[0.0, 1e7]], np.float32), "int4", table="t")
