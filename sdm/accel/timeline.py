"""Modelled timeline of each request on the six-card platform, vectorized over requests.

One request (a batch of samples) goes through these stages (seed 000/001: model partitioning across
cards, net-split with the host, partial tensor transfers, command batching):

  host --ids--> each card          PCIe: host uplink (shared) and the card's x4 link, per-command latency
  card: embedding reads            per shard, rows x row_bytes from SRAM or LPDDR (DeviceSpec.read_time_s)
  card: pooling                    lookups x dim adds at the card's int8 / fp16 rate
  host: host-side tables           EmbeddingStore over DRAM + SCM: modelled (hit rate x DRAM, misses x SCM
                                   pages) and, when the executor ran, measured
  partial tensors --> dense card   one shared link into the dense card, first come first served
  dense card: MLPs + interaction   flops at the card's fp16 rate; result back to the host

Everything is an array [requests] or [requests, cards]; the only Python loops are over cards/producers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.accel.partitioner import HOST, Partition
from sdm.hardware.pcie import serial_arrival_s


@dataclass
class Timeline:
    """Per-request modelled times (seconds). Shapes: [R] or [R, K] (K cards)."""

    batch_sizes: np.ndarray
    card_sram_s: np.ndarray          # [R, K] embedding reads from SRAM
    card_lpddr_s: np.ndarray         # [R, K] embedding reads from LPDDR
    card_pool_s: np.ndarray          # [R, K] pooling compute
    card_in_s: np.ndarray            # [R, K] ids host -> card (PCIe, incl. command latency)
    card_out_s: np.ndarray           # [R, K] partial tensors card -> dense card
    card_lookups: np.ndarray         # [R, K]
    host_modelled_s: np.ndarray      # [R] host-side lookups, DRAM + SCM model
    host_dram_s: np.ndarray          # [R]
    host_scm_s: np.ndarray           # [R]
    host_measured_s: np.ndarray | None   # [R] wall time of EmbeddingStore lookups, when executed
    host_used_s: np.ndarray          # [R] the host time the critical path used
    host_out_s: np.ndarray           # [R] host partial tensors + dense features -> dense card
    host_lookups: np.ndarray         # [R]
    arrival_s: np.ndarray            # [R] last partial tensor at the dense card
    queue_s: np.ndarray              # [R] waiting for the shared link into the dense card
    dense_s: np.ndarray              # [R] MLPs + interaction on the dense card
    result_s: np.ndarray             # [R] result back to the host
    latency_s: np.ndarray            # [R]
    critical: np.ndarray             # [R] producer on the critical path: card index, or HOST
    dense_on: int
    commands: np.ndarray             # [R] PCIe commands issued per request
    batching: bool
    host_threads: int
    meta: dict = field(default_factory=dict)

    @property
    def num_requests(self) -> int:
        return int(self.latency_s.size)

    @property
    def num_cards(self) -> int:
        return int(self.card_pool_s.shape[1])

    def card_busy_s(self) -> np.ndarray:
        """[R, K] compute/memory time each card spends per request (dense part on the dense card)."""
        busy = self.card_sram_s + self.card_lpddr_s + self.card_pool_s
        busy = busy.copy()
        if self.num_cards:
            busy[:, self.dense_on] += self.dense_s
        return busy

    def link_busy_s(self) -> np.ndarray:
        """[R, K] time each card's PCIe link is busy per request (both directions on one link: a
        conservative bound, as x4 links are full duplex)."""
        busy = self.card_in_s + self.card_out_s
        busy = busy.copy()
        if self.num_cards:
            busy[:, self.dense_on] += self.card_out_s.sum(axis=1) + self.host_out_s + self.result_s
        return busy

    def bottleneck(self) -> tuple[str, float]:
        """(resource, mean busy seconds per request) of the busiest resource: throughput bound."""
        cands = {f"card{k}": float(v) for k, v in enumerate(self.card_busy_s().mean(axis=0))}
        cands.update({f"card{k}-pcie": float(v) for k, v in enumerate(self.link_busy_s().mean(axis=0))})
        cands["host"] = float(self.host_used_s.mean()) / max(self.host_threads, 1)
        cands["scm"] = float(self.host_scm_s.mean())  # one device queue shared by all host threads
        name = max(cands, key=cands.get)
        return name, cands[name]

    def max_qps(self) -> float:
        """Requests/s with stages pipelined across requests: 1 / busiest resource's time per request."""
        _, busy = self.bottleneck()
        return 1.0 / busy if busy > 0 else float("inf")

    def utilisation(self, qps: float | None = None) -> np.ndarray:
        """[K] fraction of time each card is busy at `qps` requests/s (default: the max QPS)."""
        q = self.max_qps() if qps is None else qps
        return np.minimum(self.card_busy_s().mean(axis=0) * q, 1.0)

    def load_imbalance(self) -> float:
        """max / mean card busy time (1.0 = perfectly balanced)."""
        b = self.card_busy_s().mean(axis=0)
        return float(b.max() / b.mean()) if b.size and b.mean() > 0 else 1.0

    def critical_share(self) -> dict[str, float]:
        """Share of requests whose critical path ran through each producer."""
        names, counts = np.unique(self.critical, return_counts=True)
        return {("host" if n == HOST else f"card{int(n)}"): float(c) / self.num_requests
                for n, c in zip(names, counts)}


def _shard_arrays(partition: Partition):
    sh = partition.shards
    loc = np.array([s.location for s in sh], dtype=np.int64)
    rb = np.array([partition.tables[s.table_index].row_bytes for s in sh], dtype=np.int64)
    dim = np.array([partition.tables[s.table_index].dim for s in sh], dtype=np.int64)
    fmt = [partition.tables[s.table_index].row_format for s in sh]
    tier = [s.tier for s in sh]
    return loc, rb, dim, fmt, tier


def model_timeline(platform, partition: Partition, counts: np.ndarray, batch_sizes: np.ndarray, *,
                   dense_flops_per_sample: float, dense_in_bytes_per_sample: float,
                   host_hit_rate: float | np.ndarray = 1.0, host_measured_s: np.ndarray | None = None,
                   host_time: str = "modelled", batching: bool = True, index_bytes: int = 4,
                   partial_bytes: int = 4, output_bytes_per_sample: float = 4.0) -> Timeline:
    """Model every request of a replay. `counts[r, s]`: lookups of request r served by shard s.

    `host_hit_rate` (scalar or per shard): fraction of host-side lookups the DRAM cache serves; the rest
    read one SCM page each (an upper bound: two misses on one page in one batch are one read at run time).
    `host_time`: which host figure the critical path uses, "modelled" or "measured".
    `index_bytes`: bytes per id on the wire (4: int32 ids as the cards take them).
    `partial_bytes`: bytes per element of a pooled or partial tensor (4 fp32, 2 fp16).
    """
    counts = np.asarray(counts, dtype=np.int64)
    B = np.asarray(batch_sizes, dtype=np.int64)
    S = len(partition.shards)
    K = platform.num_cards
    if counts.ndim != 2 or counts.shape[1] != S:
        raise InvalidInputError(f"counts has shape {counts.shape}; expected (requests, {S} shards)")
    if B.shape != (counts.shape[0],):
        raise InvalidInputError(f"batch_sizes has shape {B.shape}; expected ({counts.shape[0]},)")
    if host_time not in ("modelled", "measured"):
        raise InvalidInputError(f"host_time must be 'modelled' or 'measured', got {host_time!r}")
    if host_time == "measured" and host_measured_s is None:
        raise InvalidInputError("host_time='measured' needs host_measured_s from an executed replay")
    if K == 0:
        raise InvalidInputError(f"platform {platform.name!r} has no accelerator cards")
    if not 0 <= platform.dense_on < K:
        raise InvalidInputError(f"dense_on={platform.dense_on} is not a card of {platform.name!r} (0..{K - 1})")
    if partition.num_cards != K:
        raise InvalidInputError(f"partition is for {partition.num_cards} cards, platform has {K}")
    R = counts.shape[0]
    loc, rb, dim, fmt, tier = _shard_arrays(partition)
    hit = np.broadcast_to(np.asarray(host_hit_rate, dtype=np.float64), (S,))
    if np.any((hit < 0) | (hit > 1)):
        raise InvalidInputError("host_hit_rate must be within [0, 1]")

    sram = np.zeros((R, K)); lpddr = np.zeros((R, K)); pool = np.zeros((R, K))
    in_bytes = np.zeros((R, K)); out_bytes = np.zeros((R, K)); n_sh = np.zeros(K, dtype=np.int64)
    lookups = np.zeros((R, K), dtype=np.int64)
    host_dram = np.zeros(R); host_scm = np.zeros(R); host_out_bytes = dense_in_bytes_per_sample * B
    n_host = 0
    for s in range(S):  # per shard (tens to hundreds), each a vector over all requests
        c = counts[:, s]
        if loc[s] == HOST:
            hits = np.rint(c * hit[s]).astype(np.int64)
            host_dram += platform.dram.read_time_s(hits, int(rb[s]), platform.host_queue_depth)
            if platform.scm is not None:
                host_scm += platform.scm.read_time_s(c - hits, int(platform.scm.access_bytes),
                                                     platform.scm_queue_depth)
            elif np.any(c - hits):
                raise InvalidInputError(f"shard {partition.shards[s].table!r}: host misses but no SCM tier")
            host_out_bytes = host_out_bytes + B * dim[s] * partial_bytes
            n_host += 1
            continue
        k = int(loc[s])
        dev = platform.card_device(k, tier[s])
        t = dev.read_time_s(c, int(rb[s]), platform.card_queue_depth)
        (sram if tier[s] == "sram" else lpddr)[:, k] += t
        pool[:, k] += c * dim[s] / platform.card_ops_per_s(k, fmt[s])
        in_bytes[:, k] += (c + B + 1) * index_bytes      # ids + offsets
        out_bytes[:, k] += B * dim[s] * partial_bytes
        lookups[:, k] += c
        n_sh[k] += 1
    host_lookups = counts[:, loc == HOST].sum(axis=1)

    # ids: every card's ids cross the shared host uplink, then the card's own link (cut-through switch)
    host_in_s = platform.host_link.transfer_time_s(in_bytes.sum(axis=1), int(2 * n_sh.sum()), batching=batching)
    card_in = np.stack([platform.card_links[k].transfer_time_s(in_bytes[:, k], int(2 * n_sh[k]), batching=batching)
                        for k in range(K)], axis=1)
    card_in = np.maximum(card_in, host_in_s[:, None]) * (n_sh > 0)
    ready = card_in + sram + lpddr + pool                           # [R, K]
    d = platform.dense_on
    dense_link = platform.card_links[d]
    card_out = np.stack([dense_link.transfer_time_s(out_bytes[:, k], int(n_sh[k]), batching=batching)
                         if k != d else np.zeros(R) for k in range(K)], axis=1)
    host_modelled = host_dram + host_scm
    host_used = host_modelled if host_time == "modelled" else np.asarray(host_measured_s, dtype=np.float64)
    host_out = dense_link.transfer_time_s(host_out_bytes, n_host + 1, batching=batching)  # +1: dense features
    prod_ready = np.concatenate([ready, host_used[:, None]], axis=1)
    prod_xfer = np.concatenate([card_out, host_out[:, None]], axis=1)
    arrival = serial_arrival_s(prod_ready, prod_xfer)
    unqueued = (prod_ready + prod_xfer).max(axis=1)
    finish = prod_ready + prod_xfer
    crit = np.argmax(finish, axis=1)
    critical = np.where(crit == K, HOST, crit)
    dense = dense_flops_per_sample * B / platform.card_ops_per_s(d, "fp16")
    result = dense_link.transfer_time_s(output_bytes_per_sample * B, 1, batching=batching)
    latency = arrival + dense + result
    cmds = (platform.host_link.commands(int(2 * n_sh.sum()), batching=batching)
            + sum(int(dense_link.commands(int(n_sh[k]), batching=batching)) for k in range(K) if k != d)
            + int(dense_link.commands(n_host + 1, batching=batching)) + 1)
    return Timeline(
        batch_sizes=B, card_sram_s=sram, card_lpddr_s=lpddr, card_pool_s=pool, card_in_s=card_in,
        card_out_s=card_out, card_lookups=lookups, host_modelled_s=host_modelled, host_dram_s=host_dram,
        host_scm_s=host_scm, host_measured_s=None if host_measured_s is None else np.asarray(host_measured_s),
        host_used_s=host_used, host_out_s=host_out, host_lookups=host_lookups, arrival_s=arrival,
        queue_s=arrival - unqueued, dense_s=dense, result_s=result, latency_s=latency, critical=critical,
        dense_on=d, commands=np.full(R, int(cmds)), batching=batching, host_threads=platform.host_threads,
        meta={"host_time": host_time, "index_bytes": index_bytes, "partial_bytes": partial_bytes},
    )
