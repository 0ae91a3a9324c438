"""sdm.EmbeddingStore: embedding tables served from accelerator memory, a DRAM cache and SCM pages.

    store = EmbeddingStore.create(path, tables, hardware="host-nand", weights=..., plan=None)
    pooled = store.lookup("t0", indices, offsets, per_sample_weights=None)   # == nn.EmbeddingBag
    model.emb_l = store.as_embedding_bags()
    store = sdm.wrap(model, path)                # swaps every nn.EmbeddingBag in a module tree

This module is the public API: argument checks, the choice of placement at `create`, `open`'s
overrides, and the calls a model makes. The rest of the runtime, one job a module:
- sdm/runtime/store_create.py    `create`'s argument checks and the writing of a new store,
- sdm/runtime/store_files.py     the store's directory (store.json, placement/*.npy, scm/ pages),
- sdm/runtime/create_placement.py  the placement `create` writes (plan or default, cache split, page order),
- sdm/runtime/store_weights.py   the rows `create` writes, from the forms `weights` may take,
- sdm/runtime/store_config.py    BagOptions, store-wide settings, the mode names and their checks,
- sdm/runtime/store_table.py     one table's tiers and its per-batch lookup and prefetch paths,
- sdm/runtime/store_modules.py   StoreEmbeddingBag and the module swap behind `wrap`,
- sdm/runtime/pooling.py         input validation and the exact pooling call.

A lookup: validate (nothing changes on bad input) -> locate each index (accel, pinned DRAM, DRAM
cache) -> read the missing rows from SCM (one read per distinct page, at the configured queue
depth; outside any lock) -> insert them into the cache (rows of this batch protected) -> pool the
stored rows by their format's kernel (sdm/runtime/quantized.py; fp32: torch's embedding_bag, bitwise
nn.EmbeddingBag), on the cache's slot tensor when every index is cached. `lookup_many`: every table
of a request in one call (sdm/runtime/batched.py); modules: store_modules.py, collection.py.

With a profile (docs/runtime.md, "SCM path"): hot-first SCM pages, warm admission, `warm()`,
page-granular admission and prefetch staging.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from sdm.core.errors import InvalidInputError
from sdm.core.checks import whole_number
from sdm.runtime import row_formats
from sdm.runtime.batched import lookup_keyed
from sdm.runtime.collection import swap_collections, torchrec_collections
from sdm.runtime.pooling import validate
from sdm.core.spec import TableSpec
from sdm.runtime.store_config import ADMISSION_MODES, CACHE_LAYOUTS, PAGE_ADMIT_MODES, BagOptions, StoreSettings, check_choice
from sdm.runtime.store_create import resolve_hardware, write_new_store
from sdm.runtime.store_files import check_pages, read_store
from sdm.runtime.store_modules import StoreEmbeddingBag, bag_tables, embedding_bags_in, swap_in
from sdm.runtime.create_placement import split_cache_budget
from sdm.runtime.store_stats import StoreStats
from sdm.runtime.store_table import StoreTable
from sdm.tiers.clock import Clock
from sdm.cache.dram_cache import DramCache

__all__ = ["BagOptions", "EmbeddingStore", "StoreEmbeddingBag", "wrap"]


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
        page_layout: str = "auto",
        admission: str = "auto",
        page_admit: str = "auto",
        layout: str | None = None,
        progress: bool | None = None,
    ) -> "EmbeddingStore":
        """Write `tables` (weights: mapping name -> [rows, dim], list, callable(name, start, stop),
        or None for seeded random rows) to SCM under `path` and open the store.

        page_layout (the order rows are written into SCM pages): "auto" = the plan's row_order if
        it has one, else hottest first when a profile is given, else id order; "hot" (needs a
        profile); "id". (`layout` is its old name, deprecated.)
        cache_layout (how rows map to DRAM cache slots): see `open`.
        admission (DRAM cache, demand misses): "auto" = "warm" with a profile (only rows the profile
        predicts warm enter; one-off cold rows bypass), else "all".
        page_admit (rows sharing a fetched SCM page): "auto" = "warm" with a profile and admission
        "all", else "off"; "warm" = the page's rows predicted warm;
        "all" = every row of the page at low priority (fills empty / low-priority slots only).
        progress: the ingest progress bar (None: shown for tables of 64 MiB and more; False: never)."""
        path, hw = write_new_store(
            path, tables, hardware, weights, plan, dram_cache_bytes, profile=profile, policy=policy,
            options=options, ways=ways, queue_depth=queue_depth, page_bytes=page_bytes,
            cache_layout=cache_layout, overwrite=overwrite, page_layout=page_layout, admission=admission,
            page_admit=page_admit, layout=layout, progress=progress)
        return cls.open(path, hardware=hw, inject=inject, accel_device=accel_device, cache_layout=cache_layout)

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
        rec = read_store(path)
        self = object.__new__(cls)
        self.path = path
        hw = hardware if hardware is not None else rec.hardware
        try:
            self.hardware, self.hardware_name = resolve_hardware(hw)
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"{path}: stored hardware {hw!r} is not a preset ({exc}); pass hardware= (a HardwareSpec) to open"
            ) from None
        self.settings = StoreSettings(
            queue_depth=whole_number(rec.queue_depth if queue_depth is None else queue_depth, "queue_depth", minimum=1),
            page_bytes=rec.page_bytes, ways=rec.ways, accel_device=accel_device,
            cache_layout=check_choice("cache_layout", cache_layout, CACHE_LAYOUTS),
            admission=check_choice("admission", admission or rec.admission, ADMISSION_MODES),
            page_admit=check_choice("page_admit", page_admit or rec.page_admit, PAGE_ADMIT_MODES),
        )
        if dram_cache_bytes is not None:
            split_cache_budget(rec.placement, rec.specs, whole_number(dram_cache_bytes, "dram_cache_bytes"))
        if policy is not None:
            for p in rec.placement.values():
                p.policy = policy
        self.clock = Clock(inject=inject)
        from sdm.tiers.pagestore import PageStore

        scm_dev = getattr(self.hardware, "scm", None) if self.hardware is not None else None
        self.scm = PageStore.open(path / "scm", device=scm_dev, queue_depth=self.settings.queue_depth,
                                  inject=inject, clock=self.clock)
        self.specs = rec.specs
        self.placement = rec.placement
        try:  # store.json against the page store's own records, then the tables: on failure, close it
            check_pages(path, rec, {n: self.scm.table_info(n) for n in self.scm.tables})
            self._tables = {
                s.name: StoreTable(s, rec.options[s.name], rec.placement[s.name], scm=self.scm,
                                   hardware=self.hardware, settings=self.settings)
                for s in rec.specs
            }
        except BaseException:  # e.g. admission="warm" for a store without a profile: leave no open files
            self.scm.close()
            raise
        self._stats = StoreStats([s.name for s in rec.specs])
        self._closed = False
        return self

    @classmethod
    def from_embedding_bags(cls, bags, path, hardware="host-nand", plan=None, *, names: list[str] | None = None, **kw) -> "EmbeddingStore":
        """A store holding the weights of nn.EmbeddingBag modules (a ModuleList, list or dict),
        keeping each one's mode, include_last_offset and padding_idx."""
        specs, weights, options = bag_tables(bags, names)
        return cls.create(path, specs, hardware=hardware, weights=weights, plan=plan, options=options, **kw)

    # ---- use -----------------------------------------------------------------------------------
    @property
    def tables(self) -> list[str]:
        return [s.name for s in self.specs]

    def spec(self, name: str) -> TableSpec:
        return self._table(name).spec

    def bag_options(self, name: str) -> BagOptions:
        """The nn.EmbeddingBag options (mode, include_last_offset, padding_idx) table `name` pools with."""
        return self._table(name).opts

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
                         include_last_offset=t.opts.include_last_offset, padding_idx=t.opts.padding_idx,
                         check_ids=False)   # StoreTable.lookup checks them where a cached id gives no proof
        out, rec = t.lookup(batch)
        self._stats.record(name, rec, batch.indices.numel(), time.perf_counter() - t0)
        return out

    def lookup_many(self, keys, values, lengths=None, offsets=None, per_sample_weights=None, *,
                    segments=None) -> list[torch.Tensor]:
        """All tables of a request in one call, KeyedJaggedTensor layout (sdm.runtime.batched): `keys`
        (tables; `segments`: their features' names), key-major `values`, `lengths` or `offsets`."""
        if self._closed:
            raise InvalidInputError(f"store at {self.path} is closed")
        return lookup_keyed(self._tables, self._stats, keys, values, lengths, offsets, per_sample_weights, segments)

    def read_weight(self, name: str) -> torch.Tensor:
        """Every row of `name`, decoded to float32 [rows, dim] (from SCM; not a lookup): for state_dict."""
        t = self._table(name)
        return row_formats.decode(torch.from_numpy(t.read_all()), t.spec.row_format).clone()

    def write_weight(self, name: str, weight) -> None:
        """Overwrite every row of `name` in one atomic PageStore.update_rows commit; reload its tiers."""
        t = self._table(name)
        w = weight.detach().to("cpu", torch.float32) if isinstance(weight, torch.Tensor) else torch.as_tensor(weight)
        if tuple(w.shape) != (t.spec.num_rows, t.spec.dim):
            raise InvalidInputError(f"table {name!r}: weight shape {tuple(w.shape)} is not {(t.spec.num_rows, t.spec.dim)}")
        self.scm.update_rows(name, np.arange(t.spec.num_rows), row_formats.encode(w, t.spec.row_format, table=name))
        self._tables[name] = StoreTable(t.spec, t.opts, self.placement[name], scm=self.scm, hardware=self.hardware,
                                        settings=self.settings)

    # ---- live updates (sdm/runtime/updates.py, deltas.py) -------------------------------------
    def update(self, name: str, ids, rows) -> int:
        """Overwrite rows `ids` of `name` with `rows` (float [n, dim]) in one atomic commit, while
        lookups go on (each reader sees a row old or new, never torn); returns the new `version`."""
        from sdm.runtime.updates import apply_update

        return apply_update(self, name, ids, rows)

    @property
    def version(self) -> int:
        """The committed version of the store's rows: +1 per ingest or update commit."""
        return self.scm.version

    def apply_deltas(self, source, *, poll_s: float = 0.05):
        """Start a background DeltaApplier (sdm/runtime/deltas.py) on `source`: an iterable of
        (table, ids, rows) batches or a directory of delta files. Returns it (stop()/join()/check())."""
        from sdm.runtime.deltas import DeltaApplier

        return DeltaApplier(self, source, poll_s=poll_s).start()

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

    def verify(self):
        """A full scrub (sdm/runtime/store_scrub.py): store.json, the placement arrays, the specs against
        the page store, and every page and record of the page store; writes nothing. -> StoreScrubReport."""
        from sdm.runtime.store_scrub import scrub_store

        return scrub_store(self.path, scm=self.scm)

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

    def summary(self) -> dict:
        """`stats()` condensed per table and tier, p50/p99 in the total too (sdm.runtime.store_summary)."""
        from sdm.runtime.store_summary import summarize
        return summarize(self.stats())

    def stats_table(self) -> str:
        """`summary()` as text: `print(store.stats_table())`."""
        from sdm.runtime.store_summary import format_summary
        return format_summary(self.summary())

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

    def __reduce_ex__(self, protocol):
        # open files, locks, caches: a copy would be a second writer of one directory (deepcopy too)
        raise TypeError(f"an EmbeddingStore ({self.path}) cannot be copied or pickled; save the model's "
                        f"state_dict(), or reopen the store with sdm.EmbeddingStore.open({str(self.path)!r})")

    def __deepcopy__(self, memo):
        self.__reduce_ex__(4)

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.path)!r}, tables={len(self.specs)}, hardware={self.hardware_name!r})"


def wrap(model: nn.Module, path, hardware="host-nand", plan=None, **kw) -> EmbeddingStore:
    """Move every nn.EmbeddingBag in `model` into one EmbeddingStore at `path` and put a
    StoreEmbeddingBag in its place. Tables are named by module path (e.g. "emb_l.3")."""
    found = embedding_bags_in(model)
    collections = torchrec_collections(model)     # torchrec EmbeddingBagCollections: one batched call each
    store = EmbeddingStore.from_embedding_bags(found, path, hardware=hardware, plan=plan, **kw)
    inside = tuple(f"{p}.embedding_bags." for p in collections)
    swap_in(model, store, [n for n in found if not n.startswith(inside)])
    swap_collections(model, store, collections)
    return store
