"""Page-granular admission, hotness-ordered SCM layout, warm admission, warm-up and prefetch staging."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sdm.runtime.embedding_store import EmbeddingStore
from sdm.core.errors import InvalidInputError
from sdm.prefetch import Prefetcher
from sdm.core.spec import TableSpec
from sdm.runtime.store_placement import default_placement, hotness_row_order
from sdm.cache.dram_cache import DramCache

N, DIM = 4096, 8            # 32-byte rows: 128 rows per 4 KiB page, 32 pages
RPP = 4096 // (DIM * 4)
CACHE = 1024 * (DIM * 4 + 9)  # room for 1024 rows (a quarter of the table)


def _profile(seed=0):
    """Counts falling with rank over a random permutation: rows perm[0] hottest."""
    perm = np.random.default_rng(seed).permutation(N)
    counts = np.zeros(N, np.int64)
    counts[perm] = np.arange(N, 0, -1)
    return perm, counts


@pytest.fixture()
def prof_store(tmp_path):
    perm, counts = _profile()
    w = torch.randn(N, DIM)
    s = EmbeddingStore.create(tmp_path / "s", [TableSpec("t", N, DIM)], hardware="host-nand", weights={"t": w},
                              dram_cache_bytes=CACHE, profile={"t": counts}, page_admit="warm")
    yield s, w, perm
    s.close()


def _ref(w, idx, off):
    return torch.nn.functional.embedding_bag(torch.from_numpy(idx), w, torch.from_numpy(off), mode="sum")


def _look(s, idx, off):
    return s.lookup("t", torch.from_numpy(idx), torch.from_numpy(off))


def test_profile_gives_hottest_first_layout_and_it_survives_reopen(prof_store, tmp_path):
    s, _, perm = prof_store
    assert np.array_equal(s.scm.page_of("t", perm[:RPP]), np.zeros(RPP, np.int64))  # hottest page = page 0
    assert np.array_equal(s.scm.page_of("t", perm[RPP : 2 * RPP]), np.ones(RPP, np.int64))
    s.close()
    s2 = EmbeddingStore.open(tmp_path / "s")
    assert np.array_equal(s2._table("t").row_order, hotness_row_order(perm, N))
    assert s2._table("t").page_admit == "warm" and s2._table("t").admission == "warm"   # as created
    s2.close()
    s3 = EmbeddingStore.open(tmp_path / "s", page_admit="auto")   # auto: off under warm admission
    assert s3._table("t").page_admit == "off"
    s3.close()


def test_one_page_read_caches_its_warm_rows_and_results_stay_exact(prof_store):
    s, w, perm = prof_store
    idx, off = perm[[5]].astype(np.int64), np.array([0])
    assert torch.equal(_look(s, idx, off), _ref(w, idx, off))
    st = s.stats()["tables"]["t"]["tiers"]["scm"]
    assert st["reads"] == 1 and st["rows"] == 1
    assert st["admitted"] == RPP - 1                     # the other rows of that (warm) page came along
    assert (s.cache("t").probe(perm[:RPP]) >= 0).all()
    s.reset_stats()
    idx2, off2 = perm[:RPP].copy(), np.arange(0, RPP, 16)
    assert torch.equal(_look(s, idx2, off2), _ref(w, idx2, off2))
    assert s.stats()["tables"]["t"]["tiers"]["scm"]["reads"] == 0   # all served from DRAM


def test_warm_admission_keeps_cold_misses_from_evicting_warm_rows(prof_store):
    s, w, perm = prof_store
    s.warm()
    c = s.cache("t")
    before = set(c.contents().tolist())
    cold = perm[-300:].astype(np.int64)                   # the profile's coldest rows
    off = np.arange(0, 300, 10)
    assert torch.equal(_look(s, cold, off), _ref(w, cold, off))
    after = set(c.contents().tolist())
    assert before <= after                                # no warm row evicted
    new = np.array(sorted(after - before), np.int64)
    assert set(new.tolist()) <= set(cold.tolist())
    if len(new):                                          # cold rows only took free slots, at low priority
        assert (c.score.reshape(-1)[c.probe(new)] == 0).all()
    _look(s, cold, off)                                   # a hit does not promote them
    if len(new):
        assert (c.score.reshape(-1)[c.probe(new)] == 0).all()
    warm = perm[RPP * 3 : RPP * 3 + 1].astype(np.int64)
    c.clear()
    _look(s, warm, np.array([0]))
    assert c.probe(warm)[0] >= 0 and c.score.reshape(-1)[c.probe(warm)[0]] > 0


def test_cold_rows_fill_room_the_warm_set_leaves(prof_store):
    s, w, perm = prof_store
    cold = perm[-3:].astype(np.int64)                     # empty cache: cold rows may use free slots
    _look(s, cold, np.array([0]))
    assert (s.cache("t").probe(cold) >= 0).all()


def test_warm_preloads_the_hot_set_from_the_profile(prof_store):
    s, w, perm = prof_store
    cap = s.cache("t").capacity_rows
    loaded = s.warm()
    assert 0.9 * cap <= loaded <= cap                     # set-associative: a few sets overflow
    hot = perm[:cap]
    assert (s.cache("t").probe(hot) >= 0).mean() >= 0.9
    s.reset_stats()
    idx = perm[:64].astype(np.int64)
    assert torch.equal(_look(s, idx, np.arange(0, 64, 8)), _ref(w, idx, np.arange(0, 64, 8)))


def test_prefetched_cold_rows_wait_in_staging_not_the_cache(prof_store):
    s, w, perm = prof_store
    s.warm()
    resident = s.cache("t").contents()
    cold = np.sort(perm[-40:]).astype(np.int64)
    s.prefetch({"t": cold})
    assert set(resident.tolist()) <= set(s.cache("t").contents().tolist())   # warm rows untouched
    s.reset_stats()
    off = np.arange(0, 40, 4)
    assert torch.equal(_look(s, cold, off), _ref(w, cold, off))
    t = s.stats()["tables"]["t"]
    assert t["tiers"]["scm"]["reads"] == 0 and t["hit_rate"]["dram"] == 1.0
    s.prefetch({"t": perm[-80:-40]}, protect={"t": np.zeros(0, np.int64)})  # next window: old rows dropped
    s.reset_stats()
    _look(s, cold, off)
    assert s.stats()["tables"]["t"]["tiers"]["scm"]["reads"] > 0


def test_prefetcher_reports_io_wait(prof_store):
    s, w, perm = prof_store
    g = np.random.default_rng(3)
    batches = [[(perm[np.minimum(g.zipf(1.2, 64) - 1, N - 1)], np.arange(0, 65, 8))] for _ in range(6)]
    pf = Prefetcher(s, batches, depth=2)
    for b in pf:
        idx, off = b[0]
        assert torch.equal(_look(s, idx, off[:-1]), _ref(w, idx, off[:-1]))
    ov = pf.overlap()
    assert ov["prefetch_s"] > 0 and ov["wait_s"] >= 0 and 0.0 <= ov["hidden"] <= 1.0


def test_page_admit_all_without_profile_uses_low_priority(tmp_path):
    w = torch.randn(N, DIM)
    with EmbeddingStore.create(tmp_path / "s", [TableSpec("t", N, DIM)], weights={"t": w}, dram_cache_bytes=CACHE,
                               page_admit="all") as s:
        assert s._table("t").admission == "all"
        idx = np.array([7], np.int64)
        assert torch.equal(_look(s, idx, np.array([0])), _ref(w, idx, np.array([0])))
        mates = np.arange(RPP)                                 # id-order layout: page 0 = rows 0..127
        c = s.cache("t")
        cached = c.probe(mates) >= 0
        assert cached.sum() > RPP // 2
        assert (c.score.reshape(-1)[c.probe(mates[cached & (mates != 7)])] == 0).all()   # low priority


def test_low_priority_inserts_never_evict_rows_that_were_read():
    c = DramCache(1000, 4, torch.float32, 4 * (16 + 9), ways=4)   # one set of 4 ways
    rows = torch.arange(40, dtype=torch.float32).reshape(10, 4)
    assert (c.insert(np.array([0, 1]), rows[:2]) >= 0).all()
    got = c.insert(np.array([2, 3, 4]), rows[2:5], low_priority=True)
    assert (got[:2] >= 0).all() and got[2] == -1                 # only the two empty slots
    assert (c.insert(np.array([5]), rows[5:6], low_priority=True) >= 0).all()   # replaces a low one
    assert (c.probe(np.array([0, 1])) >= 0).all()
    s6 = c.insert(np.array([6]), rows[6:7])                      # a normal insert evicts a low one first
    assert s6[0] >= 0 and (c.probe(np.array([0, 1])) >= 0).all()
    assert torch.equal(c.data[c.probe(np.array([6]))[0]], rows[6])


def test_bad_modes_are_refused(tmp_path):
    spec = [TableSpec("t", N, DIM)]
    with pytest.raises(InvalidInputError, match="page_admit"):
        EmbeddingStore.create(tmp_path / "a", spec, page_admit="some")
    with pytest.raises(InvalidInputError, match="page_layout='hot' needs a profile"):
        EmbeddingStore.create(tmp_path / "b", spec, page_layout="hot")
    with EmbeddingStore.create(tmp_path / "c", spec, dram_cache_bytes=CACHE) as s:
        s.close()
    with pytest.raises(InvalidInputError, match="admission='warm' needs a profile"):
        EmbeddingStore.open(tmp_path / "c", admission="warm")


def test_leftover_budget_follows_lookups_beyond_the_card():
    specs = [TableSpec("a", 1000, 8), TableSpec("b", 1000, 8)]
    ca, cb = np.zeros(1000), np.zeros(1000)
    ca[:10], cb[:10] = 90, 10                                   # a: 900 lookups, b: 100, on 10 rows each
    place = default_placement(specs, accel_bytes=0, dram_cache_bytes=20_000, profile={"a": ca, "b": cb})
    la, lb = place["a"].dram_cache_bytes, place["b"].dram_cache_bytes
    assert la + lb <= 20_000 and la > 5 * lb


@pytest.mark.parametrize("page_admit", ["off", "warm", "all"])
def test_exact_over_many_batches_with_every_admission_path(tmp_path, page_admit):
    perm, counts = _profile(1)
    w = torch.randn(N, DIM)
    with EmbeddingStore.create(tmp_path / "s", [TableSpec("t", N, DIM)], weights={"t": w}, dram_cache_bytes=CACHE // 2,
                               profile={"t": counts}, page_admit=page_admit) as s:
        s.warm()
        g = np.random.default_rng(7)
        for k in range(12):
            idx = perm[np.minimum(g.zipf(1.1, 256) - 1, N - 1)].astype(np.int64)
            if k % 3 == 0:   # some batches prefetched first (cache + staging), some not
                s.prefetch({"t": idx})
            off = np.arange(0, 256, 16)
            assert torch.equal(_look(s, idx, off), _ref(w, idx, off))
        st = s.stats()["tables"]["t"]
        assert st["hit_rate"]["scm"] > 0 and st["hit_rate"]["dram"] > 0   # both paths exercised
