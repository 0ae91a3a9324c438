"""LMDB metadata of the SCM page store: format version, table specs, page tables, committed version.

Layout of keys (values sealed by `record_seal`: a checksum over key and payload; payload JSON unless noted):
  b"format_version"            -> int, plain JSON (never sealed: an older sdm reads it and refuses cleanly)
  b"store"                     -> store settings (page_bytes, io_align_bytes, compression, device)
  b"version"                   -> committed version, +1 per commit
  b"table/<name>"              -> table record (spec, data file, committed_bytes, dead_pages, ...)
  b"pt/<id>/<segment:010d>"    -> raw PAGE_ENTRY_DTYPE array of up to SEGMENT_PAGES entries
  b"slot/<id>/<segment:010d>"  -> raw int64 planned (home) slot of each row, SEGMENT_ROWS per key (only
                                  with row_order); updates never rewrite it
  b"delta/<id>/<page:010d>"    -> raw int64 ids of the rows one update packed into delta pages from
                                  `page` on (row i in slot page x rows_per_page + i): the log that moves
                                  rows out of their home slots until compaction (page_writes.update)

Format versions: 1 (the landed version) sealed nothing. 2 seals every record. A format-1 store opened
by this sdm is read as it is (unsealed records accepted, their fields bound-checked all the same,
slot maps checked to be permutations); its first commit moves it to format 2 in the same transaction
(format_version 2, settings sealed and marked `legacy_records`), so an older sdm then refuses it with
"version 2 is not supported" rather than misreading sealed values. In a store created as format 2
or later (no `legacy_records`), a record without a seal is corrupt. 3 adds row-level shadowing: the
`delta_pages` field and `delta/` keys (an older sdm would misread a table whose rows moved into delta
pages, so the first commit into a format-1 or 2 store moves it to 3 the same way).

A commit writes a table's record, the page-table segments it touched and the new version in one LMDB
write transaction, so a reader sees either all of a change or none of it. Page tables are split into
segments so an update of a few rows rewrites a few kilobytes, not the whole table's index. Nothing
read from LMDB is used before its seal and bounds (`record_checks`) are checked.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import lmdb
import numpy as np

from sdm.core.errors import CorruptMetadataError, InvalidInputError, StoreFormatError, UnsupportedVersionError
from sdm.tiers.os_faults import store_fault, store_io
from sdm.tiers.page_format import PAGE_ENTRY_DTYPE
from sdm.tiers.record_checks import check_delta_log, check_page_table, check_record, check_settings, check_slot_map
from sdm.tiers.record_seal import SealError, seal, seal_array, unseal

FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
META_DIR = "meta.lmdb"
SEGMENT_PAGES = 4096   # 96 KiB of page-table entries per LMDB value
SEGMENT_ROWS = 65536   # 512 KiB of int64 slots per LMDB value
MAP_SIZE_BYTES = 1 << 38  # address space reserved for the LMDB map; the file only grows as used
SEG_KEY = re.compile(rb"(pt|slot|delta)/(t[0-9a-f]{12})/(\d{10})\Z")
FIXED_KEYS = (b"format_version", b"store", b"version")


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
    dead_pages: int = 0    # stored pages no longer referenced (page-level updates of format <= 2)
    has_row_order: bool = False
    delta_pages: int = 0   # pages past the home pages holding updated rows (page_writes: row shadowing)

    @property
    def home_pages(self) -> int:
        """Pages of the planned layout: every row has its home slot in one of them."""
        return self.num_pages - self.delta_pages

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__).encode()


class StoreMeta:
    """The LMDB environment of one store directory. `readonly` (the scrub) takes no writer state."""

    def __init__(self, store_dir: str, *, create: bool = False, readonly: bool = False) -> None:
        self.store_dir = str(store_dir)
        self._path = os.path.join(self.store_dir, META_DIR)
        if not create:
            self._probe()
        lock = not readonly or os.path.exists(os.path.join(self._path, "lock.mdb"))
        try:
            self.env = lmdb.open(self._path, map_size=MAP_SIZE_BYTES, subdir=True, create=create,
                                 max_dbs=0, sync=True, metasync=True, readahead=False, readonly=readonly,
                                 lock=lock)
        except lmdb.Error as exc:
            self._open_failed(exc)
        try:
            if lock:
                self.env.reader_check()  # free reader slots of processes that died (kill -9) holding them
            self.format_version = FORMAT_VERSION
            self.legacy = False
            if not create:
                self._load_format()
        except BaseException:
            self.env.close()
            raise

    def _open_failed(self, exc: lmdb.Error):
        if "already open in this process" in str(exc):
            raise InvalidInputError(f"{self.store_dir}: store is already open in this process; "
                                    "share that PageStore (it is thread-safe)") from exc
        if isinstance(exc, lmdb.DiskError) or "No space left" in str(exc):
            raise store_fault(self.store_dir, "opening store metadata", exc, writing=True) from exc
        raise StoreFormatError(f"{self.store_dir}: cannot open store metadata: {exc}") from exc

    def _probe(self) -> None:
        """Check the directory is a store without writing into it: LMDB opened read-only without its
        lock file (which a normal open would create), format_version read, closed again."""
        if not os.path.isdir(self.store_dir):
            raise StoreFormatError(f"{self.store_dir}: not an sdm page store (no such directory)")
        if not os.path.isfile(os.path.join(self._path, "data.mdb")):
            raise StoreFormatError(f"{self.store_dir}: not an sdm page store (no {META_DIR}/data.mdb)")
        try:
            env = lmdb.open(self._path, subdir=True, create=False, readonly=True, lock=False, max_dbs=0)
        except lmdb.Error as exc:
            if "already open in this process" in str(exc):
                return  # it is a store (open here already); the real open says so
            raise StoreFormatError(f"{self.store_dir}: not an sdm page store, or its LMDB file is damaged "
                                   f"({META_DIR}: {exc})") from exc
        try:
            with env.begin() as txn:
                raw = txn.get(b"format_version")
        except lmdb.Error as exc:
            raise StoreFormatError(f"{self.store_dir}: not an sdm page store, or its LMDB file is damaged "
                                   f"({META_DIR}: {exc})") from exc
        finally:
            env.close()
        if raw is None:
            raise StoreFormatError(f"{self.store_dir}: not an sdm page store (no format_version)")

    def _load_format(self) -> None:
        with self._txn("reading format_version") as txn:
            raw = txn.get(b"format_version")
        if raw is None:
            raise StoreFormatError(f"{self.store_dir}: not an sdm page store (no format_version)")
        try:
            found = json.loads(bytes(raw))
        except (ValueError, UnicodeDecodeError):
            found = bytes(raw)[:20]
        if found not in READABLE_VERSIONS or isinstance(found, bool):
            raise UnsupportedVersionError(
                f"{self.store_dir}: store format version {found!r} is not supported (this sdm reads "
                f"versions {', '.join(map(str, READABLE_VERSIONS))})", store=self.store_dir, found=found)
        self.format_version = found
        self.legacy = found == 1 or bool(self.settings().get("legacy_records"))

    # ---- reading -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _txn(self, what: str, table: str | None = None, *, write: bool = False) -> Iterator[lmdb.Transaction]:
        """An LMDB transaction (committed on leaving) whose failures leave as sdm errors (os_faults)."""
        with store_io(self.store_dir, what, table, writing=write), self.env.begin(write=write) as txn:
            yield txn

    def _payload(self, key: bytes, raw, table: str | None = None, *, legacy_ok: bool | None = None
                 ) -> tuple[bytes, bool]:
        """The checked payload of record `key` (CorruptMetadataError if absent or its seal is wrong)."""
        name = key.decode(errors="replace")
        if raw is None:
            raise CorruptMetadataError(f"{self.store_dir}: metadata record {name!r} is missing",
                                       store=self.store_dir, table=table, record=name)
        try:
            return unseal(key, raw, legacy_ok=self.legacy if legacy_ok is None else legacy_ok)
        except SealError as exc:
            raise CorruptMetadataError(f"{self.store_dir}: metadata record {name!r} {exc}", store=self.store_dir,
                                       table=table, record=name) from None

    def _json(self, key: bytes, raw, table: str | None = None, *, legacy_ok: bool | None = None):
        payload, _ = self._payload(key, raw, table, legacy_ok=legacy_ok)
        try:
            return json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptMetadataError(f"{self.store_dir}: metadata record {key.decode(errors='replace')!r} is "
                                       f"not JSON ({exc})", store=self.store_dir, table=table,
                                       record=key.decode(errors="replace")) from None

    def settings(self) -> dict:
        with self._txn("reading store settings") as txn:
            raw = txn.get(b"store")
        # Only a format-1 store has unsealed settings: format 2 seals them even after an upgrade.
        return check_settings(self._json(b"store", raw, legacy_ok=self.format_version == 1), self.store_dir)

    def version(self) -> int:
        with self._txn("reading the committed version") as txn:
            raw = txn.get(b"version")
        v = self._json(b"version", raw)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise CorruptMetadataError(f"{self.store_dir}: metadata record 'version' is {v!r}, not a version",
                                       store=self.store_dir, record="version")
        return v

    def txn_id(self) -> int:
        """LMDB's id of the last write transaction: changes with every commit, compactions included
        (which keep `version`: they change where rows live, not what they hold)."""
        try:
            return int(self.env.info()["last_txnid"])
        except lmdb.Error as exc:
            raise store_fault(self.store_dir, "reading the transaction id", exc) from exc

    def records(self) -> dict[str, TableRecord]:
        """Every table record, checked; and every key of the store accounted for: an unknown key (a
        damaged one) or segments of a table with no record mean records disagree."""
        out: dict[str, TableRecord] = {}
        for item in self.scan():
            if isinstance(item, CorruptMetadataError):
                raise item
            out[item.name] = item
        return out

    def scan(self) -> Iterator[TableRecord | CorruptMetadataError]:
        """Each table record (checked) or the error that one record or key raised, then one error
        for segments whose table has no record (unless a record was damaged: then they are likely
        its own): the walk `records` stops at and a scrub finishes."""
        settings = self.settings()
        ids, seg_ids, damaged = set(), set(), False
        with self._txn("reading table records") as txn:
            for key in txn.cursor().iternext(keys=True, values=False):  # keys only: segments are not read here
                key = bytes(key)
                if key in FIXED_KEYS:
                    continue
                if key.startswith(b"table/"):
                    name = key[6:].decode(errors="replace")
                    try:
                        doc = check_record(self._json(key, txn.get(key), name), key.decode(errors="replace"), settings,
                                           self.store_dir)
                    except CorruptMetadataError as exc:
                        damaged = True
                        yield exc
                        continue
                    ids.add(doc["table_id"])
                    yield TableRecord(**doc)
                    continue
                m = SEG_KEY.match(key)
                if m is None:
                    yield CorruptMetadataError(f"{self.store_dir}: unknown metadata key {key[:80]!r} (a damaged "
                                               "key, or not written by sdm)", store=self.store_dir,
                                               record=key.decode(errors="replace"))
                    continue
                seg_ids.add(m.group(2).decode())
        orphans = sorted(seg_ids - ids)
        if orphans and not damaged:  # with a damaged record, they are most likely its segments
            yield CorruptMetadataError(f"{self.store_dir}: page-table segments of table id {orphans[0]} have no "
                                       "table record (a record was lost or its key damaged)", store=self.store_dir,
                                       record=f"pt/{orphans[0]}")

    def _load_array(self, kind: str, rec: TableRecord, dtype: np.dtype, count: int, per_seg: int) -> tuple[np.ndarray, bool]:
        """A table's page table or slot map from its segments; (array, all segments sealed)."""
        parts, sealed, want_segs = [], True, -(-count // per_seg)
        with self._txn(f"reading {kind} of table {rec.name!r}", rec.name) as txn:
            for s in range(want_segs):
                key = _seg_key(kind, rec.table_id, s)
                payload, was_sealed = self._payload(key, txn.get(key), rec.name)
                sealed &= was_sealed
                want = min(per_seg, count - s * per_seg) * dtype.itemsize
                if len(payload) != want:
                    raise CorruptMetadataError(
                        f"{self.store_dir}: table {rec.name!r}: record {key.decode()!r} is {len(payload)} bytes, "
                        f"expected {want}", store=self.store_dir, table=rec.name, record=key.decode())
                parts.append(np.frombuffer(payload, dtype=dtype))
            extra = txn.get(_seg_key(kind, rec.table_id, want_segs))
        if extra is not None:
            raise CorruptMetadataError(f"{self.store_dir}: table {rec.name!r}: {kind} has a segment past its "
                                       f"{count} entries", store=self.store_dir, table=rec.name,
                                       record=_seg_key(kind, rec.table_id, want_segs).decode())
        return (np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)), sealed

    def page_table(self, rec: TableRecord, settings: dict | None = None) -> np.ndarray:
        pt, _ = self._load_array("pt", rec, PAGE_ENTRY_DTYPE, rec.num_pages, SEGMENT_PAGES)
        pt = pt.copy()
        check_page_table(pt, rec, settings or self.settings(), self.store_dir)
        return pt

    def slot_of(self, rec: TableRecord, *, permutation: bool = False) -> np.ndarray | None:
        """Where each row is now (None: slot == row): its home slot, moved by the delta log.
        `permutation`: check the home map is one even where its seal would do (the scrub)."""
        home = self.home_of(rec, permutation=permutation)
        if not rec.delta_pages:
            return home
        cur = np.arange(rec.num_rows, dtype=np.int64) if home is None else home
        for page, ids in self.delta_log(rec):  # in page order: a later update of a row wins
            cur[ids] = page * rec.rows_per_page + np.arange(len(ids), dtype=np.int64)
        return cur

    def home_of(self, rec: TableRecord, *, permutation: bool = False) -> np.ndarray | None:
        """Each row's planned slot, as ingest laid the table out (None: slot == row)."""
        if not rec.has_row_order:
            return None
        slots, sealed = self._load_array("slot", rec, np.dtype(np.int64), rec.num_rows, SEGMENT_ROWS)
        check_slot_map(slots, rec, self.store_dir, permutation=permutation or not sealed)
        return slots

    def delta_log(self, rec: TableRecord) -> list[tuple[int, np.ndarray]]:
        """(first delta page, row ids) of each update since the last compaction, in page order,
        checked (`check_delta_log`): the entries tile the delta pages exactly."""
        prefix = f"delta/{rec.table_id}/".encode()
        out = []
        with self._txn(f"reading the delta log of table {rec.name!r}", rec.name) as txn:
            cur = txn.cursor()
            if cur.set_range(prefix):
                for key, raw in cur:
                    key = bytes(key)
                    if not key.startswith(prefix):
                        break
                    payload, _ = self._payload(key, raw, rec.name, legacy_ok=False)
                    out.append((key.decode(), payload))
        return check_delta_log(out, rec, self.store_dir)

    # ---- writing -------------------------------------------------------------------------------
    def init_store(self, settings: dict) -> None:
        with self._txn("creating the store", write=True) as txn:
            txn.put(b"store", seal(b"store", json.dumps(settings).encode()))
            txn.put(b"version", seal(b"version", b"0"))
            txn.put(b"format_version", json.dumps(FORMAT_VERSION).encode())

    def commit(self, rec: TableRecord, page_table: np.ndarray, pages_touched: np.ndarray | None = None,
               slot_of: np.ndarray | None = None, drop_table_id: str | None = None,
               bump_version: bool = True, delta: tuple[int, np.ndarray] | None = None) -> int:
        """Write `rec`, the page-table segments holding `pages_touched` (all when None), for a new
        table its slot map, and `delta` (first delta page, ids: an update's delta-log entry) in one
        transaction. Returns the new committed version. The first commit into an older store moves
        it to the current format (see the module doc). `drop_table_id`: a table id whose keys go in
        the same transaction (compaction moved the table to `rec.table_id`; it commits with
        `bump_version=False`: the rows are unchanged)."""
        if pages_touched is None:
            segs = range(-(-len(page_table) // SEGMENT_PAGES))
        else:
            segs = np.unique(np.asarray(pages_touched) // SEGMENT_PAGES).tolist()
        version = self.version() + (1 if bump_version else 0)
        upgrade = self.format_version < FORMAT_VERSION
        settings = self.settings() if upgrade else None
        with self._txn("commit", rec.name, write=True) as txn:
            for s in segs:
                key = _seg_key("pt", rec.table_id, s)
                txn.put(key, seal_array(key, page_table[s * SEGMENT_PAGES : (s + 1) * SEGMENT_PAGES]))
            if slot_of is not None:
                for s in range(-(-len(slot_of) // SEGMENT_ROWS)):
                    key = _seg_key("slot", rec.table_id, s)
                    txn.put(key, seal_array(key, np.asarray(slot_of[s * SEGMENT_ROWS : (s + 1) * SEGMENT_ROWS], np.int64)))
            if delta is not None:
                key = _seg_key("delta", rec.table_id, delta[0])
                txn.put(key, seal_array(key, np.asarray(delta[1], np.int64)))
            if drop_table_id is not None and drop_table_id != rec.table_id:
                for kind in ("pt", "slot", "delta"):
                    prefix = f"{kind}/{drop_table_id}/".encode()
                    cur = txn.cursor()
                    if cur.set_range(prefix):
                        while cur.key().startswith(prefix):
                            if not cur.delete():  # delete moves the cursor to the next key
                                break
            key = f"table/{rec.name}".encode()
            txn.put(key, seal(key, rec.to_json()))
            txn.put(b"version", seal(b"version", str(version).encode()))
            if upgrade:
                if self.format_version == 1:  # its records may lack seals; a format-2 store's do not
                    settings["legacy_records"] = True
                txn.put(b"store", seal(b"store", json.dumps(settings).encode()))
                txn.put(b"format_version", json.dumps(FORMAT_VERSION).encode())
        if upgrade:
            self.format_version = FORMAT_VERSION
        return version

    def close(self) -> None:
        self.env.close()
