"""Input checks of the page store's calls, built on sdm.core.checks so the wording is sdm's everywhere.

Each raises InvalidInputError naming the table and the bad value's position before anything is
read or written. Vector ops only: `check_ids` runs on every read.
"""
from __future__ import annotations

import numpy as np

from sdm.core.checks import ids_in_range, integer_array, whole_number
from sdm.core.errors import InvalidInputError
from sdm.tiers.ingest_source import as_numpy
from sdm.tiers.page_format import COMPRESSIONS
from sdm.tiers.read_engines import ENGINES

PAGE_ALIGN_BYTES = 4096  # page sizes are whole multiples of this (O_DIRECT alignment of 4 KiB disks)
MAX_NAME_BYTES = 200     # table names become LMDB keys (limit 511 bytes)


def check_queue_depth(queue_depth) -> int:
    return whole_number(queue_depth, "queue_depth", minimum=1)


def check_page_bytes(page_bytes) -> int:
    pb = whole_number(page_bytes, "page_bytes", minimum=1)
    if pb % PAGE_ALIGN_BYTES:
        raise InvalidInputError(f"page_bytes must be a positive multiple of {PAGE_ALIGN_BYTES}, got {page_bytes!r}")
    return pb


def check_compression(compression) -> str | None:
    if compression not in COMPRESSIONS:
        raise InvalidInputError(f"unknown compression {compression!r}; expected one of {COMPRESSIONS}")
    return compression


def check_engine(engine) -> str:
    if engine not in ENGINES:
        raise InvalidInputError(f"unknown I/O engine {engine!r}; expected one of {ENGINES}")
    return engine


def check_device(dev):
    """The device model a store charges: a DeviceSpec, or the name of a preset."""
    from sdm.hardware.devices import DeviceSpec
    from sdm.hardware.presets import device

    if isinstance(dev, DeviceSpec):
        return dev
    if isinstance(dev, str):
        return device(dev)
    raise InvalidInputError(f"device must be a preset name or a DeviceSpec, got {type(dev).__name__}")


def check_name(name, existing, store_path: str) -> str:
    """A new table's name: a non-empty string of at most MAX_NAME_BYTES, not in `existing`."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"table name must be a non-empty string, got {name!r}")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidInputError(f"table name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
    if name in existing:
        raise InvalidInputError(f"table {name!r} already exists in store {store_path}")
    return name


def check_ids(name: str, num_rows: int, row_ids) -> np.ndarray:
    """Row ids of table `name` as a 1-D int64 array, each in [0, num_rows)."""
    what = f"table {name!r}: row ids"
    ids = integer_array(as_numpy(row_ids), what)
    if ids.ndim != 1:
        raise InvalidInputError(f"{what} must be 1-D, got shape {ids.shape}")
    return ids_in_range(ids, num_rows, what)


def check_distinct(name: str, ids: np.ndarray) -> None:
    """An update names each row once: which of two values would win is not defined."""
    srt = np.sort(ids)
    dup = np.flatnonzero(srt[1:] == srt[:-1])
    if len(dup):
        raise InvalidInputError(f"table {name!r}: row id {int(srt[dup[0]])} appears more than once in update")


def check_values(name: str, dtype: np.dtype, dim: int, num_ids: int, values) -> np.ndarray:
    """New row values for an update: a numpy array of the table's dtype, one row of `dim` per id."""
    v = as_numpy(values)
    if not isinstance(v, np.ndarray):
        raise InvalidInputError(f"table {name!r}: values must be a numpy array, got {type(v).__name__}")
    if v.dtype != dtype:
        raise InvalidInputError(f"table {name!r}: values have dtype {v.dtype}, table stores {dtype}")
    if v.shape != (num_ids, dim):
        raise InvalidInputError(
            f"table {name!r}: values have shape {v.shape}, expected ({num_ids}, {dim}) "
            f"(one row of width {dim} per row id)"
        )
    return v


def check_row_order(name: str, row_order, num_rows: int) -> np.ndarray:
    """A page layout: a permutation of [0, num_rows) as int64 (slot p holds row row_order[p])."""
    what = f"table {name!r}: row_order"
    order = integer_array(as_numpy(row_order), what)
    if order.ndim != 1:
        raise InvalidInputError(f"{what} must be 1-D, got shape {order.shape}")
    if len(order) != num_rows:
        raise InvalidInputError(f"{what} has {len(order)} entries, table has {num_rows} rows")
    ids_in_range(order, num_rows, what)
    seen = np.bincount(order, minlength=num_rows)
    if (seen != 1).any():
        r = int(np.flatnonzero(seen != 1)[0])
        raise InvalidInputError(f"{what} is not a permutation: row {r} appears {int(seen[r])} times")
    return order
