"""SCM page store crash safety: a child process killed with SIGKILL mid-ingest and mid-update, then reopen.

The store must open at its last committed version, every row readable and checksums intact; the
uncommitted tail is cut and the orphaned data file of an unfinished ingest removed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from sdm.tiers.pagestore import DATA_DIR, PageStore

ROWS, DIM = 4000, 16
SET = np.arange(0, ROWS, 37)  # the rows every update rewrites


def base_rows() -> np.ndarray:
    return np.arange(ROWS * DIM, dtype=np.float32).reshape(ROWS, DIM)


CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    import numpy as np
    from sdm.tiers import store_meta
    from sdm.tiers.pagestore import PageStore
    path, mode = sys.argv[1], sys.argv[2]
    if mode.endswith("-precommit"):
        # die after the data is written and fsync'd, just before the LMDB commit
        store_meta.StoreMeta.commit = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    st = PageStore.open(path)
    if mode.startswith("ingest"):
        def chunks():
            for i in range(400):
                if i == 2:
                    print("started", flush=True)
                time.sleep(0.002)
                yield np.full((500, 16), i, dtype=np.float32)
        st.add_table("big", chunks())
        print("committed", flush=True)
    else:
        ids = np.arange(0, 4000, 37)
        k = 0
        while True:
            k += 1
            st.update_rows("base", ids, np.full((len(ids), 16), k, dtype=np.float32))
            print(k, flush=True)
    """
)


@pytest.fixture
def store_path(tmp_path):
    path = str(tmp_path / "s")
    with PageStore.create(path, "nand") as st:
        st.add_table("base", base_rows())
    return path


def run_child(path: str, mode: str, kill_after_line: str | None, delay_s: float) -> list[str]:
    """Run the child; SIGKILL it `delay_s` after it prints `kill_after_line` (None: let it die alone)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-c", CHILD, path, mode], stdout=subprocess.PIPE, text=True, env=env)
    lines = []
    try:
        if kill_after_line is not None:
            for line in p.stdout:
                lines.append(line.strip())
                if line.strip() == kill_after_line:
                    break
            time.sleep(delay_s)
            p.kill()
        p.wait(timeout=60)
        lines += [ln.strip() for ln in p.stdout.read().splitlines()]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -signal.SIGKILL, f"child ended with {p.returncode}: {lines}"
    return lines


def check_store(path: str) -> tuple[PageStore, np.ndarray]:
    st = PageStore.open(path)
    got = st.read_rows("base", np.arange(ROWS))  # every page read and checksum-verified
    for name in st.tables:  # every committed page of every table is intact
        st.read_rows(name, np.arange(st.table_info(name).num_rows))
    for name in st.tables:  # uncommitted tails were cut; orphan files were removed
        info = st.table_info(name)
        assert os.path.getsize(info.data_file) == info.stored_bytes
    assert len(os.listdir(os.path.join(path, DATA_DIR))) == len(st.tables)
    return st, got


@pytest.mark.parametrize("delay_s", [0.0, 0.05, 0.25])
def test_kill_during_ingest(store_path, delay_s):
    lines = run_child(store_path, "ingest", "started", delay_s)
    st, got = check_store(store_path)
    with st:
        assert np.array_equal(got, base_rows())
        if "committed" in lines:  # the kill came after the commit: the table is whole
            assert st.tables == ["base", "big"]
        if "big" in st.tables:
            big = st.read_rows("big", np.arange(200000))
            assert np.array_equal(big[:, 0], np.repeat(np.arange(400, dtype=np.float32), 500))
        else:
            assert st.tables == ["base"] and st.version == 1
        st.update_rows("base", np.array([1]), np.zeros((1, DIM), np.float32))  # writable again


def test_kill_after_ingest_data_before_commit(store_path):
    run_child(store_path, "ingest-precommit", None, 0)
    data_files = os.listdir(os.path.join(store_path, DATA_DIR))
    assert len(data_files) == 2  # the unfinished table's data is on disk...
    st, got = check_store(store_path)  # ...and is not a table; opening removed the orphan
    with st:
        assert st.tables == ["base"] and st.version == 1
        assert np.array_equal(got, base_rows())


@pytest.mark.parametrize("delay_s", [0.0, 0.02, 0.1])
def test_kill_during_updates(store_path, delay_s):
    lines = run_child(store_path, "update", "3", delay_s)
    last_printed = max(int(x) for x in lines if x.isdigit())
    st, got = check_store(store_path)
    with st:
        k = got[SET[0], 0]
        # all rows of the set come from one committed update: the last printed or the next one
        assert np.all(got[SET] == k), "rows of one update seen at different versions"
        assert last_printed <= k <= last_printed + 1
        assert st.version == 1 + int(k)
        rest = np.setdiff1d(np.arange(ROWS), SET)
        assert np.array_equal(got[rest], base_rows()[rest])


def test_kill_after_update_data_before_commit(store_path):
    size0 = os.path.getsize(os.path.join(store_path, DATA_DIR, os.listdir(os.path.join(store_path, DATA_DIR))[0]))
    run_child(store_path, "update-precommit", None, 0)
    data = os.path.join(store_path, DATA_DIR, os.listdir(os.path.join(store_path, DATA_DIR))[0])
    assert os.path.getsize(data) > size0  # shadow pages were appended but never committed
    st, got = check_store(store_path)
    with st:
        assert st.version == 1 and np.array_equal(got, base_rows())
        assert os.path.getsize(data) == size0
