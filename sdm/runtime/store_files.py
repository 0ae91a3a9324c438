"""An EmbeddingStore's directory: what `create` writes and `open` reads back.

    path/store.json        format and version, store-wide settings, per table: spec, nn.EmbeddingBag
                           options, DRAM cache bytes and policy, names of its placement arrays
    path/placement/*.npy   per-table row sets (card rows, pinned rows, static hot set, SCM page
                           order, the profile's hottest-first order)
    path/scm/              the page store holding every row (sdm.tiers.pagestore)

store.json is written last, atomically (sdm.core.atomic_file): a crash during `create` leaves no
half store that `open` would accept. Its format is unchanged since version 1; a file missing the
keys added later (admission, page_admit) reads with their defaults.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from sdm.core.atomic_file import MissingFileError, read_json, write_json
from sdm.core.errors import StoreFormatError
from sdm.core.spec import TableSpec
from sdm.runtime import row_formats
from sdm.runtime.store_config import BagOptions
from sdm.runtime.store_placement import TablePlacement
from sdm.runtime.store_weights import encoded_chunks

__all__ = ["FILE_FORMAT", "STORE_VERSION", "META_FILE", "StoreRecord", "write_store", "read_store"]

FILE_FORMAT = "sdm-embedding-store"
STORE_VERSION = 1
META_FILE = "store.json"
# per-table id arrays kept under placement/ (row_order: the SCM page layout, to find a page's rows;
# hot_order: the profile's rows hottest first, for warm admission and warm-up)
PLACEMENT_ARRAYS = ("accel_ids", "dram_pinned_ids", "static_hot_ids", "row_order", "hot_order")
_REQUIRED = ("queue_depth", "page_bytes", "ways", "tables")


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
        for key in PLACEMENT_ARRAYS:
            arr = getattr(p, key)
            if arr is not None and len(arr):
                fname = f"{k}.{key}.npy"
                np.save(side / fname, np.asarray(arr, np.int64))
                entry[key] = f"placement/{fname}"
        tables.append(entry)
    meta = {"format": FILE_FORMAT, "version": STORE_VERSION, "hardware": record.hardware,
            "queue_depth": record.queue_depth, "page_bytes": record.page_bytes, "ways": record.ways,
            "admission": record.admission, "page_admit": record.page_admit, "tables": tables}
    write_json(path / META_FILE, meta)  # the store exists only once its metadata is complete


def read_store(path: Path) -> StoreRecord:
    """The record of the store at `path`; StoreFormatError naming the file when it is not a
    complete sdm embedding store of this version."""
    where = path / META_FILE
    try:
        meta = read_json(where, kind="embedding store", file_format=FILE_FORMAT, version=STORE_VERSION)
    except MissingFileError:
        raise StoreFormatError(f"{path}: no {META_FILE}; not an sdm embedding store") from None
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise StoreFormatError(f"{where}: missing {', '.join(missing)}; not a complete store")
    if not isinstance(meta["tables"], list):
        raise StoreFormatError(f"{where}: tables must be a list, got {type(meta['tables']).__name__}")
    specs, options, placement = [], {}, {}
    for k, entry in enumerate(meta["tables"]):
        try:
            spec, opts, place = _table_entry(path, entry)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise StoreFormatError(f"{where}: table entry {k} is not readable ({type(exc).__name__}: {exc})") from None
        specs.append(spec)
        options[spec.name] = opts
        placement[spec.name] = place
    try:
        settings = {key: int(meta[key]) for key in ("queue_depth", "page_bytes", "ways")}
    except (TypeError, ValueError) as exc:
        raise StoreFormatError(f"{where}: bad store settings ({exc})") from None
    return StoreRecord(hardware=meta.get("hardware"), admission=meta.get("admission", "auto"),
                       page_admit=meta.get("page_admit", "auto"), specs=specs, options=options,
                       placement=placement, **settings)


def _table_entry(path: Path, e: Mapping) -> tuple[TableSpec, BagOptions, TablePlacement]:
    spec = TableSpec(**e["spec"])
    arrays = {k: np.load(path / e[k]) if k in e else None for k in PLACEMENT_ARRAYS}
    empty = np.zeros(0, np.int64)
    place = TablePlacement(
        accel_ids=arrays["accel_ids"] if arrays["accel_ids"] is not None else empty,
        dram_pinned_ids=arrays["dram_pinned_ids"] if arrays["dram_pinned_ids"] is not None else empty.copy(),
        dram_cache_bytes=int(e["dram_cache_bytes"]), policy=e["policy"],
        static_hot_ids=arrays["static_hot_ids"], row_order=arrays["row_order"], hot_order=arrays["hot_order"],
    )
    return spec, BagOptions(**e["options"]), place
