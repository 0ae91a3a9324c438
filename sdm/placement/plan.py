"""The plan file: which rows of which table live in which tier and card, as a person-readable JSON.

Layout on disk:
    plan.json            version, model, hardware, objective, per-table placement and predictions
    plan.rows/           (only when needed) .npy files for row sets too scattered to list as ranges,
                         and page layouts (row order of the SCM copy)
A row set is written inline as half-open ranges `[[start, stop], ...]` when that is short
(<= INLINE_RANGES ranges), else as a sorted id array or a ranges array in `plan.rows/`.

The SCM tier holds every row (the backing copy); `placements` lists the copies pinned in faster
tiers. `tier_of(table, ids)` answers "where is this row served from" in one vectorized call.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sdm.core.atomic_file import read_json, write_json
from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.core.checks import integer_array
from sdm.placement.types import TIER_ORDER

PLAN_FORMAT = "sdm-plan"
PLAN_VERSION = 1
INLINE_RANGES = 64


@dataclass
class RowSet:
    """A set of row ids, kept either as sorted unique `ids` or as half-open `ranges` [k, 2]."""

    ids: np.ndarray | None = None
    ranges: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.ids is None) == (self.ranges is None):
            raise InvalidInputError("RowSet needs exactly one of ids or ranges")
        if self.ids is not None:
            self.ids = integer_array(self.ids, "RowSet ids")
        else:
            self.ranges = integer_array(self.ranges, "RowSet ranges").reshape(-1, 2)

    @classmethod
    def empty(cls) -> "RowSet":
        return cls(ranges=np.zeros((0, 2), np.int64))

    @classmethod
    def from_ids(cls, ids: np.ndarray, assume_sorted: bool = False) -> "RowSet":
        """Sorted unique ids; stored as ranges when that is smaller."""
        ids = integer_array(ids, "RowSet.from_ids: row ids")
        if not assume_sorted:
            ids = np.unique(ids)
        if ids.size == 0:
            return cls.empty()
        breaks = np.flatnonzero(np.diff(ids) != 1) + 1
        if 2 * (breaks.size + 1) < ids.size:
            starts = ids[np.r_[0, breaks]]
            stops = ids[np.r_[breaks - 1, ids.size - 1]] + 1
            return cls(ranges=np.stack([starts, stops], axis=1))
        return cls(ids=ids)

    @property
    def count(self) -> int:
        if self.ids is not None:
            return int(self.ids.size)
        return int((self.ranges[:, 1] - self.ranges[:, 0]).sum())

    def to_ids(self) -> np.ndarray:
        if self.ids is not None:
            return self.ids
        r = self.ranges
        if r.size == 0:
            return np.zeros(0, np.int64)
        lengths = r[:, 1] - r[:, 0]
        # run-length expansion without a Python loop: starts repeated, plus offset within run
        offs = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return np.repeat(r[:, 0], lengths) + offs

    def slice(self, a: int, b: int) -> "RowSet":
        """Rows at positions [a, b) of the set in id order (no expansion of ranges)."""
        if self.ids is not None:
            return RowSet(ids=self.ids[a:b])
        r = self.ranges
        lengths = r[:, 1] - r[:, 0]
        cum = np.cumsum(lengths)
        a, b = max(int(a), 0), min(int(b), int(cum[-1]) if cum.size else 0)
        if b <= a:
            return RowSet.empty()
        first = int(np.searchsorted(cum, a, side="right"))
        last = int(np.searchsorted(cum, b, side="left"))
        out = r[first:last + 1].copy()
        out[0, 0] += a - (cum[first] - lengths[first])
        out[-1, 1] -= cum[last] - b
        return RowSet(ranges=out)

    def contains(self, row_ids: np.ndarray) -> np.ndarray:
        row_ids = integer_array(row_ids, "RowSet.contains: row ids")
        if self.ids is not None:
            if self.ids.size == 0:
                return np.zeros(row_ids.shape, bool)
            pos = np.minimum(np.searchsorted(self.ids, row_ids), self.ids.size - 1)
            return self.ids[pos] == row_ids
        if self.ranges.size == 0:
            return np.zeros(row_ids.shape, bool)
        k = np.searchsorted(self.ranges[:, 0], row_ids, side="right") - 1
        ok = k >= 0
        kk = np.maximum(k, 0)
        return ok & (row_ids < self.ranges[kk, 1])

    def to_json(self, side_dir: Path, stem: str) -> dict:
        if self.ranges is not None and len(self.ranges) <= INLINE_RANGES:
            return {"count": self.count, "ranges": self.ranges.tolist()}
        side_dir.mkdir(parents=True, exist_ok=True)
        if self.ranges is not None:
            np.save(side_dir / f"{stem}.ranges.npy", self.ranges)
            return {"count": self.count, "ranges_file": f"{side_dir.name}/{stem}.ranges.npy"}
        np.save(side_dir / f"{stem}.ids.npy", self.ids)
        return {"count": self.count, "ids_file": f"{side_dir.name}/{stem}.ids.npy"}

    @classmethod
    def from_json(cls, d: dict, base: Path, where: str) -> "RowSet":
        try:
            if "ranges" in d:
                rs = cls(ranges=np.asarray(d["ranges"], np.int64).reshape(-1, 2))
            elif "ranges_file" in d:
                rs = cls(ranges=np.load(base / d["ranges_file"]))
            elif "ids_file" in d:
                rs = cls(ids=np.load(base / d["ids_file"]))
            else:
                raise InvalidInputError(f"{where}: row set has none of ranges, ranges_file, ids_file")
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"{where}: cannot read row set: {exc}") from None
        if "count" in d and rs.count != int(d["count"]):
            raise InvalidInputError(f"{where}: row set holds {rs.count} rows, file says {d['count']}")
        return rs


@dataclass
class TierPlacement:
    tier: str                 # "sram" | "lpddr" | "dram"
    card: int | None          # card index for accelerator tiers
    rows: RowSet


@dataclass
class TablePlan:
    name: str
    num_rows: int
    dim: int
    row_format: str
    row_bytes: int
    placements: list[TierPlacement] = field(default_factory=list)
    dram_cache_bytes: int = 0           # this table's share of the host DRAM cache (in front of SCM)
    dram_cache_policy: str = "lru"
    page_layout: str = "id-order"       # or "co-access"
    row_order: np.ndarray | None = None  # row_order[slot] = row stored in SCM slot (None: id order)
    predicted_hit_rate: dict = field(default_factory=dict)   # tier -> share of this table's lookups
    explain: dict = field(default_factory=dict)              # densities, thresholds, capacities
    backing_tier: str = "scm"           # serves every row not pinned above ("dram" without SCM)

    def rows_in(self, tier: str) -> int:
        return sum(p.rows.count for p in self.placements if p.tier == tier)

    def tier_of(self, row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tier index into TIER_ORDER, card or -1) for each row id; unpinned rows are "scm"."""
        row_ids = integer_array(row_ids, f"table {self.name!r}: tier_of row ids")
        tier = np.full(row_ids.shape, TIER_ORDER.index("scm"), np.int8)
        card = np.full(row_ids.shape, -1, np.int16)
        for p in self.placements:
            m = p.rows.contains(row_ids)
            tier[m] = TIER_ORDER.index(p.tier)
            card[m] = -1 if p.card is None else p.card
        return tier, card


@dataclass
class Plan:
    model: str
    hardware: str
    objective: str
    policy: str
    tables: dict[str, TablePlan]
    summary: dict = field(default_factory=dict)     # predicted latency, qps, watts, $, hit rates
    tiers: list[dict] = field(default_factory=list)  # tier capacities and models used
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    version: int = PLAN_VERSION

    def table(self, name: str) -> TablePlan:
        try:
            return self.tables[name]
        except KeyError:
            raise InvalidInputError(
                f"plan has no table {name!r}; tables: {', '.join(list(self.tables)[:10])}"
                + (" ..." if len(self.tables) > 10 else "")) from None

    # ---- file format -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        if not path.parent.is_dir():       # before any row file: a bad path writes nothing
            raise InvalidInputError(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
        side = path.with_suffix(".rows")
        if side.is_dir():                  # a plan saved here before: drop its row files
            for f in side.glob("*.npy"):
                f.unlink()
        tables = {}
        for i, (name, tp) in enumerate(self.tables.items()):
            stem = f"{i:05d}"
            d = {
                "num_rows": tp.num_rows, "dim": tp.dim, "row_format": tp.row_format,
                "row_bytes": tp.row_bytes,
                "placements": [{"tier": p.tier, "card": p.card,
                                "rows": p.rows.to_json(side, f"{stem}.{j}.{p.tier}.{p.card}")}
                               for j, p in enumerate(tp.placements)],
                "backing_tier": tp.backing_tier,
                "dram_cache": {"bytes": int(tp.dram_cache_bytes), "policy": tp.dram_cache_policy},
                "page_layout": {"kind": tp.page_layout},
                "predicted_hit_rate": tp.predicted_hit_rate,
                "explain": tp.explain,
            }
            if tp.row_order is not None:
                side.mkdir(parents=True, exist_ok=True)
                np.save(side / f"{stem}.row_order.npy", np.asarray(tp.row_order, np.int64))
                d["page_layout"]["row_order_file"] = f"{side.name}/{stem}.row_order.npy"
            tables[name] = d
        doc = {"format": PLAN_FORMAT, "version": self.version, "created": self.created, "model": self.model,
               "hardware": self.hardware, "objective": self.objective, "policy": self.policy,
               "summary": self.summary, "tiers": self.tiers, "tables": tables,
               # the plan is this file plus, when named here, this folder beside it: keep them together
               "companion_folder": side.name if side.is_dir() and any(side.iterdir()) else None}
        return write_json(path, doc, indent=1, default=_json_default)   # a reader never sees half a plan

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Plan":
        path = Path(path)
        doc = read_json(path, kind="plan file", file_format=PLAN_FORMAT, version=PLAN_VERSION)
        base = path.parent
        tables = {}
        missing = [k for k in ("tables", "model", "hardware", "objective", "policy") if k not in doc]
        if missing or not isinstance(doc["tables"], dict):
            raise StoreFormatError(f"plan {str(path)!r}: " + (f"missing field(s) {missing}" if missing
                                                              else "'tables' is not an object"))
        for name, d in doc["tables"].items():
            where = f"plan {str(path)!r} table {name!r}"
            try:
                tp = TablePlan(name, int(d["num_rows"]), int(d["dim"]), d["row_format"], int(d["row_bytes"]),
                               dram_cache_bytes=int(d["dram_cache"]["bytes"]),
                               dram_cache_policy=d["dram_cache"]["policy"],
                               page_layout=d["page_layout"]["kind"],
                               predicted_hit_rate=d.get("predicted_hit_rate", {}), explain=d.get("explain", {}),
                               backing_tier=d.get("backing_tier", "scm"))
                for p in d["placements"]:
                    if p["tier"] not in TIER_ORDER:
                        raise InvalidInputError(f"{where}: unknown tier {p['tier']!r}")
                    tp.placements.append(TierPlacement(p["tier"], p["card"], RowSet.from_json(p["rows"], base, where)))
                if "row_order_file" in d["page_layout"]:
                    tp.row_order = np.load(base / d["page_layout"]["row_order_file"])
                    if tp.row_order.size != tp.num_rows:
                        raise InvalidInputError(f"{where}: row order has {tp.row_order.size} rows, table has {tp.num_rows}")
            except (KeyError, TypeError, AttributeError) as exc:
                raise StoreFormatError(f"{where}: missing or bad field {exc}") from None
            except OSError as exc:
                raise InvalidInputError(f"{where}: {exc}") from None
            tables[name] = tp
        return cls(doc["model"], doc["hardware"], doc["objective"], doc["policy"], tables,
                   doc.get("summary", {}), doc.get("tiers", []), doc.get("created", ""), doc["version"])


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} to a plan file")
