"""The SCM page store: embedding tables as fixed-width rows in page-aligned files read with O_DIRECT.

A store is a directory:
  meta.lmdb/        LMDB: format version, store settings, table records, page tables, committed version
  data/<id>.pages   one append-only data file per table
  writer.lock       flock'd by whoever writes (ingest, update), across threads and processes

Reads: a batch of row ids becomes one O_DIRECT read per distinct page (np.unique), issued by the
read engine (`direct_io`) with `queue_depth` reads in flight; each page's xxh3 checksum is checked,
zstd pages are decompressed, and rows are gathered with one numpy fancy index. Every read charges
the clock (tier "scm") with its measured wall time and the device model's time for that many reads.

Writes use shadow paging: new or changed pages are appended past the committed end of the data file,
never written over a page the committed page table references; the file is fsync'd, then the page
table, table record and version commit in one LMDB transaction. A crash (kill -9) before that commit
leaves an uncommitted tail that readers never look at and the next writer truncates, so the store
always opens at its last committed version. Replaced pages become dead space (`dead_pages`); they are
never reused, which is also what keeps other processes' older page tables valid.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from sdm.core.errors import CorruptionError, InvalidInputError, StoreFormatError
from sdm.tiers.clock import Clock
from sdm.tiers.direct_io import ENGINES, aligned_empty, drop_cached, make_reader, open_direct, probe_io_align
from sdm.tiers.page_format import (
    COMPRESSIONS,
    bad_page,
    decode_pages,
    encode_pages,
    pack_rows,
    page_rows,
    round_up,
)
from sdm.tiers.ingest_source import RowSource, as_numpy
from sdm.tiers.store_meta import StoreMeta, TableRecord

TIER = "scm"
DATA_DIR = "data"
SPOOL_DIR = "spool"
LOCK_FILE = "writer.lock"
INGEST_CHUNK_BYTES = 32 << 20  # rows staged per ingest step: bounds ingest memory to a few times this
PROGRESS_MIN_BYTES = 64 << 20  # show a progress bar (progress=None) for tables at least this large
MAX_NAME_BYTES = 200           # table names become LMDB keys (limit 511 bytes)


@dataclass(frozen=True)
class StoredTable:
    """What `PageStore.table_info` reports about one table."""

    name: str
    num_rows: int
    dim: int
    dtype: np.dtype
    row_bytes: int
    page_bytes: int
    rows_per_page: int
    num_pages: int
    compression: str | None
    stored_bytes: int        # committed length of the data file (live + dead pages + padding)
    live_stored_bytes: int   # bytes the live pages occupy on disk, alignment padding included
    dead_pages: int
    has_row_order: bool
    data_file: str
    index_bytes: int         # memory of the in-RAM page table and slot map

    @property
    def compression_ratio(self) -> float:
        """Uncompressed page bytes / on-disk bytes of the live pages (1.0 without compression)."""
        return self.num_pages * self.page_bytes / max(self.live_stored_bytes, 1)


@dataclass(frozen=True)
class _Table:
    """An immutable snapshot of one table; a commit swaps in a new one, so readers never lock."""

    rec: TableRecord
    page_table: np.ndarray          # PAGE_ENTRY_DTYPE per page
    slot_of: np.ndarray | None      # slot of each row (None: slot == row)
    fd: int                         # O_DIRECT read descriptor
    dtype: np.dtype

    @property
    def row_bytes(self) -> int:
        return self.rec.dim * self.dtype.itemsize


def _resolve_device(dev):
    from sdm.hardware.devices import DeviceSpec
    from sdm.hardware.presets import device

    if isinstance(dev, DeviceSpec):
        return dev
    if isinstance(dev, str):
        return device(dev)
    raise InvalidInputError(f"device must be a preset name or a DeviceSpec, got {type(dev).__name__}")


def _stored_device(settings: dict):
    """The device the store was created with (overrides included), else the preset of that name."""
    from sdm.hardware.devices import DeviceSpec

    if "device_spec" in settings:
        try:
            return DeviceSpec(**settings["device_spec"])
        except (TypeError, InvalidInputError):  # fields changed since; fall back to the preset
            pass
    return _resolve_device(settings["device"])


class PageStore:
    """Embedding tables on disk, read with O_DIRECT by page. Use `create` or `open`; a context manager."""

    def __init__(self, store_dir: str, meta: StoreMeta, *, device, queue_depth: int, clock: Clock,
                 engine: str) -> None:
        self.path = store_dir
        self._meta = meta
        settings = meta.settings()
        self.page_bytes: int = settings["page_bytes"]
        self.io_align_bytes: int = settings["io_align_bytes"]
        self.compression: str | None = settings["compression"]
        self.device = _resolve_device(device) if device is not None else _stored_device(settings)
        self.queue_depth = _check_queue_depth(queue_depth)
        if engine not in ENGINES:
            raise InvalidInputError(f"unknown I/O engine {engine!r}; expected one of {ENGINES}")
        self.clock = clock
        self._reader = make_reader(engine, self.queue_depth)
        self._tables: dict[str, _Table] = {}
        self._version = meta.version()
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._closed = False
        self.direct_io = True
        try:
            self._recover()
            self._load_tables()
        except BaseException:
            self._reader.close()
            for t in self._tables.values():
                os.close(t.fd)
            raise

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def create(cls, path, device="nand", *, page_bytes: int = 4096, compression: str | None = None,
               queue_depth: int = 32, inject: bool = False, clock: Clock | None = None,
               engine: str = "auto") -> "PageStore":
        """Make a new, empty store at `path` (a missing or empty directory)."""
        path = os.fspath(path)
        if isinstance(page_bytes, bool) or not isinstance(page_bytes, (int, np.integer)) or page_bytes <= 0 \
                or page_bytes % 4096:
            raise InvalidInputError(f"page_bytes must be a positive multiple of 4096, got {page_bytes!r}")
        if compression not in COMPRESSIONS:
            raise InvalidInputError(f"unknown compression {compression!r}; expected one of {COMPRESSIONS}")
        spec = _resolve_device(device)
        clock = cls._make_clock(clock, inject)
        _check_queue_depth(queue_depth)
        if engine not in ENGINES:
            raise InvalidInputError(f"unknown I/O engine {engine!r}; expected one of {ENGINES}")
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            raise InvalidInputError(f"{path}: exists and is not an empty directory; use PageStore.open for a store")
        os.makedirs(os.path.join(path, DATA_DIR), exist_ok=True)
        settings = {
            "page_bytes": int(page_bytes),
            "io_align_bytes": probe_io_align(os.path.join(path, DATA_DIR)),
            "compression": compression,
            "device": spec.name,
            "device_spec": spec.to_dict(),  # the configured medium, overrides included
        }
        meta = StoreMeta(path, create=True)
        meta.init_store(settings)
        return cls(path, meta, device=spec, queue_depth=queue_depth, clock=clock, engine=engine)

    @classmethod
    def open(cls, path, *, device=None, queue_depth: int = 32, inject: bool = False,
             clock: Clock | None = None, engine: str = "auto") -> "PageStore":
        """Open an existing store at its last committed version. `device` defaults to the stored one."""
        path = os.fspath(path)
        clock = cls._make_clock(clock, inject)
        meta = StoreMeta(path)
        try:
            return cls(path, meta, device=device, queue_depth=queue_depth, clock=clock, engine=engine)
        except BaseException:
            meta.close()
            raise

    @staticmethod
    def _make_clock(clock: Clock | None, inject: bool) -> Clock:
        if clock is None:
            return Clock(inject=bool(inject))
        if inject and not clock.inject:
            raise InvalidInputError("inject=True with a clock whose inject is False: set Clock(inject=True)")
        return clock

    def __enter__(self) -> "PageStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._reader.close()
        for t in self._tables.values():
            os.close(t.fd)
        self._tables = {}
        self._meta.close()

    # ---- public queries ------------------------------------------------------------------------
    @property
    def tables(self) -> list[str]:
        return sorted(self._tables)

    @property
    def version(self) -> int:
        """Committed version: +1 per ingest or update."""
        return self._version

    @property
    def engine(self) -> str:
        return self._reader.name

    def table_info(self, name: str) -> StoredTable:
        t = self._table(name)
        live = int(round_up(t.page_table["length"].astype(np.int64), self.io_align_bytes).sum())
        index = t.page_table.nbytes + (t.slot_of.nbytes if t.slot_of is not None else 0)
        r = t.rec
        return StoredTable(
            name=r.name, num_rows=r.num_rows, dim=r.dim, dtype=t.dtype, row_bytes=t.row_bytes,
            page_bytes=r.page_bytes, rows_per_page=r.rows_per_page, num_pages=r.num_pages,
            compression=r.compression, stored_bytes=r.committed_bytes, live_stored_bytes=live,
            dead_pages=r.dead_pages, has_row_order=r.has_row_order,
            data_file=os.path.join(self.path, r.data_file), index_bytes=index,
        )

    def page_of(self, name: str, row_ids) -> np.ndarray:
        """Page id (index into the table's page table) of each row."""
        t = self._table(name)
        ids = self._check_ids(t, row_ids)
        slots = ids if t.slot_of is None else t.slot_of[ids]
        return slots // t.rec.rows_per_page

    def refresh(self) -> bool:
        """Pick up commits made by other processes; True when something changed."""
        if self._meta.version() == self._version:
            return False
        self._load_tables()
        return True

    # ---- reads ---------------------------------------------------------------------------------
    def read_rows(self, name: str, row_ids) -> np.ndarray:
        """Rows `row_ids` of table `name` as a [n, dim] array, in the order given (repeats allowed)."""
        t0 = time.perf_counter()
        t = self._table(name)
        ids = self._check_ids(t, row_ids)
        rpp = t.rec.rows_per_page
        if len(ids) == 0:
            return np.zeros((0, t.rec.dim), dtype=t.dtype)
        slots = ids if t.slot_of is None else t.slot_of[ids]
        pages, inv = np.unique(slots // rpp, return_inverse=True)
        data, nbytes = self._read_pages(t, pages)
        rows = page_rows(data, rpp, t.row_bytes)[inv.reshape(-1), slots % rpp]
        out = rows.view(t.dtype).reshape(len(ids), t.rec.dim)
        self._charge(len(pages), nbytes, t0)
        return out

    def _charge(self, n_pages: int, nbytes: int, t0: float) -> None:
        """Clock tier "scm": wall time since t0, and the device model's time for these reads."""
        modelled = float(self.device.read_time_s(n_pages, max(1, nbytes // max(n_pages, 1)), self.queue_depth))
        self.clock.charge(TIER, n_pages, nbytes, time.perf_counter() - t0, modelled)

    def _buffer(self, nbytes: int) -> np.ndarray:
        """A per-thread aligned read buffer, grown as needed (reads copy rows out before returning)."""
        buf = getattr(self._local, "buf", None)
        if buf is None or len(buf) < nbytes:
            buf = aligned_empty(max(nbytes, 1 << 20))
            self._local.buf = buf
        return buf[:nbytes]

    def _read_pages(self, t: _Table, pages: np.ndarray) -> tuple[np.ndarray, int]:
        """Read, verify and decode pages (sorted, distinct); returns ([n, page_bytes] pages, bytes read)."""
        ent = t.page_table[pages]
        lengths = round_up(ent["length"].astype(np.int64), self.io_align_bytes)
        offsets = ent["offset"].astype(np.int64)
        stride = t.rec.page_bytes
        buf = self._buffer(len(pages) * stride)

        def verify(done: np.ndarray) -> None:  # runs while later reads are still in flight
            bad = bad_page(buf, stride, ent, done)
            if bad >= 0:
                raise CorruptionError(
                    f"table {t.rec.name!r}: page {int(pages[bad])} failed its xxh3_64 checksum "
                    f"(file {os.path.join(self.path, t.rec.data_file)}, offset {int(offsets[bad])})"
                )

        self._reader.read(t.fd, offsets, lengths, buf, stride, verify)
        return decode_pages(buf, stride, ent, t.rec.page_bytes), int(lengths.sum())

    # ---- writes --------------------------------------------------------------------------------
    def add_table(self, name: str, rows, *, num_rows: int | None = None, dim: int | None = None,
                  dtype=None, row_order=None, progress: bool | None = None) -> None:
        """Ingest a table from a 2-D array (a np.memmap streams) or an iterable of 2-D row chunks.

        `row_order[p]` is the row stored in slot p (the planner's page layout); rows are then read
        by their own ids as usual. The table appears atomically when the ingest commits.
        """
        self._check_open()
        self._check_name(name)
        rows = as_numpy(rows)
        source = RowSource.make(name, rows, num_rows, dim, dtype)
        if row_order is not None and source.num_rows is None:
            source.num_rows = len(row_order)  # a layout fixes the row count of a streamed table
        order = None if row_order is None else self._check_row_order(name, row_order, source.num_rows)
        rpp = self.page_bytes // source.row_bytes
        page_bytes = self.page_bytes
        if rpp == 0:  # a row wider than a page gets pages of whole multiples of the store's page
            page_bytes = round_up(source.row_bytes, self.page_bytes)
            rpp = page_bytes // source.row_bytes
        table_id = "t" + secrets.token_hex(6)
        data_rel = os.path.join(DATA_DIR, table_id + ".pages")
        data_path = os.path.join(self.path, data_rel)
        with self._writer():
            if name in self._meta.records():
                raise InvalidInputError(f"table {name!r} already exists in store {self.path}")
            spool = None
            try:
                if order is not None and not source.random_access:
                    spool = source.spool(os.path.join(self.path, SPOOL_DIR, table_id + ".spool"))
                    source = spool
                show = progress if progress is not None else source.size_bytes >= PROGRESS_MIN_BYTES
                fd = os.open(data_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    entries, tail, n = self._write_pages(fd, source, order, rpp, page_bytes, name, show)
                    os.fdatasync(fd)
                    drop_cached(fd)
                finally:
                    os.close(fd)
                _fsync_dir(os.path.join(self.path, DATA_DIR))
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
                self._version = self._meta.commit(rec, entries, None, slot_of)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(data_path)
                raise
            finally:
                if spool is not None:
                    spool.remove()
            self._install(rec, entries, slot_of)

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
                _pwrite_all(fd, blob, tail)
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

    def update_rows(self, name: str, row_ids, values) -> None:
        """Overwrite rows atomically: changed pages are appended (shadow pages), then committed at once."""
        self._check_open()
        t = self._table(name)
        ids = self._check_ids(t, row_ids)
        values = self._check_values(t, ids, values)
        if len(ids) == 0:
            return
        srt = np.sort(ids)
        dup = np.flatnonzero(srt[1:] == srt[:-1])
        if len(dup):
            raise InvalidInputError(f"table {name!r}: row id {int(srt[dup[0]])} appears more than once in update")
        with self._writer():
            t = self._table(name)  # _writer refreshed it if another process committed
            rpp = t.rec.rows_per_page
            slots = ids if t.slot_of is None else t.slot_of[ids]
            pages, inv = np.unique(slots // rpp, return_inverse=True)
            t0 = time.perf_counter()
            data, nbytes = self._read_pages(t, pages)  # verifies the pages being rewritten
            data = data.copy()
            self._charge(len(pages), nbytes, t0)  # the read half of a read-modify-write is an SCM read
            vbytes = np.ascontiguousarray(values).view(np.uint8).reshape(len(ids), t.row_bytes)
            page_rows(data, rpp, t.row_bytes)[inv.reshape(-1), slots % rpp] = vbytes
            blob, ent = encode_pages(data, compression=t.rec.compression, align=self.io_align_bytes)
            tail = t.rec.committed_bytes
            ent["offset"] += np.uint64(tail)
            fd = os.open(os.path.join(self.path, t.rec.data_file), os.O_RDWR)
            try:
                os.ftruncate(fd, tail)  # drop any uncommitted tail left by a crash
                _pwrite_all(fd, blob, tail)
                os.fdatasync(fd)
                drop_cached(fd, tail, len(blob))
            finally:
                os.close(fd)
            table = t.page_table.copy()
            table[pages] = ent
            rec = replace(t.rec, committed_bytes=tail + len(blob), dead_pages=t.rec.dead_pages + len(pages))
            self._version = self._meta.commit(rec, table, pages)
            self._install(rec, table, t.slot_of)

    # ---- internals -----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError(f"page store {self.path} is closed")

    def _table(self, name: str) -> _Table:
        self._check_open()
        t = self._tables.get(name)
        if t is None:
            raise InvalidInputError(f"no table {name!r} in store {self.path}; tables: {self.tables}")
        return t

    def _check_name(self, name) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"table name must be a non-empty string, got {name!r}")
        if len(name.encode()) > MAX_NAME_BYTES:
            raise InvalidInputError(f"table name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
        if name in self._tables:
            raise InvalidInputError(f"table {name!r} already exists in store {self.path}")

    @staticmethod
    def _check_ids(t: _Table, row_ids) -> np.ndarray:
        ids = np.asarray(as_numpy(row_ids))
        name, n = t.rec.name, t.rec.num_rows
        if ids.dtype.kind not in "iu":
            raise InvalidInputError(f"table {name!r}: row ids must be integers, got dtype {ids.dtype}")
        if ids.ndim != 1:
            raise InvalidInputError(f"table {name!r}: row ids must be 1-D, got shape {ids.shape}")
        bad = np.flatnonzero((ids < 0) | (ids >= n))
        if len(bad):
            p = int(bad[0])
            raise InvalidInputError(
                f"table {name!r}: row id {int(ids[p])} at position {p} is out of range [0, {n})"
                + (f" ({len(bad)} bad ids in all)" if len(bad) > 1 else "")
            )
        return ids.astype(np.int64, copy=False)

    @staticmethod
    def _check_values(t: _Table, ids: np.ndarray, values) -> np.ndarray:
        v = as_numpy(values)
        name = t.rec.name
        if not isinstance(v, np.ndarray):
            raise InvalidInputError(f"table {name!r}: values must be a numpy array, got {type(v).__name__}")
        if v.dtype != t.dtype:
            raise InvalidInputError(f"table {name!r}: values have dtype {v.dtype}, table stores {t.dtype}")
        if v.shape != (len(ids), t.rec.dim):
            raise InvalidInputError(
                f"table {name!r}: values have shape {v.shape}, expected ({len(ids)}, {t.rec.dim}) "
                f"(one row of width {t.rec.dim} per row id)"
            )
        return v

    @staticmethod
    def _check_row_order(name: str, row_order, num_rows: int) -> np.ndarray:
        order = np.asarray(as_numpy(row_order))
        if order.dtype.kind not in "iu" or order.ndim != 1:
            raise InvalidInputError(f"table {name!r}: row_order must be a 1-D integer array, "
                                    f"got dtype {order.dtype} shape {order.shape}")
        if len(order) != num_rows:
            raise InvalidInputError(f"table {name!r}: row_order has {len(order)} entries, table has {num_rows} rows")
        bad = np.flatnonzero((order < 0) | (order >= num_rows))
        if len(bad):
            raise InvalidInputError(f"table {name!r}: row_order[{int(bad[0])}] = {int(order[bad[0]])} "
                                    f"is out of range [0, {num_rows})")
        seen = np.bincount(order, minlength=num_rows)
        if (seen != 1).any():
            r = int(np.flatnonzero(seen != 1)[0])
            raise InvalidInputError(f"table {name!r}: row_order is not a permutation: row {r} appears "
                                    f"{int(seen[r])} times")
        return order.astype(np.int64, copy=False)

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        """Exclusive writer across threads (lock) and processes (flock); refreshes stale state first."""
        with self._write_lock:
            fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self.refresh()
                yield
            finally:
                os.close(fd)

    def _recover(self) -> None:
        """Cut uncommitted tails and remove files of uncommitted tables, if no writer is active."""
        fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # a writer is at work; its tail is not garbage yet
            recs = self._meta.records()
            committed = {os.path.normpath(r.data_file): r.committed_bytes for r in recs.values()}
            data_dir = os.path.join(self.path, DATA_DIR)
            for fname in os.listdir(data_dir):
                rel = os.path.normpath(os.path.join(DATA_DIR, fname))
                full = os.path.join(self.path, rel)
                if rel not in committed:
                    os.unlink(full)
                elif os.path.getsize(full) > committed[rel]:
                    os.truncate(full, committed[rel])
            shutil.rmtree(os.path.join(self.path, SPOOL_DIR), ignore_errors=True)
        finally:
            os.close(fd)

    def _load_tables(self) -> None:
        self._version = self._meta.version()
        for rec in self._meta.records().values():
            self._install(rec, self._meta.page_table(rec), self._meta.slot_of(rec))

    def _install(self, rec: TableRecord, page_table: np.ndarray, slot_of: np.ndarray | None) -> None:
        old = self._tables.get(rec.name)
        if old is not None and old.rec.data_file == rec.data_file:
            fd = old.fd
        else:
            path = os.path.join(self.path, rec.data_file)
            if not os.path.exists(path):
                raise StoreFormatError(f"{self.path}: data file {rec.data_file} of table {rec.name!r} is missing")
            fd, self.direct_io = open_direct(path)
        if slot_of is not None and rec.num_rows < 2**31:
            slot_of = slot_of.astype(np.int32)  # half the index memory for tables under 2^31 rows
        self._tables[rec.name] = _Table(rec, page_table, slot_of, fd, np.dtype(rec.dtype))


def _check_queue_depth(queue_depth) -> int:
    if isinstance(queue_depth, bool) or not isinstance(queue_depth, (int, np.integer)) or queue_depth < 1:
        raise InvalidInputError(f"queue_depth must be an integer >= 1, got {queue_depth!r}")
    return int(queue_depth)


def _pwrite_all(fd: int, data: np.ndarray, offset: int) -> None:
    mv = memoryview(data).cast("B")
    done = 0
    while done < len(mv):
        done += os.pwrite(fd, mv[done:], offset + done)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
