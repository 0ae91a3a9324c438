"""Prefetching rows into the DRAM cache ahead of use (`Prefetcher`: look-ahead over coming batches)."""
from __future__ import annotations

from sdm.prefetch.lookahead import Prefetcher, default_ids_of

__all__ = ["Prefetcher", "default_ids_of"]
