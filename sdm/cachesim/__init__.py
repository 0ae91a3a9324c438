"""Cache simulator: replay id streams through replacement policies and Belady's optimum.

`simulate(ids, capacity_rows, policy)` -> SimResult; `miss_ratio_curve(ids, capacities, policy)`;
`prepare(ids, page_of=None)` once to reuse a stream across policies and capacities.
Policies: LRU, LFU, FIFO, S3FIFO, Static, SetAssociativeLRU, OPT (one module each).
"""
from __future__ import annotations

from .fifo import FIFO
from .lfu import LFU
from .lru import LRU
from .opt import OPT
from .s3fifo import S3FIFO
from .setassoc import SetAssociativeLRU
from .simulate import POLICIES, MissRatioCurve, get_policy, miss_ratio_curve, simulate
from .static import Static
from .stream import DenseStream, layout_page, layout_pages, prepare
from .types import HookCache, Policy, SimResult

__all__ = [
    "FIFO", "LFU", "LRU", "OPT", "S3FIFO", "SetAssociativeLRU", "Static", "POLICIES", "MissRatioCurve",
    "get_policy", "miss_ratio_curve", "simulate", "DenseStream", "layout_page", "layout_pages", "prepare",
    "HookCache", "Policy", "SimResult",
]
