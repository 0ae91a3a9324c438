"""The page store's write and commit path: ingest, row updates and crash recovery, by shadow paging.

New or changed pages are appended past the committed end of a data file, never written over a page
the committed page table references; the file is fsync'd, then the page table, table record and
version commit in one LMDB transaction. A crash (kill -9) before that commit leaves an uncommitted
tail (or an orphan data file) that readers never look at and that `recover` or the next writer cuts,
so the store always opens at its last committed version. Updates shadow rows, not pages: the new
rows go into delta pages and the slot map points at them (`update`); their old copies become dead
space, never reused, which is also what keeps other processes' older page tables and slot maps
valid, until compaction rewrites the table into a new file. One writer at a time, across threads
(a lock) and processes (flock on writer.lock).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from sdm.core.atomic_file import fsync_dir
from sdm.core.errors import InvalidInputError
from sdm.tiers.direct_io import drop_cached
from sdm.tiers.ingest_source import RowSource
from sdm.tiers.os_faults import store_io
from sdm.tiers.page_format import encode_pages, pack_rows, round_up
from sdm.tiers.page_reads import OpenTable
from sdm.tiers.store_meta import StoreMeta, TableRecord

DATA_DIR = "data"
SPOOL_DIR = "spool"
LOCK_FILE = "writer.lock"
INGEST_CHUNK_BYTES = 32 << 20  # rows staged per ingest step: bounds ingest memory to a few times this
PROGRESS_MIN_BYTES = 64 << 20  # show a progress bar (progress=None) for tables at least this large
DATA_FILE = re.compile(r"t[0-9a-f]{12}\.pages\Z")  # what ingest names a table's data file


@dataclass(frozen=True)
class Commit:
    """What one committed write left behind: the table's new record and index, and the store version."""

    rec: TableRecord
    page_table: np.ndarray
    slot_of: np.ndarray | None
    version: int


class TableWriter:
    """The store's writer. `exclusive()` must be held around `ingest` and `update`."""

    def __init__(self, store_dir: str, meta: StoreMeta, *, page_bytes: int, io_align_bytes: int,
                 compression: str | None, refresh: Callable[[], object]) -> None:
        self.store_dir = store_dir
        self._meta = meta
        self.page_bytes = page_bytes
        self.io_align_bytes = io_align_bytes
        self.compression = compression
        self._refresh = refresh
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Exclusive writer across threads (lock) and processes (flock); refreshes stale state first."""
        with self._lock:
            fd = os.open(os.path.join(self.store_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._refresh()
                yield
            finally:
                os.close(fd)

    def recover(self, recs: dict[str, TableRecord]) -> None:
        """Cut uncommitted tails and remove files of uncommitted tables, if no writer is active.

        `recs` are the records as checked at open (`record_checks`: every page inside committed_bytes,
        every file at least that long), so a cut never shortens a file below what a page table
        references. Only files named like a table's (`t<12 hex>.pages`) that no record (and no
        page-table segment: `StoreMeta.records` refused those) mentions are removed."""
        fd = os.open(os.path.join(self.store_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # a writer is at work; its tail is not garbage yet
            committed = {os.path.normpath(r.data_file): r.committed_bytes for r in recs.values()}
            data_dir = os.path.join(self.store_dir, DATA_DIR)
            for fname in os.listdir(data_dir) if os.path.isdir(data_dir) else ():
                rel = os.path.normpath(os.path.join(DATA_DIR, fname))
                full = os.path.join(self.store_dir, rel)
                if rel not in committed:
                    if DATA_FILE.match(fname):
                        os.unlink(full)
                elif os.path.getsize(full) > committed[rel]:
                    os.truncate(full, committed[rel])
            shutil.rmtree(os.path.join(self.store_dir, SPOOL_DIR), ignore_errors=True)
        finally:
            os.close(fd)

    # ---- ingest --------------------------------------------------------------------------------
    def ingest(self, name: str, source: RowSource, order: np.ndarray | None, progress: bool | None) -> Commit:
        """Write table `name` from `source` (slot p holds row order[p]) into a new data file, then commit."""
        if name in self._meta.records():  # a record checked like any other (records disagreeing refuse)
            raise InvalidInputError(f"table {name!r} already exists in store {self.store_dir}")
        rpp = self.page_bytes // source.row_bytes
        page_bytes = self.page_bytes
        if rpp == 0:  # a row wider than a page gets pages of whole multiples of the store's page
            page_bytes = round_up(source.row_bytes, self.page_bytes)
            rpp = page_bytes // source.row_bytes
        table_id = "t" + secrets.token_hex(6)
        data_rel = os.path.join(DATA_DIR, table_id + ".pages")
        data_path = os.path.join(self.store_dir, data_rel)
        spool = None
        try:
            if order is not None and not source.random_access:
                spool = source.spool(os.path.join(self.store_dir, SPOOL_DIR, table_id + ".spool"))
                source = spool
            show = progress if progress is not None else source.size_bytes >= PROGRESS_MIN_BYTES
            with store_io(self.store_dir, f"writing {data_rel}", name, writing=True):
                fd = os.open(data_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    entries, tail, n = self._write_pages(fd, source, order, rpp, page_bytes, name, show)
                    os.fdatasync(fd)
                    drop_cached(fd)
                finally:
                    os.close(fd)
                fsync_dir(os.path.join(self.store_dir, DATA_DIR))  # the new file's name is durable before the commit
            rec = TableRecord(
                name=name, table_id=table_id, num_rows=n, dim=source.dim, dtype=source.dtype.str,
                page_bytes=page_bytes, rows_per_page=rpp, num_pages=len(entries),
                compression=self.compression, data_file=data_rel, committed_bytes=tail,
                has_row_order=order is not None,
            )
            slot_of = None
            if order is not None:
                slot_of = np.empty(n, dtype=np.int64)
                slot_of[order] = np.arange(n, dtype=np.int64)
            version = self._meta.commit(rec, entries, None, slot_of)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(data_path)
            raise
        finally:
            if spool is not None:
                spool.remove()
        return Commit(rec, entries, slot_of, version)

    def _write_pages(self, fd: int, source: RowSource, order, rpp: int, page_bytes: int, name: str,
                     show: bool) -> tuple[np.ndarray, int, int]:
        """Stream rows into pages appended to `fd`; returns (page table, file length, rows written)."""
        step = max(1, INGEST_CHUNK_BYTES // page_bytes) * rpp
        tail, n_rows, parts, prev = 0, 0, [], 0
        with tqdm(total=source.num_rows, unit="row", unit_scale=True, desc=f"ingest {name}",
                  disable=not show) as bar:
            for block in source.blocks(step, order):
                pages = pack_rows(block, rpp, page_bytes)
                blob, ent = encode_pages(pages, compression=self.compression, align=self.io_align_bytes)
                ent["offset"] += np.uint64(tail)
                pwrite_all(fd, blob, tail)
                # DONTNEED starts writeback of this block and drops what is already clean (the
                # previous block, asked last time), so ingest never fills the page cache.
                drop_cached(fd, prev, tail + len(blob) - prev)
                prev = tail
                tail += len(blob)
                n_rows += len(block)
                parts.append(ent)
                bar.update(len(block))
        if n_rows == 0:
            raise InvalidInputError(f"table {name!r}: no rows given")
        return np.concatenate(parts), tail, n_rows

    # ---- updates -------------------------------------------------------------------------------
    def update(self, t: OpenTable, ids: np.ndarray, values: np.ndarray) -> Commit:
        """Overwrite rows `ids` (checked, distinct) of the current snapshot `t` with `values` by row
        shadowing: the new rows are packed densely into delta pages appended past the committed end
        (sorted by their current slot, so rows laid out together stay together), a delta-log entry
        points those rows there (`StoreMeta.slot_of` replays the log over the planned map), and it
        all commits at once. Nothing is read, and k rows cost ceil(k / rows_per_page) page writes
        however scattered they are (rewriting each touched page cost up to k). The rows' old copies
        become dead space; compaction (`row_merge`) writes every row back to its planned slot."""
        rpp, n = t.rec.rows_per_page, t.rec.num_rows
        cur = np.arange(n, dtype=np.int64) if t.slot_of is None else t.slot_of.astype(np.int64)  # a copy
        order = np.argsort(cur[ids], kind="stable")
        ids = ids[order]
        vbytes = np.ascontiguousarray(values).view(np.uint8).reshape(len(ids), t.row_bytes)[order]
        blob, ent = encode_pages(pack_rows(vbytes, rpp, t.rec.page_bytes), compression=t.rec.compression,
                                 align=self.io_align_bytes)
        tail = t.rec.committed_bytes
        ent["offset"] += np.uint64(tail)
        with store_io(self.store_dir, f"writing {t.rec.data_file}", t.rec.name, writing=True):
            fd = os.open(os.path.join(self.store_dir, t.rec.data_file), os.O_RDWR)
            try:
                if os.fstat(fd).st_size > tail:
                    os.ftruncate(fd, tail)  # drop any uncommitted tail left by a crash
                pwrite_all(fd, blob, tail)
                os.fdatasync(fd)
                drop_cached(fd, tail, len(blob))
            finally:
                os.close(fd)
        table = np.concatenate([t.page_table, ent])
        cur[ids] = t.rec.num_pages * rpp + np.arange(len(ids), dtype=np.int64)
        rec = replace(t.rec, num_pages=len(table), delta_pages=t.rec.delta_pages + len(ent),
                      committed_bytes=tail + len(blob))
        # LMDB gets the new page entries and one delta-log entry (8 B an id): the planned slot map
        # is never rewritten, so a commit costs the same in a table of a billion rows
        version = self._meta.commit(rec, table, np.arange(t.rec.num_pages, len(table)),
                                    delta=(t.rec.num_pages, ids))
        return Commit(rec, table, cur, version)


def pwrite_all(fd: int, data: np.ndarray, offset: int) -> None:
    """Write all of `data` at `offset` (pwrite may write less than asked)."""
    mv = memoryview(data).cast("B")
    done = 0
    while done < len(mv):
        done += os.pwrite(fd, mv[done:], offset + done)
