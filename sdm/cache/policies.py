"""The one registry of cache policies: a name means the same policy in the runtime and the simulator.

Each policy is one module of this package (lru, lfu, fifo, static, s3lru, sketchlfu, duel, s3fifo,
opt, setassoc), one class implementing `sdm.cache.base.CachePolicy`'s hooks (what the runtime's
DRAM cache runs) and, where there is one, `replay(stream, capacity)` (the simulator's compiled fully
associative replay of the same rule). `RUNTIME_POLICIES` are the names the DRAM cache can run; the
others need the future or state the set-associative index does not keep and run only in the
simulator. Adding a policy: a module with its class, and one line in POLICIES.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from sdm.cache.base import CachePolicy, OfflinePolicy, ScorePolicy
from sdm.cache.duel import Duel
from sdm.cache.fifo import FIFO
from sdm.cache.lfu import LFU
from sdm.cache.lru import LRU
from sdm.cache.opt import OPT
from sdm.cache.s3fifo import S3FIFO
from sdm.cache.s3lru import S3LRU
from sdm.cache.setassoc import SetAssociativeLRU
from sdm.cache.sketchlfu import SketchLFU
from sdm.cache.static import Static
from sdm.core.errors import InvalidInputError

POLICIES: dict[str, Callable[[], CachePolicy]] = {
    "lru": LRU,
    "lfu": LFU,
    "fifo": FIFO,
    "static": Static,
    "s3lru": S3LRU,
    "lfu-global": lambda: LFU(counts="global"),
    "s3fifo": S3FIFO,
    "sketch-lfu": SketchLFU,
    "duel": Duel,
    "setassoc": SetAssociativeLRU,
    "opt": OPT,
    "opt-demand": lambda: OPT(bypass=False),
}
RUNTIME_POLICIES = ("lru", "lfu", "fifo", "static", "s3lru", "sketch-lfu", "duel")

__all__ = ["CachePolicy", "OfflinePolicy", "ScorePolicy", "POLICIES", "RUNTIME_POLICIES", "make_policy",
           "Duel", "FIFO", "LFU", "LRU", "OPT", "S3FIFO", "S3LRU", "SetAssociativeLRU", "SketchLFU", "Static"]


def make_policy(policy: str | CachePolicy, hot_ids: np.ndarray | None = None, *, table: str | None = None,
                runtime: bool = False) -> CachePolicy:
    """A policy object from its name (see POLICIES; "setassocN" = N ways) or the object itself.

    `hot_ids`: the rows a "static" policy holds. `runtime=True`: the caller is the DRAM cache, so
    the policy must be one it can run (`table` names the table in errors).
    """
    where = "" if table is None else f"table {table!r}: "
    if not isinstance(policy, str):
        if not isinstance(policy, CachePolicy) and not hasattr(policy, "replay"):
            raise InvalidInputError(f"{where}cache policy {policy!r} has neither the CachePolicy hooks nor replay()")
        pol = policy
    else:
        name = policy.strip().lower()
        if name == "static":
            pol = Static(hot_ids=np.zeros(0, np.int64) if hot_ids is None and runtime else hot_ids)
        elif name in POLICIES:
            pol = POLICIES[name]()
        elif name.startswith("setassoc") and name[len("setassoc"):].isdigit():
            pol = SetAssociativeLRU(int(name[len("setassoc"):]))
        else:
            raise InvalidInputError(f"{where}unknown cache policy {policy!r}; expected one of "
                                    f"{sorted(POLICIES)} or setassocN")
    if runtime and (not isinstance(pol, CachePolicy) or not getattr(pol, "runtime", True)):
        raise InvalidInputError(f"{where}cache policy {getattr(pol, 'name', pol)!r} runs only in the simulator; "
                                f"the DRAM cache runs {list(RUNTIME_POLICIES)}")
    return pol
