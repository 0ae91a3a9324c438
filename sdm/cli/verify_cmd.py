"""`sdm-plan verify PATH [--json]`: scrub a page store, or a whole EmbeddingStore.

A page store: every metadata record and every live page is read and checked (`sdm.tiers.store_verify`).
An EmbeddingStore (PATH holds store.json): its store.json, placement arrays, the specs against the
page store, and the page store (scm/) as above (`sdm.runtime.store_scrub`). Nothing is written.
Prints what was checked and each fault found; exit status 0 when clean, 1 when damaged (or
PATH is not a store).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sdm.core.errors import StoreFormatError
from sdm.core.text_table import text_table
from sdm.runtime.store_scrub import StoreScrubReport, scrub_store
from sdm.tiers.store_meta import META_DIR
from sdm.tiers.store_verify import VerifyReport, verify_store

EMBEDDING_STORE_FILE = "store.json"  # an EmbeddingStore directory: its rows are in the page store scm/
EMBEDDING_STORE_SCM = "scm"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify",
        help="scrub a store: read every page and record, report what is damaged (exit 1 if any)",
        description="Scrub a page store (or an EmbeddingStore's scm/ page store): check every metadata "
                    "record's checksum and bounds and every live page's checksum; write nothing.",
    )
    p.add_argument("path", help="page store directory, or EmbeddingStore directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def page_store_of(path: Path) -> Path:
    """The page store to scrub at `path`: itself, or its scm/ when it is an EmbeddingStore."""
    if (path / META_DIR).exists():
        return path
    if (path / EMBEDDING_STORE_FILE).exists() or (path / EMBEDDING_STORE_SCM / META_DIR).exists():
        return path / EMBEDDING_STORE_SCM
    raise StoreFormatError(f"{path}: not a page store (no {META_DIR}/) nor an EmbeddingStore (no {EMBEDDING_STORE_FILE})")


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if (path / EMBEDDING_STORE_FILE).exists() and not (path / META_DIR).exists():
        full = scrub_store(path)
        print(json.dumps(full.to_dict(), indent=2) if args.json else render_embedding_store(full))
        return 0 if full.ok else 1
    report = verify_store(page_store_of(path))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render(report))
    return 0 if report.ok else 1


def render_embedding_store(full: StoreScrubReport) -> str:
    lines = [f"embedding store {full.path}: store.json {'ok' if full.store_json_ok else 'DAMAGED'}, "
             f"{full.tables} tables, {full.arrays_checked} placement arrays checked"]
    if full.damage:
        rows = [(d.kind, d.table, d.record, d.message) for d in full.damage]
        lines += ["", text_table(("damage", "table", "record", "what"), rows, align="llll"), ""]
    if full.pages is not None:
        lines.append(render(full.pages))
    else:
        lines.append("DAMAGED")
    if full.pages is not None and full.damage:
        lines.append("DAMAGED (store files)")
    return "\n".join(lines)


def render(report: VerifyReport) -> str:
    lines = [
        f"store {report.store} (format {report.format_version}): {report.tables} tables, "
        f"{report.records_checked} records and {report.pages_checked} pages ({report.bytes_read} bytes) checked",
    ]
    if report.damage:
        rows = [(d.kind, d.table, d.page, d.record, d.message) for d in report.damage]
        lines += ["", text_table(("damage", "table", "page", "record", "what"), rows, align="llrll")]
    lines += [f"note: {n}" for n in report.notes]
    lines.append("DAMAGED" if report.damage else "clean")
    return "\n".join(lines)
