"""LMDB metadata of the SCM page store: format version, table specs, page tables, committed version.

Layout of keys (values are JSON unless noted):
  b"format_version"            -> int
  b"store"                     -> store settings (page_bytes, io_align_bytes, compression, device)
  b"version"                   -> committed version, +1 per commit
  b"table/<name>"              -> table record (spec, data file, committed_bytes, dead_pages, ...)
  b"pt/<id>/<segment:010d>"    -> raw PAGE_ENTRY_DTYPE array of up to SEGMENT_PAGES entries
  b"slot/<id>/<segment:010d>"  -> raw int64 slot of each row, SEGMENT_ROWS per key (only with row_order)

A commit writes a table's record, the page-table segments it touched and the new version in one LMDB
write transaction, so a reader sees either all of a change or none of it. Page tables are split into
segments so an update of a few rows rewrites a few kilobytes, not the whole table's index.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import lmdb
import numpy as np

from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.tiers.page_format import PAGE_ENTRY_DTYPE

FORMAT_VERSION = 1
META_DIR = "meta.lmdb"
SEGMENT_PAGES = 4096   # 96 KiB of page-table entries per LMDB value
SEGMENT_ROWS = 65536   # 512 KiB of int64 slots per LMDB value
MAP_SIZE_BYTES = 1 << 38  # address space reserved for the LMDB map; the file only grows as used


def _seg_key(kind: str, table_id: str, seg: int) -> bytes:
    return f"{kind}/{table_id}/{seg:010d}".encode()


@dataclass
class TableRecord:
    """What the store remembers about one table (JSON in LMDB)."""

    name: str
    table_id: str          # data file stem and key prefix; names may hold any characters, ids do not
    num_rows: int
    dim: int
    dtype: str             # numpy dtype string, e.g. "<f4"
    page_bytes: int
    rows_per_page: int
    num_pages: int
    compression: str | None
    data_file: str         # relative to the store directory
    committed_bytes: int   # data file length at the last commit; anything beyond it is uncommitted
    dead_pages: int = 0    # stored pages no longer referenced (replaced by updates)
    has_row_order: bool = False

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "TableRecord":
        return cls(**json.loads(raw))


class StoreMeta:
    """The LMDB environment of one store directory."""

    def __init__(self, store_dir: str, *, create: bool = False) -> None:
        self.store_dir = str(store_dir)
        meta = os.path.join(self.store_dir, META_DIR)
        if not create:
            if not os.path.isdir(self.store_dir):
                raise StoreFormatError(f"{self.store_dir}: not an sdm page store (no such directory)")
            if not os.path.isfile(os.path.join(meta, "data.mdb")):
                raise StoreFormatError(f"{self.store_dir}: not an sdm page store (no {META_DIR}/data.mdb)")
        try:
            self.env = lmdb.open(meta, map_size=MAP_SIZE_BYTES, subdir=True, create=create,
                                 max_dbs=0, sync=True, metasync=True, readahead=False)
        except lmdb.Error as exc:
            if "already open in this process" in str(exc):
                raise InvalidInputError(f"{self.store_dir}: store is already open in this process; "
                                        "share that PageStore (it is thread-safe)") from exc
            raise StoreFormatError(f"{self.store_dir}: cannot open store metadata: {exc}") from exc
        self.env.reader_check()  # free reader slots of processes that died (kill -9) holding them
        if not create:
            with self.env.begin() as txn:
                raw = txn.get(b"format_version")
            if raw is None:
                self.env.close()
                raise StoreFormatError(f"{self.store_dir}: not an sdm page store (no format_version)")
            found = json.loads(raw)
            if found != FORMAT_VERSION:
                self.env.close()
                raise StoreFormatError(
                    f"{self.store_dir}: store format version {found} is not supported "
                    f"(this sdm reads version {FORMAT_VERSION})"
                )

    def init_store(self, settings: dict) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(b"store", json.dumps(settings).encode())
            txn.put(b"version", b"0")
            txn.put(b"format_version", json.dumps(FORMAT_VERSION).encode())

    def settings(self) -> dict:
        with self.env.begin() as txn:
            return json.loads(txn.get(b"store"))

    def version(self) -> int:
        with self.env.begin() as txn:
            return int(txn.get(b"version"))

    def records(self) -> dict[str, TableRecord]:
        out = {}
        with self.env.begin() as txn:
            cur = txn.cursor()
            if cur.set_range(b"table/"):
                for key, val in cur:
                    if not key.startswith(b"table/"):
                        break
                    rec = TableRecord.from_json(val)
                    out[rec.name] = rec
        return out

    def _load_array(self, kind: str, table_id: str, dtype: np.dtype, count: int) -> np.ndarray:
        prefix = f"{kind}/{table_id}/".encode()
        parts = []
        with self.env.begin() as txn:
            cur = txn.cursor()
            if cur.set_range(prefix):
                for key, val in cur:
                    if not key.startswith(prefix):
                        break
                    parts.append(np.frombuffer(val, dtype=dtype))
        arr = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
        if len(arr) != count:
            raise StoreFormatError(f"{self.store_dir}: {kind} of table {table_id} has {len(arr)} entries, "
                                   f"expected {count}")
        return arr

    def page_table(self, rec: TableRecord) -> np.ndarray:
        return self._load_array("pt", rec.table_id, PAGE_ENTRY_DTYPE, rec.num_pages).copy()

    def slot_of(self, rec: TableRecord) -> np.ndarray | None:
        if not rec.has_row_order:
            return None
        return self._load_array("slot", rec.table_id, np.dtype(np.int64), rec.num_rows)

    def commit(self, rec: TableRecord, page_table: np.ndarray, pages_touched: np.ndarray | None = None,
               slot_of: np.ndarray | None = None) -> int:
        """Write `rec`, the page-table segments holding `pages_touched` (all when None) and, for a new
        table, its slot map, in one transaction. Returns the new committed version."""
        if pages_touched is None:
            segs = range(-(-len(page_table) // SEGMENT_PAGES))
        else:
            segs = np.unique(np.asarray(pages_touched) // SEGMENT_PAGES).tolist()
        with self.env.begin(write=True) as txn:
            for s in segs:
                seg = page_table[s * SEGMENT_PAGES : (s + 1) * SEGMENT_PAGES]
                txn.put(_seg_key("pt", rec.table_id, s), seg.tobytes())
            if slot_of is not None:
                for s in range(-(-len(slot_of) // SEGMENT_ROWS)):
                    chunk = np.ascontiguousarray(slot_of[s * SEGMENT_ROWS : (s + 1) * SEGMENT_ROWS], np.int64)
                    txn.put(_seg_key("slot", rec.table_id, s), chunk.tobytes())
            txn.put(f"table/{rec.name}".encode(), rec.to_json())
            version = int(txn.get(b"version")) + 1
            txn.put(b"version", str(version).encode())
        return version

    def close(self) -> None:
        self.env.close()
