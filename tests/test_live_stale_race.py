"""The stale-cache race of updates.py: a lookup (or prefetch) that read rows from SCM before an
update's commit must not insert them into the cache after the update's tier pass."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sdm import EmbeddingStore, TableSpec

ROWS, DIM = 300, 4


@pytest.fixture
def store(tmp_path):
    spec = TableSpec("t", ROWS, DIM)
    st = EmbeddingStore.create(tmp_path / "s", [spec], weights={"t": np.zeros((ROWS, DIM), np.float32)},
                               dram_cache_bytes=100 * spec.row_bytes)
    yield st
    st.close()


def looked_up(st, ids):
    ids = torch.as_tensor(np.asarray(ids, np.int64))
    return st.lookup("t", ids, torch.arange(len(ids))).numpy()


def race_on_first_read(monkeypatch, st, upd_ids, value):
    """Make the table's next SCM read return its (old) rows, then commit an update of `upd_ids`
    before the reader gets to insert them: the window of the race, forced."""
    table = st._table("t")
    original = table.read_scm
    fired = []

    def read_then_update(ids, c, mates=None):
        out = original(ids, c, mates)
        if not fired:
            fired.append(True)
            st.update("t", upd_ids, np.full((len(upd_ids), DIM), value, np.float32))
        return out

    monkeypatch.setattr(table, "read_scm", read_then_update)
    return fired


def test_lookup_racing_an_update_does_not_cache_the_old_row(store, monkeypatch):
    fired = race_on_first_read(monkeypatch, store, [7, 8], 5.0)
    first = looked_up(store, [7, 9])
    assert fired
    assert (first[1] == 0).all()
    assert (first[0] == 0).all() or (first[0] == 5).all()   # began before the commit: old (never torn)
    monkeypatch.undo()
    # after the commit every later lookup sees the new rows, the looked-up one and its page mate 8
    assert (looked_up(store, [7, 8, 9]) == np.array([[5] * DIM, [5] * DIM, [0] * DIM])).all()


def test_prefetch_racing_an_update_does_not_cache_the_old_row(store, monkeypatch):
    table = store._table("t")
    fired = race_on_first_read(monkeypatch, store, [20, 21], 3.0)
    table.prefetch(np.array([20, 22], np.int64), None)
    assert fired
    monkeypatch.undo()
    assert (looked_up(store, [20, 21, 22]) == np.array([[3] * DIM, [3] * DIM, [0] * DIM])).all()


def test_update_writes_are_charged_on_the_clock(store):
    before = store.clock.snapshot().get("scm_write")
    assert before is None or before.ops == 0
    store.scm.max_space_amp = 100.0                               # no compaction after this update
    store.update("t", [1, 290], np.ones((2, DIM), np.float32))   # rows of two pages: one delta page
    w = store.clock.snapshot()["scm_write"]
    assert w.ops == 1 and w.bytes >= 4096 and w.modelled_s > 0 and w.measured_s > 0
    store.scm.compact("t")                                        # the rewrite of both home pages, charged too
    assert store.clock.snapshot()["scm_write"].ops == 3
