"""Access traces: the trace type, loaders for public formats, synthetic generators, reuse stats.

Names load lazily, so `from sdm.traces.trace import Trace` (or `sdm.traces.Trace`) does not import
numba, which only the stack-distance and production generators need.
"""
from __future__ import annotations

from sdm.core.lazy_exports import lazy_exports

_EXPORTS = {
    "CRITEO_KAGGLE_ROWS": "sdm.traces.table_sets",
    "CRITEO_TERABYTE_ROWS": "sdm.traces.table_sets",
    "table_rows": "sdm.traces.table_sets",
    "zipf_trace": "sdm.traces.generators",
    "stack_distance_trace": "sdm.traces.stack_distance",
    "calibrated_counts": "sdm.traces.production",
    "production_trace": "sdm.traces.production",
    "load_csv": "sdm.traces.loaders",
    "load_dlrm_text": "sdm.traces.loaders",
    "load_meta_dataset": "sdm.traces.loaders",
    "load_trace": "sdm.traces.loaders",
    "META_2021_REUSE": "sdm.traces.reuse",
    "ReuseTable": "sdm.traces.reuse",
    "reuse_table": "sdm.traces.reuse",
    "reuse_table_of_counts": "sdm.traces.reuse",
    "Trace": "sdm.traces.trace",
    "from_bags": "sdm.traces.trace",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
