"""Which host serves which table, or which column slice of a table.

    a = assign_hosts(tables, "host-nand", hosts=2, lookups={"t0": 3.0e6, ...})
    a.shards_of(0)        # HostShard list for host 0: whole tables or column slices
    hosts_needed(tables, "host-3dxp")   # the fewest hosts whose SCM holds the model

A host is one HardwareSpec (its SCM holds every row it serves, or its DRAM when it has no SCM).
Shards are placed largest load first on the host with the least load so far that still has room
(longest-processing-time greedy: within 4/3 of the best balance for the load term); the load of a
shard is its share of the model's lookups plus its share of the model's bytes, so a host is not
given all the hot small tables or all the cold big ones. A table is cut into column slices only
when it must be (sharding="auto": it is bigger than one host, or carries more than one host's even
share of the load) or when asked (sharding="column"). Column slices keep every row, so each slice
sees every lookup of its table: they split bytes and bandwidth, not lookups; the lookup term of a
slice is its table's lookups times its share of the columns (the pooled bytes it returns).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from sdm.core.checks import whole_number
from sdm.core.errors import InfeasibleError, InvalidInputError
from sdm.core.spec import TableSpec, row_bytes

__all__ = ["HostShard", "HostAssignment", "assign_hosts", "hosts_needed", "hosts_per_hardware",
           "host_capacity_bytes", "shard_name", "SHARDINGS"]

SHARDINGS = ("auto", "table", "column")


def shard_name(table: str, col_start: int, col_stop: int, dim: int) -> str:
    """The table's own name when the shard is the whole table, else `table@start:stop`."""
    return table if (col_start, col_stop) == (0, dim) else f"{table}@{col_start}:{col_stop}"


@dataclass(frozen=True)
class HostShard:
    """Columns [col_start, col_stop) of every row of `table`, served by `host`."""

    table: str
    host: int
    col_start: int
    col_stop: int
    table_dim: int
    num_rows: int
    row_format: str = "fp32"
    pooling_factor: float = 1.0
    lookups: float = 0.0          # expected lookups of the table (every slice sees all of them)

    @property
    def dim(self) -> int:
        return self.col_stop - self.col_start

    @property
    def whole(self) -> bool:
        return self.dim == self.table_dim

    @property
    def name(self) -> str:
        """Its table name in the host's EmbeddingStore."""
        return shard_name(self.table, self.col_start, self.col_stop, self.table_dim)

    @property
    def size_bytes(self) -> int:
        return self.num_rows * row_bytes(self.dim, self.row_format)

    def spec(self) -> TableSpec:
        return TableSpec(self.name, self.num_rows, self.dim, self.row_format, self.pooling_factor)

    def to_json(self) -> dict:
        return {"table": self.table, "host": self.host, "col_start": self.col_start, "col_stop": self.col_stop,
                "table_dim": self.table_dim, "num_rows": self.num_rows, "row_format": self.row_format,
                "pooling_factor": self.pooling_factor, "lookups": self.lookups}

    @classmethod
    def from_json(cls, d: Mapping) -> "HostShard":
        return cls(str(d["table"]), int(d["host"]), int(d["col_start"]), int(d["col_stop"]), int(d["table_dim"]),
                   int(d["num_rows"]), str(d["row_format"]), float(d["pooling_factor"]), float(d["lookups"]))


@dataclass
class HostAssignment:
    """Every shard of the model and the host it is on; `hardware[h]` is host h's HardwareSpec."""

    hardware: list
    shards: list[HostShard]
    sharding: str = "auto"
    capacity_bytes: list[int] = field(default_factory=list)

    @property
    def num_hosts(self) -> int:
        return len(self.hardware)

    def shards_of(self, host: int) -> list[HostShard]:
        return [s for s in self.shards if s.host == host]

    def bytes_per_host(self) -> list[int]:
        return [sum(s.size_bytes for s in self.shards_of(h)) for h in range(self.num_hosts)]

    def lookups_per_host(self) -> list[float]:
        """Expected lookups each host serves (a column slice serves all of its table's)."""
        return [sum(s.lookups for s in self.shards_of(h)) for h in range(self.num_hosts)]

    def pooled_bytes_per_lookup_host(self) -> list[float]:
        """Pooled bytes each host returns per bag of every table (its share of the output)."""
        return [float(sum(row_bytes(s.dim, "fp32") for s in self.shards_of(h))) for h in range(self.num_hosts)]

    def rows(self) -> list[dict]:
        """One row per host for a text table: shards, bytes, share of bytes and of lookups."""
        total_b = max(1, sum(self.bytes_per_host()))
        total_l = sum(self.lookups_per_host()) or 1.0
        out = []
        for h, (b, lk) in enumerate(zip(self.bytes_per_host(), self.lookups_per_host())):
            out.append({"host": h, "hardware": getattr(self.hardware[h], "name", str(self.hardware[h])),
                        "shards": len(self.shards_of(h)), "bytes": b, "bytes_share": round(b / total_b, 4),
                        "capacity_bytes": self.capacity_bytes[h] if self.capacity_bytes else None,
                        "lookups_share": round(lk / total_l, 4)})
        return out


def host_capacity_bytes(hw, dram_usable_fraction: float | None = None) -> int:
    """Bytes of rows one host can hold: its SCM, or without SCM the share of its DRAM the planner
    gives embedding rows (`PlanOptions.dram_usable_fraction`, 0.85 by default), as the fleet counts it."""
    scm = int(getattr(hw, "scm_capacity_bytes", 0) or 0)
    if scm > 0:
        return scm
    if dram_usable_fraction is None:
        from sdm.placement.options import PlanOptions

        dram_usable_fraction = PlanOptions().dram_usable_fraction
    return int(hw.dram_capacity_bytes * dram_usable_fraction)


def _resolve(hardware, hosts: int) -> list:
    from sdm.hardware.server import hardware as preset

    items = list(hardware) if isinstance(hardware, (list, tuple)) else [hardware] * hosts
    if len(items) != hosts:
        raise InvalidInputError(f"{len(items)} hardware specs given for {hosts} hosts")
    return [preset(h) if isinstance(h, str) else h for h in items]


def _table_lookups(specs: Sequence[TableSpec], lookups: Mapping[str, float] | None) -> np.ndarray:
    if lookups is None:      # no trace: the declared pooling factor is the relative lookup rate
        return np.array([float(s.pooling_factor) for s in specs])
    unknown = set(lookups) - {s.name for s in specs}
    if unknown:
        raise InvalidInputError(f"lookups given for unknown tables {sorted(unknown)[:5]}")
    out = np.array([float(lookups.get(s.name, 0.0)) for s in specs])
    if not np.all(np.isfinite(out)) or np.any(out < 0):
        raise InvalidInputError("lookups per table must be finite and >= 0")
    return out


def _column_cuts(dim: int, k: int) -> list[tuple[int, int]]:
    """k slices of near-equal width (the first dim % k of them one column wider)."""
    edges = np.concatenate([[0], np.cumsum([dim // k + (i < dim % k) for i in range(k)])]).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _slices_for(spec: TableSpec, load: float, fair_load: float, capacity: int, hosts: int, sharding: str) -> int:
    if sharding == "table":
        return 1
    if sharding == "column":
        return min(hosts, spec.dim)
    k = max(math.ceil(spec.size_bytes / max(1, capacity)), math.ceil(load / fair_load - 1e-9) if fair_load > 0 else 1)
    return max(1, min(k, hosts, spec.dim))


def assign_hosts(tables: Sequence[TableSpec], hardware="host-nand", hosts: int = 2, *,
                 lookups: Mapping[str, float] | None = None, sharding: str = "auto",
                 dram_usable_fraction: float | None = None) -> HostAssignment:
    """Tables (or column slices of them) to `hosts` hosts, balanced by lookups and bytes.

    hardware: one preset name / HardwareSpec for every host, or a list with one per host.
    lookups: expected lookups per table (e.g. from a profile); default: each table's pooling factor.
    sharding: "auto" (cut a table into column slices only when it needs more than one host),
    "table" (whole tables only), "column" (every table cut across all hosts).
    Raises InfeasibleError when the shards do not fit the hosts' capacity."""
    hosts = whole_number(hosts, "hosts", minimum=1)
    if sharding not in SHARDINGS:
        raise InvalidInputError(f"sharding must be one of {SHARDINGS}, not {sharding!r}")
    specs = list(tables)
    if not specs:
        raise InvalidInputError("assign_hosts needs at least one table")
    if len({s.name for s in specs}) != len(specs):
        raise InvalidInputError("duplicate table names")
    hws = _resolve(hardware, hosts)
    caps = [host_capacity_bytes(h, dram_usable_fraction) for h in hws]
    lk = _table_lookups(specs, lookups)
    total_b = float(sum(s.size_bytes for s in specs)) or 1.0
    total_l = float(lk.sum()) or 1.0
    load = lk / total_l + np.array([s.size_bytes for s in specs]) / total_b   # sums to 2 over the model
    pieces = []    # (load, bytes, spec index, col_start, col_stop)
    for i, s in enumerate(specs):
        k = _slices_for(s, float(load[i]), 2.0 / hosts, max(caps), hosts, sharding)
        if k > 1 and s.row_format == "int8":
            raise InfeasibleError(f"table {s.name!r}: int8 rows carry one scale per row and cannot be cut "
                                  f"into column slices; give it a host of its own or store it as fp16/fp32")
        for a, b in _column_cuts(s.dim, k):
            share = (b - a) / s.dim
            pieces.append((float(load[i]) * share, s.num_rows * row_bytes(b - a, s.row_format), i, a, b))
    pieces.sort(key=lambda p: (-p[0], -p[1], p[2], p[3]))
    used_b = [0] * hosts
    used_load = [0.0] * hosts
    holds: list[set[int]] = [set() for _ in range(hosts)]
    shards = []
    for pl, nbytes, i, a, b in pieces:
        fits = [h for h in range(hosts) if used_b[h] + nbytes <= caps[h]]
        if not fits:
            raise InfeasibleError(
                f"table {specs[i].name!r} columns {a}:{b} ({nbytes} bytes) fit on none of {hosts} hosts "
                f"(free bytes per host: {[c - u for c, u in zip(caps, used_b)]}); use more hosts")
        apart = [h for h in fits if i not in holds[h]] or fits   # slices of one table on different hosts
        h = min(apart, key=lambda j: (used_load[j], used_b[j], j))
        used_b[h] += nbytes
        used_load[h] += pl
        holds[h].add(i)
        s = specs[i]
        shards.append(HostShard(s.name, h, a, b, s.dim, s.num_rows, s.row_format, s.pooling_factor, float(lk[i])))
    order = {s.name: i for i, s in enumerate(specs)}
    shards.sort(key=lambda s: (order[s.table], s.col_start))
    return HostAssignment(hws, shards, sharding, caps)


def hosts_needed(tables: Sequence[TableSpec], hardware="host-nand", *, lookups: Mapping[str, float] | None = None,
                 sharding: str = "auto", max_hosts: int = 4096, dram_usable_fraction: float | None = None) -> int:
    """The fewest hosts of one hardware type that hold the model (`assign_hosts` succeeds)."""
    specs = list(tables)
    hw = _resolve(hardware, 1)[0]
    cap = host_capacity_bytes(hw, dram_usable_fraction)
    for s in specs:
        if s.row_format == "int8" and s.size_bytes > cap:
            raise InfeasibleError(f"int8 table {s.name!r} ({s.size_bytes} bytes) is bigger than one "
                                  f"{getattr(hw, 'name', hw)} host and cannot be cut into column slices")
    lower = max(1, math.ceil(sum(s.size_bytes for s in specs) / max(1, cap)))
    for n in range(lower, max_hosts + 1):
        try:
            assign_hosts(specs, hw, n, lookups=lookups, sharding=sharding, dram_usable_fraction=dram_usable_fraction)
            return n
        except InfeasibleError:
            continue
    raise InfeasibleError(f"the model does not fit on {max_hosts} hosts of {getattr(hw, 'name', hw)}")


def hosts_per_hardware(tables: Sequence[TableSpec], hardware: Sequence, *, lookups: Mapping[str, float] | None = None,
                       sharding: str = "auto", dram_usable_fraction: float | None = None) -> list[dict]:
    """One row per hardware type (preset name or HardwareSpec): the hosts it takes to hold the model
    and the capacity of one host; `hosts` is None (with `error`) where no count fits."""
    specs = list(tables)
    model_bytes = sum(s.size_bytes for s in specs)
    rows = []
    for hw in _resolve(list(hardware), len(hardware)):
        row = {"hardware": getattr(hw, "name", str(hw)),
               "host_capacity_bytes": host_capacity_bytes(hw, dram_usable_fraction), "model_bytes": model_bytes}
        try:
            row["hosts"] = hosts_needed(specs, hw, lookups=lookups, sharding=sharding,
                                        dram_usable_fraction=dram_usable_fraction)
        except InfeasibleError as exc:
            row["hosts"], row["error"] = None, str(exc)
        rows.append(row)
    return rows
