"""Table-batched lookup: every table of a request in one call, in TorchRec's KeyedJaggedTensor layout.

Layout (as `torchrec.KeyedJaggedTensor`): `keys` (table names, T of them), `values` (the ids of all
tables, key-major: table 0's bags, then table 1's, ...), and either `lengths` (ids per bag, T * B
entries: B bags per table, the KJT's stride) or `offsets` (T * B + 1 entries, offsets[0] = 0,
offsets[-1] = len(values)); optional `weights` (per_sample_weights, one per value).

`validate_keyed` checks the whole request in one pass (dtypes, shapes, lengths / offsets, every
id against its own table's row count in one compiled loop) and raises InvalidInputError naming the
table and position before anything changes; `split_keyed` then cuts it into one validated BagBatch
per table (views of `values`, no copies). Each table pools with its own options (mode,
padding_idx); bags are the request's, so a table's include_last_offset plays no part.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numba
import numpy as np
import torch

from sdm.core.checks import bag_offsets, ids_in_range
from sdm.core.errors import InvalidInputError
from sdm.runtime.pooling import BagBatch, as_index_tensor


@numba.njit(cache=True, nogil=True)
def _first_out_of_range(values, starts, num_rows):
    """Position of the first id outside [0, num_rows[k]) of its table's segment
    values[starts[k]:starts[k + 1]], else -1."""
    for k in range(num_rows.shape[0]):
        hi = num_rows[k]
        for i in range(starts[k], starts[k + 1]):
            x = values[i]
            if x < 0 or x >= hi:
                return i
    return -1


@dataclass
class KeyedRequest:
    """A validated table-batched request: int64 values, int64 offsets [T * B + 1], B bags a table."""

    keys: list[str]
    values: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor | None
    bags_per_key: int


def validate_keyed(keys: Sequence[str], num_rows: Sequence[int], values, lengths=None, offsets=None,
                   weights=None) -> KeyedRequest:
    """Check a KeyedJaggedTensor-layout request (see module doc) in one pass."""
    keys = list(keys)
    t = len(keys)
    if not t:
        raise InvalidInputError("a batched lookup needs at least one key (table)")
    if len(set(keys)) != t:
        raise InvalidInputError(f"duplicate keys in a batched lookup: {sorted({k for k in keys if keys.count(k) > 1})}")
    vals = as_index_tensor(values, "values", "batched lookup")
    if vals.dim() != 1:
        raise InvalidInputError(f"batched lookup: values must be 1-D, got shape {tuple(vals.shape)}")
    vals = vals.to(torch.int64).contiguous()
    n = vals.numel()
    if (lengths is None) == (offsets is None):
        raise InvalidInputError("batched lookup: give exactly one of lengths and offsets")
    if lengths is not None:
        ln = as_index_tensor(lengths, "lengths", "batched lookup").reshape(-1).to(torch.int64)
        if ln.numel() and int(ln.min()) < 0:
            p = int(torch.nonzero(ln < 0)[0, 0])
            raise InvalidInputError(f"batched lookup: lengths[{p}] = {int(ln[p])} is negative")
        off = torch.zeros(ln.numel() + 1, dtype=torch.int64)
        torch.cumsum(ln, 0, out=off[1:])
        what = "lengths"
    else:
        off = as_index_tensor(offsets, "offsets", "batched lookup").reshape(-1).to(torch.int64).contiguous()
        if off.numel() == 0:
            raise InvalidInputError("batched lookup: offsets need at least one entry (0)")
        bag_offsets(off.numpy(), n, "batched lookup", exact_end=True)
        what = "offsets"
    bags = off.numel() - 1
    if bags % t:
        raise InvalidInputError(f"batched lookup: {bags} bags ({what}) is not a multiple of the {t} keys")
    if int(off[-1]) != n:
        raise InvalidInputError(f"batched lookup: {what} cover {int(off[-1])} values, but values has {n}")
    b = bags // t
    starts = off[:: b].contiguous() if b else torch.zeros(t + 1, dtype=torch.int64)
    bad = _first_out_of_range(vals.numpy(), starts.numpy(), np.asarray(num_rows, np.int64))
    if bad >= 0:
        k = int(np.searchsorted(starts.numpy(), bad, side="right")) - 1
        seg = vals.numpy()[int(starts[k]): int(starts[k + 1])]
        ids_in_range(seg, int(num_rows[k]), f"batched lookup, key {keys[k]!r}")   # raises, naming the position
    w = None
    if weights is not None:
        w = weights if isinstance(weights, torch.Tensor) else torch.as_tensor(np.asarray(weights))
        if w.device.type != "cpu" or w.dtype != torch.float32 or tuple(w.shape) != (n,):
            raise InvalidInputError(f"batched lookup: weights must be a float32 CPU tensor of shape ({n},), "
                                    f"got {w.dtype} {tuple(w.shape)} on {w.device}")
        w = w.contiguous()
    return KeyedRequest(keys, vals, off, w, b)


def split_keyed(req: KeyedRequest, options) -> list[BagBatch]:
    """One BagBatch per key (views of the request's values; offsets rebased to each table's start).
    `options[k]`: the BagOptions of table k (its mode and padding_idx)."""
    b = req.bags_per_key
    t = len(req.keys)
    off = req.offsets
    bounds = off[:: b] if b else off.new_zeros(t + 1)    # each table's first value, and the end
    sizes = (bounds[1:] - bounds[:-1]).tolist()
    # views made in C (split / unbind): per-table Python slicing costs microseconds a table
    values = req.values.split(sizes)
    weights = req.weights.split(sizes) if req.weights is not None else [None] * t
    # every table's offsets rebased to its own first value in one op
    local = (off[:-1].view(t, b) - bounds[:-1, None]).unbind(0) if b else off.new_zeros((t, 0)).unbind(0)
    out = []
    for k, o in enumerate(options):
        if weights[k] is not None and o.mode != "sum":
            raise InvalidInputError(f"table {req.keys[k]!r}: per_sample_weights need mode 'sum', got {o.mode!r}")
        out.append(BagBatch(values[k], local[k], weights[k], o.mode, False, o.padding_idx))
    return out


def lookup_keyed(tables, stats, names, values, lengths=None, offsets=None, weights=None,
                 segments=None) -> list[torch.Tensor]:
    """Pooled [B, dim] float32 per segment: one validation pass for the whole request, then each
    table's lookup path on its slice. `tables`: name -> StoreTable; `stats`: the StoreStats;
    `names`: the table of each segment (a table may serve several, as TorchRec features);
    `segments`: the segments' own names (default: `names`; must be distinct)."""
    t0 = time.perf_counter()
    names = list(names)
    try:
        chosen = [tables[k] for k in names]
    except (KeyError, TypeError):
        unknown = [k for k in names if not isinstance(k, str) or k not in tables]
        raise InvalidInputError(f"batched lookup: unknown tables {unknown[:10]}") from None
    keys = names if segments is None else list(segments)
    if len(keys) != len(names):
        raise InvalidInputError(f"batched lookup: {len(keys)} segment names for {len(names)} tables")
    req = validate_keyed(keys, [t.spec.num_rows for t in chosen], values, lengths, offsets, weights)
    batches = split_keyed(req, [t.opts for t in chosen])
    share = (time.perf_counter() - t0) / len(chosen)    # validation time, split evenly over the tables
    out, done = [], []
    try:
        for name, t, batch in zip(names, chosen, batches):
            t1 = time.perf_counter()
            pooled, rec = t.lookup(batch)
            out.append(pooled)
            done.append((name, rec, batch.indices.numel(), time.perf_counter() - t1 + share))
    finally:   # the tables that ran are counted even when a later one raises, in one pass
        stats.record_many(done)
    return out
