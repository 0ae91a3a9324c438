"""The parts of `sdm-plan plan` / `compare` beyond one host's placement:

- `--hosts N`: the model over N hosts (sdm.placement.host_plan.plan_hosts: tables or column slices
  balanced by lookups and bytes, each host planned on its own DRAM, SCM and cards), one plan file
  with a section per host; each rank opens its own (`HostPlan.load(path, host=rank)`).
- `--update-rows-per-s R`: how long the SCM drives last under R row updates per second
  (sdm.tiers.endurance.ssd_lifetime: page rewrites, compaction, the drives' write figures).
- `compare`: hosts needed per hardware type to hold the model (sdm.placement.hosts.hosts_per_hardware).

Updates are taken as spread evenly over the model's rows (every row equally likely to change), so
a table's share of the update stream is its share of the rows, and the row bytes of the stream are
the model's bytes over its rows. A column-sliced row updates every slice: each host holding a slice
writes its slice's bytes.
"""
from __future__ import annotations

import json
import math

from sdm.core.checks import real_number, whole_number
from sdm.core.errors import InfeasibleError, InvalidInputError
from sdm.core.text_table import text_table

__all__ = ["check_extras", "run_hosts", "lifetime_rows", "lifetime_doc", "format_lifetime",
           "hosts_rows", "format_hosts_needed"]


def check_extras(args, hw) -> None:
    """Refuse, before any work, --hosts / --update-rows-per-s values that cannot be planned."""
    hosts = getattr(args, "hosts", None)
    if hosts is not None:
        whole_number(hosts, "--hosts", minimum=1)
        if args.plot:
            raise InvalidInputError("--plot is for one host; drop it with --hosts (plot a host: plan it alone)")
        if args.page_layout != "id-order":
            raise InvalidInputError("--page-layout co-access is for one host; drop it with --hosts")
    rate = getattr(args, "update_rows_per_s", None)
    if rate is not None:
        real_number(rate, "--update-rows-per-s", minimum=0.0)
        if hw.scm is None or not hw.scm_count:
            raise InvalidInputError(f"--update-rows-per-s: hardware {hw.name!r} has no SCM drives "
                                    "(every row lives in DRAM; no drive wears)")


# ---- endurance ---------------------------------------------------------------------------------------
def lifetime_rows(hw, rate: float, shard_rows: int, shard_bytes: int, model_rows: int):
    """SsdLifetime of one host holding `shard_rows` rows / `shard_bytes` bytes of a model of
    `model_rows` rows, under `rate` updates/s spread evenly over the model's rows."""
    from sdm.tiers.endurance import ssd_lifetime

    rows_per_s = rate * shard_rows / max(1, model_rows)
    row_bytes = max(1, math.ceil(shard_bytes / max(1, shard_rows)))
    return ssd_lifetime(hw, rows_per_s, row_bytes)


def lifetime_doc(life) -> dict:
    years = life.years
    return {"device": life.device, "drives": life.drives, "update_rows_per_s": life.update_rows_per_s,
            "row_bytes": life.row_bytes, "write_amplification": life.write_amplification,
            "bytes_written_per_drive_per_s": life.bytes_written_per_s, "drive_writes_per_day": life.dwpd_used,
            "drive_writes_per_day_rated": life.dwpd_rated,
            "lifetime_years": None if years is None or math.isinf(years) else years,
            "lifetime_never_reached": years is not None and math.isinf(years),
            "write_busy_fraction": life.write_busy_fraction, "added_write_watts_per_drive": life.write_watts}


def format_lifetime(life, head: str) -> str:
    return head + "\n" + "\n".join(f"  {k:<26}{v}" for k, v in life.rows())


# ---- --hosts N ---------------------------------------------------------------------------------------
def _check_budget(hp, workload) -> None:
    for sec in hp.sections:
        if sec.plan is None:
            continue
        s = sec.plan.summary
        value = s["p99_latency_s"] if workload.budget_on == "p99" else s["latency_s"]
        if value > workload.latency_budget_s:
            raise InfeasibleError(
                f"latency budget not met on host {sec.host}: {workload.budget_on} latency per request of "
                f"{workload.items_per_request} items must be <= {workload.latency_budget_s * 1e3:g} ms; its "
                f"shards need {value * 1e3:.3g} ms on {sec.hardware} (more hosts, or faster hardware)")


def _host_headlines(hp) -> list[list]:
    rows = []
    for sec in hp.sections:
        s = sec.plan.summary if sec.plan is not None else None
        if s is None:
            rows.append([sec.host, len(sec.shards), "-", "-", "-", "-", "-"])
            continue
        hit = s.get("hit_rate", {})
        rows.append([sec.host, len(sec.shards), f"{s['latency_s'] * 1e6:,.1f}", f"{s['p99_latency_s'] * 1e6:,.1f}",
                     f"{s['qps_per_server']:,.0f}", f"{s['watts']:.1f}",
                     " ".join(f"{k} {100 * v:.1f}%" for k, v in hit.items() if v >= 5e-4) or "-"])
    return rows


def run_hosts(args, model, hw, opts, hot, show: bool) -> int:
    """`sdm-plan plan --hosts N`: plan, check every host's budget, write one file, print it."""
    from pathlib import Path

    from sdm.cli.steps import step
    from sdm.placement.host_plan import format_host_plan, plan_hosts

    with step(f"assigning {len(model.tables)} tables to {args.hosts} hosts and planning each host", show):
        hp = plan_hosts(model.tables, hw, args.hosts, hotness=hot, sharding=args.sharding, opts=opts,
                        model_name=model.name)
    _check_budget(hp, opts.workload)
    lives = []
    if args.update_rows_per_s is not None:
        model_rows = sum(t.num_rows for t in model.tables)
        for sec in hp.sections:
            if sec.shards:
                rows = sum(s.num_rows for s in sec.shards)
                lives.append((sec.host, lifetime_rows(hw, args.update_rows_per_s, rows, sec.size_bytes, model_rows)))
        hp.summary["endurance"] = {f"host{h}": lifetime_doc(life) for h, life in lives}
    hp.summary["count_model"] = args.counts
    out = hp.save(args.out)
    if args.json:
        doc = json.loads(Path(out).read_text())
        doc["plan_file"] = str(out)
        print(json.dumps(doc, indent=1, default=float))
        return 0
    print(format_host_plan(hp))
    print(f"counts {args.counts}; lookups_share: each host's share of the lookups (a column slice serves all of "
          "its table's); bytes_share: of the rows' bytes")
    print("\nper host (its own plan on its own hardware; figures from the tier model, W at the wall"
          + ("; a card platform's six-card timeline: sdm-plan plan on that host's tables alone" if hw.cards else "")
          + "):")
    print(text_table(["host", "shards", "mean_us", "p99_us", "requests/s", "W", "hit rates"], _host_headlines(hp)))
    for h, life in lives:
        print("\n" + format_lifetime(life, f"SSD lifetime on host {h} under {args.update_rows_per_s:,.0f} "
                                           "row updates/s over the model (its share of the rows):"))
    side = Path(out).with_suffix(".hosts")
    print(f"\nwrote {out}" + (f" and its per-host plans in {side}/ (copy them together)" if side.is_dir() else "")
          + f"; each rank opens its own section: HostPlan.load({str(out)!r}, host=rank); serve it with "
          f"torchrun --standalone --nproc_per_node={hp.num_hosts} tools/serve_sharded.py --plan {out} --root DIR")
    return 0


# ---- compare: hosts per hardware type ---------------------------------------------------------------
def hosts_rows(tables, hws, hot, opts) -> list[dict]:
    from sdm.placement.hosts import hosts_per_hardware

    lookups = {h.name: float(h.counts.sum() + h.tail_lookups) for h in hot}
    return hosts_per_hardware(tables, hws, lookups=lookups, dram_usable_fraction=opts.dram_usable_fraction)


def format_hosts_needed(rows: list[dict], results: list[dict]) -> str:
    fleet = {r["hardware"]: r["fleet"]["servers"] for r in results}
    body = [[r["hardware"], f"{r['host_capacity_bytes'] / 1e9:,.4g}", "-" if r["hosts"] is None else r["hosts"],
             fleet.get(r["hardware"], "-"), r.get("error", "")[:60]] for r in rows]
    return ("hosts needed to hold the model (rows on each host's SCM, or without SCM the DRAM the planner gives "
            "rows; sdm-plan plan --hosts N makes the plan):\n"
            + text_table(["hardware", "host_capacity_GB", "hosts_to_hold", "fleet_servers", "note"], body)
            + "\n(fleet_servers also counts the QPS target and the latency budget; hosts_to_hold counts bytes only)")
