"""Zeroed tensors on transparent huge pages (Linux), for the DRAM cache's row data.

Why: a lookup reads rows scattered over the cache's tensor, and on 4 KiB pages nearly every row
read also misses the TLB once the tensor outgrows the TLB's reach (a few MiB); on 2 MiB pages
a 25 MiB cache is 13 TLB entries. Measured on this project's machine: nn.EmbeddingBag over a
100 MiB table takes 0.91 ms on huge pages against 1.02 ms on 4 KiB pages (4,096 bags x 32 Zipf
ids, one thread; tools/bench_lookup.py prints the same comparison for its baseline).

How: an anonymous private mapping 2 MiB larger than asked, a tensor over its first 2 MiB-aligned
byte, and `madvise(MADV_HUGEPAGE)` over the whole huge pages it covers (so it works where the
kernel's THP mode is "madvise", the common default; with "never" the pages stay 4 KiB and nothing
else changes). The mapping lives as long as
the tensor (torch keeps the numpy array, which keeps the mapping). Pages are zero and are faulted in
on first write, as torch.zeros' pages are.

`SDM_HUGE_PAGES=0` gives plain torch.zeros tensors (to measure the difference).
"""
from __future__ import annotations

import mmap
import os

import numpy as np
import torch

HUGE_PAGE_BYTES = 2 << 20
# below one huge page the mapping cannot hold one: plain allocation
_MIN_BYTES = HUGE_PAGE_BYTES


def enabled() -> bool:
    return os.environ.get("SDM_HUGE_PAGES", "1") != "0" and hasattr(mmap, "MADV_HUGEPAGE")


def zeros(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """torch.zeros(shape, dtype=dtype), on huge pages where the tensor spans at least one."""
    elem = torch.empty(0, dtype=dtype).element_size()
    nbytes = int(np.prod(shape, dtype=np.int64)) * elem
    if nbytes < _MIN_BYTES or not enabled():
        return torch.zeros(shape, dtype=dtype)
    try:
        m = mmap.mmap(-1, nbytes + HUGE_PAGE_BYTES, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        raw = np.frombuffer(m, dtype=np.uint8)
        start = (-raw.ctypes.data) % HUGE_PAGE_BYTES
        # only the whole huge pages the tensor covers: its tail stays on 4 KiB pages, so it takes no
        # more memory than torch.zeros would (a huge page is faulted in whole)
        m.madvise(mmap.MADV_HUGEPAGE, start, nbytes // HUGE_PAGE_BYTES * HUGE_PAGE_BYTES)
    except (OSError, ValueError):   # (no room for the mapping, or madvise refused: plain pages)
        return torch.zeros(shape, dtype=dtype)
    return torch.from_numpy(raw[start:start + nbytes]).view(dtype).view(shape)
