"""Access traces: the trace type, loaders for public formats, synthetic generators, reuse stats."""
from __future__ import annotations

from sdm.traces.generators import (
    CRITEO_KAGGLE_ROWS,
    CRITEO_TERABYTE_ROWS,
    calibrated_counts,
    production_trace,
    stack_distance_trace,
    table_rows,
    zipf_trace,
)
from sdm.traces.loaders import load_csv, load_dlrm_text, load_meta_dataset, load_trace
from sdm.traces.reuse import META_2021_REUSE, ReuseTable, reuse_table, reuse_table_of_counts
from sdm.traces.trace import Trace, from_bags

__all__ = [
    "CRITEO_KAGGLE_ROWS", "CRITEO_TERABYTE_ROWS", "META_2021_REUSE", "ReuseTable", "Trace",
    "calibrated_counts", "from_bags", "load_csv", "load_dlrm_text", "load_meta_dataset", "load_trace",
    "production_trace", "reuse_table", "reuse_table_of_counts", "stack_distance_trace", "table_rows",
    "zipf_trace",
]
