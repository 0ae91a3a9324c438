"""Page layout: put rows that are read together into the same SCM page (in the spirit of Bandana).

An SCM read fetches a whole page (4 KiB NAND page, 512 B 3DXP sector). With rows stored in id
order, the rows of one request are scattered, so each page read brings one useful row and
`page_bytes / row_bytes - 1` useless ones. Read amplification = bytes read / bytes used.

Bandana partitions the co-access hypergraph (SHP). Here the same goal is reached with:
1. co-access pairs counted with numpy (rows within a window of each other in a bag);
2. a capped Kruskal merge (numba, inherently sequential): pairs heaviest first join clusters that
   never exceed one page of rows, so each cluster fits a page;
3. clusters laid out in first-touch order (rows first read together stay near each other).
Rows never read in training keep id order after the read rows. The layout is kept only if it
lowers read amplification on the training trace (else first-touch or id order is used).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from sdm.core.errors import InvalidInputError
from sdm.core.checks import integer_array
from sdm.traces.trace import check_bags


@dataclass(frozen=True)
class LayoutResult:
    row_order: np.ndarray            # row_order[slot] = row id stored in that slot
    rows_per_page: int
    read_amplification: float        # on the training trace
    id_order_read_amplification: float
    method: str                      # which candidate won: "co-access", "first-touch", "id-order"


def bag_ids(offsets: np.ndarray) -> np.ndarray:
    offsets = np.asarray(offsets, dtype=np.int64)
    return np.repeat(np.arange(offsets.size - 1, dtype=np.int64), np.diff(offsets))


def read_bytes(ids: np.ndarray, offsets: np.ndarray, slot_of: np.ndarray | None, rows_per_page: int,
               row_bytes: int, page_bytes: int) -> tuple[int, int]:
    """(bytes read, bytes used) when every bag reads its distinct pages once, nothing cached.

    `slot_of[row]` is the slot a row is stored in (None: id order).
    """
    ids = integer_array(ids, "read_bytes: row ids")
    if ids.size == 0:
        return 0, 0
    bag = bag_ids(offsets)
    slots = ids if slot_of is None else slot_of[ids]
    pages = slots // rows_per_page
    n_pages = int(pages.max()) + 1
    n_rows = int(ids.max()) + 1
    distinct_pages = np.unique(bag * n_pages + pages).size
    distinct_rows = np.unique(bag * n_rows + ids).size
    return distinct_pages * page_bytes, distinct_rows * row_bytes


def pages_per_read(ids, offsets, slot_of, rows_per_page) -> float:
    """Distinct pages per distinct row read, per bag: the factor the latency model applies."""
    b_read, b_used = read_bytes(ids, offsets, slot_of, rows_per_page, 1, 1)
    return b_read / b_used if b_used else 1.0


def _order_to_slots(order: np.ndarray) -> np.ndarray:
    slots = np.empty(order.size, dtype=np.int64)
    slots[order] = np.arange(order.size, dtype=np.int64)
    return slots


def co_access_pairs(ids: np.ndarray, offsets: np.ndarray, num_rows: int, window: int = 32
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row a, row b, times read together) for rows within `window` places of each other in a bag.

    One numpy pass per distance d = 1..window; pairs are normalised (a < b) and summed with unique.
    """
    bag = bag_ids(offsets)
    keys = []
    for d in range(1, window + 1):
        if d >= ids.size:
            break
        same = bag[d:] == bag[:-d]
        if not same.any():
            break
        a, b = ids[:-d][same], ids[d:][same]
        ne = a != b
        a, b = a[ne], b[ne]
        keys.append(np.minimum(a, b) * num_rows + np.maximum(a, b))
    if not keys:
        z = np.zeros(0, np.int64)
        return z, z, z
    k, w = np.unique(np.concatenate(keys), return_counts=True)
    return k // num_rows, k % num_rows, w


@njit(cache=True)
def _merge_capped(a, b, order, n, cap):  # pragma: no cover - compiled
    """Kruskal on co-access pairs, heaviest first, never growing a cluster past `cap` rows."""
    parent = np.arange(n)
    size = np.ones(n, np.int64)
    for e in order:
        x = a[e]
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        y = b[e]
        while parent[y] != y:
            parent[y] = parent[parent[y]]
            y = parent[y]
        if x != y and size[x] + size[y] <= cap:
            if size[x] < size[y]:
                x, y = y, x
            parent[y] = x
            size[x] += size[y]
    for i in range(n):
        r = i
        while parent[r] != r:
            r = parent[r]
        parent[i] = r
    return parent


@njit(cache=True)
def _pack_pages(cluster_size, cap):  # pragma: no cover - compiled
    """Best-fit of clusters (in the order given) into pages of `cap` rows. Returns page per cluster
    and the free slots left in each page (filled later with rows never read)."""
    n = cluster_size.size
    page_of = np.empty(n, np.int64)
    free = np.empty(n, np.int64)
    # pages with f free slots, as a stack per f
    stacks = np.empty((cap + 1, n), np.int64)
    top = np.zeros(cap + 1, np.int64)
    n_pages = 0
    for c in range(n):
        s = cluster_size[c]
        p = -1
        for f in range(s, cap + 1):
            if top[f] > 0:
                top[f] -= 1
                p = stacks[f, top[f]]
                break
        if p < 0:
            p = n_pages
            n_pages += 1
            free[p] = cap
        page_of[c] = p
        free[p] -= s
        f = free[p]
        if f > 0:
            stacks[f, top[f]] = p
            top[f] += 1
    return page_of, free[:n_pages]


def _page_aligned(root: np.ndarray, rank: np.ndarray, rpp: int, uniq: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """Row order with each cluster inside one page; free slots take rows never read."""
    n = root.size
    roots, cl_of, size = np.unique(root, return_inverse=True, return_counts=True)
    cl_first = np.full(roots.size, n, np.int64)
    np.minimum.at(cl_first, cl_of, rank)
    cl_order = np.lexsort((cl_first, -size))                    # biggest first (best fit), then oldest
    page_sorted, free = _pack_pages(size[cl_order].astype(np.int64), rpp)
    page_of_cl = np.empty(roots.size, np.int64)
    page_of_cl[cl_order] = page_sorted
    if free.sum() > tail.size:
        return np.zeros(0, np.int64)                           # no filler rows: cannot align pages
    # slots: rows of page p first (by cluster, then first touch), then filler rows
    pg = page_of_cl[cl_of]
    lay = np.lexsort((rank, cl_of, pg))
    page_first = np.full(free.size, n, np.int64)
    np.minimum.at(page_first, pg, rank)
    page_rank = np.empty(free.size, np.int64)
    page_rank[np.argsort(page_first, kind="stable")] = np.arange(free.size)
    # key for every read row and every filler row: (page rank, 0|1, position)
    fill_page = np.repeat(np.arange(free.size), free)
    keys_page = np.concatenate([page_rank[pg[lay]], page_rank[fill_page]])
    keys_kind = np.concatenate([np.zeros(n, np.int64), np.ones(fill_page.size, np.int64)])
    rows = np.concatenate([uniq[lay], tail[:fill_page.size]])
    order = np.lexsort((keys_kind, keys_page))
    return np.concatenate([rows[order], tail[fill_page.size:]])


def co_access_layout(ids: np.ndarray, offsets: np.ndarray, num_rows: int, row_bytes: int,
                     page_bytes: int = 4096, window: int = 32, table: str = "table") -> LayoutResult:
    """Row order for one table from a training trace (ids in time order, bag offsets).

    Candidates: id order, first-touch order, and co-access clusters (pairs read together merged
    heaviest first into page-sized clusters, clusters laid out in first-touch order). The one with
    the lowest read amplification on the training trace wins.
    """
    ids, offsets = check_bags(table, ids, offsets, num_rows)
    if row_bytes <= 0 or page_bytes <= 0:
        raise InvalidInputError(f"table {table!r}: row_bytes and page_bytes must be > 0")
    rpp = max(1, page_bytes // row_bytes)
    page_b = rpp * row_bytes if row_bytes <= page_bytes else -(-row_bytes // page_bytes) * page_bytes

    def amp(slot_of):
        r, u = read_bytes(ids, offsets, slot_of, rpp, row_bytes, page_b)
        return r / u if u else 1.0

    base = amp(None)
    if ids.size == 0 or rpp == 1:
        return LayoutResult(np.arange(num_rows, dtype=np.int64), rpp, base, base, "id-order")

    # work on the touched rows only (dense local ids), untouched rows follow in id order
    uniq, first, local = np.unique(ids, return_index=True, return_inverse=True)
    local = local.astype(np.int64)
    tail_mask = np.ones(num_rows, bool)
    tail_mask[uniq] = False
    tail = np.flatnonzero(tail_mask)
    first_touch = np.argsort(first, kind="stable")              # local ids in first-touch order

    candidates = {"first-touch": np.concatenate([uniq[first_touch], tail])}
    a, b, w = co_access_pairs(local, offsets, uniq.size, window)
    if a.size:
        order_e = np.argsort(-w, kind="stable")
        root = _merge_capped(a, b, order_e, uniq.size, rpp)
        # clusters laid out by the first touch of their earliest member; members by first touch
        rank = np.empty(uniq.size, np.int64)
        rank[first_touch] = np.arange(uniq.size)
        aligned = _page_aligned(root, rank, rpp, uniq, tail)
        if aligned.size:
            candidates["co-access"] = aligned
        else:
            cluster_first = np.full(uniq.size, uniq.size, np.int64)
            np.minimum.at(cluster_first, root, rank)
            lay = np.lexsort((rank, cluster_first[root]))
            candidates["co-access"] = np.concatenate([uniq[lay], tail])
    best_name, best_order, best = "id-order", np.arange(num_rows, dtype=np.int64), base
    for name, order in candidates.items():
        v = amp(_order_to_slots(order))
        if v < best:
            best_name, best_order, best = name, order, v
    return LayoutResult(best_order, rpp, best, base, best_name)
