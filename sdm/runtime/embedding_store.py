"""sdm.EmbeddingStore: embedding tables served from accelerator memory, a DRAM cache and SCM pages.

    store = EmbeddingStore.create(path, tables, hardware="host-nand", weights=..., plan=None)
    pooled = store.lookup("t0", indices, offsets, per_sample_weights=None)   # == nn.EmbeddingBag
    model.emb_l = store.as_embedding_bags()
    store = sdm.wrap(model, path)                # swaps every nn.EmbeddingBag in a module tree

On disk (`path/`): `store.json` (format version, table specs and EmbeddingBag options, hardware,
placement), `placement/*.npy` (row sets), `scm/` (the page store holding every row, the backing
copy). Accelerator rows are loaded from SCM at open; the DRAM cache starts cold.

A lookup (per-batch code in sdm/runtime/store_table.py; this module owns the files and the public API):
validate (nothing changes on bad input) -> locate each index (accel, pinned DRAM, DRAM
cache) -> read the missing rows from SCM (one read per distinct page, at the configured queue
depth; outside any lock) -> insert them into the cache (rows of this batch protected) -> pool with
torch's own embedding_bag kernel over the gathered rows (bitwise equal to nn.EmbeddingBag for fp32).
When every index is already in the DRAM cache, pooling runs directly on the cache's slot tensor.

With a profile (docs/runtime.md, "SCM path"): SCM pages hold rows hottest first, only rows predicted
warm enter the cache (cold misses bypass), `warm()` preloads the hot set, page-granular admission can
cache the rows that share a fetched page, and rows the prefetcher read but the cache did not take
wait in a small staging buffer that the lookup path reads before going to SCM.
"""
from __future__ import annotations

import json
import shutil
import time
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from sdm.runtime import row_formats
from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.core.checks import whole_number
from sdm.runtime.pooling import validate
from sdm.core.spec import TableSpec
from sdm.runtime.store_placement import (
    TablePlacement,
    check_placement,
    default_placement,
    hot_orders,
    hotness_row_order,
    placement_from_plan,
)
from sdm.runtime.store_stats import StoreStats
from sdm.runtime.store_table import ADMISSION_MODES, PAGE_ADMIT_MODES, BagOptions, card_memory, StoreTable
from sdm.tiers.clock import Clock
from sdm.cache.dram_cache import DramCache

__all__ = ["BagOptions", "EmbeddingStore", "StoreEmbeddingBag", "wrap"]

STORE_VERSION = 1
# per-table id arrays kept under placement/ (row_order: the SCM page layout, to find a page's rows;
# hot_order: the profile's rows hottest first, for warm admission and warm-up)
_PLACEMENT_ARRAYS = ("accel_ids", "dram_pinned_ids", "static_hot_ids", "row_order", "hot_order")
META_FILE = "store.json"
LAYOUTS = ("auto", "id", "hot")
# Rows per chunk when writing weights: bounds memory for tables far larger than DRAM.
_WRITE_CHUNK_ROWS = 1 << 16


# ------------------------------------------------------------------------------------------------
def _resolve_hardware(hardware):
    """(HardwareSpec or None, name). A name needs sdm.hardware.server; without it, no device models."""
    if hardware is None:
        return None, None
    if isinstance(hardware, str):
        from sdm.hardware.server import hardware as preset

        return preset(hardware), hardware
    return hardware, getattr(hardware, "name", "custom")


def _weights_for(weights, spec: TableSpec, i: int):
    """Chunks of float rows for one table from the many forms `weights` may take."""
    if weights is None:
        # like nn.EmbeddingBag's reset_parameters scale, but seeded per table: reproducible, streamed
        gen = np.random.default_rng(zlib.crc32(spec.name.encode()))
        bound = np.sqrt(1.0 / spec.num_rows)
        for a in range(0, spec.num_rows, _WRITE_CHUNK_ROWS):
            b = min(a + _WRITE_CHUNK_ROWS, spec.num_rows)
            yield gen.uniform(-bound, bound, (b - a, spec.dim)).astype(np.float32)
        return
    if callable(weights):
        for a in range(0, spec.num_rows, _WRITE_CHUNK_ROWS):
            b = min(a + _WRITE_CHUNK_ROWS, spec.num_rows)
            yield np.asarray(weights(spec.name, a, b))
        return
    w = _table_weights(weights, spec, i)
    for a in range(0, spec.num_rows, _WRITE_CHUNK_ROWS):
        yield w[a : a + _WRITE_CHUNK_ROWS]


def _table_weights(weights, spec: TableSpec, i: int) -> np.ndarray:
    """One table's rows from a mapping or a list of arrays / tensors, shape-checked."""
    if isinstance(weights, Mapping):
        if spec.name not in weights:
            raise InvalidInputError(f"table {spec.name!r}: no weights given (weights has {sorted(weights)[:10]})")
        w = weights[spec.name]
    else:
        if i >= len(weights):
            raise InvalidInputError(f"table {spec.name!r}: no weights given (weights is a list of {len(weights)})")
        w = weights[i]
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu().numpy()
    w = np.asarray(w)
    if w.shape != (spec.num_rows, spec.dim):
        raise InvalidInputError(f"table {spec.name!r}: weights have shape {w.shape}, expected {(spec.num_rows, spec.dim)}")
    if not np.issubdtype(w.dtype, np.floating):
        raise InvalidInputError(f"table {spec.name!r}: weights must be floating point, got dtype {w.dtype}")
    return w


def _encoded_chunks(weights, spec: TableSpec, i: int):
    """Rows in id order, encoded; the page store lays them out by the plan's row_order itself."""
    for chunk in _weights_for(weights, spec, i):
        if chunk.ndim != 2 or chunk.shape[1] != spec.dim:
            raise InvalidInputError(f"table {spec.name!r}: weight chunk has shape {chunk.shape}, dim {spec.dim}")
        yield row_formats.encode(chunk, spec.row_format, table=spec.name)


# ------------------------------------------------------------------------------------------------
class EmbeddingStore:
    """Tiered embedding tables with exact nn.EmbeddingBag semantics (see module doc)."""

    def __init__(self):  # use create / open / from_embedding_bags
        raise TypeError("use EmbeddingStore.create(...), .open(...) or .from_embedding_bags(...)")

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path,
        tables: Iterable[TableSpec],
        hardware="host-nand",
        weights=None,
        plan=None,
        dram_cache_bytes: int | None = None,
        *,
        profile=None,
        policy: str = "lru",
        options: Mapping[str, BagOptions] | None = None,
        ways: int = 16,
        queue_depth: int = 32,
        page_bytes: int = 4096,
        inject: bool = False,
        accel_device: str | None = None,
        cache_layout: str = "auto",
        overwrite: bool = False,
        layout: str = "auto",
        admission: str = "auto",
        page_admit: str = "auto",
    ) -> "EmbeddingStore":
        """Write `tables` (weights: mapping name -> [rows, dim], list, callable(name, start, stop),
        or None for seeded random rows) to SCM under `path` and open the store.

        layout (SCM page order): "auto" = the plan's row_order if it has one, else hottest first
        when a profile is given, else id order; "hot" (needs a profile); "id".
        admission (DRAM cache, demand misses): "auto" = "warm" with a profile (only rows the profile
        predicts warm enter; one-off cold rows bypass), else "all".
        page_admit (rows sharing a fetched SCM page): "auto" = "warm" with a profile and admission
        "all", else "off"; "warm" = the page's rows predicted warm;
        "all" = every row of the page at low priority (fills empty / low-priority slots only)."""
        specs = list(tables)
        if not specs:
            raise InvalidInputError("create needs at least one table")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InvalidInputError(f"duplicate table names: {dup}")
        ways = whole_number(ways, "ways", minimum=1)
        queue_depth = whole_number(queue_depth, "queue_depth", minimum=1)
        page_bytes = whole_number(page_bytes, "page_bytes", minimum=1)
        if dram_cache_bytes is not None:
            dram_cache_bytes = whole_number(dram_cache_bytes, "dram_cache_bytes")
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise InvalidInputError(f"{path} is a file, not a directory for a store")
        existing = path.exists() and any(path.iterdir())
        if existing and not overwrite:
            raise InvalidInputError(f"{path} is not empty; pass overwrite=True to replace it")
        if layout not in LAYOUTS:
            raise InvalidInputError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        for what, mode, allowed in (("admission", admission, ADMISSION_MODES), ("page_admit", page_admit, PAGE_ADMIT_MODES)):
            if mode not in allowed:
                raise InvalidInputError(f"{what} must be one of {allowed}, got {mode!r}")
        if layout == "hot" and profile is None:
            raise InvalidInputError("layout='hot' needs a profile (create(..., profile=...))")
        hw, hw_name = _resolve_hardware(hardware)
        options = dict(options or {})
        for n in options:
            if n not in names:
                raise InvalidInputError(f"options given for unknown table {n!r}")
        total_bytes = sum(s.size_bytes for s in specs)
        if plan is not None:
            place = placement_from_plan(plan, specs)
            if dram_cache_bytes is not None:  # explicit budget wins: rescale the plan's split
                tot = sum(p.dram_cache_bytes for p in place.values()) or 1
                for p in place.values():
                    p.dram_cache_bytes = int(dram_cache_bytes * p.dram_cache_bytes / tot)
        else:
            if dram_cache_bytes is None:
                # half the host's DRAM (the rest for the model and OS), no more than the tables need
                host = int(getattr(hw, "dram_capacity_bytes", 0) or 0) if hw is not None else 0
                dram_cache_bytes = min(host // 2, total_bytes) if host else total_bytes // 10
            _, accel_bytes = card_memory(hw)
            place = default_placement(
                specs, accel_bytes=accel_bytes, dram_cache_bytes=int(dram_cache_bytes), policy=policy, profile=profile
            )
        if profile is not None:
            for name, order in hot_orders(profile, specs).items():
                place[name].hot_order = order
        for s in specs:
            p = place[s.name]
            if layout == "id":
                p.row_order = None
            elif p.hot_order is not None and (layout == "hot" or p.row_order is None):
                p.row_order = hotness_row_order(p.hot_order, s.num_rows)
            check_placement(p, s)
        if weights is not None and not callable(weights):
            for i, s in enumerate(specs):   # array weights are checked whole here; callables as they stream
                _table_weights(weights, s, i)
        if existing:  # only once every argument has passed its checks: bad input deletes nothing
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        from sdm.tiers.pagestore import PageStore

        scm_dev = getattr(hw, "scm", None) if hw is not None else None
        with PageStore.create(path / "scm", device=scm_dev or "nand", page_bytes=page_bytes, queue_depth=queue_depth) as ps:
            for i, s in enumerate(specs):
                ro = place[s.name].row_order
                ps.add_table(
                    s.name, _encoded_chunks(weights, s, i), num_rows=s.num_rows,
                    dim=row_formats.storage_width(s.dim, s.row_format),
                    dtype=row_formats.storage_dtype(s.row_format), row_order=ro,
                )
        side = path / "placement"
        side.mkdir(exist_ok=True)
        meta_tables = []
        for s in specs:
            p = place[s.name]
            entry = {"spec": asdict(s), "options": asdict(options.get(s.name, BagOptions())),
                     "dram_cache_bytes": p.dram_cache_bytes, "policy": p.policy}
            for key in _PLACEMENT_ARRAYS:
                arr = getattr(p, key)
                if arr is not None and len(arr):
                    fname = f"{len(meta_tables)}.{key}.npy"
                    np.save(side / fname, np.asarray(arr, np.int64))
                    entry[key] = f"placement/{fname}"
            meta_tables.append(entry)
        meta = {"format": "sdm-embedding-store", "version": STORE_VERSION, "hardware": hw_name,
                "queue_depth": queue_depth, "page_bytes": page_bytes, "ways": ways,
                "admission": admission, "page_admit": page_admit, "tables": meta_tables}
        tmp = path / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(path / META_FILE)  # the store exists only once its metadata is complete
        return cls.open(path, hardware=hw if hw is not None else None, inject=inject, accel_device=accel_device,
                        cache_layout=cache_layout)

    @classmethod
    def open(
        cls,
        path,
        *,
        hardware=None,
        dram_cache_bytes: int | None = None,
        policy: str | None = None,
        queue_depth: int | None = None,
        inject: bool = False,
        accel_device: str | None = None,
        cache_layout: str = "auto",
        admission: str | None = None,
        page_admit: str | None = None,
    ) -> "EmbeddingStore":
        """Reopen a store written by `create`. Overrides: a different hardware model, DRAM cache
        budget (split as stored), policy, queue depth, modelled-latency injection, cache layout
        ("auto": direct when a table's budget covers it, else set-associative; "hashed": always
        set-associative), admission and page_admit (see `create`)."""
        path = Path(path)
        try:
            meta = json.loads((path / META_FILE).read_text())
        except (FileNotFoundError, NotADirectoryError):
            raise StoreFormatError(f"{path}: no {META_FILE}; not an sdm embedding store") from None
        except json.JSONDecodeError as exc:
            raise StoreFormatError(f"{path / META_FILE}: unreadable ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != "sdm-embedding-store" or meta.get("version") != STORE_VERSION:
            got = (meta.get("format"), meta.get("version")) if isinstance(meta, dict) else (None, None)
            raise StoreFormatError(f"{path / META_FILE}: format {got[0]!r} version {got[1]!r}, "
                                   f"expected sdm-embedding-store version {STORE_VERSION}")
        missing = [k for k in ("queue_depth", "page_bytes", "ways", "tables") if k not in meta]
        if missing:
            raise StoreFormatError(f"{path / META_FILE}: missing {', '.join(missing)}; not a complete store")
        self = object.__new__(cls)
        self.path = path
        hw = hardware if hardware is not None else meta.get("hardware")
        try:
            self.hardware, self.hardware_name = _resolve_hardware(hw) if hw is not None else (None, None)
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"{path}: stored hardware {hw!r} is not a preset ({exc}); pass hardware= (a HardwareSpec) to open"
            ) from None
        self.queue_depth = whole_number(meta["queue_depth"] if queue_depth is None else queue_depth, "queue_depth", minimum=1)
        if dram_cache_bytes is not None:
            dram_cache_bytes = whole_number(dram_cache_bytes, "dram_cache_bytes")
        self.page_bytes = int(meta["page_bytes"])
        self.ways = int(meta["ways"])
        self.accel_device = accel_device
        self.cache_layout = cache_layout
        self.admission = admission or meta.get("admission", "auto")
        self.page_admit = page_admit or meta.get("page_admit", "auto")
        self.clock = Clock(inject=inject)
        from sdm.tiers.pagestore import PageStore

        scm_dev = getattr(self.hardware, "scm", None) if self.hardware is not None else None
        self.scm = PageStore.open(path / "scm", device=scm_dev, queue_depth=self.queue_depth, inject=inject, clock=self.clock)
        specs, opts, places = [], {}, {}
        for e in meta["tables"]:
            s = TableSpec(**e["spec"])
            specs.append(s)
            opts[s.name] = BagOptions(**e["options"])
            arrays = {k: np.load(path / e[k]) if k in e else None for k in _PLACEMENT_ARRAYS}
            places[s.name] = TablePlacement(
                accel_ids=arrays["accel_ids"] if arrays["accel_ids"] is not None else np.zeros(0, np.int64),
                dram_pinned_ids=arrays["dram_pinned_ids"] if arrays["dram_pinned_ids"] is not None else np.zeros(0, np.int64),
                dram_cache_bytes=int(e["dram_cache_bytes"]), policy=policy or e["policy"],
                static_hot_ids=arrays["static_hot_ids"],
                row_order=arrays["row_order"], hot_order=arrays["hot_order"],
            )
        if dram_cache_bytes is not None:
            tot = sum(p.dram_cache_bytes for p in places.values())
            sizes = sum(s.size_bytes for s in specs)
            for s in specs:
                p = places[s.name]
                share = p.dram_cache_bytes / tot if tot else s.size_bytes / sizes
                p.dram_cache_bytes = int(dram_cache_bytes * share)
        self.specs = specs
        self.placement = places
        self._tables = {s.name: StoreTable(self, s, opts[s.name], places[s.name]) for s in specs}
        self._stats = StoreStats([s.name for s in specs])
        self._closed = False
        return self

    @classmethod
    def from_embedding_bags(cls, bags, path, hardware="host-nand", plan=None, *, names: list[str] | None = None, **kw) -> "EmbeddingStore":
        """A store holding the weights of nn.EmbeddingBag modules (a ModuleList, list or dict),
        keeping each one's mode, include_last_offset and padding_idx."""
        if isinstance(bags, Mapping):
            names, mods = list(bags), list(bags.values())
        else:
            mods = list(bags)
            names = names or [f"t{i}" for i in range(len(mods))]
        if len(names) != len(mods):
            raise InvalidInputError(f"{len(names)} names for {len(mods)} embedding bags")
        specs, weights, options = [], {}, {}
        for n, m in zip(names, mods):
            if not isinstance(m, nn.EmbeddingBag):
                raise InvalidInputError(f"table {n!r}: expected nn.EmbeddingBag, got {type(m).__name__}")
            if m.max_norm is not None:
                raise InvalidInputError(f"table {n!r}: max_norm renormalizes rows on lookup; not supported")
            specs.append(TableSpec(n, m.num_embeddings, m.embedding_dim))
            weights[n] = m.weight.detach().to("cpu", torch.float32)
            options[n] = BagOptions(m.mode, bool(m.include_last_offset), m.padding_idx)
        return cls.create(path, specs, hardware=hardware, weights=weights, plan=plan, options=options, **kw)

    # ---- use -----------------------------------------------------------------------------------
    @property
    def tables(self) -> list[str]:
        return [s.name for s in self.specs]

    def spec(self, name: str) -> TableSpec:
        return self._table(name).spec

    def _table(self, name: str) -> StoreTable:
        if self._closed:
            raise InvalidInputError(f"store at {self.path} is closed")
        try:
            return self._tables[name]
        except (KeyError, TypeError):
            raise InvalidInputError(
                f"unknown table {name!r}; tables: {', '.join(self.tables[:10])}" + (" ..." if len(self.tables) > 10 else "")
            ) from None

    def lookup(self, name: str, indices, offsets=None, per_sample_weights=None) -> torch.Tensor:
        """Pooled rows [bags, dim] float32, as the table's nn.EmbeddingBag would return them."""
        t0 = time.perf_counter()
        t = self._table(name)
        batch = validate(name, t.spec.num_rows, indices, offsets, per_sample_weights, mode=t.opts.mode,
                         include_last_offset=t.opts.include_last_offset, padding_idx=t.opts.padding_idx)
        out, rec = t.lookup(batch)
        self._stats.record(name, rec, batch.indices.numel(), time.perf_counter() - t0)
        return out

    def prefetch(self, batch: Mapping[str, object], protect: Mapping[str, np.ndarray] | None = None) -> None:
        """Read into the DRAM cache the rows of `batch` ({table: indices}) not already in a fast
        tier, never evicting rows listed in `protect` ({table: ids}). Used by sdm.prefetch."""
        if not isinstance(batch, Mapping) or (protect is not None and not isinstance(protect, Mapping)):
            raise InvalidInputError("prefetch takes {table: ids} mappings for batch and protect")
        # check every table's ids before reading any: a bad entry changes no cache state
        todo = []
        for name, ids in batch.items():
            t = self._table(name)
            keep = None if protect is None or protect.get(name) is None else t.check_ids(protect[name], "protect ids")
            todo.append((name, t, t.check_ids(ids, "prefetch ids"), keep))
        for name, t, ids, keep in todo:
            self._stats.record_prefetch(name, t.prefetch(ids, keep))

    def warm(self, tables: Iterable[str] | None = None) -> int:
        """Fill the DRAM caches with the rows the profile ranks hottest (as many as fit), the way a
        server loads its hot set before taking traffic; with the hot-first SCM layout these are
        contiguous pages. Returns the rows loaded. A store without a profile loads nothing."""
        if isinstance(tables, str):
            tables = [tables]
        loaded = 0
        chosen = [(name, self._table(name)) for name in (self.tables if tables is None else tables)]
        for name, t in chosen:   # every name checked before any table is filled
            ids = t.warm_ids()
            if len(ids):
                before = t.cache.resident_rows
                self._stats.record_prefetch(name, t.prefetch(ids, None, stage=False))
                loaded += t.cache.resident_rows - before
        return loaded

    def as_embedding_bags(self) -> nn.ModuleList:
        """A drop-in for a DLRM's `emb_l`: one module per table, called m(indices, offsets, per_sample_weights)."""
        return nn.ModuleList([StoreEmbeddingBag(self, s.name) for s in self.specs])

    def stats(self) -> dict:
        """Per table and tier: hits, rows, reads, bytes, measured and modelled time; hit rates;
        lookup latency p50/p99 and histogram; prefetch reads; cache occupancy and index bytes."""
        snap = self._stats.snapshot()
        for name, t in self._tables.items():
            snap["tables"][name]["cache"] = {
                "capacity_rows": t.cache.capacity_rows, "resident_rows": t.cache.resident_rows,
                "index_bytes": t.cache.index_bytes, "policy": t.cache.policy.name,
                "accel_rows": len(t.accel) if t.accel is not None else 0,
                "dram_pinned_rows": len(t.pinned) if t.pinned is not None else 0,
            }
        snap["clock"] = {k: v.as_dict() for k, v in self.clock.snapshot().items()}
        return snap

    def reset_stats(self) -> None:
        self._stats.reset()
        self.clock.reset()

    def cache(self, name: str) -> DramCache:
        return self._table(name).cache

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.scm.close()

    def __enter__(self) -> "EmbeddingStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.path)!r}, tables={len(self.specs)}, hardware={self.hardware_name!r})"


class StoreEmbeddingBag(nn.Module):
    """One table of an EmbeddingStore behind nn.EmbeddingBag's call signature."""

    def __init__(self, store: EmbeddingStore, name: str):
        super().__init__()
        spec = store.spec(name)
        self.store, self.name = store, name
        self.num_embeddings, self.embedding_dim = spec.num_rows, spec.dim
        o = store._tables[name].opts
        self.mode, self.include_last_offset, self.padding_idx = o.mode, o.include_last_offset, o.padding_idx

    def forward(self, input, offsets=None, per_sample_weights=None):  # noqa: A002 (nn.EmbeddingBag's name)
        return self.store.lookup(self.name, input, offsets, per_sample_weights)

    def extra_repr(self) -> str:
        return f"{self.name!r}, {self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"


def wrap(model: nn.Module, path, hardware="host-nand", plan=None, **kw) -> EmbeddingStore:
    """Move every nn.EmbeddingBag in `model` into one EmbeddingStore at `path` and put a
    StoreEmbeddingBag in its place. Tables are named by module path (e.g. "emb_l.3")."""
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"wrap needs an nn.Module, got {type(model).__name__}")
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.EmbeddingBag)]
    if not found:
        raise InvalidInputError(f"{type(model).__name__} holds no nn.EmbeddingBag to wrap")
    store = EmbeddingStore.from_embedding_bags({n: m for n, m in found}, path, hardware=hardware, plan=plan, **kw)
    for name, _ in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, StoreEmbeddingBag(store, name))
    return store
