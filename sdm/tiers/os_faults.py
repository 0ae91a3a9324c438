"""OS and LMDB failures of the page store as sdm errors naming the store and table.

ENOSPC (a data write, an fsync, an LMDB commit) becomes DiskFullError, which is also an OSError with
errno ENOSPC; LMDB reports a full disk in a commit as a short write (EIO, "Input/output error"), so an
LMDB error during a write is called disk full when the filesystem has less free than `DISK_FULL_MARGIN`.
Other OS errors become StoreIOError (an OSError too), LMDB's own corruption reports CorruptMetadataError.
"""
from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

import lmdb

from sdm.core.errors import CorruptMetadataError, DiskFullError, SdmError, StoreIOError

DISK_FULL_MARGIN = 1 << 20  # under 1 MiB free after a failed LMDB write: the disk was full


def free_bytes(path: str) -> int | None:
    """Bytes free to us on the filesystem holding `path` (or its nearest existing parent)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _disk_full(store: str, table: str | None, what: str, exc: BaseException) -> DiskFullError:
    where = f" (table {table!r})" if table else ""
    return DiskFullError(errno.ENOSPC, f"{store}: disk full during {what}{where}: {exc}; the store is at "
                         "its last committed version", store=store, table=table)


@contextlib.contextmanager
def store_io(store: str, what: str, table: str | None = None, *, writing: bool = False) -> Iterator[None]:
    """Run a block of store I/O; OSError and lmdb.Error leave it as sdm errors (`store_fault`)."""
    try:
        yield
    except SdmError:
        raise
    except (lmdb.Error, OSError) as exc:
        if isinstance(exc, PermissionError):
            raise  # the caller's to fix, not the store's
        raise store_fault(store, what, exc, table, writing=writing) from exc


def store_fault(store: str, what: str, exc: BaseException, table: str | None = None, *,
                writing: bool = False) -> SdmError:
    """The sdm error for an OSError or lmdb.Error met during `what` (see the module doc)."""
    if isinstance(exc, lmdb.Error):
        if isinstance(exc, (lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.BadChecksumError)):
            return CorruptMetadataError(f"{store}: LMDB metadata is damaged ({what}): {exc}", store=store,
                                        table=table)
        free = free_bytes(store)
        if writing and free is not None and free < DISK_FULL_MARGIN:
            return _disk_full(store, table, what, exc)
        return StoreIOError(errno.EIO, f"{store}: LMDB failed during {what}: {exc}", store=store, table=table)
    err = getattr(exc, "errno", None)
    if err in (errno.ENOSPC, errno.EDQUOT):
        return _disk_full(store, table, what, exc)
    return StoreIOError(err or errno.EIO, f"{store}: {what} failed{f' (table {table!r})' if table else ''}: {exc}",
                        store=store, table=table)
