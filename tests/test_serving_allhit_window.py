"""The all-hit pass with a prefetch look-ahead window open: it must leave the store exactly as the
general lookup path's window rule does (sdm.cache.window: the rows read ahead for a batch are its
first reads, not hits; the matched batch and those before it leave the window)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sdm.core.spec import TableSpec
from sdm.runtime.embedding_store import EmbeddingStore
from sdm.runtime.store_table import StoreTable

ROWS, DIM = 4_000, 8


def _store(path, policy, layout, w):
    rows = ROWS // 4 if layout == "hashed" else ROWS
    return EmbeddingStore.create(path, [TableSpec("t", ROWS, DIM)], weights={"t": w}, progress=False,
                                 dram_cache_bytes=rows * (4 * DIM + 16), cache_layout=layout, policy=policy)


def _state(store):
    c = store.cache("t")
    la = store._tables["t"]._lookahead
    return (c.tags.copy(), c.score.copy(), c.stamp, [b.copy() for b in la.batches], [r.copy() for r in la.read])


def _same(a, b):
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert len(a[3]) == len(b[3]) and all(np.array_equal(x, y) for x, y in zip(a[3], b[3]))
    assert len(a[4]) == len(b[4]) and all(np.array_equal(x, y) for x, y in zip(a[4], b[4]))


@pytest.mark.parametrize("policy", ["lru", "s3lru", "lfu"])
@pytest.mark.parametrize("layout", ["hashed", "auto"])
def test_all_hit_pass_keeps_the_window_rule(tmp_path, monkeypatch, policy, layout):
    rng = np.random.default_rng(3)
    w = torch.randn(ROWS, DIM)
    fast, ref = _store(tmp_path / "a", policy, layout, w), _store(tmp_path / "b", policy, layout, w)
    ref._tables["t"].fast_ok = False            # the general path throughout: the rule's own code
    calls = {"all_hit": 0}
    real = StoreTable._lookup_cached

    def counting(self, batch, rec):
        out = real(self, batch, rec)
        calls["all_hit"] += out is not None
        return out

    monkeypatch.setattr(StoreTable, "_lookup_cached", counting)
    cap = fast.cache("t").capacity_rows
    warm = rng.permutation(ROWS)[: cap // 2]
    for s in (fast, ref):
        s._tables["t"].prefetch(warm, None, stage=False)     # cached, no window yet
    _same(_state(fast), _state(ref))
    # batches: ids drawn from cached rows, some with rows read ahead (absent, prefetched first)
    batches = []
    for k in range(8):
        b = rng.choice(warm, 300)
        if k % 2:
            b = np.concatenate([b, rng.permutation(ROWS)[:40]])
        batches.append(torch.from_numpy(rng.permutation(b)))
    ahead = 2
    off = torch.arange(0, 300, 30)
    for k, b in enumerate(batches):
        for s in (fast, ref):
            for j in range(k, min(k + ahead + 1, len(batches))):   # prefetch the window (sliding)
                if j == k + ahead or (k == 0 and j < ahead):
                    win = {"t": np.concatenate([x.numpy() for x in batches[k:j]])} if j > k else None
                    s.prefetch({"t": batches[j].numpy()}, protect=win)
        _same(_state(fast), _state(ref))
        got, want = fast.lookup("t", b, off), ref.lookup("t", b, off)
        assert torch.equal(got, want)
        _same(_state(fast), _state(ref))
        # a batch nobody read ahead (all cached): hits everywhere, the window unchanged
        extra = torch.from_numpy(rng.choice(fast.cache("t").contents(), 200))
        assert torch.equal(fast.lookup("t", extra, off[:5]), ref.lookup("t", extra, off[:5]))
        _same(_state(fast), _state(ref))
    assert calls["all_hit"] >= 8     # the fast path really ran with the window open
    fast.close(), ref.close()
