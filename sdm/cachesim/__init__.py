"""Cache simulator: replay id streams through cache policies, the runtime's own cache, and Belady's optimum.

`simulate(ids, capacity_rows, policy)` -> SimResult; `miss_ratio_curve(ids, capacities, policy)`;
`prepare(ids, page_of=None)` once to reuse a stream across policies and capacities. A policy is a
name of the one registry, `sdm.cache.policies` (lru lfu fifo static lfu-global s3fifo setassoc[N]
opt opt-demand: each policy's compiled fully associative replay), "runtime-NAME" or a
`RuntimeCache` (the runtime's set-associative DRAM cache driven batch by batch), or an object.
"""
from __future__ import annotations

from sdm.cache.policies import FIFO, LFU, LRU, OPT, POLICIES, S3FIFO, SetAssociativeLRU, Static, make_policy
from sdm.cachesim.runtime_replay import RuntimeCache, replay_batches, resolve_policy
from sdm.cachesim.simulate import MissRatioCurve, miss_ratio_curve, simulate
from sdm.cachesim.stream import DenseStream, layout_page, layout_pages, prepare
from sdm.cachesim.types import Replayer, SimResult

__all__ = [
    "FIFO", "LFU", "LRU", "OPT", "S3FIFO", "SetAssociativeLRU", "Static", "POLICIES", "make_policy",
    "RuntimeCache", "replay_batches", "resolve_policy", "MissRatioCurve", "miss_ratio_curve", "simulate",
    "DenseStream", "layout_page", "layout_pages", "prepare", "Replayer", "SimResult",
]
