"""The scrub: `PageStore.verify()`, `sdm.tiers.store_verify.verify_store` and `sdm-plan verify PATH`
read every record and live page, list every fault (not just the first), write nothing, and exit 1
when anything is damaged."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import lmdb
import numpy as np
import pytest

from sdm.cli import main
from sdm.tiers.pagestore import PageStore
from sdm.tiers.store_verify import verify_store

V1 = Path(__file__).parent / "data" / "pagestore_v1"


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "s"
    w = np.arange(3000 * 8, dtype=np.float32).reshape(3000, 8)
    with PageStore.create(path, compression="zstd") as st:
        st.add_table("a", np.random.default_rng(0).standard_normal((3000, 8)).astype(np.float32))
        st.add_table("b", w[:500], row_order=np.arange(500)[::-1].copy())
        st.update_rows("a", np.array([1, 2]), w[:2])
    return path


def _tree(path) -> dict:
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in Path(path).rglob("*") if p.is_file()}


def test_clean_store(store, capsys):
    with PageStore.open(store) as st:
        report = st.verify()
        pages = sum(st.table_info(t).num_pages for t in st.tables)
    assert report.ok and report.tables == 2 and report.pages_checked == pages and report.damage == []
    assert report.format_version == 3 and report.records_checked >= 7
    assert main(["verify", str(store)]) == 0
    out = capsys.readouterr().out
    assert f"{pages} pages" in out and out.strip().endswith("clean")


def test_damaged_pages_all_listed_and_nothing_written(store, capsys):
    with PageStore.open(store) as st:
        f = st.table_info("a").data_file
        offs = st._tables["a"].page_table["offset"]
    with open(f, "r+b") as fh:
        for page in (2, 5):
            fh.seek(int(offs[page]) + 10)
            fh.write(b"\xaa\x55")
    os.unlink(store / "meta.lmdb" / "lock.mdb")
    before = _tree(store)
    report = verify_store(store)
    assert _tree(store) == before  # no lock file, no recovery, nothing touched
    assert not report.ok and report.damaged_pages == 2
    assert [(d.kind, d.table, d.page) for d in report.damage] == [("page", "a", 2), ("page", "a", 5)]
    assert main(["verify", str(store), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and [d["page"] for d in doc["damage"]] == [2, 5]


def test_damaged_record_reported_and_the_other_tables_still_scrubbed(store):
    env = lmdb.open(str(store / "meta.lmdb"), map_size=1 << 38)
    with env.begin(write=True) as txn:
        raw = bytearray(txn.get(b"table/b"))
        raw[40] ^= 0x10
        txn.put(b"table/b", bytes(raw))
    env.close()
    report = verify_store(store)
    kinds = [(d.kind, d.record) for d in report.damage]
    assert ("metadata", "table/b") in kinds and report.tables == 1 and report.pages_checked > 0
    assert not any("no table record" in d.message for d in report.damage)  # its segments are not orphans


def test_truncated_file_and_uncommitted_tail(store):
    with PageStore.open(store) as st:
        fa, fb = st.table_info("a").data_file, st.table_info("b").data_file
    os.truncate(fa, 1024)
    with open(fb, "ab") as fh:
        fh.write(b"\0" * 4096)  # what a crashed write leaves: a note, not damage, and not cut by verify
    size_b = os.path.getsize(fb)
    report = verify_store(store)
    assert [(d.kind, d.table) for d in report.damage] == [("short_file", "a")]
    assert any("4096 uncommitted bytes" in n for n in report.notes) and os.path.getsize(fb) == size_b


def test_format1_store_and_embedding_store_directory(tmp_path, capsys):
    from sdm import EmbeddingStore, TableSpec

    v1 = tmp_path / "v1"
    shutil.copytree(V1, v1)
    assert verify_store(v1).ok and verify_store(v1).format_version == 1
    es = tmp_path / "es"
    EmbeddingStore.create(es, [TableSpec("t", 600, 16)]).close()
    assert main(["verify", str(es)]) == 0
    assert f"{es / 'scm'}" in capsys.readouterr().out


def test_not_a_store(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 1
    assert "not a page store" in capsys.readouterr().err
