"""Where an EmbeddingStore keeps each table's rows: from a plan, or a default placement.

SCM always holds every row (the backing copy). Faster tiers hold copies:
- `accel_ids`: rows resident in accelerator memory (static),
- `dram_pinned_ids`: rows pinned in host DRAM (static, from a plan's "dram" placements),
- `dram_cache_bytes` + `policy`: the dynamic DRAM cache in front of SCM,
- `row_order`: page layout of the SCM copy (row_order[slot] = row id), None for id order.

Default placement (no plan): with a profile, the planner's row-level proposer ranks rows by
lookups per byte over all tables and fills accelerator memory, then the DRAM cache budget (split
over tables as the planner splits its cache); without one, whole tables go to the accelerator
smallest-first and the DRAM cache is split in proportion to table size.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.core.checks import integer_array, whole_number
from sdm.core.spec import TableSpec

_ACCEL_TIERS = ("sram", "lpddr", "accel")


@dataclass
class TablePlacement:
    accel_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dram_pinned_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dram_cache_bytes: int = 0
    policy: str = "lru"
    static_hot_ids: np.ndarray | None = None   # for policy "static": rows the cache holds, hottest first
    row_order: np.ndarray | None = None
    hot_order: np.ndarray | None = None        # rows a profile saw, hottest first (None: no profile)


def hotness_row_order(hot_order: np.ndarray, num_rows: int) -> np.ndarray:
    """SCM layout packing rows hottest first (row_order[slot] = row id): the pages of the head hold
    only warm rows, so a page read for one of them brings rows worth caching; unseen rows follow in
    id order."""
    hot = np.asarray(hot_order, np.int64)
    seen = np.zeros(num_rows, np.bool_)
    seen[hot] = True
    return np.concatenate([hot, np.flatnonzero(~seen)])


def hot_orders(profile, specs: list[TableSpec]) -> dict[str, np.ndarray]:
    """Per table: the ids a profile saw, hottest first (ties by id)."""
    out = {}
    for s in specs:
        ids, cnt = _heat(profile, s.name, s.num_rows)
        out[s.name] = ids[np.lexsort((ids, -cnt))]
    return out


def _heat(profile, name: str, num_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(row ids, lookup counts) of rows a profile saw for one table; reads several profile shapes."""
    tp = profile.get(name) if isinstance(profile, dict) else getattr(profile, "tables", {}).get(name)
    if tp is None:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    if isinstance(tp, np.ndarray):
        counts = np.asarray(tp, dtype=np.float64)
    elif getattr(tp, "counts", None) is not None:
        counts = np.asarray(tp.counts, dtype=np.float64)
    elif hasattr(tp, "hot_rows"):
        # sketch-mode profile (sdm.placement.profile): its heavy hitters, with estimated counts
        ids = np.asarray(tp.hot_rows(num_rows), np.int64)
        cnt = tp.count(ids) if hasattr(tp, "count") else np.arange(len(ids), 0, -1)
        return ids, np.asarray(cnt, np.float64)
    else:
        raise InvalidInputError(f"profile entry for table {name!r} has neither counts nor hot_rows()")
    if counts.shape != (num_rows,):
        raise InvalidInputError(f"profile counts for table {name!r} have shape {counts.shape}, expected ({num_rows},)")
    ids = np.flatnonzero(counts > 0)
    return ids.astype(np.int64), counts[ids]


def default_placement(
    specs: list[TableSpec],
    *,
    accel_bytes: int,
    dram_cache_bytes: int,
    policy: str = "lru",
    profile=None,
) -> dict[str, TablePlacement]:
    out = {s.name: TablePlacement(policy=policy) for s in specs}
    if profile is not None and specs:
        _planned_placement(specs, profile, int(accel_bytes), int(dram_cache_bytes), out)
        return out
    left = accel_bytes
    for s in sorted(specs, key=lambda s: s.size_bytes):
        if s.size_bytes <= left:
            out[s.name].accel_ids = np.arange(s.num_rows, dtype=np.int64)
            left -= s.size_bytes
    rest = [s for s in specs if not len(out[s.name].accel_ids)]
    total = sum(s.size_bytes for s in rest)
    for s in rest:
        out[s.name].dram_cache_bytes = int(dram_cache_bytes * s.size_bytes / total) if total else 0
    return out


def _planned_placement(specs: list[TableSpec], profile, accel_bytes: int, dram_cache_bytes: int,
                       out: dict[str, TablePlacement]) -> None:
    """The planner's row-level proposer on the store's budgets: card memory, then the DRAM cache as
    a tier (the rows it ranks there are the cache's static hot set, hottest first), then SCM. The
    cache budget is split by `split_cache_budget`, as the planner splits its own."""
    from sdm.placement.planner import Planner, split_cache_budget
    from sdm.placement.types import TableHotness, TierSpec

    hot = []
    for s in specs:
        ids, cnt = _heat(profile, s.name, s.num_rows)
        order = np.argsort(ids, kind="stable")
        hot.append(TableHotness(s.name, s.num_rows, ids[order], cnt[order]))
    model_bytes = sum(s.size_bytes for s in specs)
    # only capacities matter to the proposer; latency and rates are placeholders of the right order
    tier = lambda name, cap: TierSpec(name, int(cap), 1, 1.0, 1.0, 1.0)  # noqa: E731
    tiers = [tier("lpddr", accel_bytes), tier("dram", dram_cache_bytes), tier("scm", model_bytes)]
    placement = Planner.from_options().place(specs, hot, tiers)
    occupancy, beyond = np.zeros(len(specs)), np.zeros(len(specs))
    for i, (s, h) in enumerate(zip(specs, hot)):
        tp, p = placement.tables[s.name], out[s.name]
        accel = [rows.to_ids() for t, _c, rows in tp.pinned if t == "lpddr"]
        cached = [rows.to_ids() for t, _c, rows in tp.pinned if t == "dram"]
        p.accel_ids = np.unique(np.concatenate(accel)) if accel else np.zeros(0, np.int64)
        cached_ids = np.concatenate(cached) if cached else np.zeros(0, np.int64)
        counts = h.counts[np.searchsorted(h.ids, cached_ids)] if cached_ids.size else np.zeros(0)
        p.static_hot_ids = cached_ids[np.lexsort((cached_ids, -counts))]   # hottest first: a smaller cache keeps the head
        occupancy[i] = cached_ids.size * s.row_bytes
        beyond[i] = tp.lookups_by_tier.get("dram", 0.0) + tp.lookups_by_tier.get("scm", 0.0)
    share = split_cache_budget(dram_cache_bytes, occupancy, beyond, np.array([float(s.size_bytes) for s in specs]))
    for s, b in zip(specs, share):
        out[s.name].dram_cache_bytes = int(b)


def placement_from_plan(plan, specs: list[TableSpec]) -> dict[str, TablePlacement]:
    """Read a `sdm.placement.plan.Plan`, a path to one, or a dict
    {"dram_cache_bytes": int, "policy": str, "tables": {name: {"accel_rows": ids, "dram_cache_bytes": int,
    "dram_rows": ids, "policy": str}}}."""
    if isinstance(plan, (str, Path)):
        from sdm.placement.plan import Plan

        plan = Plan.load(plan)
    out = {}
    if isinstance(plan, dict):
        tables = plan.get("tables", {})
        unknown = sorted(set(tables) - {s.name for s in specs})
        if unknown:  # a misspelt name would otherwise leave that table unplaced without a word
            raise InvalidInputError(f"plan names unknown tables {unknown[:10]}")
        total = plan.get("dram_cache_bytes")
        if total is not None:
            total = whole_number(total, "plan dram_cache_bytes")
        for s in specs:
            d = tables.get(s.name, {})
            share = d.get("dram_cache_bytes")
            if share is None and total is not None:
                share = int(total * s.size_bytes / sum(x.size_bytes for x in specs))
            what = f"plan table {s.name!r}:"
            out[s.name] = TablePlacement(
                accel_ids=np.unique(integer_array(d.get("accel_rows", []), f"{what} accel_rows")),
                dram_pinned_ids=np.unique(integer_array(d.get("dram_rows", []), f"{what} dram_rows")),
                dram_cache_bytes=whole_number(share or 0, f"{what} dram_cache_bytes"),
                policy=d.get("policy", plan.get("policy", "lru")),
                row_order=None if d.get("row_order") is None else integer_array(d["row_order"], f"{what} row_order"),
            )
        return out
    for s in specs:
        tp = plan.table(s.name) if hasattr(plan, "table") else plan.tables[s.name]
        if getattr(tp, "num_rows", s.num_rows) != s.num_rows or getattr(tp, "dim", s.dim) != s.dim:
            raise InvalidInputError(
                f"plan table {s.name!r} is {tp.num_rows} x {tp.dim}, store table is {s.num_rows} x {s.dim}"
            )
        accel = [p.rows.to_ids() for p in tp.placements if p.tier in _ACCEL_TIERS]
        dram = [p.rows.to_ids() for p in tp.placements if p.tier == "dram"]
        out[s.name] = TablePlacement(
            accel_ids=np.unique(np.concatenate(accel)) if accel else np.zeros(0, np.int64),
            dram_pinned_ids=np.unique(np.concatenate(dram)) if dram else np.zeros(0, np.int64),
            dram_cache_bytes=int(tp.dram_cache_bytes),
            policy=getattr(tp, "dram_cache_policy", "lru"),
            row_order=None if tp.row_order is None else np.asarray(tp.row_order, np.int64),
        )
    return out


def check_placement(p: TablePlacement, spec: TableSpec) -> None:
    """Raise InvalidInputError naming the table and the first bad id when `p` does not fit `spec`."""
    for what, ids in (("accel", p.accel_ids), ("DRAM-pinned", p.dram_pinned_ids)):
        bad = (ids < 0) | (ids >= spec.num_rows)
        if bad.any():
            raise InvalidInputError(
                f"table {spec.name!r}: {what} row id {int(ids[bad][0])} is outside [0, {spec.num_rows})")
    if p.dram_cache_bytes < 0:
        raise InvalidInputError(f"table {spec.name!r}: dram_cache_bytes must be >= 0, got {p.dram_cache_bytes}")
    if p.row_order is not None and (
        len(p.row_order) != spec.num_rows or not np.array_equal(np.sort(p.row_order), np.arange(spec.num_rows))
    ):
        raise InvalidInputError(f"table {spec.name!r}: row_order must be a permutation of {spec.num_rows} rows")
