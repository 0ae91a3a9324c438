"""Row formats of stored embedding rows: fp32 (exact), fp16, int8 row-wise; encode, decode, error bound.

Stored shapes (one row per table row):
- fp32: float32 [n, dim]; decoding is a bit copy, so lookups stay bitwise exact.
- fp16: float16 [n, dim]; round-to-nearest-even.
- int8: uint8 [n, dim + 8]: `dim` codes, then float32 scale and float32 bias as raw bytes
  (row-wise asymmetric quantization, as fbgemm's 8-bit row-wise EmbeddingBag: x ~ code * scale + bias).

Error bounds (checked by `error_bound` and the tests), per value x of a row:
- fp16: |x' - x| <= 2**-11 * |x| for |x| in the fp16 normal range [2**-14, 65504],
  <= 2**-25 below it (subnormal spacing / 2); values beyond 65504 are rejected at encode.
- int8: |x' - x| <= scale / 2 + 2**-20 * max(|min|, |max|) of the row, where scale = (max - min) / 255
  (half a quantization step, plus float32 rounding of code * scale + bias).
"""
from __future__ import annotations

import numpy as np
import torch

from sdm.core.errors import InvalidInputError
from sdm.core.spec import ROW_FORMATS  # bytes per stored row: sdm.core.spec.row_bytes

FP16_MAX = 65504.0


def storage_dtype(row_format: str) -> np.dtype:
    """numpy dtype of the stored array for `row_format`."""
    return {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16), "int8": np.dtype(np.uint8)}[
        _check(row_format)
    ]


def storage_width(dim: int, row_format: str) -> int:
    """Number of stored elements per row (dim, or dim + 8 bytes for int8 row-wise)."""
    return dim + 8 if _check(row_format) == "int8" else dim


def _check(row_format: str) -> str:
    if row_format not in ROW_FORMATS:
        raise InvalidInputError(f"unknown row format {row_format!r}; expected one of {ROW_FORMATS}")
    return row_format


def encode(rows: np.ndarray | torch.Tensor, row_format: str, *, table: str = "?") -> np.ndarray:
    """Encode float rows [n, dim] to the stored array of `row_format` (see module doc)."""
    if isinstance(rows, torch.Tensor):
        rows = rows.detach().cpu().numpy()
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise InvalidInputError(f"table {table!r}: rows must be 2-D [n, dim], got shape {rows.shape}")
    if not np.issubdtype(rows.dtype, np.floating):
        raise InvalidInputError(f"table {table!r}: rows must be floating point, got {rows.dtype}")
    _check(row_format)
    if row_format == "fp32":
        return np.ascontiguousarray(rows, dtype=np.float32)
    x = rows.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise InvalidInputError(f"table {table!r}: non-finite value at row {bad[0]}, column {bad[1]}")
    if row_format == "fp16":
        over = np.abs(x) > FP16_MAX
        if over.any():
            bad = np.argwhere(over)[0]
            raise InvalidInputError(
                f"table {table!r}: value {x[bad[0], bad[1]]} at row {bad[0]}, column {bad[1]} "
                f"exceeds the fp16 range ({FP16_MAX})"
            )
        return x.astype(np.float16)
    n, dim = x.shape
    lo = x.min(axis=1) if dim else np.zeros(n, np.float32)
    hi = x.max(axis=1) if dim else np.zeros(n, np.float32)
    scale = ((hi - lo) / np.float32(255.0)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0))
    codes = np.clip(np.rint((x - lo[:, None]) / safe[:, None]), 0, 255).astype(np.uint8)
    out = np.empty((n, dim + 8), dtype=np.uint8)
    out[:, :dim] = codes
    out[:, dim : dim + 4] = scale.view(np.uint8).reshape(n, 4)
    out[:, dim + 4 :] = lo.astype(np.float32).view(np.uint8).reshape(n, 4)
    return out


def decode(stored: torch.Tensor, row_format: str) -> torch.Tensor:
    """Decode a stored tensor [n, width] to float32 [n, dim] (a view, no copy, for fp32)."""
    if row_format == "fp32":
        return stored
    if row_format == "fp16":
        return stored.to(torch.float32)
    _check(row_format)
    dim = stored.shape[1] - 8
    codes = stored[:, :dim].to(torch.float32)
    tail = stored[:, dim:].contiguous().view(torch.float32)  # [n, 2]: scale, bias
    return codes * tail[:, 0:1] + tail[:, 1:2]


def error_bound(rows: np.ndarray, row_format: str) -> np.ndarray:
    """Largest allowed |decode(encode(rows)) - rows| per value, shape of `rows` (see module doc)."""
    x = np.asarray(rows, dtype=np.float32)
    if row_format == "fp32":
        return np.zeros_like(x)
    if row_format == "fp16":
        return np.where(np.abs(x) >= 2.0**-14, np.abs(x) * 2.0**-11, 2.0**-25).astype(np.float64)
    _check(row_format)
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    scale = (hi.astype(np.float64) - lo) / 255.0
    mag = np.maximum(np.abs(lo), np.abs(hi)).astype(np.float64)
    return np.broadcast_to(scale / 2 + mag * 2.0**-20, x.shape)
