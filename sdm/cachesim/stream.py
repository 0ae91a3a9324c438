"""An access stream prepared once for replay: ids remapped to dense 0..U-1, next/previous use.

Every policy kernel keeps per-id state in arrays indexed by the dense id, so state is O(unique ids)
rather than O(largest id). One prepared stream serves every policy and capacity of a run; the
derived arrays (next use, stack distances, counts) are computed on first use and kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sdm.core.errors import InvalidInputError


def as_id_array(ids, what: str = "ids") -> np.ndarray:
    """`ids` as a 1-D int64 array of non-negative ids, or InvalidInputError naming the position."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise InvalidInputError(f"{what}: expected a 1-D array of ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"{what}: expected integer ids, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        pos = int(np.argmax(arr > np.iinfo(np.int64).max))
        raise InvalidInputError(f"{what}: id {arr[pos]} at position {pos} is beyond int64")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        bad = np.flatnonzero(arr < 0)
        if bad.size:
            raise InvalidInputError(f"{what}: negative id {arr[bad[0]]} at position {bad[0]}")
    return arr


def dense_remap(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dense, keys): dense[i] in 0..U-1 with keys[dense[i]] == ids[i]; keys ascending.

    When ids are bounded by a small multiple of the stream length a presence table is O(n) and
    several times faster than the sort inside np.unique; otherwise sort.
    """
    if ids.size == 0:
        return ids.astype(np.int64), ids.astype(np.int64)
    top = int(ids.max())
    if top < 4 * ids.size + 4096:
        present = np.zeros(top + 1, dtype=bool)
        present[ids] = True
        keys = np.flatnonzero(present)
        rank_dtype = np.int32 if keys.size < 2**31 else np.int64  # half the table, half the cache misses
        rank = np.empty(top + 1, dtype=rank_dtype)
        rank[keys] = np.arange(keys.size, dtype=rank_dtype)
        return rank[ids].astype(np.int64), keys
    keys, dense = np.unique(ids, return_inverse=True)
    return dense.astype(np.int64, copy=False).reshape(-1), keys


def group_order(dense: np.ndarray, num_ids: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(order, sorted_ids): a stable argsort of `dense` (each id's accesses together, in time
    order) and dense[order].

    Sorting the values of the unique key id * n + t (numpy's vectorized sort) and splitting the
    key again is several times faster here than a stable argsort of the ids; fall back to the
    latter if the key could overflow.
    """
    n = dense.size
    top = (int(dense.max()) + 1 if n else 0) if num_ids is None else int(num_ids)
    if n and top * n < 2**62:
        key = dense * n + np.arange(n, dtype=np.int64)
        key.sort()
        sorted_ids = key // n
        return key - sorted_ids * n, sorted_ids
    order = np.argsort(dense, kind="stable")
    return order, dense[order]


def next_use(dense: np.ndarray, grouped: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """next_use[t] = the next time the id at t is read again, or len(dense) if never.

    Vectorized reverse scan: once each id's accesses sit together in time order (`group_order`),
    the next use of an access is its right-hand neighbour when that neighbour has the same id.
    """
    n = dense.size
    out = np.full(n, n, dtype=np.int64)
    if n < 2:
        return out
    order, sorted_ids = group_order(dense) if grouped is None else grouped
    same = sorted_ids[1:] == sorted_ids[:-1]
    out[order[:-1]] = np.where(same, order[1:], n)
    return out


@dataclass
class DenseStream:
    """A replay stream. `unit` is "row" (cache holds rows) or "page" (cache holds pages).

    ids      dense unit id per access (int64, 0..num_ids-1), in time order
    keys     original id of each dense unit id (row id, or page id in page mode)
    rows     dense row id per access (page mode only: which row of the page was used)
    """

    ids: np.ndarray
    keys: np.ndarray
    unit: str = "row"
    rows: np.ndarray | None = None
    page_of: np.ndarray | None = None  # original row id -> page id (page mode)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def num_lookups(self) -> int:
        return int(self.ids.size)

    @property
    def num_ids(self) -> int:
        return int(self.keys.size)

    def next_use(self) -> np.ndarray:
        if "next_use" not in self._cache:
            # the sort order behind it (16 B per lookup) is dropped once next use is known
            self._cache["next_use"] = next_use(self.ids, group_order(self.ids, self.num_ids))
        return self._cache["next_use"]

    def counts(self) -> np.ndarray:
        """Accesses per dense id."""
        if "counts" not in self._cache:
            self._cache["counts"] = np.bincount(self.ids, minlength=self.num_ids).astype(np.int64)
        return self._cache["counts"]

    def stack_distances(self) -> np.ndarray:
        """LRU stack distance of every access (see lru.stack_distances)."""
        if "stack" not in self._cache:
            from sdm.cache.lru import stack_distances

            self._cache["stack"] = stack_distances(self.ids, self.num_ids)
        return self._cache["stack"]


def prepare(ids, *, page_of=None) -> DenseStream:
    """Validate and remap `ids` once. With `page_of` (row -> page id) the cache unit is the page."""
    rows = as_id_array(ids, "ids")
    if page_of is None:
        dense, keys = dense_remap(rows)
        return DenseStream(ids=dense, keys=keys)
    page_of = as_id_array(page_of, "page_of")
    if rows.size:
        beyond = np.flatnonzero(rows >= page_of.size)
        if beyond.size:
            raise InvalidInputError(
                f"ids: id {rows[beyond[0]]} at position {beyond[0]} has no page: page_of covers "
                f"rows 0..{page_of.size - 1}"
            )
    pages = page_of[rows]
    dense_pages, page_keys = dense_remap(pages)
    dense_rows, _ = dense_remap(rows)
    return DenseStream(ids=dense_pages, keys=page_keys, unit="page", rows=dense_rows, page_of=page_of)


def layout_page(rows, num_rows, rows_per_page: int, row_orders=None) -> np.ndarray:
    """Page of each global row id (table t's rows start at sum(num_rows[:t])), `rows_per_page` rows
    a page, no page shared between tables. `row_orders[t]` (row_order[slot] = row stored in that
    slot, as a plan's page layout) places table t's rows; None, or a None entry, is id order."""
    if int(rows_per_page) < 1:
        raise InvalidInputError(f"rows_per_page must be >= 1, got {rows_per_page}")
    rpp = int(rows_per_page)
    rows = as_id_array(rows, "rows")
    num_rows = np.asarray(num_rows, dtype=np.int64)
    total = int(num_rows.sum())
    if rows.size and rows.max() >= total:
        bad = int(np.argmax(rows >= total))
        raise InvalidInputError(f"rows: id {rows[bad]} at position {bad} is beyond the {total} rows of the tables")
    base = np.concatenate([[0], np.cumsum(num_rows)[:-1]])
    page_base = np.concatenate([[0], np.cumsum(-(-num_rows // rpp))[:-1]])
    t = np.searchsorted(base, rows, side="right") - 1
    slot = rows - base[t]
    for k, order in enumerate(row_orders or []):
        if order is None:
            continue
        order = as_id_array(order, f"row order of table {k}")
        if order.size != num_rows[k] or not np.array_equal(np.sort(order), np.arange(num_rows[k])):
            raise InvalidInputError(f"row order of table {k}: not a permutation of its {num_rows[k]} rows")
        slot_of = np.empty(order.size, dtype=np.int64)
        slot_of[order] = np.arange(order.size, dtype=np.int64)
        mine = t == k
        slot[mine] = slot_of[slot[mine]]
    return page_base[t] + slot // rpp


def layout_pages(ids, num_rows, rows_per_page: int, row_orders=None) -> tuple[np.ndarray, np.ndarray]:
    """(dense row ids, page of each dense row) for the layout of `layout_page`. Only touched rows
    get an entry, so huge tables cost nothing; pass the result as `prepare(dense, page_of=pages)`."""
    dense, keys = dense_remap(as_id_array(ids, "ids"))
    return dense, layout_page(keys, num_rows, rows_per_page, row_orders)
