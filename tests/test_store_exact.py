"""Exactness: lookups through the store are bitwise equal to nn.EmbeddingBag, whatever tier rows come from."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings, strategies as st

from sdm.runtime.embedding_store import BagOptions, EmbeddingStore
from sdm.core.spec import TableSpec

ROWS = 40
COMBOS = list(itertools.product(("sum", "mean", "max"), (False, True), (None, 7)))


def _name(mode, ilo, pad):
    return f"{mode}_{int(ilo)}_{pad}"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two stores over the same weights: one mixing every tier, one with the whole table in DRAM."""
    gen = torch.Generator().manual_seed(1)
    refs, specs, weights, options = {}, [], {}, {}
    for i, (mode, ilo, pad) in enumerate(COMBOS):
        n = _name(mode, ilo, pad)
        dim = 3 + i % 5
        ref = torch.nn.EmbeddingBag(ROWS, dim, mode=mode, include_last_offset=ilo, padding_idx=pad)
        with torch.no_grad():
            ref.weight.normal_(generator=gen)  # padding row non-zero too: it must still be skipped
        refs[n] = ref
        specs.append(TableSpec(n, ROWS, dim))
        weights[n] = ref.weight.detach().clone()
        options[n] = BagOptions(mode, ilo, pad)
    # mixed tiers: rows 0-9 on the accelerator, 10-14 pinned in DRAM, a cache of ~8 rows, the rest SCM
    plan = {"tables": {n: {"accel_rows": list(range(10)), "dram_rows": list(range(10, 15)),
                           "dram_cache_bytes": 8 * (4 * 8 + 13)} for n in refs}}
    mixed = EmbeddingStore.create(tmp_path_factory.mktemp("mixed"), specs, hardware="host-nand",
                                  weights=weights, plan=plan, options=options, ways=4)
    cached = EmbeddingStore.create(tmp_path_factory.mktemp("cached"), specs, hardware="host-nand",
                                   weights=weights, dram_cache_bytes=1 << 20, options=options)
    yield refs, mixed, cached
    mixed.close()
    cached.close()


@st.composite
def bag_inputs(draw):
    mode, ilo, pad = draw(st.sampled_from(COMBOS))
    n = draw(st.integers(0, 30))
    # bias towards a few ids so bags repeat rows and hit padding
    idx = draw(st.lists(st.one_of(st.integers(0, ROWS - 1), st.sampled_from([0, 7, 12, 39])), min_size=n, max_size=n))
    bags = draw(st.integers(1, 6))
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=bags - 1, max_size=bags - 1)))
    offsets = [0, *cuts]
    if ilo:
        offsets.append(n)
    psw = None
    if mode == "sum" and draw(st.booleans()):
        psw = draw(st.lists(st.floats(-4, 4, width=32), min_size=n, max_size=n))
    return (mode, ilo, pad), idx, offsets, psw


@settings(max_examples=150, deadline=None)
@given(bag_inputs(), st.booleans())
def test_bitwise_equal_to_embedding_bag(stores, inp, use_cached):
    refs, mixed, cached = stores
    combo, idx, offsets, psw = inp
    name = _name(*combo)
    i = torch.tensor(idx, dtype=torch.int64)
    o = torch.tensor(offsets, dtype=torch.int64)
    w = None if psw is None else torch.tensor(psw, dtype=torch.float32)
    expected = refs[name](i, o, per_sample_weights=w)
    store = cached if use_cached else mixed
    got = store.lookup(name, i, o, per_sample_weights=w)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert torch.equal(got, expected.detach()), (name, idx, offsets)
    # twice: the second time rows come from the cache the first call filled
    assert torch.equal(store.lookup(name, i, o, per_sample_weights=w), expected.detach())


def test_fast_path_runs_on_cache_slots(stores):
    refs, _, cached = stores
    name = _name("sum", False, None)
    i = torch.arange(ROWS)
    o = torch.tensor([0, 10, 25])
    cached.lookup(name, i, o)          # warm: every row now cached
    # the condition of the slot-tensor path: a direct-layout cache holding the whole table
    assert cached.cache(name).direct and cached.cache(name).complete
    cached.reset_stats()
    got = cached.lookup(name, i, o)
    assert torch.equal(got, refs[name](i, o).detach())
    s = cached.stats()["tables"][name]
    assert s["hit_rate"]["dram"] == 1.0 and s["tiers"]["scm"]["rows"] == 0


def test_mixed_store_uses_every_tier(stores):
    refs, mixed, _ = stores
    name = _name("mean", True, 7)
    mixed.reset_stats()
    i = torch.arange(ROWS)
    o = torch.tensor([0, 5, 17, ROWS])
    assert torch.equal(mixed.lookup(name, i, o), refs[name](i, o).detach())
    hits = mixed.stats()["tables"][name]["tiers"]
    assert hits["accel"]["hits"] == 10 and hits["dram"]["hits"] >= 5 and hits["scm"]["hits"] > 0


def test_two_d_input_like_embedding_bag(stores):
    refs, mixed, _ = stores
    name = _name("max", False, None)
    i = torch.randint(0, ROWS, (6, 4), generator=torch.Generator().manual_seed(3))
    assert torch.equal(mixed.lookup(name, i), refs[name](i).detach())
