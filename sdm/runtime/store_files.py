"""An EmbeddingStore's directory: what `create` writes and `open` reads back.

    path/store.json        format and version, store-wide settings, per table: spec, nn.EmbeddingBag
                           options, DRAM cache bytes and policy, names of its placement arrays
    path/placement/*.npy   per-table row sets (card rows, pinned rows, static hot set, SCM page
                           order, the profile's hottest-first order)
    path/scm/              the page store holding every row (sdm.tiers.pagestore)

store.json is written last, atomically (sdm.core.atomic_file): a crash during `create` leaves no
half store that `open` would accept. Its format is version 1, plus two keys old readers ignore: the
document's own xxh3_64 (checked on read) and, per table, "checksums" (the xxh3_64 of each placement
array's .npy bytes, checked before the array is parsed). A file written before them (no checksum)
still opens, bounds-checked only; a file missing the keys added later (admission, page_admit) reads
with their defaults. Nothing in it is trusted (sdm.runtime.store_json_checks): every field is typed
and bounded, every array is int64, 1-D, in [0, num_rows) and distinct, and `check_pages` holds the
specs against the page store's own records. Damage: CorruptStoreFileError naming file and field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

import xxhash

from sdm.core.atomic_file import MissingFileError, read_json, write_json
from sdm.core.errors import CorruptionError, CorruptStoreFileError, SdmError, StoreFormatError
from sdm.core.spec import TableSpec
from sdm.runtime import row_formats
from sdm.runtime.store_config import BagOptions
from sdm.runtime.store_json_checks import check_array, check_entry, check_top, damaged
from sdm.runtime.store_placement import TablePlacement
from sdm.runtime.store_weights import encoded_chunks

__all__ = ["FILE_FORMAT", "STORE_VERSION", "META_FILE", "StoreRecord", "write_store", "read_store", "check_pages"]

FILE_FORMAT = "sdm-embedding-store"
STORE_VERSION = 1
META_FILE = "store.json"
# per-table id arrays kept under placement/ (row_order: the SCM page layout, to find a page's rows;
# hot_order: the profile's rows hottest first, for warm admission and warm-up)
PLACEMENT_ARRAYS = ("accel_ids", "dram_pinned_ids", "static_hot_ids", "row_order", "hot_order")
_REQUIRED = ("queue_depth", "page_bytes", "ways", "tables")
ARRAY_CHECKSUMS = "checksums"   # per table entry: {array key: xxh3_64 hex of its .npy file}


@dataclass
class StoreRecord:
    """Everything a store's files say, pages aside."""

    hardware: str | None          # the preset name the store was created for (None: no device models)
    queue_depth: int
    page_bytes: int
    ways: int
    admission: str
    page_admit: str
    specs: list[TableSpec]
    options: dict[str, BagOptions]
    placement: dict[str, TablePlacement]


def write_store(path: Path, record: StoreRecord, weights, scm_device, progress: bool | None = None) -> None:
    """Write the pages (rows from `weights`, see sdm.runtime.store_weights), the placement arrays,
    then store.json into the empty directory `path`. `progress`: the ingest progress bar (None:
    shown for large tables, see sdm.tiers.page_writes)."""
    from sdm.tiers.pagestore import PageStore

    with PageStore.create(path / "scm", device=scm_device, page_bytes=record.page_bytes,
                          queue_depth=record.queue_depth) as ps:
        for i, s in enumerate(record.specs):
            ps.add_table(
                s.name, encoded_chunks(weights, s, i), num_rows=s.num_rows,
                dim=row_formats.storage_width(s.dim, s.row_format),
                dtype=row_formats.storage_dtype(s.row_format), row_order=record.placement[s.name].row_order,
                progress=progress,
            )
    side = path / "placement"
    side.mkdir(exist_ok=True)
    tables = []
    for k, s in enumerate(record.specs):
        p = record.placement[s.name]
        entry = {"spec": asdict(s), "options": asdict(record.options.get(s.name, BagOptions())),
                 "dram_cache_bytes": p.dram_cache_bytes, "policy": p.policy}
        sums = {}
        for key in PLACEMENT_ARRAYS:
            arr = getattr(p, key)
            if arr is not None and len(arr):
                fname = f"{k}.{key}.npy"
                np.save(side / fname, np.ascontiguousarray(arr, np.dtype("<i8")))
                entry[key] = f"placement/{fname}"
                sums[key] = xxhash.xxh3_64_hexdigest((side / fname).read_bytes())
        entry[ARRAY_CHECKSUMS] = sums
        tables.append(entry)
    meta = {"format": FILE_FORMAT, "version": STORE_VERSION, "hardware": record.hardware,
            "queue_depth": record.queue_depth, "page_bytes": record.page_bytes, "ways": record.ways,
            "admission": record.admission, "page_admit": record.page_admit, "tables": tables}
    write_json(path / META_FILE, meta, checksum=True)  # the store exists only once its metadata is complete


def read_store(path: Path) -> StoreRecord:
    """The record of the store at `path`; StoreFormatError naming the file when it is not a
    complete sdm embedding store of this version, CorruptStoreFileError (also a StoreFormatError)
    naming the file and field when store.json or a placement array is damaged."""
    where = path / META_FILE
    try:
        meta = read_json(where, kind="embedding store", file_format=FILE_FORMAT, version=STORE_VERSION)
    except MissingFileError:
        raise StoreFormatError(f"{path}: no {META_FILE}; not an sdm embedding store") from None
    except CorruptionError as exc:
        raise CorruptStoreFileError(str(exc), store=str(path), record=META_FILE) from None
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise StoreFormatError(f"{where}: missing {', '.join(missing)}; not a complete store")
    if not isinstance(meta["tables"], list):
        raise StoreFormatError(f"{where}: tables must be a list, got {type(meta['tables']).__name__}")
    try:
        settings = {key: int(meta[key]) for key in ("queue_depth", "page_bytes", "ways")}
    except (TypeError, ValueError) as exc:
        raise StoreFormatError(f"{where}: bad store settings ({exc})") from None
    check_top(path, meta, set(PLACEMENT_ARRAYS) | {ARRAY_CHECKSUMS})
    specs, options, placement = [], {}, {}
    for k, entry in enumerate(meta["tables"]):
        try:
            spec, opts, place = _table_entry(path, k, entry)
        except SdmError:
            raise
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise damaged(path, f"tables[{k}]", f"table entry {k} is not readable ({type(exc).__name__}: {exc})")
        if spec.name in options:
            raise damaged(path, f"tables[{k}].spec.name", f"table name {spec.name!r} appears twice", spec.name)
        specs.append(spec)
        options[spec.name] = opts
        placement[spec.name] = place
    return StoreRecord(hardware=meta.get("hardware"), admission=meta.get("admission", "auto"),
                       page_admit=meta.get("page_admit", "auto"), specs=specs, options=options,
                       placement=placement, **settings)


def _table_entry(path: Path, k: int, e: Mapping) -> tuple[TableSpec, BagOptions, TablePlacement]:
    check_entry(path, k, e, PLACEMENT_ARRAYS + (ARRAY_CHECKSUMS,))
    spec = TableSpec(**e["spec"])
    sums = e.get(ARRAY_CHECKSUMS)
    arrays = {key: _array(path, k, e, key, spec, sums) if key in e else None for key in PLACEMENT_ARRAYS}
    empty = np.zeros(0, np.int64)
    place = TablePlacement(
        accel_ids=arrays["accel_ids"] if arrays["accel_ids"] is not None else empty,
        dram_pinned_ids=arrays["dram_pinned_ids"] if arrays["dram_pinned_ids"] is not None else empty.copy(),
        dram_cache_bytes=int(e["dram_cache_bytes"]), policy=e["policy"],
        static_hot_ids=arrays["static_hot_ids"], row_order=arrays["row_order"], hot_order=arrays["hot_order"],
    )
    return spec, BagOptions(**e["options"]), place


def _array(path: Path, k: int, e: Mapping, key: str, spec: TableSpec, sums: Mapping | None) -> np.ndarray:
    """Placement array `key` of table entry `k`: its name must be the one `write_store` gives it
    (no path leaves the store), its bytes must match the recorded checksum before numpy parses them."""
    rel = f"placement/{k}.{key}.npy"
    if e[key] != rel:
        raise damaged(path, f"tables[{k}].{key}", f"expected {rel!r}, got {e[key]!r}", spec.name)
    if sums is not None and key not in sums:
        raise damaged(path, f"tables[{k}].{ARRAY_CHECKSUMS}", f"no checksum for {key}", spec.name)
    try:
        raw = (path / rel).read_bytes()
    except OSError as exc:
        raise damaged(path, rel, f"cannot be read ({exc.strerror or exc})", spec.name, file=rel) from None
    return check_array(path, rel, raw, None if sums is None else sums[key], key, spec)


def check_pages(path: Path, rec: StoreRecord, tables: Mapping) -> None:
    """CorruptStoreFileError unless store.json's tables are exactly the page store's, row for row:
    `tables` maps name -> the page store's own record (num_rows, dim, dtype, has_row_order), so a dim or row format changed under a valid checksum is caught here."""
    names = [s.name for s in rec.specs]
    if sorted(names) != sorted(tables):
        raise damaged(path, "tables", f"tables {sorted(names)} but the page store holds {sorted(tables)}")
    for k, s in enumerate(rec.specs):
        t = tables[s.name]
        want = {"num_rows": s.num_rows, "dim": row_formats.storage_width(s.dim, s.row_format),
                "dtype": np.dtype(row_formats.storage_dtype(s.row_format)).str, "has_row_order": rec.placement[s.name].row_order is not None}
        for f, v in want.items():
            got = np.dtype(t.dtype).str if f == "dtype" else getattr(t, f)
            if got != v:
                field = f"tables[{k}]." + ("row_order" if f == "has_row_order" else "spec")
                raise damaged(path, field, f"table {s.name!r}: store.json says {f} {v!r} "
                              f"(row_format {s.row_format!r}), the page store {got!r}", s.name)
