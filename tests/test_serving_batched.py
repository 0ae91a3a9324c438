"""Table-batched lookup (KeyedJaggedTensor layout) and the EmbeddingBagCollection-shaped module."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import sdm
from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.runtime.collection import KeyedJagged, StoreEmbeddingBagCollection
from sdm.runtime.embedding_store import BagOptions, EmbeddingStore

try:
    import torchrec
except ImportError:  # the optional extra (pip install sdm[torchrec])
    torchrec = None
needs_torchrec = pytest.mark.skipif(torchrec is None, reason="torchrec not installed (optional extra sdm[torchrec])")

ROWS = {"a": 300, "b": 500, "c": 200}
OPTS = {"a": BagOptions("sum"), "b": BagOptions("mean", padding_idx=3), "c": BagOptions("max")}


@pytest.fixture
def store(tmp_path):
    g = torch.Generator().manual_seed(0)
    w = {n: torch.randn(r, 8, generator=g) for n, r in ROWS.items()}
    budget = {"a": 300 * 48, "b": 40 * 48}   # a: whole table cached; b: mostly SCM; c: default share
    s = EmbeddingStore.create(tmp_path / "s", [TableSpec(n, r, 8) for n, r in ROWS.items()], weights=w,
                              hardware="host-nand", options=OPTS, progress=False,
                              plan={"tables": {n: {"dram_cache_bytes": b} for n, b in budget.items()}})
    s.prefetch({"a": np.arange(300)})
    yield s, w
    s.close()


def _request(seed, bags=6):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, 5, (len(ROWS) * bags,), generator=g)
    per_key = lengths.view(len(ROWS), bags).sum(1)
    values = torch.cat([torch.randint(0, r, (int(k),), generator=g) for r, k in zip(ROWS.values(), per_key)])
    return values, lengths


def _refs(w, values, lengths, bags=6, psw=None):
    out, at = [], 0
    for k, (n, o) in enumerate(OPTS.items()):
        ln = lengths[k * bags: (k + 1) * bags]
        cnt = int(ln.sum())
        off = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(ln, 0)[:-1]])
        bag = nn.EmbeddingBag(ROWS[n], 8, mode=o.mode, padding_idx=o.padding_idx, _weight=w[n])
        out.append(bag(values[at: at + cnt], off, per_sample_weights=None if psw is None else psw[at: at + cnt]))
        at += cnt
    return out


def test_lookup_many_equals_a_loop_of_embedding_bags(store):
    s, w = store
    for seed in range(4):
        values, lengths = _request(seed)
        ref = _refs(w, values, lengths)
        got = s.lookup_many(list(ROWS), values, lengths=lengths)
        assert all(torch.equal(g, r) for g, r in zip(got, ref))
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)])
        got = s.lookup_many(list(ROWS), values.numpy().astype(np.int32), offsets=offsets.numpy())
        assert all(torch.equal(g, r) for g, r in zip(got, ref))
    st = s.stats()["tables"]
    assert st["a"]["lookups"] == 8 and st["a"]["hit_rate"]["dram"] == 1.0
    assert st["b"]["tiers"]["scm"]["rows"] > 0


def test_lookup_many_weights_go_to_sum_tables_only(store):
    s, w = store
    values, lengths = _request(5)
    with pytest.raises(InvalidInputError, match="table 'b': per_sample_weights need mode 'sum'"):
        s.lookup_many(list(ROWS), values, lengths=lengths, per_sample_weights=torch.rand(values.numel()))
    va, la = values[: int(lengths[:6].sum())], lengths[:6]
    psw = torch.rand(va.numel())
    got = s.lookup_many(["a"], va, lengths=la, per_sample_weights=psw)[0]
    off = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(la, 0)[:-1]])
    assert torch.equal(got, nn.functional.embedding_bag(va, w["a"], off, mode="sum", per_sample_weights=psw))


def test_lookup_many_bad_input_names_the_table_and_changes_nothing(store):
    s, _ = store
    values, lengths = _request(1)
    n_a = int(lengths[:6].sum())
    bad = values.clone()
    bad[n_a + 1] = 500                      # table b's second id: out of range
    tags = s.cache("b").tags.copy()
    with pytest.raises(InvalidInputError, match=r"key 'b'.*index 500 at position 1 is out of range \[0, 500\)"):
        s.lookup_many(list(ROWS), bad, lengths=lengths)
    assert np.array_equal(s.cache("b").tags, tags) and s.stats()["tables"]["a"]["lookups"] == 0
    with pytest.raises(InvalidInputError, match="cover"):
        s.lookup_many(list(ROWS), values[:-1], lengths=lengths)
    with pytest.raises(InvalidInputError, match="multiple"):
        s.lookup_many(list(ROWS), values, lengths=lengths[:-1])
    with pytest.raises(InvalidInputError, match="negative"):
        s.lookup_many(["a"], torch.zeros(0, dtype=torch.int64), lengths=torch.tensor([1, -1]))
    with pytest.raises(InvalidInputError, match="unknown tables"):
        s.lookup_many(["a", "zz"], values, lengths=lengths[:12])
    with pytest.raises(InvalidInputError, match="duplicate"):
        s.lookup_many(["a", "a"], values[:0], lengths=torch.zeros(2, dtype=torch.int64))
    with pytest.raises(InvalidInputError, match="exactly one"):
        s.lookup_many(["a"], values[:0])
    with pytest.raises(InvalidInputError, match="integers"):
        s.lookup_many(["a"], np.zeros(1, np.float32), lengths=torch.ones(1, dtype=torch.int64))


def test_collection_module_returns_keyed_result_in_its_own_order(store):
    s, w = store
    values, lengths = _request(2)
    ref = _refs(w, values, lengths)
    ebc = StoreEmbeddingBagCollection(s, {"c": "c", "a": "a", "b": "b"})
    out = ebc(KeyedJagged(list(ROWS), values, lengths=lengths))
    assert out.keys() == ["c", "a", "b"] and out.length_per_key() == [8, 8, 8]
    assert torch.equal(out.values(), torch.cat([ref[2], ref[0], ref[1]], dim=1))
    assert torch.equal(out.to_dict()["b"], ref[1]) and torch.equal(out["a"], ref[0])
    assert sorted(ebc.state_dict()) == ["embedding_bags.a.weight", "embedding_bags.b.weight", "embedding_bags.c.weight"]
    with pytest.raises(InvalidInputError, match="missing"):
        ebc(KeyedJagged(["a"], values[:0], lengths=torch.zeros(6, dtype=torch.int64)))


def _torchrec_model():
    from torchrec import EmbeddingBagCollection, EmbeddingBagConfig

    torch.manual_seed(0)
    cfg = [EmbeddingBagConfig(name="t_user", embedding_dim=8, num_embeddings=120, feature_names=["user", "friend"]),
           EmbeddingBagConfig(name="t_item", embedding_dim=4, num_embeddings=90, feature_names=["item"])]

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.ebc = EmbeddingBagCollection(tables=cfg, device=torch.device("cpu"))
            self.top = nn.Linear(20, 1)

        def forward(self, kjt):
            return self.top(self.ebc(kjt).values())

    return M()


@needs_torchrec
def test_wrap_of_a_torchrec_collection_gives_its_outputs_and_keys(tmp_path):
    from torchrec import KeyedJaggedTensor, KeyedTensor

    model = _torchrec_model()
    kjt = KeyedJaggedTensor(keys=["item", "user", "friend"], values=torch.tensor([1, 5, 89, 7, 119, 0, 3, 3]),
                            lengths=torch.tensor([2, 1, 1, 1, 1, 0, 2, 0, 0]))
    with torch.no_grad():
        ref_kt = model.ebc(kjt)
        ref = model(kjt)
        keys = sorted(model.state_dict())
    store = sdm.wrap(model, tmp_path / "w", progress=False)
    assert isinstance(model.ebc, StoreEmbeddingBagCollection)
    with torch.no_grad():
        kt = model.ebc(kjt)
        assert isinstance(kt, KeyedTensor) and kt.keys() == ref_kt.keys()
        assert kt.length_per_key() == ref_kt.length_per_key()
        assert torch.equal(kt.values(), ref_kt.values())
        assert torch.equal(model(kjt), ref)
    assert sorted(model.state_dict()) == keys
    assert sorted(store.tables) == ["ebc.embedding_bags.t_item", "ebc.embedding_bags.t_user"]
    store.close()
