"""The sdm kernel TorchRec calls, in one process: KJT in, pooled rows equal to nn.EmbeddingBag out;
the all-to-all byte counter; TorchRec's plan from a host plan; loopback-only launch."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchrec", reason="torchrec is not installed: the sharded path runs on TorchRec")
from torchrec import KeyedJaggedTensor  # noqa: E402

from sdm.core.errors import InvalidInputError  # noqa: E402
from sdm.core.spec import TableSpec  # noqa: E402
from sdm.distributed.kernel import A2ACounter, pooled_lookup  # noqa: E402
from sdm.distributed.process_group import init_loopback  # noqa: E402
from sdm.distributed.rank_store import model_rows, open_rank_store  # noqa: E402
from sdm.placement.host_plan import plan_hosts  # noqa: E402


@pytest.fixture(scope="module")
def plan_and_stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("kernel")
    specs = [TableSpec("a", 200, 6), TableSpec("b", 300, 10)]
    hp = plan_hosts(specs, "host-nand", 2, sharding="column")
    stores = {}
    for mode in ("sum", "mean"):
        stores[mode] = open_rank_store(hp, 0, root / mode, pooling=mode)[0]
    yield hp, stores
    for s in stores.values():
        s.close()


def kjt_for(rng, keys, stride, num_rows, weighted=False):
    lengths = torch.as_tensor(rng.integers(0, 4, len(keys) * stride), dtype=torch.int32)
    values = torch.as_tensor(rng.integers(0, num_rows, int(lengths.sum())), dtype=torch.int64)
    weights = torch.rand(values.numel(), generator=torch.Generator().manual_seed(1)) if weighted else None
    return KeyedJaggedTensor.from_lengths_sync(keys=keys, values=values, lengths=lengths, weights=weights)


@pytest.mark.parametrize("mode,weighted", [("sum", False), ("sum", True), ("mean", False)])
def test_pooled_lookup_equals_embedding_bag_per_feature(plan_and_stores, mode, weighted):
    hp, stores = plan_and_stores
    sec = hp.section(0)
    names = [s.name for s in sec.shards]
    kjt = kjt_for(np.random.default_rng(3), [s.table for s in sec.shards], 7, 200, weighted)
    out = pooled_lookup(stores[mode], names, kjt)
    assert out.shape == (7, sum(s.dim for s in sec.shards))
    col = 0
    for s, jt in zip(sec.shards, kjt.split([1] * len(names))):
        w = model_rows(s.table, 0, s.num_rows, s.table_dim, s.num_rows)[:, s.col_start:s.col_stop]
        bag = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(np.ascontiguousarray(w)), mode=mode)
        want = bag(jt.values(), jt.offsets()[:-1], per_sample_weights=jt.weights_or_none())
        assert torch.equal(out[:, col:col + s.dim], want), s.name
        col += s.dim


def test_pooled_lookup_refuses_a_feature_count_that_does_not_match(plan_and_stores):
    hp, stores = plan_and_stores
    kjt = kjt_for(np.random.default_rng(0), ["a"], 3, 200)
    with pytest.raises(InvalidInputError, match="1 features arrived for 2 store tables"):
        pooled_lookup(stores["sum"], [s.name for s in hp.section(0).shards], kjt)
    assert pooled_lookup(stores["sum"], [], KeyedJaggedTensor.from_lengths_sync(
        keys=[], values=torch.empty(0, dtype=torch.int64), lengths=torch.empty(0, dtype=torch.int32),
        stride=5)).shape == (5, 0)


def test_a2a_counter_counts_only_what_other_ranks_sent():
    # rank 1 of 2, 2 samples from each rank: rows 0-1 came from rank 0 (remote), rows 2-3 are its own
    kjt = KeyedJaggedTensor.from_lengths_sync(keys=["f"], values=torch.arange(7, dtype=torch.int64),
                                              lengths=torch.tensor([1, 2, 3, 1], dtype=torch.int32))
    c = A2ACounter(rank=1, world_size=2)
    c.count(kjt, torch.zeros(4, 5))
    assert c.input_bytes == 3 * 8 + 2 * 4 and c.output_bytes == 2 * 5 * 4
    with pytest.raises(InvalidInputError, match="same batch size"):
        A2ACounter(rank=0, world_size=3).count(kjt, torch.zeros(4, 5))


def test_torchrec_plan_from_the_host_plan():
    from sdm.distributed.sharder import KERNEL, parameter_shardings

    hp = plan_hosts([TableSpec("w", 100, 9), TableSpec("n", 100, 4)], "host-nand", 2,
                    lookups={"w": 10.0, "n": 0.1})
    ps = parameter_shardings(hp, 2)
    kinds = {n: p.sharding_type for n, p in ps.items()}
    assert kinds == {"w": "column_wise", "n": "table_wise"} and all(p.compute_kernel == KERNEL for p in ps.values())
    sizes = [(m.shard_offsets, m.shard_sizes) for m in ps["w"].sharding_spec.shards]
    assert sizes == [([0, 0], [100, 5]), ([0, 5], [100, 4])] and ps["w"].ranks == [s.host for s in hp.shards() if s.table == "w"]
    with pytest.raises(InvalidInputError, match="hosts=3"):
        parameter_shardings(hp, 3)


def test_launch_is_loopback_only(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_PORT", "29999")
    monkeypatch.setenv("MASTER_ADDR", "10.1.2.3")
    with pytest.raises(InvalidInputError, match="not a loopback address"):
        init_loopback(1.0)
    monkeypatch.delenv("MASTER_ADDR")
    with pytest.raises(InvalidInputError, match="torchrun"):
        init_loopback(1.0)
