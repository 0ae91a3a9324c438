"""Duel (sdm.cache.duel): set dueling between LRU and Sketch-LFU order in the runtime's index."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from sdm.cache import duel
from sdm.cache.index import CacheIndex, index_bytes_per_row
from sdm.cachesim import RuntimeCache, simulate
from sdm.cachesim.lookahead_replay import replay_lookahead


def _reads(policy: str, ids: np.ndarray, cap: int, batch: int) -> tuple[int, CacheIndex]:
    idx = CacheIndex(int(ids.max()) + 1, cap, ways=16, layout="hashed", policy=policy)
    return replay_lookahead(idx, ids, np.arange(0, len(ids), batch), 0).reads, idx


def _bursts(rng, n_bursts: int, burst_rows: int = 700) -> np.ndarray:
    """Rows read in bursts (each row 6 times within its burst, never again) after a stale set of
    600 rows read 30 times each: the stream where frequency order loses, keeping the stale rows
    while a burst larger than the room they leave thrashes (LRU keeps the burst)."""
    stale = np.repeat(np.arange(600), 30)
    rng.shuffle(stale)
    bursts = [np.repeat(np.arange(10_000 + burst_rows * k, 10_000 + burst_rows * (k + 1)), 6) for k in range(n_bursts)]
    for b in bursts:
        rng.shuffle(b)
    return np.concatenate([stale] + bursts).astype(np.int64)


def test_followers_turn_to_lru_order_where_recency_wins():
    ids = _bursts(np.random.default_rng(0), 40)
    lru, _ = _reads("lru", ids, 1024, 64)
    freq, _ = _reads("sketch-lfu", ids, 1024, 64)
    got, idx = _reads("duel", ids, 1024, 64)
    assert lru < 0.9 * freq                      # the stream does separate the two orders
    assert idx.policy.frequency is False and idx.policy.psel < 0
    assert got < 0.3 * freq and got <= 1.3 * lru   # (its frequency leaders, 1/16 of the sets, still thrash)


def test_followers_keep_frequency_order_on_zipf():
    rng = np.random.default_rng(1)
    ids = (rng.zipf(1.1, 120_000) % 200_000).astype(np.int64)
    lru, _ = _reads("lru", ids, 2048, 64)
    freq, _ = _reads("sketch-lfu", ids, 2048, 64)
    got, idx = _reads("duel", ids, 2048, 64)
    assert freq < 0.95 * lru
    assert idx.policy.frequency is True
    assert got <= freq * 1.03 and got < lru


def test_leader_sets_keep_their_order_and_followers_follow():
    pol = duel.Duel()
    p = pol.period(64)
    assert p == duel.PERIOD_SETS
    sets = np.array([0, 1, 2, p, p + 1, p + 2])
    assert pol.frequency_sets(sets, 64).tolist() == [False, True, True, False, True, True]
    pol.frequency = False
    assert pol.frequency_sets(sets, 64).tolist() == [False, True, False, False, True, False]
    score = np.array([[(5 << 40) | 1, (1 << 40) | 9]] * len(sets), np.int64)
    keys = pol.victim_key_sets(score, sets, 64)
    # LRU order reads the stamps only: slot 0 (stamp 1) goes first; frequency order: slot 1 (count 1)
    assert keys[0].argmin() == 0 and keys[1].argmin() == 1 and keys[2].argmin() == 0


def test_psel_saturates_and_switches_with_hysteresis():
    pol = duel.Duel()
    pol.ways = 4
    n_slots = 4 * 64                                            # 64 sets
    lru_leader = np.array([0]) * 4                              # a slot of set 0 (LRU leader)
    freq_leader = np.array([1]) * 4                             # a slot of set 1 (frequency leader)
    for _ in range(duel.SWITCH - 1):
        pol._vote(freq_leader, n_slots)
    assert pol.frequency is True                                # not yet past -SWITCH
    pol._vote(freq_leader, n_slots)
    assert pol.frequency is False and pol.psel == -duel.SWITCH
    for _ in range(duel.SWITCH):
        pol._vote(lru_leader, n_slots)
    assert pol.frequency is False and pol.psel == 0             # back at 0: no switch yet
    for _ in range(10 * duel.PSEL_LIMIT):
        pol._vote(lru_leader, n_slots)
    assert pol.frequency is True and pol.psel == duel.PSEL_LIMIT


def test_a_dry_run_copy_does_not_vote_and_small_caches_do_not_duel():
    idx = CacheIndex(10_000, 16 * 64, ways=16, policy="duel")
    idx.place(np.arange(0, 5_000, 3))
    psel = idx.policy.psel
    dup = copy.deepcopy(idx.policy)
    dup._vote(np.zeros(50, np.int64), idx.capacity_rows)
    assert idx.policy.psel == psel and dup.psel == psel        # the dry copy (sdm.cache.window.fits)
    small = duel.Duel()
    few = 2 * duel.PERIOD_SETS - 1
    assert small.period(few) == 0 and small.frequency_sets(np.arange(few), few).all()


@pytest.mark.parametrize("ways", [4, 16])
def test_store_and_simulator_run_the_same_duel(tmp_path, ways):
    from sdm.core.spec import TableSpec
    from sdm.runtime.embedding_store import EmbeddingStore

    rng = np.random.default_rng(ways)
    num_rows, dim, pooling, per, cache_rows = 5_000, 4, 4, 64, 320
    ids = np.concatenate([np.minimum(rng.zipf(1.1, 6_000) - 1, num_rows - 1),
                          _bursts(rng, 3) % num_rows]).astype(np.int64)
    ids = ids[: len(ids) // per * per]
    budget = cache_rows * (dim * 4 + index_bytes_per_row(num_rows, "duel"))
    w = torch.randn(num_rows, dim)
    with EmbeddingStore.create(tmp_path / "s", [TableSpec("t", num_rows, dim)], weights={"t": w},
                               dram_cache_bytes=budget, policy="duel", ways=ways) as s:
        for a in range(0, ids.size, per):
            ix = torch.from_numpy(ids[a:a + per])
            off = torch.arange(0, ix.numel(), pooling)
            assert torch.equal(s.lookup("t", ix, off), torch.nn.functional.embedding_bag(ix, w, off, mode="sum"))
        served = s.stats()["tables"]["t"]
    replay = simulate(ids, cache_rows, RuntimeCache("duel", ways=ways, batch_size=per, num_rows=num_rows))
    assert served["tiers"]["dram"]["hits"] == replay.hits
