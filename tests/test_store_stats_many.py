"""StoreStats.record_many (the table-batched lookup's one pass) counts exactly as record per table."""
from __future__ import annotations

import numpy as np

from sdm.runtime.store_stats import LookupRecord, StoreStats


def _rec(k):
    r = LookupRecord()
    r.tiers["dram"].hits = r.tiers["dram"].rows = 10 + k
    r.tiers["scm"].reads = k
    r.tiers["scm"].measured_s = 1e-4 * k
    r.modelled_s = 2e-6 * k
    return r


def test_record_many_equals_record_each():
    names = ["a", "b", "c"]
    one, many = StoreStats(names), StoreStats(names)
    calls = [(names[k % 3], _rec(k), 100 + k, 10.0 ** -(k % 7)) for k in range(20)]
    for c in calls:
        one.record(*c)
    many.record_many(calls[:7])
    many.record_many(calls[7:])
    many.record_many([])
    a, b = one._t, many._t
    for n in names:
        sa, sb = a[n], b[n]
        assert (sa.lookups, sa.indices, sa.measured_s, sa.modelled_s) == (sb.lookups, sb.indices, sb.measured_s, sb.modelled_s)
        assert np.array_equal(sa.hist, sb.hist) and np.array_equal(sa.recent, sb.recent)
        assert np.array_equal(sa.recent_modelled, sb.recent_modelled)
        assert all(sa.tiers[t] == sb.tiers[t] for t in sa.tiers)
