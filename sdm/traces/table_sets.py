"""Table sizes a generator is asked for: the published Criteo sets by name, 'N,N,...', an int or a
list; and the per-table argument handling every generator shares."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sdm.core.checks import whole_number
from sdm.core.errors import InvalidInputError

# Criteo table sizes, REFERENCE.md "Data" (Criteo Kaggle Display Advertising, 26 categorical
# features; Criteo Terabyte with MLPerf's 40M-row cap, dim 128).
CRITEO_KAGGLE_ROWS = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
    5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)
CRITEO_TERABYTE_ROWS = (
    39884406, 39043, 17289, 7420, 20263, 3, 7120, 1543, 63, 38532951, 2953546, 403346, 10, 2208,
    11938, 155, 4, 976, 14, 39979771, 25641295, 39664984, 585935, 12972, 108, 36,
)
TABLE_SETS = {"criteo-kaggle": CRITEO_KAGGLE_ROWS, "criteo-terabyte": CRITEO_TERABYTE_ROWS}


def table_rows(spec: int | str | Sequence[int]) -> list[int]:
    """Row counts from a name ('criteo-kaggle', 'criteo-terabyte'), 'N,N,...', an int or a list."""
    if isinstance(spec, str):
        if spec in TABLE_SETS:
            return list(TABLE_SETS[spec])
        try:
            rows = [int(x) for x in spec.split(",") if x.strip()]
        except ValueError:
            raise InvalidInputError(
                f"table sizes {spec!r}: expected one of {sorted(TABLE_SETS)} or comma-separated integers"
            ) from None
    elif isinstance(spec, (int, np.integer)):
        rows = [int(spec)]
    else:
        rows = [int(x) for x in spec]
    if not rows or min(rows) <= 0:
        raise InvalidInputError(f"table sizes must be positive integers, got {spec!r}")
    return rows


def per_table(value, T: int, what: str) -> list:
    """`value` once per table: a scalar repeated, or a sequence of exactly T values."""
    if np.ndim(value) == 0:
        return [value] * T
    value = list(value)
    if len(value) != T:
        raise InvalidInputError(f"{what}: got {len(value)} values for {T} tables")
    return value


def table_names_of(table_names, T: int) -> list[str]:
    """The given names as text, or t0, t1, ... when None; exactly T of them."""
    names = [f"t{t}" for t in range(T)] if table_names is None else [str(n) for n in table_names]
    if len(names) != T:
        raise InvalidInputError(f"got {len(names)} table names for {T} tables")
    return names


def check_counts(num_samples: int, batch_size: int) -> None:
    """Both whole numbers >= 1, else InvalidInputError naming which."""
    whole_number(num_samples, "num_samples", minimum=1)
    whole_number(batch_size, "batch_size", minimum=1)
