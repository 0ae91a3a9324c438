"""A policy name means one policy: the simulator's replay and the runtime's DRAM cache agree hit for hit.

Three links: (1) `RuntimeCache` (the runtime's index driven batch by batch) against a plain-Python
cache written from the index's definition, over random streams, capacities, ways, batch sizes and
layouts; (2) with one set and one lookup a batch, the compiled replay of each runtime policy
against `RuntimeCache`; (3) `RuntimeCache` against an `EmbeddingStore` serving the same batches.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from cache_reference_runtime import reference_runtime_hits
from sdm.cache import DramCache, index_bytes_per_row
from sdm.cache.policies import RUNTIME_POLICIES, POLICIES, Static, make_policy
from sdm.cachesim import RuntimeCache, prepare, simulate
from sdm.core.errors import InvalidInputError

HOOK_POLICIES = ("lru", "lfu", "fifo")


def _zipf(rng, n, num_rows, alpha=1.2):
    return (rng.zipf(alpha, n) - 1) % num_rows


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10**6), policy=st.sampled_from(HOOK_POLICIES + ("static",)),
       num_rows=st.integers(1, 400), rows=st.integers(0, 120), ways=st.integers(1, 20),
       batch=st.integers(1, 9), n=st.integers(0, 300), layout=st.sampled_from(("auto", "hashed")))
def test_runtime_cache_matches_its_reference(seed, policy, num_rows, rows, ways, batch, n, layout):
    rng = np.random.default_rng(seed)
    ids = _zipf(rng, n, num_rows)
    hot = rng.permutation(num_rows)[: rng.integers(0, num_rows + 1)] if policy == "static" else None
    cache = RuntimeCache(policy, ways=ways, batch_size=batch, num_rows=num_rows, layout=layout, hot_ids=hot)
    got = cache.replay(prepare(ids), rows).tolist()
    assert got == reference_runtime_hits(ids.tolist(), batch, policy, num_rows, rows, ways, layout, hot)


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 10**6), policy=st.sampled_from(HOOK_POLICIES + ("static",)),
       capacity=st.integers(0, 80), n=st.integers(0, 600), alpha=st.sampled_from((1.05, 1.2, 2.0)))
def test_compiled_replay_equals_runtime_cache_one_set_one_lookup_a_batch(seed, policy, capacity, n, alpha):
    rng = np.random.default_rng(seed)
    ids = _zipf(rng, n, 10**6, alpha)
    stream = prepare(ids)
    hot = np.unique(ids)[rng.permutation(np.unique(ids).size)][:capacity] if policy == "static" else None
    fast = (Static(hot_ids=hot) if policy == "static" else make_policy(policy)).replay(stream, capacity)
    runtime = RuntimeCache(policy, ways=None, num_rows=10**6, hot_ids=hot).replay(stream, capacity)
    assert fast.tolist() == runtime.tolist()


def test_issue_stream_lfu_agrees():
    """The stream of the issue: Zipf(1.2), 20,000 ids, 64 rows, one set, one id a batch. Before,
    the runtime's LFU broke ties by way order and served 10,511 hits to the simulator's 11,636."""
    ids = np.random.default_rng(0).zipf(1.2, 20_000) % 100_000
    sim = simulate(ids, 64, "lfu")
    run = simulate(ids, 64, RuntimeCache("lfu", ways=None, num_rows=100_000))
    assert sim.hits == run.hits > 0
    assert simulate(ids, 64, "lru").hits == simulate(ids, 64, RuntimeCache("lru", ways=None, num_rows=100_000)).hits


def test_runtime_rounds_to_whole_sets_like_the_store():
    ids = np.random.default_rng(1).zipf(1.1, 5000) % 50_000
    r = simulate(ids, 84, "runtime-lru")
    assert r.policy == "runtime-lru" and r.capacity_units == 80      # 84 rows -> 5 sets of 16
    assert r.hits == simulate(ids, 80, "runtime-lru").hits


def test_one_registry_names_and_errors():
    assert set(RUNTIME_POLICIES) <= set(POLICIES)
    for name in RUNTIME_POLICIES:
        assert make_policy(name, runtime=True).name == name
    for name in ("opt", "s3fifo", "lfu-global", "setassoc"):
        with pytest.raises(InvalidInputError, match="only in the simulator"):
            make_policy(name, runtime=True)
        with pytest.raises(InvalidInputError, match="only in the simulator"):
            RuntimeCache(name)
        with pytest.raises(InvalidInputError, match="table 'x': cache policy .* runs only in the simulator"):
            DramCache(100, 4, torch.float32, 1000, policy=name, table="x")
    with pytest.raises(InvalidInputError, match="unknown cache policy"):
        simulate([1, 2], 4, "runtime-nope")


def test_a_hook_only_policy_runs_in_the_simulator():
    """A plugin with only the cache hooks replays through the runtime's cache (one set)."""

    class MRU:
        name = "mru"

        def admit(self, ids):
            return None

        def on_hit(self, score, slots, stamp):
            score[slots] = -stamp

        def on_insert(self, score, slots, stamp):
            score[slots] = -stamp

        def victim_key(self, score_rows):
            return score_rows

    r = simulate([1, 2, 3, 1, 3], 2, MRU())
    assert r.policy == "runtime-mru" and r.hits == 2      # 3 evicts 2 (the most recent), then 1 and 3 hit


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10**6), policy=st.sampled_from(("lru", "lfu", "fifo")),
       cache_rows=st.integers(1, 200), ways=st.sampled_from((1, 4, 16)), batch=st.integers(1, 40))
def test_runtime_cache_equals_embedding_store(tmp_path_factory, seed, policy, cache_rows, ways, batch):
    from sdm.core.spec import TableSpec
    from sdm.runtime.embedding_store import EmbeddingStore

    rng = np.random.default_rng(seed)
    num_rows, dim, pooling = 2000, 4, 3
    ids = _zipf(rng, batch * pooling * 12, num_rows, 1.1)
    budget = cache_rows * (dim * 4 + index_bytes_per_row(num_rows, policy))
    spec = TableSpec("t", num_rows, dim)
    with EmbeddingStore.create(tmp_path_factory.mktemp("s") / "s", [spec], dram_cache_bytes=budget,
                               policy=policy, ways=ways) as st_:
        per = batch * pooling
        for a in range(0, ids.size, per):
            ix = torch.from_numpy(ids[a:a + per])
            st_.lookup("t", ix, torch.arange(0, ix.numel(), pooling))
        served = st_.stats()["tables"]["t"]
        assert st_.cache("t").capacity_rows == RuntimeCache(policy, ways=ways).capacity_units(cache_rows)
    replay = simulate(ids, cache_rows, RuntimeCache(policy, ways=ways, batch_size=batch * pooling, num_rows=num_rows))
    assert served["tiers"]["accel"]["hits"] == 0
    assert served["tiers"]["dram"]["hits"] == replay.hits
