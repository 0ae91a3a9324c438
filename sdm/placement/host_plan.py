"""A multi-host plan: one file, one section per host; each rank opens its own part.

    hp = plan_hosts(tables, "host-nand", hosts=2, hotness=hot)     # hotness optional
    hp.save("model.hosts.json")        # sections inline; per-host Plans beside it (model.hosts/host<k>.json)
    sec = HostPlan.load("model.hosts.json", host=rank).section(rank)
    sec.specs()    # the TableSpecs of this host's store (whole tables or `table@a:b` column slices)
    sec.plan       # this host's sdm.Plan (tiers within its own DRAM, cards and SCM), or None

The host assignment is `sdm.placement.hosts.assign_hosts`; with `hotness` (TableHotness per table)
each host's section also gets a Plan from the ordinary planner run on that host's shards and
hardware alone, so a host's DRAM, SCM and cards bound what it pins and caches. The file is written
atomically (sdm.core.atomic_file) after the per-host plans it names, so a reader never sees a
section whose plan is missing.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from sdm.core.atomic_file import read_json, write_json
from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.core.spec import TableSpec
from sdm.core.text_table import text_table
from sdm.placement.hosts import HostAssignment, HostShard, assign_hosts
from sdm.placement.plan import Plan

__all__ = ["HostPlan", "HostSection", "plan_hosts", "format_host_plan", "HOST_PLAN_FORMAT", "HOST_PLAN_VERSION"]

HOST_PLAN_FORMAT = "sdm-host-plan"
HOST_PLAN_VERSION = 1


@dataclass
class HostSection:
    host: int
    hardware: str
    shards: list[HostShard]
    capacity_bytes: int = 0
    plan: Plan | None = None

    def specs(self) -> list[TableSpec]:
        return [s.spec() for s in self.shards]

    @property
    def size_bytes(self) -> int:
        return sum(s.size_bytes for s in self.shards)


@dataclass
class HostPlan:
    """Sections by host; `tables` records the whole model (name -> num_rows, dim, row_format)."""

    model: str
    tables: dict[str, dict]
    sections: list[HostSection]
    sharding: str = "auto"
    version: int = HOST_PLAN_VERSION
    summary: dict = field(default_factory=dict)

    @property
    def num_hosts(self) -> int:
        return len(self.sections)

    def section(self, host: int) -> HostSection:
        if not isinstance(host, int) or not 0 <= host < len(self.sections):
            raise InvalidInputError(f"host plan has hosts 0..{len(self.sections) - 1}, not {host!r}")
        return self.sections[host]

    def shards(self) -> list[HostShard]:
        return [s for sec in self.sections for s in sec.shards]

    def check(self) -> None:
        """Every column of every table is served by exactly one shard (the shares add up to the model)."""
        for name, t in self.tables.items():
            cuts = sorted((s.col_start, s.col_stop) for s in self.shards() if s.table == name)
            edge = 0
            for a, b in cuts:
                if a != edge:
                    raise StoreFormatError(f"host plan: table {name!r} columns {edge}:{a} are "
                                           f"{'served twice' if a < edge else 'served by no host'}")
                edge = b
            if edge != t["dim"]:
                raise StoreFormatError(f"host plan: table {name!r} columns {edge}:{t['dim']} are served by no host")
        extra = {s.table for s in self.shards()} - set(self.tables)
        if extra:
            raise StoreFormatError(f"host plan: shards of unknown tables {sorted(extra)[:5]}")

    # ---- file format -------------------------------------------------------------------------
    def save(self, path) -> Path:
        path = Path(path)
        if not path.parent.is_dir():
            raise InvalidInputError(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
        self.check()
        side = path.with_suffix(".hosts")
        sections = []
        for sec in self.sections:
            d = {"host": sec.host, "hardware": sec.hardware, "capacity_bytes": sec.capacity_bytes,
                 "size_bytes": sec.size_bytes, "shards": [s.to_json() for s in sec.shards]}
            if sec.plan is not None:
                side.mkdir(exist_ok=True)
                sec.plan.save(side / f"host{sec.host}.json")
                d["plan_file"] = f"{side.name}/host{sec.host}.json"
            sections.append(d)
        doc = {"format": HOST_PLAN_FORMAT, "version": self.version, "model": self.model, "sharding": self.sharding,
               "tables": self.tables, "summary": self.summary, "sections": sections}
        return write_json(path, doc, indent=1)

    @classmethod
    def load(cls, path, *, host: int | None = None) -> "HostPlan":
        """The plan at `path`; per-host Plans are read for `host` only (all when host is None)."""
        path = Path(path)
        doc = read_json(path, kind="host plan", file_format=HOST_PLAN_FORMAT, version=HOST_PLAN_VERSION)
        try:
            sections = []
            for d in doc["sections"]:
                sec = HostSection(int(d["host"]), str(d["hardware"]), [HostShard.from_json(s) for s in d["shards"]],
                                  int(d.get("capacity_bytes", 0)))
                if "plan_file" in d and (host is None or host == sec.host):
                    sec.plan = Plan.load(path.parent / d["plan_file"])
                sections.append(sec)
            hp = cls(str(doc["model"]), {k: dict(v) for k, v in doc["tables"].items()}, sections,
                     str(doc.get("sharding", "auto")), int(doc["version"]), dict(doc.get("summary", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreFormatError(f"host plan {str(path)!r}: missing or bad field {exc}") from None
        if [s.host for s in hp.sections] != list(range(len(hp.sections))):
            raise StoreFormatError(f"host plan {str(path)!r}: sections are not hosts 0..{len(hp.sections) - 1}")
        hp.check()
        return hp


def _shard_hotness(hotness: Mapping[str, object], shards: Sequence[HostShard]) -> list:
    # a column slice is read whenever its table is: the same row counts, under the slice's name
    return [dataclasses.replace(hotness[s.table], name=s.name) for s in shards]


def plan_hosts(tables: Sequence[TableSpec], hardware="host-nand", hosts: int = 2, *,
               hotness: Sequence | None = None, lookups: Mapping[str, float] | None = None,
               sharding: str = "auto", opts=None, model_name: str = "model") -> HostPlan:
    """`assign_hosts`, then (with `hotness`: one TableHotness per table, in any order) the planner
    on each host's shards and hardware. Lookups default to the hotness totals when it is given."""
    specs = list(tables)
    hot = None
    if hotness is not None:
        hot = {h.name: h for h in hotness}
        missing = [s.name for s in specs if s.name not in hot]
        if missing:
            raise InvalidInputError(f"hotness missing for tables {missing[:5]}")
        if lookups is None:
            lookups = {n: float(h.counts.sum() + h.tail_lookups) for n, h in hot.items() if n in {s.name for s in specs}}
    a: HostAssignment = assign_hosts(specs, hardware, hosts, lookups=lookups, sharding=sharding,
                                     dram_usable_fraction=getattr(opts, "dram_usable_fraction", None))
    sections = []
    for h in range(a.num_hosts):
        hw = a.hardware[h]
        sec = HostSection(h, getattr(hw, "name", str(hw)), a.shards_of(h), a.capacity_bytes[h])
        if hot is not None and sec.shards:
            from sdm.placement.planner import plan_model

            sec.plan = plan_model(sec.specs(), _shard_hotness(hot, sec.shards), hw, opts,
                                  model_name=f"{model_name}/host{h}").plan
        sections.append(sec)
    model = {s.name: {"num_rows": s.num_rows, "dim": s.dim, "row_format": s.row_format} for s in specs}
    summary = {"hosts": a.rows(), "model_bytes": sum(s.size_bytes for s in specs)}
    return HostPlan(model_name, model, sections, sharding, summary=summary)


def format_host_plan(hp: HostPlan) -> str:
    """Per host: hardware, shards (whole tables or `table@a:b` column slices), bytes and shares, and
    the predicted latency of its own plan where it has one."""
    total_b = max(1, sum(sec.size_bytes for sec in hp.sections))
    lookups = [sum(s.lookups for s in sec.shards) for sec in hp.sections]
    total_l = sum(lookups) or 1.0
    rows = []
    for sec, lk in zip(hp.sections, lookups):
        names = ",".join(s.name for s in sec.shards)
        lat = sec.plan.summary.get("latency_s") if sec.plan is not None else None
        rows.append([sec.host, sec.hardware, len(sec.shards), names if len(names) <= 48 else names[:45] + "...",
                     sec.size_bytes, f"{sec.size_bytes / total_b:.3f}", f"{lk / total_l:.3f}", sec.capacity_bytes,
                     "" if lat is None else f"{float(lat):.3g}"])
    head = f"host plan {hp.model!r}: {hp.num_hosts} hosts, sharding {hp.sharding}, {total_b} bytes of rows"
    return head + "\n" + text_table(["host", "hardware", "shards", "tables", "bytes", "bytes_share", "lookups_share",
                                     "capacity_bytes", "latency_s"], rows)
