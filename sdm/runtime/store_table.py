"""Run-time state of one EmbeddingStore table: its tiers (card rows, pinned DRAM rows, DRAM cache,
SCM pages) and the lookup and prefetch paths through them.

sdm/runtime/embedding_store.py owns the public API and builds one StoreTable per table from the
stored specs, options and placement (sdm/runtime/store_files.py); this module owns what happens per
batch. See embedding_store's doc for the order of a lookup.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from sdm.runtime import row_formats
from sdm.hardware.platform import HOST_QUEUE_DEPTH
from sdm.core.errors import InvalidInputError
from sdm.core.checks import ids_in_range, integer_array
from sdm.runtime.page_mates import admit_mates, page_mates
from sdm.runtime.pooling import BagBatch, compact
from sdm.runtime.quantized import kernel_checks_ids, pool_stored
from sdm.core.spec import TableSpec
from sdm.runtime.store_config import BagOptions, StoreSettings, card_memory, resolve_admission, resolve_page_admit
from sdm.runtime.store_placement import TablePlacement
from sdm.runtime.store_stats import LookupRecord, TierCounters
from sdm.runtime.updates import read_token, stale_mask
from sdm.tiers.device_memory import DeviceMemoryTier
from sdm.cache.dram_cache import DramCache
from sdm.cache.window import staged_positions
from sdm.cache.window import Lookahead, fresh_hits, place_by_next_use, protected_slots, staging_room, window_ids

# Rows per SCM read call when loading a static tier at open: bounds the temporary buffers.
READ_CHUNK_ROWS = 1 << 16
# Rows counted "predicted warm" = this x the table's DRAM cache rows (+ its card and pinned rows),
# hottest first by the profile. 1.0: exactly what a static placement of that size would hold.
WARM_ROWS_FACTOR = 1.0


class StoreTable:
    """Run-time state of one table: its tiers and how to look up through them."""

    def __init__(self, spec: TableSpec, opts: BagOptions, place: TablePlacement, *, scm, hardware,
                 settings: StoreSettings):
        """`scm`: the store's open PageStore (holds every row); `hardware`: a HardwareSpec or None
        (no device models: modelled times are 0)."""
        self.scm = scm
        self.settings = settings
        self.spec = spec
        self.opts = opts
        self.width = row_formats.storage_width(spec.dim, spec.row_format)
        self.row_bytes = spec.row_bytes  # read per batch; TableSpec computes (and checks) it per call
        self.dtype = torch.from_numpy(np.zeros(0, row_formats.storage_dtype(spec.row_format))).dtype
        hw = hardware
        card_mem, _ = card_memory(hw)
        self.accel = None
        if len(place.accel_ids):
            self.accel = DeviceMemoryTier(
                spec.name, spec.num_rows, place.accel_ids, self._read_scm_bulk(place.accel_ids),
                device=settings.accel_device, memory=card_mem,
            )
        self.pinned = None
        dram_dev = getattr(getattr(hw, "host", None), "dram", None)
        if len(place.dram_pinned_ids):
            self.pinned = DeviceMemoryTier(
                spec.name, spec.num_rows, place.dram_pinned_ids, self._read_scm_bulk(place.dram_pinned_ids),
                device="cpu", memory=dram_dev,
            )
        self.dram_dev = dram_dev
        self._model_memo: dict[int, float] = {}   # n_rows -> modelled DRAM time (see _dram_model_s)
        self.cache = DramCache(
            spec.num_rows, self.width, self.dtype, place.dram_cache_bytes, ways=settings.ways,
            policy=place.policy, hot_ids=place.static_hot_ids, table=spec.name, layout=settings.cache_layout,
        )
        hot = self.cache.needs_static_fill()
        if hot is not None and len(hot):
            hot = hot[: self.cache.capacity_rows]
            self.cache.insert(hot, torch.from_numpy(self._read_scm_bulk(hot)))
        self.fast_ok = self.accel is None and self.pinned is None
        # SCM page layout (row_order[slot] = row id; None: id order), to find a fetched page's rows
        self.row_order = place.row_order
        self.rows_per_page = int(scm.table_info(spec.name).rows_per_page)
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
        self._lookahead = Lookahead()   # batches read ahead, for the window rule (sdm.cache.window)
        profiled = self.warm is not None
        self.admission = resolve_admission(settings.admission, profiled, spec.name)
        self.page_admit = resolve_page_admit(settings.page_admit, profiled, spec.name, self.admission)
        if self.admission == "warm" and not self.cache.direct:
            self.cache.admit_mask = self.warm

    # ---- SCM -----------------------------------------------------------------------------------
    def _read_scm_bulk(self, ids: np.ndarray) -> np.ndarray:
        parts = [self.scm.read_rows(self.spec.name, ids[a : a + READ_CHUNK_ROWS])
                 for a in range(0, len(ids), READ_CHUNK_ROWS)]
        return np.concatenate(parts) if parts else np.zeros((0, self.width), row_formats.storage_dtype(self.spec.row_format))

    def read_all(self) -> np.ndarray:
        """Every stored row, id order (checkpoints; not a lookup: no stats, no cache fill)."""
        return self._read_scm_bulk(np.arange(self.spec.num_rows))

    def read_scm(self, ids: np.ndarray, c: TierCounters, mates: np.ndarray | None = None):
        """Stored rows of `ids` from SCM, charging `c` with measured and modelled time. With
        `mates` (rows on the same pages), returns (rows of ids, rows of mates): same page reads."""
        if not len(ids):
            empty = torch.empty((0, self.width), dtype=self.dtype)
            return empty if mates is None else (empty, empty)
        both = ids if mates is None or not len(mates) else np.concatenate([ids, mates])
        # the one SCM time account: the page store times and models the reads it made
        rows, charge = self.scm.read_rows_charged(self.spec.name, both)
        c.rows += len(ids)
        c.reads += charge.ops
        c.bytes += charge.bytes
        c.measured_s += charge.measured_s
        c.modelled_s += charge.modelled_s
        out = torch.from_numpy(np.ascontiguousarray(rows))
        if mates is None:
            return out
        return out[: len(ids)], out[len(ids):]

    def _dram_model_s(self, n_rows: int) -> float:
        """Device-model time of `n_rows` host DRAM row reads (HOST_QUEUE_DEPTH misses in flight).
        Memoized by `n_rows` (serving repeats batch sizes; the model costs ~2 us a call, a
        fixed cost per table of a batched lookup)."""
        if self.dram_dev is None or not n_rows:
            return 0.0
        memo = self._model_memo
        got = memo.get(n_rows)
        if got is None:
            if len(memo) >= 4096:
                memo.clear()
            got = memo[n_rows] = float(self.dram_dev.read_time_s(int(n_rows), self.row_bytes, HOST_QUEUE_DEPTH))
        return got

    # ---- lookup --------------------------------------------------------------------------------
    def lookup(self, batch: BagBatch) -> tuple[torch.Tensor, LookupRecord]:
        rec = LookupRecord()
        with self.cache.lock:
            self._lookahead.note_lookup()   # (ages out read-ahead batches no lookup came for)
        if self.fast_ok:
            out = self._lookup_cached(batch, rec)
            if out is not None:
                return out, rec
        batch.check_ids(self.spec.name, self.spec.num_rows)   # before any state changes
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
                if not kernel_checks_ids(self.spec.row_format, batch):
                    batch.check_ids(self.spec.name, self.spec.num_rows)
                try:
                    out = pool_stored(cache.data, batch.indices, batch, self.spec.row_format, batch.padding_idx)
                except (IndexError, RuntimeError):
                    batch.check_ids(self.spec.name, self.spec.num_rows)  # unchecked ids: the kernel's own range
                    raise                                                # check refused one; name it
            else:
                pad = None
                if batch.padding_idx is not None:
                    where = np.flatnonzero(idx == batch.padding_idx)
                    if not len(where):
                        return None  # the reference sets padding_idx: need a padding row, see pooling.compact
                # one compiled pass: probe, recency, slot remap; with a look-ahead window open, its
                # rule as on the general path (the rows read ahead for this batch are first reads)
                slots = cache.probe_all_hit(idx, self._lookahead)
                if slots is None:
                    return None
                if batch.padding_idx is not None:
                    pad = int(slots[where[0]])
                out = pool_stored(cache.data, torch.from_numpy(slots), batch, self.spec.row_format, pad)
        c = rec.tiers["dram"]
        c.hits = c.rows = c.reads = len(idx)
        c.bytes = len(idx) * self.row_bytes
        c.measured_s = time.perf_counter() - t0
        c.modelled_s = rec.modelled_s = self._dram_model_s(len(idx))
        return out

    def _lookup_general(self, batch: BagBatch, rec: LookupRecord) -> torch.Tensor:
        uniq, inverse, pad = compact(batch.indices, batch.padding_idx)
        u = uniq.numpy()
        nu = len(u)
        # the batch's rows in their stored format, pooled by the format's own kernel (no decode)
        weight = torch.zeros((nu + (1 if pad == nu else 0), self.width), dtype=self.dtype)
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
                weight[torch.from_numpy(sel)] = static.gather(loc[got]).to("cpu")
                tier[sel] = 0 if counters is ca else 1
                counters.rows += len(sel)
                counters.reads += len(sel)
                counters.bytes += len(sel) * self.row_bytes
                counters.modelled_s += static.modelled_read_s(len(sel))
            counters.measured_s += time.perf_counter() - t0
            rest = rest[~got]
        cache = self.cache
        rest_ids = u[rest]
        with cache.lock:
            first = cache.probe(rest_ids)
        missed = first < 0
        miss_ids = rest_ids[missed]
        token = read_token(self)                                # before the staged/SCM reads (updates.py)
        staged, staged_rows = self._staged_rows(miss_ids)      # prefetched rows the cache did not take
        read_ids = miss_ids[~staged]
        mates = page_mates(self, read_ids)
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
            coming, read_ahead = self._lookahead.coming(u)
            if hit.any():
                hs = slots[hit]
                cache.touch(fresh_hits(rest_ids[hit], hs, read_ahead))   # read-ahead rows: first reads
                weight[torch.from_numpy(rest[hit])] = cache.data[torch.from_numpy(hs)]
            # misses placed by next use in the look-ahead window (none: as before, hits protected)
            need_ids, rows_ins = rest_ids[need], rows_need
            stale = stale_mask(self, token, need_ids)          # updated since our reads: returned, not cached
            if stale.any():
                keep = np.flatnonzero(~stale)
                need_ids, rows_ins = need_ids[keep], rows_need[torch.from_numpy(keep)]
            placed = place_by_next_use(cache, need_ids, slots[hit], coming, insert=lambda g, p: cache.insert(
                need_ids[g], rows_ins[torch.from_numpy(g)], protect_slots=p))
            if len(mates):  # rows of the fetched pages: cached without evicting this batch's or the window's rows
                admit_mates(self, mates, mate_rows, protected_slots(cache, self._lookahead.window(), slots[hit],
                                                                    placed[placed >= 0]), cs, token)
        if need.any():
            weight[torch.from_numpy(rest[need])] = rows_need
        tier[rest[need]] = 2
        dram = hit | (need & ~lost & from_stage)               # staged rows were in host DRAM too
        tier[rest[dram]] = 1
        n_dram = int(dram.sum())
        cd.rows += n_dram
        cd.reads += n_dram
        cd.bytes += n_dram * self.row_bytes
        cd.measured_s += time.perf_counter() - t0
        cd.modelled_s += self._dram_model_s(n_dram)
        occ = np.bincount(tier[inverse.numpy()], minlength=3)
        ca.hits, cd.hits, cs.hits = int(occ[0]), int(occ[1]), int(occ[2])
        # tiers are read one after another on this path (accel, DRAM, then SCM)
        rec.modelled_s = ca.modelled_s + cd.modelled_s + cs.modelled_s
        return pool_stored(weight, inverse, batch, fmt, pad)

    def prefetch(self, ids: np.ndarray, protect: np.ndarray | None, stage: bool = True) -> TierCounters:
        """Read the rows of `ids` missing from every tier into host DRAM, never evicting rows of
        the look-ahead window (`protect`, rows batches in flight still need, + `ids`), by the rule
        of `sdm.cache.window`: only rows that get a slot are read (none read twice), in window
        order. With `stage`, rows the cache cannot take wait in a staging buffer the lookup path
        reads, within the room the cache's empty slots leave (inside the budget), kept while in
        the window. `stage=False` (warm-up): no window, no staging."""
        c = TierCounters()
        u = np.unique(self.check_ids(ids, "prefetch ids"))
        if protect is not None:
            protect = self.check_ids(protect, "protect ids")
        with self.cache.lock:   # the lookup thread reads and advances the same look-ahead
            ahead = self._lookahead.note_prefetch(u, protect) if stage else np.zeros(0, np.int64)
        window = window_ids(ahead, u) if stage else np.zeros(0, np.int64)
        if not len(u) or not self.cache.capacity_rows:
            with self.cache.lock:   # (lookups read the staging buffer under this lock)
                self._keep_staged(window, np.zeros(0, np.int64), None)
            return c
        for static in (self.accel, self.pinned):
            if static is not None:
                u = u[static.locate(u) < 0]
        with self.cache.lock:
            u = u[self.cache.probe(u) < 0]
        admit = self.cache.policy.admit(u)
        if admit is not None:
            u = u[admit]
        if stage:
            u = u[~self._staged_rows(u)[0]]
            with self.cache.lock:
                take = self._lookahead.frontier.admit(self.cache, ahead, u, protected_slots(self.cache, window))
            room = max(0, staging_room(self.cache, len(self._staged[0])) - len(take))   # take fills empty slots too
            extra = u[~np.isin(u, take, assume_unique=True)][:room]
            u = np.concatenate([take, extra])
        mates = page_mates(self, u)
        token = read_token(self)                               # before the SCM read (updates.py)
        rows, mate_rows = self.read_scm(u, c, mates)
        with self.cache.lock:
            still = (self.cache.probe(u) < 0) & ~stale_mask(self, token, u)   # updated since: not kept
            pslots = protected_slots(self.cache, window)
            ui, ri = u[still], rows[torch.from_numpy(np.flatnonzero(still))]
            placed = self.cache.insert(ui, ri, protect_slots=pslots)
            admit_mates(self, mates, mate_rows, np.concatenate([pslots, placed[placed >= 0]]), c, token)
            if stage:
                self._lookahead.note_read(ui[placed >= 0])
                out = np.flatnonzero(placed < 0)
                self._keep_staged(window, ui[out], ri[torch.from_numpy(out)])
        return c

    def _keep_staged(self, window: np.ndarray, new_ids: np.ndarray, new_rows: torch.Tensor | None) -> None:
        """Staging := staged rows still in the window + `new_ids`, within the cache's empty room."""
        sid, srows = self._staged
        held = np.isin(sid, window) if len(sid) else np.zeros(0, np.bool_)
        room = staging_room(self.cache, int(held.sum()))
        new_ids = new_ids[:room]
        nid = np.concatenate([sid[held], new_ids])
        parts = [srows[torch.from_numpy(np.flatnonzero(held))]]
        if new_rows is not None:
            parts.append(new_rows[: len(new_ids)])
        order = np.argsort(nid, kind="stable")
        self._staged = (nid[order], torch.cat(parts)[torch.from_numpy(order)])

    def check_ids(self, ids, what: str) -> np.ndarray:
        """`ids` as a flat int64 array of rows of this table, else InvalidInputError naming the
        table, the first bad id and its position (the checks lookup's validation uses)."""
        where = f"table {self.spec.name!r}: {what}"
        if isinstance(ids, torch.Tensor):
            if ids.device.type != "cpu":
                raise InvalidInputError(f"{where} must be on the CPU, got device {ids.device}")
            ids = ids.numpy()
        return ids_in_range(integer_array(ids, where).reshape(-1), self.spec.num_rows, where)

    def _staged_rows(self, ids: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """(mask of `ids` held in the prefetch staging buffer, their stored rows)."""
        sid, srows = self._staged  # replaced whole, never mutated: a consistent pair
        found, pos = staged_positions(sid, ids)
        return found, srows[torch.from_numpy(pos)]

    def warm_ids(self) -> np.ndarray:
        """The rows the profile ranks hottest that fit the DRAM cache, outside the static tiers."""
        if self.hot_order is None or not self.cache.capacity_rows:
            return np.zeros(0, np.int64)
        h = self.hot_order
        for static in (self.accel, self.pinned):
            if static is not None:
                h = h[static.locate(h) < 0]
        return h[: self.cache.capacity_rows]
