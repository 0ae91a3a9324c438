"""Route lookups to shards: for each id of a table, which shard holds it and its row within the shard.

Built once per partition; routing a batch is a searchsorted (range shards) or two gathers (explicit row
sets from a plan), never a Python loop over ids.
"""
from __future__ import annotations

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.accel.partitioner import Partition


class TableRouter:
    """Maps a table's row ids to (shard position within the table, local row id in that shard)."""

    def __init__(self, num_rows: int, shards: list) -> None:
        self.num_rows = int(num_rows)
        self.num_shards = len(shards)
        self._bounds: np.ndarray | None = None
        self._owner: np.ndarray | None = None
        self._local: np.ndarray | None = None
        if self.num_shards == 1 and shards[0].rows is None and shards[0].row_start == 0 \
                and shards[0].row_end == num_rows:
            return  # whole table in one place: identity routing
        if all(s.rows is None for s in shards):
            order = sorted(range(len(shards)), key=lambda i: shards[i].row_start)
            starts = np.array([shards[i].row_start for i in order], dtype=np.int64)
            ends = np.array([shards[i].row_end for i in order], dtype=np.int64)
            if starts[0] != 0 or ends[-1] != num_rows or np.any(starts[1:] != ends[:-1]):
                raise InvalidInputError(f"table {shards[0].table!r}: shard ranges do not tile rows 0..{num_rows}")
            self._bounds = starts
            self._order = np.array(order, dtype=np.int64)
            return
        owner = np.full(num_rows, -1, dtype=np.int32)
        local = np.zeros(num_rows, dtype=np.int64)
        for i, s in enumerate(shards):  # per shard, vectorized within
            rows = s.rows if s.rows is not None else np.arange(s.row_start, s.row_end, dtype=np.int64)
            if np.any(owner[rows] >= 0):
                raise InvalidInputError(f"table {s.table!r}: a row is placed in two shards")
            owner[rows] = i
            local[rows] = np.arange(rows.size, dtype=np.int64)
        if np.any(owner < 0):
            raise InvalidInputError(f"table {shards[0].table!r}: row {int(np.argmin(owner))} is in no shard")
        self._owner, self._local = owner, local

    def route(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard position per id, local row per id). `ids` must already be validated (0 <= id < rows)."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._owner is not None:
            return self._owner[ids].astype(np.int64), self._local[ids]
        if self._bounds is None:
            return np.zeros(ids.size, dtype=np.int64), ids
        pos = np.searchsorted(self._bounds, ids, side="right") - 1
        return self._order[pos], ids - self._bounds[pos]


class Router:
    """One TableRouter per table of a partition, plus the global shard index of each (table, position)."""

    def __init__(self, partition: Partition) -> None:
        self.partition = partition
        self.tables: list[TableRouter] = []
        self.shard_ids: list[np.ndarray] = []   # per table: global shard index of each local position
        index = {id(s): i for i, s in enumerate(partition.shards)}
        for t in partition.tables:
            shards = partition.shards_of(t.name)
            if not shards:
                raise InvalidInputError(f"table {t.name!r} has no shard in the partition")
            self.tables.append(TableRouter(t.num_rows, shards))
            self.shard_ids.append(np.array([index[id(s)] for s in shards], dtype=np.int64))

    def shard_counts(self, t: int, ids: np.ndarray, group: np.ndarray | None = None,
                     num_groups: int = 1) -> np.ndarray:
        """Lookups per (group, global shard) for table t's ids; groups are e.g. requests. [G, S]."""
        S = len(self.partition.shards)
        pos, _ = self.tables[t].route(ids)
        gid = self.shard_ids[t][pos]
        g = np.zeros(ids.size, dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
        return np.bincount(g * S + gid, minlength=num_groups * S).reshape(num_groups, S)


def trace_shard_counts(partition: Partition, trace, max_batches: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lookups per (request, shard) over a trace, and samples per request. One request = one batch.

    Vectorized per table: the request of every lookup comes from its sample index (np.repeat of the
    bag lengths), then one bincount.
    """
    names = [t.name for t in partition.tables]
    if list(trace.table_names) != names:
        missing = sorted(set(names) - set(trace.table_names))
        extra = sorted(set(trace.table_names) - set(names))
        raise InvalidInputError(f"trace tables do not match the model: missing {missing}, extra {extra}"
                                if missing or extra else "trace tables are in a different order than the model's")
    router = Router(partition)
    B = int(trace.batch_size)
    n_samples = int(trace.num_samples)
    R = -(-n_samples // B)
    if max_batches is not None:
        R = min(R, int(max_batches))
    counts = np.zeros((R, len(partition.shards)), dtype=np.int64)
    for t in range(len(names)):
        off = np.asarray(trace.offsets[t], dtype=np.int64)
        end = int(off[min(R * B, n_samples)])
        ids = np.asarray(trace.indices[t][:end], dtype=np.int64)
        sample = np.repeat(np.arange(min(R * B, n_samples)), np.diff(off[: min(R * B, n_samples) + 1]))
        counts += router.shard_counts(t, ids, sample // B, R)
    sizes = np.full(R, B, dtype=np.int64)
    if R * B > n_samples:
        sizes[-1] = n_samples - (R - 1) * B
    return counts, sizes
