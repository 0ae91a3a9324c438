"""Exceptions raised by sdm, and the argument checks that raise them.

Every message names what is wrong (table, index, position, file).
"""
from __future__ import annotations

import math
import numbers

import numpy as np


class SdmError(Exception):
    """Base class of every error sdm raises on purpose."""


class InvalidInputError(SdmError, ValueError):
    """Bad arguments: out-of-range or negative ids, wrong dtype or shape, unknown table, bad file.

    Raised before anything is changed, so the store, cache and statistics are as they were.
    """


class StoreFormatError(SdmError):
    """A path that is not an sdm store, or a store written in an unknown format version."""


class CorruptionError(SdmError):
    """Stored data failed its checksum. The message names the table and page."""


class InfeasibleError(SdmError):
    """A capacity or latency budget cannot be met; the message says which constraint and by how much."""


# ---- argument checks shared by every part: one wording, one set of rules ----------------------------
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


def integer_array(values, what: str):
    """`values` as an int64 numpy array when its dtype is an integer one (an empty list passes), else
    InvalidInputError naming `what`: 1.5 must never be read as row 1. An int64 array (or memmap)
    comes back as is, without a copy."""
    a = values if isinstance(values, np.ndarray) else np.asarray(values)
    if a.dtype == np.int64:
        return a
    if a.size and (a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer)):
        raise InvalidInputError(f"{what} must be integers, got dtype {a.dtype}")
    return a.astype(np.int64)
