"""Hardware: device models (reads, with sources), device and server presets, host, card, PCIe, overrides.

Modules, lowest first (each imports only those before it): overrides (the FIELD=VALUE parser and
override mechanism, spec-agnostic), devices (the device model), presets (device presets and
`device()`), pcie, card (card presets, the carrier), host (HostSpec and host presets), server_spec
(HardwareSpec), server (hardware presets and `hardware()`), platform (the six-card view).

`sdm.hardware` is both this package and the preset lookup: `sdm.hardware("host-nand", **overrides)`
calls `sdm.hardware.server.hardware`. Names load lazily so that `import sdm` stays cheap.
"""
from __future__ import annotations

import sys
import types

from sdm.core.lazy_exports import lazy_exports

_EXPORTS = {
    "hardware": "sdm.hardware.server",
    "hardware_names": "sdm.hardware.server",
    "hardware_from_toml": "sdm.hardware.server",
    "HardwareSpec": "sdm.hardware.server_spec",
    "HostSpec": "sdm.hardware.host",
    "DeviceSpec": "sdm.hardware.devices",
    "device": "sdm.hardware.presets",
    "device_names": "sdm.hardware.presets",
    "CardSpec": "sdm.hardware.card",
    "card": "sdm.hardware.card",
    "PcieLink": "sdm.hardware.pcie",
    "Platform": "sdm.hardware.platform",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


class _CallablePackage(types.ModuleType):
    """Lets `sdm.hardware(name, **overrides)` keep working now that `sdm.hardware` is a package."""

    def __call__(self, name, **overrides):
        from sdm.hardware.server import hardware

        return hardware(name, **overrides)


sys.modules[__name__].__class__ = _CallablePackage
