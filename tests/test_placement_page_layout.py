"""Page layout: a permutation of rows, exact byte accounting, >= 2x fewer bytes on co-accessed data."""
from __future__ import annotations

import numpy as np
import pytest

from sdm.core.errors import InvalidInputError
from sdm.placement.page_layout import _order_to_slots, co_access_layout, read_bytes


def co_access_trace(rng, groups, n_bags, group_size=16):
    """Each bag reads 2-8 rows of one group (groups Zipf-popular, members scattered over the table)."""
    g = np.minimum(rng.zipf(1.2, n_bags) - 1, len(groups) - 1)
    k = rng.integers(2, 9, n_bags)
    off = np.r_[0, np.cumsum(k)]
    return groups[np.repeat(g, k), rng.integers(0, group_size, off[-1])], off


def test_read_bytes_by_hand():
    ids = np.array([0, 1, 17, 5, 5])          # bag 0: rows 0, 1, 17; bag 1: row 5 twice
    off = np.array([0, 3, 5])
    # 16 rows per page: bag 0 touches pages 0 and 1; bag 1 page 0 -> 3 pages; 4 distinct rows used
    assert read_bytes(ids, off, None, 16, 256, 4096) == (3 * 4096, 4 * 256)
    slot = np.arange(32)
    slot[[17, 2]] = [2, 17]                   # move row 17 into page 0
    assert read_bytes(ids, off, slot, 16, 256, 4096) == (2 * 4096, 4 * 256)


def test_layout_halves_bytes_read_on_held_out_co_access():
    rng = np.random.default_rng(0)
    rows = 40_000
    groups = rng.permutation(rows).reshape(-1, 16)
    train = co_access_trace(rng, groups, 30_000)
    test = co_access_trace(rng, groups, 10_000)
    res = co_access_layout(*train, rows, 256, 4096)
    assert np.array_equal(np.sort(res.row_order), np.arange(rows))             # a permutation
    assert res.method == "co-access"
    slots = _order_to_slots(res.row_order)
    laid, used = read_bytes(*test, slots, res.rows_per_page, 256, 4096)
    idorder, used2 = read_bytes(*test, None, res.rows_per_page, 256, 4096)
    assert used == used2
    assert idorder / laid >= 2.0


def test_layout_never_worse_than_id_order_on_training_data():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 5000, 20_000)                      # no co-access structure at all
    off = np.arange(0, 20_001, 4)
    res = co_access_layout(ids, off, 5000, 128, 4096)
    assert res.read_amplification <= res.id_order_read_amplification
    assert np.array_equal(np.sort(res.row_order), np.arange(5000))


def test_layout_bad_input():
    with pytest.raises(InvalidInputError, match="index 9 at position 1"):
        co_access_layout(np.array([1, 9]), np.array([0, 2]), 5, 64)
    with pytest.raises(InvalidInputError, match="offsets"):
        co_access_layout(np.array([1, 2]), np.array([0, 3]), 5, 64)
