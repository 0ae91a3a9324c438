"""Check a plan against a replay: what share of a trace's lookups it serves from host memory.

The planner predicts hit rates (`Estimate.hit_rate`); this replays the trace itself in time order
with the plan's placement: rows the plan pins (SRAM, LPDDR, DRAM) hit, and every other lookup goes
to the DRAM cache in front of SCM. By default (`steps="batch"`) that cache is the runtime's own:
per table, `sdm.cachesim.RuntimeCache` drives the store's set-associative index batch by batch
(its ways, hash, rounding to whole sets, protection of the batch's rows), with the table's share of
the budget and policy from the plan, sized as the store sizes it (row + index bytes a slot). So a
replay is what `EmbeddingStore` built from the plan measures, lookup for lookup (no prefetch, no
profile-driven admission). `steps="lookup"`: one fully associative cache shared by all tables,
one lookup a step (the planner's `cache_steps="lookup"` model). The test suite and
`tools/bench_plan_predict.py` hold these against the predictions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdm.cache.dram_cache import rows_for_budget
from sdm.cache.index import index_bytes_per_row
from sdm.cachesim import RuntimeCache, replay_batches, simulate
from sdm.cachesim.runtime_replay import RUNTIME_WAYS
from sdm.core.checks import real_number
from sdm.core.errors import InvalidInputError
from sdm.placement.types import TIER_ORDER
from sdm.traces.trace import Trace


@dataclass(frozen=True)
class ReplayShares:
    """Shares of the replayed lookups served by pinned rows and by the DRAM cache."""

    pinned: float
    cache: float
    lookups: int

    @property
    def host_memory(self) -> float:
        """Served without an SCM read: 1 - the plan's predicted `hit_rate["scm"]`."""
        return self.pinned + self.cache


def _pinned(plan, name: str, ids: np.ndarray) -> np.ndarray:
    return plan.tables[name].tier_of(ids)[0] < TIER_ORDER.index("scm")


def _table_budgets(plan, trace: Trace, cache_bytes) -> list[float]:
    """Each table's cache bytes: the plan's split, scaled to `cache_bytes` when that is given."""
    own = [float(plan.tables[n].dram_cache_bytes) for n in trace.table_names]
    if cache_bytes is None:
        return own
    total = real_number(cache_bytes, "replay_plan: cache_bytes", minimum=0)
    weight = own if sum(own) > 0 else [float(plan.tables[n].num_rows * plan.tables[n].row_bytes)
                                       for n in trace.table_names]
    return [total * w / sum(weight) if sum(weight) else 0.0 for w in weight]


def _replay_runtime(plan, trace: Trace, cache_bytes, b0: int, b1: int, policy, ways: int) -> tuple[int, int, int]:
    budgets = _table_budgets(plan, trace, cache_bytes)
    cut = np.minimum(np.arange(b0, b1 + 1) * trace.batch_size, trace.num_samples)
    pinned = hits = lookups = 0
    for t, name in enumerate(trace.table_names):
        tp = plan.tables[name]
        pos = np.asarray(trace.offsets[t])[cut]
        ids = np.asarray(trace.indices[t][pos[0]:pos[-1]], np.int64)
        lookups += ids.size
        if not ids.size:
            continue
        pin = _pinned(plan, name, ids)
        pinned += int(pin.sum())
        # a batch's position in the unpinned stream: where its first unpinned lookup lands
        starts = np.r_[0, np.cumsum(~pin)][pos[:-1] - pos[0]]
        rest = ids[~pin]
        pol = policy or tp.dram_cache_policy
        rows = rows_for_budget(int(budgets[t]), tp.row_bytes, tp.num_rows, pol)
        cache = RuntimeCache(pol, ways=ways, num_rows=tp.num_rows)
        index = cache.index(rows, tp.num_rows)
        if rest.size and index.capacity_rows:
            hits += int(replay_batches(index, rest, starts).sum())
    return pinned, hits, lookups


def _replay_lookup(plan, trace: Trace, cache_bytes, b0: int, b1: int, policy) -> tuple[int, int, int]:
    row_bytes = {plan.tables[n].row_bytes for n in trace.table_names}
    if len(row_bytes) != 1:
        raise InvalidInputError(f"replay_plan: tables have different row sizes {sorted(row_bytes)}; "
                                "replay tables of one row size at a time (or steps='batch')")
    rb = row_bytes.pop()
    total = sum(_table_budgets(plan, trace, cache_bytes))
    # sized as the runtime sizes it (and the planner prices it): each cached row costs its bytes
    # plus its index entry; the planner's size is a float, whole rows count
    idx = max((index_bytes_per_row(plan.tables[n].num_rows, policy or plan.tables[n].dram_cache_policy)
               for n in trace.table_names), default=0)
    g = trace.global_stream(b0, b1)
    base = np.asarray(trace.table_base)
    table_of = np.searchsorted(base, g, side="right") - 1
    pinned = np.zeros(g.size, bool)
    for t, name in enumerate(trace.table_names):     # per table, vectorized within
        m = table_of == t
        pinned[m] = _pinned(plan, name, g[m] - base[t])
    if g.size == 0:
        return 0, 0, 0
    sim = simulate(g[~pinned], int(total // (rb + idx)), policy or "lru", row_bytes=rb)
    return int(pinned.sum()), sim.hits, int(g.size)


def replay_plan(plan, trace: Trace, cache_bytes: float | None = None, start_batch: int = 0,
                stop_batch: int | None = None, *, policy: str | None = None, steps: str = "batch",
                ways: int = RUNTIME_WAYS) -> ReplayShares:
    """Replay batches [start_batch, stop_batch) of `trace` against `plan` (see the module doc).

    `cache_bytes`: the DRAM cache budget over all tables (default: the plan's per-table shares;
    given, it is split as the plan splits its own). `policy`: default the plan's per table.
    """
    missing = [n for n in trace.table_names if n not in plan.tables]
    if missing:
        raise InvalidInputError(f"replay_plan: trace tables {missing} are not in the plan")
    if steps not in ("batch", "lookup"):
        raise InvalidInputError(f"replay_plan: steps must be 'batch' or 'lookup', got {steps!r}")
    b1 = trace.num_batches if stop_batch is None else int(stop_batch)
    run = _replay_runtime if steps == "batch" else _replay_lookup
    args = (ways,) if steps == "batch" else ()
    pinned, hits, lookups = run(plan, trace, cache_bytes, int(start_batch), b1, policy, *args)
    if not lookups:
        return ReplayShares(0.0, 0.0, 0)
    return ReplayShares(pinned / lookups, hits / lookups, lookups)
