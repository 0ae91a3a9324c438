"""torch.fx.symbolic_trace and torch.jit.script of a wrapped DLRM: the store lookup is one call of
the registered op (torch.ops.sdm.lookup) in the graph, and the outputs are bitwise those of the
unwrapped model."""
from __future__ import annotations

import warnings

import pytest
import torch

import sdm
from sdm.core.errors import InvalidInputError
from sdm.runtime.dlrm import DLRM, random_inputs


def _script(model):
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.compile / export
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(model)


@pytest.fixture
def wrapped(tmp_path):
    model = DLRM([300, 40, 120], dim=8, seed=3).eval()
    inputs = random_inputs(model, batch=32, pooling=5, seed=2)
    with torch.no_grad():
        ref = model(*inputs)
    # a cache of ~100 rows per store: lookups read SCM, the cache, or both
    store = sdm.wrap(model, tmp_path / "s", hardware="host-nand", dram_cache_bytes=300 * (8 * 4 + 13),
                     progress=False)
    yield model, inputs, ref
    store.close()


def test_unwrapped_dlrm_traces_and_scripts():
    model = DLRM([50, 20], dim=4, seed=1).eval()
    inputs = random_inputs(model, batch=8)
    with torch.no_grad():
        ref = model(*inputs)
        assert torch.equal(torch.fx.symbolic_trace(model)(*inputs), ref)
        assert torch.equal(_script(model)(*inputs), ref)


def test_fx_symbolic_trace_of_a_wrapped_dlrm(wrapped):
    model, inputs, ref = wrapped
    gm = torch.fx.symbolic_trace(model)
    lookups = [n for n in gm.graph.nodes if n.op == "call_function" and n.target in (torch.ops.sdm.lookup, torch.ops.sdm.lookup.default)]
    assert [n.args[1] for n in lookups] == ["emb_l.0", "emb_l.1", "emb_l.2"]
    with torch.no_grad():
        for _ in range(2):  # cold, then cached
            assert torch.equal(gm(*inputs), ref)
    dense, offs, idxs = inputs
    with pytest.raises(InvalidInputError, match="DLRM has 3 tables, got 2 index"):  # checked when the graph runs
        gm(dense, offs, idxs[:2])


def test_jit_script_of_a_wrapped_dlrm(wrapped):
    model, inputs, ref = wrapped
    scripted = _script(model)
    assert "sdm::lookup" in str(scripted.inlined_graph)
    with torch.no_grad():
        for _ in range(2):
            assert torch.equal(scripted(*inputs), ref)
    dense, offs, idxs = inputs
    with pytest.raises(Exception, match="DLRM has 3 tables, got 2 index"):  # TorchScript re-raises by message
        scripted(dense, offs, idxs[:2])


def test_traced_quantized_tables_equal_eager(tmp_path):
    model = DLRM([200, 60], dim=8, seed=5).eval()
    inputs = random_inputs(model, batch=16, pooling=4, seed=1)
    store = sdm.EmbeddingStore.from_embedding_bags(model.emb_l, tmp_path / "q", hardware=None, progress=False)
    store.close()
    specs = [sdm.TableSpec(n, s.num_rows, s.dim, "int8") for n, s in zip(store.tables, store.specs)]
    weights = {n: b.weight.detach() for n, b in zip(store.tables, model.emb_l)}
    q = sdm.EmbeddingStore.create(tmp_path / "q8", specs, hardware=None, weights=weights, progress=False)
    model.emb_l = q.as_embedding_bags()
    with torch.no_grad():
        eager = model(*inputs)
        assert torch.equal(torch.fx.symbolic_trace(model)(*inputs), eager)
        assert torch.equal(_script(model)(*inputs), eager)
    q.close()
