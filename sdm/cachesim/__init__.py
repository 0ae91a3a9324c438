"""Cache simulator: replay id streams through replacement policies and Belady's optimum.

`simulate(ids, capacity_rows, policy)` -> SimResult; `miss_ratio_curve(ids, capacities, policy)`;
`prepare(ids, page_of=None)` once to reuse a stream across policies and capacities.
Policies: LRU, LFU, FIFO, S3FIFO, Static, SetAssociativeLRU, OPT (one module each).
"""
from __future__ import annotations

from sdm.cachesim.fifo import FIFO
from sdm.cachesim.lfu import LFU
from sdm.cachesim.lru import LRU
from sdm.cachesim.opt import OPT
from sdm.cachesim.s3fifo import S3FIFO
from sdm.cachesim.setassoc import SetAssociativeLRU
from sdm.cachesim.simulate import POLICIES, MissRatioCurve, get_policy, miss_ratio_curve, simulate
from sdm.cachesim.static import Static
from sdm.cachesim.stream import DenseStream, layout_page, layout_pages, prepare
from sdm.cachesim.types import HookCache, Policy, SimResult

__all__ = [
    "FIFO", "LFU", "LRU", "OPT", "S3FIFO", "SetAssociativeLRU", "Static", "POLICIES", "MissRatioCurve",
    "get_policy", "miss_ratio_curve", "simulate", "DenseStream", "layout_page", "layout_pages", "prepare",
    "HookCache", "Policy", "SimResult",
]
