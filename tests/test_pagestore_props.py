"""SCM page store property test: any table, layout, page size and compression reads back bit-exact."""
from __future__ import annotations

import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdm.tiers.pagestore import PageStore


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    num_rows=st.integers(1, 700),
    dim=st.integers(1, 1200),
    dtype=st.sampled_from(["<f4", "<f2", "u1", "<i8"]),
    page_bytes=st.sampled_from([4096, 8192]),
    compression=st.sampled_from([None, "zstd"]),
    layout=st.booleans(),
    chunked=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_round_trip_and_update(num_rows, dim, dtype, page_bytes, compression, layout, chunked, seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 50, (num_rows, dim)).astype(dtype)  # low entropy so zstd pages occur too
    order = rng.permutation(num_rows) if layout else None
    rows = [w[i : i + 97] for i in range(0, num_rows, 97)] if chunked else w
    with tempfile.TemporaryDirectory() as d, PageStore.create(
        d + "/s", page_bytes=page_bytes, compression=compression, queue_depth=4
    ) as store:
        store.add_table("t", rows, row_order=order)
        info = store.table_info("t")
        assert info.rows_per_page * info.row_bytes <= info.page_bytes  # no row straddles a page
        ids = rng.integers(0, num_rows, int(rng.integers(0, 300)))
        assert np.array_equal(store.read_rows("t", ids), w[ids])
        upd = rng.permutation(num_rows)[: max(1, num_rows // 5)]
        vals = rng.integers(0, 50, (len(upd), dim)).astype(dtype)
        store.update_rows("t", upd, vals)
        w[upd] = vals
        assert np.array_equal(store.read_rows("t", np.arange(num_rows)), w)
