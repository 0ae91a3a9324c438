"""The rows `EmbeddingStore.create` writes, from the many forms its `weights` argument may take:
a mapping name -> [rows, dim] array or tensor, a list in table order, a callable
`(name, start, stop) -> rows` (streams tables larger than memory), or None (seeded random rows).
A table's entry may also be `StoredRows(rows)`: rows already in the table's stored format
(sdm.runtime.row_formats), written as they are, bit for bit, with no decode and re-encode (how a
TorchRec quantized table's codes are ingested, sdm.runtime.torchrec_quant).

Rows come in chunks of at most WRITE_CHUNK_ROWS, encoded to the table's row format, so writing a
table never holds more than one chunk of it.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np
import torch

from sdm.runtime import row_formats
from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec

__all__ = ["WRITE_CHUNK_ROWS", "StoredRows", "check_weights", "encoded_chunks"]

# Rows per chunk when writing weights: bounds memory for tables far larger than DRAM.
WRITE_CHUNK_ROWS = 1 << 16


@dataclass(frozen=True)
class StoredRows:
    """One table's rows in its stored format ([num_rows, storage_width] of storage_dtype), to be
    written as they are. Checked whole before anything is written: shape, dtype, and every fp16
    value / int8 and int4 scale and bias finite (as encode refuses non-finite values there; a NaN
    scale would poison every pooled sum)."""

    rows: object  # numpy array or torch tensor


def check_weights(weights, specs: list[TableSpec]) -> None:
    """Check array weights of every table whole (before anything is written or deleted); a
    callable's chunks are checked as they stream."""
    if weights is not None and not callable(weights):
        for i, s in enumerate(specs):
            if _stored_chunks(weights, s, i) is None:
                _table_weights(weights, s, i)


def encoded_chunks(weights, spec: TableSpec, i: int) -> Iterator[np.ndarray]:
    """Rows of table `spec` (number `i` in the store) in id order, encoded to its row format; the
    page store lays them out by the plan's row_order itself."""
    stored = _stored_chunks(weights, spec, i)
    if stored is not None:
        yield from stored
        return
    for chunk in _float_chunks(weights, spec, i):
        if chunk.ndim != 2 or chunk.shape[1] != spec.dim:
            raise InvalidInputError(f"table {spec.name!r}: weight chunk has shape {chunk.shape}, dim {spec.dim}")
        yield row_formats.encode(chunk, spec.row_format, table=spec.name)


def _stored_chunks(weights, spec: TableSpec, i: int) -> Iterator[np.ndarray] | None:
    """Chunks of a table given as StoredRows (None when it is not)."""
    if weights is None or callable(weights):
        return None
    w = weights.get(spec.name) if isinstance(weights, Mapping) else weights[i] if i < len(weights) else None
    if not isinstance(w, StoredRows):
        return None
    rows = _checked_stored(w, spec)
    return (rows[a:b] for a, b in _chunk_bounds(spec.num_rows))


def _checked_stored(w: StoredRows, spec: TableSpec) -> np.ndarray:
    rows = w.rows.detach().cpu().numpy() if isinstance(w.rows, torch.Tensor) else np.asarray(w.rows)
    fmt, want = spec.row_format, row_formats.storage_dtype(spec.row_format)
    shape = (spec.num_rows, row_formats.storage_width(spec.dim, fmt))
    if rows.dtype != want or rows.shape != shape:
        raise InvalidInputError(f"table {spec.name!r}: stored rows must be {want} {shape} for row format {fmt!r}, "
                                f"got {rows.dtype} {rows.shape}")
    if fmt == "fp16":
        vals = rows
    elif fmt in ("int8", "int4"):
        tail = np.ascontiguousarray(rows[:, shape[1] - (8 if fmt == "int8" else 4):])
        vals = tail.view(np.float32 if fmt == "int8" else np.float16)
    else:  # fp32: as encode, any float32 bits (a lookup copies them)
        return np.ascontiguousarray(rows)
    bad = ~np.isfinite(vals)
    if bad.any():
        r = int(np.argwhere(bad)[0][0])
        what = "value" if fmt == "fp16" else "scale or bias"
        raise InvalidInputError(f"table {spec.name!r}: stored row {r} has a non-finite {what}")
    return np.ascontiguousarray(rows)


def _chunk_bounds(num_rows: int) -> Iterator[tuple[int, int]]:
    for a in range(0, num_rows, WRITE_CHUNK_ROWS):
        yield a, min(a + WRITE_CHUNK_ROWS, num_rows)


def _float_chunks(weights, spec: TableSpec, i: int) -> Iterator[np.ndarray]:
    if weights is None:
        # like nn.EmbeddingBag's reset_parameters scale, but seeded per table: reproducible, streamed
        gen = np.random.default_rng(zlib.crc32(spec.name.encode()))
        bound = np.sqrt(1.0 / spec.num_rows)
        for a, b in _chunk_bounds(spec.num_rows):
            yield gen.uniform(-bound, bound, (b - a, spec.dim)).astype(np.float32)
        return
    if callable(weights):
        for a, b in _chunk_bounds(spec.num_rows):
            yield np.asarray(weights(spec.name, a, b))
        return
    w = _table_weights(weights, spec, i)
    for a, b in _chunk_bounds(spec.num_rows):
        yield w[a:b]


def _table_weights(weights, spec: TableSpec, i: int) -> np.ndarray:
    """One table's rows from a mapping or a list of arrays / tensors, shape-checked."""
    if isinstance(weights, Mapping):
        if spec.name not in weights:
            raise InvalidInputError(f"table {spec.name!r}: no weights given (weights has {sorted(weights)[:10]})")
        w = weights[spec.name]
    else:
        if i >= len(weights):
            raise InvalidInputError(f"table {spec.name!r}: no weights given (weights is a list of {len(weights)})")
        w = weights[i]
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu().numpy()
    w = np.asarray(w)
    if w.shape != (spec.num_rows, spec.dim):
        raise InvalidInputError(f"table {spec.name!r}: weights have shape {w.shape}, expected {(spec.num_rows, spec.dim)}")
    if not np.issubdtype(w.dtype, np.floating):
        raise InvalidInputError(f"table {spec.name!r}: weights must be floating point, got dtype {w.dtype}")
    return w
