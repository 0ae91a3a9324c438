"""Look-ahead prefetch: same batches in order, misses read ahead into the cache, window protected."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sdm.runtime.embedding_store import EmbeddingStore
from sdm.core.errors import InvalidInputError
from sdm.prefetch import Prefetcher
from sdm.core.spec import TableSpec


@pytest.fixture()
def store(tmp_path):
    w = {"a": torch.randn(2000, 8), "b": torch.randn(500, 8)}
    s = EmbeddingStore.create(tmp_path / "s", [TableSpec("a", 2000, 8), TableSpec("b", 500, 8)], weights=w,
                              dram_cache_bytes=2000 * (32 + 13))  # a: 1600 rows, b: 400
    yield s, w
    s.close()


def _batches(n, seed=0):
    g = np.random.default_rng(seed)
    return [[(g.integers(0, 2000, 64), np.arange(0, 65, 8)), (g.integers(0, 500, 64), np.arange(0, 65, 8))]
            for _ in range(n)]


def test_yields_every_batch_in_order_and_lookups_hit(store):
    s, w = store
    batches = _batches(8)
    seen = []
    for b in Prefetcher(s, batches, depth=2):
        seen.append(b)
        for t, (idx, off) in zip(s.tables, b):
            got = s.lookup(t, torch.from_numpy(idx), torch.from_numpy(off[:-1]))
            ref = torch.nn.functional.embedding_bag(torch.from_numpy(idx), w[t], torch.from_numpy(off[:-1]), mode="sum")
            assert torch.equal(got, ref)
    assert seen == batches
    st = s.stats()["tables"]
    # rows were read ahead: the lookups themselves (almost) never went to SCM; a few may still
    # miss where a set's ways are all held by the protected window (those bypass the cache)
    for t in ("a", "b"):
        assert st[t]["prefetch"]["rows"] > 0
        assert st[t]["hit_rate"]["dram"] >= 0.98
        assert st[t]["tiers"]["scm"]["rows"] <= 0.02 * st[t]["indices"]


def test_prefetch_never_evicts_protected_rows(store):
    s, _ = store
    keep = np.arange(0, 400)
    s.prefetch({"a": keep})
    s.prefetch({"a": np.arange(400, 2000)}, protect={"a": keep})
    assert np.isin(keep, s.cache("a").contents()).all()


def test_errors_reach_the_consumer(store):
    s, _ = store
    bad = [[(np.array([1, 5000]), np.array([0, 2])), (np.array([1]), np.array([0, 1]))]]
    with pytest.raises(InvalidInputError, match=r"index 5000 at position 1 is out of range"):
        list(Prefetcher(s, bad, depth=1))
    with pytest.raises(InvalidInputError, match="depth"):
        Prefetcher(s, [], depth=0)


def test_early_exit_stops_the_thread(store):
    s, _ = store
    p = Prefetcher(s, _batches(20), depth=3)
    for i, _ in enumerate(p):
        if i == 2:
            break
    assert p._thread is not None and not p._thread.is_alive()
