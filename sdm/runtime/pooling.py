"""Exact pooled lookups: validate EmbeddingBag inputs, then pool rows gathered from any tier.

Exactness comes from calling the very kernel `torch.nn.EmbeddingBag` calls
(`torch.nn.functional.embedding_bag`) with the same bags in the same order: only the weight tensor
differs (a compact tensor of the batch's rows, or a cache's slot tensor), and the indices are
remapped to it. Each bag therefore adds the same float32 values in the same sequence, so sum, mean
and max results are bitwise equal to the reference.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sdm.core.checks import bag_offsets, ids_in_range, integer_array
from sdm.core.errors import InvalidInputError

MODES = ("sum", "mean", "max")
_MODE_ENUM = {"sum": 0, "mean": 1, "max": 2}   # torch.embedding_bag's mode numbers


@dataclass
class BagBatch:
    """Validated inputs of one pooled lookup, as CPU torch tensors (int64 indices and offsets)."""

    indices: torch.Tensor            # [n] int64 row ids, all in range
    offsets: torch.Tensor            # [B] or [B + 1] (include_last_offset) int64
    per_sample_weights: torch.Tensor | None
    mode: str
    include_last_offset: bool
    padding_idx: int | None
    # False: the ids' range is left to the lookup path (`check_ids`), which checks it only where
    # no cheaper proof exists (a cached id is in range by construction; see StoreTable.lookup)
    ids_checked: bool = True

    @property
    def num_bags(self) -> int:
        return int(self.offsets.numel()) - (1 if self.include_last_offset else 0)

    def check_ids(self, table: str, num_rows: int) -> None:
        """Range-check the ids now if `validate` deferred it (InvalidInputError naming the table)."""
        if not self.ids_checked:
            ids_in_range(self.indices.numpy(), num_rows, f"table {table!r}")
            self.ids_checked = True


def _as_tensor(x, what: str, table: str) -> torch.Tensor:
    """A CPU tensor of `x` (tensor, numpy array of any layout: negative strides, other byte orders
    are copied, list); InvalidInputError naming the table otherwise."""
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        a = x
        if not a.dtype.isnative:
            a = a.astype(a.dtype.newbyteorder("="))
        if any(st < 0 for st in a.strides) or not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        try:
            t = torch.from_numpy(a)
        except TypeError as exc:
            raise InvalidInputError(f"table {table!r}: {what} of numpy dtype {x.dtype} is not supported ({exc})") from None
    elif isinstance(x, (list, tuple)):
        t = torch.as_tensor(x)
    else:
        raise InvalidInputError(f"table {table!r}: {what} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if t.device.type != "cpu":
        raise InvalidInputError(f"table {table!r}: {what} must be on the CPU, got device {t.device}")
    return t


def as_index_tensor(x, what: str, table: str) -> torch.Tensor:
    """`x` as a CPU int64/int32 tensor: numpy arrays of any integer dtype and layout are converted
    (`sdm.core.checks.integer_array`: int64, native byte order); anything else not integer is refused."""
    if isinstance(x, np.ndarray):
        x = np.ascontiguousarray(integer_array(x, f"table {table!r}: {what}"))
    t = _as_tensor(x, what, table)
    if t.dtype not in (torch.int64, torch.int32):
        raise InvalidInputError(f"table {table!r}: {what} must be int64 or int32, got {t.dtype}")
    return t


def validate(
    table: str,
    num_rows: int,
    indices,
    offsets=None,
    per_sample_weights=None,
    *,
    mode: str = "sum",
    include_last_offset: bool = False,
    padding_idx: int | None = None,
    check_ids: bool = True,
) -> BagBatch:
    """Check one lookup's inputs; raise InvalidInputError naming table and position, else normalise.

    Accepts what nn.EmbeddingBag accepts: 1-D indices with offsets, or 2-D [B, L] indices without
    (fixed-size bags).
    """
    if mode not in MODES:
        raise InvalidInputError(f"table {table!r}: unknown mode {mode!r}; expected one of {MODES}")
    idx = as_index_tensor(indices, "indices", table)
    if idx.dim() == 2:
        if offsets is not None:
            raise InvalidInputError(f"table {table!r}: offsets must be None when indices are 2-D")
        bags, length = idx.shape
        off = torch.arange(0, bags * length, length, dtype=torch.int64) if length else torch.zeros(bags, dtype=torch.int64)
        if include_last_offset:
            off = torch.cat([off, torch.tensor([bags * length])])
        if per_sample_weights is not None:
            per_sample_weights = _as_tensor(per_sample_weights, "per_sample_weights", table)
            if tuple(per_sample_weights.shape) != (bags, length):   # nn.EmbeddingBag's rule: the input's shape
                raise InvalidInputError(f"table {table!r}: per_sample_weights shape {tuple(per_sample_weights.shape)} "
                                        f"does not match indices {(bags, length)}")
            per_sample_weights = per_sample_weights.reshape(-1)
        idx = idx.reshape(-1)
    elif idx.dim() == 1:
        if offsets is None:
            raise InvalidInputError(f"table {table!r}: offsets are required with 1-D indices")
        off = as_index_tensor(offsets, "offsets", table)
    else:
        raise InvalidInputError(f"table {table!r}: indices must be 1-D or 2-D, got shape {tuple(idx.shape)}")
    idx = idx.to(torch.int64).contiguous()
    off = off.to(torch.int64).contiguous()
    n = idx.numel()
    if include_last_offset and off.numel() == 0:
        raise InvalidInputError(f"table {table!r}: include_last_offset needs at least one offset")
    # the shared checks (sdm.core.checks): one numpy min/max pass over the ids, one over the offsets
    bag_offsets(off.numpy(), n, f"table {table!r}", exact_end=False)
    if check_ids:
        ids_in_range(idx.numpy(), num_rows, f"table {table!r}")
    psw = None
    if per_sample_weights is not None:
        psw = _as_tensor(per_sample_weights, "per_sample_weights", table)
        if mode != "sum":
            raise InvalidInputError(f"table {table!r}: per_sample_weights need mode 'sum', got {mode!r}")
        if psw.dtype != torch.float32:
            raise InvalidInputError(f"table {table!r}: per_sample_weights must be float32, got {psw.dtype}")
        if tuple(psw.shape) != (n,):
            raise InvalidInputError(
                f"table {table!r}: per_sample_weights shape {tuple(psw.shape)} does not match indices ({n},)"
            )
        psw = psw.contiguous()
    if padding_idx is not None:
        padding_idx = int(padding_idx)
        if padding_idx < 0:
            padding_idx += num_rows
        if not 0 <= padding_idx < num_rows:
            raise InvalidInputError(f"table {table!r}: padding_idx {padding_idx} out of range [0, {num_rows})")
    return BagBatch(idx, off, psw, mode, include_last_offset, padding_idx, check_ids)


def pool(weight: torch.Tensor, local_indices: torch.Tensor, batch: BagBatch, padding_local: int | None) -> torch.Tensor:
    """Pool rows of `weight` (float32 [m, dim]) picked by `local_indices` with `batch`'s bags.

    `padding_local` is the row of `weight` that holds padding_idx's row, or None when the batch
    does not use it (then no entry is skipped, as in the reference).
    """
    # torch.embedding_bag is the op F.embedding_bag (and so nn.EmbeddingBag) ends in; `validate` has
    # done F's argument checks and normalisation, so calling it directly skips only Python
    return torch.embedding_bag(weight, local_indices, offsets_like(local_indices, batch), False,
                               _MODE_ENUM[batch.mode], False, batch.per_sample_weights, batch.include_last_offset,
                               padding_local)[0]


def offsets_like(local_indices: torch.Tensor, batch: BagBatch) -> torch.Tensor:
    """The batch's offsets in the indices' dtype: int32 slots (the cache's all-hit pass) take int32
    offsets, and torch's and fbgemm's kernels then read half the index bytes (same sums, same order)."""
    if local_indices.dtype == batch.offsets.dtype:
        return batch.offsets
    return batch.offsets.to(local_indices.dtype)


def compact(indices: torch.Tensor, padding_idx: int | None) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    """Unique row ids of a batch, each index's position among them, and padding_idx's position.

    Returns (unique_ids sorted, inverse [n], padding_local). When padding_idx is set but absent
    from the batch, padding_local is len(unique_ids): the caller appends one zero row there. It must
    still be passed, because embedding_bag takes a different (differently rounding) kernel path
    with per_sample_weights when padding_idx is set, and the reference has it set.
    """
    if indices.device.type == "cpu":
        # numpy's unique: 65 us for 4,096 ids where torch.unique takes 158 (its CPU sort is slower)
        u, inv = np.unique(indices.numpy(), return_inverse=True)
        uniq, inverse = torch.from_numpy(u), torch.from_numpy(inv.reshape(-1))
    else:
        uniq, inverse = torch.unique(indices, sorted=True, return_inverse=True)
    if padding_idx is None:
        return uniq, inverse, None
    pos = int(torch.searchsorted(uniq, torch.tensor([padding_idx]))[0]) if uniq.numel() else 0
    if pos < uniq.numel() and int(uniq[pos]) == padding_idx:
        return uniq, inverse, pos
    return uniq, inverse, int(uniq.numel())
