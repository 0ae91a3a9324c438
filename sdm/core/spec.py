"""Specs of embedding tables: what the user declares, independent of where rows end up."""
from __future__ import annotations

from dataclasses import dataclass

from sdm.core.errors import InvalidInputError
from sdm.core.checks import real_number, whole_number

# Row formats and the bytes one row of `dim` values takes in each. int8 row-wise keeps a float32
# scale and a float32 bias per row (the seeds' per-layer EmbeddingBag quantization, as in fbgemm);
# int4 row-wise packs two codes a byte and keeps an fp16 scale and bias (fbgemm's 4-bit layout).
ROW_FORMATS = ("fp32", "fp16", "int8", "int4")


def row_bytes(dim: int, row_format: str = "fp32") -> int:
    """Bytes one stored row takes in `row_format`."""
    dim = whole_number(dim, "dim", minimum=1)
    if row_format == "fp32":
        return 4 * dim
    if row_format == "fp16":
        return 2 * dim
    if row_format == "int8":
        return dim + 8
    if row_format == "int4":
        if dim % 2:
            raise InvalidInputError(f"row format 'int4' packs two values a byte: dim must be even, got {dim}")
        return dim // 2 + 4
    raise InvalidInputError(f"unknown row format {row_format!r}; expected one of {ROW_FORMATS}")


@dataclass(frozen=True)
class TableSpec:
    """One embedding table: `num_rows` rows of `dim` values stored in `row_format`.

    `pooling_factor` is the mean number of lookups per sample (bag size), used by planners.
    """

    name: str
    num_rows: int
    dim: int
    row_format: str = "fp32"
    pooling_factor: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInputError(f"table name must be a non-empty string, got {self.name!r}")
        # Stored as plain ints / floats: a 2.5-row table or a NaN pooling factor is a caller's bug.
        object.__setattr__(self, "num_rows", whole_number(self.num_rows, f"table {self.name!r}: num_rows", minimum=1))
        object.__setattr__(self, "dim", whole_number(self.dim, f"table {self.name!r}: dim", minimum=1))
        if self.row_format not in ROW_FORMATS:
            raise InvalidInputError(
                f"table {self.name!r}: unknown row format {self.row_format!r}; expected one of {ROW_FORMATS}"
            )
        if self.row_format == "int4" and self.dim % 2:
            raise InvalidInputError(f"table {self.name!r}: row format 'int4' needs an even dim, got {self.dim}")
        object.__setattr__(
            self, "pooling_factor", real_number(self.pooling_factor, f"table {self.name!r}: pooling_factor", above=0)
        )

    @property
    def row_bytes(self) -> int:
        return row_bytes(self.dim, self.row_format)

    @property
    def size_bytes(self) -> int:
        return self.num_rows * self.row_bytes
