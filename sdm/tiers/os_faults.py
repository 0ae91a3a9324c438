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
    """Run a block of store I/O; OSError and lmdb.Error leave it as sdm errors (see module doc)."""
    try:
        yield
    except SdmError:
        raise
    except lmdb.Error as exc:
        if isinstance(exc, (lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.BadChecksumError)):
            raise CorruptMetadataError(f"{store}: LMDB metadata is damaged ({what}): {exc}", store=store,
                                       table=table) from exc
        free = free_bytes(store)
        if writing and free is not None and free < DISK_FULL_MARGIN:
            raise _disk_full(store, table, what, exc) from exc
        raise StoreIOError(errno.EIO, f"{store}: LMDB failed during {what}: {exc}", store=store,
                           table=table) from exc
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise  # the caller's to fix, not the store's
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_full(store, table, what, exc) from exc
        raise StoreIOError(exc.errno or errno.EIO, f"{store}: {what} failed{f' (table {table!r})' if table else ''}: "
                           f"{exc}", store=store, table=table) from exc
