"""Six-card executor: real DLRM inference over a partition equals the unpartitioned model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import sdm
from sdm.accel.executor import AccelExecutor, build_host_store, dense_flops_per_sample, dense_inputs, replay
from sdm.accel.partitioner import partition, partition_from_plan
from sdm.accel.routing import trace_shard_counts
from sdm.runtime.dlrm import DLRM
from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.traces.generators import zipf_trace

ROWS = [3000, 200, 9000, 50, 4000, 12000]
DIM = 8
B = 64


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    model = DLRM(ROWS, dim=DIM, seed=3).eval()
    tables = [TableSpec(f"t{i}", r, DIM, pooling_factor=3) for i, r in enumerate(ROWS)]
    trace = zipf_trace(ROWS, 4 * B + 17, batch_size=B, pooling=3, seed=5, table_names=[t.name for t in tables])
    return model, tables, trace, sdm.hardware("yosemite-v2-nand")


def _reference(model, trace):
    x = dense_inputs(trace.num_samples, model.num_dense)
    outs = []
    with torch.no_grad():
        for b in range(trace.num_batches):
            bags = trace.batch(b)
            n = bags[0][1].size - 1
            outs.append(model(x[b * B: b * B + n], [torch.from_numpy(o[:-1]) for _, o in bags],
                              [torch.from_numpy(i) for i, _ in bags]))
    return outs


def test_whole_tables_on_cards_and_host_are_bitwise_equal(setup, tmp_path):
    model, tables, trace, hw = setup
    # tables whole (no row sharding), two of them on the host behind an EmbeddingStore on SCM
    p = partition(tables, [10**6] * 6, [20_000] * 6, imbalance_tol=100.0, host_tables=["t2", "t5"])
    assert all(len(p.shards_of(t.name)) == 1 for t in tables)
    store = build_host_store(model, p, tmp_path / "store", hw, dram_cache_bytes=50_000)
    with store:
        assert sorted(store.tables) == ["t2", "t5"]
        res = replay(AccelExecutor(model, p, store=store), trace, num_dense=model.num_dense, keep_outputs=True)
    for got, want in zip(res.outputs, _reference(model, trace)):
        assert torch.equal(got, want)
    counts, sizes = trace_shard_counts(p, trace)
    np.testing.assert_array_equal(res.counts, counts)
    np.testing.assert_array_equal(res.batch_sizes, sizes)
    assert res.host_measured_s.min() > 0 and res.samples_per_s > 0


def test_row_sharded_and_plan_split_tables_equal_to_rounding(setup, tmp_path):
    model, tables, trace, hw = setup
    p = partition(tables, [60_000] * 6, [5_000] * 6, loads=[9, 1, 6, 1, 1, 1])   # t0, t2 sharded; some on host
    assert len(p.shards_of("t0")) > 1 and any(not s.on_card for s in p.shards)
    store = build_host_store(model, p, tmp_path / "s1", hw, dram_cache_bytes=20_000)
    with store:
        ex = AccelExecutor(model, p, store=store)
        res = replay(ex, trace, num_dense=model.num_dense, keep_outputs=True)
        bags = [(torch.from_numpy(i), torch.from_numpy(o[:-1])) for i, o in trace.batch(1)]
        pooled, _, _, _ = ex.pooled(bags)
    for got, want in zip(res.outputs, _reference(model, trace)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for t, (i, o) in enumerate(bags):
        torch.testing.assert_close(pooled[t], model.emb_l[t](i, o), rtol=1e-5, atol=1e-6)

    # a plan's hot rows (scattered ids) on two cards, the rest on the host
    from sdm.placement.plan import Plan, RowSet, TablePlan, TierPlacement
    hot = np.bincount(trace.indices[2], minlength=ROWS[2]).argsort()[::-1][:300]
    tps = {t.name: TablePlan(t.name, t.num_rows, DIM, "fp32", t.row_bytes) for t in tables}
    tps["t2"].placements = [TierPlacement("sram", 1, RowSet.from_ids(hot[:100])),
                            TierPlacement("lpddr", 4, RowSet.from_ids(hot[100:]))]
    tps["t0"].placements = [TierPlacement("lpddr", 0, RowSet(ranges=np.array([[0, ROWS[0]]])))]
    plan = Plan("m", hw.name, "latency", "test", tps)
    p2 = partition_from_plan(plan, tables, [10**6] * 6, [10**5] * 6)
    store = build_host_store(model, p2, tmp_path / "s2", hw)
    with store:
        res2 = replay(AccelExecutor(model, p2, store=store), trace, num_dense=model.num_dense, keep_outputs=True)
    for got, want in zip(res2.outputs, _reference(model, trace)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    col = [i for i, s in enumerate(p2.shards) if s.table == "t2" and s.on_card]
    assert res2.counts[:, col].sum() > 0


def test_executor_rejects_bad_input_and_changes_nothing(setup, tmp_path):
    model, tables, trace, hw = setup
    p = partition(tables, [10**6] * 6, [0] * 6, host_tables=["t1"])
    with pytest.raises(InvalidInputError, match="EmbeddingStore"):
        AccelExecutor(model, p)
    with pytest.raises(InvalidInputError, match="emb_l"):
        AccelExecutor(DLRM(ROWS[:3], dim=DIM), p)
    store = build_host_store(model, p, tmp_path / "s", hw)
    with store:
        ex = AccelExecutor(model, p, store=store)
        bags = [(torch.from_numpy(i), torch.from_numpy(o[:-1])) for i, o in trace.batch(0)]
        before = store.stats()["total"]["indices"]
        bad = list(bags)
        ids = bad[3][0].clone()
        ids[7] = ROWS[3]
        bad[3] = (ids, bad[3][1])
        with pytest.raises(InvalidInputError, match=r"table 't3': index 50 at position 7 is out of range \[0, 50\)"):
            ex.run_batch(torch.zeros(B, model.num_dense), bad)
        off = bags[3][1].clone()
        off[5] = off[4] - 1
        bad[3] = (bags[3][0], off)
        with pytest.raises(InvalidInputError, match=r"table 't3': offsets must be non-decreasing; offsets\[5\]"):
            ex.run_batch(torch.zeros(B, model.num_dense), bad)
        bad[3] = (bags[3][0], torch.tensor([0, 5, 3]))
        with pytest.raises(InvalidInputError, match="numbers of bags"):
            ex.run_batch(torch.zeros(B, model.num_dense), bad)
        with pytest.raises(InvalidInputError, match="tables"):
            ex.run_batch(torch.zeros(B, model.num_dense), bags[:2])
        assert store.stats()["total"]["indices"] == before


def test_dense_flops_count_linear_layers_and_interaction():
    m = DLRM([10, 10], dim=4, num_dense=3, bottom_mlp=(5,), top_mlp=(6,))
    # bottom 3->5->4, interaction of 3 vectors -> 3 + 4 = 7 inputs, top 7->6->1
    linear = 2 * (3 * 5 + 5 * 4 + 7 * 6 + 6 * 1)
    assert dense_flops_per_sample(m, 2, 4) == linear + 2 * 9 * 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_cards_match_cpu(setup, tmp_path):
    model, tables, trace, hw = setup
    p = partition(tables, [10**6] * 6, [20_000] * 6, imbalance_tol=100.0, host_tables=["t5"])
    store = build_host_store(model, p, tmp_path / "g", hw)
    with store:
        ex = AccelExecutor(model, p, store=store, use_cuda=True)   # moves the dense part to cuda:0
        assert ex.dense_device.type == "cuda"
        res = replay(ex, trace, num_dense=model.num_dense, keep_outputs=True)
    model.cpu()
    for got, want in zip(res.outputs, _reference(model, trace)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_any_model_with_emb_l_runs_through_its_own_forward(setup):
    """A model that is not sdm.runtime.dlrm.DLRM: the executor swaps emb_l for the pooled tensors and calls
    the model's own forward, so its dense part runs unchanged."""
    model, tables, trace, hw = setup

    class Other(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb_l = model.emb_l
            self.head = torch.nn.Linear(DIM * len(ROWS), 1)

        def forward(self, x, bags):
            return self.head(torch.cat([m(i, o) for m, (i, o) in zip(self.emb_l, bags)], 1)) + x.sum(1, keepdim=True)

    other = Other().eval()
    p = partition(tables, [10**6] * 6, [20_000] * 6, imbalance_tol=100.0)
    ex = AccelExecutor(other, p, forward=lambda m, x, bags: m(x, bags))
    bags = [(torch.from_numpy(i), torch.from_numpy(o[:-1])) for i, o in trace.batch(0)]
    x = torch.rand(B, 3)
    with torch.no_grad():
        assert torch.equal(ex.run_batch(x, bags).output, other(x, bags))
    assert other.emb_l is model.emb_l   # restored after the call
