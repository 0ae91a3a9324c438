"""The full scrub of an EmbeddingStore directory: what `EmbeddingStore.verify()` and `sdm-plan verify
PATH` (PATH holding a store.json) run. Writes nothing.

    report = scrub_store(path)        # or store.verify() on an open store
    report.ok, report.damage          # every fault found, each naming file/table/page/record

It checks, in order: store.json (checksum, every field's bounds) and each placement array
(checksum, dtype, shape, ids in range, distinct) via `read_store`; the page store's own scrub
(`sdm.tiers.store_verify`: every record and live page); and, when both are readable, store.json's
tables against the page store's records (`check_pages`: num_rows, stored width and dtype).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sdm.core.errors import SdmError
from sdm.runtime.store_create import resolve_hardware
from sdm.runtime.store_files import META_FILE, check_pages, read_store
from sdm.runtime.store_json_checks import damaged
from sdm.tiers.store_meta import StoreMeta
from sdm.tiers.store_verify import Damage, VerifyReport, verify_store

__all__ = ["StoreScrubReport", "scrub_store", "SCM_DIR"]

SCM_DIR = "scm"


@dataclass
class StoreScrubReport:
    """What the scrub of an EmbeddingStore checked and found (`ok` when nothing is damaged)."""

    path: str
    tables: int = 0                      # tables store.json lists (0 when it is unreadable)
    arrays_checked: int = 0              # placement arrays read and checked
    store_json_ok: bool = False
    pages: VerifyReport | None = None    # the page store's own scrub
    damage: list[Damage] = field(default_factory=list)   # store.json, arrays, spec/page-store mismatch

    @property
    def ok(self) -> bool:
        return not self.damage and self.pages is not None and self.pages.ok

    @property
    def all_damage(self) -> list[Damage]:
        return self.damage + (self.pages.damage if self.pages is not None else [])

    def to_dict(self) -> dict:
        return {**asdict(self), "pages": None if self.pages is None else self.pages.to_dict(), "ok": self.ok}


def _damage(exc: SdmError) -> Damage:
    return Damage("store_file", str(exc), getattr(exc, "table", None), None, getattr(exc, "record", None))


def scrub_store(path, *, scm=None) -> StoreScrubReport:
    """Scrub the EmbeddingStore at `path`; `scm`: its open PageStore (then its LMDB environment and
    read engine are used), else the page store is scrubbed read-only from disk."""
    path = Path(path)
    report = StoreScrubReport(os.fspath(path))
    rec = None
    try:
        rec = read_store(path)
        if rec.hardware is not None:   # open would refuse a name that is no preset
            try:
                resolve_hardware(rec.hardware)
            except SdmError as exc:
                raise damaged(path, "hardware", f"{rec.hardware!r} is not a hardware preset ({exc})") from None
        report.store_json_ok = True
        report.tables = len(rec.specs)
        report.arrays_checked = sum(getattr(p, k) is not None and len(getattr(p, k)) > 0
                                    for p in rec.placement.values()
                                    for k in ("accel_ids", "dram_pinned_ids", "static_hot_ids", "row_order",
                                              "hot_order"))
    except SdmError as exc:
        report.damage.append(_damage(exc))
    try:
        report.pages = scm.verify() if scm is not None else verify_store(path / SCM_DIR)
    except SdmError as exc:   # not a page store at all (scm/ missing)
        report.damage.append(Damage("metadata", str(exc), None, None, SCM_DIR))
    if rec is not None and report.pages is not None and not any(
            d.kind in ("metadata", "version") for d in report.pages.damage):
        try:
            check_pages(path, rec, _page_records(path, scm))
        except SdmError as exc:
            report.damage.append(_damage(exc))
    return report


def _page_records(path: Path, scm) -> dict:
    """name -> the page store's table record (read-only when the store is not open)."""
    if scm is not None:
        return {n: scm.table_info(n) for n in scm.tables}
    meta = StoreMeta(os.fspath(path / SCM_DIR), readonly=True)
    try:
        return dict(meta.records())
    finally:
        meta.close()


def is_embedding_store(path) -> bool:
    return (Path(path) / META_FILE).exists()
