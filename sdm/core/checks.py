"""The input checks every part shares: one wording, one set of rules.

Numbers (`whole_number`, `real_number`), integer arrays (`integer_array`), row ids against a table
(`ids_in_range`) and the offsets of bags (`bag_offsets`). Each raises InvalidInputError naming what
is wrong (table, value, position) before anything is changed. Plain numpy: a min/max pass is as fast
as a compiled loop here and costs no JIT import on the first call.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from sdm.core.errors import InvalidInputError

__all__ = ["whole_number", "real_number", "integer_array", "ids_in_range", "bag_offsets"]


def whole_number(value, what: str, *, minimum: int = 0) -> int:
    """`value` as an int when it is a whole number >= `minimum`, else InvalidInputError naming `what`.

    Python and numpy integers pass; so do integral floats (1e6 from a JSON or TOML file); bools,
    fractions, NaN, strings and None do not: `int(2.5)` silently truncating a capacity is the bug
    this guards against.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and not isinstance(value, numbers.Integral):
        ok = math.isfinite(value) and float(value).is_integer()
    if not ok or int(value) < minimum:
        raise InvalidInputError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def real_number(value, what: str, *, minimum: float | None = None, above: float | None = None) -> float:
    """`value` as a finite float (>= `minimum`, or > `above`), else InvalidInputError naming `what`."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise InvalidInputError(f"{what} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidInputError(f"{what} must be >= {minimum}, got {value!r}")
    if above is not None and not value > above:
        raise InvalidInputError(f"{what} must be > {above}, got {value!r}")
    return float(value)


def integer_array(values, what: str) -> np.ndarray:
    """`values` as an int64 numpy array when its dtype is an integer one (an empty list passes), else
    InvalidInputError naming `what`: 1.5 must never be read as row 1. A native-order int64 array (or
    memmap) comes back as is, without a copy; big-endian or other integer dtypes are converted."""
    a = values if isinstance(values, np.ndarray) else np.asarray(values)
    if a.dtype == np.int64 and a.dtype.isnative:
        return a
    if a.size and (a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer)):
        raise InvalidInputError(f"{what} must be integers, got dtype {a.dtype}")
    if a.size and a.dtype == np.uint64 and int(a.max()) > np.iinfo(np.int64).max:
        pos = int(np.flatnonzero(a > np.iinfo(np.int64).max)[0])
        raise InvalidInputError(f"{what}: value {int(a[pos])} at position {pos} does not fit int64")
    return a.astype(np.int64)


def ids_in_range(ids: np.ndarray, num_rows: int, what: str) -> np.ndarray:
    """`ids` (int64) unchanged when every id is in [0, num_rows), else InvalidInputError naming
    `what`, the first bad id and its position."""
    if ids.size:
        # one pass: a negative int64 viewed as uint64 is larger than any row count
        wide = ids.view(np.uint64) if ids.dtype == np.int64 else ids.astype(np.int64).view(np.uint64)
        if int(wide.max()) >= num_rows:
            pos = int(np.flatnonzero((ids < 0) | (ids >= num_rows))[0])
            raise InvalidInputError(
                f"{what}: index {int(ids[pos])} at position {pos} is out of range [0, {num_rows})"
            )
    return ids


def bag_offsets(offsets: np.ndarray, num_indices: int, what: str, *, exact_end: bool) -> np.ndarray:
    """`offsets` (1-D int64) unchanged when they start at 0, never decrease and end at (exact_end)
    or before (not exact_end, nn.EmbeddingBag's rule) `num_indices`; else InvalidInputError."""
    if offsets.ndim != 1:
        raise InvalidInputError(f"{what}: offsets must be 1-D, got shape {tuple(offsets.shape)}")
    if not offsets.size:
        return offsets
    if offsets[0] != 0:
        raise InvalidInputError(f"{what}: offsets[0] must be 0, got {int(offsets[0])}")
    if offsets.size > 1:
        bad = np.flatnonzero(offsets[1:] < offsets[:-1])
        if bad.size:
            pos = int(bad[0]) + 1
            raise InvalidInputError(
                f"{what}: offsets must be non-decreasing; offsets[{pos}]={int(offsets[pos])} "
                f"< offsets[{pos - 1}]={int(offsets[pos - 1])}"
            )
    last = int(offsets[-1])
    if last > num_indices or (exact_end and last != num_indices):
        raise InvalidInputError(
            f"{what}: offsets[{offsets.size - 1}]={last} but there are {num_indices} indices"
        )
    return offsets
