"""The hashed cache's all-hit path: one compiled pass (probe, recency stamp, slot remap) that
leaves the index exactly as probe + touch would."""
from __future__ import annotations

import numpy as np
import pytest

from sdm.cache.index import CacheIndex


def _twins(policy, mask=False):
    rng = np.random.default_rng(1)
    a, b = (CacheIndex(10_000, 1_000, ways=16, policy=policy) for _ in range(2))
    ids = rng.permutation(10_000)[:600]
    for ix in (a, b):
        ix.place(ids)
        if mask:
            ix.admit_mask = np.zeros(10_000, np.bool_)
            ix.admit_mask[ids[::2]] = True
    return a, b, a.contents(), rng


@pytest.mark.parametrize("policy", ["lru", "lfu", "fifo"])
@pytest.mark.parametrize("mask", [False, True])
def test_all_hit_pass_equals_probe_then_touch(policy, mask):
    a, b, resident, rng = _twins(policy, mask)
    for _ in range(3):
        batch = rng.choice(resident, 5_000)
        slots = a.probe_all_hit(batch)
        ref = b.probe(batch)
        b.touch(ref)
        assert np.array_equal(slots, ref)
        assert np.array_equal(a.score, b.score) and a.stamp == b.stamp
        assert np.array_equal(a.tags, b.tags)


def test_all_hit_pass_returns_none_on_a_miss_and_changes_nothing():
    a, _, resident, rng = _twins("lru")
    absent = np.setdiff1d(np.arange(10_000), resident)[:1]
    a.probe_all_hit(rng.choice(resident, 300))
    tags, score, stamp = a.tags.copy(), a.score.copy(), a.stamp
    batch = np.concatenate([rng.choice(resident, 100), absent, rng.choice(resident, 100)])
    batch[50] = batch[10]                      # a repeated slot before the miss
    assert a.probe_all_hit(batch) is None
    assert np.array_equal(a.tags, tags) and np.array_equal(a.score, score) and a.stamp == stamp
    assert a.probe_all_hit(np.array([10_000 + 5, -3])) is None   # out of range: never cached
    assert np.array_equal(a.probe_all_hit(batch[:0]), np.zeros(0, np.int64))


@pytest.mark.parametrize("layout", ["auto", "hashed"])
@pytest.mark.parametrize("fmt, mode", [("fp32", "sum"), ("fp16", "mean"), ("int8", "sum"), ("int8", "max"), ("int4", "max")])
def test_unchecked_ids_are_refused_on_the_cached_paths(tmp_path, layout, fmt, mode):
    """lookup leaves the id range check to the path: every-row-cached paths must still refuse."""
    import torch

    from sdm.core.errors import InvalidInputError
    from sdm.core.spec import TableSpec
    from sdm.runtime.embedding_store import BagOptions, EmbeddingStore

    w = torch.randn(100, 4)
    with EmbeddingStore.create(tmp_path / layout, [TableSpec("t", 100, 4, row_format=fmt)], weights={"t": w},
                               progress=False, dram_cache_bytes=100 * 40, cache_layout=layout,
                               options={"t": BagOptions(mode)}) as store:
        store.prefetch({"t": np.arange(100)})
        c = store.cache("t")
        assert c.resident_rows == 100 and c.direct == (layout == "auto")
        score = c.score.copy()
        for bad, pos in ((100, 1), (-1, 1), (2**40, 1)):
            with pytest.raises(InvalidInputError, match=rf"table 't': index {bad} at position {pos}"):
                store.lookup("t", torch.tensor([3, bad, 5]), torch.tensor([0]))
        assert np.array_equal(c.score, score) and store.stats()["tables"]["t"]["lookups"] == 0


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fmt", ["fp32", "int8", "int4"])
def test_large_all_hit_lookups_equal_the_reference_ops_on_any_thread_count(tmp_path, monkeypatch, torch_threads,
                                                                           threads, fmt):
    """Batches past the C pass's split size (16,384 ids) on one and two torch threads: int32 slots and
    offsets, the same bits as nn.EmbeddingBag (fp32) or torch's quantized op on the same codes, and
    the same recency stamps as the numba pass."""
    import torch
    import torch.nn.functional as F

    from sdm.cache import native_probe
    from sdm.core.spec import TableSpec
    from sdm.runtime import row_formats
    from sdm.runtime.embedding_store import EmbeddingStore

    torch_threads(threads)
    rng = np.random.default_rng(threads)
    w = torch.randn(40_000, 16)
    codes = torch.from_numpy(row_formats.encode(w, fmt))
    stores = []
    for name in ("c", "numba"):
        s = EmbeddingStore.create(tmp_path / name, [TableSpec("t", 40_000, 16, row_format=fmt)], weights={"t": w},
                                  hardware="host-nand", dram_cache_bytes=10_000 * 120, cache_layout="hashed",
                                  progress=False)
        for part in np.split(np.arange(0, 40_000, 5), 4):   # (lookups fill it: no look-ahead window)
            s.lookup("t", torch.from_numpy(part), torch.arange(0, len(part), 10))
        stores.append(s)
    cached = stores[0].cache("t").contents()
    off = torch.arange(0, 32_768, 16)
    calls = []
    real = native_probe.probe_stamp
    monkeypatch.setattr(native_probe, "probe_stamp", lambda *a: calls.append(1) or real(*a))
    for step in range(4):
        ids = torch.from_numpy(rng.choice(cached, 32_768))
        got = stores[0].lookup("t", ids, off)
        monkeypatch.setenv("SDM_NATIVE", "0")
        twin = stores[1].lookup("t", ids, off)
        monkeypatch.delenv("SDM_NATIVE")
        if fmt == "fp32":
            ref = F.embedding_bag(ids, w, off, mode="sum")
        else:
            op = torch.ops.quantized.embedding_bag_byte_rowwise_offsets if fmt == "int8" else \
                torch.ops.quantized.embedding_bag_4bit_rowwise_offsets
            ref = op(codes, ids, off, False, 0, False, None, None, False)
        assert torch.equal(got, ref) and torch.equal(twin, ref)
        a, b = (s.cache("t") for s in stores)
        assert np.array_equal(a.score, b.score) and a.stamp == b.stamp
    assert len(calls) == 4 or native_probe.kernel() is None   # the C pass served every lookup
    for s in stores:
        s.close()
