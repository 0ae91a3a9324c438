"""The compact DLRM: shape of the reference, deterministic, and unchanged by swapping emb_l for a store."""
from __future__ import annotations

import pytest
import torch

from sdm.runtime.dlrm import DLRM, random_inputs
from sdm.runtime.embedding_store import EmbeddingStore
from sdm.core.errors import InvalidInputError


def test_forward_shape_and_range():
    m = DLRM([100, 20, 300], dim=8, num_dense=5, seed=1)
    dense, offs, idxs = random_inputs(m, batch=16, pooling=3)
    out = m(dense, offs, idxs)
    assert out.shape == (16, 1) and ((out > 0) & (out < 1)).all()
    assert isinstance(m.emb_l, torch.nn.ModuleList)
    assert all(isinstance(e, torch.nn.EmbeddingBag) and e.mode == "sum" for e in m.emb_l)
    # interaction: x plus the strictly lower triangle of (T+1) x (T+1) dots
    assert m.top_l[0].in_features == 8 + 4 * 3 // 2


def test_same_seed_same_model():
    a, b = DLRM([50, 60], seed=7), DLRM([50, 60], seed=7)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_emb_l_swap_is_exact(tmp_path):
    m = DLRM([400, 30, 700, 5], dim=16, seed=2).eval()
    dense, offs, idxs = random_inputs(m, batch=64, pooling=6, seed=4)
    with torch.no_grad():
        ref = m(dense, offs, idxs)
    store = EmbeddingStore.from_embedding_bags(m.emb_l, tmp_path / "s", hardware="host-nand",
                                               dram_cache_bytes=200 * (64 + 13))
    m.emb_l = store.as_embedding_bags()
    with torch.no_grad():
        for _ in range(2):  # cold, then partly cached
            assert torch.equal(m(dense, offs, idxs), ref)
    store.close()


def test_no_tables_is_an_error():
    with pytest.raises(InvalidInputError, match="at least one embedding table"):
        DLRM([])


def test_bad_shapes_are_named():
    with pytest.raises(InvalidInputError, match=r"DLRM table 1 rows must be a whole number >= 1, got 2.5"):
        DLRM([10, 2.5])
    m = DLRM([10, 20], dim=4)
    dense, offs, idxs = random_inputs(m, batch=2, pooling=2)
    with pytest.raises(InvalidInputError, match="DLRM has 2 tables, got 1 index and 2 offset tensors"):
        m(dense, offs, idxs[:1])
