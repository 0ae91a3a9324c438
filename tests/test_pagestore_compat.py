"""Stores written by an earlier sdm still open: tests/data/pagestore_v1 was written by the landed
version (commit e1afbae, format version 1: no record checksums), tests/data/pagestore_v2 by the
version that seals every record (format 2), tests/data/pagestore_v3 by the version that shadows rows
(format 3), each with: zstd, a streamed table with a row_order, an update (dead pages in 1 and 2, a
delta page in 3). Add a fixture when FORMAT_VERSION changes, and keep the old ones beside it."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sdm.tiers.pagestore import PageStore

FIXTURES = {v: Path(__file__).parent / "data" / f"pagestore_v{v}" for v in (1, 2, 3)}


def _expected() -> tuple[np.ndarray, np.ndarray]:
    """What the fixture's writer stored (see the module docstring): a, updated at rows 7 and 299; b."""
    a = np.arange(300 * 4, dtype=np.float32).reshape(300, 4)
    a[[7, 299]] = a[[0, 1]] + 0.5
    b = (np.arange(200 * 24) % 251).astype(np.uint8).reshape(200, 24)
    return a, b


@pytest.mark.parametrize("format_version", sorted(FIXTURES))
def test_store_written_by_landed_version_opens_reads_and_updates(tmp_path, format_version):
    path = tmp_path / "s"
    shutil.copytree(FIXTURES[format_version], path)  # opening writes lock files; never into the source tree
    a, b = _expected()
    with PageStore.open(path) as st:
        assert st.tables == ["a", "b"] and st.version == 3 and st.compression == "zstd"
        assert st.device.name == "p4800x"  # the stored 3dxp device spec
        info = st.table_info("a")
        pages = (2, 2, 0) if format_version < 3 else (3, 0, 1)  # (pages, dead, delta): page vs row shadowing
        assert (info.num_pages, info.dead_pages, info.delta_pages) == pages and st.table_info("b").has_row_order
        assert np.array_equal(st.read_rows("a", np.arange(300)), a)
        assert np.array_equal(st.read_rows("b", np.arange(200)), b)
        np.testing.assert_array_equal(st.page_of("b", [0, 199]), [1, 0])  # laid out in reverse
        st.update_rows("b", np.array([3]), b[[4]])
        st.add_table("c", a[:10])
    b[3] = b[4]
    with PageStore.open(path) as st:
        assert st.version == 5
        assert np.array_equal(st.read_rows("b", np.arange(200)), b)
        assert np.array_equal(st.read_rows("c", np.arange(10)), a[:10])
        assert st.compact() > 0  # a's dead pages or delta page, b's delta page: all folded back
        assert all(st.table_info(n).dead_pages == st.table_info(n).delta_pages == 0 for n in st.tables)
        np.testing.assert_array_equal(st.page_of("b", [0, 199]), [1, 0])  # b back in its planned layout
        assert np.array_equal(st.read_rows("a", np.arange(300)), a)
        assert np.array_equal(st.read_rows("b", np.arange(200)), b) and not st.verify().damage
