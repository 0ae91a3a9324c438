"""Pooling straight from stored rows: every row format pooled by one kernel over its stored codes.

`pool_stored(stored, local_indices, batch, row_format, padding_local)` pools rows of a tensor in the
table's stored format (a cache's slot tensor, or a compact tensor of a batch's rows) and returns
float32 [bags, dim], without decoding the rows to float32 first:
- fp32: torch's embedding_bag (`sdm.runtime.pooling.pool`): bitwise equal to nn.EmbeddingBag.
- int8 / int4 row-wise, mode sum (and mean: the same sum divided by each bag's length), with or
  without per_sample_weights: fbgemm's fused kernels as torch ships them,
  `torch.ops.quantized.embedding_bag_byte_rowwise_offsets` / `embedding_bag_4bit_rowwise_offsets`;
  the stored layouts are theirs (sdm.runtime.row_formats), so a lookup equals the op called on the
  table's codes with the same ids, bit for bit (each bag sums the same rows in the same order).
  These kernels ignore their `mode` argument (always sum) and have no padding_idx: mode max and a
  padding row go through `pool_decoded` (the batch's distinct rows decoded, then torch's kernel).
- fp16: torch's embedding_bag over the fp16 rows (the kernel nn.EmbeddingBag over fp16 weights
  runs; it accumulates in float32 and rounds each pooled value to fp16 once), then float32. Bound:
  the per-row bounds summed, plus 2**-11 of the pooled value for that final rounding. A bag whose
  pooled value overflows fp16 is pooled again from decoded rows (then exact float32 sums), and so
  is a batch with per_sample_weights (the fp16 kernel wants fp16 weights).
"""
from __future__ import annotations

import math

import torch

from sdm.runtime import row_formats
from sdm.runtime.pooling import BagBatch, compact, offsets_like, pool

_FUSED_OPS = {
    "int8": "embedding_bag_byte_rowwise_offsets",
    "int4": "embedding_bag_4bit_rowwise_offsets",
}


def pool_stored(stored: torch.Tensor, local_indices: torch.Tensor, batch: BagBatch, row_format: str,
                padding_local: int | None) -> torch.Tensor:
    """Pooled float32 [bags, dim] of the rows of `stored` (stored format) at `local_indices`."""
    if row_format == "fp32":
        return pool(stored, local_indices, batch, padding_local)
    if row_format == "fp16" and batch.per_sample_weights is None:  # (its kernel wants fp16 weights)
        out = pool(stored, local_indices, batch, padding_local).to(torch.float32)
        # every value finite iff their float32 sum is (fp16 values cannot overflow a float32 sum;
        # inf - inf is nan): one fast reduction, where isfinite over fp16 is ~30x slower
        if math.isfinite(float(out.sum())):
            return out
        return pool_decoded(stored, local_indices, batch, row_format, padding_local)
    op = _FUSED_OPS.get(row_format)
    if op is None or batch.mode == "max" or padding_local is not None:
        return pool_decoded(stored, local_indices, batch, row_format, padding_local)
    out = getattr(torch.ops.quantized, op)(
        stored, local_indices, offsets_like(local_indices, batch), False, 0, False, batch.per_sample_weights, None,
        batch.include_last_offset,
    )
    if batch.mode == "mean":
        out = out / bag_lengths(batch).clamp_(min=1).to(out.dtype)[:, None]
    return out


def kernel_checks_ids(row_format: str, batch: BagBatch) -> bool:
    """Whether `pool_stored` hands every id to a kernel that refuses out-of-range ones (torch's
    embedding_bag and fbgemm's ops do; `pool_decoded`'s gather would wrap negative ids around)."""
    return row_format in ("fp32", "fp16") or (batch.mode != "max" and batch.padding_idx is None)


def bag_lengths(batch: BagBatch) -> torch.Tensor:
    """Indices per bag (int64 [bags])."""
    off = batch.offsets
    n = batch.indices.numel()
    ends = off[1:] if batch.include_last_offset else torch.cat([off[1:], torch.tensor([n], dtype=off.dtype)])
    return ends - off[: batch.num_bags]


def pool_decoded(stored: torch.Tensor, local_indices: torch.Tensor, batch: BagBatch, row_format: str,
                 padding_local: int | None) -> torch.Tensor:
    """The batch's distinct rows of `stored` decoded to float32, then torch's kernel (any mode,
    padding_idx): the exact float32 pooling of the decoded rows."""
    uniq, inverse, pad = compact(local_indices, padding_local)
    weight = row_formats.decode(stored[uniq], row_format)
    if pad == uniq.numel():  # padding row absent from the batch: a zero row stands in (see compact)
        weight = torch.cat([weight, weight.new_zeros((1, weight.shape[1]))])
    return pool(weight, inverse, batch, pad)
