"""Integrity of the page store's metadata: sealed records, bounds before use, recovery that never
shortens a file below its page table, failed opens that close what they opened and write nothing."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import lmdb
import numpy as np
import pytest

from sdm.core.errors import (
    CorruptionError,
    CorruptMetadataError,
    CorruptPageError,
    DiskFullError,
    SdmError,
    ShortFileError,
    StoreFormatError,
    StoreIOError,
    UnsupportedVersionError,
)
from sdm.tiers.pagestore import PageStore
from sdm.tiers.record_seal import RECORD_MAGIC, is_sealed, seal, unseal

ROOT = Path(__file__).resolve().parent.parent
V1 = Path(__file__).parent / "data" / "pagestore_v1"


def _env(path) -> lmdb.Environment:
    return lmdb.open(str(Path(path) / "meta.lmdb"), map_size=1 << 38)


def _get(path, key: bytes) -> bytes:
    env = _env(path)
    with env.begin() as txn:
        raw = bytes(txn.get(key))
    env.close()
    return raw


def _put(path, key: bytes, val: bytes) -> None:
    env = _env(path)
    with env.begin(write=True) as txn:
        txn.put(key, val)
    env.close()


def _edit_record(path, key: bytes, **changes) -> None:
    """Change fields of a JSON record and keep its seal valid (a bug, not a flip: bounds must catch it)."""
    raw = _get(path, key)
    doc = json.loads(unseal(key, raw, legacy_ok=True)[0])
    doc.update(changes)
    payload = json.dumps(doc).encode()
    _put(path, key, seal(key, payload) if is_sealed(raw) else payload)


@pytest.fixture
def v2(tmp_path):
    w = np.arange(3000 * 8, dtype=np.float32).reshape(3000, 8)
    path = tmp_path / "s"
    with PageStore.create(path) as st:
        st.add_table("a", w)
        st.add_table("b", w[:100], row_order=np.arange(100)[::-1].copy())
    return path, w


@pytest.fixture
def v1(tmp_path):
    path = tmp_path / "v1"
    shutil.copytree(V1, path)
    return path


def _sizes(path) -> dict:
    return {f: os.path.getsize(Path(path) / "data" / f) for f in os.listdir(Path(path) / "data")}


def test_hierarchy():
    for cls in (CorruptMetadataError, CorruptPageError, ShortFileError):
        assert issubclass(cls, CorruptionError) and issubclass(cls, SdmError)
    assert issubclass(UnsupportedVersionError, StoreFormatError)
    assert issubclass(DiskFullError, StoreIOError) and issubclass(DiskFullError, OSError)
    e = DiskFullError(errno.ENOSPC, "x: disk full", store="x", table="t")
    assert e.errno == errno.ENOSPC and e.table == "t" and str(e) == "x: disk full"


def test_new_store_seals_every_record(v2):
    path, _ = v2
    env = _env(path)
    with env.begin() as txn:
        for key, val in txn.cursor():
            assert (key == b"format_version") != is_sealed(bytes(val)), key  # format_version stays plain JSON
    env.close()
    assert json.loads(_get(path, b"format_version")) == 3


@pytest.mark.parametrize("key", [b"table/a", b"store", b"version", b"pt/{a}/0000000000", b"slot/{b}/0000000000"])
def test_every_bit_of_a_sealed_record_is_checked(v2, key):
    path, w = v2
    with PageStore.open(path) as st:
        ids = {n: os.path.basename(st.table_info(n).data_file)[:-6] for n in st.tables}
    key = key.replace(b"{a}", ids["a"].encode()).replace(b"{b}", ids["b"].encode())
    raw = _get(path, key)
    positions = range(len(raw)) if len(raw) < 400 else range(0, len(raw), 97)
    for pos in positions:
        bad = bytearray(raw)
        bad[pos] ^= 1 << (pos % 8)
        _put(path, key, bytes(bad))
        with pytest.raises(CorruptMetadataError) as ei:
            PageStore.open(path).close()
        assert ei.value.record == key.decode() and str(path) in str(ei.value)
    _put(path, key, raw)
    with PageStore.open(path) as st:
        assert np.array_equal(st.read_rows("a", np.arange(3000)), w)


def test_unsealed_record_in_a_format2_store_is_corrupt(v2):
    path, _ = v2
    _put(path, b"table/a", unseal(b"table/a", _get(path, b"table/a"), legacy_ok=False)[0])
    with pytest.raises(CorruptMetadataError, match=r"'table/a' has no checksum header"):
        PageStore.open(path)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"rows_per_page": 129}, r"rows_per_page 129; 4096 B pages hold 128 rows of 32 B"),
        ({"dim": 9}, r"rows of 36 B"),
        ({"dtype": "<f8"}, r"rows of 64 B"),
        ({"dtype": "O"}, r"not a fixed-width numeric dtype"),
        ({"num_pages": 25}, r"num_pages 25; 3000 rows at 128 per page need 24"),
        ({"page_bytes": 8192}, r"page_bytes 8192"),
        ({"num_rows": "3000"}, r"field 'num_rows' is '3000', not of type int"),
        ({"dim": True}, r"field 'dim' is True"),
        ({"name": "zz"}, r"holds table 'zz': the record of another table"),
        ({"data_file": "../../etc/passwd"}, r"expected data/t[0-9a-f]{12}\.pages"),
        ({"compression": "zstd"}, r"has compression 'zstd', the store None"),
        ({"committed_bytes": 3000 * 32 // 4096 * 4096}, r"past committed_bytes"),
        ({"committed_bytes": 1 << 40}, r"shorter than its 1099511627776 committed bytes"),
        ({"has_row_order": True}, r"'slot/t[0-9a-f]{12}/0000000000' is missing"),
    ],
)
def test_record_fields_bounded_before_use(v2, changes, match):
    path, _ = v2
    before = _sizes(path)
    _edit_record(path, b"table/a", **changes)
    with pytest.raises(CorruptionError, match=match) as ei:
        PageStore.open(path)
    assert ei.value.table in ("a", "zz") and ei.value.store == str(path)
    assert _sizes(path) == before  # refused, nothing cut


def test_smaller_committed_bytes_never_truncates(v1):
    """The landed version cut the data file to a smaller committed_bytes on open, for good."""
    before = _sizes(v1)
    _edit_record(v1, b"table/a", committed_bytes=512)
    for _ in range(2):
        with pytest.raises(CorruptMetadataError, match=r"table 'a'.*past committed_bytes 512"):
            PageStore.open(v1)
    assert _sizes(v1) == before


def test_truncated_data_file_refused_at_open_naming_table(v2):
    path, _ = v2
    with PageStore.open(path) as st:
        f = st.table_info("a").data_file
    os.truncate(f, 4096 * 5)
    with pytest.raises(ShortFileError, match=r"data file data/t[0-9a-f]{12}\.pages of table 'a' is 20480 bytes, "
                                             r"shorter than its 98304 committed bytes") as ei:
        PageStore.open(path)
    assert ei.value.table == "a" and os.path.getsize(f) == 4096 * 5


def test_truncated_after_open_is_short_file_naming_page(v2):
    path, _ = v2
    with PageStore.open(path) as st:
        os.truncate(st.table_info("a").data_file, 4096 * 5)
        with pytest.raises(ShortFileError, match=r"table 'a': page 10 is past the end of") as ei:
            st.read_rows("a", [10 * 128])
        assert ei.value.page == 10


def test_corrupt_page_names_store_table_page(v2):
    path, _ = v2
    with PageStore.open(path) as st:
        f = st.table_info("a").data_file
        with open(f, "r+b") as fh:
            fh.seek(7 * 4096 + 100)
            fh.write(b"\x55")
        with pytest.raises(CorruptPageError, match=r"table 'a': page 7 failed its xxh3_64 checksum") as ei:
            st.read_rows("a", [7 * 128 + 3])
        assert (ei.value.store, ei.value.table, ei.value.page) == (str(path), "a", 7)


RISKY = textwrap.dedent("""
    import json, sys, numpy as np
    from sdm.tiers.pagestore import PageStore
    from sdm.core.errors import SdmError
    path, engine = sys.argv[1], sys.argv[2]
    try:
        with PageStore.open(path, engine=engine) as st:
            st.read_rows("a", np.arange(3000))
        print("OPENED")
    except SdmError as exc:
        print(type(exc).__name__, exc)
""")


@pytest.mark.parametrize("engine", ["aio", "threads"])
@pytest.mark.parametrize("length", [2**30, 4097, 2**32 - 1])
def test_huge_page_length_never_reaches_the_read(v2, engine, length):
    """The landed version handed length 2**30 to the AIO read: `double free or corruption`."""
    path, _ = v2
    with PageStore.open(path) as st:
        tid = os.path.basename(st.table_info("a").data_file)[:-6]
    key = f"pt/{tid}/0000000000".encode()
    from sdm.tiers.page_format import PAGE_ENTRY_DTYPE

    pt = np.frombuffer(unseal(key, _get(path, key), legacy_ok=False)[0], PAGE_ENTRY_DTYPE).copy()
    pt["length"][3] = length
    _put(path, key, seal(key, pt.tobytes()))
    out = subprocess.run([sys.executable, "-c", RISKY, str(path), engine], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("CorruptMetadataError") and "page 3" in out.stdout, out.stdout


def test_page_reads_refuse_an_entry_longer_than_its_stride(v2):
    """Defence in depth: even a page table that skipped its checks never reads past a buffer slot."""
    path, _ = v2
    with PageStore.open(path) as st:
        t = st._tables["a"]
        bad = t.page_table.copy()
        bad["length"][2] = 2**30
        from dataclasses import replace

        st._tables["a"] = replace(t, page_table=bad)
        with pytest.raises(CorruptPageError, match=r"page 2 has length 1073741824 > page stride 4096"):
            st.read_rows("a", [2 * 128])


def test_format1_store_reads_then_moves_to_the_current_format_on_first_commit(v1):
    with PageStore.open(v1) as st:
        assert st.version == 3
        a = st.read_rows("a", np.arange(300))
    assert json.loads(_get(v1, b"format_version")) == 1
    assert not is_sealed(_get(v1, b"table/a"))  # reading writes nothing
    with PageStore.open(v1) as st:
        st.update_rows("b", np.array([3]), st.read_rows("b", [4]))
    assert json.loads(_get(v1, b"format_version")) == 3  # an older sdm now refuses it cleanly
    settings = json.loads(unseal(b"store", _get(v1, b"store"), legacy_ok=False)[0])
    assert settings["legacy_records"] is True and is_sealed(_get(v1, b"table/b"))
    assert not is_sealed(_get(v1, b"table/a"))  # untouched format-1 records stay, bound-checked
    with PageStore.open(v1) as st:
        assert np.array_equal(st.read_rows("a", np.arange(300)), a) and st.version == 4


def test_format2_store_moves_to_format3_without_legacy_records(tmp_path):
    path = tmp_path / "v2"
    shutil.copytree(V1.parent / "pagestore_v2", path)
    with PageStore.open(path) as st:
        st.update_rows("b", np.array([3]), st.read_rows("b", [4]))
    assert json.loads(_get(path, b"format_version")) == 3
    settings = json.loads(unseal(b"store", _get(path, b"store"), legacy_ok=False)[0])
    assert "legacy_records" not in settings  # its records were all sealed: an unsealed one stays corrupt


def test_unsupported_version(v2):
    path, _ = v2
    _put(path, b"format_version", b"4")
    with pytest.raises(UnsupportedVersionError, match=r"format version 4 is not supported") as ei:
        PageStore.open(path)
    assert ei.value.found == 4 and ei.value.record == "format_version"
    _put(path, b"format_version", b"\xff\xfe")
    with pytest.raises(UnsupportedVersionError):
        PageStore.open(path)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_failed_opens_close_what_they_opened(v2, tmp_path, monkeypatch):
    import sdm.tiers.pagestore as ps

    path, _ = v2
    with PageStore.open(path) as st:
        f = st.table_info("b").data_file
    size = os.path.getsize(f)
    real = ps.open_direct

    def failing(p, **kw):  # b's data file fails to open, after a's was: a's descriptor must be closed
        if os.path.samefile(p, f):
            raise OSError(errno.EIO, "injected")
        return real(p, **kw)

    monkeypatch.setattr(ps, "open_direct", failing)
    with pytest.raises(StoreIOError):
        PageStore.open(path)
    before = _fds()
    for _ in range(20):
        with pytest.raises(StoreIOError, match=r"opening data/t[0-9a-f]{12}\.pages failed \(table 'b'\)"):
            PageStore.open(path)
    monkeypatch.setattr(ps, "open_direct", real)
    os.truncate(f, 1024)
    for _ in range(10):
        with pytest.raises(ShortFileError, match=rf"is 1024 bytes, shorter than its {size} committed bytes"):
            PageStore.open(path)
        with pytest.raises(StoreFormatError):
            PageStore.open(tmp_path / "missing")
    _put(path, b"version", b"junk")
    for _ in range(10):
        with pytest.raises(CorruptMetadataError):
            PageStore.open(path)
    assert _fds() == before


def test_failed_create_closes_its_metadata(tmp_path):
    before = _fds()
    for i in range(10):
        with pytest.raises(SdmError):
            PageStore.create(tmp_path / f"c{i}", queue_depth=0)
    assert _fds() == before


@pytest.mark.parametrize("what", ["stray_lmdb", "garbage_mdb", "empty_mdb", "stray_root_mdb"])
def test_open_never_writes_into_a_directory_that_is_not_a_store(tmp_path, what):
    d = tmp_path / "d"
    (d / "meta.lmdb").mkdir(parents=True)
    if what == "stray_lmdb":
        env = lmdb.open(str(d / "meta.lmdb"))
        with env.begin(write=True) as txn:
            txn.put(b"other", b"1")
        env.close()
        os.unlink(d / "meta.lmdb" / "lock.mdb")
    elif what == "garbage_mdb":
        (d / "meta.lmdb" / "data.mdb").write_bytes(os.urandom(20000))
    elif what == "empty_mdb":
        (d / "meta.lmdb" / "data.mdb").write_bytes(b"")
    else:
        (d / "data.mdb").write_bytes(b"x" * 8192)
    before = sorted(str(p.relative_to(d)) for p in d.rglob("*"))
    with pytest.raises(StoreFormatError, match=r"not an sdm page store"):
        PageStore.open(d)
    assert sorted(str(p.relative_to(d)) for p in d.rglob("*")) == before


def test_unknown_key_and_orphan_segments_refused_nothing_removed(v2):
    path, _ = v2
    before = _sizes(path)
    raw = _get(path, b"table/a")
    env = _env(path)
    with env.begin(write=True) as txn:  # a damaged key: the record vanishes from table/
        txn.delete(b"table/a")
        txn.put(b"tabme/a", raw)
    env.close()
    with pytest.raises(CorruptMetadataError, match=r"unknown metadata key b'tabme/a'"):
        PageStore.open(path)
    env = _env(path)
    with env.begin(write=True) as txn:
        txn.delete(b"tabme/a")
    env.close()
    with pytest.raises(CorruptMetadataError, match=r"page-table segments of table id t[0-9a-f]{12} have no table record"):
        PageStore.open(path)
    assert _sizes(path) == before  # the landed version deleted a's data file here


def test_magic_cannot_start_a_format1_value():
    assert RECORD_MAGIC[0] not in b"{[\"0123456789-tfn " and RECORD_MAGIC[7] == 1


def test_zstd_page_that_passes_its_checksum_but_does_not_decode(tmp_path):
    path = tmp_path / "z"
    with PageStore.create(path, compression="zstd") as st:
        st.add_table("a", np.zeros((3000, 8), np.float32))
        f, tid = st.table_info("a").data_file, os.path.basename(st.table_info("a").data_file)[:-6]
    key = f"pt/{tid}/0000000000".encode()
    from sdm.tiers.page_format import PAGE_ENTRY_DTYPE, checksum

    pt = np.frombuffer(unseal(key, _get(path, key), legacy_ok=False)[0], PAGE_ENTRY_DTYPE).copy()
    off, n = int(pt["offset"][4]), int(pt["length"][4])
    junk = bytes(range(n))
    with open(f, "r+b") as fh:
        fh.seek(off)
        fh.write(junk)
    pt["checksum"][4] = checksum(junk)  # a page whose checksum matches yet is not a zstd frame
    _put(path, key, seal(key, pt.tobytes()))
    with PageStore.open(path) as st:
        with pytest.raises(CorruptPageError, match=r"table 'a': page 4 does not decode") as ei:
            st.read_rows("a", [4 * 128])
        assert ei.value.page == 4
        assert [(d.page, d.message.split(" (")[0]) for d in st.verify().damage] == [(4, "table 'a': page 4 does not decode")]


def test_data_directory_missing(v2):
    path, _ = v2
    shutil.rmtree(path / "data")
    with pytest.raises(ShortFileError, match=r"of table 'a' is missing"):
        PageStore.open(path)
