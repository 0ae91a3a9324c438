"""`sdm-plan hardware [NAME] [--json] [--set field=value ...] [--toml FILE] [--devices] [--calibration]`.

Without NAME (and without --toml) it lists the hardware presets; with one it shows every field of
that preset with its value and its source, after overrides. `--devices` lists the device presets with
what the queue-depth model predicts at QD1 and QD16 (4 KiB for SSDs, 64 B for memories);
`--calibration` sets those predictions beside the published points the SSD presets are fitted to.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sdm.core.errors import InvalidInputError
from sdm.core.text_table import rows_table
from sdm.hardware.overrides import parse_assignments
from sdm.hardware.presets import DEVICE_PRESETS, PUBLISHED_POINTS, device
from sdm.hardware.server import HardwareSpec, hardware, hardware_from_toml, hardware_names
from sdm.placement.cost import server_capex
from sdm.placement.power import parts_from_hardware, server_power


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "hardware",
        help="list hardware presets, or show one with every figure's source",
        description="List hardware presets, or show one (after --toml / --set overrides) with each figure's source.",
    )
    p.add_argument("name", nargs="?", help=f"preset to show: {', '.join(hardware_names())}")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field, dotted for nested ones (e.g. host.dram.capacity_bytes=64GiB, "
                        "scm.qd1_latency_s=1e-5, card_count=4, scm=p4500); repeatable")
    p.add_argument("--toml", metavar="FILE", help="TOML file of overrides (with base = \"<preset>\")")
    p.add_argument("--devices", action="store_true", help="list the device presets and their modelled QD1/QD16 points")
    p.add_argument("--calibration", action="store_true",
                   help="compare the SSD models with the published QD1/QD16 points (REFERENCE.md Devices)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = parse_assignments(args.overrides)
    if args.calibration:
        rows = calibration_rows()
        print(json.dumps(rows, indent=2) if args.json else rows_table([_fmt_calibration(r) for r in rows]))
        return 0
    if args.devices:
        rows = [_device_summary(name) for name in DEVICE_PRESETS]
        print(json.dumps(rows, indent=2) if args.json else rows_table([_device_text(r) for r in rows]))
        return 0
    if args.name is None and args.toml is None:
        if overrides:
            raise InvalidInputError("--set needs a preset NAME or --toml FILE to apply to")
        rows = [_hardware_summary(hardware(n)) for n in hardware_names()]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(rows_table([_as_text(r) for r in rows]))
            print("\nShow one with its sources: sdm-plan hardware NAME   (device presets: --devices)")
        return 0
    if args.toml is not None:
        if args.name is not None:
            raise InvalidInputError(f"give a preset NAME or --toml {args.toml} (its base = names the preset), not both")
        if not Path(args.toml).is_file():              # as `plan` says it, not a raw [Errno 2]
            raise InvalidInputError(f"hardware file {args.toml!r} does not exist")
        spec = hardware_from_toml(args.toml)
        spec = spec.replace(**overrides) if overrides else spec
    else:
        spec = hardware(args.name, **overrides)
    if args.json:
        print(json.dumps(hardware_dict(spec), indent=2))
    else:
        print(render(spec))
    return 0


# ---- summaries ---------------------------------------------------------------------------------
def power_and_cost(h: HardwareSpec) -> dict[str, float]:
    """Server watts at the wall (idle and under full load) and capex: the planner's one model
    (sdm.placement.power / cost), so `hardware`, `plan` and `compare` print the same figures."""
    parts = parts_from_hardware(h)
    pw = server_power(parts)
    return {"idle_watts": pw.idle_watts, "peak_watts": pw.load_watts, "psu_efficiency": pw.psu_efficiency,
            "capex_usd": server_capex(parts).capex_usd}


def hardware_dict(h: HardwareSpec) -> dict[str, Any]:
    """`HardwareSpec.to_dict()` with the power and cost totals among the derived figures."""
    d = h.to_dict()
    d["derived"].update(power_and_cost(h))
    return d


def _hardware_summary(h: HardwareSpec) -> dict[str, Any]:
    """One preset's list row as numbers (JSON); `_as_text` formats it for the table."""
    return {
        "name": h.name,
        "dram_bytes": int(h.dram_capacity_bytes),
        "scm_device": h.scm.name if h.scm else None, "scm_count": int(h.scm_count) if h.scm else 0,
        "scm_bytes": int(h.scm_capacity_bytes) if h.scm else 0,
        "card_device": h.cards[0].name if h.cards else None, "card_count": int(h.num_cards) if h.cards else 0,
        **{("wall_" + k if k.endswith("watts") else k): v for k, v in power_and_cost(h).items()},
        "description": h.description,
    }


def _as_text(r: dict[str, Any]) -> dict[str, str]:
    return {
        "name": r["name"], "dram": fmt_value("capacity_bytes", r["dram_bytes"]),
        "scm": f"{r['scm_count']} x {r['scm_device']} ({fmt_value('capacity_bytes', r['scm_bytes'])})"
               if r["scm_device"] else "-",
        "cards": f"{r['card_count']} x {r['card_device']}" if r["card_device"] else "-",
        "idle_W (wall)": fmt_value("watts", r["wall_idle_watts"]),
        "peak_W (wall)": fmt_value("watts", r["wall_peak_watts"]),
        "capex_usd": fmt_value("capex_usd", r["capex_usd"]), "description": r["description"],
    }


def _device_summary(name: str) -> dict[str, Any]:
    """One device preset's modelled points as numbers in SI units (the names say which)."""
    d = device(name)
    rb = d.calibration_read_bytes
    return {
        "name": d.name, "medium": d.medium, "capacity_bytes": d.capacity_bytes, "access_bytes": d.access_bytes,
        "read_bytes": rb, "qd1_latency_s": d.latency_s(1, rb), "qd1_iops": d.iops(1, rb),
        "qd16_latency_s": d.latency_s(16, rb), "qd16_iops": d.iops(16, rb),
        "bandwidth_bytes_per_s": d.bandwidth_bytes_per_s, "usd_per_gb": d.usd_per_gb,
    }


def _device_text(r: dict[str, Any]) -> dict[str, str]:
    return {k.removesuffix("_bytes").removesuffix("_s").removesuffix("_bytes_per"): fmt_value(k, v)
            if k not in ("name", "medium") else v for k, v in r.items()}


def calibration_rows() -> list[dict[str, Any]]:
    """Model vs published 4 KiB random-read points, with relative errors."""
    rows = []
    for name, points in PUBLISHED_POINTS.items():
        d = device(name)
        for qd, (iops, lat) in points.items():
            m_iops, m_lat = d.iops(qd, 4096), d.latency_s(qd, 4096)
            rows.append({"device": name, "queue_depth": qd, "model_iops": m_iops, "published_iops": iops,
                         "iops_error": m_iops / iops - 1, "model_latency_s": m_lat, "published_latency_s": lat,
                         "latency_error": m_lat / lat - 1})
    return rows


def _fmt_calibration(r: dict[str, Any]) -> dict[str, str]:
    return {
        "device": r["device"], "qd": str(r["queue_depth"]),
        "model_iops": fmt_value("iops", r["model_iops"]), "published_iops": fmt_value("iops", r["published_iops"]),
        "iops_err": f"{r['iops_error']:+.1%}",
        "model_latency": fmt_value("latency_s", r["model_latency_s"]),
        "published_latency": fmt_value("latency_s", r["published_latency_s"]),
        "latency_err": f"{r['latency_error']:+.1%}",
    }


# ---- the detailed view -------------------------------------------------------------------------
def render(spec: HardwareSpec) -> str:
    """Every field of `spec` as `section  field  value  source`, then the derived totals."""
    d = hardware_dict(spec)
    rows: list[dict[str, Any]] = []
    # name and description head the output; the rest are rows
    top = {k: v for k, v in d.items() if k not in ("name", "description", "host", "scm", "cards", "pcie", "derived")}
    _rows(rows, "platform", top)
    _rows(rows, "host", d["host"])
    if d["scm"] is not None:
        _rows(rows, f"scm (x{spec.scm_count})", d["scm"])
    if d["pcie"] is not None:
        _rows(rows, "pcie uplink", d["pcie"])
    cards = d["cards"]
    if cards and all(c == cards[0] for c in cards):
        _rows(rows, f"cards[0..{len(cards) - 1}]", cards[0])
    else:
        for i, c in enumerate(cards):
            _rows(rows, f"cards[{i}]", c)
    derived_src = {
        "idle_watts": "at the wall: (base + socket idle + DIMMs + SCM idle + carrier + card idle) / PSU efficiency (sdm.placement.power)",
        "peak_watts": "at the wall: (base + socket TDP + DIMMs + SCM active + carrier + card load) / PSU efficiency",
        "psu_efficiency": "sdm.placement.power.PowerDefaults (override: plan --set power.psu_efficiency=...)",
        "capex_usd": "sum: base + socket + DRAM $/GB + SCM $/GB + carrier + cards (sdm.placement.cost)",
        "dimm_count": "ceil(DRAM capacity / DIMM capacity)",
    }
    _rows(rows, "totals", {**d["derived"], "sources": derived_src})
    head = f"{spec.name}: {spec.description}\n"
    return head + rows_table(rows, columns=("section", "field", "value", "source"))


def _rows(rows: list[dict[str, Any]], section: str, d: dict[str, Any]) -> None:
    sources = d.get("sources", {}) or {}
    nested: list[tuple[str, dict]] = []
    for key, value in d.items():
        if key == "sources":
            continue
        if isinstance(value, dict):
            nested.append((key, value))
            continue
        rows.append({"section": section, "field": key, "value": fmt_value(key, value), "source": sources.get(key, "")})
    for key, value in nested:
        _rows(rows, f"{section}.{key}", value)


def fmt_value(key: str, value: Any) -> str:
    """Human units chosen from the field name (`_bytes`, `_s`, `_per_s`, `watts`, `usd`)."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    v = float(value)
    if key.endswith("bytes_per_s"):
        return _scaled(v, 1000, ["B/s", "KB/s", "MB/s", "GB/s", "TB/s"])
    if key.endswith("_bytes") or key in ("read_bytes",):
        if v >= 1 << 20 and v % (1 << 20) == 0 and v % 10**6 != 0:
            return _scaled(v, 1024, ["B", "KiB", "MiB", "GiB", "TiB"])
        if v < 10**4 and v == int(v):
            return f"{int(v)} B"
        return _scaled(v, 1000, ["B", "KB", "MB", "GB", "TB"])
    if key.endswith("ops_per_s"):
        return _scaled(v, 1000, ["op/s", "Kop/s", "Mop/s", "Gop/s", "Top/s"])
    if key == "iops" or key.endswith("_iops"):
        return _scaled(v, 1000, ["IOPS", "K IOPS", "M IOPS", "G IOPS"])
    if key.endswith("_s"):
        for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
            if v >= scale or unit == "ns":
                return f"{v / scale:.3g} {unit}"
    if key.endswith("watts"):
        return f"{v:.4g} W"
    if key == "usd_per_gb":
        return f"${v:.3g}/GB"
    if key.endswith("usd"):
        return f"${v:,.0f}"
    if key == "energy_j_per_byte":
        return f"{v * 1e12:.4g} pJ/B"
    if key == "latency_growth_per_qd":
        return f"{v:.4g} x qd1 per extra read in flight"
    if key == "endurance_dwpd":
        return f"{v:g} DWPD"
    return f"{value:,}" if isinstance(value, int) else f"{v:.4g}"


def _scaled(v: float, base: int, units: list[str]) -> str:
    i = 0
    while abs(v) >= base and i < len(units) - 1:
        v /= base
        i += 1
    return f"{v:.4g} {units[i]}"
