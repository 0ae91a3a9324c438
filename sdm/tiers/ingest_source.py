"""Rows to ingest into the page store: a 2-D array (np.memmap streams) or an iterable of row chunks.

Sources hand the store uint8 blocks of whole rows, a bounded number at a time, and check width and
dtype of every chunk before it is written. A row_order (page layout) needs random access, so a
streamed source is first spooled to a memory-mapped file on disk: memory stays bounded either way.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.core.checks import whole_number


def as_numpy(x):
    """torch tensors become numpy arrays (CPU); everything else is returned as is."""
    if hasattr(x, "detach") and hasattr(x, "numpy"):
        return x.detach().cpu().numpy()
    return x


class RowSource:
    """Rows to ingest, as uint8 blocks of whole rows; validates shape and dtype before anything is written."""

    def __init__(self, name: str, num_rows: int | None, dim: int, dtype: np.dtype) -> None:
        self.name, self.num_rows, self.dim, self.dtype = name, num_rows, dim, dtype
        self.row_bytes = dim * dtype.itemsize
        self.random_access = False

    @property
    def size_bytes(self) -> int:
        return (self.num_rows or 0) * self.row_bytes

    @staticmethod
    def make(name: str, rows, num_rows, dim, dtype) -> "RowSource":
        want = None if dtype is None else np.dtype(dtype)
        if num_rows is not None:
            num_rows = whole_number(num_rows, f"table {name!r}: num_rows", minimum=1)
        if dim is not None:
            dim = whole_number(dim, f"table {name!r}: dim", minimum=1)
        if isinstance(rows, np.ndarray):
            if rows.ndim != 2:
                raise InvalidInputError(f"table {name!r}: rows must be 2-D [num_rows, dim], got shape {rows.shape}")
            for what, given, actual in (("num_rows", num_rows, rows.shape[0]), ("dim", dim, rows.shape[1])):
                if given is not None and given != actual:
                    raise InvalidInputError(f"table {name!r}: {what}={given} but rows have shape {rows.shape}")
            if want is not None and want != rows.dtype:
                raise InvalidInputError(f"table {name!r}: dtype={want} but rows have dtype {rows.dtype}")
            _check_dtype(name, rows.dtype)
            if rows.shape[0] == 0 or rows.shape[1] == 0:
                raise InvalidInputError(f"table {name!r}: rows have shape {rows.shape}; need at least one row and column")
            return ArraySource(name, rows)
        if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
            raise InvalidInputError(f"table {name!r}: rows must be a 2-D array or an iterable of 2-D arrays, "
                                    f"got {type(rows).__name__}")
        return ChunkSource(name, iter(rows), num_rows, dim, want)

    def blocks(self, step: int, order: np.ndarray | None) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def spool(self, path: str) -> "ArraySource":
        """Copy the rows to a memory-mapped file so a row_order can gather them (disk, not RAM)."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=(self.num_rows, self.dim))
        pos = 0
        try:
            for block in self.blocks(1 << 16, None):
                k = len(block)
                if pos + k > self.num_rows:
                    raise InvalidInputError(f"table {self.name!r}: more rows than num_rows={self.num_rows}")
                mm[pos : pos + k] = block.view(self.dtype).reshape(k, self.dim)
                pos += k
            if pos != self.num_rows:
                raise InvalidInputError(f"table {self.name!r}: got {pos} rows, num_rows={self.num_rows}")
        except BaseException:
            del mm
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        src = ArraySource(self.name, mm)
        src.spool_path = path
        return src


def _check_dtype(name: str, dtype: np.dtype) -> None:
    if dtype.hasobject or dtype.itemsize == 0:
        raise InvalidInputError(f"table {name!r}: dtype {dtype} cannot be stored (fixed-width values only)")


class ArraySource(RowSource):
    def __init__(self, name: str, rows: np.ndarray) -> None:
        super().__init__(name, rows.shape[0], rows.shape[1], rows.dtype)
        self.rows = rows
        self.random_access = True
        self.spool_path: str | None = None

    def blocks(self, step: int, order: np.ndarray | None) -> Iterator[np.ndarray]:
        for p0 in range(0, self.num_rows, step):
            p1 = min(p0 + step, self.num_rows)
            block = self.rows[p0:p1] if order is None else self.rows[order[p0:p1]]
            yield np.ascontiguousarray(block).view(np.uint8).reshape(p1 - p0, self.row_bytes)

    def remove(self) -> None:
        if self.spool_path:
            del self.rows
            with contextlib.suppress(OSError):
                os.unlink(self.spool_path)


class ChunkSource(RowSource):
    """An iterable of [k, dim] chunks; the first chunk fixes dim and dtype unless they are given."""

    def __init__(self, name: str, chunks: Iterator, num_rows: int | None, dim: int | None,
                 dtype: np.dtype | None) -> None:
        first = None
        for first in chunks:
            break
        if first is None:
            raise InvalidInputError(f"table {name!r}: no rows given (empty iterable)")
        first = self._check_chunk(name, 0, 0, as_numpy(first), dim, dtype)
        super().__init__(name, num_rows, first.shape[1], first.dtype)
        self._first, self._chunks = first, chunks

    @staticmethod
    def _check_chunk(name, i, pos, c, dim, dtype) -> np.ndarray:
        if not isinstance(c, np.ndarray) or c.ndim != 2:
            shape = getattr(c, "shape", None)
            raise InvalidInputError(f"table {name!r}: chunk {i} (row {pos}) must be a 2-D array, got "
                                    f"{type(c).__name__} with shape {shape}")
        if dim is not None and c.shape[1] != dim:
            raise InvalidInputError(f"table {name!r}: chunk {i} (row {pos}) has rows of width {c.shape[1]}, "
                                    f"expected {dim}")
        if dtype is not None and c.dtype != dtype:
            raise InvalidInputError(f"table {name!r}: chunk {i} (row {pos}) has dtype {c.dtype}, expected {dtype}")
        _check_dtype(name, c.dtype)
        return c

    def blocks(self, step: int, order: np.ndarray | None) -> Iterator[np.ndarray]:
        assert order is None, "a row_order needs random access: spool first"
        held: list[np.ndarray] = []  # chunks not yet emitted; joined once per block, not per chunk
        held_rows, pos, i = 0, 0, 0
        chunk = self._first
        while chunk is not None:
            c = self._check_chunk(self.name, i, pos, chunk, self.dim, self.dtype)
            pos += len(c)
            if self.num_rows is not None and pos > self.num_rows:
                raise InvalidInputError(f"table {self.name!r}: chunk {i} goes past num_rows={self.num_rows}")
            held.append(np.ascontiguousarray(c).view(np.uint8).reshape(len(c), self.row_bytes))
            held_rows += len(c)
            if held_rows >= step:
                carry = np.concatenate(held) if len(held) > 1 else held[0]
                cut = held_rows // step * step
                for p0 in range(0, cut, step):
                    yield carry[p0 : p0 + step]
                held, held_rows = ([carry[cut:]] if cut < held_rows else []), held_rows - cut
            i += 1
            chunk = as_numpy(next(self._chunks, None))
        if self.num_rows is not None and pos != self.num_rows:
            raise InvalidInputError(f"table {self.name!r}: got {pos} rows, num_rows={self.num_rows}")
        if held_rows:
            yield np.concatenate(held)
