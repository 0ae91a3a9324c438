"""The store lookup as a registered torch operator (`torch.ops.sdm.lookup`), so that torch.compile
and torch.export see one opaque op with a known output shape instead of tracing into numpy,
numba and the page store (which they cannot).

    torch.ops.sdm.lookup(store_handle, table, dim, include_last_offset, indices, offsets, per_sample_weights)

A store is named by a handle (`handle_of(store)`), an int the graph can hold as a constant; the
handle table keeps weak references, so a graph does not keep a closed store alive. The fake
(meta) implementation gives the output's shape: [bags, dim] float32, bags from the offsets (or
the rows of 2-D indices). Graphs hold the handle of this process's store: an exported program is
for running here, not for saving to another process.
"""
from __future__ import annotations

import itertools
import threading
import weakref

import torch

from sdm.core.errors import InvalidInputError

_handles: dict[int, weakref.ref] = {}
_by_store: "weakref.WeakKeyDictionary[object, int]" = weakref.WeakKeyDictionary()
_next = itertools.count(1)
_lock = threading.Lock()


def handle_of(store) -> int:
    """The int naming `store` in torch.ops.sdm.lookup calls (the same one every time)."""
    with _lock:
        h = _by_store.get(store)
        if h is None:
            h = next(_next)
            _by_store[store] = h
            _handles[h] = weakref.ref(store)
        return h


def _store(handle: int):
    ref = _handles.get(int(handle))
    store = ref() if ref is not None else None
    if store is None:
        raise InvalidInputError(f"sdm store handle {handle} names no open store in this process")
    return store


@torch.library.custom_op("sdm::lookup", mutates_args=())
def lookup(store: int, table: str, dim: int, include_last_offset: bool, indices: torch.Tensor,
           offsets: torch.Tensor | None, per_sample_weights: torch.Tensor | None) -> torch.Tensor:
    """Pooled rows [bags, dim] float32 of `table`, as the table's nn.EmbeddingBag gives them."""
    return _store(store).lookup(table, indices, offsets, per_sample_weights)


@lookup.register_fake
def _(store, table, dim, include_last_offset, indices, offsets, per_sample_weights):
    if indices.dim() == 2:
        bags = indices.shape[0]
    else:
        bags = offsets.shape[0] - (1 if include_last_offset else 0)
    return indices.new_empty((bags, dim), dtype=torch.float32)
