"""Versioned files written atomically: a reader sees the old file or the new one, never half of one.

Every file sdm writes (plans, profiles, traces, store metadata) goes through here, so a missing,
foreign or newer file gets the same errors everywhere:
- missing: `MissingFileError` (an InvalidInputError that is also a FileNotFoundError),
- not the expected kind, or not readable: `StoreFormatError` naming the file,
- another format version: `StoreFormatError` saying which versions,
- a JSON document written with `checksum=True` whose xxh3_64 no longer matches: `CorruptionError`
  (documents written without one, e.g. by older versions, are read as before).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import xxhash

from sdm.core.errors import CorruptionError, InvalidInputError, StoreFormatError

CHECKSUM_KEY = "xxh3_64"

__all__ = ["MissingFileError", "write_atomically", "write_json", "read_json", "check_header", "require_file",
           "fsync_dir"]


class MissingFileError(InvalidInputError, FileNotFoundError):
    """A file or directory sdm was asked to read does not exist."""


def require_file(path: str | os.PathLike, kind: str) -> Path:
    """`path` as a Path when it exists, else MissingFileError naming the kind ('plan file', 'profile')."""
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"{kind} {str(p)!r} does not exist")
    return p


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename inside `path` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def write_atomically(path: str | os.PathLike, write: Callable[[Path], None], *, durable: bool = True) -> Path:
    """Call `write(tmp)` to build the file (or directory) at a temporary name beside `path`, then
    rename it over `path`. A crash before the rename leaves the old `path` as it was."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InvalidInputError(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    _remove(tmp)
    try:
        write(tmp)
        if durable and tmp.is_file():
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        if path.is_dir() and not path.is_symlink():
            _remove(path)  # os.replace cannot replace a directory
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def _digest(doc: dict, default=None) -> str:
    """xxh3_64 of `doc` without its checksum, over a canonical text (sorted keys, no spaces)."""
    body = {k: v for k, v in doc.items() if k != CHECKSUM_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=default)
    return xxhash.xxh3_64_hexdigest(text.encode())


def write_json(path: str | os.PathLike, doc: dict, *, indent: int | None = 1, default=None,
               checksum: bool = False) -> Path:
    """`doc` as JSON at `path`, atomically; with `checksum`, under an xxh3_64 of its content that
    `read_json` checks."""
    if checksum:
        doc = {**doc, CHECKSUM_KEY: _digest(doc, default)}
    text = json.dumps(doc, indent=indent, default=default)
    return write_atomically(path, lambda tmp: tmp.write_text(text))


def check_header(doc: Any, path: str | os.PathLike, *, kind: str, file_format: str, version: int) -> dict:
    """`doc` when it is a dict with {"format": file_format, "version": version}, else StoreFormatError."""
    where = str(path)
    if not isinstance(doc, dict) or doc.get("format") != file_format:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise StoreFormatError(f"{where!r} is not an sdm {kind} (format {found!r}, expected {file_format!r})")
    if doc.get("version") != version:
        raise StoreFormatError(
            f"{kind} {where!r} has format version {doc.get('version')!r}; this sdm reads version {version}"
        )
    return doc


def read_json(path: str | os.PathLike, *, kind: str, file_format: str, version: int) -> dict:
    """The JSON document at `path`, checked by `check_header`; MissingFileError if absent, and
    StoreFormatError if it is not UTF-8 JSON."""
    p = require_file(path, kind)
    try:
        doc = json.loads(p.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreFormatError(f"{kind} {str(p)!r} is not JSON: {exc}") from None
    except IsADirectoryError:
        raise StoreFormatError(f"{kind} {str(p)!r} is a directory, not a file") from None
    if isinstance(doc, dict) and CHECKSUM_KEY in doc and doc[CHECKSUM_KEY] != _digest(doc):
        raise CorruptionError(f"{kind} {str(p)!r} failed its {CHECKSUM_KEY} checksum: the file is damaged")
    return check_header(doc, p, kind=kind, file_format=file_format, version=version)
