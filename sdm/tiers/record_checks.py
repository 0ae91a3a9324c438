"""Bounds of the page store's metadata: every field of a record checked against the others, the
store settings and the data files before anything is read, truncated or written.

Checksums (`record_seal`) catch a record that changed since it was written; these checks catch a
record that was wrong when written or that carries no checksum (format 1), and anything a checksum
cannot see: a page table that points past its file, a file shorter than its page table. Each check
raises CorruptMetadataError (or ShortFileError) naming the store, the table and the record or page.
Vector ops only: the page table of a table of a billion rows is checked in a few numpy passes.
"""
from __future__ import annotations

import os
import re
import stat

import numpy as np

from sdm.core.errors import CorruptMetadataError, ShortFileError
from sdm.tiers.page_format import COMPRESSIONS, FLAG_ZSTD, round_up

PAGE_ALIGN_BYTES = 4096          # store page sizes are multiples of this (as check_page_bytes enforces)
IO_ALIGNS = (512, 4096)          # what probe_io_align can return
TABLE_ID = re.compile(r"t[0-9a-f]{12}\Z")   # page_writes.ingest: "t" + 6 random bytes in hex
MAX_DTYPE_BYTES = 64             # widest numpy scalar a table may store (complex256 is 32)

SETTINGS_FIELDS = {"page_bytes": int, "io_align_bytes": int, "compression": (str, type(None)), "device": str}
RECORD_FIELDS = {
    "name": str, "table_id": str, "num_rows": int, "dim": int, "dtype": str, "page_bytes": int,
    "rows_per_page": int, "num_pages": int, "compression": (str, type(None)), "data_file": str,
    "committed_bytes": int, "dead_pages": int, "has_row_order": bool, "delta_pages": int,
}


def _typed(doc, fields: dict, required: set, fail) -> None:
    """`doc` is a dict whose `fields` have their types (bool is not an int here) and no others."""
    if not isinstance(doc, dict):
        fail(f"is a JSON {type(doc).__name__}, not an object")
    unknown = sorted(set(doc) - set(fields) - {"device_spec", "legacy_records"})
    missing = sorted(required - set(doc))
    if unknown or missing:
        fail(f"has unknown fields {unknown} / lacks fields {missing}")
    for k, want in fields.items():
        if k not in doc:
            continue
        v = doc[k]
        bad_bool = isinstance(v, bool) and want is int
        if bad_bool or not isinstance(v, want):
            fail(f"field {k!r} is {v!r}, not of type {getattr(want, '__name__', want)}")


def check_settings(doc, store: str) -> dict:
    """Store settings: page size a multiple of 4 KiB, a known I/O alignment and compression."""
    def fail(msg):
        raise CorruptMetadataError(f"{store}: store settings record 'store' {msg}", store=store, record="store")

    _typed(doc, SETTINGS_FIELDS, set(SETTINGS_FIELDS), fail)
    if doc["page_bytes"] <= 0 or doc["page_bytes"] % PAGE_ALIGN_BYTES:
        fail(f"has page_bytes {doc['page_bytes']}, not a positive multiple of {PAGE_ALIGN_BYTES}")
    if doc["io_align_bytes"] not in IO_ALIGNS:
        fail(f"has io_align_bytes {doc['io_align_bytes']}, not one of {IO_ALIGNS}")
    if doc["compression"] not in COMPRESSIONS:
        fail(f"has compression {doc['compression']!r}, not one of {COMPRESSIONS}")
    if "device_spec" in doc and not isinstance(doc["device_spec"], dict):
        fail("has a device_spec that is not an object")
    if not isinstance(doc.get("legacy_records", False), bool):
        fail("has a legacy_records that is not true or false")
    return doc


def check_record(doc, key: str, settings: dict, store: str) -> dict:
    """A table record: every field bounded by the others and the store settings (see module doc)."""
    name = doc.get("name") if isinstance(doc, dict) else None

    def fail(msg):
        raise CorruptMetadataError(f"{store}: table record {key!r} {msg}", store=store,
                                   table=name if isinstance(name, str) else None, record=key)

    _typed(doc, RECORD_FIELDS, set(RECORD_FIELDS) - {"dead_pages", "has_row_order", "delta_pages"}, fail)
    if key != f"table/{name}":
        fail(f"holds table {name!r}: the record of another table")
    if not TABLE_ID.match(doc["table_id"]):
        fail(f"has table_id {doc['table_id']!r}, not 't' and 12 hex digits")
    if os.path.normpath(doc["data_file"]) != os.path.join("data", doc["table_id"] + ".pages"):
        fail(f"has data_file {doc['data_file']!r}, expected data/{doc['table_id']}.pages")
    try:
        dtype = np.dtype(doc["dtype"])
    except TypeError:
        fail(f"has dtype {doc['dtype']!r}, not a numpy dtype")
    if dtype.hasobject or dtype.itemsize == 0 or dtype.itemsize > MAX_DTYPE_BYTES or dtype.str != doc["dtype"]:
        fail(f"has dtype {doc['dtype']!r}, not a fixed-width numeric dtype")
    for k in ("num_rows", "dim", "rows_per_page", "num_pages", "page_bytes"):
        if doc[k] < 1:
            fail(f"has {k} {doc[k]}, not positive")
    if doc["committed_bytes"] < 0 or doc.get("dead_pages", 0) < 0 or doc.get("delta_pages", 0) < 0:
        fail("has a negative committed_bytes, dead_pages or delta_pages")
    row_bytes = doc["dim"] * dtype.itemsize
    store_pb = settings["page_bytes"]
    page_bytes = store_pb if row_bytes <= store_pb else round_up(row_bytes, store_pb)
    if doc["page_bytes"] != page_bytes:
        fail(f"has page_bytes {doc['page_bytes']}; rows of {row_bytes} B (dim {doc['dim']} x {dtype}) "
             f"in a store of {store_pb} B pages have pages of {page_bytes} B")
    if doc["rows_per_page"] != page_bytes // row_bytes:
        fail(f"has rows_per_page {doc['rows_per_page']}; {page_bytes} B pages hold "
             f"{page_bytes // row_bytes} rows of {row_bytes} B")
    home = -(-doc["num_rows"] // doc["rows_per_page"])
    if doc["num_pages"] != home + doc.get("delta_pages", 0):
        fail(f"has num_pages {doc['num_pages']}; {doc['num_rows']} rows at {doc['rows_per_page']} "
             f"per page need {home}, plus {doc.get('delta_pages', 0)} delta pages")
    if doc["compression"] != settings["compression"]:
        fail(f"has compression {doc['compression']!r}, the store {settings['compression']!r}")
    if doc["committed_bytes"] % settings["io_align_bytes"]:
        fail(f"has committed_bytes {doc['committed_bytes']}, not a multiple of {settings['io_align_bytes']}")
    return doc


def check_page_table(pt: np.ndarray, rec, settings: dict, store: str) -> None:
    """Page entries: lengths within the page stride (exactly it for raw pages), known flags, offsets
    aligned, every stored page inside the committed part of its file. O(pages), no sort: an entry
    pointing at another page's bytes is caught by that read's checksum, and writes only append."""
    name, align = rec.name, settings["io_align_bytes"]

    def fail(i, msg):
        raise CorruptMetadataError(f"{store}: table {name!r}: page-table entry of page {int(i)} {msg}",
                                   store=store, table=name, page=int(i), record=f"pt/{rec.table_id}")

    length, flags = pt["length"].astype(np.int64), pt["flags"].astype(np.int64)
    off = pt["offset"]
    zstd = (flags & FLAG_ZSTD) != 0
    checks = [
        (flags & ~FLAG_ZSTD != 0, "has unknown flags"),
        (zstd & (rec.compression != "zstd"), "is zstd-compressed in a store without compression"),
        (~zstd & (length != rec.page_bytes), f"is a raw page whose length is not {rec.page_bytes}"),
        (zstd & ((length < 1) | (round_up(length, align) >= rec.page_bytes)),
         f"is a zstd page whose length is not in [1, {rec.page_bytes - align}]"),
        (off % np.uint64(align) != 0, f"has an offset that is not a multiple of {align}"),
        (off > np.uint64(rec.committed_bytes), f"starts past committed_bytes {rec.committed_bytes}"),
    ]
    for bad, msg in checks:
        hit = np.flatnonzero(bad)
        if len(hit):
            fail(hit[0], f"{msg} (offset {int(off[hit[0]])}, length {int(length[hit[0]])}, flags {int(flags[hit[0]])})")
    end = off.astype(np.int64) + round_up(length, align)
    hit = np.flatnonzero(end > rec.committed_bytes)
    if len(hit):
        fail(hit[0], f"ends at {int(end[hit[0]])}, past committed_bytes {rec.committed_bytes}")


def check_slot_map(slot_of: np.ndarray, rec, store: str, *, permutation: bool) -> None:
    """Slots in [0, num_rows); with `permutation` (unsealed records, the scrub) each slot used once."""
    def fail(msg):
        raise CorruptMetadataError(f"{store}: table {rec.name!r}: slot map {msg}", store=store, table=rec.name,
                                   record=f"slot/{rec.table_id}")

    if len(slot_of) and (slot_of.min() < 0 or slot_of.max() >= rec.num_rows):
        r = int(np.flatnonzero((slot_of < 0) | (slot_of >= rec.num_rows))[0])
        fail(f"gives row {r} slot {int(slot_of[r])}, outside [0, {rec.num_rows})")
    if permutation:
        used = np.zeros(rec.num_rows, dtype=bool)
        used[slot_of] = True
        if not used.all():
            fail(f"is not a permutation: slot {int(np.flatnonzero(~used)[0])} holds no row, another holds two")


def check_delta_log(entries: list[tuple[str, bytes]], rec, store: str) -> list[tuple[int, np.ndarray]]:
    """The delta log of `rec` ((key, payload) in key order) as (first page, row ids): each entry a
    non-empty int64 array of distinct ids in [0, num_rows), the entries' pages tiling the delta
    pages [home_pages, num_pages) in order. A log that disagrees with the record is corrupt."""
    out, page, rpp = [], rec.home_pages, rec.rows_per_page
    for key, payload in entries:
        def fail(msg):
            raise CorruptMetadataError(f"{store}: table {rec.name!r}: delta-log record {key!r} {msg}", store=store,
                                       table=rec.name, record=key)

        first = int(key.rsplit("/", 1)[1])
        if first != page:
            fail(f"starts at page {first}, expected {page} (the log must tile the delta pages in order)")
        if not payload or len(payload) % 8:
            fail(f"is {len(payload)} bytes, not a non-empty array of int64 ids")
        ids = np.frombuffer(payload, dtype="<i8")
        if ids.min() < 0 or ids.max() >= rec.num_rows:
            fail(f"names row {int(ids[(ids < 0) | (ids >= rec.num_rows)][0])}, outside [0, {rec.num_rows})")
        if len(np.unique(ids)) != len(ids):
            fail("names a row twice")
        out.append((first, ids))
        page += -(-len(ids) // rpp)
    if page != rec.num_pages:
        raise CorruptMetadataError(f"{store}: table {rec.name!r}: delta log covers pages up to {page}, the record "
                                   f"has {rec.num_pages} ({rec.delta_pages} delta pages)", store=store,
                                   table=rec.name, record=f"delta/{rec.table_id}")
    return out


def check_file_length(rec, store: str) -> int:
    """The data file's size, after checking it holds every committed byte (else ShortFileError)."""
    path = os.path.join(store, rec.data_file)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ShortFileError(f"{store}: data file {rec.data_file} of table {rec.name!r} is missing",
                             store=store, table=rec.name) from None
    size = st.st_size
    if not stat.S_ISREG(st.st_mode):
        raise ShortFileError(f"{store}: data file {rec.data_file} of table {rec.name!r} is not a regular file",
                             store=store, table=rec.name)
    if size < rec.committed_bytes:
        raise ShortFileError(
            f"{store}: data file {rec.data_file} of table {rec.name!r} is {size} bytes, shorter than its "
            f"{rec.committed_bytes} committed bytes (truncated)", store=store, table=rec.name)
    return size
