"""Streamed deltas (sdm.runtime.deltas): an iterator or a directory of checksummed delta files
applied in the background while lookups go on, in order, resumable, a damaged file refused."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch

from sdm import EmbeddingStore, TableSpec
from sdm.core.errors import CorruptionError
from sdm.runtime.deltas import DeltaApplier, applied_version, read_delta, write_delta

ROWS, DIM = 1000, 4


@pytest.fixture
def store(tmp_path):
    spec = TableSpec("t", ROWS, DIM)
    st = EmbeddingStore.create(tmp_path / "s", [spec], weights={"t": np.zeros((ROWS, DIM), np.float32)},
                               dram_cache_bytes=200 * spec.row_bytes)
    yield st
    st.close()


def rows_of(st, ids):
    ids = torch.as_tensor(np.asarray(ids, np.int64))
    return st.lookup("t", ids, torch.arange(len(ids))).numpy()


def test_iterator_applier_while_lookups_go_on(store):
    batches = [("t", np.arange(k * 10, k * 10 + 50), np.full((50, DIM), k, np.float32)) for k in range(1, 21)]
    stop = threading.Event()
    looked = [0]

    def reader():
        rng = np.random.default_rng(0)
        while not stop.is_set():
            got = rows_of(store, rng.integers(0, ROWS, 32))
            assert (got == got[:, :1]).all()
            looked[0] += 1

    r = threading.Thread(target=reader)
    r.start()
    with DeltaApplier(store, iter(batches)) as ap:
        assert ap.wait_for(20, timeout=60)
    stop.set()
    r.join()
    assert looked[0] > 0 and ap.applied == 20 and ap.rows_applied == 1000
    want = np.zeros(ROWS)
    for k in range(1, 21):
        want[k * 10 : k * 10 + 50] = k  # later deltas win: applied in order
    assert np.array_equal(rows_of(store, np.arange(ROWS))[:, 0], want)
    assert applied_version(store) == 20


def test_directory_applier_resumes_and_refuses_damage(store, tmp_path):
    d = tmp_path / "deltas"
    for v in (1, 2, 3):
        write_delta(d, "t", np.arange(v), np.full((v, DIM), v, np.float32), v)
    assert read_delta(d / "delta-0000000002.npz").version == 2
    ap = DeltaApplier(store, d, poll_s=0.01).start()
    assert ap.wait_for(3, timeout=30)
    write_delta(d, "t", [999], np.full((1, DIM), 4, np.float32), 4)  # picked up while running
    assert ap.wait_for(4, timeout=30)
    ap.stop()
    assert rows_of(store, [0, 1, 2, 999])[:, 0].tolist() == [3, 3, 3, 4]
    # a damaged file: the applier stops with the error; nothing of it applied; restart resumes after 4
    p = write_delta(d, "t", [5], np.full((1, DIM), 5, np.float32), 5)
    raw = bytearray(p.read_bytes())
    raw[-200] ^= 0xFF
    p.write_bytes(bytes(raw))
    ap = DeltaApplier(store, d, poll_s=0.01)
    assert ap.applied == 4
    ap.start()
    assert not ap.wait_for(5, timeout=5)
    with pytest.raises(CorruptionError, match="delta-0000000005"):
        ap.stop()
    assert rows_of(store, [5])[0, 0] == 0
    os.remove(p)
    write_delta(d, "t", [5], np.full((1, DIM), 5, np.float32), 5)
    with DeltaApplier(store, d, poll_s=0.01) as ap:
        assert ap.wait_for(5, timeout=30)
    assert rows_of(store, [5])[0, 0] == 5


def test_bad_batch_stops_with_clear_error(store):
    ap = DeltaApplier(store, iter([("t", [1], np.ones((1, DIM), np.float32)), ("nope", [1], np.ones((1, DIM)))]))
    ap.start()
    with pytest.raises(Exception, match="nope"):
        ap.join(timeout=30)
    assert ap.applied == 1
