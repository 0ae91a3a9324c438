"""PyTorch conventions of a wrapped model: state_dict round trip through the store, torch.compile
and torch.export through the registered op, copy / pickle refused clearly, create(progress=)."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

import sdm
from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.runtime.dlrm import DLRM, random_inputs
from sdm.runtime.embedding_store import EmbeddingStore

ROWS = [100, 200, 50]


def _pair(tmp_path):
    """(wrapped DLRM, an identical unwrapped one, the store)."""
    m, m0 = DLRM(ROWS, dim=16), DLRM(ROWS, dim=16)
    store = sdm.wrap(m, tmp_path / "w", progress=False)
    return m, m0, store


def test_state_dict_round_trips_with_the_unwrapped_checkpoint(tmp_path):
    m, m0, store = _pair(tmp_path)
    ref = m0.state_dict()
    sd = m.state_dict()
    assert sorted(sd) == sorted(ref) and all(torch.equal(sd[k], ref[k]) for k in ref)
    # a checkpoint with other weights: written through to the store (and the caches follow)
    other = DLRM(ROWS, dim=16, seed=7)
    x = random_inputs(m, 8, seed=3)
    m(*x)                                      # rows now cached: the load must not serve stale ones
    m.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert torch.equal(m(*x), other(*x))
    path = store.path
    store.close()
    with EmbeddingStore.open(path) as again:   # on disk, committed
        assert torch.equal(again.read_weight("emb_l.1"), other.emb_l[1].weight.detach())


def test_load_state_dict_reports_missing_and_misshapen_weights(tmp_path):
    m, m0, store = _pair(tmp_path)
    sd = m0.state_dict()
    del sd["emb_l.0.weight"]
    with pytest.raises(RuntimeError, match="emb_l.0.weight"):
        m.load_state_dict(sd)
    sd = m0.state_dict()
    sd["emb_l.2.weight"] = torch.zeros(3, 16)
    with pytest.raises(RuntimeError, match="size mismatch for emb_l.2.weight"):
        m.load_state_dict(sd)
    store.close()


def test_quantized_table_state_dict_holds_the_decoded_rows(tmp_path):
    w = torch.randn(64, 8)
    with EmbeddingStore.create(tmp_path / "q", [TableSpec("t", 64, 8, row_format="int8")], weights={"t": w},
                               progress=False) as store:
        bag = store.as_embedding_bags()[0]
        got = bag.state_dict()["weight"]
        ids = torch.arange(64)
        # bags of one row: the stored values (the fused kernel rounds code * scale + bias in one fma)
        assert torch.allclose(got, store.lookup("t", ids, ids), rtol=1e-6, atol=1e-6)
        assert (got - w).abs().max() < 0.05


def test_torch_compile_and_export_of_a_wrapped_dlrm(tmp_path):
    m, m0, store = _pair(tmp_path)
    with torch.no_grad():
        compiled, compiled0 = torch.compile(m), torch.compile(m0)
        for seed in range(2):
            x = random_inputs(m, 8, seed=seed)
            # same graph around the lookups: bitwise the compiled unwrapped model's outputs
            assert torch.equal(compiled(*x), compiled0(*x))
        x = random_inputs(m, 8, seed=5)
        ep = torch.export.export(m, x)
        assert any("sdm.lookup" in str(n.target) for n in ep.graph.nodes)
        assert torch.equal(ep.module()(*x), m0(*x))
    store.close()


def test_copy_and_pickle_give_a_clear_error(tmp_path):
    m, _, store = _pair(tmp_path)
    for attempt in (copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="cannot be copied or pickled.*EmbeddingStore.open"):
            attempt(m)
    store.close()


def test_create_progress_flag(tmp_path, capsys):
    w = torch.randn(1000, 4)
    EmbeddingStore.create(tmp_path / "p1", [TableSpec("t", 1000, 4)], weights={"t": w}, progress=True).close()
    assert "ingest t" in capsys.readouterr().err
    EmbeddingStore.create(tmp_path / "p0", [TableSpec("t", 1000, 4)], weights={"t": w}, progress=False).close()
    assert "ingest" not in capsys.readouterr().err
    with pytest.raises(InvalidInputError, match="progress"):
        EmbeddingStore.create(tmp_path / "p2", [TableSpec("t", 1000, 4)], weights={"t": w}, progress="yes")


def test_lookup_takes_any_integer_numpy_layout(tmp_path):
    w = torch.randn(50, 4)
    with EmbeddingStore.create(tmp_path / "n", [TableSpec("t", 50, 4)], weights={"t": w}, progress=False) as store:
        ids = np.array([9, 3, 7, 1, 0, 2], np.int64)
        ref = torch.nn.functional.embedding_bag(torch.from_numpy(ids[::-1].copy()), w, torch.tensor([0, 2]), mode="sum")
        # negative stride, big-endian, unsigned, a strided view: each copied to int64 as needed
        strided = np.repeat(ids[::-1], 2)[::2]
        for layout in (ids[::-1], ids[::-1].astype(">i8"), ids[::-1].astype(np.uint16), strided):
            assert torch.equal(store.lookup("t", layout, np.array([0, 2], ">i4")), ref)
        two_d = ids.reshape(2, 3)[:, ::-1]     # negative-stride 2-D bags
        assert torch.equal(store.lookup("t", two_d), torch.nn.functional.embedding_bag(
            torch.from_numpy(two_d.copy()), w, mode="sum"))
        with pytest.raises(InvalidInputError, match="table 't': indices must be integers"):
            store.lookup("t", ids.astype(np.float32), np.array([0]))
        # per_sample_weights must have the 2-D indices' shape, as nn.EmbeddingBag requires
        with pytest.raises(InvalidInputError, match=r"table 't': per_sample_weights shape \(6,\)"):
            store.lookup("t", ids.reshape(2, 3), per_sample_weights=torch.ones(6))
