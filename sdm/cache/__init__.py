"""The cache: one Protocol for replacement/admission policies (`base`), one small module per policy,
one registry (`policies.make_policy`), and the set-associative index (`index`) with the rows on top
(`dram_cache.DramCache`); shared by the runtime, the simulator and the planner's prediction check.
Names load lazily: `import sdm.cache` does not import numba or torch.
"""
from __future__ import annotations

from sdm.core.lazy_exports import lazy_exports

_EXPORTS = {
    "CachePolicy": "sdm.cache.base",
    "ScorePolicy": "sdm.cache.base",
    "OfflinePolicy": "sdm.cache.base",
    "POLICIES": "sdm.cache.policies",
    "RUNTIME_POLICIES": "sdm.cache.policies",
    "make_policy": "sdm.cache.policies",
    "CacheIndex": "sdm.cache.index",
    "INDEX_BYTES_PER_ROW": "sdm.cache.index",
    "index_bytes_per_row": "sdm.cache.index",
    "DramCache": "sdm.cache.dram_cache",
    "rows_for_budget": "sdm.cache.dram_cache",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
__all__ = sorted(_EXPORTS)
