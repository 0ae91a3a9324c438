"""Real DLRM inference on the partitioned platform: each card's pooled embeddings in torch, host-side
tables through EmbeddingStore, partial tensors gathered, then the model's own dense part.

Numerics are real; time on the cards is modelled (sdm.accel.timeline) because this machine has no such
cards. With CUDA, each card's shards live on a GPU (card k on cuda:k mod n) and partial tensors really
cross to the dense device; without it, every card is a CPU tensor.

Exactness: a table held whole in one place is pooled by the same kernel over the same weights as the
unpartitioned model (`F.embedding_bag`, or EmbeddingStore, which is bitwise equal), so its pooled
vector is bitwise equal. A table split over several places is the sum of partial sums; floating-point
addition is not associative, so those agree to rounding (tests check 1e-5 relative).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sdm.core.checks import bag_offsets, ids_in_range, integer_array
from sdm.core.errors import InvalidInputError
from sdm.accel.partitioner import Partition
from sdm.accel.routing import Router


def card_devices(num_cards: int, use_cuda: bool | None = None) -> list[torch.device]:
    """torch device of each card: cuda:(k mod GPUs) when CUDA is present (and not refused), else CPU."""
    if use_cuda is None:
        use_cuda = torch.cuda.is_available()
    if use_cuda and torch.cuda.is_available():
        n = torch.cuda.device_count()
        return [torch.device("cuda", k % n) for k in range(num_cards)]
    return [torch.device("cpu")] * num_cards


class _Pooled(torch.nn.Module):
    """Stands in for one `emb_l[t]` while the dense part runs: returns the pooled tensor already
    computed on the cards and host, so the model's own forward does the rest unchanged. The tensors
    sit in a list shared by all stand-ins (setting a Module attribute per table per batch is slow)."""

    def __init__(self, k: int, holder: list) -> None:
        super().__init__()
        self._k = k
        self._holder = holder

    def forward(self, *args, **kwargs) -> torch.Tensor:  # noqa: ARG002 - signature of nn.EmbeddingBag
        return self._holder[self._k]


@dataclass
class BatchResult:
    output: torch.Tensor
    counts: np.ndarray                       # [S] lookups per shard
    card_measured_s: np.ndarray              # [K] wall time of each card's pooling on this machine
    host_measured_s: float                   # wall time of the host-side EmbeddingStore lookups
    dense_measured_s: float
    total_measured_s: float
    pooled: list[torch.Tensor] = field(default_factory=list)


class AccelExecutor:
    """Runs a DLRM (`emb_l` ModuleList of nn.EmbeddingBag(mode="sum"), like facebookresearch/dlrm and
    sdm.runtime.dlrm.DLRM) over a partition. `store`: an EmbeddingStore holding at least the host-side tables
    (by table name); needed when any shard is on the host.

    Dense part: for `sdm.runtime.dlrm.DLRM`, its own `top_l(interact(bot_l(x), pooled))`, as its forward
    computes it. For any other model, `forward(model, dense_x, bags)` (default: the reference DLRM's
    `model(dense_x, lS_o, lS_i)`) runs with `emb_l` swapped for stand-ins that return the pooled
    tensors computed here, so the model's own dense code runs unchanged.

    Memory: tables fused per card are one `torch.cat` copy of their weights (on a GPU that copy is the
    card's memory; on the CPU it is an extra copy beside the model's own).
    """

    def __init__(self, model: torch.nn.Module, partition: Partition, *, store=None, dense_on: int = 0,
                 use_cuda: bool | None = None, forward=None) -> None:
        emb = getattr(model, "emb_l", None)
        if emb is None or len(emb) != len(partition.tables):
            raise InvalidInputError(f"model must have emb_l with {len(partition.tables)} EmbeddingBags "
                                    f"(one per partitioned table), got {None if emb is None else len(emb)}")
        for t, m in zip(partition.tables, emb):
            w = getattr(m, "weight", None)
            if w is None or tuple(w.shape) != (t.num_rows, t.dim):
                raise InvalidInputError(f"table {t.name!r}: emb_l weight has shape "
                                        f"{None if w is None else tuple(w.shape)}, partition expects {(t.num_rows, t.dim)}")
            if getattr(m, "mode", "sum") != "sum":
                raise InvalidInputError(f"table {t.name!r}: only mode='sum' bags can be split across cards")
        if store is None and any(not s.on_card for s in partition.shards):
            raise InvalidInputError("partition keeps tables on the host but no EmbeddingStore was given")
        self.model = model
        self.partition = partition
        self.store = store
        self.router = Router(partition)
        self.devices = card_devices(partition.num_cards, use_cuda)
        self.dense_device = self.devices[dense_on] if partition.num_cards else torch.device("cpu")
        from sdm.runtime.dlrm import DLRM

        self._forward = forward or _dlrm_forward
        self._direct = forward is None and type(model) is DLRM
        if self.dense_device.type != "cpu":
            # the dense part runs on the dense card's device; the tables stay where the partition put them
            tables_, model.emb_l = model.emb_l, torch.nn.ModuleList()
            try:
                model.to(self.dense_device)
            finally:
                model.emb_l = tables_
        # Tables held whole by one card are fused per (card, dim) into one weight tensor and pooled by
        # one embedding_bag call per batch (table-batched, as FBGEMM's TBE does on a GPU): one call
        # instead of one per table. Each bag still sums the same rows in the same order: bitwise equal.
        # Other card shards (row ranges, plan row sets) keep their own weights: a view of the model's
        # weights on CPU (no copy), a copy on a GPU.
        self._weights: list[torch.Tensor | None] = [None] * len(partition.shards)
        # (card, first and last+1 position in self._order, shard ids, W) per fused group
        self._fused: list[tuple[int, int, int, np.ndarray, torch.Tensor]] = []
        self._fused_tables: set[int] = set()
        order: list[int] = []
        shift: list[int] = []
        groups: dict[tuple[int, int], list[int]] = {}
        for t in range(len(partition.tables)):
            sids = self.router.shard_ids[t]
            sh = partition.shards[sids[0]]
            if sids.size == 1 and sh.on_card and sh.rows is None:
                groups.setdefault((sh.location, partition.tables[t].dim), []).append(t)
        with torch.no_grad():
            for (k, _), ts in sorted(groups.items()):
                ws = [emb[t].weight.detach() for t in ts]
                bases = np.concatenate([[0], np.cumsum([w.shape[0] for w in ws])[:-1]]).astype(np.int64)
                w = ws[0] if len(ws) == 1 else torch.cat(ws)
                sids = np.array([self.router.shard_ids[t][0] for t in ts], dtype=np.int64)
                self._fused.append((k, len(order), len(order) + len(ts), sids, w.to(self.devices[k])))
                order.extend(ts)
                shift.extend(int(b) for b in bases)
                self._fused_tables.update(ts)
        # tables are validated and concatenated in this order: each fused group is one contiguous slice
        rest = [t for t in range(len(partition.tables)) if t not in self._fused_tables]
        self._order = np.array(order + rest, dtype=np.int64)
        self._shift = np.array(shift + [0] * len(rest), dtype=np.int64)
        self._pos_of = np.argsort(self._order)
        with torch.no_grad():
            for i, s in enumerate(partition.shards):
                if not s.on_card or s.table_index in self._fused_tables:
                    continue
                w = emb[s.table_index].weight.detach()
                w = w[torch.from_numpy(s.rows)] if s.rows is not None else w[s.row_start:s.row_end]
                self._weights[i] = w.to(self.devices[s.location])
        self._num_rows = np.array([t.num_rows for t in partition.tables], dtype=np.int64)
        self._holder: list = [None] * len(partition.tables)
        self._stand_ins = torch.nn.ModuleList([_Pooled(k, self._holder) for k in range(len(partition.tables))])

    # ---- one batch ---------------------------------------------------------------------------
    def pooled(self, bags: Sequence[tuple]) -> tuple[list[torch.Tensor], np.ndarray, np.ndarray, float]:
        """Pooled embeddings per table (on the dense device), lookups per shard, per-card and host wall time."""
        P = self.partition
        if len(bags) != len(P.tables):
            raise InvalidInputError(f"got bags for {len(bags)} tables, the model has {len(P.tables)}")
        S, K = len(P.shards), P.num_cards
        counts = np.zeros(S, dtype=np.int64)
        card_s = np.zeros(K)
        host_s = 0.0
        # validate every table before any lookup, so a bad batch leaves caches and statistics unchanged
        V = _validate_batch(P.tables, bags, self._num_rows, self._order)
        B = V.num_bags
        out = [None] * len(P.tables)
        if self._fused:
            shifted = V.ids + np.repeat(self._shift, V.lens)   # ids into each group's fused weights
        for k, a, b, sids, w in self._fused:   # one embedding_bag per card for its whole tables
            t0 = time.perf_counter()
            lo, hi = int(V.starts[a]), int(V.starts[b - 1] + V.lens[b - 1])
            offs = (V.offsets[a:b] + (V.starts[a:b] - lo)[:, None]).ravel()
            dev = self.devices[k]
            pooled = F.embedding_bag(torch.from_numpy(shifted[lo:hi]).to(dev), w, torch.from_numpy(offs).to(dev),
                                     mode="sum").to(self.dense_device)      # partial tensor transfer
            for j, part in enumerate(pooled.view(b - a, B, -1).unbind(0)):
                out[self._order[a + j]] = part
            counts[sids] = V.lens[a:b]
            card_s[k] += time.perf_counter() - t0
        for t, tab in enumerate(P.tables):
            if t in self._fused_tables:
                continue
            ids, offs = V.table(self._pos_of[t])
            pos, local = self.router.tables[t].route(ids)
            sids = self.router.shard_ids[t]
            single = sids.size == 1
            if not single:
                sample = np.repeat(np.arange(B), np.diff(np.r_[offs, ids.size]))
            acc = None
            for j, s_id in enumerate(sids):  # per shard of this table (<= cards + 1)
                shard = P.shards[s_id]
                if single:
                    sub_ids, sub_off = local, offs
                else:
                    m = pos == j
                    sub_ids = local[m]
                    sub_off = np.r_[0, np.cumsum(np.bincount(sample[m], minlength=B))[:-1]]
                counts[s_id] = sub_ids.size
                t0 = time.perf_counter()
                if shard.on_card:
                    dev = self.devices[shard.location]
                    part = F.embedding_bag(torch.from_numpy(sub_ids).to(dev), self._weights[s_id],
                                           torch.from_numpy(sub_off).to(dev), mode="sum")
                    part = part.to(self.dense_device)            # partial tensor transfer
                    card_s[shard.location] += time.perf_counter() - t0
                else:
                    part = self.store.lookup(tab.name, torch.from_numpy(ids[m] if not single else ids),
                                             torch.from_numpy(sub_off))
                    part = part.to(self.dense_device)
                    host_s += time.perf_counter() - t0
                acc = part if acc is None else acc + part
            out[t] = acc
        return out, counts, card_s, host_s

    @torch.no_grad()
    def run_batch(self, dense_x: torch.Tensor, bags: Sequence[tuple]) -> BatchResult:
        t0 = time.perf_counter()
        pooled, counts, card_s, host_s = self.pooled(bags)
        t1 = time.perf_counter()
        x = dense_x.to(self.dense_device)
        if self._direct:   # sdm.runtime.dlrm.DLRM: its dense part, called as its forward calls it
            m = self.model
            y = m.top_l(m.interact(m.bot_l(x), pooled))
        else:              # any other model: its own forward, with emb_l returning the pooled tensors
            self._holder[:] = pooled
            real = self.model.emb_l
            try:
                self.model.emb_l = self._stand_ins
                y = self._forward(self.model, x, bags)
            finally:
                self.model.emb_l = real
                self._holder[:] = [None] * len(self._holder)
        t2 = time.perf_counter()
        return BatchResult(y, counts, card_s, host_s, t2 - t1, t2 - t0, pooled)


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        try:
            return x.numpy()          # CPU, no grad: zero-copy, and the common case
        except (RuntimeError, TypeError):
            return x.detach().cpu().numpy()
    return np.asarray(x)


@dataclass
class _Batch:
    """A validated batch, tables in the executor's order: ids concatenated, offsets stacked [T, B]."""

    ids: np.ndarray       # all tables' ids, concatenated in `order`
    lens: np.ndarray      # [T] ids per table
    starts: np.ndarray    # [T] where each table's ids start in `ids`
    offsets: np.ndarray   # [T, B]
    num_bags: int

    def table(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a = int(self.starts[i])
        return self.ids[a:a + int(self.lens[i])], self.offsets[i]


def _validate_batch(tables, bags, num_rows: np.ndarray, order: np.ndarray) -> _Batch:
    """Check a whole batch (every table) before any lookup; errors name the table and position.

    Per table only the conversion to numpy; the range and offset checks run once over all tables
    (one vector op each), since per-table Python dominates at the seeds' small batches. A batch that
    fails is handed to sdm.core.checks for the table at fault, so the words are everyone's."""
    ids, offs = [], []
    for t in order:
        what = f"table {tables[t].name!r}"
        idx, off = bags[t]
        a, o = integer_array(_np(idx), f"indices of {what}"), integer_array(_np(off), f"offsets of {what}")
        if a.ndim != 1:
            raise InvalidInputError(f"{what}: indices must be 1-D, got shape {tuple(a.shape)}")
        if o.ndim != 1 or o.size == 0:
            raise InvalidInputError(f"{what}: offsets must be a non-empty 1-D array, got shape {tuple(o.shape)}")
        ids.append(a)
        offs.append(o)
    sizes = {o.size for o in offs}
    if len(sizes) != 1:
        raise InvalidInputError(f"tables have different numbers of bags in one batch: {sorted(sizes)}")
    lens = np.array([a.size for a in ids], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    cat = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    if cat.size:
        bad = (cat < 0) | (cat >= np.repeat(num_rows[order], lens))
        if bad.any():
            j = int(np.searchsorted(starts, int(np.argmax(bad)), side="right")) - 1
            tab = tables[int(order[j])]
            ids_in_range(ids[j], int(tab.num_rows), f"table {tab.name!r}")
    o2 = np.stack(offs)
    ok = (o2[:, 0] == 0) & (o2[:, -1] <= lens)
    if o2.shape[1] > 1:
        ok &= (o2[:, 1:] >= o2[:, :-1]).all(axis=1)
    if not ok.all():
        j = int(np.argmin(ok))
        bag_offsets(offs[j], int(lens[j]), f"table {tables[int(order[j])].name!r}", exact_end=False)
    return _Batch(cat, lens, starts, o2, int(sizes.pop()))


def _dlrm_forward(model, dense_x, bags):
    return model(dense_x, [o for _, o in bags], [i for i, _ in bags])


def dense_flops_per_sample(model: torch.nn.Module, num_tables: int, dim: int) -> float:
    """Multiply-adds x 2 of the dense part per sample: every nn.Linear outside `emb_l`, plus the dot
    interaction (pairwise dots of T = tables + 1 vectors of `dim`: T^2 x dim x 2, as a bmm computes)."""
    flops = sum(2.0 * m.in_features * m.out_features for name, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and not name.startswith("emb_l"))
    T = num_tables + 1
    return flops + 2.0 * T * T * dim


def build_host_store(model: torch.nn.Module, partition: Partition, path, hardware, *,
                     dram_cache_bytes: int | None = None, **kw):
    """An EmbeddingStore (SCM page store on disk + DRAM cache) for the tables with rows on the host.

    The store gets the host's half of the hardware (cards removed), so its own placement does not pin
    rows in card memory a second time; which rows the cards serve is the partition's business.
    Returns None when every table is wholly on the cards.
    """
    from sdm.runtime.embedding_store import EmbeddingStore

    host_tabs = sorted({s.table_index for s in partition.shards if not s.on_card})
    if not host_tabs:
        return None
    host_hw = hardware.replace(card_count=0) if getattr(hardware, "cards", ()) else hardware
    specs = [partition.tables[i] for i in host_tabs]
    weights = {partition.tables[i].name: model.emb_l[i].weight.detach().to("cpu", torch.float32) for i in host_tabs}
    return EmbeddingStore.create(path, specs, hardware=host_hw, weights=weights,
                                 dram_cache_bytes=dram_cache_bytes, overwrite=True, **kw)


@dataclass
class ReplayResult:
    """What an executed replay measured, batch by batch; feed `counts` and `host_measured_s` to
    sdm.accel.timeline.model_timeline for the modelled timeline of the same requests."""

    counts: np.ndarray            # [R, S]
    batch_sizes: np.ndarray       # [R]
    card_measured_s: np.ndarray   # [R, K]
    host_measured_s: np.ndarray   # [R]
    dense_measured_s: np.ndarray  # [R]
    total_measured_s: np.ndarray  # [R]
    wall_s: float
    outputs: list[torch.Tensor] = field(default_factory=list)

    @property
    def samples_per_s(self) -> float:
        return float(self.batch_sizes.sum() / self.wall_s) if self.wall_s > 0 else 0.0


def dense_inputs(num_samples: int, num_dense: int, seed: int = 0) -> torch.Tensor:
    """Deterministic dense features for a replay (the traces carry only sparse lookups)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(num_samples, num_dense, generator=g)


def replay(executor: AccelExecutor, trace, *, num_dense: int, max_batches: int | None = None,
           keep_outputs: bool = False, seed: int = 0, progress: bool = False) -> ReplayResult:
    """Run every batch of `trace` through the executor (one batch = one request)."""
    names = [t.name for t in executor.partition.tables]
    if list(trace.table_names) != names:
        raise InvalidInputError(f"trace tables {list(trace.table_names)[:5]}... do not match the model's "
                                f"{names[:5]}...")
    R = trace.num_batches if max_batches is None else min(trace.num_batches, int(max_batches))
    dense = dense_inputs(min(R * trace.batch_size, trace.num_samples), num_dense, seed)
    S, K = len(executor.partition.shards), executor.partition.num_cards
    counts = np.zeros((R, S), dtype=np.int64)
    sizes = np.zeros(R, dtype=np.int64)
    card = np.zeros((R, K)); host = np.zeros(R); dn = np.zeros(R); tot = np.zeros(R)
    outs = []
    it = range(R)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="replay", unit="batch")
    t0 = time.perf_counter()
    for b in it:
        # the trace's offsets hold samples + 1 entries; nn.EmbeddingBag's take the starts only
        bags = [(torch.from_numpy(np.ascontiguousarray(i)), torch.from_numpy(np.ascontiguousarray(o[:-1])))
                for i, o in trace.batch(b)]
        n = int(bags[0][1].numel())
        x = dense[b * trace.batch_size: b * trace.batch_size + n]
        res = executor.run_batch(x, bags)
        counts[b], sizes[b], card[b], host[b] = res.counts, n, res.card_measured_s, res.host_measured_s
        dn[b], tot[b] = res.dense_measured_s, res.total_measured_s
        if keep_outputs:
            outs.append(res.output.cpu())
    wall = time.perf_counter() - t0
    return ReplayResult(counts, sizes, card, host, dn, tot, wall, outs)
