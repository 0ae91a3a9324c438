"""Compaction of a table whose updated rows sit in delta pages: every row written back to its home
slot (the planned layout ingest wrote), into a new file of home pages only.

Updates shadow rows (`page_writes.update`): a batch of k rows is appended as ceil(k / rows_per_page)
dense delta pages and logged (`delta/` keys; the slot map is the plan with the log replayed over
it), leaving their old copies dead. Once the
file passes the space bound, `compaction.compact_table` calls `merge_pages`: the home pages are read
in order a chunk at a time, each chunk's moved rows are read from their delta pages and patched into
their home slots, and the chunk is encoded and appended to the new file. Every page read is checked
against its checksum first, so a merge never launders a corrupt page. Memory stays within a few
chunks whatever the table's size.
"""
from __future__ import annotations

import os

import numpy as np

from sdm.core.errors import CorruptionError, CorruptPageError, ShortFileError
from sdm.tiers.page_format import bad_page, decode_pages, encode_pages, page_rows, round_up
from sdm.tiers.page_reads import OpenTable, bad_page_error
from sdm.tiers.page_writes import pwrite_all

MERGE_CHUNK_PAGES = 4096   # home pages rebuilt per step, and delta pages read per step: bounds memory
IOV_MAX = 1024             # buffers per preadv call (Linux's limit)


def merge_pages(store_dir: str, t: OpenTable, home_of: np.ndarray | None, src: int, dst: int,
                align: int) -> tuple[np.ndarray, int]:
    """Write the home pages of `t` (read through `src`) with every moved row back in its home slot
    (`home_of`: each row's planned slot; None: slot == row) to `dst` from offset 0. Returns (page
    table of the new file, bytes written)."""
    rec, rpp, row_bytes = t.rec, t.rec.rows_per_page, t.row_bytes
    home_pages = rec.home_pages
    cur = t.slot_of.astype(np.int64)
    moved = np.flatnonzero(cur >= home_pages * rpp)     # rows whose live copy is in a delta page
    to_slot = moved if home_of is None else home_of[moved].astype(np.int64)
    by_home = np.argsort(to_slot, kind="stable")
    to_slot, from_slot = to_slot[by_home], cur[moved[by_home]]
    parts, tail = [], 0
    for p0 in range(0, home_pages, MERGE_CHUNK_PAGES):
        p1 = min(home_pages, p0 + MERGE_CHUNK_PAGES)
        data = read_stored(store_dir, t, src, np.arange(p0, p1), align)
        a, b = np.searchsorted(to_slot, [p0 * rpp, p1 * rpp])
        for q0 in range(int(a), int(b), MERGE_CHUNK_PAGES):
            q = slice(q0, min(int(b), q0 + MERGE_CHUNK_PAGES))
            dpages, inv = np.unique(from_slot[q] // rpp, return_inverse=True)
            rows = page_rows(read_stored(store_dir, t, src, dpages, align), rpp, row_bytes)[
                inv.reshape(-1), from_slot[q] % rpp]
            page_rows(data, rpp, row_bytes)[to_slot[q] // rpp - p0, to_slot[q] % rpp] = rows
        blob, ent = encode_pages(data, compression=rec.compression, align=align)
        ent["offset"] += np.uint64(tail)
        pwrite_all(dst, blob, tail)
        tail += len(blob)
        parts.append(ent)
    return np.concatenate(parts), tail


def read_stored(store_dir: str, t: OpenTable, fd: int, pages: np.ndarray, align: int) -> np.ndarray:
    """Pages `pages` of `t` read through `fd` (runs of adjacent pages in one preadv), each checked
    against its checksum, decoded: a writable [n, page_bytes] array of their own."""
    ent = t.page_table[pages]
    stride = t.rec.page_bytes
    offs = ent["offset"].astype(np.int64)
    lens = round_up(ent["length"].astype(np.int64), align)
    buf = np.empty(len(pages) * stride, np.uint8)
    mv = memoryview(buf)
    where = os.path.join(store_dir, t.rec.data_file)
    # runs of pages adjacent on disk (one numpy pass), each read in preadv calls of <= IOV_MAX pages
    starts = np.flatnonzero(np.r_[True, offs[1:] != offs[:-1] + lens[:-1]])
    ends = np.r_[starts[1:], len(pages)]
    for i, j in ((a, min(a + IOV_MAX, e)) for s, e in zip(starts.tolist(), ends.tolist())
                 for a in range(s, e, IOV_MAX)):
        want = int(lens[i:j].sum())
        got = os.preadv(fd, [mv[k * stride : k * stride + int(lens[k])] for k in range(i, j)], int(offs[i]))
        if got != want:
            raise ShortFileError(f"table {t.rec.name!r}: page {int(pages[j - 1])} is past the end of {where} "
                                 f"(compaction read {got} of {want} bytes at {int(offs[i])})", store=store_dir,
                                 table=t.rec.name, page=int(pages[j - 1]))
    bad = bad_page(buf, stride, ent)
    if bad >= 0:
        raise _corrupt(store_dir, t, pages, bad, offs, "failed its xxh3_64 checksum")
    try:
        out = decode_pages(buf, stride, ent, t.rec.page_bytes)
    except CorruptionError as exc:
        raise _corrupt(store_dir, t, pages, exc.args[1], offs, f"does not decode ({exc.args[0]})") from None
    return np.ascontiguousarray(out)


def _corrupt(store_dir: str, t: OpenTable, pages: np.ndarray, i: int, offs: np.ndarray, what: str) -> CorruptPageError:
    return bad_page_error(store_dir, t, int(pages[i]), int(offs[i]), f"{what} during compaction")
