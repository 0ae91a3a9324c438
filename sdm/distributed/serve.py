"""Serve a trace through a sharded EmbeddingBagCollection: every rank its own store, TorchRec's
all-to-alls between them, one merged report.

    report = serve_trace(trace, host_plan, root, timeout_s=30)    # inside torchrun; report on every rank

Rank r serves global batches r, r + W, r + 2W, ... of the trace (data-parallel input, as a trainer
or a serving tier would feed it); iteration i is one global batch. Only full batches are served,
so every rank sends the same number of samples. `on_batch(i, kjt, kt)` sees each result (tests use
it to compare with the unsharded module).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from sdm.core.errors import InvalidInputError
from sdm.distributed.job_report import merge_reports, modelled_a2a_bytes, rank_report
from sdm.distributed.kernel import A2ACounter
from sdm.distributed.process_group import collective_guard, init_loopback
from sdm.distributed.rank_store import open_rank_store, store_share

__all__ = ["serve_trace", "batch_kjt", "bag_lengths"]


def batch_kjt(trace, b: int, tables: list[str]):
    """Batch b of `trace` as a KeyedJaggedTensor keyed by table name, in `tables` order."""
    from torchrec import KeyedJaggedTensor

    index = {n: i for i, n in enumerate(trace.table_names)}
    missing = [t for t in tables if t not in index]
    if missing:
        raise InvalidInputError(f"the trace has no tables {missing[:5]}; it has {trace.table_names[:5]}")
    bags = trace.batch(b)
    values, lengths = [], []
    for t in tables:
        idx, off = bags[index[t]]
        values.append(torch.as_tensor(np.asarray(idx, np.int64)))
        lengths.append(torch.as_tensor(np.diff(off).astype(np.int32)))
    return KeyedJaggedTensor.from_lengths_sync(keys=list(tables), values=torch.cat(values), lengths=torch.cat(lengths))


def bag_lengths(trace) -> dict[str, float]:
    """Mean ids per bag of each table over the whole trace (the model's pooling factor)."""
    return {n: float(len(idx)) / max(1, trace.num_samples) for n, idx in zip(trace.table_names, trace.indices)}


def serve_trace(trace, host_plan, root, *, timeout_s: float = 30.0, max_batches: int | None = None,
                pooling: str = "sum", on_batch: Callable | None = None,
                after_batch: Callable[[int, int], None] | None = None, **store_kw) -> dict:
    """Run the job on this rank (the process group is joined here if it is not yet); returns the
    merged report (the same dict on every rank)."""
    import torch.distributed as dist
    from torchrec import EmbeddingBagCollection

    from sdm.distributed.sharder import bag_configs, shard_collection

    rank, world = init_loopback(timeout_s)
    tables = list(host_plan.tables)
    store, reopened = open_rank_store(host_plan, rank, root, pooling=pooling, **store_kw)
    try:
        counter = A2ACounter(rank, world)
        ebc = EmbeddingBagCollection(tables=bag_configs(host_plan, pooling), device=torch.device("meta"))
        with collective_guard(rank, "sharding the collection", timeout_s):
            sharded = shard_collection(ebc, host_plan, store, counter=counter)
        full = trace.num_samples // trace.batch_size
        iters = full // world if max_batches is None else min(full // world, int(max_batches))
        if iters < 1:
            raise InvalidInputError(f"the trace has {full} full batches; {world} ranks need at least {world}")
        store.reset_stats()
        t0 = time.perf_counter()
        for i in range(iters):
            kjt = batch_kjt(trace, i * world + rank, tables)
            with collective_guard(rank, f"batch {i}", timeout_s):
                kt = sharded(kjt).wait()
            if on_batch is not None:
                on_batch(i, kjt, kt)
            if after_batch is not None:
                after_batch(rank, i)
        serve_s = time.perf_counter() - t0
        mine = rank_report(rank, store, counter, store_share(store), iters, reopened, serve_s)
        gathered = [None] * world
        with collective_guard(rank, "gathering the report", timeout_s):
            dist.all_gather_object(gathered, mine)
        model = modelled_a2a_bytes(host_plan, world, trace.batch_size, bag_lengths(trace))
        return merge_reports(gathered, model)
    finally:
        store.close()
