"""SCM page store: round trips, layout, compression, checksums, clock charges, concurrent readers."""
from __future__ import annotations

import errno
import os
import tempfile
import threading
import time
import tracemalloc

import numpy as np
import pytest

from sdm.core.errors import CorruptionError
from sdm.tiers import page_writes
from sdm.tiers import pagestore as ps
from sdm.tiers.clock import Clock
from sdm.hardware.presets import device
from sdm.tiers.direct_io import DirectIOWarning, resident_bytes
from sdm.tiers.direct_io import filesystem_type as direct_io_fs
from sdm.tiers.pagestore import PageStore


@pytest.fixture
def weights():
    return np.random.default_rng(0).standard_normal((5000, 16)).astype(np.float32)


@pytest.mark.parametrize("engine", ["aio", "threads"])
def test_round_trip_exact(tmp_path, weights, engine):
    with PageStore.create(tmp_path / "s", "nand", engine=engine) as st:
        st.add_table("t", weights)
        assert st.engine == engine and st.direct_io
        ids = np.random.default_rng(1).integers(0, len(weights), 3000)  # repeats and shared pages
        out = st.read_rows("t", ids)
        assert out.dtype == np.float32 and out.shape == (3000, 16)
        assert np.array_equal(out, weights[ids])
        assert np.array_equal(st.read_rows("t", ids[::-1]), weights[ids[::-1]])  # order as given
        assert st.read_rows("t", np.array([], dtype=np.int64)).shape == (0, 16)
    with PageStore.open(tmp_path / "s", engine=engine) as st:  # survives reopen
        assert st.tables == ["t"] and st.version == 1
        assert np.array_equal(st.read_rows("t", np.arange(len(weights))), weights)


def test_rows_never_straddle_pages(tmp_path):
    w = np.arange(1000 * 25, dtype=np.float32).reshape(1000, 25)  # 100 B rows: 40 per 4 KiB page
    with PageStore.create(tmp_path / "s") as st:
        st.add_table("t", w)
        info = st.table_info("t")
        assert info.rows_per_page == 40 and info.num_pages == 25
        assert info.stored_bytes == 25 * 4096 and os.path.getsize(info.data_file) == 25 * 4096
        np.testing.assert_array_equal(st.page_of("t", [0, 39, 40, 999]), [0, 0, 1, 24])
        assert np.array_equal(st.read_rows("t", np.arange(1000)), w)


def test_wide_rows_get_whole_multiple_pages(tmp_path):
    w = np.random.default_rng(2).standard_normal((30, 1500)).astype(np.float32)  # 6000 B rows
    with PageStore.create(tmp_path / "s") as st:
        st.add_table("wide", w)
        info = st.table_info("wide")
        assert info.page_bytes == 8192 and info.rows_per_page == 1
        assert np.array_equal(st.read_rows("wide", [29, 0, 7]), w[[29, 0, 7]])


def test_row_order_layout(tmp_path, weights):
    order = np.random.default_rng(3).permutation(len(weights))
    with PageStore.create(tmp_path / "s") as st:
        st.add_table("arr", weights, row_order=order)
        chunks = (weights[i : i + 333] for i in range(0, len(weights), 333))
        st.add_table("streamed", chunks, row_order=order)  # spooled to disk, then laid out
        for name in ("arr", "streamed"):
            info = st.table_info(name)
            assert info.has_row_order
            # slot p holds row order[p]: the rows of page 0 are order[:rows_per_page]
            np.testing.assert_array_equal(st.page_of(name, order[: info.rows_per_page]), 0)
            ids = np.random.default_rng(4).integers(0, len(weights), 2000)
            assert np.array_equal(st.read_rows(name, ids), weights[ids])
        assert not os.listdir(tmp_path / "s" / ps.SPOOL_DIR)
    with PageStore.open(tmp_path / "s") as st:
        assert np.array_equal(st.read_rows("streamed", np.arange(len(weights))), weights)


def test_streamed_ingest_odd_chunks_and_dtypes(tmp_path):
    rng = np.random.default_rng(5)
    h = rng.standard_normal((777, 8)).astype(np.float16)
    q = rng.integers(0, 255, (1001, 24), dtype=np.uint8)  # int8 row-wise: 16 codes + scale + bias bytes
    sizes = [1, 2, 500, 0, 13, 261]
    with PageStore.create(tmp_path / "s") as st:
        cuts = np.cumsum([0] + sizes)
        st.add_table("h", (h[a:b] for a, b in zip(cuts[:-1], cuts[1:])))
        st.add_table("q", iter([q[:10], q[10:]]), num_rows=1001, dim=24, dtype=np.uint8)
        assert np.array_equal(st.read_rows("h", np.arange(777)), h)
        assert np.array_equal(st.read_rows("q", np.arange(1001)[::-1]), q[::-1])


def test_ingest_streams_memmap_with_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(page_writes, "INGEST_CHUNK_BYTES", 1 << 20)
    src = np.lib.format.open_memmap(tmp_path / "w.npy", mode="w+", dtype=np.float32, shape=(96 * 1024, 64))
    src[:] = np.arange(64, dtype=np.float32)  # 24 MiB table
    src.flush()
    with PageStore.create(tmp_path / "s") as st:
        tracemalloc.start()
        st.add_table("t", src)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 8 << 20, f"ingest of a 24 MiB memmap peaked at {peak / 2**20:.1f} MiB"
        ids = np.array([0, 5000, 98303])
        assert np.array_equal(st.read_rows("t", ids), np.asarray(src[ids]))


def test_update_rows_shadow_pages(tmp_path, weights):
    with PageStore.create(tmp_path / "s") as st:
        st.add_table("t", weights)
        info0 = st.table_info("t")
        ids = np.array([3, 4, 1000, 4999])
        new = np.full((4, 16), 7.5, dtype=np.float32)
        st.update_rows("t", ids, new)
        expect = weights.copy()
        expect[ids] = new
        assert st.version == 2
        assert np.array_equal(st.read_rows("t", np.arange(len(weights))), expect)
        info1 = st.table_info("t")
        # four rows on three pages: packed into one appended delta page (row shadowing); the home
        # pages are never overwritten, and no page became dead whole
        assert info1.delta_pages == 1 and info1.dead_pages == 0 and info1.num_pages == info0.num_pages + 1
        assert info1.stored_bytes == info0.stored_bytes + 4096
        assert np.array_equal(st.page_of("t", ids), [info0.num_pages] * 4)
    with PageStore.open(tmp_path / "s") as st:
        assert np.array_equal(st.read_rows("t", np.arange(len(weights))), expect)


@pytest.mark.parametrize("page_bytes", [4096, 16384])
def test_zstd_compression(tmp_path, page_bytes):
    rng = np.random.default_rng(6)
    q = np.clip(np.round(rng.standard_normal((4000, 64)) * 8 + 128), 0, 255).astype(np.uint8)
    noise = rng.integers(0, 256, (512, 64), dtype=np.uint8)  # full pages of noise: stored raw
    with PageStore.create(tmp_path / "s", compression="zstd", page_bytes=page_bytes) as st:
        st.add_table("q", q)
        st.add_table("noise", noise)
        ratio = st.table_info("q").compression_ratio
        assert ratio > 1.2, ratio
        assert st.table_info("noise").compression_ratio == pytest.approx(1.0)
        ids = rng.integers(0, 4000, 1000)
        assert np.array_equal(st.read_rows("q", ids), q[ids])
        assert np.array_equal(st.read_rows("noise", np.arange(512)), noise)
        st.update_rows("q", np.array([1, 2]), np.zeros((2, 64), np.uint8))
        assert not st.read_rows("q", [1, 2]).any() and np.array_equal(st.read_rows("q", [3]), q[[3]])
    with PageStore.open(tmp_path / "s") as st:
        assert np.array_equal(st.read_rows("q", np.arange(3, 4000)), q[3:])


def test_checksum_catches_flipped_byte(tmp_path, weights):
    with PageStore.create(tmp_path / "s") as st:
        st.add_table("t", weights)
        info = st.table_info("t")
        page = int(st.page_of("t", [2500])[0])
    with open(info.data_file, "r+b") as f:  # flip one byte inside that page
        f.seek(page * 4096 + 100)
        b = f.read(1)
        f.seek(page * 4096 + 100)
        f.write(bytes([b[0] ^ 0x01]))
    with PageStore.open(tmp_path / "s") as st:
        with pytest.raises(CorruptionError, match=rf"table 't': page {page} failed"):
            st.read_rows("t", np.array([0, 2500, 4000]))
        # an update never reads the page (row shadowing) and so cannot launder it: the row moves to a
        # delta page, the page's other rows still fail, and compaction refuses to carry the page over
        st.update_rows("t", np.array([2500]), weights[[0]])
        assert np.array_equal(st.read_rows("t", [2500]), weights[[0]])
        with pytest.raises(CorruptionError, match=rf"table 't': page {page} failed"):
            st.read_rows("t", np.array([2501]))
        with pytest.raises(CorruptionError, match=rf"page {page} failed its xxh3_64 checksum during compaction"):
            st.compact("t")
        assert st.table_info("t").delta_pages == 1  # nothing changed
        other = np.array([0, 4000, 2500])  # other pages still read fine
        assert np.array_equal(st.read_rows("t", other), weights[[0, 4000, 0]])


def test_clock_charges_measured_and_modelled(tmp_path, weights):
    clock = Clock()
    with PageStore.create(tmp_path / "s", "3dxp", clock=clock, queue_depth=16) as st:
        st.add_table("t", weights)
        ids = np.array([0, 1, 2, 64, 65, 4999])  # 64 rows per page: pages 0, 1, 78
        st.read_rows("t", ids)
        c = clock.snapshot()["scm"]
        assert c.ops == 3 and c.bytes == 3 * 4096
        assert c.modelled_s == pytest.approx(device("3dxp").read_time_s(3, 4096, 16))
        assert c.measured_s > 0 and c.injected_s == 0
        assert st.device.name == device("3dxp").name


def test_read_charge_is_the_clock_charge(tmp_path, weights):
    """One SCM time account: what read_rows_charged returns is exactly what the clock was charged."""
    clock = Clock()
    with PageStore.create(tmp_path / "s", "nand", clock=clock, queue_depth=8) as st:
        st.add_table("t", weights)
        ids = np.array([5, 70, 70, 4000, 6])  # 64 rows per page: pages 0, 1, 62
        rows, charge = st.read_rows_charged("t", ids)
        assert np.array_equal(rows, weights[ids])
        c = clock.snapshot()["scm"]
        assert (charge.ops, charge.bytes) == (c.ops, c.bytes) == (3, 3 * 4096)
        assert charge.measured_s == c.measured_s > 0 and charge.modelled_s == c.modelled_s
        assert charge.modelled_s == pytest.approx(device("nand").read_time_s(3, 4096, 8))
        st.update_rows("t", np.array([0, 4999]), weights[[1, 2]])  # reads nothing; one delta page written
        assert clock.snapshot()["scm"].ops == 3 and clock.snapshot()["scm_write"].ops == 1
        empty_rows, empty = st.read_rows_charged("t", np.array([], np.int64))
        assert empty_rows.shape == (0, 16) and empty.ops == 0 and clock.snapshot()["scm"].ops == 3


def test_inject_makes_wall_time_follow_the_model(tmp_path, weights):
    slow = device("nand").replace(peak_iops=1000.0)  # 1 ms per read whatever the depth
    with PageStore.create(tmp_path / "s", slow, inject=True) as st:
        st.add_table("t", weights)
        info = st.table_info("t")
        ids = np.arange(info.num_pages) * info.rows_per_page  # one row from each of 79 pages
        t0 = time.perf_counter()
        st.read_rows("t", ids)
        wall = time.perf_counter() - t0
        c = st.clock.snapshot()["scm"]
        assert c.modelled_s >= 0.07 and wall >= c.modelled_s * 0.95
        assert c.injected_s > 0 and c.measured_s >= c.modelled_s * 0.95
    with PageStore.open(tmp_path / "s") as st:  # the configured medium, overrides included, is kept
        assert st.device == slow


@pytest.mark.parametrize("engine", ["aio", "threads"])
def test_concurrent_readers(tmp_path, weights, engine):
    errors = []
    with PageStore.create(tmp_path / "s", engine=engine, queue_depth=8) as st:
        st.add_table("t", weights)

        def reader(seed):
            rng = np.random.default_rng(seed)
            try:
                for _ in range(20):
                    ids = rng.integers(0, len(weights), int(rng.integers(1, 400)))
                    if not np.array_equal(st.read_rows("t", ids), weights[ids]):
                        errors.append(f"thread {seed}: wrong rows")
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(f"thread {seed}: {exc!r}")

        threads = [threading.Thread(target=reader, args=(s,)) for s in range(6)]
        for t in threads:
            t.start()
        # a writer updating other rows meanwhile: readers see old or new pages, never a mix
        st.update_rows("t", np.array([0]), weights[[0]])
        for t in threads:
            t.join()
    assert not errors, errors


def test_data_files_stay_out_of_page_cache(tmp_path):
    w = np.random.default_rng(7).standard_normal((20000, 64)).astype(np.float32)  # 5 MiB
    with PageStore.create(tmp_path / "s") as st:
        st.add_table("t", w)
        st.read_rows("t", np.arange(0, 20000, 7))
        resident, size = resident_bytes(st.table_info("t").data_file)
    assert size == 1250 * 4096
    assert resident < size // 20, f"{resident} of {size} bytes cached despite O_DIRECT"


def test_o_direct_refused_falls_back_with_warning(tmp_path, weights, monkeypatch):
    from sdm.tiers import direct_io

    real_open = os.open

    def refusing_open(path, flags, *a):  # what tmpfs before Linux 6.6 and some overlays do
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *a)

    monkeypatch.setattr(direct_io.os, "open", refusing_open)
    with pytest.warns(DirectIOWarning, match="page cache"):
        with PageStore.create(tmp_path / "s") as st:
            st.add_table("t", weights)
            assert not st.direct_io
            assert np.array_equal(st.read_rows("t", [1, 2]), weights[[1, 2]])


def test_tmpfs_warns_data_is_in_ram(weights):
    if direct_io_fs("/dev/shm") != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        with pytest.warns(DirectIOWarning, match="RAM"):
            with PageStore.create(os.path.join(d, "s")) as st:
                st.add_table("t", weights)
                assert np.array_equal(st.read_rows("t", [3]), weights[[3]])
