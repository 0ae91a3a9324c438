"""EmbeddingStore.update / .version / .apply_deltas: the public names for the live-table functions."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sdm import EmbeddingStore, TableSpec
from sdm.core.errors import InvalidInputError

ROWS, DIM = 300, 4


@pytest.fixture
def store(tmp_path):
    spec = TableSpec("t", ROWS, DIM)
    st = EmbeddingStore.create(tmp_path / "s", [spec], weights={"t": np.zeros((ROWS, DIM), np.float32)},
                               dram_cache_bytes=50 * spec.row_bytes)
    yield st
    st.close()


def looked_up(st, ids):
    ids = torch.as_tensor(np.asarray(ids, np.int64))
    return st.lookup("t", ids, torch.arange(len(ids))).numpy()


def test_update_commits_and_bumps_version(store):
    before = store.version
    looked_up(store, [3, 4])                       # cached now: the update must reach the cache too
    v = store.update("t", [3, 250], np.ones((2, DIM), np.float32))
    assert v == store.version == before + 1
    assert (looked_up(store, [3, 250, 4]) == np.array([[1] * DIM, [1] * DIM, [0] * DIM])).all()


def test_bad_update_changes_nothing(store):
    before = store.version
    with pytest.raises(InvalidInputError, match="t"):
        store.update("t", [ROWS], np.ones((1, DIM), np.float32))
    with pytest.raises(InvalidInputError):
        store.update("nope", [0], np.ones((1, DIM), np.float32))
    assert store.version == before and (looked_up(store, range(ROWS)) == 0).all()


def test_apply_deltas_from_an_iterator(store):
    batches = [("t", np.arange(k, k + 10), np.full((10, DIM), k, np.float32)) for k in (1, 2, 3)]
    applier = store.apply_deltas(iter(batches))
    applier.join(timeout=30)
    assert applier.applied == 3
    assert (looked_up(store, [1, 2, 3, 12]) == np.array([[1] * DIM, [2] * DIM, [3] * DIM, [3] * DIM])).all()
