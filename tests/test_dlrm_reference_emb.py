"""Exactness on the public DLRM reference's embedding path (facebookresearch/dlrm dlrm_s_pytorch.py):
`emb_l` built as its create_emb builds it (nn.EmbeddingBag(n, m, mode="sum", sparse=True), weights
numpy-uniform(-sqrt(1/n), sqrt(1/n)) set through `.weight.data`), called as its apply_emb calls it
(`E(indices, offsets, per_sample_weights=...)`, the weights gathered per index from a per-row vector
when weighted pooling is on), then swapped for `store.as_embedding_bags()`. fp32 outputs stay
bitwise equal on every path a lookup can take: direct DRAM cache (cold, then all hits), hashed
cache with SCM reads, the hashed cache's all-hit path, and mixed accelerator / pinned-DRAM / cache /
SCM tiers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sdm.runtime.embedding_store import EmbeddingStore

LN_EMB = [400, 37, 1000, 3]  # rows per table; one tiny table, as in the reference's Criteo sizes
M_SPA = 16


def _reference_emb_l(seed: int = 0):
    np.random.seed(seed)  # the reference seeds numpy and draws every table's weights from it
    emb_l, v_w_l = nn.ModuleList(), []
    for n in LN_EMB:
        bag = nn.EmbeddingBag(n, M_SPA, mode="sum", sparse=True)
        w = np.random.uniform(low=-np.sqrt(1 / n), high=np.sqrt(1 / n), size=(n, M_SPA)).astype(np.float32)
        bag.weight.data = torch.tensor(w, requires_grad=True)
        emb_l.append(bag)
        v_w_l.append(torch.tensor(np.random.uniform(0.5, 1.5, n).astype(np.float32)))  # learned row weights
    return emb_l, v_w_l


def _apply_emb(emb_l, v_w_l, lS_o, lS_i, weighted: bool):
    out = []
    for k, idx in enumerate(lS_i):
        psw = v_w_l[k].gather(0, idx) if weighted else None
        out.append(emb_l[k](idx, lS_o[k], per_sample_weights=psw))
    return out


def _batch(seed: int, batch: int = 64, max_pool: int = 10, rows_cap: int | None = None):
    """lS_o / lS_i as the reference's random data generator makes them: per sample a random
    number of ids (here up to `max_pool`, empty bags included), offsets the running sum."""
    rng = np.random.default_rng(seed)
    lS_o, lS_i = [], []
    for n in LN_EMB:
        sizes = rng.integers(0, max_pool + 1, batch)
        hi = min(n, rows_cap) if rows_cap else n
        lS_i.append(torch.tensor(rng.integers(0, hi, int(sizes.sum())), dtype=torch.int64))
        lS_o.append(torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]), dtype=torch.int64))
    return lS_o, lS_i


def _stores(emb_l, tmp_path):
    row = M_SPA * 4 + 13
    mixed_plan = {"tables": {f"t{k}": {"accel_rows": list(range(0, min(n, 8))), "dram_rows": list(range(8, min(n, 20))),
                                       "dram_cache_bytes": 16 * row} for k, n in enumerate(LN_EMB)}}
    return {
        "direct": EmbeddingStore.from_embedding_bags(emb_l, tmp_path / "d", hardware=None, dram_cache_bytes=1 << 22,
                                                     progress=False),
        "hashed": EmbeddingStore.from_embedding_bags(emb_l, tmp_path / "h", hardware="host-nand",
                                                     dram_cache_bytes=300 * row, cache_layout="hashed",
                                                     progress=False),
        "mixed": EmbeddingStore.from_embedding_bags(emb_l, tmp_path / "m", hardware="host-nand", plan=mixed_plan,
                                                    ways=4, progress=False),
    }


@pytest.mark.parametrize("weighted", [False, True])
def test_reference_emb_l_is_bitwise_exact_on_every_path(tmp_path, weighted):
    emb_l, v_w_l = _reference_emb_l()
    stores = _stores(emb_l, tmp_path)
    assert stores["direct"].cache("t0").direct and not stores["hashed"].cache("t2").direct
    batches = [_batch(s) for s in range(3)]
    with torch.no_grad():
        refs = [_apply_emb(emb_l, v_w_l, o, i, weighted) for o, i in batches]
        for name, store in stores.items():
            swapped = store.as_embedding_bags()  # the user's swap: dlrm.emb_l = store.as_embedding_bags()
            for _ in range(2):  # cold, then cached
                for (o, i), ref in zip(batches, refs):
                    got = _apply_emb(swapped, v_w_l, o, i, weighted)
                    for k, (a, b) in enumerate(zip(got, ref)):
                        assert torch.equal(a, b), (name, k)
    for s in stores.values():
        s.close()


def test_reference_emb_l_all_hit_hashed_path_is_bitwise_exact(tmp_path):
    """Every looked-up row cached in tables about 4x larger than their hashed caches (the serving case)."""
    emb_l, v_w_l = _reference_emb_l(seed=1)
    store = EmbeddingStore.from_embedding_bags(emb_l, tmp_path / "h", hardware="host-nand",
                                               dram_cache_bytes=sum(LN_EMB) // 4 * (M_SPA * 4 + 13),
                                               cache_layout="hashed", ways=16, progress=False)
    batch = _batch(7, rows_cap=40)  # at most 40 distinct rows a table: all fit in its cache
    swapped = store.as_embedding_bags()
    with torch.no_grad():
        ref = _apply_emb(emb_l, v_w_l, *batch, weighted=False)
        _apply_emb(swapped, v_w_l, *batch, weighted=False)  # fill
        store.reset_stats()
        for _ in range(3):
            for a, b in zip(_apply_emb(swapped, v_w_l, *batch, weighted=False), ref):
                assert torch.equal(a, b)
    stats = store.stats()["tables"]
    for name in ("t0", "t2"):  # the two large tables (the budget splits by size; t1, t3 get a few slots)
        t = stats[name]
        assert not store.cache(name).direct and 3 * t["cache"]["capacity_rows"] < LN_EMB[int(name[1])]
        assert t["tiers"]["scm"]["rows"] == 0 and t["tiers"]["dram"]["rows"] > 0  # all hits: nothing off SCM
    store.close()
