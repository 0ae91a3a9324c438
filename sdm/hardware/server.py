"""Hardware presets: a host (CPU socket, DRAM), optional SCM drives, optional accelerator cards.

`hardware(name, **overrides)` returns a frozen `HardwareSpec` (sdm.hardware.server_spec); overrides
are flat or dotted field names (`dram_capacity_bytes=64 << 30`, `**{"scm.qd1_latency_s": 1e-5}`,
`card_count=4`, `scm="p4500"`), applied through `sdm.hardware.overrides`.
`hardware_from_toml(path)` reads the same overrides from a file (see docs/devices.md).

Why these capacities (every figure's source is in the specs' `sources`):
- `host-dram` holds the most DRAM its socket takes (12 x 64 GB = 768 GB, the Xeon Gold 6138's
  maximum): the all-DRAM baseline SDM is measured against.
- `host-nand` / `host-3dxp` keep one 16 GB DIMM per channel (96 GB: every channel populated, so full
  bandwidth, with the fewest DIMMs) and put ~1.5 TB of SCM beside it: one 1.6 TB P3700, or four
  375 GB P4800X (the drive whose figures were published), so NAND and 3DXP are compared at about
  the same capacity.
- `yosemite-v2-*`: a single-socket Xeon D server card with 64 GB DRAM, the same SCM, and six
  first-generation accelerator cards behind a PCIe switch (REFERENCE Platform).
"""
from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any

from sdm.core.errors import InvalidInputError
from sdm.hardware.card import CARRIER_SOURCES, CARRIER_UPLINK, CARRIER_USD, CARRIER_WATTS, NO_CARRIER_SOURCES, card
from sdm.hardware.host import TWIN_LAKES_HOST, XEON_SP_HOST, HostSpec
from sdm.hardware.overrides import apply_overrides, flatten, load_toml
from sdm.hardware.presets import device
from sdm.hardware.server_spec import HardwareSpec

__all__ = ["HardwareSpec", "HostSpec", "hardware", "hardware_from_toml", "hardware_names"]

GB = 10**9

_SIX_CARDS = "REFERENCE Platform: six accelerator cards beside a single-socket host (seed 000, arXiv 2107.04140)"


def _spec(name: str, description: str, host: HostSpec, scm: str | None, scm_count: int,
          host_overrides: Mapping[str, Any], cards: int = 0) -> HardwareSpec:
    host = apply_overrides(host, host_overrides, source="preset")
    with_cards = cards > 0
    return HardwareSpec(
        name=name,
        description=description,
        host=host,
        scm=device(scm) if scm else None,
        scm_count=scm_count,
        cards=tuple(card("nnpi-m2") for _ in range(cards)),
        pcie=CARRIER_UPLINK if with_cards else None,
        carrier_watts=CARRIER_WATTS if with_cards else 0.0,
        carrier_usd=CARRIER_USD if with_cards else 0.0,
        sources={
            "scm": "REFERENCE Devices (preset named in scm.name)" if scm else "no SCM",
            "scm_count": "~1.5 TB of SCM per host, NAND and 3DXP at about equal capacity (model choice)"
            if scm else "no SCM",
            "cards": _SIX_CARDS if with_cards else "no accelerator cards",
            **(CARRIER_SOURCES if with_cards else NO_CARRIER_SOURCES),
        },
    )


def _dram(capacity_bytes: int, why: str, dimm_bytes: int | None = None, dimm_why: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"dram.capacity_bytes": capacity_bytes, "sources.dram.capacity_bytes": why}
    if dimm_bytes is not None:
        out["dimm_capacity_bytes"] = dimm_bytes
        out["sources.dimm_capacity_bytes"] = dimm_why
    return out


_BIG = _dram(768 * GB, "12 x 64 GB: the most DRAM a Xeon Gold 6138 takes (Intel ARK: 768 GB max)",
             64 * GB, "64 GB RDIMMs, two per channel (model choice)")
_SMALL = _dram(96 * GB, "6 x 16 GB: one DIMM per channel, full bandwidth with the fewest DIMMs (model choice)")
_YV2 = _dram(64 * GB, "4 x 16 GB, one DIMM per channel (model choice; *unconfirmed* for Yosemite V2)")

_PRESETS: dict[str, HardwareSpec] = {
    s.name: s
    for s in (
        _spec("host-dram", "single-socket host, all embeddings in DRAM (768 GB)", XEON_SP_HOST, None, 0, _BIG),
        _spec("host-nand", "single-socket host, 96 GB DRAM + 1 x 1.6 TB NAND SSD (Intel P3700)",
              XEON_SP_HOST, "p3700", 1, _SMALL),
        _spec("host-3dxp", "single-socket host, 96 GB DRAM + 4 x 375 GB 3DXP SSD (Optane P4800X)",
              XEON_SP_HOST, "p4800x", 4, _SMALL),
        _spec("yosemite-v2-nand", "Yosemite V2: Xeon D host, 64 GB DRAM, 1 x 1.6 TB NAND SSD, six accelerator "
              "cards behind a PCIe switch", TWIN_LAKES_HOST, "p3700", 1, _YV2, cards=6),
        _spec("yosemite-v2-3dxp", "Yosemite V2: Xeon D host, 64 GB DRAM, 4 x 375 GB 3DXP SSD, six accelerator "
              "cards behind a PCIe switch", TWIN_LAKES_HOST, "p4800x", 4, _YV2, cards=6),
    )
}


def hardware_names() -> list[str]:
    return list(_PRESETS)


def hardware(name: str, **overrides: Any) -> HardwareSpec:
    """A hardware preset by name (see `hardware_names()`), with any field overridden (the names
    `HardwareSpec.with_overrides` takes: dotted fields, shortcuts, `card_count`, `sources.*`)."""
    if name not in _PRESETS:
        raise InvalidInputError(f"unknown hardware {name!r}; known hardware: {', '.join(hardware_names())}")
    return _PRESETS[name].with_overrides(overrides, source="user override")


def hardware_from_toml(path: str | PathLike, **overrides: Any) -> HardwareSpec:
    """A HardwareSpec from a TOML file: `base = "<preset>"` plus tables of fields to override.

    ```toml
    base = "host-nand"
    name = "my-box"
    dram_capacity_bytes = "64GiB"
    [scm]
    qd1_latency_s = 9e-5
    [sources]
    "scm.qd1_latency_s" = "fio on our drive, 2026-11"
    ```
    Keyword `overrides` apply after the file's.
    """
    data = load_toml(path)
    base = data.pop("base", None)
    if not isinstance(base, str):
        raise InvalidInputError(
            f"{path}: needs a top-level base = \"<preset>\" naming one of: {', '.join(hardware_names())}"
        )
    if base not in _PRESETS:
        raise InvalidInputError(f"{path}: unknown base {base!r}; known hardware: {', '.join(hardware_names())}")
    spec = _PRESETS[base].with_overrides(flatten(data), source=f"TOML file {path}")
    return spec.with_overrides(overrides, source="user override")


