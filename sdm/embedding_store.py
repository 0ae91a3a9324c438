"""sdm.EmbeddingStore: embedding tables served from accelerator memory, a DRAM cache and SCM pages.

    store = EmbeddingStore.create(path, tables, hardware="host-nand", weights=..., plan=None)
    pooled = store.lookup("t0", indices, offsets, per_sample_weights=None)   # == nn.EmbeddingBag
    model.emb_l = store.as_embedding_bags()
    store = sdm.wrap(model, path)                # swaps every nn.EmbeddingBag in a module tree

On disk (`path/`): `store.json` (format version, table specs and EmbeddingBag options, hardware,
placement), `placement/*.npy` (row sets), `scm/` (the page store holding every row, the backing
copy). Accelerator rows are loaded from SCM at open; the DRAM cache starts cold.

A lookup: validate (nothing changes on bad input) -> locate each index (accel, pinned DRAM, DRAM
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from . import row_formats
from .errors import InvalidInputError, StoreFormatError
from .pooling import BagBatch, compact, pool, validate
from .spec import TableSpec
from .store_placement import (
    TablePlacement,
    check_placement,
    default_placement,
    hot_orders,
    hotness_row_order,
    placement_from_plan,
)
from .store_stats import LookupRecord, StoreStats, TierCounters
from .tiers.clock import Clock
from .tiers.device_memory import DeviceMemoryTier
from .tiers.dram_cache import DramCache

STORE_VERSION = 1
# per-table id arrays kept under placement/ (row_order: the SCM page layout, to find a page's rows;
# hot_order: the profile's rows hottest first, for warm admission and warm-up)
_PLACEMENT_ARRAYS = ("accel_ids", "dram_pinned_ids", "static_hot_ids", "row_order", "hot_order")
META_FILE = "store.json"
# Outstanding DRAM misses a host core keeps in flight (line-fill buffers: 10-12 on recent Intel
# cores per Intel's optimization manual; *unconfirmed* for the modelled host). Used only to turn
# the DRAM device model's per-access latency into a batch time.
DRAM_QUEUE_DEPTH = 10
_WRITE_CHUNK_ROWS = 1 << 16


@dataclass(frozen=True)
class BagOptions:
    """The nn.EmbeddingBag options a table is looked up with."""

    mode: str = "sum"
    include_last_offset: bool = False
    padding_idx: int | None = None


# ------------------------------------------------------------------------------------------------
def _resolve_hardware(hardware):
    """(HardwareSpec or None, name). A name needs sdm.tiers.hardware; without it, no device models."""
    if hardware is None:
        return None, None
    if isinstance(hardware, str):
        from .tiers.hardware import hardware as preset

        return preset(hardware), hardware
    return hardware, getattr(hardware, "name", "custom")


def _card_memory(hw):
    """(memory model of a card, total card memory bytes) of the hardware; (None, 0) without cards."""
    cards = getattr(hw, "cards", ()) if hw is not None else ()
    if not cards:
        return None, 0
    return cards[0].lpddr, int(getattr(hw, "card_memory_bytes", 0) or sum(int(c.lpddr.capacity_bytes) for c in cards))


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
    w = weights[spec.name] if isinstance(weights, Mapping) else weights[i]
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu().numpy()
    w = np.asarray(w)
    if w.shape != (spec.num_rows, spec.dim):
        raise InvalidInputError(f"table {spec.name!r}: weights have shape {w.shape}, expected {(spec.num_rows, spec.dim)}")
    for a in range(0, spec.num_rows, _WRITE_CHUNK_ROWS):
        yield w[a : a + _WRITE_CHUNK_ROWS]


def _encoded_chunks(weights, spec: TableSpec, i: int):
    """Rows in id order, encoded; the page store lays them out by the plan's row_order itself."""
    for chunk in _weights_for(weights, spec, i):
        if chunk.ndim != 2 or chunk.shape[1] != spec.dim:
            raise InvalidInputError(f"table {spec.name!r}: weight chunk has shape {chunk.shape}, dim {spec.dim}")
        yield row_formats.encode(chunk, spec.row_format, table=spec.name)


ADMISSION_MODES = ("auto", "all", "warm")
PAGE_ADMIT_MODES = ("auto", "off", "warm", "all")
LAYOUTS = ("auto", "id", "hot")
# Rows counted "predicted warm" = this x the table's DRAM cache rows (+ its card and pinned rows),
# hottest first by the profile. 1.0: exactly what a static placement of that size would hold.
WARM_ROWS_FACTOR = 1.0


def _resolve_mode(what: str, mode: str, warm, table: str, admission: str = "all") -> str:
    """admission: "auto" -> "warm" with a profile, else "all". page_admit: "auto" -> "warm" with a
    profile when admission is "all", else "off" (measured: with warm admission the warm rows are
    already cached and page mates bring nothing; tools/bench_dlrm.py). "warm" needs a profile."""
    allowed = ADMISSION_MODES if what == "admission" else PAGE_ADMIT_MODES
    if mode not in allowed:
        raise InvalidInputError(f"{what} must be one of {allowed}, got {mode!r}")
    if mode == "auto":
        if what == "admission":
            return "warm" if warm is not None else "all"
        return "warm" if warm is not None and admission == "all" else "off"
    if mode == "warm" and warm is None:
        raise InvalidInputError(f"table {table!r}: {what}='warm' needs a profile (create(..., profile=...))")
    return mode


class _Table:
    """Run-time state of one table: its tiers and how to look up through them."""

    def __init__(self, store: "EmbeddingStore", spec: TableSpec, opts: BagOptions, place: TablePlacement):
        self.store = store
        self.spec = spec
        self.opts = opts
        self.width = row_formats.storage_width(spec.dim, spec.row_format)
        self.dtype = torch.from_numpy(np.zeros(0, row_formats.storage_dtype(spec.row_format))).dtype
        hw = store.hardware
        card_mem, _ = _card_memory(hw)
        self.accel = None
        if len(place.accel_ids):
            self.accel = DeviceMemoryTier(
                spec.name, spec.num_rows, place.accel_ids, self._read_scm_bulk(place.accel_ids),
                device=store.accel_device, memory=card_mem,
            )
        self.pinned = None
        dram_dev = getattr(getattr(hw, "host", None), "dram", None)
        if len(place.dram_pinned_ids):
            self.pinned = DeviceMemoryTier(
                spec.name, spec.num_rows, place.dram_pinned_ids, self._read_scm_bulk(place.dram_pinned_ids),
                device="cpu", memory=dram_dev,
            )
        self.dram_dev = dram_dev
        self._dram_model_memo: dict[int, float] = {}
        self._scm_model_memo: dict[int, float] = {}
        self.cache = DramCache(
            spec.num_rows, self.width, self.dtype, place.dram_cache_bytes, ways=store.ways,
            policy=place.policy, hot_ids=place.static_hot_ids, table=spec.name, layout=store.cache_layout,
        )
        hot = self.cache.needs_static_fill()
        if hot is not None and len(hot):
            hot = hot[: self.cache.capacity_rows]
            self.cache.insert(hot, torch.from_numpy(self._read_scm_bulk(hot)))
        self.fast_ok = spec.row_format == "fp32" and self.accel is None and self.pinned is None
        # SCM page layout (row_order[slot] = row id; None: id order), to find a fetched page's rows
        self.row_order = place.row_order
        self.rows_per_page = int(store.scm.table_info(spec.name).rows_per_page)
        self.hot_order = place.hot_order
        # "Predicted warm": the rows a static placement of this size would keep in fast tiers
        # (card + pinned + cache capacity), by the profile's hotness.
        self.warm = None
        if place.hot_order is not None:
            n_warm = int(WARM_ROWS_FACTOR * self.cache.capacity_rows) + (len(self.accel) if self.accel is not None else 0) \
                + (len(self.pinned) if self.pinned is not None else 0)
            self.warm = np.zeros(spec.num_rows, np.bool_)
            self.warm[place.hot_order[:n_warm]] = True
        # prefetched rows the cache did not take (sorted ids, stored rows); see prefetch
        self._staged = (np.zeros(0, np.int64), torch.empty((0, self.width), dtype=self.dtype))
        self.admission = _resolve_mode("admission", store.admission, self.warm, spec.name)
        self.page_admit = _resolve_mode("page_admit", store.page_admit, self.warm, spec.name, self.admission)
        if self.admission == "warm" and not self.cache.direct:
            self.cache.admit_mask = self.warm

    # ---- SCM -----------------------------------------------------------------------------------
    def _read_scm_bulk(self, ids: np.ndarray) -> np.ndarray:
        parts = [self.store.scm.read_rows(self.spec.name, ids[a : a + _WRITE_CHUNK_ROWS])
                 for a in range(0, len(ids), _WRITE_CHUNK_ROWS)]
        return np.concatenate(parts) if parts else np.zeros((0, self.width), row_formats.storage_dtype(self.spec.row_format))

    def page_mates(self, ids: np.ndarray) -> np.ndarray:
        """Rows on the SCM pages holding `ids` that page-granular admission would cache: reading
        them costs no extra page read. "warm": only rows predicted warm; "all": every one. Rows in
        a static tier are left out; cached ones (`ids` too, once inserted) by the probe in admit_mates."""
        if self.page_admit == "off" or not len(ids) or not self.cache.capacity_rows or self.cache.direct:
            return np.zeros(0, np.int64)
        rpp = self.rows_per_page
        pages = np.unique(self.store.scm.page_of(self.spec.name, ids))
        slots = (pages[:, None] * rpp + np.arange(rpp)).reshape(-1)
        slots = slots[slots < self.spec.num_rows]
        mates = self.row_order[slots] if self.row_order is not None else slots
        if self.page_admit == "warm":
            mates = mates[self.warm[mates]]
        # (rows of `ids` among them are found by the cache probe in admit_mates once inserted)
        for static in (self.accel, self.pinned):
            if static is not None and len(mates):
                mates = mates[static.locate(mates) < 0]
        return mates.astype(np.int64, copy=False)

    def read_scm(self, ids: np.ndarray, c: TierCounters, mates: np.ndarray | None = None):
        """Stored rows of `ids` from SCM, charging `c` with measured and modelled time. With
        `mates` (rows on the same pages), returns (rows of ids, rows of mates): same page reads."""
        if not len(ids):
            empty = torch.empty((0, self.width), dtype=self.dtype)
            return empty if mates is None else (empty, empty)
        t0 = time.perf_counter()
        both = ids if mates is None or not len(mates) else np.concatenate([ids, mates])
        rows = self.store.scm.read_rows(self.spec.name, both)
        c.measured_s += time.perf_counter() - t0
        pages = int(len(np.unique(self.store.scm.page_of(self.spec.name, ids))))
        c.rows += len(ids)
        c.reads += pages
        c.bytes += pages * self.store.page_bytes
        c.modelled_s += self._scm_model_s(pages)
        out = torch.from_numpy(np.ascontiguousarray(rows))
        if mates is None:
            return out
        return out[: len(ids)], out[len(ids):]

    def admit_mates(self, mates: np.ndarray, rows: torch.Tensor, protect: np.ndarray, c: TierCounters) -> None:
        """Insert page mates still absent (caller holds the cache lock), never evicting `protect`."""
        if not len(mates):
            return
        absent = np.flatnonzero(self.cache.probe(mates) < 0)
        if not len(absent):
            return
        placed = self.cache.insert(mates[absent], rows[torch.from_numpy(absent)], protect_slots=protect,
                                   low_priority=self.page_admit == "all")
        c.admitted += int((placed >= 0).sum())

    def _scm_model_s(self, pages: int) -> float:
        """Device-model time of `pages` page reads at the store's queue depth (memoized: the
        model's call costs ~0.3 ms, a noticeable share of a cached lookup)."""
        dev = self.store.scm.device
        if dev is None or not pages:
            return 0.0
        memo = self._scm_model_memo
        t = memo.get(pages)
        if t is None:
            if len(memo) > 4096:
                memo.clear()
            t = memo[pages] = float(dev.read_time_s(pages, self.store.page_bytes, self.store.queue_depth))
        return t

    def _dram_model_s(self, n_rows: int) -> float:
        if self.dram_dev is None or not n_rows:
            return 0.0
        # serving repeats the same batch sizes: memoize (the model's call costs ~0.1 ms)
        t = self._dram_model_memo.get(n_rows)
        if t is None:
            if len(self._dram_model_memo) > 256:
                self._dram_model_memo.clear()
            t = self._dram_model_memo[n_rows] = float(
                self.dram_dev.read_time_s(int(n_rows), self.spec.row_bytes, DRAM_QUEUE_DEPTH))
        return t

    # ---- lookup --------------------------------------------------------------------------------
    def lookup(self, batch: BagBatch) -> tuple[torch.Tensor, LookupRecord]:
        rec = LookupRecord()
        if self.fast_ok:
            out = self._lookup_cached(batch, rec)
            if out is not None:
                return out, rec
        return self._lookup_general(batch, rec), rec

    def _lookup_cached(self, batch: BagBatch, rec: LookupRecord) -> torch.Tensor | None:
        """All indices in the DRAM cache: pool straight from its slot tensor (no gather, no copy)."""
        idx = batch.indices.numpy()
        cache = self.cache
        t0 = time.perf_counter()
        with cache.lock:
            if cache.complete:
                # every row cached at slot = id: pool from the cache tensor with the ids as given;
                # padding_idx keeps its own number, exactly as in the reference call
                out = pool(cache.data, batch.indices, batch, batch.padding_idx)
            else:
                slots = cache.probe(idx)
                if len(slots) and slots.min() < 0:
                    return None
                pad = None
                if batch.padding_idx is not None:
                    where = np.flatnonzero(idx == batch.padding_idx)
                    if not len(where):
                        return None  # the reference sets padding_idx: need a padding row, see pooling.compact
                    pad = int(slots[where[0]])
                cache.touch(slots)
                out = pool(cache.data, torch.from_numpy(slots), batch, pad)
        c = rec.tiers["dram"]
        c.hits = c.rows = c.reads = len(idx)
        c.bytes = len(idx) * self.spec.row_bytes
        c.measured_s = time.perf_counter() - t0
        c.modelled_s = rec.modelled_s = self._dram_model_s(len(idx))
        return out

    def _lookup_general(self, batch: BagBatch, rec: LookupRecord) -> torch.Tensor:
        uniq, inverse, pad = compact(batch.indices, batch.padding_idx)
        u = uniq.numpy()
        nu = len(u)
        weight = torch.zeros((nu + (1 if pad == nu else 0), self.spec.dim), dtype=torch.float32)
        tier = np.full(nu, 2, np.int8)  # 0 accel, 1 dram, 2 scm
        fmt = self.spec.row_format
        ca, cd, cs = rec.tiers["accel"], rec.tiers["dram"], rec.tiers["scm"]
        rest = np.arange(nu)
        for static, counters in ((self.accel, ca), (self.pinned, cd)):
            if static is None or not len(rest):
                continue
            t0 = time.perf_counter()
            loc = static.locate(u[rest])
            got = loc >= 0
            if got.any():
                sel = rest[got]
                weight[torch.from_numpy(sel)] = row_formats.decode(static.gather(loc[got]), fmt)
                tier[sel] = 0 if counters is ca else 1
                counters.rows += len(sel)
                counters.reads += len(sel)
                counters.bytes += len(sel) * self.spec.row_bytes
                counters.modelled_s += static.modelled_read_s(len(sel))
            counters.measured_s += time.perf_counter() - t0
            rest = rest[~got]
        cache = self.cache
        rest_ids = u[rest]
        with cache.lock:
            first = cache.probe(rest_ids)
        missed = first < 0
        miss_ids = rest_ids[missed]
        staged, staged_rows = self._staged_rows(miss_ids)      # prefetched rows the cache did not take
        read_ids = miss_ids[~staged]
        mates = self.page_mates(read_ids)
        got, mate_rows = self.read_scm(read_ids, cs, mates)    # outside the lock: others keep going
        if staged.any():
            fetched = torch.empty((len(miss_ids), self.width), dtype=self.dtype)
            fetched[torch.from_numpy(np.flatnonzero(staged))] = staged_rows
            fetched[torch.from_numpy(np.flatnonzero(~staged))] = got
        else:
            fetched = got
        from_stage = np.zeros(len(rest), np.bool_)
        from_stage[np.flatnonzero(missed)[staged]] = True
        t0 = time.perf_counter()
        with cache.lock:
            slots = cache.probe(rest_ids)                       # others may have moved rows meanwhile
            hit = slots >= 0
            need = ~hit
            lost = need & ~missed                               # evicted by another thread meanwhile
            rows_need = torch.empty((int(need.sum()), self.width), dtype=self.dtype)
            if need.any():
                pos_in_fetched = np.cumsum(missed) - 1
                from_fetch = missed[need]
                rows_need[torch.from_numpy(np.flatnonzero(from_fetch))] = fetched[torch.from_numpy(pos_in_fetched[need][from_fetch])]
                if lost.any():
                    rows_need[torch.from_numpy(np.flatnonzero(~from_fetch))] = self.read_scm(rest_ids[lost], cs)
            if hit.any():
                hs = slots[hit]
                cache.touch(hs)
                weight[torch.from_numpy(rest[hit])] = row_formats.decode(cache.data[torch.from_numpy(hs)], fmt)
            placed = cache.insert(rest_ids[need], rows_need, protect_slots=slots[hit])
            if len(mates):  # rows of the fetched pages: cached without evicting this batch's rows
                self.admit_mates(mates, mate_rows, np.concatenate([slots[hit], placed[placed >= 0]]), cs)
        if need.any():
            weight[torch.from_numpy(rest[need])] = row_formats.decode(rows_need, fmt)
        tier[rest[need]] = 2
        dram = hit | (need & ~lost & from_stage)               # staged rows were in host DRAM too
        tier[rest[dram]] = 1
        n_dram = int(dram.sum())
        cd.rows += n_dram
        cd.reads += n_dram
        cd.bytes += n_dram * self.spec.row_bytes
        cd.measured_s += time.perf_counter() - t0
        cd.modelled_s += self._dram_model_s(n_dram)
        occ = np.bincount(tier[inverse.numpy()], minlength=3)
        ca.hits, cd.hits, cs.hits = int(occ[0]), int(occ[1]), int(occ[2])
        # tiers are read one after another on this path (accel, DRAM, then SCM)
        rec.modelled_s = ca.modelled_s + cd.modelled_s + cs.modelled_s
        return pool(weight, inverse, batch, pad)

    def prefetch(self, ids: np.ndarray, protect: np.ndarray | None, stage: bool = True) -> TierCounters:
        """Read the rows of `ids` missing from every tier into host DRAM, never evicting rows of
        `protect` (rows a batch in flight still needs). Rows the cache admits go into it; with
        `stage`, the others (predicted cold under warm admission, or finding no slot) wait in a
        staging buffer that the lookup path reads, kept while they are in `protect` or new."""
        c = TierCounters()
        u = np.unique(np.asarray(ids, dtype=np.int64))
        if not len(u) or not self.cache.capacity_rows:
            return c
        if u[0] < 0 or u[-1] >= self.spec.num_rows:
            raise InvalidInputError(f"table {self.spec.name!r}: prefetch ids outside [0, {self.spec.num_rows})")
        for static in (self.accel, self.pinned):
            if static is not None:
                u = u[static.locate(u) < 0]
        with self.cache.lock:
            u = u[self.cache.probe(u) < 0]
        if self.cache.policy.admit(u) is not None:
            u = u[self.cache.policy.admit(u)]
        if stage:
            u = u[~self._staged_rows(u)[0]]
        mates = self.page_mates(u)
        rows, mate_rows = self.read_scm(u, c, mates)
        with self.cache.lock:
            still = self.cache.probe(u) < 0
            keep = np.unique(np.concatenate([np.asarray(protect, np.int64), u])) if protect is not None else u
            pslots = self.cache.probe(keep)
            ui, ri = u[still], rows[torch.from_numpy(np.flatnonzero(still))]
            placed = self.cache.insert(ui, ri, protect_slots=pslots[pslots >= 0])
            self.admit_mates(mates, mate_rows, np.concatenate([pslots[pslots >= 0], placed[placed >= 0]]), c)
            if stage:
                out = np.flatnonzero(placed < 0)
                sid, srows = self._staged
                held = np.isin(sid, protect) if protect is not None and len(sid) else np.zeros(len(sid), np.bool_)
                nid = np.concatenate([sid[held], ui[out]])
                order = np.argsort(nid, kind="stable")
                nrows = torch.cat([srows[torch.from_numpy(np.flatnonzero(held))], ri[torch.from_numpy(out)]])
                self._staged = (nid[order], nrows[torch.from_numpy(order)])
        return c

    def _staged_rows(self, ids: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """(mask of `ids` held in the prefetch staging buffer, their stored rows)."""
        sid, srows = self._staged  # replaced whole, never mutated: a consistent pair
        if not len(sid) or not len(ids):
            return np.zeros(len(ids), np.bool_), srows[:0]
        pos = np.minimum(np.searchsorted(sid, ids), len(sid) - 1)
        found = sid[pos] == ids
        return found, srows[torch.from_numpy(pos[found])]

    def warm_ids(self) -> np.ndarray:
        """The rows the profile ranks hottest that fit the DRAM cache, outside the static tiers."""
        if self.hot_order is None or not self.cache.capacity_rows:
            return np.zeros(0, np.int64)
        h = self.hot_order
        for static in (self.accel, self.pinned):
            if static is not None:
                h = h[static.locate(h) < 0]
        return h[: self.cache.capacity_rows]


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
        path = Path(path)
        if (path / META_FILE).exists() or (path.exists() and any(path.iterdir())):
            if not overwrite:
                raise InvalidInputError(f"{path} is not empty; pass overwrite=True to replace it")
            shutil.rmtree(path)
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
            _, accel_bytes = _card_memory(hw)
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
        path.mkdir(parents=True, exist_ok=True)
        from .tiers.pagestore import PageStore

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
        except FileNotFoundError:
            raise StoreFormatError(f"{path}: no {META_FILE}; not an sdm embedding store") from None
        except json.JSONDecodeError as exc:
            raise StoreFormatError(f"{path / META_FILE}: unreadable ({exc})") from None
        if meta.get("format") != "sdm-embedding-store" or meta.get("version") != STORE_VERSION:
            raise StoreFormatError(f"{path / META_FILE}: format {meta.get('format')!r} version {meta.get('version')!r}, "
                                   f"expected sdm-embedding-store version {STORE_VERSION}")
        self = object.__new__(cls)
        self.path = path
        hw = hardware if hardware is not None else meta.get("hardware")
        try:
            self.hardware, self.hardware_name = _resolve_hardware(hw) if hw is not None else (None, None)
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"{path}: stored hardware {hw!r} is not a preset ({exc}); pass hardware= (a HardwareSpec) to open"
            ) from None
        self.queue_depth = int(queue_depth or meta["queue_depth"])
        self.page_bytes = int(meta["page_bytes"])
        self.ways = int(meta["ways"])
        self.accel_device = accel_device
        self.cache_layout = cache_layout
        self.admission = admission or meta.get("admission", "auto")
        self.page_admit = page_admit or meta.get("page_admit", "auto")
        self.clock = Clock(inject=inject)
        from .tiers.pagestore import PageStore

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
        self._tables = {s.name: _Table(self, s, opts[s.name], places[s.name]) for s in specs}
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

    def _table(self, name: str) -> _Table:
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
        for name, ids in batch.items():
            t = self._table(name)
            arr = ids.numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
            c = t.prefetch(arr.reshape(-1), None if protect is None else protect.get(name))
            self._stats.record_prefetch(name, c)

    def warm(self, tables: Iterable[str] | None = None) -> int:
        """Fill the DRAM caches with the rows the profile ranks hottest (as many as fit), the way a
        server loads its hot set before taking traffic; with the hot-first SCM layout these are
        contiguous pages. Returns the rows loaded. A store without a profile loads nothing."""
        loaded = 0
        for name in (self.tables if tables is None else tables):
            t = self._table(name)
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
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.EmbeddingBag)]
    if not found:
        raise InvalidInputError(f"{type(model).__name__} holds no nn.EmbeddingBag to wrap")
    store = EmbeddingStore.from_embedding_bags({n: m for n, m in found}, path, hardware=hardware, plan=plan, **kw)
    for name, _ in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, StoreEmbeddingBag(store, name))
    return store
