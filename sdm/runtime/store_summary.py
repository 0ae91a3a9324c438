"""A readable report of an EmbeddingStore's counters: `store.summary()` (a dict) and
`print(store.stats_table())` (text), both built from `EmbeddingStore.stats()` alone.

Per table: lookup calls, indices, the share each tier served, SCM pages and bytes, measured and
modelled time, p50/p99 per call (exact, over the most recent calls the stats keep) and the DRAM
cache's fill. The total adds p50/p99 over every table's calls together: the stats keep exact
recent latencies per table only, so the total's percentiles come from the merged latency
histogram and are given as the bucket that holds them (log buckets, 4 per decade: the upper edge
is at most 1.34x the lower). Per tier, over all tables: hits, distinct rows, reads (pages for
SCM), bytes, measured and modelled time.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from sdm.core.text_table import text_table

__all__ = ["summarize", "format_summary", "hist_quantile", "TIERS"]

TIERS = ("accel", "dram", "scm")


def hist_quantile(upper_edges_s: Sequence[float], counts: Sequence[int], q: float) -> tuple[float, float] | None:
    """(lower, upper) edges of the histogram bucket holding quantile `q` of the counted values;
    None when nothing was counted. Bucket i holds values in (edge[i-1], edge[i]]; the first starts at 0."""
    total = sum(int(c) for c in counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))       # the rank-th smallest value (1-based)
    seen = 0
    for i, c in enumerate(counts):
        seen += int(c)
        if seen >= rank:
            return (float(upper_edges_s[i - 1]) if i else 0.0, float(upper_edges_s[i]))
    return (float(upper_edges_s[-2]), float(upper_edges_s[-1]))


def _tiers(t: Mapping) -> dict:
    return {k: {"hit_rate": float(t["hit_rate"].get(k, 0.0)), **{f: t["tiers"][k][f] for f in
                ("hits", "rows", "reads", "bytes", "measured_s", "modelled_s")}} for k in TIERS if k in t["tiers"]}


def summarize(stats: Mapping) -> dict:
    """`EmbeddingStore.stats()` condensed to {"tables": {name: ...}, "total": ...}; see the module doc."""
    tables = {}
    for name, t in stats["tables"].items():
        lat = t["latency"]
        cache = t.get("cache", {})
        tables[name] = {
            "lookups": t["lookups"], "indices": t["indices"], "tiers": _tiers(t),
            "measured_total_s": lat["measured_total_s"], "modelled_total_s": lat["modelled_total_s"],
            "p50_s": lat.get("p50_s", 0.0), "p99_s": lat.get("p99_s", 0.0),
            "modelled_p50_s": lat.get("modelled_p50_s", 0.0), "modelled_p99_s": lat.get("modelled_p99_s", 0.0),
            "cache_resident_rows": cache.get("resident_rows", 0), "cache_capacity_rows": cache.get("capacity_rows", 0),
            "prefetch_rows": t["prefetch"]["rows"],
        }
    tot = stats["total"]
    lat = tot["latency"]
    total = {"lookups": tot["lookups"], "indices": tot["indices"], "tiers": _tiers(tot),
             "measured_total_s": lat["measured_total_s"], "modelled_total_s": lat["modelled_total_s"],
             "prefetch_rows": tot["prefetch"]["rows"], "percentiles_from": "histogram bucket"}
    for q, key in ((0.5, "p50"), (0.99, "p99")):
        b = hist_quantile(lat["hist_upper_edges_s"], lat["hist_counts"], q)
        total[f"{key}_bucket_s"] = None if b is None else list(b)
        total[f"{key}_s"] = None if b is None else b[1]          # at most this
    return {"tables": tables, "total": total}


def _ms(x) -> str:
    return "-" if x is None else f"{1e3 * x:.3f}"


def _hit(t: Mapping, tier: str) -> str:
    return f"{100 * t['tiers'][tier]['hit_rate']:.1f}" if tier in t["tiers"] else "-"


def _bucket_ms(b) -> str:
    if b is None:
        return "-"
    return f">{1e3 * b[0]:.3g}" if math.isinf(b[1]) else f"<={1e3 * b[1]:.3g}"


def format_summary(summary: Mapping) -> str:
    """The summary as two text tables: per table (with an `all` row) and per tier."""
    head = ["table", "lookups", "indices", "accel_%", "dram_%", "scm_%", "scm_pages", "scm_MiB",
            "measured_ms", "modelled_ms", "p50_ms", "p99_ms", "cache_rows"]
    rows = []
    for name, t in summary["tables"].items():
        scm = t["tiers"].get("scm", {"reads": 0, "bytes": 0})
        rows.append([name, t["lookups"], t["indices"], _hit(t, "accel"), _hit(t, "dram"), _hit(t, "scm"),
                     scm["reads"], f"{scm['bytes'] / 2**20:.2f}", _ms(t["measured_total_s"]),
                     _ms(t["modelled_total_s"]), _ms(t["p50_s"]), _ms(t["p99_s"]),
                     f"{t['cache_resident_rows']}/{t['cache_capacity_rows']}"])
    tot = summary["total"]
    scm = tot["tiers"].get("scm", {"reads": 0, "bytes": 0})
    rows.append(["all", tot["lookups"], tot["indices"], _hit(tot, "accel"), _hit(tot, "dram"), _hit(tot, "scm"),
                 scm["reads"], f"{scm['bytes'] / 2**20:.2f}", _ms(tot["measured_total_s"]),
                 _ms(tot["modelled_total_s"]), _bucket_ms(tot["p50_bucket_s"]), _bucket_ms(tot["p99_bucket_s"]), "-"])
    tiers = [[k, f"{100 * v['hit_rate']:.1f}", v["hits"], v["rows"], v["reads"], f"{v['bytes'] / 2**20:.2f}",
              _ms(v["measured_s"]), _ms(v["modelled_s"])] for k, v in tot["tiers"].items()]
    out = ["per table (lookups: calls; %: share of indices each tier served; p50/p99 per call, measured):",
           text_table(head, rows),
           "(all: p50/p99 over every table's calls, from the latency histogram: the bucket's edge)",
           "", "per tier, all tables (rows: distinct rows a batch read; reads: SCM pages):",
           text_table(["tier", "hit_%", "hits", "rows", "reads", "MiB", "measured_ms", "modelled_ms"], tiers)]
    if tot["prefetch_rows"]:
        out.append(f"prefetch thread read {tot['prefetch_rows']} rows from SCM ahead of use")
    return "\n".join(out)
