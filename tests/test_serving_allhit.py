"""The hashed cache's all-hit path: one compiled pass (probe, recency stamp, slot remap) that
leaves the index exactly as probe + touch would."""
from __future__ import annotations

import numpy as np
import pytest

from sdm.cache.index import CacheIndex


def _twins(policy, mask=False):
    rng = np.random.default_rng(1)
    a, b = (CacheIndex(10_000, 1_000, ways=16, policy=policy) for _ in range(2))
    ids = rng.permutation(10_000)[:600]
    for ix in (a, b):
        ix.place(ids)
        if mask:
            ix.admit_mask = np.zeros(10_000, np.bool_)
            ix.admit_mask[ids[::2]] = True
    return a, b, a.contents(), rng


@pytest.mark.parametrize("policy", ["lru", "lfu", "fifo"])
@pytest.mark.parametrize("mask", [False, True])
def test_all_hit_pass_equals_probe_then_touch(policy, mask):
    a, b, resident, rng = _twins(policy, mask)
    for _ in range(3):
        batch = rng.choice(resident, 5_000)
        slots = a.probe_all_hit(batch)
        ref = b.probe(batch)
        b.touch(ref)
        assert np.array_equal(slots, ref)
        assert np.array_equal(a.score, b.score) and a.stamp == b.stamp
        assert np.array_equal(a.tags, b.tags)


def test_all_hit_pass_returns_none_on_a_miss_and_changes_no_tags():
    a, _, resident, rng = _twins("lru")
    absent = np.setdiff1d(np.arange(10_000), resident)[:1]
    tags = a.tags.copy()
    batch = np.concatenate([rng.choice(resident, 100), absent, rng.choice(resident, 100)])
    assert a.probe_all_hit(batch) is None
    assert np.array_equal(a.tags, tags)
    # the rows read before the absent one carry this batch's stamp (they are read by it anyway)
    first = a.probe(batch[:100])
    assert (a.score.reshape(-1)[first] == a.stamp).all()
    assert np.array_equal(a.probe_all_hit(batch[:0]), np.zeros(0, np.int64))
