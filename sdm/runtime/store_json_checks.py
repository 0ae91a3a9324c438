"""The bounds store.json and the placement arrays must be within before `open` uses them.

A checksum catches a flipped byte; these catch everything a checksum cannot (a file written by a
buggy or older writer, an edit that re-sealed it, a file without a checksum): every field's type and
range, the choice fields against their allowed values, each array's dtype, shape, range and
distinctness. Every failure is a CorruptStoreFileError naming the file and the field (`record`
"store.json:tables[0].spec.dim"), never a raw KeyError/TypeError from deeper down.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import xxhash

from sdm.cache.policies import POLICIES
from sdm.core.atomic_file import CHECKSUM_KEY
from sdm.core.errors import CorruptStoreFileError
from sdm.core.spec import ROW_FORMATS, TableSpec
from sdm.runtime.store_config import ADMISSION_MODES, PAGE_ADMIT_MODES

__all__ = ["damaged", "check_top", "check_entry", "check_array"]

META_FILE = "store.json"
TOP_KEYS = {"format", "version", "hardware", "queue_depth", "page_bytes", "ways", "admission", "page_admit",
            "tables", CHECKSUM_KEY}
TABLE_KEYS = {"spec", "options", "dram_cache_bytes", "policy"}
SPEC_TYPES = {"name": str, "num_rows": int, "dim": int, "row_format": str, "pooling_factor": (int, float)}
BAG_MODES = ("sum", "mean", "max")
# generous but finite: a flipped high bit must not become a 2**60-row table or a petabyte cache
LIMITS = {"queue_depth": (1, 1 << 16), "page_bytes": (1, 1 << 30), "ways": (1, 1 << 16)}
MAX_ROWS, MAX_DIM, MAX_CACHE_BYTES, MAX_TABLES = 1 << 40, 1 << 20, 1 << 50, 1 << 16
DISTINCT = ("accel_ids", "dram_pinned_ids", "static_hot_ids", "row_order", "hot_order")


def damaged(path: Path, field: str, why: str, table: str | None = None, *, file: str = META_FILE
            ) -> CorruptStoreFileError:
    """The error for a damaged `field` of `file` in the store at `path`."""
    record = file if field == file else f"{file}:{field}"
    return CorruptStoreFileError(f"{path / file}: {field}: {why}", store=str(path), table=table, record=record)


def _int(path: Path, field: str, v, lo: int, hi: int, table: str | None = None) -> None:
    if type(v) is not int or not lo <= v <= hi:  # noqa: E721 - bool is an int, and not a count
        raise damaged(path, field, f"must be a whole number in [{lo}, {hi}], got {v!r}", table)


def _keys(path: Path, field: str, doc, allowed: set, required: set, table: str | None = None) -> None:
    if not isinstance(doc, dict):
        raise damaged(path, field, f"must be an object, got {type(doc).__name__}", table)
    extra, missing = set(doc) - allowed, required - set(doc)
    if extra:  # a flipped key name (or a checksum key with a flipped name) must not pass unseen
        raise damaged(path, field, f"unknown key(s) {sorted(extra)}", table)
    if missing:
        raise damaged(path, field, f"missing key(s) {sorted(missing)}", table)


def check_top(path: Path, meta: dict, array_keys: set) -> None:
    """The store-wide fields: known keys only, settings bounded, modes known, at least one table."""
    _keys(path, "(top level)", meta, TOP_KEYS, {"format", "version", "queue_depth", "page_bytes", "ways", "tables"})
    for key, (lo, hi) in LIMITS.items():
        _int(path, key, meta[key], lo, hi)
    hw = meta.get("hardware")
    if hw is not None and (not isinstance(hw, str) or not 0 < len(hw) <= 200):
        raise damaged(path, "hardware", f"must be null or a preset name, got {hw!r}")
    for key, allowed in (("admission", ADMISSION_MODES), ("page_admit", PAGE_ADMIT_MODES)):
        if key in meta and meta[key] not in allowed:
            raise damaged(path, key, f"must be one of {allowed}, got {meta[key]!r}")
    if not 0 < len(meta["tables"]) <= MAX_TABLES:
        raise damaged(path, "tables", f"must list 1 to {MAX_TABLES} tables, got {len(meta['tables'])}")


def check_entry(path: Path, k: int, e, array_keys: tuple[str, ...]) -> None:
    """Table entry `k`: spec, options, cache bytes, policy, array names (checked by the caller)."""
    f = f"tables[{k}]"
    _keys(path, f, e, TABLE_KEYS | set(array_keys), TABLE_KEYS)
    spec = e["spec"]
    _keys(path, f"{f}.spec", spec, set(SPEC_TYPES), {"name", "num_rows", "dim"})
    name = spec["name"] if isinstance(spec.get("name"), str) else None
    for key, typ in SPEC_TYPES.items():
        if key in spec and (not isinstance(spec[key], typ) or isinstance(spec[key], bool)):
            raise damaged(path, f"{f}.spec.{key}", f"has type {type(spec[key]).__name__}", name)
    _int(path, f"{f}.spec.num_rows", spec["num_rows"], 1, MAX_ROWS, name)
    _int(path, f"{f}.spec.dim", spec["dim"], 1, MAX_DIM, name)
    if not name or len(name) > 1000:
        raise damaged(path, f"{f}.spec.name", f"must be a non-empty name, got {spec['name']!r}")
    if spec.get("row_format", "fp32") not in ROW_FORMATS:
        raise damaged(path, f"{f}.spec.row_format", f"must be one of {ROW_FORMATS}, got {spec['row_format']!r}", name)
    try:
        TableSpec(**spec)   # its own rules (int4 needs an even dim, pooling_factor > 0 and finite)
    except ValueError as exc:
        raise damaged(path, f"{f}.spec", str(exc), name) from None
    opts = e["options"]
    _keys(path, f"{f}.options", opts, {"mode", "include_last_offset", "padding_idx"}, set(), name)
    if opts.get("mode", "sum") not in BAG_MODES:
        raise damaged(path, f"{f}.options.mode", f"must be one of {BAG_MODES}, got {opts['mode']!r}", name)
    if not isinstance(opts.get("include_last_offset", False), bool):
        raise damaged(path, f"{f}.options.include_last_offset", f"must be true or false, got {opts['include_last_offset']!r}", name)
    if opts.get("padding_idx") is not None:
        n = spec["num_rows"]
        _int(path, f"{f}.options.padding_idx", opts["padding_idx"], -n, n - 1, name)
    _int(path, f"{f}.dram_cache_bytes", e["dram_cache_bytes"], 0, MAX_CACHE_BYTES, name)
    if e["policy"] not in POLICIES:
        raise damaged(path, f"{f}.policy", f"must be one of {sorted(POLICIES)}, got {e['policy']!r}", name)
    sums = e.get("checksums")
    if sums is not None and (not isinstance(sums, dict) or set(sums) - set(array_keys) or any(
            not isinstance(v, str) or len(v) != 16 for v in sums.values()) or set(sums) - set(e)):
        raise damaged(path, f"{f}.checksums", f"must map each of its arrays to an xxh3_64, got {sums!r}", name)


def check_array(path: Path, rel: str, raw: bytes, digest: str | None, key: str, spec: TableSpec) -> np.ndarray:
    """The int64 ids in `raw` (a .npy file's bytes): checksum (when recorded) before parsing, then a
    little-endian int64 1-D array of ids in [0, num_rows), distinct, a permutation for row_order."""
    def bad(why: str) -> CorruptStoreFileError:
        return damaged(path, rel, why, spec.name, file=rel)

    if digest is not None and xxhash.xxh3_64_hexdigest(raw) != digest:
        raise bad(f"failed its xxh3_64 checksum (store.json records {digest}): the file is damaged")
    try:
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy's parser raises many kinds on a damaged header
        raise bad(f"is not a readable .npy file ({type(exc).__name__}: {exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype("<i8") or arr.ndim != 1:
        raise bad(f"must be a 1-D little-endian int64 array, got {getattr(arr, 'dtype', None)} "
                  f"of shape {getattr(arr, 'shape', None)}")
    n = spec.num_rows
    if len(arr) and (int(arr.min()) < 0 or int(arr.max()) >= n):
        raise bad(f"{key}: ids must be in [0, {n}), got [{int(arr.min())}, {int(arr.max())}]")
    if key in DISTINCT and len(np.unique(arr)) != len(arr):
        raise bad(f"{key}: ids must be distinct, {len(arr) - len(np.unique(arr))} repeat")
    if key == "row_order" and len(arr) != n:
        raise bad(f"row_order must be a permutation of {n} rows, has {len(arr)}")
    return np.ascontiguousarray(arr, np.int64)
