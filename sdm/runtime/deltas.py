"""Streamed deltas: row updates applied in the background while lookups go on.

A delta is one batch of row updates of one table, numbered. On disk, a directory of files

    delta-<version:010d>.npz    numpy .npz (no pickles) holding
        table     0-d unicode array: the table name
        version   0-d int64: the delta's number (> 0; applied in increasing order)
        ids       int64 [n]: distinct row ids
        rows      float [n, dim]: the new rows (any float dtype; encoded to the table's row format)
        checksum  0-d uint64: xxh3_64 of the table name (utf-8), version (int64 LE), ids (int64 LE)
                  and rows (C order, as stored), in that order

written by `write_delta` at a temporary name and renamed, so a reader never sees half a file. The
applier applies deltas in version order, each through `updates.apply_update` (validated, committed
atomically), and records the last applied number in `<store>/live/applied.json` after its commit.
A crash between the two re-applies that delta at restart, which writes the same rows again (updates
are idempotent), so nothing is lost or applied out of order. A delta that fails its checksum or its
checks stops the applier with the error (`DeltaApplier.check()` raises it); nothing of it is applied.
"""
from __future__ import annotations

import json
import os
import re
import threading
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xxhash

from sdm.core.atomic_file import write_atomically, write_json
from sdm.core.errors import CorruptionError, InvalidInputError
from sdm.runtime.updates import apply_update

DELTA_FILE = re.compile(r"delta-(\d{10})\.npz\Z")
APPLIED_FILE = os.path.join("live", "applied.json")


@dataclass(frozen=True)
class Delta:
    table: str
    version: int
    ids: np.ndarray
    rows: np.ndarray


def delta_checksum(table: str, version: int, ids: np.ndarray, rows: np.ndarray) -> int:
    h = xxhash.xxh3_64()
    h.update(table.encode())
    h.update(np.int64(version).tobytes())
    h.update(np.ascontiguousarray(ids, "<i8").tobytes())
    h.update(np.ascontiguousarray(rows).tobytes())
    return h.intdigest()


def write_delta(directory, table: str, ids, rows, version: int) -> Path:
    """Write one delta file (atomically) into `directory`; returns its path."""
    version = int(version)
    if version <= 0:
        raise InvalidInputError(f"delta version must be > 0, got {version}")
    ids = np.ascontiguousarray(ids, np.int64)
    rows = np.ascontiguousarray(rows)
    path = Path(directory) / f"delta-{version:010d}.npz"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, table=np.array(table), version=np.array(version, np.int64), ids=ids, rows=rows,
                     checksum=np.array(delta_checksum(table, version, ids, rows), np.uint64))

    os.makedirs(directory, exist_ok=True)
    return write_atomically(path, write)


def read_delta(path) -> Delta:
    """One delta file, its checksum checked; CorruptionError naming the file otherwise."""
    try:
        with np.load(path, allow_pickle=False) as z:
            d = Delta(str(z["table"]), int(z["version"]), z["ids"], z["rows"])
            stored = int(z["checksum"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptionError(f"delta file {path}: unreadable ({exc})") from None
    if delta_checksum(d.table, d.version, d.ids, d.rows) != stored:
        raise CorruptionError(f"delta file {path}: checksum mismatch (damaged or partly written)")
    m = DELTA_FILE.search(os.path.basename(str(path)))
    if m is not None and int(m.group(1)) != d.version:
        raise CorruptionError(f"delta file {path}: holds version {d.version}, its name says {int(m.group(1))}")
    return d


def pending_files(directory, after: int) -> list[tuple[int, Path]]:
    """(version, path) of the delta files in `directory` numbered above `after`, in order."""
    out = []
    for name in os.listdir(directory) if os.path.isdir(directory) else ():
        m = DELTA_FILE.match(name)
        if m is not None and int(m.group(1)) > after:
            out.append((int(m.group(1)), Path(directory) / name))
    return sorted(out)


def applied_version(store) -> int:
    """The last delta version applied to `store` (0: none)."""
    try:
        with open(Path(store.path) / APPLIED_FILE) as f:
            return int(json.load(f)["applied"])
    except FileNotFoundError:
        return 0


def _record_applied(store, version: int) -> None:
    path = Path(store.path) / APPLIED_FILE
    os.makedirs(path.parent, exist_ok=True)
    write_json(path, {"applied": int(version)})


class DeltaApplier:
    """Applies deltas to `store` on a background thread: from an iterable of (table, ids, rows)
    batches (numbered 1, 2, ... after the last applied) or from a directory of delta files
    (polled every `poll_s` until `stop()`). Lookups go on meanwhile (see `updates`)."""

    def __init__(self, store, source: Iterable | str | os.PathLike, *, poll_s: float = 0.05):
        self.store = store
        self.source = source
        self.poll_s = float(poll_s)
        self.applied = applied_version(store)
        self.rows_applied = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="sdm-delta-applier", daemon=True)

    def start(self) -> "DeltaApplier":
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the delta in progress; raises the error that stopped it, if any."""
        self._stop.set()
        self._thread.join(timeout)
        self.check()

    def join(self, timeout: float | None = None) -> None:
        """Wait until an iterator source is used up (a directory source runs until `stop`); raises
        the error that stopped it, if any."""
        self._thread.join(timeout)
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def wait_for(self, version: int, timeout: float | None = None) -> bool:
        """Block until delta `version` is applied (True) or the timeout passes / an error stopped it."""
        with self._cond:
            return self._cond.wait_for(lambda: self.applied >= version or self.error is not None
                                       or not self._thread.is_alive(), timeout) and self.applied >= version

    def __enter__(self) -> "DeltaApplier":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _deltas(self) -> Iterator[Delta]:
        if isinstance(self.source, (str, os.PathLike)):
            while not self._stop.is_set():
                todo = pending_files(self.source, self.applied)
                for _, path in todo:
                    yield read_delta(path)
                if not todo:
                    self._stop.wait(self.poll_s)
            return
        v = self.applied
        for table, ids, rows in self.source:
            v += 1
            yield Delta(table, v, np.asarray(ids), rows)

    def _run(self) -> None:
        try:
            for d in self._deltas():
                if self._stop.is_set() and not isinstance(self.source, (str, os.PathLike)):
                    break
                if d.version <= self.applied:
                    continue
                apply_update(self.store, d.table, d.ids, d.rows)
                _record_applied(self.store, d.version)
                with self._cond:
                    self.applied = d.version
                    self.rows_applied += len(d.ids)
                    self._cond.notify_all()
        except BaseException as exc:  # kept for check(): a background thread has no caller to raise to
            self.error = exc
        finally:
            with self._cond:
                self._cond.notify_all()
