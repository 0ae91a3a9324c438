"""The clock every tier charges: measured wall time and the modelled time of the emulated medium.

Each operation is charged twice: what it really took on this machine (`measured_s`) and what the
configured device model says it would take (`modelled_s`). In inject mode the clock sleeps the
difference when the model is slower than reality, so wall time follows the model (e.g. a NAND SSD
emulated on a faster disk). A model faster than the real disk cannot be injected; that shows up as
measured_s > modelled_s in the report rather than being hidden.

A tier charges each operation here once and reads back what it charged (`charge` returns it), so
anything above it that keeps its own counters (the runtime's per-lookup stats) copies these
figures instead of timing and modelling the same read a second time.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class TierCharge:
    """Running totals for one tier (e.g. "scm", "dram", "accel")."""

    ops: int = 0
    bytes: int = 0
    measured_s: float = 0.0
    modelled_s: float = 0.0
    injected_s: float = 0.0

    def as_dict(self) -> dict:
        return {
            "ops": self.ops,
            "bytes": self.bytes,
            "measured_s": self.measured_s,
            "modelled_s": self.modelled_s,
            "injected_s": self.injected_s,
        }


@dataclass
class Clock:
    """Thread-safe accumulator of per-tier measured and modelled time."""

    inject: bool = False
    _tiers: dict[str, TierCharge] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def charge(self, tier: str, ops: int, nbytes: int, measured_s: float, modelled_s: float) -> TierCharge:
        """Record one operation; in inject mode sleep until wall time matches the model.

        Returns what was charged for this operation: its measured_s includes the seconds slept
        (injected_s, 0 outside inject mode), as the running totals do.
        """
        slept = 0.0
        if self.inject and modelled_s > measured_s:
            slept = modelled_s - measured_s
            time.sleep(slept)
        with self._lock:
            t = self._tiers.setdefault(tier, TierCharge())
            t.ops += int(ops)
            t.bytes += int(nbytes)
            t.measured_s += measured_s + slept
            t.modelled_s += modelled_s
            t.injected_s += slept
        return TierCharge(int(ops), int(nbytes), measured_s + slept, modelled_s, slept)

    def snapshot(self) -> dict[str, TierCharge]:
        with self._lock:
            return {k: TierCharge(**v.as_dict()) for k, v in self._tiers.items()}

    def reset(self) -> None:
        with self._lock:
            self._tiers.clear()
