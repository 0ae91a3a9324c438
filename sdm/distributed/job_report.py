"""One report for a sharded job: every rank's store stats merged, and the all-to-all bytes per
batch measured beside the model's figure.

    mine = rank_report(rank, store, counter, share, batches, reopened)
    merged = merge_reports(all_gathered)            # on any rank, from every rank's `mine`
    print(format_report(merged))

Hit rates count lookups with repeats (every index of every bag), summed over ranks; a column slice
counts the lookups of its slice, so a table cut in two counts each lookup twice, once per slice
(each slice reads its own columns of the row).

The model's all-to-all figure (per global batch, every rank sending its local batch of
`batch_per_rank` samples): a shard on host h receives from each other rank that rank's ids for the
shard's table (mean bag length x ids per sample, `id_bytes` each), one length per bag
(`length_bytes`), and returns one pooled row of the shard's width per bag (`value_bytes` per
column). The measured figure counts the same tensors as they arrive (see kernel.A2ACounter).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from sdm.core.text_table import text_table

__all__ = ["rank_report", "merge_reports", "format_report", "modelled_a2a_bytes"]

TIERS = ("accel", "dram", "scm")


def modelled_a2a_bytes(host_plan, world_size: int, batch_per_rank: int, bag_length: Mapping[str, float], *,
                       id_bytes: int = 8, length_bytes: int = 4, value_bytes: int = 4) -> dict:
    """Bytes crossing between ranks per global batch, by the model above: input, output, total."""
    remote = (world_size - 1) * batch_per_rank      # bags a shard's host receives from other ranks
    inp = out = 0.0
    for s in host_plan.shards():
        inp += remote * (float(bag_length[s.table]) * id_bytes + length_bytes)
        out += remote * s.dim * value_bytes
    return {"input_bytes": inp, "output_bytes": out, "total_bytes": inp + out}


def rank_report(rank: int, store, counter, share: Mapping, batches: int, reopened: bool,
                serve_s: float = 0.0) -> dict:
    """Plain data (gatherable with all_gather_object) about what one rank did."""
    total = store.stats()["total"]
    clock = {k: dict(v) for k, v in store.stats()["clock"].items()}
    return {"rank": rank, "tables": list(share["tables"]), "row_bytes": share["row_bytes"],
            "disk_bytes": share["disk_bytes"], "version": share["version"], "reopened": bool(reopened),
            "batches": int(batches), "serve_s": float(serve_s), "lookups": total["lookups"],
            "indices": total["indices"], "tiers": total["tiers"], "clock": clock,
            "lookup_measured_s": total["latency"]["measured_total_s"],
            "lookup_modelled_s": total["latency"]["modelled_total_s"], "a2a": counter.as_dict()}


def merge_reports(ranks: Sequence[dict], modelled_a2a: Mapping | None = None) -> dict:
    """Counters summed over ranks; hit rates from the sums; a2a bytes per batch measured and modelled."""
    ranks = sorted(ranks, key=lambda r: r["rank"])
    indices = sum(r["indices"] for r in ranks)
    tiers = {}
    for t in TIERS:
        keys = ranks[0]["tiers"][t].keys()
        tiers[t] = {k: sum(r["tiers"][t][k] for r in ranks) for k in keys}
        tiers[t]["hit_rate"] = tiers[t]["hits"] / indices if indices else 0.0
    batches = max((r["batches"] for r in ranks), default=0)
    a2a_in = sum(r["a2a"]["input_bytes"] for r in ranks)
    a2a_out = sum(r["a2a"]["output_bytes"] for r in ranks)
    per_batch = {"measured_input_bytes": a2a_in / batches if batches else 0.0,
                 "measured_output_bytes": a2a_out / batches if batches else 0.0}
    per_batch["measured_total_bytes"] = per_batch["measured_input_bytes"] + per_batch["measured_output_bytes"]
    if modelled_a2a is not None:
        per_batch.update({f"modelled_{k}": float(v) for k, v in modelled_a2a.items()})
    return {"world_size": len(ranks), "batches_per_rank": batches, "indices": indices,
            "lookups": sum(r["lookups"] for r in ranks), "tiers": tiers,
            "lookup_measured_s": sum(r["lookup_measured_s"] for r in ranks),
            "lookup_modelled_s": sum(r["lookup_modelled_s"] for r in ranks),
            "row_bytes": sum(r["row_bytes"] for r in ranks), "disk_bytes": sum(r["disk_bytes"] for r in ranks),
            "a2a_per_batch": per_batch, "ranks": ranks}


def _mib(n: float) -> str:
    return f"{n / 2**20:.2f}"


def format_report(m: Mapping) -> str:
    """The merged report as text: per rank, per tier, and the all-to-all figures."""
    lines = [f"sharded job: {m['world_size']} ranks, {m['batches_per_rank']} batches per rank, "
             f"{m['indices']} lookups (indices with repeats, over all shards)"]
    rows = [[r["rank"], len(r["tables"]), ",".join(r["tables"])[:40], r["row_bytes"], r["disk_bytes"], r["version"],
             "yes" if r["reopened"] else "no", r["indices"], f"{r['serve_s']:.3f}"] for r in m["ranks"]]
    rows.append(["all", sum(len(r["tables"]) for r in m["ranks"]), "", m["row_bytes"], m["disk_bytes"], "", "",
                 m["indices"], ""])
    lines.append(text_table(["rank", "shards", "tables", "row_bytes", "disk_bytes", "store_version", "reopened",
                             "lookups", "serve_s"], rows))
    trows = []
    for t, c in m["tiers"].items():
        trows.append([t, f"{c['hit_rate']:.4f}", c["hits"], c["rows"], c["reads"], _mib(c["bytes"]),
                      f"{c['measured_s']:.4f}", f"{c['modelled_s']:.4f}"])
    lines.append(text_table(["tier", "hit_rate", "hits", "rows", "reads", "MiB", "measured_s", "modelled_s"], trows))
    lines.append(f"lookup time summed over ranks: measured {m['lookup_measured_s']:.4f} s, "
                 f"modelled {m['lookup_modelled_s']:.4f} s")
    a = m["a2a_per_batch"]
    arow = [["measured", f"{a['measured_input_bytes']:.0f}", f"{a['measured_output_bytes']:.0f}",
             f"{a['measured_total_bytes']:.0f}"]]
    if "modelled_total_bytes" in a:
        arow.append(["modelled", f"{a['modelled_input_bytes']:.0f}", f"{a['modelled_output_bytes']:.0f}",
                     f"{a['modelled_total_bytes']:.0f}"])
    lines.append("all-to-all bytes per batch (between ranks; ids+lengths in, pooled rows out):")
    lines.append(text_table(["", "input_bytes", "output_bytes", "total_bytes"], arow))
    return "\n".join(lines)
