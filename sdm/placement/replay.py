"""Check a plan against a replay: what share of a trace's lookups it serves from host memory.

The planner predicts hit rates (`Estimate.hit_rate`); this replays the trace itself in time order
through `sdm.cachesim` with the plan's placement: rows the plan pins (SRAM, LPDDR, DRAM) hit, and
every other lookup goes through one LRU cache of `cache_bytes` in front of SCM (as many rows as
the runtime's DRAM cache fits in those bytes, index included). The test suite and
`tools/bench_plan_predict.py` hold the two side by side.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdm.cachesim import simulate
from sdm.core.errors import InvalidInputError
from sdm.core.checks import real_number
from sdm.cache.dram_cache import index_bytes_per_row
from sdm.traces.trace import Trace
from sdm.placement.types import TIER_ORDER


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


def replay_plan(plan, trace: Trace, cache_bytes: int, start_batch: int = 0, stop_batch: int | None = None,
                *, policy: str = "lru") -> ReplayShares:
    """Replay batches [start_batch, stop_batch) of `trace` against `plan` (see the module doc).

    Every table of the trace must be in the plan, all with one row size (the cache is one pool of
    rows; mixed sizes would need a byte-weighted cache the simulator does not model).
    """
    missing = [n for n in trace.table_names if n not in plan.tables]
    if missing:
        raise InvalidInputError(f"replay_plan: trace tables {missing} are not in the plan")
    row_bytes = {plan.tables[n].row_bytes for n in trace.table_names}
    if len(row_bytes) != 1:
        raise InvalidInputError(f"replay_plan: tables have different row sizes {sorted(row_bytes)}; "
                                "replay tables of one row size at a time")
    rb = row_bytes.pop()
    # sized as the runtime sizes it (and the planner prices it): each cached row costs its bytes
    # plus its index entry (sdm.cache.dram_cache); the planner's size is a float, whole rows count
    idx = max((index_bytes_per_row(plan.tables[n].num_rows) for n in trace.table_names), default=0)
    cache_rows = int(real_number(cache_bytes, "replay_plan: cache_bytes", minimum=0) // (rb + idx))
    g = trace.global_stream(start_batch, stop_batch)
    base = np.asarray(trace.table_base)
    table_of = np.searchsorted(base, g, side="right") - 1
    pinned = np.zeros(g.size, bool)
    scm = TIER_ORDER.index("scm")
    for t, name in enumerate(trace.table_names):     # per table, vectorized within
        m = table_of == t
        pinned[m] = plan.tables[name].tier_of(g[m] - base[t])[0] < scm
    if g.size == 0:
        return ReplayShares(0.0, 0.0, 0)
    sim = simulate(g[~pinned], cache_rows, policy, row_bytes=rb)
    return ReplayShares(float(pinned.mean()), sim.hits / g.size, int(g.size))
