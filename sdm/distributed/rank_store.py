"""Each rank's own EmbeddingStore: its section of the host plan, in its own directory.

    store, reopened = open_rank_store(host_plan, rank, root, weights=model_rows)

`root/rank<r>/` holds rank r's store (store.json, DRAM-cache placement, SCM pages). A store whose
store.json exists is complete (the runtime writes it last), so a restarted rank reopens it at its
last commit; a directory without it is a build that died half way and is rebuilt. Weights are a
function of (table, start_row, stop_row) returning whole rows of the model's table; each shard
takes its columns, so a column slice holds exactly its share of the table's bytes.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.runtime.embedding_store import BagOptions, EmbeddingStore

__all__ = ["open_rank_store", "rank_dir", "model_rows", "shard_weights", "store_share"]

RowsFn = Callable[[str, int, int], np.ndarray]


def rank_dir(root, rank: int) -> Path:
    return Path(root) / f"rank{rank}"


def model_rows(table: str, start: int, stop: int, dim: int, num_rows: int) -> np.ndarray:
    """Seeded rows [stop-start, dim] of a generated model, the same whatever the row range asked
    for (a counter-based hash of (table, row, column)), scaled like nn.EmbeddingBag's init."""
    key = np.uint64(zlib.crc32(table.encode()))
    cells = np.arange(start, stop, dtype=np.uint64)[:, None] * np.uint64(dim) + np.arange(dim, dtype=np.uint64)
    with np.errstate(over="ignore"):        # splitmix64: wrap-around is the point
        x = cells + key * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    unit = (x >> np.uint64(40)).astype(np.float64) / float(1 << 24)       # [0, 1)
    bound = np.sqrt(1.0 / num_rows)
    return ((unit * 2.0 - 1.0) * bound).astype(np.float32)


def shard_weights(section, rows: RowsFn):
    """The `weights` callable EmbeddingStore.create takes, for the shards of one host section."""
    by_name = {s.name: s for s in section.shards}

    def weights(name: str, start: int, stop: int) -> np.ndarray:
        s = by_name[name]
        full = np.asarray(rows(s.table, start, stop))
        if full.shape != (stop - start, s.table_dim):
            raise InvalidInputError(f"weights for table {s.table!r} rows {start}:{stop} have shape {full.shape}, "
                                    f"want {(stop - start, s.table_dim)}")
        return full[:, s.col_start:s.col_stop]

    return weights


def open_rank_store(host_plan, rank: int, root, *, weights: RowsFn | None = None, pooling: str = "sum",
                    hardware=None, **store_kw) -> tuple[EmbeddingStore, bool]:
    """(store, reopened): rank `rank`'s store under `root`, reopened when complete, else built from
    its host-plan section (its Plan, if the section has one) with rows from `weights` (default: the
    generated `model_rows`)."""
    sec = host_plan.section(rank)
    path = rank_dir(root, rank)
    want = {s.name: (s.num_rows, s.dim) for s in sec.shards}
    if (path / "store.json").is_file():
        store = EmbeddingStore.open(path, hardware=hardware, **{k: v for k, v in store_kw.items() if k in _OPEN_KW})
        have = {n: (store.spec(n).num_rows, store.spec(n).dim) for n in store.tables}
        if have != want:
            store.close()
            raise InvalidInputError(f"{path} holds shards {sorted(have)[:5]} but the host plan gives rank {rank} "
                                    f"{sorted(want)[:5]}; remove {path} to rebuild it from the plan")
        return store, True
    if weights is None:
        tables = host_plan.tables
        weights = lambda t, a, b: model_rows(t, a, b, int(tables[t]["dim"]), int(tables[t]["num_rows"]))  # noqa: E731
    options = {s.name: BagOptions(mode=pooling) for s in sec.shards}
    store = EmbeddingStore.create(path, sec.specs(), hardware=hardware or sec.hardware, weights=shard_weights(sec, weights),
                                  plan=sec.plan, options=options, overwrite=True, **store_kw)
    return store, False


_OPEN_KW = ("dram_cache_bytes", "policy", "queue_depth", "inject", "cache_layout", "admission", "page_admit")


def store_share(store) -> dict:
    """What this rank's store holds: tables, row bytes (as planned) and bytes on disk (with page padding)."""
    info = [store.scm.table_info(n) for n in store.tables]
    return {"tables": list(store.tables), "row_bytes": int(sum(i.num_rows * i.row_bytes for i in info)),
            "disk_bytes": int(sum(f.stat().st_size for f in Path(store.path).rglob("*") if f.is_file())),
            "scm_bytes": int(sum(i.live_stored_bytes for i in info)), "version": int(store.scm.version)}
