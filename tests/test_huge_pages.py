"""sdm.core.huge_pages: zeroed tensors whose pages the kernel may back with 2 MiB pages (THP), used for
the DRAM cache's rows."""
from pathlib import Path

import pytest
import torch

from sdm.cache.dram_cache import DramCache
from sdm.core import huge_pages

_THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _thp_mode() -> str | None:
    try:
        text = _THP.read_text()
    except OSError:
        return None
    return text[text.index("[") + 1:text.index("]")]


def _vma_flag(addr: int, key: str) -> str | None:
    """`key`'s value in /proc/self/smaps for the mapping holding `addr`."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= addr < hi
        elif inside and line.startswith(key + ":"):
            return line.split()[1]
    return None


needs_madvise = pytest.mark.skipif(_thp_mode() not in ("madvise", "always") or not huge_pages.enabled(),
                                   reason="transparent huge pages off, or no madvise here")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.uint8])
def test_zeros_are_zero_writable_and_shaped(dtype):
    t = huge_pages.zeros((100_000, 24), dtype)
    assert t.shape == (100_000, 24) and t.dtype == dtype and t.is_contiguous()
    assert not t.any()
    t[123] = 7
    assert int(t.sum()) == 7 * 24
    assert t.data_ptr() % huge_pages.HUGE_PAGE_BYTES == 0   # starts on a 2 MiB boundary


@needs_madvise
def test_the_mapping_is_advised_for_huge_pages():
    t = huge_pages.zeros((1 << 20, 4), torch.float32)   # 16 MiB
    t.fill_(1.0)
    assert _vma_flag(t.data_ptr(), "THPeligible") == "1"


@needs_madvise
def test_dram_cache_rows_live_on_huge_pages():
    cache = DramCache(1_000_000, 64, torch.float32, 64 << 20, layout="hashed")
    assert _vma_flag(cache.data.data_ptr(), "THPeligible") == "1"


def test_small_tensors_and_switch_off_are_plain(monkeypatch):
    small = huge_pages.zeros((10, 4), torch.float32)
    assert small.shape == (10, 4) and not small.any()
    monkeypatch.setenv("SDM_HUGE_PAGES", "0")
    assert not huge_pages.enabled()
    plain = huge_pages.zeros((1 << 20, 4), torch.float32)
    assert plain.shape == (1 << 20, 4) and not plain.any()
    if _thp_mode() == "madvise":   # (with "always" every large mapping is eligible)
        assert _vma_flag(plain.data_ptr(), "THPeligible") == "0"
