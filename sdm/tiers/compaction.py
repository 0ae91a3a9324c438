"""Compaction of a page-store table: its live data rewritten into a new data file, dead space dropped.

Updates shadow rows (`page_writes`): updated rows are appended in delta pages and their old copies
become dead space (stores of format <= 2 also hold dead pages: pages replaced whole). Compaction
bounds that space: when a table's committed file exceeds `max_space_amp` x the bytes of its home
pages (the planned layout, what the table occupies with no update pending), a new file
`data/t<new id>.pages` is written: with delta pages, every row back in its home slot (`row_merge`);
otherwise the live pages' stored bytes copied as they are (checksums checked either way, so
compaction never launders a corrupt page). It is fsync'd, and the table's record, page table and
planned slot map are committed under the new table id in one LMDB transaction that also deletes the
old id's keys. Only then is the old file unlinked. A kill -9 anywhere leaves either the old table
(the new file is an orphan that `recover` removes) or the new one (the old file is the orphan): the
last committed version always opens.

Readers holding the old snapshot keep reading the old file through its open descriptor (unlinking a
file does not invalidate open descriptors on POSIX); `PageStore` retires that descriptor rather than
closing it under them.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import replace

import numpy as np
import xxhash

from sdm.core.atomic_file import fsync_dir
from sdm.core.errors import InvalidInputError, ShortFileError
from sdm.tiers.direct_io import drop_cached
from sdm.tiers.os_faults import store_io
from sdm.tiers.page_format import round_up
from sdm.tiers.page_reads import OpenTable, bad_page_error
from sdm.tiers.page_writes import pwrite_all
from sdm.tiers.row_merge import merge_pages

DEFAULT_MAX_SPACE_AMP = 1.2  # committed file bytes / live page bytes that triggers a compaction
COPY_CHUNK_BYTES = 16 << 20  # pages read and rewritten per step: bounds compaction memory


def check_space_amp(value) -> float:
    """`max_space_amp` as a float > 1 (1.0 would compact after every update)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value <= 1.0:
        raise InvalidInputError(f"max_space_amp must be a finite number > 1.0 (file bytes / live bytes), got {value!r}")
    return float(value)


def live_bytes(t: OpenTable, io_align_bytes: int) -> int:
    """Bytes the home pages of `t` occupy on disk, alignment padding included (delta pages are
    what updates added: compaction folds them back into these)."""
    return int(round_up(t.page_table["length"][: t.rec.home_pages].astype(np.int64), io_align_bytes).sum())


def space_amp(t: OpenTable, io_align_bytes: int) -> float:
    """Committed file bytes / home page bytes (1.0: no dead space, no update pending)."""
    return t.rec.committed_bytes / max(live_bytes(t, io_align_bytes), 1)


def compact_table(store_dir: str, meta, t: OpenTable, io_align_bytes: int):
    """Rewrite table `t` (the current snapshot; the caller holds the writer lock) into a new file and
    commit it. Returns (new record, page table, slot map, version, old data file path)."""
    home = meta.home_of(t.rec) if t.rec.delta_pages else None
    new_id = "t" + secrets.token_hex(6)
    data_rel = os.path.join(os.path.dirname(t.rec.data_file), new_id + ".pages")
    data_path = os.path.join(store_dir, data_rel)
    old_path = os.path.join(store_dir, t.rec.data_file)
    try:
        with store_io(store_dir, f"compacting {t.rec.data_file} into {data_rel}", t.rec.name, writing=True):
            src = os.open(old_path, os.O_RDONLY)
            fd = os.open(data_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                if t.rec.delta_pages:
                    table, tail = merge_pages(store_dir, t, home, src, fd, io_align_bytes)
                else:
                    table, tail = _copy_live_pages(store_dir, t, src, fd, io_align_bytes)
                os.fdatasync(fd)
                drop_cached(fd)
                drop_cached(src)
            finally:
                os.close(fd)
                os.close(src)
            fsync_dir(os.path.dirname(data_path))
        rec = replace(t.rec, table_id=new_id, data_file=data_rel, committed_bytes=tail, dead_pages=0,
                      num_pages=len(table), delta_pages=0)
        if t.rec.delta_pages:
            slot_of = home  # rows are back in their planned slots (None: slot == row)
        else:
            slot_of = None if t.slot_of is None else t.slot_of.astype(np.int64)
        version = meta.commit(rec, table, None, slot_of, drop_table_id=t.rec.table_id, bump_version=False)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(data_path)
        raise
    return rec, table, slot_of, version, old_path


def _copy_live_pages(store_dir: str, t: OpenTable, src: int, dst: int, align: int) -> tuple[np.ndarray, int]:
    """Stream the old file's live pages (stored bytes, compressed ones as they are) into `dst` in
    their order on disk, dead pages left out: large sequential reads and appends, whatever the
    update pattern was. Each page's checksum is checked on the way, so a corrupt page is never
    carried over. Returns (new page table, bytes written)."""
    old = t.page_table
    alen = round_up(old["length"].astype(np.int64), align)
    offs = old["offset"].astype(np.int64)
    order = np.argsort(offs, kind="stable")
    new_off = np.empty(len(old), np.int64)
    new_off[order] = np.concatenate([[0], np.cumsum(alen[order])[:-1]])
    table = old.copy()
    table["offset"] = new_off.astype(np.uint64)
    where = os.path.join(store_dir, t.rec.data_file)
    digest = xxhash.xxh3_64_intdigest
    tail, a, n = 0, 0, len(order)
    while a < n:
        g0 = int(offs[order[a]])
        b = int(np.searchsorted(offs[order], g0 + COPY_CHUNK_BYTES, side="left"))
        while b > a + 1 and offs[order[b - 1]] + alen[order[b - 1]] > g0 + COPY_CHUNK_BYTES:
            b -= 1  # the group's last page ends inside the chunk (one page at least)
        b = max(b, a + 1)
        pages = order[a:b]
        span = int(offs[pages[-1]] + alen[pages[-1]]) - g0
        buf = np.empty(span, np.uint8)
        got = os.preadv(src, [memoryview(buf)], g0)
        if got != span:
            raise ShortFileError(f"table {t.rec.name!r}: pages past the end of {where} (compaction read {got} of "
                                 f"{span} bytes at {g0})", store=store_dir, table=t.rec.name, page=int(pages[-1]))
        mv = memoryview(buf)
        rel = (offs[pages] - g0).tolist()
        for p, pos, length, check in zip(pages.tolist(), rel, old["length"][pages].tolist(),
                                         old["checksum"][pages].tolist()):
            if digest(mv[pos : pos + length]) != check:
                raise bad_page_error(store_dir, t, p, int(offs[p]), "failed its xxh3_64 checksum during compaction")
        # live alignment units (offsets and padded lengths are multiples of `align`): +1 where a
        # live page starts, -1 where it ends, summed
        edge = np.zeros(span // align + 1, np.int32)
        np.add.at(edge, (offs[pages] - g0) // align, 1)
        np.add.at(edge, (offs[pages] - g0 + alen[pages]) // align, -1)
        live = buf.reshape(-1, align)[np.cumsum(edge[:-1]) > 0].reshape(-1)
        pwrite_all(dst, live, tail)
        tail += len(live)
        a = b
    return table, tail


def remove_old_file(path: str) -> None:
    """Unlink the data file a compaction replaced (an orphan `recover` removes if this never runs)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fsync_dir(os.path.dirname(path))
