"""Row formats of stored embedding rows: fp32 (exact), fp16, int8 and int4 row-wise; encode, decode, error bound.

Stored shapes (one row per table row):
- fp32: float32 [n, dim]; decoding is a bit copy, so lookups stay bitwise exact.
- fp16: float16 [n, dim]; round-to-nearest-even.
- int8: uint8 [n, dim + 8]: `dim` codes, then float32 scale and float32 bias as raw bytes
  (row-wise asymmetric quantization, as fbgemm's 8-bit row-wise EmbeddingBag: x ~ code * scale + bias).
- int4: uint8 [n, dim / 2 + 4]: two 4-bit codes a byte (value 2j in the low nibble of byte j, 2j + 1
  in the high one), then float16 scale and float16 bias (fbgemm's 4-bit row-wise layout, what
  `torch.ops.quantized.embedding_bag_4bit_rowwise_offsets` reads); dim must be even.
  The bias is the row minimum rounded down to fp16 and the scale (max - bias) / 15 rounded up to
  fp16, so every code stays in [0, 15] and no value is clipped.

Error bounds (checked by `error_bound` and the tests), per value x of a row:
- fp16: |x' - x| <= 2**-11 * |x| for |x| in the fp16 normal range [2**-14, 65504],
  <= 2**-25 below it (subnormal spacing / 2); values beyond 65504 are rejected at encode.
- int8: |x' - x| <= scale / 2 + 2**-20 * max(|min|, |max|) of the row, where scale = (max - min) / 255
  (half a quantization step, plus float32 rounding of code * scale + bias).
- int4: |x' - x| <= scale / 2 + 2**-20 * (|bias| + 15 * scale), with the stored (fp16) scale and bias
  (half a step, plus float32 rounding of code * scale + bias). A row's range must fit fp16
  (|min| and (max - min) / 15 <= 65504), else encode refuses it.
Pooled sums of quantized rows (the fused kernels, sdm.runtime.quantized) add at most the per-row
bounds, plus float32 rounding of the sum.
"""
from __future__ import annotations

import numpy as np
import torch

from sdm.core.errors import InvalidInputError
from sdm.core.spec import ROW_FORMATS  # bytes per stored row: sdm.core.spec.row_bytes

FP16_MAX = 65504.0


def storage_dtype(row_format: str) -> np.dtype:
    """numpy dtype of the stored array for `row_format`."""
    return {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16), "int8": np.dtype(np.uint8),
            "int4": np.dtype(np.uint8)}[_check(row_format)]


def storage_width(dim: int, row_format: str) -> int:
    """Number of stored elements per row (dim; dim + 8 bytes for int8, dim / 2 + 4 for int4 row-wise)."""
    fmt = _check(row_format)
    return dim + 8 if fmt == "int8" else dim // 2 + 4 if fmt == "int4" else dim


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
    if row_format == "int4":
        return _encode_int4(x, table)
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
    if _check(row_format) == "int4":
        half = stored.shape[1] - 4
        packed = stored[:, :half]
        codes = torch.stack([packed & 15, packed >> 4], dim=2).reshape(stored.shape[0], 2 * half).to(torch.float32)
        tail = stored[:, half:].contiguous().view(torch.float16).to(torch.float32)  # [n, 2]: scale, bias
        return codes * tail[:, 0:1] + tail[:, 1:2]
    dim = stored.shape[1] - 8
    codes = stored[:, :dim].to(torch.float32)
    tail = stored[:, dim:].contiguous().view(torch.float32)  # [n, 2]: scale, bias
    return codes * tail[:, 0:1] + tail[:, 1:2]


def _fp16_toward(x: np.ndarray, direction: float) -> np.ndarray:
    """float32 values as the nearest float16 on the side of `direction` (-inf: <= x, +inf: >= x)."""
    h = x.astype(np.float16)
    off = h.astype(np.float32) > x if direction < 0 else h.astype(np.float32) < x
    h[off] = np.nextafter(h[off], np.float16(direction))
    return h


def _encode_int4(x: np.ndarray, table: str) -> np.ndarray:
    n, dim = x.shape
    if dim % 2:
        raise InvalidInputError(f"table {table!r}: row format 'int4' needs an even dim, got {dim}")
    lo = x.min(axis=1) if dim else np.zeros(n, np.float32)
    hi = x.max(axis=1) if dim else np.zeros(n, np.float32)
    too_big = (np.abs(lo) > FP16_MAX) | ((hi - lo) / np.float32(15.0) > FP16_MAX)
    if too_big.any():
        r = int(np.flatnonzero(too_big)[0])
        raise InvalidInputError(f"table {table!r}: row {r} spans [{lo[r]}, {hi[r]}], beyond int4's fp16 scale and bias")
    bias = _fp16_toward(lo, -np.inf)
    scale = _fp16_toward((hi - bias.astype(np.float32)) / np.float32(15.0), np.inf)
    s32 = scale.astype(np.float32)
    safe = np.where(s32 > 0, s32, np.float32(1.0))
    codes = np.clip(np.rint((x - bias.astype(np.float32)[:, None]) / safe[:, None]), 0, 15).astype(np.uint8)
    out = np.empty((n, dim // 2 + 4), dtype=np.uint8)
    out[:, : dim // 2] = codes[:, 0::2] | (codes[:, 1::2] << 4)
    out[:, dim // 2 : dim // 2 + 2] = scale.view(np.uint8).reshape(n, 2)
    out[:, dim // 2 + 2 :] = bias.view(np.uint8).reshape(n, 2)
    return out


def error_bound(rows: np.ndarray, row_format: str) -> np.ndarray:
    """Largest allowed |decode(encode(rows)) - rows| per value, shape of `rows` (see module doc)."""
    x = np.asarray(rows, dtype=np.float32)
    if row_format == "fp32":
        return np.zeros_like(x)
    if row_format == "fp16":
        return np.where(np.abs(x) >= 2.0**-14, np.abs(x) * 2.0**-11, 2.0**-25).astype(np.float64)
    if _check(row_format) == "int4":
        lo, hi = x.min(axis=1), x.max(axis=1)
        bias = _fp16_toward(lo, -np.inf).astype(np.float64)
        scale = _fp16_toward((hi - bias.astype(np.float32)) / np.float32(15.0), np.inf).astype(np.float64)
        return np.broadcast_to((scale / 2 + (np.abs(bias) + 15 * scale) * 2.0**-20)[:, None], x.shape)
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    scale = (hi.astype(np.float64) - lo) / 255.0
    mag = np.maximum(np.abs(lo), np.abs(hi)).astype(np.float64)
    return np.broadcast_to(scale / 2 + mag * 2.0**-20, x.shape)
