"""Row updates of a serving EmbeddingStore: validate, commit to SCM, then bring every faster tier along.

    version = apply_update(store, "t0", ids, rows)   # EmbeddingStore.update wires here

An update is checked like a lookup before anything changes (ids: integers, in range, distinct; rows:
[n, dim] floating, encodable in the table's row format: `row_formats.encode` refuses what it cannot
store). It then commits through `PageStore.update_rows` (shadow pages, one LMDB transaction: a crash
leaves the old or the new version, see sdm/tiers/page_writes.py) and, under the table's cache lock,
writes the new stored rows into
- the DRAM cache, for the ids it holds (in place: a reader pools under the same lock, so it sees a
  whole old or a whole new row),
- the prefetch staging buffer (replaced whole, as the lookup path expects: readers hold either pair),
- the card and pinned-DRAM tiers, copy-on-write: readers gather outside any lock, so a new tensor is
  built and swapped in by one attribute store; a reader holds the old tensor or the new, never half.
A reader therefore sees each row old or new, never torn. Between the SCM commit and the tier update
(microseconds) a reader can still get the old row from a faster tier.

A lookup that read a row from SCM before the commit and inserts it into the cache after the tier
update would leave the old row cached. `read_token` / `stale_mask` close that window: the lookup
takes a token before its SCM read and, under the cache lock before inserting, drops the rows
`stale_mask` flags (updated since the token): it still returns them (it began before the commit) but
neither caches nor stages them. Wired in store_table `_lookup_general`, `prefetch` and page_mates `admit_mates`
(page mates); tests/test_live_stale_race.py forces the race.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from sdm.core.errors import InvalidInputError
from sdm.runtime import row_formats

RECENT_BATCHES = 64  # updates remembered for stale_mask; a token older than these marks all stale


@dataclass(eq=False)
class LiveState:
    """Per table: the update epoch and the ids of the recent updates (for `stale_mask`)."""

    epoch: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_BATCHES))  # (epoch, sorted ids)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one update of a table at a time


_STATES_LOCK = threading.Lock()


def live_state(table) -> LiveState:
    """The LiveState of a StoreTable (made on first use)."""
    st = getattr(table, "_live", None)
    if st is None:
        with _STATES_LOCK:
            st = getattr(table, "_live", None)
            if st is None:
                st = table._live = LiveState()
    return st


def read_token(table) -> int:
    """Taken by a lookup before it reads SCM rows it may insert into the cache."""
    return live_state(table).epoch


def stale_mask(table, token: int, ids: np.ndarray) -> np.ndarray:
    """Mask of `ids` updated since `token` (call under the cache lock, before inserting them)."""
    st = live_state(table)
    if st.epoch == token:
        return np.zeros(len(ids), np.bool_)
    recent = list(st.recent)
    if not recent or recent[0][0] > token + 1:  # older than what is remembered: assume all changed
        return np.ones(len(ids), np.bool_)
    out = np.zeros(len(ids), np.bool_)
    for epoch, upd in recent:
        if epoch > token:
            out |= np.isin(ids, upd, assume_unique=False)
    return out


def check_update(table, ids, rows) -> tuple[np.ndarray, np.ndarray]:
    """(ids as int64, rows encoded to the stored format), or InvalidInputError; nothing changed."""
    name = table.spec.name
    ids = table.check_ids(ids, "update ids")
    srt = np.sort(ids)
    dup = np.flatnonzero(srt[1:] == srt[:-1])
    if len(dup):
        raise InvalidInputError(f"table {name!r}: update ids: row {int(srt[dup[0]])} appears more than once")
    if isinstance(rows, torch.Tensor):
        rows = rows.detach().cpu().numpy()
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape != (len(ids), table.spec.dim):
        raise InvalidInputError(f"table {name!r}: update rows have shape {rows.shape}, expected "
                                f"({len(ids)}, {table.spec.dim}) (one row of dim {table.spec.dim} per id)")
    stored = row_formats.encode(rows, table.spec.row_format, table=name)
    if table.spec.row_format == "fp32" and not np.isfinite(stored).all():
        bad = np.argwhere(~np.isfinite(stored))[0]
        raise InvalidInputError(f"table {name!r}: update rows: non-finite value at row {bad[0]}, column {bad[1]}")
    return ids, np.ascontiguousarray(stored)


def apply_update(store, name: str, ids, rows) -> int:
    """Overwrite rows `ids` of table `name` with `rows` (float [n, dim]); returns the new version."""
    table = store._table(name)
    ids, stored = check_update(table, ids, rows)
    if not len(ids):
        return store.scm.version
    st = live_state(table)
    with st.lock:
        table.scm.update_rows(name, ids, stored)  # the commit: durable, atomic, shadow-paged
        install_rows(table, ids, stored, st)
    return store.scm.version


def install_rows(table, ids: np.ndarray, stored: np.ndarray, st: LiveState) -> None:
    """New stored rows into the cache, staging buffer and static tiers (see the module doc)."""
    new = torch.from_numpy(stored)
    order = np.argsort(ids, kind="stable")
    with table.cache.lock:
        st.epoch += 1
        st.recent.append((st.epoch, ids[order]))
        cache = table.cache
        if cache.capacity_rows:
            slots = cache.probe(ids)
            hit = np.flatnonzero(slots >= 0)
            if len(hit):
                cache.data[torch.from_numpy(slots[hit])] = new[torch.from_numpy(hit)].to(cache.data.dtype)
        sid, srows = table._staged
        if len(sid):
            pos = np.minimum(np.searchsorted(ids[order], sid), len(ids) - 1)
            found = ids[order][pos] == sid
            if found.any():
                srows = srows.clone()
                srows[torch.from_numpy(np.flatnonzero(found))] = new[torch.from_numpy(order[pos[found]])]
                table._staged = (sid, srows)
        for static in (table.accel, table.pinned):
            if static is None:
                continue
            loc = static.locate(ids)
            got = np.flatnonzero(loc >= 0)
            if len(got):
                data = static.data.clone()
                data[torch.from_numpy(loc[got]).to(data.device)] = new[torch.from_numpy(got)].to(data.device)
                static.data = data  # one reference store: readers hold the old tensor or this one
