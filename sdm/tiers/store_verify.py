"""The scrub of a page store: every metadata record and every live page read and checked, every
fault reported (not just the first), nothing written.

`verify_store(path)` opens the store's LMDB read-only (no recovery, no lock file created where there
is none) and checks, in order: the format version and store settings; each key and table record
(seal, bounds: `record_checks`); each table's page table, slot map and delta log (seal, bounds,
permutation, the log tiling the delta pages); each data file's length; then each live page, read
with O_DIRECT in batches and checked against its xxh3_64 checksum, zstd pages decompressed to
exactly a page. `PageStore.verify()` runs the same
scrub through an open store's LMDB environment and read engine.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from sdm.core.errors import CorruptionError, SdmError, ShortFileError, UnsupportedVersionError
from sdm.tiers.direct_io import ShortReadError, aligned_empty, open_direct
from sdm.tiers.page_format import bad_page, decode_pages, round_up
from sdm.tiers.page_writes import DATA_DIR, DATA_FILE
from sdm.tiers.read_engines import Reader, make_reader
from sdm.tiers.record_checks import check_file_length
from sdm.tiers.store_meta import StoreMeta, TableRecord

SCRUB_BATCH_BYTES = 8 << 20   # pages read per engine call: bounds the scrub's buffer
MAX_LISTED_PAGES = 20         # damaged pages named per table; the rest are counted


@dataclass(frozen=True)
class Damage:
    """One fault: `kind` is "metadata", "page", "short_file", "version" or "io"."""

    kind: str
    message: str
    table: str | None = None
    page: int | None = None
    record: str | None = None


@dataclass
class VerifyReport:
    """What a scrub checked and what it found damaged (`ok` when nothing)."""

    store: str
    format_version: int | None = None
    tables: int = 0
    records_checked: int = 0
    pages_checked: int = 0
    bytes_read: int = 0
    damaged_pages: int = 0
    damage: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # recoverable, not damage: uncommitted tails, orphans

    @property
    def ok(self) -> bool:
        return not self.damage

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def add(self, exc: SdmError, kind: str | None = None) -> None:
        if kind is None:
            kind = {"CorruptPageError": "page", "ShortFileError": "short_file",
                    "UnsupportedVersionError": "version", "StoreIOError": "io"}.get(type(exc).__name__, "metadata")
        self.damage.append(Damage(kind, str(exc), getattr(exc, "table", None), getattr(exc, "page", None),
                                  getattr(exc, "record", None)))


def verify_store(path, *, meta: StoreMeta | None = None, reader: Reader | None = None) -> VerifyReport:
    """Scrub the page store at `path` (see the module doc). StoreFormatError if it is not a store."""
    path = os.fspath(path)
    report = VerifyReport(path)
    own_meta, own_reader = meta is None, reader is None
    try:
        if meta is None:
            try:
                meta = StoreMeta(path, readonly=True)
            except UnsupportedVersionError as exc:
                report.add(exc)
                return report
            except CorruptionError as exc:  # the store settings: nothing else can be checked without them
                report.add(exc)
                return report
        report.format_version = meta.format_version
        reader = reader or make_reader("auto", 32)
        _scrub(meta, reader, report)
    finally:
        if own_meta and meta is not None:
            meta.close()
        if own_reader and reader is not None:
            reader.close()
    return report


def _scrub(meta: StoreMeta, reader: Reader, report: VerifyReport) -> None:
    try:
        settings = meta.settings()
        meta.version()
        report.records_checked += 2
    except CorruptionError as exc:
        report.add(exc)
        return
    recs = []
    for item in meta.scan():
        report.records_checked += 1
        if isinstance(item, SdmError):
            report.add(item)
        else:
            recs.append(item)
    report.tables = len(recs)
    for rec in recs:
        try:
            pt = meta.page_table(rec, settings)
            meta.slot_of(rec, permutation=True)  # the planned map and the delta log, checked
            size = check_file_length(rec, meta.store_dir)
        except CorruptionError as exc:
            report.add(exc)
            continue
        report.records_checked += 1 + -(-rec.num_pages // 4096)
        if size > rec.committed_bytes:
            report.notes.append(f"table {rec.name!r}: {size - rec.committed_bytes} uncommitted bytes past the "
                                "last commit (a crashed write; the next open cuts them)")
        _scrub_pages(meta.store_dir, rec, pt, settings["io_align_bytes"], reader, report)
    known = {os.path.basename(r.data_file) for r in recs}
    data_dir = os.path.join(meta.store_dir, DATA_DIR)
    for fname in sorted(os.listdir(data_dir)) if os.path.isdir(data_dir) else []:
        if DATA_FILE.match(fname) and fname not in known:
            report.notes.append(f"data/{fname}: no table record (an uncommitted ingest; the next open removes it)")


def _scrub_pages(store: str, rec: TableRecord, pt: np.ndarray, align: int, reader: Reader,
                 report: VerifyReport) -> None:
    """Read every live page of `rec` in batches; every bad page counted, the first few named."""
    stride = rec.page_bytes
    order = np.argsort(pt["offset"], kind="stable")  # file order: the scrub reads sequentially
    per_batch = max(1, SCRUB_BATCH_BYTES // stride)
    buf = aligned_empty(per_batch * stride)
    bad_pages: list[tuple[int, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tmpfs / no O_DIRECT: a scrub is still a scrub
        fd, _ = open_direct(os.path.join(store, rec.data_file))
    try:
        for start in range(0, len(order), per_batch):
            pages = order[start : start + per_batch]
            ent = pt[pages]
            lengths = round_up(ent["length"].astype(np.int64), align)
            try:
                reader.read(fd, ent["offset"].astype(np.int64), lengths, buf, stride, None)
            except ShortReadError as exc:
                report.add(ShortFileError(f"{store}: table {rec.name!r}: {exc}", store=store, table=rec.name))
                return
            except OSError as exc:
                report.damage.append(_io_damage(rec, exc))
                return
            report.pages_checked += len(pages)
            report.bytes_read += int(lengths.sum())
            bad_pages += _bad_in_batch(buf, stride, ent, rec.page_bytes, pages)
    finally:
        os.close(fd)
    report.damaged_pages += len(bad_pages)
    for page, what in sorted(bad_pages)[:MAX_LISTED_PAGES]:
        report.damage.append(Damage("page", f"table {rec.name!r}: page {page} {what} (file {rec.data_file}, "
                                    f"offset {int(pt['offset'][page])})", rec.name, page, None))
    if len(bad_pages) > MAX_LISTED_PAGES:
        report.damage.append(Damage("page", f"table {rec.name!r}: {len(bad_pages) - MAX_LISTED_PAGES} more damaged "
                                    "pages", rec.name))


def _bad_in_batch(buf: np.ndarray, stride: int, ent: np.ndarray, page_bytes: int,
                  pages: np.ndarray) -> list[tuple[int, str]]:
    """(page id, what is wrong) for each page in `pages` that fails its checksum or does not decode."""
    bad, failed = [], set()
    todo = np.arange(len(ent))
    while len(todo):
        i = bad_page(buf, stride, ent, todo)
        if i < 0:
            break
        bad.append((int(pages[i]), "failed its xxh3_64 checksum"))
        failed.add(i)
        todo = todo[todo > i]
    for i in np.flatnonzero(ent["flags"]).tolist():  # one page at a time: every page that fails is named
        if i in failed:
            continue
        try:
            decode_pages(buf[i * stride : (i + 1) * stride].copy(), stride, ent[i : i + 1], page_bytes)
        except CorruptionError as exc:
            bad.append((int(pages[i]), f"does not decode ({exc.args[0]})"))
    return bad


def _io_damage(rec: TableRecord, exc: OSError) -> Damage:
    return Damage("io", f"table {rec.name!r}: reading {rec.data_file} failed: {exc}", rec.name)
