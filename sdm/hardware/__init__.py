"""Hardware: device models (reads, with sources), device and server presets, host, card, PCIe, overrides.

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
    "HardwareSpec": "sdm.hardware.server",
    "HostSpec": "sdm.hardware.server",
    "DeviceSpec": "sdm.hardware.devices",
    "device": "sdm.hardware.devices",
    "device_names": "sdm.hardware.devices",
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
