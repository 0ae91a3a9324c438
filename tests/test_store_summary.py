"""Issue 12: `store.summary()` / `print(store.stats_table())`: per table and tier, p50/p99 in the
total too, built from `EmbeddingStore.stats()` and agreeing with it."""
from __future__ import annotations

import numpy as np
import pytest

from sdm.core.spec import TableSpec
from sdm.runtime.embedding_store import EmbeddingStore
from sdm.runtime.store_summary import hist_quantile, summarize


def test_hist_quantile_is_the_bucket_holding_the_rank():
    edges = [1e-6, 1e-5, 1e-4, float("inf")]
    assert hist_quantile(edges, [0, 0, 0, 0], 0.5) is None
    assert hist_quantile(edges, [1, 1, 0, 0], 0.5) == (0.0, 1e-6)          # rank 1 of 2
    assert hist_quantile(edges, [1, 1, 0, 0], 0.99) == (1e-6, 1e-5)
    assert hist_quantile(edges, [0, 0, 3, 97], 0.5) == (1e-4, float("inf"))
    assert hist_quantile(edges, [98, 1, 1, 0], 0.99) == (1e-6, 1e-5)        # rank 99 of 100


def test_store_summary_per_table_tier_and_total(tmp_path):
    specs = [TableSpec("a", 2000, 8), TableSpec("b", 600, 4)]
    store = EmbeddingStore.create(tmp_path / "s", specs, dram_cache_bytes=8000)
    rng = np.random.default_rng(0)
    with store:
        for _ in range(5):
            for name, n in (("a", 2000), ("b", 600)):
                ids = rng.integers(0, n, 120)
                store.lookup(name, ids, np.arange(0, 120, 4))
        st = store.stats()
        s = store.summary()
        text = store.stats_table()
    assert set(s["tables"]) == {"a", "b"}
    for name in ("a", "b"):
        t, raw = s["tables"][name], st["tables"][name]
        assert t["lookups"] == 5 and t["indices"] == 600
        assert t["p50_s"] == raw["latency"]["p50_s"] and t["p99_s"] == raw["latency"]["p99_s"]
        assert sum(v["hits"] for v in t["tiers"].values()) == 600
        assert t["tiers"]["scm"]["reads"] == raw["tiers"]["scm"]["reads"] > 0
    tot = s["total"]
    assert tot["lookups"] == 10 and tot["indices"] == 1200
    assert tot["tiers"]["scm"]["bytes"] == sum(s["tables"][n]["tiers"]["scm"]["bytes"] for n in ("a", "b"))
    # the total's p50/p99: the histogram bucket, which brackets the calls' own percentiles
    lo50, hi50 = tot["p50_bucket_s"]
    lo99, hi99 = tot["p99_bucket_s"]
    assert lo50 < hi50 <= hi99 and (lo50 == 0 or hi50 <= lo50 * 1.34) and tot["p50_s"] == hi50
    # the total's p99 (rank 10 of 10 calls: the slowest call) is at least every table's p99
    assert hi99 >= max(s["tables"][n]["p99_s"] for n in ("a", "b"))
    assert (lo99, hi99) == hist_quantile(st["total"]["latency"]["hist_upper_edges_s"],
                                         st["total"]["latency"]["hist_counts"], 0.99)
    assert sum(st["total"]["latency"]["hist_counts"]) == 10
    lines = text.splitlines()
    assert any(line.startswith("a ") for line in lines) and any(line.startswith("all ") for line in lines)
    assert "<=" in next(line for line in lines if line.startswith("all ")) and "per tier" in text
    assert any(line.startswith("scm ") for line in lines)


def test_summary_of_an_unused_store_has_no_percentiles(tmp_path):
    with EmbeddingStore.create(tmp_path / "s", [TableSpec("a", 100, 4)]) as store:
        s = store.summary()
        assert s["total"]["p50_s"] is None and s["total"]["lookups"] == 0
        assert "all" in store.stats_table()
    assert summarize({"tables": {}, "total": s["total"] | {"latency": {"measured_total_s": 0, "modelled_total_s": 0,
                      "hist_upper_edges_s": [1.0, float("inf")], "hist_counts": [0, 0]},
                      "hit_rate": {}, "tiers": {}, "prefetch": {"rows": 0}}})["total"]["p99_s"] is None
