"""Model-version swaps (sdm.runtime.versions): the old version serves until the switch, lookups in
flight finish on it, its directory is removed after; kill -9 anywhere in a swap leaves a whole version."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch

from sdm import EmbeddingStore, TableSpec
from sdm.core.errors import InvalidInputError
from sdm.runtime.versions import LiveModel, current_version, version_dir

ROWS, DIM = 500, 4
SPEC = [TableSpec("t", ROWS, DIM)]


def weights(v):
    return {"t": np.full((ROWS, DIM), v, np.float32)}


def one(live_or_store, ids=(0, 7, 499)):
    ids = torch.as_tensor(np.asarray(ids, np.int64))
    return live_or_store.lookup("t", ids, torch.arange(len(ids))).numpy()


def test_swap_while_serving(tmp_path):
    live = LiveModel.create(tmp_path / "m", SPEC, weights=weights(1.0))
    assert live.version == 1 and np.all(one(live) == 1)
    stop, seen, errors = threading.Event(), set(), []

    def reader():
        try:
            while not stop.is_set():
                got = one(live)
                assert np.all(got == got[0, 0])  # one version per lookup
                seen.add(float(got[0, 0]))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for v in (2, 3):
        p = live.next_path()
        EmbeddingStore.create(p, SPEC, weights=weights(float(v))).close()
        assert np.all(one(live) == v - 1)  # the old version serves until the switch
        assert live.swap(p) == v
        assert np.all(one(live) == v)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert seen <= {1.0, 2.0, 3.0} and 3.0 in seen
    assert sorted(os.listdir(tmp_path / "m")) == ["CURRENT", "v0000000003"]  # old versions' space reclaimed
    with pytest.raises(InvalidInputError, match="not above"):
        live.swap(version_dir(tmp_path / "m", 2))
    with pytest.raises(InvalidInputError, match="v<10 digits>"):
        live.swap(tmp_path / "elsewhere")
    live.close()
    with LiveModel(tmp_path / "m") as again:
        assert again.version == 3 and np.all(one(again) == 3)


def test_inflight_lookup_keeps_old_version_open(tmp_path):
    live = LiveModel.create(tmp_path / "m", SPEC, weights=weights(1.0))
    p = live.next_path()
    EmbeddingStore.create(p, SPEC, weights=weights(2.0)).close()
    with live.using() as old:
        done = threading.Thread(target=live.swap, args=(p,))
        done.start()
        done.join(1.0)
        assert done.is_alive()  # the swap waits for this block before closing the old store
        assert np.all(one(old) == 1)  # still readable
        assert np.all(one(live) == 2)  # new lookups already see the new version
    done.join(30)
    assert not done.is_alive() and not version_dir(tmp_path / "m", 1).exists()
    live.close()


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from sdm import EmbeddingStore, TableSpec
    from sdm.runtime import versions
    root, mode = sys.argv[1], sys.argv[2]
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    live = versions.LiveModel(root)
    p = live.next_path()
    spec = [TableSpec("t", 500, 4)]
    if mode == "during-build":
        import sdm.tiers.page_writes as pw
        pw.TableWriter.ingest = die
    EmbeddingStore.create(p, spec, weights={"t": np.full((500, 4), 2.0, np.float32)}).close()
    if mode == "before-switch":
        versions.write_json = die
    elif mode == "before-remove":
        versions.remove_version = die
    live.swap(p)
    die()
    """
)


@pytest.mark.parametrize("mode,want", [("during-build", 1), ("before-switch", 1), ("before-remove", 2),
                                       ("after", 2)])
def test_kill_during_swap(tmp_path, mode, want):
    root = tmp_path / "m"
    LiveModel.create(root, SPEC, weights=weights(1.0)).close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run([sys.executable, "-c", CHILD, str(root), mode], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    assert current_version(root) == want
    with LiveModel(root) as live:
        assert live.version == want and np.all(one(live, np.arange(ROWS)) == want)
    assert sorted(os.listdir(root)) == ["CURRENT", f"v{want:010d}"]  # the other version removed
