"""Compaction of a page-store table: its live pages rewritten into a new data file, dead pages dropped.

Updates are shadow-paged (`page_writes`): every changed page is appended and the one it replaces
becomes dead space. Compaction bounds that space: when a table's committed file exceeds
`max_space_amp` x the bytes its live pages occupy, the live pages are read (checksums checked, so
compaction never launders a corrupt page), re-encoded into a new file `data/t<new id>.pages` in
page order, fsync'd, and the table's record, page table and slot map are committed under the new
table id in one LMDB transaction that also deletes the old id's segments. Only then is the old file
unlinked. A kill -9 anywhere leaves either the old table (the new file is an orphan that `recover`
removes) or the new one (the old file is the orphan): the last committed version always opens.

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

from sdm.core.atomic_file import fsync_dir
from sdm.core.errors import InvalidInputError
from sdm.tiers.direct_io import drop_cached
from sdm.tiers.os_faults import store_io
from sdm.tiers.page_format import encode_pages, round_up
from sdm.tiers.page_reads import OpenTable, PageReads
from sdm.tiers.page_writes import pwrite_all

DEFAULT_MAX_SPACE_AMP = 1.2  # committed file bytes / live page bytes that triggers a compaction
COPY_CHUNK_BYTES = 16 << 20  # pages read and rewritten per step: bounds compaction memory


def check_space_amp(value) -> float:
    """`max_space_amp` as a float > 1 (1.0 would compact after every update)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value <= 1.0:
        raise InvalidInputError(f"max_space_amp must be a finite number > 1.0 (file bytes / live bytes), got {value!r}")
    return float(value)


def live_bytes(t: OpenTable, io_align_bytes: int) -> int:
    """Bytes the live pages of `t` occupy on disk, alignment padding included."""
    return int(round_up(t.page_table["length"].astype(np.int64), io_align_bytes).sum())


def space_amp(t: OpenTable, io_align_bytes: int) -> float:
    """Committed file bytes / live page bytes (1.0: no dead space)."""
    return t.rec.committed_bytes / max(live_bytes(t, io_align_bytes), 1)


def compact_table(store_dir: str, meta, t: OpenTable, reads: PageReads, io_align_bytes: int):
    """Rewrite table `t` (the current snapshot; the caller holds the writer lock) into a new file and
    commit it. Returns (new record, page table, slot map, version, old data file path)."""
    n_pages = len(t.page_table)
    step = max(1, COPY_CHUNK_BYTES // t.rec.page_bytes)
    new_id = "t" + secrets.token_hex(6)
    data_rel = os.path.join(os.path.dirname(t.rec.data_file), new_id + ".pages")
    data_path = os.path.join(store_dir, data_rel)
    table = np.empty_like(t.page_table)
    try:
        with store_io(store_dir, f"compacting {t.rec.data_file} into {data_rel}", t.rec.name, writing=True):
            fd = os.open(data_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                tail = 0
                for a in range(0, n_pages, step):
                    pages = np.arange(a, min(a + step, n_pages), dtype=np.int64)
                    data, _ = reads.read_pages(t, pages)
                    blob, ent = encode_pages(data, compression=t.rec.compression, align=io_align_bytes)
                    ent["offset"] += np.uint64(tail)
                    pwrite_all(fd, blob, tail)
                    table[a : a + len(pages)] = ent
                    tail += len(blob)
                os.fdatasync(fd)
                drop_cached(fd)
            finally:
                os.close(fd)
            fsync_dir(os.path.dirname(data_path))
        rec = replace(t.rec, table_id=new_id, data_file=data_rel, committed_bytes=tail, dead_pages=0)
        slot_of = None if t.slot_of is None else t.slot_of.astype(np.int64)
        version = meta.commit(rec, table, None, slot_of, drop_table_id=t.rec.table_id, bump_version=False)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(data_path)
        raise
    return rec, table, t.slot_of, version, os.path.join(store_dir, t.rec.data_file)


def remove_old_file(path: str) -> None:
    """Unlink the data file a compaction replaced (an orphan `recover` removes if this never runs)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fsync_dir(os.path.dirname(path))
