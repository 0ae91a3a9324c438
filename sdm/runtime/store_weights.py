"""The rows `EmbeddingStore.create` writes, from the many forms its `weights` argument may take:
a mapping name -> [rows, dim] array or tensor, a list in table order, a callable
`(name, start, stop) -> rows` (streams tables larger than memory), or None (seeded random rows).

Rows come in chunks of at most WRITE_CHUNK_ROWS, encoded to the table's row format, so writing a
table never holds more than one chunk of it.
"""
from __future__ import annotations

import zlib
from typing import Iterator, Mapping

import numpy as np
import torch

from sdm.runtime import row_formats
from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec

__all__ = ["WRITE_CHUNK_ROWS", "check_weights", "encoded_chunks"]

# Rows per chunk when writing weights: bounds memory for tables far larger than DRAM.
WRITE_CHUNK_ROWS = 1 << 16


def check_weights(weights, specs: list[TableSpec]) -> None:
    """Check array weights of every table whole (before anything is written or deleted); a
    callable's chunks are checked as they stream."""
    if weights is not None and not callable(weights):
        for i, s in enumerate(specs):
            _table_weights(weights, s, i)


def encoded_chunks(weights, spec: TableSpec, i: int) -> Iterator[np.ndarray]:
    """Rows of table `spec` (number `i` in the store) in id order, encoded to its row format; the
    page store lays them out by the plan's row_order itself."""
    for chunk in _float_chunks(weights, spec, i):
        if chunk.ndim != 2 or chunk.shape[1] != spec.dim:
            raise InvalidInputError(f"table {spec.name!r}: weight chunk has shape {chunk.shape}, dim {spec.dim}")
        yield row_formats.encode(chunk, spec.row_format, table=spec.name)


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
