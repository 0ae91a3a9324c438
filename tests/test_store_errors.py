"""Bad input on the rest of the public API (prefetch, Prefetcher, create, open, wrap, the drop-in
modules): a clear error naming what is wrong, and nothing changed (cache contents, stats, files)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sdm.runtime.embedding_store import EmbeddingStore, wrap
from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.prefetch import Prefetcher
from sdm.core.spec import TableSpec

SPECS = [TableSpec("a", 300, 8), TableSpec("b", 120, 4)]


@pytest.fixture()
def small(tmp_path):
    gen = torch.Generator().manual_seed(0)
    w = {"a": torch.randn(300, 8, generator=gen), "b": torch.randn(120, 4, generator=gen)}
    store = EmbeddingStore.create(tmp_path / "s", SPECS, hardware="host-nand", weights=w,
                                  dram_cache_bytes=60 * (32 + 13))
    store.lookup("a", torch.tensor([1, 2, 3]), torch.tensor([0]))   # some cache content
    yield store, w
    store.close()


def _state(store):
    return ({t: store.cache(t).contents() for t in store.tables}, {t: store.cache(t).score.copy() for t in store.tables},
            store.stats()["tables"])


def _same(before, after):
    for t in before[0]:
        assert np.array_equal(before[0][t], after[0][t])
        assert np.array_equal(before[1][t], after[1][t])
    assert before[2] == after[2]


@pytest.mark.parametrize(
    "batch, protect, match",
    [
        ({"a": np.array([4, 300])}, None, r"table 'a': prefetch ids: index 300 at position 1 is out of range \[0, 300\)"),
        ({"a": np.array([-2, 4])}, None, r"index -2 at position 0"),
        ({"a": np.array([4.0, 5.0])}, None, r"prefetch ids must be integers, got dtype float64"),
        ({"a": torch.tensor([True, False])}, None, r"must be integers, got dtype bool"),
        ({"a": np.array([4]), "zz": np.array([1])}, None, r"unknown table 'zz'"),
        # the bad entry comes second: the first table must not have been prefetched either
        ({"a": np.array([10, 11, 12]), "b": np.array([0, 120])}, None, r"table 'b'.*index 120 at position 1"),
        ({"a": np.array([10, 11])}, {"a": np.array([400])}, r"protect ids: index 400 at position 0"),
        ({"a": torch.tensor([1, 2], device="meta")}, None, r"must be on the CPU, got device meta"),
        ([np.array([1])], None, r"prefetch takes \{table: ids\} mappings"),
    ],
)
def test_prefetch_bad_input_changes_nothing(small, batch, protect, match):
    store, _ = small
    before = _state(store)
    with pytest.raises(InvalidInputError, match=match):
        store.prefetch(batch, protect)
    _same(before, _state(store))


def test_prefetch_reads_the_rows_it_is_given(small):
    """The positive case the checks above must not break: ids in range end up cached, counted."""
    store, w = small
    store.reset_stats()
    store.prefetch({"b": torch.tensor([[5, 6], [7, 5]])})      # any shape, torch or numpy
    cache = store.cache("b")
    assert {5, 6, 7} <= set(cache.contents().tolist())
    slots = cache.probe(np.array([5, 6, 7]))
    assert torch.equal(cache.data[torch.from_numpy(slots)], w["b"][[5, 6, 7]])
    assert store.stats()["tables"]["b"]["prefetch"]["rows"] == 3


@pytest.mark.parametrize("depth, match", [(0, "prefetch depth"), (1.5, "prefetch depth"), ("2", "prefetch depth")])
def test_prefetcher_bad_depth(small, depth, match):
    store, _ = small
    with pytest.raises(InvalidInputError, match=match):
        Prefetcher(store, [], depth=depth)


def test_prefetcher_needs_a_store():
    with pytest.raises(InvalidInputError, match="needs an EmbeddingStore, got dict"):
        Prefetcher({}, [], depth=1)


def test_prefetcher_batch_of_wrong_length(small):
    store, _ = small
    before = _state(store)
    with pytest.raises(InvalidInputError, match="batch has 1 entries, store has 2 tables"):
        list(Prefetcher(store, [[(np.array([1]), np.array([0]))]], depth=1))
    _same(before, _state(store))


def test_drop_in_module_bad_input_changes_nothing(small):
    store, _ = small
    emb_l = store.as_embedding_bags()
    before = _state(store)
    with pytest.raises(InvalidInputError, match=r"table 'b': index 500 at position 2"):
        emb_l[1](torch.tensor([1, 2, 500]), torch.tensor([0, 1]))
    with pytest.raises(InvalidInputError, match=r"table 'a': indices must be int64 or int32, got torch.float32"):
        emb_l[0](torch.tensor([1.0]), torch.tensor([0]))
    with pytest.raises(InvalidInputError, match=r"table 'a': indices must be on the CPU"):
        emb_l[0](torch.tensor([1], device="meta"), torch.tensor([0]))
    _same(before, _state(store))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"ways": 2.5}, r"ways must be a whole number >= 1, got 2.5"),
        ({"queue_depth": 0}, r"queue_depth must be a whole number >= 1"),
        ({"page_bytes": "4k"}, r"page_bytes must be a whole number"),
        ({"dram_cache_bytes": -1}, r"dram_cache_bytes must be a whole number >= 0"),
        ({"page_layout": "sideways"}, r"page_layout must be one of"),
        ({"cache_layout": "sideways"}, r"cache_layout must be one of"),
        ({"admission": "some"}, r"admission must be one of"),
        ({"options": {"zz": None}}, r"options given for unknown table 'zz'"),
    ],
)
def test_create_bad_arguments_keep_the_old_store(small, kw, match):
    """Even with overwrite=True, a create that fails its argument checks deletes nothing."""
    store, w = small
    path = store.path
    store.close()
    with pytest.raises(InvalidInputError, match=match):
        EmbeddingStore.create(path, SPECS, weights=w, overwrite=True, **kw)
    with EmbeddingStore.open(path) as again:
        i, o = torch.tensor([7, 8]), torch.tensor([0])
        assert torch.equal(again.lookup("a", i, o), torch.nn.functional.embedding_bag(i, w["a"], o, mode="sum"))


def test_create_duplicate_names_and_bad_weights(tmp_path):
    with pytest.raises(InvalidInputError, match=r"duplicate table names: \['a'\]"):
        EmbeddingStore.create(tmp_path / "d", [TableSpec("a", 4, 2), TableSpec("a", 4, 2)])
    with pytest.raises(InvalidInputError, match=r"table 'a': weights have shape \(4, 3\), expected \(4, 2\)"):
        EmbeddingStore.create(tmp_path / "w", [TableSpec("a", 4, 2)], weights={"a": np.zeros((4, 3), np.float32)})
    with pytest.raises(InvalidInputError, match="at least one table"):
        EmbeddingStore.create(tmp_path / "e", [])


def test_create_on_a_file_and_open_of_non_stores(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InvalidInputError, match="is a file, not a directory"):
        EmbeddingStore.create(f, SPECS)
    assert f.read_text() == "x"
    with pytest.raises(StoreFormatError, match="not an sdm embedding store"):
        EmbeddingStore.open(f)
    with pytest.raises(StoreFormatError, match="not an sdm embedding store"):
        EmbeddingStore.open(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "store.json").write_text('{"format": "something-else", "version": 1}')
    with pytest.raises(StoreFormatError, match="format 'something-else'"):
        EmbeddingStore.open(tmp_path / "other")
    (tmp_path / "other" / "store.json").write_text("{not json")
    with pytest.raises(StoreFormatError, match="is not JSON"):
        EmbeddingStore.open(tmp_path / "other")


def test_open_bad_overrides(small):
    store, _ = small
    path = store.path
    store.close()
    with pytest.raises(InvalidInputError, match="queue_depth must be a whole number >= 1"):
        EmbeddingStore.open(path, queue_depth=-3)
    with pytest.raises(InvalidInputError, match="dram_cache_bytes must be a whole number"):
        EmbeddingStore.open(path, dram_cache_bytes=1.5)


def test_wrap_refuses_what_it_cannot_serve(tmp_path):
    with pytest.raises(InvalidInputError, match="Linear holds no nn.EmbeddingBag"):
        wrap(torch.nn.Linear(2, 2), tmp_path / "x")
    m = torch.nn.ModuleDict({"e": torch.nn.EmbeddingBag(10, 2, max_norm=1.0)})
    with pytest.raises(InvalidInputError, match="table 'e': max_norm"):
        wrap(m, tmp_path / "y")
    assert isinstance(m["e"], torch.nn.EmbeddingBag)          # the model is left as it was


def test_create_weights_checked_before_the_old_store_goes(small):
    store, w = small
    path = store.path
    store.close()
    with pytest.raises(InvalidInputError, match=r"table 'b': no weights given"):
        EmbeddingStore.create(path, SPECS, weights={"a": w["a"]}, overwrite=True)
    with pytest.raises(InvalidInputError, match=r"table 'b': no weights given \(weights is a list of 1\)"):
        EmbeddingStore.create(path, SPECS, weights=[w["a"]], overwrite=True)
    with pytest.raises(InvalidInputError, match=r"table 'a': weights must be floating point, got dtype int64"):
        EmbeddingStore.create(path, SPECS, weights={"a": np.zeros((300, 8), np.int64), "b": w["b"]}, overwrite=True)
    with EmbeddingStore.open(path) as again:
        assert again.tables == ["a", "b"]


def test_open_of_an_incomplete_store_json(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "store.json").write_text('{"format": "sdm-embedding-store", "version": 1, "ways": 16}')
    with pytest.raises(StoreFormatError, match="missing queue_depth, page_bytes, tables"):
        EmbeddingStore.open(tmp_path / "s")
    (tmp_path / "s" / "store.json").write_text("[1, 2]")
    with pytest.raises(StoreFormatError, match=r"not an sdm embedding store \(format 'list'"):
        EmbeddingStore.open(tmp_path / "s")


def test_warm_unknown_table_changes_nothing(small):
    store, _ = small
    before = _state(store)
    with pytest.raises(InvalidInputError, match="unknown table 'zz'"):
        store.warm(["a", "zz"])
    _same(before, _state(store))
    assert store.warm("a") == 0                               # no profile: nothing to load


def test_wrap_needs_a_module(tmp_path):
    with pytest.raises(InvalidInputError, match="wrap needs an nn.Module, got list"):
        wrap([torch.nn.EmbeddingBag(4, 2)], tmp_path / "x")


@pytest.mark.parametrize(
    "plan, match",
    [
        ({"tables": {"zz": {"accel_rows": [1]}}}, r"plan names unknown tables \['zz'\]"),
        ({"tables": {"a": {"accel_rows": [1.5, 2.0]}}}, r"plan table 'a': accel_rows must be integers, got dtype float64"),
        ({"tables": {"a": {"dram_rows": [3, 300]}}}, r"table 'a': DRAM-pinned row id 300 is outside \[0, 300\)"),
        ({"tables": {"b": {"dram_cache_bytes": 10.5}}}, r"plan table 'b': dram_cache_bytes must be a whole number"),
        ({"dram_cache_bytes": -5}, r"plan dram_cache_bytes must be a whole number >= 0"),
    ],
)
def test_bad_plan_dict(tmp_path, plan, match):
    with pytest.raises(InvalidInputError, match=match):
        EmbeddingStore.create(tmp_path / "p", SPECS, plan=plan)
    assert not (tmp_path / "p").exists()                      # refused before anything was written
