"""Exceptions raised by sdm (the checks that raise them for bad input are in sdm.core.checks).

Every message names what is wrong (table, index, position, file).
"""
from __future__ import annotations


class SdmError(Exception):
    """Base class of every error sdm raises on purpose."""


class InvalidInputError(SdmError, ValueError):
    """Bad arguments: out-of-range or negative ids, wrong dtype or shape, unknown table, bad file.

    Raised before anything is changed, so the store, cache and statistics are as they were.
    """


class StoreFormatError(SdmError):
    """A path that is not an sdm store, or a store written in an unknown format version."""


class CorruptionError(SdmError):
    """Stored data failed its checksum. The message names the table and page."""


class InfeasibleError(SdmError):
    """A capacity or latency budget cannot be met; the message says which constraint and by how much."""


# ---- store faults ------------------------------------------------------------------------------
# What a page store (sdm.tiers) raises when what is on disk is wrong, as opposed to what it was asked.
# Each carries the store directory and, where known, the table, page and metadata record, both in
# its message and as attributes, so a caller (the runtime, `sdm-plan verify`) can say what to rebuild.


class _StoreFault:
    """Mixin: the `store`, `table`, `page` and `record` a store fault is about (None where unknown)."""

    store: str | None = None
    table: str | None = None
    page: int | None = None
    record: str | None = None

    def _where(self, store, table, page, record) -> None:
        self.store, self.table, self.page, self.record = store, table, page, record


class UnsupportedVersionError(StoreFormatError, _StoreFault):
    """A store written in a format version this sdm does not read (newer, or unknown)."""

    def __init__(self, message: str, *, store: str | None = None, found=None) -> None:
        super().__init__(message)
        self._where(store, None, None, "format_version")
        self.found = found


class CorruptMetadataError(CorruptionError, _StoreFault):
    """A metadata record (table record, page-table segment, slot map, store settings, version) failed
    its checksum, or its fields disagree with each other or with the data files. Raised before
    anything is read, truncated or written, so the store is exactly as it was found."""

    def __init__(self, message: str, *, store: str | None = None, table: str | None = None,
                 record: str | None = None, page: int | None = None) -> None:
        super().__init__(message)
        self._where(store, table, page, record)


class CorruptPageError(CorruptionError, _StoreFault):
    """A stored page failed its xxh3_64 checksum or would not decode. Names the table and page."""

    def __init__(self, message: str, *, store: str | None = None, table: str | None = None,
                 page: int | None = None) -> None:
        super().__init__(message)
        self._where(store, table, page, None)


class ShortFileError(CorruptionError, _StoreFault):
    """A data file is shorter than its page table references (truncated), or missing."""

    def __init__(self, message: str, *, store: str | None = None, table: str | None = None,
                 page: int | None = None) -> None:
        super().__init__(message)
        self._where(store, table, page, None)


class StoreIOError(SdmError, OSError, _StoreFault):
    """A store's read, write or metadata commit failed in the operating system or LMDB. Also an
    OSError with the errno (EIO when LMDB gives none), so callers that handle OSError keep working."""

    def __init__(self, err: int, message: str, *, store: str | None = None, table: str | None = None,
                 record: str | None = None) -> None:
        super().__init__(err, message)
        self._where(store, table, None, record)

    def __str__(self) -> str:
        return self.strerror


class DiskFullError(StoreIOError):
    """No space left on the store's filesystem (errno ENOSPC) during a data write or metadata commit.
    The write did not commit: the store is at its previous version."""


class CorruptStoreFileError(CorruptMetadataError, StoreFormatError):
    """An EmbeddingStore's own files (store.json, placement/*.npy) failed their checksum, or a field is
    out of bounds or disagrees with the page store. Both corrupt metadata and a format error, so code
    that caught StoreFormatError for a bad store.json keeps working. `record` names the file and field,
    e.g. "store.json:tables[0].spec.dim" or "placement/0.row_order.npy"."""
