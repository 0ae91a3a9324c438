"""What moving one table elsewhere (host DRAM, SCM behind a cache, a card's LPDDR or SRAM) would change
in p99 and max QPS: each alternative re-runs the vectorized timeline model; nothing executes."""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from sdm.accel.partitioner import HOST, Partition, Shard
from sdm.accel.report import BUDGET_S, _pct
from sdm.accel.timeline import model_timeline
from sdm.core.errors import InvalidInputError


def move_table(partition: Partition, table: str, to: str, counts: np.ndarray) -> tuple[Partition, np.ndarray]:
    """A copy of the partition with `table` whole at `to` ("cardK:sram", "cardK:lpddr", "host"), and the
    counts matrix with that table's columns merged into one."""
    idx = [i for i, s in enumerate(partition.shards) if s.table == table]
    if not idx:
        raise InvalidInputError(f"no table {table!r} in the partition")
    t = partition.tables[partition.shards[idx[0]].table_index]
    if to == "host":
        loc, tier = HOST, "host"
    else:
        try:
            card, tier = to.split(":")
            loc = int(card.removeprefix("card"))
        except ValueError:
            raise InvalidInputError(f"destination {to!r}: expected 'host' or 'cardK:sram|lpddr'") from None
        if tier not in ("sram", "lpddr") or not 0 <= loc < partition.num_cards:
            raise InvalidInputError(f"destination {to!r}: no such card tier")
    keep = [i for i in range(len(partition.shards)) if i not in set(idx)]
    new = Shard(t.name, partition.shards[idx[0]].table_index, loc, tier, 0, t.num_rows,
                t.size_bytes, 1.0, f"what-if: moved to {to}")
    shards = [partition.shards[i] for i in keep] + [new]
    merged = np.concatenate([counts[:, keep], counts[:, idx].sum(axis=1, keepdims=True)], axis=1)
    return replace(partition, shards=shards), merged


def what_if_moves(platform, partition: Partition, counts: np.ndarray, batch_sizes: np.ndarray,
                  model_kwargs: dict, *, host_hit_rate: np.ndarray, scm_hit_rate: float = 0.0,
                  tables: Sequence[str] | None = None, top: int = 5, budget_s: float = BUDGET_S) -> list[dict]:
    """For the `top` tables by lookups (or those named): p99 and max QPS if the table moved whole to the
    host's DRAM, to SCM (behind a DRAM cache hitting `scm_hit_rate`), or to the least-busy card's
    LPDDR / SRAM (where it fits). Each alternative re-runs the vectorized model; nothing executes."""
    base = model_timeline(platform, partition, counts, batch_sizes, host_hit_rate=host_hit_rate, **model_kwargs)
    base_p99, base_qps = _pct(base.latency_s, 99), base.max_qps()
    per_table = {}
    for i, s in enumerate(partition.shards):
        per_table[s.table] = per_table.get(s.table, 0) + int(counts[:, i].sum())
    if tables:
        names = list(tables)
    else:  # the busiest tables on the cards and on the host: candidates to move down and up
        on_host = {s.table for s in partition.shards if not s.on_card}
        ranked = sorted(per_table, key=per_table.get, reverse=True)
        host_first = [n for n in ranked if n in on_host][: (top + 1) // 2]
        names = host_first + [n for n in ranked if n not in on_host][: top - len(host_first)]
    free = partition.card_capacity_bytes - partition.card_bytes()
    sram_used = np.zeros(partition.num_cards, dtype=np.int64)
    for s in partition.shards:
        if s.on_card and s.tier == "sram":
            sram_used[s.location] += s.size_bytes
    least_busy = int(np.argmin(base.card_busy_s().mean(axis=0)))
    index = {id(s): i for i, s in enumerate(partition.shards)}
    out = []
    for name in names:
        if name not in per_table:
            raise InvalidInputError(f"no table {name!r} in the partition")
        t = next(t for t in partition.tables if t.name == name)
        mine = [s for s in partition.shards if s.table == name]
        here = ", ".join(sorted({s.where() for s in mine}))
        own = np.zeros(partition.num_cards, dtype=np.int64)
        own_sram = np.zeros(partition.num_cards, dtype=np.int64)
        for s in mine:
            if s.on_card:
                own[s.location] += s.size_bytes
                if s.tier == "sram":
                    own_sram[s.location] += s.size_bytes
        k = least_busy
        dests = [("host DRAM", "host", 1.0), (f"host SCM ({scm_hit_rate:.0%} DRAM hits)", "host", scm_hit_rate)]
        if t.size_bytes <= free[k] + own[k]:
            dests.append((f"card{k} LPDDR", f"card{k}:lpddr", None))
            if t.size_bytes <= partition.card_sram_bytes[k] - sram_used[k] + own_sram[k]:
                dests.append((f"card{k} SRAM", f"card{k}:sram", None))
        for label, to, h in dests:
            p2, c2 = move_table(partition, name, to, counts)
            hr = np.array([host_hit_rate[index[id(s)]] if id(s) in index else (h if h is not None else 1.0)
                           for s in p2.shards])
            tl = model_timeline(platform, p2, c2, batch_sizes, host_hit_rate=hr, **model_kwargs)
            p99 = _pct(tl.latency_s, 99)
            out.append({"table": name, "now": here, "to": label, "lookups": per_table[name],
                        "size_bytes": t.size_bytes, "p99_s": p99, "delta_p99_s": p99 - base_p99,
                        "max_qps": tl.max_qps(), "delta_qps": tl.max_qps() - base_qps,
                        "meets_budget": p99 <= budget_s, "card_bytes_delta": int(-own.sum() + (t.size_bytes if to != "host" else 0))})
    return out
