"""The SCM page store: embedding tables as fixed-width rows in page-aligned files read with O_DIRECT.

A store is a directory:
  meta.lmdb/        LMDB: format version, store settings, table records, page tables, committed version
  data/<id>.pages   one append-only data file per table
  writer.lock       flock'd by whoever writes (ingest, update), across threads and processes

`PageStore` is the API: create / open (a context manager), queries, reads, ingest, updates. It
checks its inputs (`store_checks`) and keeps one immutable snapshot per table, swapped on commit so
readers never lock; the work is done by
- `page_reads.PageReads`: one O_DIRECT read per distinct page, checksums, decode, gather, and the
  one account of SCM read time (the clock, tier "scm": measured and modelled);
- `page_writes.TableWriter`: shadow-paged ingest and updates, each committed in one LMDB
  transaction, and recovery of what a crash left uncommitted;
- `read_engines.make_reader`: the read engine (kernel AIO, else a thread pool);
- `store_meta.StoreMeta`: the LMDB records, each sealed with a checksum and bounded
  (`record_checks`) before use; `store_verify`: the scrub behind `verify()`.
Faults on disk raise the store errors of `sdm.core.errors` (CorruptMetadataError, CorruptPageError,
ShortFileError, UnsupportedVersionError, StoreIOError, DiskFullError) naming store, table, page or record.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass

import numpy as np

from sdm.core.errors import CorruptMetadataError, DiskFullError, InvalidInputError
from sdm.tiers.clock import Clock, TierCharge
from sdm.tiers.compaction import DEFAULT_MAX_SPACE_AMP, check_space_amp, compact_table, live_bytes, remove_old_file, space_amp
from sdm.tiers.direct_io import open_direct, probe_io_align
from sdm.tiers.endurance import WRITE_QUEUE_DEPTH
from sdm.tiers.ingest_source import RowSource, as_numpy
from sdm.tiers.page_reads import TIER, OpenTable, PageReads
from sdm.tiers.page_writes import DATA_DIR, LOCK_FILE, SPOOL_DIR, Commit, TableWriter
from sdm.tiers.os_faults import store_io
from sdm.tiers.read_engines import make_reader
from sdm.tiers.record_checks import check_file_length
from sdm.tiers.store_checks import (
    check_compression,
    check_device,
    check_distinct,
    check_engine,
    check_ids,
    check_name,
    check_page_bytes,
    check_queue_depth,
    check_row_order,
    check_values,
)
from sdm.tiers.store_meta import StoreMeta, TableRecord
from sdm.tiers.store_verify import VerifyReport, verify_store

__all__ = ["PageStore", "StoredTable", "TIER", "DATA_DIR", "SPOOL_DIR", "LOCK_FILE"]


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
    live_stored_bytes: int   # bytes the home pages occupy on disk, alignment padding included
    dead_pages: int          # pages replaced whole (stores of format <= 2)
    delta_pages: int         # pages of updated rows, past the home pages, until compaction
    has_row_order: bool
    data_file: str
    index_bytes: int         # memory of the in-RAM page table and slot map

    @property
    def compression_ratio(self) -> float:
        """Uncompressed page bytes / on-disk bytes of the live pages (1.0 without compression)."""
        return (self.num_pages - self.delta_pages) * self.page_bytes / max(self.live_stored_bytes, 1)


def _stored_device(settings: dict, store: str):
    """The device the store was created with (overrides included), else the preset of that name."""
    from sdm.hardware.devices import DeviceSpec

    if "device_spec" in settings:
        try:
            return DeviceSpec(**settings["device_spec"])
        except (TypeError, ValueError, InvalidInputError):  # fields changed since; fall back to the preset
            pass
    try:
        return check_device(settings["device"])
    except InvalidInputError as exc:
        raise CorruptMetadataError(f"{store}: store settings name device {settings['device']!r}, which is "
                                   f"not a device preset, and hold no usable device_spec ({exc})", store=store,
                                   record="store") from None


class PageStore:
    """Embedding tables on disk, read with O_DIRECT by page. Use `create` or `open`; a context manager."""

    def __init__(self, store_dir: str, meta: StoreMeta, *, device, queue_depth: int, clock: Clock,
                 engine: str, max_space_amp: float = DEFAULT_MAX_SPACE_AMP) -> None:
        self.path = store_dir
        # an update leaving a table's file over this x its live pages compacts the table (compaction.py)
        self.max_space_amp = check_space_amp(max_space_amp)
        self._retired_fds: list[int] = []  # descriptors of compacted-away files: readers may hold them
        self._meta = meta
        settings = meta.settings()
        self.page_bytes: int = settings["page_bytes"]
        self.io_align_bytes: int = settings["io_align_bytes"]
        self.compression: str | None = settings["compression"]
        self.device = check_device(device) if device is not None else _stored_device(settings, store_dir)
        self.queue_depth = check_queue_depth(queue_depth)
        check_engine(engine)
        self.clock = clock
        self._reads = PageReads(store_dir, make_reader(engine, self.queue_depth), self.io_align_bytes, self.device,
                                self.queue_depth, clock)
        self._writes = TableWriter(store_dir, meta, page_bytes=self.page_bytes, io_align_bytes=self.io_align_bytes,
                                   compression=self.compression, refresh=self.refresh)
        self._tables: dict[str, OpenTable] = {}
        self._version = meta.version()
        self._closed = False
        self.direct_io = True
        try:
            # Every record, page table and file length is checked before recovery cuts anything.
            loaded = self._load()
            self._writes.recover({rec.name: rec for rec, _, _ in loaded})
            self._install_all(loaded)
        except BaseException:
            self._reads.close()
            for t in self._tables.values():
                os.close(t.fd)
            raise

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def create(cls, path, device="nand", *, page_bytes: int = 4096, compression: str | None = None,
               queue_depth: int = 32, inject: bool = False, clock: Clock | None = None,
               engine: str = "auto", max_space_amp: float = DEFAULT_MAX_SPACE_AMP) -> "PageStore":
        """Make a new, empty store at `path` (a missing or empty directory)."""
        check_space_amp(max_space_amp)
        path = os.fspath(path)
        page_bytes = check_page_bytes(page_bytes)
        check_compression(compression)
        spec = check_device(device)
        clock = cls._make_clock(clock, inject)
        check_queue_depth(queue_depth)
        check_engine(engine)
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            raise InvalidInputError(f"{path}: exists and is not an empty directory; use PageStore.open for a store")
        with store_io(path, "creating the store", writing=True):
            os.makedirs(os.path.join(path, DATA_DIR), exist_ok=True)
            settings = {
                "page_bytes": page_bytes,
                "io_align_bytes": probe_io_align(os.path.join(path, DATA_DIR)),
                "compression": compression,
                "device": spec.name,
                "device_spec": spec.to_dict(),  # the configured medium, overrides included
            }
            meta = StoreMeta(path, create=True)
        try:
            meta.init_store(settings)
            return cls(path, meta, device=spec, queue_depth=queue_depth, clock=clock, engine=engine,
                       max_space_amp=max_space_amp)
        except BaseException:
            meta.close()
            raise

    @classmethod
    def open(cls, path, *, device=None, queue_depth: int = 32, inject: bool = False,
             clock: Clock | None = None, engine: str = "auto",
             max_space_amp: float = DEFAULT_MAX_SPACE_AMP) -> "PageStore":
        """Open an existing store at its last committed version. `device` defaults to the stored one."""
        path = os.fspath(path)
        check_space_amp(max_space_amp)
        clock = cls._make_clock(clock, inject)
        meta = StoreMeta(path)
        try:
            return cls(path, meta, device=device, queue_depth=queue_depth, clock=clock, engine=engine,
                       max_space_amp=max_space_amp)
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
        self._reads.close()
        for fd in [t.fd for t in self._tables.values()] + self._retired_fds:
            os.close(fd)
        self._tables, self._retired_fds = {}, []
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
        return self._reads.reader.name

    def table_info(self, name: str) -> StoredTable:
        t = self._table(name)
        live = live_bytes(t, self.io_align_bytes)
        index = t.page_table.nbytes + (t.slot_of.nbytes if t.slot_of is not None else 0)
        r = t.rec
        return StoredTable(
            name=r.name, num_rows=r.num_rows, dim=r.dim, dtype=t.dtype, row_bytes=t.row_bytes,
            page_bytes=r.page_bytes, rows_per_page=r.rows_per_page, num_pages=r.num_pages,
            compression=r.compression, stored_bytes=r.committed_bytes, live_stored_bytes=live,
            dead_pages=r.dead_pages, delta_pages=r.delta_pages, has_row_order=r.has_row_order,
            data_file=os.path.join(self.path, r.data_file), index_bytes=index,
        )

    def page_of(self, name: str, row_ids) -> np.ndarray:
        """Page id (index into the table's page table) of each row."""
        t = self._table(name)
        return t.slots(check_ids(name, t.rec.num_rows, row_ids)) // t.rec.rows_per_page

    def refresh(self) -> bool:
        """Pick up commits made by other processes; True when something changed."""
        if self._meta.txn_id() == self._txn_id:
            return False
        self._load_tables()
        return True

    def verify(self) -> VerifyReport:
        """A scrub: every metadata record and live page read and checked, every fault listed (not just
        the first), nothing written. See `store_verify`; `sdm-plan verify PATH` prints it."""
        self._check_open()
        return verify_store(self.path, meta=self._meta, reader=self._reads.reader)

    # ---- reads ---------------------------------------------------------------------------------
    def read_rows(self, name: str, row_ids) -> np.ndarray:
        """Rows `row_ids` of table `name` as a [n, dim] array, in the order given (repeats allowed)."""
        return self.read_rows_charged(name, row_ids)[0]

    def read_rows_charged(self, name: str, row_ids) -> tuple[np.ndarray, TierCharge]:
        """`read_rows`, and what the read was charged on the clock (tier "scm"): pages read (ops),
        bytes read, measured and modelled seconds. Counters kept above the store copy this charge:
        it is the one account of SCM read time."""
        t = self._table(name)
        return self._reads.read_rows(t, check_ids(name, t.rec.num_rows, row_ids))

    # ---- writes --------------------------------------------------------------------------------
    def add_table(self, name: str, rows, *, num_rows: int | None = None, dim: int | None = None,
                  dtype=None, row_order=None, progress: bool | None = None) -> None:
        """Ingest a table from a 2-D array (a np.memmap streams) or an iterable of 2-D row chunks.

        `row_order[p]` is the row stored in slot p (the planner's page layout); rows are then read
        by their own ids as usual. The table appears atomically when the ingest commits.
        """
        self._check_open()
        check_name(name, self._tables, self.path)
        source = RowSource.make(name, as_numpy(rows), num_rows, dim, dtype)
        if row_order is not None and source.num_rows is None:
            source.num_rows = len(row_order)  # a layout fixes the row count of a streamed table
        order = None if row_order is None else check_row_order(name, row_order, source.num_rows)
        with self._writes.exclusive():
            self._apply(self._writes.ingest(name, source, order, progress))

    def update_rows(self, name: str, row_ids, values) -> None:
        """Overwrite rows atomically: the new rows are appended in delta pages (row shadowing,
        `page_writes.update`), then committed at once; compaction past `max_space_amp`."""
        t = self._table(name)
        ids = check_ids(name, t.rec.num_rows, row_ids)
        values = check_values(name, t.dtype, t.rec.dim, len(ids), values)
        if len(ids) == 0:
            return
        check_distinct(name, ids)
        with self._writes.exclusive():
            t = self._table(name)  # exclusive() refreshed it if another process committed
            t0 = time.perf_counter()
            self._apply(self._writes.update(t, ids, values))
            after = self._tables[name].rec
            # delta pages appended, charged as SCM writes like reads are
            self._charge_writes(after.committed_bytes - t.rec.committed_bytes, after.num_pages - t.rec.num_pages,
                                time.perf_counter() - t0)
            if space_amp(self._tables[name], self.io_align_bytes) > self.max_space_amp:
                try:
                    self._compact(name)
                except DiskFullError as exc:
                    # the update is committed; raising now would tell the caller it was not. The table
                    # stays over its space bound until a later update (or compact()) finds room.
                    warnings.warn(f"{self.path}: table {name!r} not compacted, the disk is full ({exc})",
                                  RuntimeWarning, stacklevel=2)

    def _charge_writes(self, nbytes: int, pages: int, measured_s: float) -> TierCharge:
        """Charge page writes on the clock (tier "scm_write"): the device model's write time of
        `pages` page writes at WRITE_QUEUE_DEPTH in flight (tiers/endurance), beside what it took."""
        modelled = float(self.device.write_time_s(int(pages), self.page_bytes, WRITE_QUEUE_DEPTH)) if pages else 0.0
        return self.clock.charge("scm_write", pages, max(int(nbytes), 0), measured_s, modelled)

    def compact(self, name: str | None = None) -> int:
        """Rewrite table `name` (every table when None) without its dead space, every row back in its
        planned slot; returns the bytes freed.
        Updates do this themselves past `max_space_amp`; see `sdm.tiers.compaction`."""
        self._check_open()
        names = self.tables if name is None else [self._table(name).rec.name]
        freed = 0
        with self._writes.exclusive():
            for n in names:
                if self._tables[n].rec.dead_pages or self._tables[n].rec.delta_pages:
                    freed += self._compact(n)
        return freed

    def _compact(self, name: str) -> int:
        """Compact one table (writer lock held): commit the new file, then remove the old one."""
        t = self._tables[name]
        t0 = time.perf_counter()
        rec, table, slot_of, version, old_path = compact_table(self.path, self._meta, t, self.io_align_bytes)
        self._apply(Commit(rec, table, slot_of, version))
        self._charge_writes(rec.committed_bytes, len(table), time.perf_counter() - t0)  # the rewrite, on the clock
        remove_old_file(old_path)
        return t.rec.committed_bytes - rec.committed_bytes

    # ---- internals -----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError(f"page store {self.path} is closed")

    def _table(self, name: str) -> OpenTable:
        self._check_open()
        t = self._tables.get(name)
        if t is None:
            raise InvalidInputError(f"no table {name!r} in store {self.path}; tables: {self.tables}")
        return t

    def _apply(self, commit: Commit) -> None:
        self._version = commit.version
        self._txn_id = self._meta.txn_id()  # our own commit (the writer lock is held: no other)
        self._install(commit.rec, commit.page_table, commit.slot_of)

    def _load_tables(self) -> None:
        self._install_all(self._load())

    def _load(self) -> list[tuple[TableRecord, np.ndarray, np.ndarray | None]]:
        """Every table's record, page table and slot map, each checked (seal, bounds, file length)."""
        self._txn_id = self._meta.txn_id()
        settings = self._meta.settings()
        out = []
        for rec in self._meta.records().values():
            pt = self._meta.page_table(rec, settings)
            check_file_length(rec, self.path)
            out.append((rec, pt, self._meta.slot_of(rec)))
        return out

    def _install_all(self, loaded) -> None:
        self._version = self._meta.version()  # (`_txn_id` was read before `loaded`: a later commit is seen)
        for rec, pt, slot_of in loaded:
            self._install(rec, pt, slot_of)

    def _install(self, rec: TableRecord, page_table: np.ndarray, slot_of: np.ndarray | None) -> None:
        old = self._tables.get(rec.name)
        if old is not None and old.rec.data_file == rec.data_file:
            fd = old.fd
        else:
            with store_io(self.path, f"opening {rec.data_file}", rec.name):
                fd, self.direct_io = open_direct(os.path.join(self.path, rec.data_file))
            if old is not None:  # compacted: readers of the old snapshot may still read through it
                self._retired_fds.append(old.fd)
        if slot_of is not None and rec.num_pages * rec.rows_per_page < 2**31:
            slot_of = slot_of.astype(np.int32)  # half the index memory for tables under 2^31 rows
        self._tables[rec.name] = OpenTable(rec, page_table, slot_of, fd, np.dtype(rec.dtype))
