"""Issue 12: identical tables are treated alike. A tier boundary inside rows of one density (the
tail bands of identical tables) splits them in proportion, not the first table whole and the rest
nothing (seen: one table's 150M rows in DRAM, 25 identical tables ~269k rows each)."""
from __future__ import annotations

import numpy as np
import pytest

from sdm.core.spec import TableSpec
from sdm.placement.proposers import RowLevel
from sdm.placement.types import TableHotness, TierSpec


def _tier(name, cap):
    return TierSpec(name, int(cap), 64, 1e-6, 1e6, 1e10)


def test_identical_tables_share_a_tier_boundary_evenly():
    n_tables, rows = 6, 1_000_000
    tables = [TableSpec(f"t{i}", rows, 16) for i in range(n_tables)]
    # a few tracked hot rows, then one tail band of uniform density per table
    hot = [TableHotness(f"t{i}", rows, np.arange(10), np.full(10, 50.0), 1e5, 1000) for i in range(n_tables)]
    cap = int(2.5 * rows * 64)                       # room for 2.5 of the 6 tables' rows
    pl = RowLevel().propose(tables, hot, [_tier("dram", cap), _tier("scm", 10**12)])
    placed = [sum(r.count for _n, _c, r in pl.tables[t.name].pinned) for t in tables]
    assert sum(placed) * 64 <= cap
    assert sum(placed) >= 0.99 * 2.5 * rows
    assert max(placed) - min(placed) <= 2, placed    # evenly: ~416k rows each
    lk = [pl.tables[t.name].lookups_by_tier["dram"] for t in tables]
    assert max(lk) == pytest.approx(min(lk), rel=1e-4)


def test_identical_tables_share_tied_tracked_rows_evenly():
    """Tracked rows of equal count (e.g. every row seen once) cut by a boundary: every table gets
    the same share, not the first table all of them."""
    n_tables, rows = 5, 100_000
    tables = [TableSpec(f"t{i}", rows, 16) for i in range(n_tables)]
    ids = np.arange(0, rows, 2)                                  # 50k tracked rows, each read once
    hot = [TableHotness(f"t{i}", rows, ids, np.ones(ids.size), 0.0, 1000) for i in range(n_tables)]
    cap = int(1.5 * ids.size * 64)                               # 1.5 tables' worth of tied rows
    pl = RowLevel().propose(tables, hot, [_tier("dram", cap), _tier("scm", 10**12)])
    placed = [sum(r.count for _n, _c, r in pl.tables[t.name].pinned) for t in tables]
    assert sum(placed) * 64 <= cap and sum(placed) >= 0.99 * 1.5 * ids.size
    assert max(placed) - min(placed) <= 2, placed
