"""On-disk page format of the SCM store: rows packed into pages, a checksum per page, optional zstd.

A page holds `rows_per_page = page_bytes // row_bytes` whole rows (rows never straddle a page, so a
row costs exactly one device read); the tail of a page is zero padding. A stored page is either the
raw page or its zstd frame, padded to the I/O alignment so O_DIRECT can read it. Its xxh3_64
checksum covers exactly the stored (possibly compressed) bytes, so corruption is caught before any
decompression.
"""
from __future__ import annotations

import numpy as np
import xxhash

from sdm.core.errors import CorruptionError
import zstandard

# One page-table entry: where the stored page lives, how long it is, how it is encoded, its checksum.
# 24 bytes per page is the store's index memory (0.6% of the data at 4 KiB pages).
PAGE_ENTRY_DTYPE = np.dtype([("offset", "<u8"), ("length", "<u4"), ("flags", "<u4"), ("checksum", "<u8")])
FLAG_ZSTD = 1
COMPRESSIONS = (None, "zstd")
ZSTD_LEVEL = 3  # zstd's default level: fast enough that ingest stays I/O bound


def checksum(data) -> int:
    """xxh3_64 of a bytes-like object."""
    return xxhash.xxh3_64_intdigest(data)


def round_up(n, align: int):
    return (n + align - 1) // align * align


def rows_per_page(row_bytes: int, page_bytes: int) -> int:
    return page_bytes // row_bytes


def pack_rows(rows: np.ndarray, rows_per_page: int, page_bytes: int) -> np.ndarray:
    """[k, row_bytes] uint8 rows -> [ceil(k / rows_per_page), page_bytes] uint8 pages, zero padded."""
    k, row_bytes = rows.shape
    npages = -(-k // rows_per_page)
    pages = np.zeros((npages, page_bytes), dtype=np.uint8)
    slots = page_rows(pages, rows_per_page, row_bytes)
    full = k // rows_per_page
    slots[:full] = rows[: full * rows_per_page].reshape(full, rows_per_page, row_bytes)
    if full < npages:
        slots[full, : k - full * rows_per_page] = rows[full * rows_per_page :]
    return pages


def page_rows(pages: np.ndarray, rows_per_page: int, row_bytes: int) -> np.ndarray:
    """A writable view of [n, page_bytes] pages as [n, rows_per_page, row_bytes] (never a copy)."""
    return np.lib.stride_tricks.as_strided(
        pages, shape=(len(pages), rows_per_page, row_bytes), strides=(pages.strides[0], row_bytes, 1)
    )


def encode_pages(pages: np.ndarray, *, compression: str | None, align: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode [n, page_bytes] pages for disk.

    Returns (blob, entries): `blob` is the concatenated stored pages (each padded to `align`, so
    len(blob) is a multiple of `align`) and `entries` a PAGE_ENTRY_DTYPE array whose `offset` is
    relative to the start of the blob. A page that zstd cannot shrink by at least one alignment
    unit is stored raw: compression never makes a read longer.
    """
    n, page_bytes = pages.shape
    entries = np.zeros(n, dtype=PAGE_ENTRY_DTYPE)
    if compression is None:
        flat = pages.reshape(-1)
        mv = memoryview(flat)
        entries["offset"] = np.arange(n, dtype=np.uint64) * np.uint64(page_bytes)
        entries["length"] = page_bytes
        entries["checksum"] = [checksum(mv[i * page_bytes : (i + 1) * page_bytes]) for i in range(n)]
        return flat, entries
    if compression != "zstd":
        raise ValueError(f"unknown compression {compression!r}; expected one of {COMPRESSIONS}")
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=False)
    parts: list[bytes] = []
    pos = 0
    for i in range(n):
        raw = pages[i].tobytes()
        comp = cctx.compress(raw)
        if round_up(len(comp), align) < page_bytes:
            data, flags = comp, FLAG_ZSTD
        else:
            data, flags = raw, 0
        entries[i] = (pos, len(data), flags, checksum(data))
        pad = round_up(len(data), align) - len(data)
        parts.append(data)
        if pad:
            parts.append(b"\0" * pad)
        pos += len(data) + pad
    return np.frombuffer(b"".join(parts), dtype=np.uint8), entries


def bad_page(buf: np.ndarray, stride: int, entries: np.ndarray, which: np.ndarray | None = None) -> int:
    """First page index i (of `which`, default all) whose stored bytes at buf[i*stride:] fail the
    checksum in entries[i], or -1."""
    mv = memoryview(buf)
    idx = np.arange(len(entries)) if which is None else np.asarray(which)
    sel = entries[idx]
    digest = xxhash.xxh3_64_intdigest
    for i, n, s in zip(idx.tolist(), sel["length"].tolist(), sel["checksum"].tolist()):
        start = i * stride
        if digest(mv[start : start + n]) != s:
            return i
    return -1


def decode_pages(buf: np.ndarray, stride: int, entries: np.ndarray, page_bytes: int) -> np.ndarray:
    """[n, page_bytes] pages from stored pages in `buf`; raw pages are a view, zstd ones decompressed.
    A zstd page that does not decompress to exactly page_bytes raises CorruptionError(message, index)."""
    pages = buf[: len(entries) * stride].reshape(len(entries), stride)[:, :page_bytes]
    comp = np.flatnonzero(entries["flags"] & FLAG_ZSTD)
    if len(comp) == 0:
        return pages
    dctx = zstandard.ZstdDecompressor()  # not thread-safe: one per call
    lens = entries["length"]
    for i in comp.tolist():
        try:
            raw = dctx.decompress(pages[i, : int(lens[i])].tobytes(), max_output_size=page_bytes)
        except zstandard.ZstdError as exc:
            raise CorruptionError(str(exc), i) from None
        if len(raw) != page_bytes:
            raise CorruptionError(f"decompressed to {len(raw)} bytes, not {page_bytes}", i)
        pages[i] = np.frombuffer(raw, dtype=np.uint8)
    return pages
