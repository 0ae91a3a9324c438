"""EmbeddingStore API: create/open, drop-in modules, wrap, stats, errors that change nothing, threads."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import sdm
from sdm.runtime.dlrm import DLRM, random_inputs
from sdm.runtime.embedding_store import EmbeddingStore, StoreEmbeddingBag, wrap
from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.core.spec import TableSpec


@pytest.fixture()
def small(tmp_path):
    gen = torch.Generator().manual_seed(0)
    w = {"a": torch.randn(300, 8, generator=gen), "b": torch.randn(120, 4, generator=gen)}
    specs = [TableSpec("a", 300, 8), TableSpec("b", 120, 4)]
    store = EmbeddingStore.create(tmp_path / "s", specs, hardware="host-nand", weights=w,
                                  dram_cache_bytes=60 * (32 + 13))
    yield store, w
    store.close()


def _ref(w, idx, off, psw=None):
    return torch.nn.functional.embedding_bag(idx, w, off, mode="sum", per_sample_weights=psw)


def test_public_names():
    assert sdm.EmbeddingStore is EmbeddingStore and sdm.wrap is wrap and sdm.DLRM is DLRM


def test_reopen_and_context_manager(small, tmp_path):
    store, w = small
    idx, off = torch.tensor([1, 299, 5, 5]), torch.tensor([0, 2])
    first = store.lookup("a", idx, off)
    store.close()
    with EmbeddingStore.open(tmp_path / "s") as again:
        assert again.tables == ["a", "b"]
        assert torch.equal(again.lookup("a", idx, off), first)
        assert torch.equal(first, _ref(w["a"], idx, off))
    with pytest.raises(InvalidInputError, match="closed"):
        again.lookup("a", idx, off)
    with pytest.raises(StoreFormatError):
        EmbeddingStore.open(tmp_path / "nothing-here")


def test_create_refuses_non_empty_dir(small, tmp_path):
    with pytest.raises(InvalidInputError, match="not empty"):
        EmbeddingStore.create(tmp_path / "s", [TableSpec("x", 10, 2)])


def test_as_embedding_bags_is_a_drop_in(small):
    store, w = small
    emb_l = store.as_embedding_bags()
    assert isinstance(emb_l, torch.nn.ModuleList) and len(emb_l) == 2
    assert emb_l[0].num_embeddings == 300 and emb_l[0].embedding_dim == 8
    idx, off = torch.tensor([3, 4, 100]), torch.tensor([0, 1])
    psw = torch.tensor([0.5, 2.0, -1.0])
    assert torch.equal(emb_l[0](idx, off, per_sample_weights=psw), _ref(w["a"], idx, off, psw))


def test_wrap_dlrm_gives_identical_outputs(tmp_path):
    model = DLRM([500, 40, 1000], dim=8, seed=3).eval()
    dense, offs, idxs = random_inputs(model, batch=32, pooling=4, seed=1)
    with torch.no_grad():
        before = model(dense, offs, idxs)
    store = wrap(model, tmp_path / "w", hardware="host-nand", dram_cache_bytes=4096)
    assert all(isinstance(m, StoreEmbeddingBag) for m in model.emb_l)
    assert store.tables == ["emb_l.0", "emb_l.1", "emb_l.2"]
    with torch.no_grad():
        after = model(dense, offs, idxs)
    assert torch.equal(before, after)
    store.close()


def test_wrap_any_module_tree(tmp_path):
    class Nested(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.ModuleDict({"x": torch.nn.EmbeddingBag(20, 3, mode="max")})
            self.y = torch.nn.EmbeddingBag(10, 3, mode="mean")

    m = Nested()
    i, o = torch.tensor([1, 2, 3]), torch.tensor([0, 2])
    ex, ey = m.inner["x"](i, o), m.y(i, o)
    with wrap(m, tmp_path / "n") as store:
        assert sorted(store.tables) == ["inner.x", "y"]
        assert torch.equal(m.inner["x"](i, o), ex) and torch.equal(m.y(i, o), ey)


def _state(store):
    c = store.cache("a")
    return c.tags.copy(), c.score.copy(), c.data.clone(), store.stats()["tables"]


@pytest.mark.parametrize(
    "args, match",
    [
        (("a", torch.tensor([1, 300]), torch.tensor([0])), r"index 300 at position 1"),
        (("a", torch.tensor([-1, 2]), torch.tensor([0])), r"index -1 at position 0"),
        (("a", torch.tensor([1, 2, 3]), torch.tensor([0, 2, 1])), r"offsets\[2\]=1 < offsets\[1\]=2"),
        (("a", torch.tensor([1, 2]), torch.tensor([0, 3])), r"offsets\[1\]=3 but there are 2 indices"),
        (("a", torch.tensor([1, 2]), torch.tensor([1])), r"offsets\[0\] must be 0"),
        (("a", torch.tensor([1.0, 2.0]), torch.tensor([0])), r"int64 or int32"),
        (("a", torch.tensor([1, 2]), torch.tensor([0.0])), r"offsets must be int64"),
        (("a", torch.tensor([1, 2]), torch.tensor([0]), torch.tensor([1.0])), r"per_sample_weights shape"),
        (("a", torch.tensor([1, 2]), torch.tensor([0]), torch.tensor([1, 2])), r"float32"),
        (("zz", torch.tensor([1]), torch.tensor([0])), r"unknown table 'zz'"),
        (("a", torch.tensor([1, 2]), None), r"offsets are required"),
        (("a", "nope", torch.tensor([0])), r"torch.Tensor or numpy"),
    ],
)
def test_bad_input_clear_error_and_no_state_change(small, args, match):
    store, _ = small
    store.lookup("a", torch.tensor([1, 2, 3]), torch.tensor([0]))  # some cache content
    before = _state(store)
    with pytest.raises(InvalidInputError, match=match):
        store.lookup(*args)
    after = _state(store)
    for x, y in zip(before[:2], after[:2]):
        assert np.array_equal(x, y)
    assert torch.equal(before[2], after[2])
    assert before[3] == after[3]


def test_wrong_device_is_rejected(small):
    store, _ = small
    meta = torch.tensor([1, 2], device="meta")
    with pytest.raises(InvalidInputError, match="device"):
        store.lookup("a", meta, torch.tensor([0]))


def test_stats_per_table_and_tier(small):
    store, _ = small
    store.reset_stats()
    idx, off = torch.arange(0, 200), torch.tensor([0, 100])
    store.lookup("a", idx, off)
    store.lookup("a", idx[:50], off[:1])
    s = store.stats()
    a = s["tables"]["a"]
    assert a["lookups"] == 2 and a["indices"] == 250
    assert sum(a["tiers"][t]["hits"] for t in ("accel", "dram", "scm")) == 250
    assert a["tiers"]["scm"]["rows"] >= 200 - store.cache("a").capacity_rows
    assert a["tiers"]["scm"]["bytes"] == a["tiers"]["scm"]["reads"] * 4096
    assert a["tiers"]["scm"]["modelled_s"] > 0 and a["tiers"]["scm"]["measured_s"] > 0
    assert sum(a["latency"]["hist_counts"]) == 2 and a["latency"]["p99_s"] > 0
    assert s["tables"]["b"]["lookups"] == 0
    assert s["clock"]["scm"]["ops"] > 0


def test_threads_get_the_same_results(small):
    store, w = small
    gen = torch.Generator().manual_seed(5)
    batches = [(torch.randint(0, 300, (64,), generator=gen), torch.arange(0, 64, 8)) for _ in range(24)]
    expected = [_ref(w["a"], i, o) for i, o in batches]
    errors = []

    def worker(k):
        try:
            for j in range(len(batches)):
                b = (j + k) % len(batches)
                if not torch.equal(store.lookup("a", *batches[b]), expected[b]):
                    errors.append(b)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    c = store.cache("a")
    # every cached row still holds its own data
    ids = c.contents()
    slots = c.probe(ids)
    assert torch.equal(c.data[torch.from_numpy(slots)], w["a"][torch.from_numpy(ids)])


@pytest.mark.parametrize("fmt, dim", [("fp16", 8), ("int8", 8), ("int8", 16), ("fp16", 24)])
def test_reduced_precision_within_stated_bound(tmp_path, fmt, dim):
    from sdm.runtime.row_formats import error_bound

    gen = torch.Generator().manual_seed(2)
    # 16-, 24- and 48-byte rows: 600 rows span several 4 KiB pages, some with a ragged tail
    w = torch.randn(600, dim, generator=gen) * 3
    store = EmbeddingStore.create(tmp_path / f"{fmt}{dim}", [TableSpec("t", 600, dim, row_format=fmt)], weights={"t": w},
                                  hardware="host-nand", dram_cache_bytes=2000)
    idx = torch.arange(600)
    got = store.lookup("t", idx, torch.arange(600))           # bags of one row: the decoded rows
    err = (got - w).abs().numpy()
    assert (err <= error_bound(w.numpy(), fmt)).all()
    assert err.max() > 0                                      # really reduced
    pooled = store.lookup("t", idx, torch.tensor([0, 50]))    # sums: error adds up at most per row
    ref = torch.nn.functional.embedding_bag(idx, w, torch.tensor([0, 50]), mode="sum")
    bound = torch.tensor(error_bound(w.numpy(), fmt))
    # plus float32 rounding of the sums themselves (same order of magnitude as the reference's)
    bags = torch.stack([bound[:50].sum(0), bound[50:].sum(0)]).float()
    assert ((pooled - ref).abs() <= bags * 1.001 + 1e-5).all()
    store.close()


def test_plan_object_from_placement_module(tmp_path):
    from sdm.placement.plan import Plan, RowSet, TablePlan, TierPlacement

    specs = [TableSpec("a", 100, 4)]
    tp = TablePlan("a", 100, 4, "fp32", 16, placements=[TierPlacement("lpddr", 0, RowSet.from_ids(np.arange(10)))],
                   dram_cache_bytes=20 * 29, dram_cache_policy="lfu")
    plan = Plan(model="m", hardware="host-nand", objective="latency", policy="test", tables={"a": tp})
    w = torch.randn(100, 4)
    with EmbeddingStore.create(tmp_path / "p", specs, weights={"a": w}, plan=plan) as store:
        assert store.stats()["tables"]["a"]["cache"]["accel_rows"] == 10
        assert store.cache("a").policy.name == "lfu"
        i = torch.tensor([0, 5, 50, 99])
        assert torch.equal(store.lookup("a", i, torch.tensor([0, 2])), _ref(w, i, torch.tensor([0, 2])))
        assert store.stats()["tables"]["a"]["tiers"]["accel"]["hits"] == 2


def test_default_placement_hottest_first_with_profile(tmp_path):
    counts = np.zeros(1000)
    counts[[5, 17, 900]] = [100, 50, 10]
    specs = [TableSpec("a", 1000, 4)]
    w = torch.randn(1000, 4)
    # host-only hardware: no accelerator tier; the static policy pins the profile's hottest rows
    with EmbeddingStore.create(tmp_path / "h", specs, weights={"a": w}, profile={"a": counts}, policy="static",
                               dram_cache_bytes=2 * (16 + 13)) as store:
        assert sorted(store.cache("a").contents().tolist()) == [5, 17]
        i = torch.tensor([5, 17, 900, 3])
        assert torch.equal(store.lookup("a", i, torch.tensor([0])), _ref(w, i, torch.tensor([0])))
        assert 900 not in store.cache("a").contents()          # static: never admitted
    # with accelerator cards, the hottest rows go to card memory first
    with EmbeddingStore.create(tmp_path / "y", specs, hardware="yosemite-v2-nand", weights={"a": w},
                               profile={"a": counts}, dram_cache_bytes=1000) as store:
        assert store.stats()["tables"]["a"]["cache"]["accel_rows"] == 3
        i = torch.tensor([5, 17, 2])
        assert torch.equal(store.lookup("a", i, torch.tensor([0, 1])), _ref(w, i, torch.tensor([0, 1])))
        assert store.stats()["tables"]["a"]["tiers"]["accel"]["hits"] == 2
        assert store.stats()["tables"]["a"]["tiers"]["accel"]["modelled_s"] > 0


def test_without_profile_small_tables_go_to_the_cards(tmp_path):
    specs = [TableSpec("small", 50, 4), TableSpec("big", 5000, 4)]
    with EmbeddingStore.create(tmp_path / "y", specs, hardware="yosemite-v2-nand") as store:
        cache = store.stats()["tables"]
        assert cache["small"]["cache"]["accel_rows"] == 50


def test_profile_object_from_a_trace(tmp_path):
    from sdm.placement.profile import Profile
    from sdm.traces.generators import zipf_trace

    trace = zipf_trace([2000], 400, batch_size=100, pooling=4, alpha=1.2, seed=3, table_names=["a"])
    prof = Profile.from_trace(trace)
    hottest = prof["a"].hot_rows(20)
    with EmbeddingStore.create(tmp_path / "p", [TableSpec("a", 2000, 4)], profile=prof, policy="static",
                               dram_cache_bytes=20 * (16 + 13)) as store:
        cache = store.cache("a")
        # 20 rows' budget = one 16-way set: it holds the 16 hottest
        assert cache.capacity_rows == 16
        assert set(cache.contents().tolist()) == set(hottest[:16].tolist())
