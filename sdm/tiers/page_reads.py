"""The page store's read path, and the one account of SCM read time.

A batch of row ids becomes one O_DIRECT read per distinct page (np.unique), issued by the read
engine with `queue_depth` reads in flight; each page's xxh3 checksum is checked while later reads
are still in flight, zstd pages are decompressed, and rows are gathered with one numpy fancy index.

Every SCM read, a lookup's or the read half of an update, is charged here and only here: to the
clock, tier "scm", with its measured wall time and the device model's time for that many reads of
that size at the store's queue depth (in inject mode the clock sleeps the difference). The charge
is returned with the rows, so callers that keep their own counters copy it rather than time and
model the same read again.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from sdm.core.errors import CorruptionError, CorruptPageError, ShortFileError
from sdm.tiers.clock import Clock, TierCharge
from sdm.tiers.direct_io import ShortReadError, aligned_empty
from sdm.tiers.os_faults import store_io
from sdm.tiers.page_format import bad_page, decode_pages, page_rows, round_up
from sdm.tiers.read_engines import Reader
from sdm.tiers.store_meta import TableRecord

TIER = "scm"
MIN_BUFFER_BYTES = 1 << 20  # per-thread read buffer floor: small batches never reallocate


@dataclass(frozen=True)
class OpenTable:
    """An immutable snapshot of one table; a commit swaps in a new one, so readers never lock."""

    rec: TableRecord
    page_table: np.ndarray          # PAGE_ENTRY_DTYPE per page
    slot_of: np.ndarray | None      # slot of each row (None: slot == row)
    fd: int                         # O_DIRECT read descriptor
    dtype: np.dtype

    @property
    def row_bytes(self) -> int:
        return self.rec.dim * self.dtype.itemsize

    def slots(self, ids: np.ndarray) -> np.ndarray:
        return ids if self.slot_of is None else self.slot_of[ids]


def bad_page_error(store_dir: str, t: OpenTable, page: int, offset: int, what: str) -> CorruptPageError:
    """The error for page `page` of table `t` at file offset `offset` that `what` (failed its
    checksum, does not decode, ...): names the table, the page, the file and the offset. One text
    for reads, row merges and compaction."""
    return CorruptPageError(f"table {t.rec.name!r}: page {page} {what} (file "
                            f"{os.path.join(store_dir, t.rec.data_file)}, offset {offset})",
                            store=store_dir, table=t.rec.name, page=page)


@dataclass(eq=False)
class PageReads:
    """Reads pages of open tables through one engine and charges each read to the clock once."""

    store_dir: str
    reader: Reader
    io_align_bytes: int     # stored pages are padded to this; reads are rounded up to it
    device: object          # the DeviceSpec whose model is charged (modelled_s)
    queue_depth: int        # reads in flight, also the depth the model is asked about
    clock: Clock
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def read_rows(self, t: OpenTable, ids: np.ndarray) -> tuple[np.ndarray, TierCharge]:
        """Rows `ids` (checked int64) as a [n, dim] array in the order given, and the read's charge."""
        t0 = time.perf_counter()
        if len(ids) == 0:
            return np.zeros((0, t.rec.dim), dtype=t.dtype), TierCharge()
        rpp = t.rec.rows_per_page
        slots = t.slots(ids)
        pages, inv = np.unique(slots // rpp, return_inverse=True)
        data, nbytes = self._fetch(t, pages)
        rows = page_rows(data, rpp, t.row_bytes)[inv.reshape(-1), slots % rpp]
        out = rows.view(t.dtype).reshape(len(ids), t.rec.dim)
        return out, self._charge(len(pages), nbytes, t0)

    def read_pages(self, t: OpenTable, pages: np.ndarray) -> tuple[np.ndarray, TierCharge]:
        """Pages (sorted, distinct) as a writable [n, page_bytes] array of their own, and the charge."""
        t0 = time.perf_counter()
        data, nbytes = self._fetch(t, pages)
        return data.copy(), self._charge(len(pages), nbytes, t0)

    def _charge(self, n_pages: int, nbytes: int, t0: float) -> TierCharge:
        """The clock's tier "scm": wall time since t0, and the device model's time for these reads."""
        modelled = float(self.device.read_time_s(n_pages, max(1, nbytes // max(n_pages, 1)), self.queue_depth))
        return self.clock.charge(TIER, n_pages, nbytes, time.perf_counter() - t0, modelled)

    def _buffer(self, nbytes: int) -> np.ndarray:
        """A per-thread aligned read buffer, grown as needed (reads copy rows out before returning)."""
        buf = getattr(self._local, "buf", None)
        if buf is None or len(buf) < nbytes:
            buf = aligned_empty(max(nbytes, MIN_BUFFER_BYTES))
            self._local.buf = buf
        return buf[:nbytes]

    def _fetch(self, t: OpenTable, pages: np.ndarray) -> tuple[np.ndarray, int]:
        """Read, verify and decode pages (sorted, distinct); returns ([n, page_bytes] pages, bytes read).
        The pages are a view of this thread's buffer, valid until its next read."""
        ent = t.page_table[pages]
        lengths = round_up(ent["length"].astype(np.int64), self.io_align_bytes)
        offsets = ent["offset"].astype(np.int64)
        stride = t.rec.page_bytes
        where = os.path.join(self.store_dir, t.rec.data_file)
        over = np.flatnonzero(lengths > stride)
        if len(over):  # checked when the page table was loaded; never let a read run past its buffer slot
            raise self._bad_page(t, pages, over[0], offsets, f"has length {int(lengths[over[0]])} > page stride {stride}")
        buf = self._buffer(len(pages) * stride)

        def verify(done: np.ndarray) -> None:  # runs while later reads are still in flight
            bad = bad_page(buf, stride, ent, done)
            if bad >= 0:
                raise self._bad_page(t, pages, bad, offsets, "failed its xxh3_64 checksum")

        with store_io(self.store_dir, f"reading {where}", t.rec.name):
            try:
                self.reader.read(t.fd, offsets, lengths, buf, stride, verify)
            except ShortReadError as exc:
                hit = np.flatnonzero(offsets == exc.offset)
                i = int(hit[0]) if len(hit) else 0
                raise ShortFileError(
                    f"table {t.rec.name!r}: page {int(pages[i])} is past the end of {where} (offset "
                    f"{int(offsets[i])}; the file was truncated): {exc}", store=self.store_dir, table=t.rec.name,
                    page=int(pages[i])) from None
        try:
            return decode_pages(buf, stride, ent, t.rec.page_bytes), int(lengths.sum())
        except CorruptionError as exc:  # a zstd page that passed its checksum yet does not decode
            raise self._bad_page(t, pages, exc.args[1], offsets, f"does not decode ({exc.args[0]})") from None

    def _bad_page(self, t: OpenTable, pages: np.ndarray, i: int, offsets: np.ndarray, what: str) -> CorruptPageError:
        return bad_page_error(self.store_dir, t, int(pages[i]), int(offsets[i]), what)

    def close(self) -> None:
        self.reader.close()
