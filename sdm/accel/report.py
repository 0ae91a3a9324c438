"""What a replay on the six-card platform says: latency breakdown, p50/p99 against the seeds' budget,
QPS at that budget, power per card and server, and what moving one table elsewhere would change.

Budget (seed 004, Table I, REFERENCE.md "Workload"): 100 ms per request of 150-180 items.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.accel.partitioner import HOST, Partition, Shard
from sdm.accel.timeline import Timeline, model_timeline

BUDGET_S = 0.100          # REFERENCE.md "Workload": latency budget 100 ms ...
BUDGET_ITEMS = (150, 180)  # ... per 150-180 items (seed 004, Table I)


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else 0.0


def latency_breakdown(tl: Timeline) -> dict[str, float]:
    """Mean seconds per request of each stage, on the critical path's producer and after it."""
    R = np.arange(tl.num_requests)
    crit = tl.critical
    on_card = crit != HOST
    k = np.where(on_card, crit, 0)
    pick = lambda a: np.where(on_card, a[R, k], 0.0)  # noqa: E731 - the critical card's stage time
    return {
        "ids_to_card_s": float(pick(tl.card_in_s).mean()),
        "card_sram_s": float(pick(tl.card_sram_s).mean()),
        "card_lpddr_s": float(pick(tl.card_lpddr_s).mean()),
        "card_pooling_s": float(pick(tl.card_pool_s).mean()),
        "host_lookup_s": float(np.where(on_card, 0.0, tl.host_used_s).mean()),
        "partial_transfer_s": float(np.where(on_card, tl.card_out_s[R, k], tl.host_out_s).mean()),
        "link_queueing_s": float(tl.queue_s.mean()),
        "dense_s": float(tl.dense_s.mean()),
        "result_transfer_s": float(tl.result_s.mean()),
        "total_s": float(tl.latency_s.mean()),
    }


def card_power_watts(platform, util: np.ndarray) -> np.ndarray:
    """Per card: idle + (load - idle) x utilisation (linear in busy time; card figures from CardSpec)."""
    idle = np.array([platform.card_idle_watts(k) for k in range(platform.num_cards)])
    load = np.array([platform.card_load_watts(k) for k in range(platform.num_cards)])
    return idle + (load - idle) * np.clip(util, 0.0, 1.0)


def server_power_watts(platform, cards_w: np.ndarray, host_util: float, scm_util: float) -> dict:
    """Server wall power: the planner's component model (sdm.placement.power: platform, CPU, DIMMs, SCM
    from the HardwareSpec, each idle + u x (load - idle)) with the cards at their own utilisation, the card
    carrier (PCIe switch) always on, all divided by the PSU efficiency."""
    from sdm.placement.power import parts_from_hardware, server_power

    pb = server_power(parts_from_hardware(platform.hardware))
    at = lambda name, u: (pb.components[name][0] + u * (pb.components[name][1] - pb.components[name][0])  # noqa: E731
                          if name in pb.components else 0.0)
    host_w = at("platform", 0.0) + at("cpu", host_util) + at("dram", host_util)
    scm_w = at("scm", scm_util)
    carrier_w = float(getattr(platform.hardware, "carrier_watts", 0.0) or 0.0)
    dc = host_w + scm_w + float(cards_w.sum()) + carrier_w
    return {"cards_watts": float(cards_w.sum()), "host_watts": host_w, "scm_watts": scm_w,
            "carrier_watts": carrier_w, "psu_efficiency": pb.psu_efficiency,
            "server_watts": dc / pb.psu_efficiency,
            "note": "cards: idle + (load - idle) x utilisation (CardSpec); host, DIMMs, SCM, PSU: "
                    "sdm.placement.power over the HardwareSpec"}


def build_report(tl: Timeline, platform, partition: Partition, *, budget_s: float = BUDGET_S,
                 moves: list[dict] | None = None) -> dict:
    """Everything `sdm-plan run` prints, as a JSON-ready dict."""
    lat = tl.latency_s
    p50, p99 = _pct(lat, 50), _pct(lat, 99)
    B = float(np.mean(tl.batch_sizes)) if tl.num_requests else 0.0
    bottleneck, busy = tl.bottleneck()
    qps_max = tl.max_qps()
    meets = p99 <= budget_s
    qps = qps_max if meets else 0.0
    util = tl.utilisation(qps_max if meets else None)
    cards_w = card_power_watts(platform, util)
    host_util = min(1.0, float(tl.host_used_s.mean()) * (qps if meets else qps_max) / max(tl.host_threads, 1))
    scm_rate = float((tl.host_scm_s > 0).mean())  # share of requests that touch SCM
    scm_util = min(1.0, float(tl.host_scm_s.mean()) * (qps if meets else qps_max))
    power = server_power_watts(platform, cards_w, host_util, scm_util)
    items_note = ("" if BUDGET_ITEMS[0] <= B <= BUDGET_ITEMS[1]
                  else f"requests hold {B:.0f} items; the budget is stated for {BUDGET_ITEMS[0]}-{BUDGET_ITEMS[1]}")
    card_rows = []
    busy_k = tl.card_busy_s().mean(axis=0)
    for k in range(tl.num_cards):
        sh = [s for s in partition.shards if s.location == k]
        card_rows.append({
            "card": k, "shards": len(sh), "tables": sorted({s.table for s in sh}),
            "sram_bytes": int(sum(s.size_bytes for s in sh if s.tier == "sram")),
            "lpddr_bytes": int(sum(s.size_bytes for s in sh if s.tier == "lpddr")),
            "lookups_per_request": float(tl.card_lookups[:, k].mean()),
            "busy_s_per_request": float(busy_k[k]),
            "sram_s": float(tl.card_sram_s[:, k].mean()), "lpddr_s": float(tl.card_lpddr_s[:, k].mean()),
            "pooling_s": float(tl.card_pool_s[:, k].mean()),
            "dense_s": float(tl.dense_s.mean()) if k == tl.dense_on else 0.0,
            "pcie_s": float(tl.link_busy_s()[:, k].mean()),
            "utilisation": float(util[k]), "watts": float(cards_w[k]),
            "pcie_utilisation": float(min(1.0, tl.link_busy_s()[:, k].mean() * (qps if meets else qps_max))),
        })
    host = {
        "shards": sum(1 for s in partition.shards if not s.on_card),
        "bytes": partition.host_bytes(),
        "lookups_per_request": float(tl.host_lookups.mean()),
        "modelled_s": float(tl.host_modelled_s.mean()), "dram_s": float(tl.host_dram_s.mean()),
        "scm_s": float(tl.host_scm_s.mean()), "share_of_requests_reading_scm": scm_rate,
        "measured_s": None if tl.host_measured_s is None else float(tl.host_measured_s.mean()),
        "measured_p99_s": None if tl.host_measured_s is None else _pct(tl.host_measured_s, 99),
        "used_on_critical_path": tl.meta.get("host_time", "modelled"),
    }
    return {
        "platform": platform.name, "requests": tl.num_requests, "items_per_request": B,
        "command_batching": tl.batching, "pcie_commands_per_request": int(tl.commands[0]) if tl.num_requests else 0,
        "latency": {"p50_s": p50, "p99_s": p99, "mean_s": float(lat.mean()) if lat.size else 0.0,
                    "budget_s": budget_s, "budget_items": list(BUDGET_ITEMS), "meets_budget": bool(meets),
                    "p99_over_budget_s": max(0.0, p99 - budget_s), "note": items_note},
        "breakdown_s": latency_breakdown(tl),
        "critical_path_share": tl.critical_share(),
        "throughput": {"bottleneck": bottleneck, "bottleneck_busy_s": busy, "max_qps": qps_max,
                       "qps_at_budget": qps, "items_per_s_at_budget": qps * B},
        "load_imbalance": tl.load_imbalance(),
        "cards": card_rows, "host": host,
        "power": {**power, "at_qps": qps if meets else qps_max},
        "moves": moves or [],
    }


# ---- what moving one table changes ---------------------------------------------------------------
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


# ---- per-card placement table (for `sdm-plan plan/compare` too) ----------------------------------
def partition_summary(partition: Partition, platform=None) -> list[dict]:
    """One row per card and one for the host: tables, shards, bytes in SRAM / LPDDR, expected load."""
    load = partition.card_load_bytes()
    rows = []
    for k in range(partition.num_cards):
        sh = [s for s in partition.shards if s.location == k]
        rows.append({"where": f"card{k}", "tables": len({s.table for s in sh}), "shards": len(sh),
                     "sram_bytes": int(sum(s.size_bytes for s in sh if s.tier == "sram")),
                     "lpddr_bytes": int(sum(s.size_bytes for s in sh if s.tier == "lpddr")),
                     "capacity_bytes": int(partition.card_capacity_bytes[k]),
                     "load_bytes_per_sample": float(load[k])})
    sh = [s for s in partition.shards if not s.on_card]
    lps = partition.lookups_per_sample
    rows.append({"where": "host", "tables": len({s.table for s in sh}), "shards": len(sh), "sram_bytes": 0,
                 "lpddr_bytes": 0, "capacity_bytes": None, "host_bytes": int(sum(s.size_bytes for s in sh)),
                 "load_bytes_per_sample": float(sum(lps[s.table_index] * s.load_share
                                                    * partition.tables[s.table_index].row_bytes for s in sh))})
    return rows


# ---- text ----------------------------------------------------------------------------------------
def _ms(x: float | None) -> str:
    """Seconds in the unit that keeps three significant figures readable (us below 1 ms)."""
    if x is None:
        return "-"
    return f"{x * 1e6:.1f} us" if abs(x) < 1e-3 else f"{x * 1e3:.3f} ms"


def _mb(x: int) -> str:
    """Bytes as B / KB / MB / GB (powers of 1000), so a few KB in SRAM do not print as 0.0 MB."""
    from sdm.placement.report import nbytes
    return nbytes(x)


def format_report(rep: dict) -> str:
    L = rep["latency"]
    T = rep["throughput"]
    P = rep["power"]
    lines = [
        f"platform {rep['platform']}: {rep['requests']} requests of {rep['items_per_request']:.0f} items, "
        f"command batching {'on' if rep['command_batching'] else 'off'} "
        f"({rep['pcie_commands_per_request']} PCIe commands per request)",
        f"latency p50 {_ms(L['p50_s'])}  p99 {_ms(L['p99_s'])}  budget {_ms(L['budget_s'])} per "
        f"{L['budget_items'][0]}-{L['budget_items'][1]} items: {'MET' if L['meets_budget'] else 'MISSED by ' + _ms(L['p99_over_budget_s'])}"
        + (f"  ({L['note']})" if L["note"] else ""),
        f"throughput: max {T['max_qps']:.0f} requests/s (bottleneck {T['bottleneck']}, "
        f"{_ms(T['bottleneck_busy_s'])} per request); at budget {T['qps_at_budget']:.0f} requests/s = "
        f"{T['items_per_s_at_budget']:.0f} items/s",
        f"load imbalance (max/mean card busy) {rep['load_imbalance']:.2f}; critical path through "
        + ", ".join(f"{k} {v:.0%}" for k, v in sorted(rep["critical_path_share"].items())),
        "", "latency breakdown (mean per request, critical path):",
    ]
    for k, v in rep["breakdown_s"].items():
        lines.append(f"  {k[:-2]:<22} {_ms(v):>12}")
    lines += ["", f"{'card':<6}{'tables':>7}{'SRAM':>11}{'LPDDR':>11}{'lookups':>9}{'SRAM t':>12}{'LPDDR t':>12}"
                  f"{'pool t':>12}{'dense t':>12}{'PCIe t':>12}{'util':>7}{'watts':>7}"]
    for c in rep["cards"]:
        lines.append(f"card{c['card']:<2}{len(c['tables']):>7}{_mb(c['sram_bytes']):>11}{_mb(c['lpddr_bytes']):>11}"
                     f"{c['lookups_per_request']:>9.0f}{_ms(c['sram_s']):>12}{_ms(c['lpddr_s']):>12}"
                     f"{_ms(c['pooling_s']):>12}{_ms(c['dense_s']):>12}{_ms(c['pcie_s']):>12}"
                     f"{c['utilisation']:>7.0%}{c['watts']:>7.1f}")
    h = rep["host"]
    lines += [f"host: {h['shards']} shards, {_mb(h['bytes'])}, {h['lookups_per_request']:.0f} lookups/request; "
              f"modelled {_ms(h['modelled_s'])} (DRAM {_ms(h['dram_s'])}, SCM {_ms(h['scm_s'])}), "
              f"measured {_ms(h['measured_s'])} (p99 {_ms(h['measured_p99_s'])}); critical path uses "
              f"{h['used_on_critical_path']}",
              f"power at {P['at_qps']:.0f} requests/s: cards {P['cards_watts']:.1f} W, host {P['host_watts']:.1f} W, "
              f"SCM {P['scm_watts']:.1f} W, carrier {P['carrier_watts']:.1f} W, server at the wall {P['server_watts']:.1f} W"]
    if rep["moves"]:
        lines += ["", "what moving one table changes (modelled):",
                  f"  {'table':<12}{'now':<28}{'to':<26}{'p99':>12}{'d p99':>12}{'max QPS':>10}{'d QPS':>9}"]
        for m in rep["moves"]:
            lines.append(f"  {m['table']:<12}{m['now'][:27]:<28}{m['to'][:25]:<26}{_ms(m['p99_s']):>12}"
                         f"{('+' if m['delta_p99_s'] >= 0 else '-') + _ms(abs(m['delta_p99_s'])):>12}{m['max_qps']:>10.0f}{m['delta_qps']:>+9.0f}")
    return "\n".join(lines)


def plot_utilisation(rep: dict, path: str) -> None:
    """Per card at the reported operating point: compute utilisation split by stage (left) and PCIe
    link utilisation (right). Axes scale to the data, since a card idling at 1% is the usual answer."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cards = rep["cards"]
    x = np.arange(len(cards))
    busy = np.array([c["busy_s_per_request"] for c in cards])
    scale = np.divide([c["utilisation"] for c in cards], busy, out=np.zeros(len(cards)), where=busy > 0)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    bottom = np.zeros(len(cards))
    for key, label in (("sram_s", "SRAM reads"), ("lpddr_s", "LPDDR reads"), ("pooling_s", "pooling"),
                       ("dense_s", "dense MLPs")):
        v = np.array([c[key] for c in cards]) * scale * 100
        ax.bar(x, v, bottom=bottom, label=label)
        bottom += v
    ax.set_xticks(x, [f"card{c['card']}" for c in cards])
    ax.set_ylabel("compute / memory utilisation (%)")
    ax.set_ylim(0, max(bottom.max() * 1.25, 1e-3))
    ax.legend(fontsize=8)
    ax.set_title(f"cards (load imbalance {rep['load_imbalance']:.2f})", fontsize=9)
    link = np.array([c.get("pcie_utilisation", 0.0) for c in cards]) * 100
    ax2.bar(x, link, color="tab:gray")
    ax2.set_xticks(x, [f"card{c['card']}" for c in cards])
    ax2.set_ylabel("PCIe link utilisation (%)")
    ax2.set_ylim(0, max(link.max() * 1.25, 1e-3))
    ax2.set_title(f"links (bottleneck: {rep['throughput']['bottleneck']})", fontsize=9)
    fig.suptitle(f"{rep['platform']} at {rep['power']['at_qps']:.0f} requests/s of "
                 f"{rep['items_per_request']:.0f} items", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- for `sdm-plan plan/compare`: per-card placement and the modelled timeline of a plan ----------
def dlrm_dense_flops(num_tables: int, dim: int, num_dense: int = 13, bottom_mlp: Sequence[int] = (64, 32),
                     top_mlp: Sequence[int] = (64, 32)) -> float:
    """Dense flops per sample of sdm.runtime.dlrm.DLRM with these sizes, without building it (same count as
    sdm.accel.executor.dense_flops_per_sample on the built model)."""
    bottom = [num_dense, *bottom_mlp] + ([] if bottom_mlp and bottom_mlp[-1] == dim else [dim])
    T = num_tables + 1
    top = [T * (T - 1) // 2 + dim, *top_mlp, 1]
    lin = sum(2.0 * a * b for a, b in zip(bottom[:-1], bottom[1:])) + sum(2.0 * a * b for a, b in zip(top[:-1], top[1:]))
    return lin + 2.0 * T * T * dim


def _host_hit_from_plan(plan, partition: Partition) -> np.ndarray:
    """Per shard, the share of host-side lookups the plan predicts DRAM (pinned or cache) serves."""
    hit = np.ones(len(partition.shards))
    for i, s in enumerate(partition.shards):
        if s.on_card:
            continue
        h = plan.tables[s.table].predicted_hit_rate or {}
        dram = float(h.get("dram", 0.0)) + float(h.get("dram_cache", 0.0))
        scm = float(h.get("scm", 0.0))
        hit[i] = dram / (dram + scm) if dram + scm > 0 else 1.0
    return hit


def plan_summary(plan, hardware, trace=None, *, reserve_bytes: int = 1 << 30, dense_on: int = 0,
                 dense_flops_per_sample: float | None = None, batching: bool = True,
                 budget_s: float = BUDGET_S, loads=None) -> dict:
    """Per-card placement of a planner's `Plan` on a card platform, and (given a trace) the modelled
    six-card timeline of its requests: what `sdm-plan plan/compare` show for a Yosemite V2 preset.

    `trace` must hold the plan's tables in the plan's order; one request = one batch of it. `loads`
    (lookups per sample per table) sets the expected load column when there is no trace; with a
    trace, that column is the trace's own lookups per sample. Host-side DRAM hit rates come from the
    plan's predictions. Returns {"cards": partition_summary rows, "timeline": {...} or None}.
    Raises InvalidInputError for hardware without cards or a plan that does not fit its cards.
    """
    from sdm.core.spec import TableSpec
    from sdm.accel.partitioner import partition_from_plan
    from sdm.hardware.platform import Platform
    from sdm.accel.routing import trace_shard_counts

    if plan.summary.get("shards", 1) > 1:
        raise InvalidInputError(f"plan spans {plan.summary['shards']} servers per replica; the per-card view "
                                "covers a plan for one server")
    pf = Platform.from_hardware(hardware, dense_on=dense_on)
    tables = [TableSpec(n, int(tp.num_rows), int(tp.dim), tp.row_format) for n, tp in plan.tables.items()]
    part = partition_from_plan(plan, tables, pf.card_usable_bytes(reserve_bytes), pf.card_sram_bytes(),
                               loads=loads)
    out = {"cards": partition_summary(part, pf), "timeline": None}
    if trace is None:
        return out
    counts, sizes = trace_shard_counts(part, trace)
    # The partition's load shares assume rows of a shard are read evenly (no per-row counts, which
    # would cost 8 B per row of every table); the trace says what each shard really served.
    samples = max(float(sizes.sum()), 1.0)
    row_bytes = np.array([part.tables[s.table_index].row_bytes for s in part.shards], dtype=np.float64)
    shard_load = counts.sum(axis=0) * row_bytes / samples
    loc = np.array([s.location for s in part.shards])
    for row, k in zip(out["cards"], [*range(part.num_cards), HOST]):
        row["load_bytes_per_sample"] = float(shard_load[loc == k].sum())
    dims = {t.dim for t in tables}
    flops = dense_flops_per_sample if dense_flops_per_sample is not None else dlrm_dense_flops(len(tables), max(dims))
    tl = model_timeline(pf, part, counts, sizes, host_hit_rate=_host_hit_from_plan(plan, part),
                        dense_flops_per_sample=flops, dense_in_bytes_per_sample=4.0 * 13, batching=batching)
    rep = build_report(tl, pf, part, budget_s=budget_s)
    out["timeline"] = {k: rep[k] for k in ("requests", "items_per_request", "latency", "throughput",
                                           "load_imbalance", "breakdown_s", "critical_path_share", "power")}
    out["timeline"]["host"] = {k: rep["host"][k] for k in ("lookups_per_request", "modelled_s", "dram_s", "scm_s",
                                                           "share_of_requests_reading_scm")}
    for row, c in zip(out["cards"], rep["cards"]):
        row.update({"lookups_per_request": c["lookups_per_request"], "busy_s_per_request": c["busy_s_per_request"],
                    "utilisation": c["utilisation"], "watts": c["watts"]})
    return out


def format_plan_summary(summary: dict) -> str:
    """Text for `plan_summary`: the per-card table, then the modelled timeline (when there is one)."""
    from sdm.placement.report import _fmt

    cols = {"where": "where", "tables": "tables", "shards": "shards", "sram_bytes": "SRAM_MB",
            "lpddr_bytes": "LPDDR_MB", "host_bytes": "host_MB", "capacity_bytes": "card_MB",
            "load_bytes_per_sample": "B_read/sample", "lookups_per_request": "lookups/req",
            "utilisation": "util_%", "watts": "watts"}
    t = summary.get("timeline")
    cells = []
    for r in summary["cards"]:
        r = dict(r)
        if r["where"] == "host" and t is not None:
            r["lookups_per_request"] = t["host"]["lookups_per_request"]
        row = []
        for k in cols:
            v = r.get(k)
            if v is not None and k.endswith("_bytes") and k != "load_bytes_per_sample":
                v = v / 1e6
            elif v is not None and k == "utilisation":
                v = 100.0 * v
            row.append("-" if v is None else _fmt(v))
        cells.append(row)
    head = list(cols.values())
    width = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    just = lambda i, v: v.ljust(width[i]) if i == 0 else v.rjust(width[i])  # noqa: E731
    lines = ["  ".join(just(i, h) for i, h in enumerate(head)), "  ".join("-" * w for w in width)]
    lines += ["  ".join(just(i, v) for i, v in enumerate(c)) for c in cells]
    if t is None:
        lines.append("(no timeline: it needs a trace (--trace) to route requests to cards)")
        return "\n".join(lines)
    L, T, P, H = t["latency"], t["throughput"], t["power"], t["host"]
    lines += [
        f"timeline (modelled, {t['requests']} requests of {t['items_per_request']:.0f} items): p50 {_ms(L['p50_s'])}, "
        f"p99 {_ms(L['p99_s'])} (budget {_ms(L['budget_s'])}: "
        f"{'met' if L['meets_budget'] else 'MISSED by ' + _ms(L['p99_over_budget_s'])}); max {T['max_qps']:,.0f} "
        f"requests/s, bottleneck {T['bottleneck']}; load imbalance (max/mean card busy) {t['load_imbalance']:.2f}",
        f"  host: {H['lookups_per_request']:.0f} lookups/request, modelled {_ms(H['modelled_s'])} (DRAM {_ms(H['dram_s'])}, "
        f"SCM {_ms(H['scm_s'])}); critical path through "
        + ", ".join(f"{k} {v:.0%}" for k, v in sorted(t["critical_path_share"].items())),
        f"  power at {P['at_qps']:,.0f} requests/s: cards {P['cards_watts']:.1f} W, server at the wall "
        f"{P['server_watts']:.1f} W",
    ]
    return "\n".join(lines)
