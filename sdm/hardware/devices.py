"""Device models: one memory or storage medium, and the time it takes to serve a batch of reads.

The queue-depth model is the one published SSD measurements fit with two numbers per drive:

    base_latency(b)  = qd1_latency_s + (eff(b) - eff(calibration_read_bytes)) / bandwidth
    internal(qd, b)  = base_latency(b) * (1 + (qd - 1) * latency_growth_per_qd)
    iops(qd, b)      = min(qd / internal(qd, b), peak_iops, bandwidth / eff(b))
    latency_s(qd, b) = qd / iops(qd, b)                       (Little's law, closed loop at depth qd)

`eff(b)` rounds a read up to whole access units (a 100 B read from NAND costs a 4 KiB page: read
amplification). Latency grows linearly with depth because requests contend for the same dies and
channels; once the device or its link saturates, extra depth only adds queueing (Little's law).
`fit_queue_model` derives `latency_growth_per_qd` from two published (qd, latency) points, which is
how the SSD presets in `sdm.hardware.presets` are calibrated.

Writes (`write_time_s`) use the same form with the published write figures and no depth growth:
an enterprise SSD acknowledges a write once it is in its power-loss-protected buffer, so write
latency stays flat until the write IOPS or write bandwidth ceiling (the flash program rate) binds:

    write_iops(qd, b) = min(qd / (write_qd1_latency_s + (eff(b) - eff(4 KiB)) / write_bw),
                            write_iops, write_bw / eff(b))

A device without write figures (the memories) is priced with its read figures. Endurance:
`drive_writes_per_day(rate)` is what a sustained write rate uses of the rated `endurance_dwpd`, and
`endurance_years(rate)` how long the rated total (dwpd x capacity x 365 x endurance_rating_years)
lasts at that rate.

Every method accepts numpy arrays as well as scalars, so planners can price whole tables at once.
A call with plain integers (what the runtime makes on every lookup) takes a scalar path in Python
arithmetic instead: the same operations in the same order, so the same float bits, at ~1 us instead
of ~50 us of numpy dispatch (tools/bench_device_model.py measures both).

The presets (data with sources) and the lookup `device(name)` are in `sdm.hardware.presets`.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sdm.core.errors import InvalidInputError
from sdm.hardware.overrides import apply_overrides

MEDIA = ("sram", "lpddr4x", "hbm2", "ddr4", "nand", "3dxp")


@dataclass(frozen=True)
class DeviceSpec:
    """One memory or storage medium. Every figure names its source in `sources` (field -> text)."""

    name: str
    medium: str  # one of MEDIA
    capacity_bytes: int
    access_bytes: int  # granularity: 4096 NAND page, 512 3DXP sector, 64 DRAM line
    qd1_latency_s: float  # mean latency of one read of `calibration_read_bytes` at queue depth 1
    peak_iops: float  # ceiling on operations per second at any depth
    bandwidth_bytes_per_s: float  # ceiling on bytes per second (media or link, whichever is lower)
    latency_growth_per_qd: float = 0.0  # k: each extra outstanding read adds k * qd1 latency
    calibration_read_bytes: int = 4096  # read size the published latency / IOPS figures are for
    idle_watts: float = 0.0
    active_watts: float = 0.0  # power while reading at full bandwidth
    energy_j_per_byte: float = 0.0  # marginal energy of moving one byte (above idle)
    usd_per_gb: float = 0.0  # GB = 1e9 bytes
    endurance_dwpd: float | None = None  # drive writes per day; None for DRAM / SRAM
    endurance_rating_years: float = 5.0  # the period the DWPD rating is given over (the warranty)
    write_qd1_latency_s: float | None = None  # one 4 KiB write at QD1; None: the read figures price writes
    write_iops: float | None = None  # 4 KiB random write IOPS ceiling (steady state where published)
    write_bandwidth_bytes_per_s: float | None = None  # sequential write ceiling
    write_watts: float | None = None  # power while writing at full rate
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        def bad(fname: str, why: str) -> InvalidInputError:
            return InvalidInputError(
                f"device {self.name!r}: {fname}={getattr(self, fname)!r} is invalid: {why}"
            )

        if self.medium not in MEDIA:
            raise bad("medium", f"expected one of {MEDIA}")
        for fname in ("capacity_bytes", "access_bytes", "calibration_read_bytes"):
            v = getattr(self, fname)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise bad(fname, "must be a positive integer")
        for fname in ("qd1_latency_s", "peak_iops", "bandwidth_bytes_per_s"):
            v = getattr(self, fname)
            if not _is_real(v) or not (v > 0) or not math.isfinite(v):
                raise bad(fname, "must be a positive finite number")
        for fname in ("latency_growth_per_qd", "idle_watts", "active_watts", "energy_j_per_byte", "usd_per_gb"):
            v = getattr(self, fname)
            if not _is_real(v) or not (v >= 0) or not math.isfinite(v):
                raise bad(fname, "must be a finite number >= 0")
        if self.endurance_dwpd is not None and (not _is_real(self.endurance_dwpd) or self.endurance_dwpd < 0):
            raise bad("endurance_dwpd", "must be None or a number >= 0")
        if self.active_watts < self.idle_watts:
            raise bad("active_watts", f"must be >= idle_watts ({self.idle_watts})")
        for fname in ("write_qd1_latency_s", "write_iops", "write_bandwidth_bytes_per_s", "endurance_rating_years"):
            v = getattr(self, fname)
            if v is not None and (not _is_real(v) or not (v > 0) or not math.isfinite(v)):
                raise bad(fname, "must be None or a positive finite number")
        writes = (self.write_qd1_latency_s, self.write_iops, self.write_bandwidth_bytes_per_s)
        if any(v is None for v in writes) and any(v is not None for v in writes):
            raise bad("write_iops", "write_qd1_latency_s, write_iops and write_bandwidth_bytes_per_s go together")
        if self.write_watts is not None and (not _is_real(self.write_watts) or self.write_watts < self.idle_watts):
            raise bad("write_watts", f"must be None or >= idle_watts ({self.idle_watts})")
        # A read smaller than the calibration size is faster by its shorter transfer; that
        # saving must not exceed the latency itself.
        saving_s = (self._eff(self.calibration_read_bytes) - self.access_bytes) / self.bandwidth_bytes_per_s
        if saving_s >= self.qd1_latency_s:
            raise bad(
                "qd1_latency_s",
                f"shorter than the transfer time of {self.calibration_read_bytes} B at "
                f"{self.bandwidth_bytes_per_s:.3g} B/s; check bandwidth_bytes_per_s",
            )

    # ---- sizes -------------------------------------------------------------------------------
    def _eff(self, read_bytes):
        a = self.access_bytes
        return -(-read_bytes // a) * a  # ceil to whole access units

    def effective_bytes(self, read_bytes):
        """Bytes the medium really reads for a read of `read_bytes` (whole access units)."""
        return self._eff(_check_read_bytes(self.name, read_bytes))

    def read_amplification(self, read_bytes):
        """effective_bytes / read_bytes (1.0 when reads are whole access units)."""
        b = _check_read_bytes(self.name, read_bytes)
        return self._eff(b) / b

    # ---- time --------------------------------------------------------------------------------
    def _base_latency_s(self, eff_bytes):
        return self.qd1_latency_s + (eff_bytes - self._eff(self.calibration_read_bytes)) / self.bandwidth_bytes_per_s

    def iops(self, queue_depth, read_bytes=None):
        """Reads per second sustained with `queue_depth` reads always outstanding."""
        qd, rb = _count(queue_depth), self.calibration_read_bytes if read_bytes is None else _count(read_bytes)
        if qd is not None and rb is not None and qd >= 1 and rb >= 1:
            return self._iops_scalar(qd, rb)
        qd = _check_qd(self.name, queue_depth)
        eff = self._eff(self.calibration_read_bytes if read_bytes is None else _check_read_bytes(self.name, read_bytes))
        internal = self._base_latency_s(eff) * (1.0 + (qd - 1) * self.latency_growth_per_qd)
        out = np.minimum(np.minimum(qd / internal, self.peak_iops), self.bandwidth_bytes_per_s / eff)
        return _scalar(out)

    def latency_s(self, queue_depth, read_bytes=None):
        """Mean latency of one read at `queue_depth` (Little's law: depth / throughput)."""
        qd, rb = _count(queue_depth), self.calibration_read_bytes if read_bytes is None else _count(read_bytes)
        if qd is not None and rb is not None and qd >= 1 and rb >= 1:
            return qd / self._iops_scalar(qd, rb)
        qd = _check_qd(self.name, queue_depth)
        return _scalar(qd / np.asarray(self.iops(qd, read_bytes)))

    def read_time_s(self, n_reads, read_bytes, queue_depth):
        """Modelled service time of a batch of `n_reads` reads of `read_bytes` each.

        The batch is issued `queue_depth` at a time; a batch smaller than the depth runs at depth
        `n_reads` (it cannot keep more reads in flight than it has). Zero reads take zero time.
        """
        n, rb, qd = _count(n_reads), _count(read_bytes), _count(queue_depth)
        if n is not None and rb is not None and qd is not None and n >= 0 and rb >= 1 and qd >= 1:
            return n / self._iops_scalar(min(qd, n), rb) if n else 0.0
        n = _check_counts(self.name, n_reads, "n_reads")
        qd = _check_qd(self.name, queue_depth)
        rb = _check_read_bytes(self.name, read_bytes)
        depth = np.maximum(np.minimum(qd, n), 1)
        t = np.where(n > 0, n / np.asarray(self.iops(depth, rb)), 0.0)
        return _scalar(t)

    def _iops_scalar(self, qd: int, read_bytes: int) -> float:
        """`iops` for one checked (depth, size): the array path's operations, in its order, on floats."""
        eff = -(-read_bytes // self.access_bytes) * self.access_bytes
        base = self.qd1_latency_s + (eff - self._eff(self.calibration_read_bytes)) / self.bandwidth_bytes_per_s
        internal = base * (1.0 + (qd - 1) * self.latency_growth_per_qd)
        return float(min(min(qd / internal, self.peak_iops), self.bandwidth_bytes_per_s / eff))

    def write_time_s(self, n_writes, write_bytes, queue_depth):
        """Modelled time of `n_writes` writes of `write_bytes` each, `queue_depth` in flight (fewer when
        the batch is smaller), from the write figures (see the module doc). Zero writes take zero time."""
        n, wb, qd = _count(n_writes), _count(write_bytes), _count(queue_depth)
        if n is not None and wb is not None and qd is not None and n >= 0 and wb >= 1 and qd >= 1:
            return n / self._write_iops_scalar(min(qd, n), wb) if n else 0.0
        if self.write_iops is None:
            return self.read_time_s(n_writes, write_bytes, queue_depth)
        n = _check_counts(self.name, n_writes, "n_writes")
        qd = _check_qd(self.name, queue_depth)
        eff = self._eff(_check_read_bytes(self.name, write_bytes))
        depth = np.maximum(np.minimum(qd, n), 1)
        lat = self.write_qd1_latency_s + (eff - self._eff(4096)) / self.write_bandwidth_bytes_per_s
        iops = np.minimum(np.minimum(depth / lat, self.write_iops), self.write_bandwidth_bytes_per_s / eff)
        return _scalar(np.where(n > 0, n / iops, 0.0))

    def _write_iops_scalar(self, qd: int, write_bytes: int) -> float:
        if self.write_iops is None:
            return self._iops_scalar(qd, write_bytes)
        eff = -(-write_bytes // self.access_bytes) * self.access_bytes
        lat = self.write_qd1_latency_s + (eff - self._eff(4096)) / self.write_bandwidth_bytes_per_s
        return float(min(min(qd / lat, self.write_iops), self.write_bandwidth_bytes_per_s / eff))

    # ---- endurance -----------------------------------------------------------------------------
    def drive_writes_per_day(self, bytes_written_per_s):
        """Drive writes per day a sustained rate of bytes written to the medium uses."""
        rate = np.asarray(bytes_written_per_s, dtype=float)
        if np.any(rate < 0) or not np.all(np.isfinite(rate)):
            raise InvalidInputError(f"device {self.name!r}: bytes_written_per_s must be finite and >= 0, got "
                                    f"{bytes_written_per_s!r}")
        return _scalar(rate * 86400.0 / self.capacity_bytes)

    def endurance_years(self, bytes_written_per_s):
        """Years until the rated endurance is written at that rate (inf at rate 0; None: no rating)."""
        if self.endurance_dwpd is None:
            return None
        rated_bytes = self.endurance_dwpd * self.capacity_bytes * 365.0 * self.endurance_rating_years
        per_year = np.asarray(self.drive_writes_per_day(bytes_written_per_s)) * self.capacity_bytes * 365.0
        with np.errstate(divide="ignore", over="ignore"):
            return _scalar(np.divide(rated_bytes, per_year))  # rate 0: inf

    # ---- power and energy --------------------------------------------------------------------
    def read_energy_j(self, n_reads, read_bytes):
        """Marginal energy (above idle) of `n_reads` reads of `read_bytes`, amplification included."""
        return _scalar(np.asarray(n_reads) * self.effective_bytes(read_bytes) * self.energy_j_per_byte)

    def power_watts(self, bytes_per_s):
        """Power at a sustained read rate: idle + energy * rate, capped at the active (full-rate) power."""
        rate = np.asarray(bytes_per_s, dtype=float)
        if np.any(rate < 0):
            raise InvalidInputError(f"device {self.name!r}: bytes_per_s must be >= 0, got {bytes_per_s!r}")
        cap = max(self.active_watts, self.idle_watts)
        return _scalar(np.minimum(self.idle_watts + self.energy_j_per_byte * rate, cap))

    # ---- conversion --------------------------------------------------------------------------
    def replace(self, **overrides: Any) -> "DeviceSpec":
        """A copy with fields changed (flat names only); see `sdm.hardware.overrides` for dotted."""
        return apply_overrides(self, overrides)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["sources"] = dict(self.sources)
        return d


def fit_queue_model(qd1_latency_s: float, queue_depth: int, latency_at_qd_s: float) -> float:
    """`latency_growth_per_qd` that makes the model pass through a published (qd, latency) point."""
    if queue_depth <= 1 or latency_at_qd_s < qd1_latency_s:
        raise InvalidInputError(
            f"fit_queue_model: need queue_depth > 1 and latency_at_qd_s >= qd1_latency_s, got "
            f"queue_depth={queue_depth}, latency_at_qd_s={latency_at_qd_s}, qd1_latency_s={qd1_latency_s}"
        )
    return (latency_at_qd_s / qd1_latency_s - 1.0) / (queue_depth - 1)


# ---- argument checks (vectorized: whole arrays are checked at once) ------------------------------
def _is_real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _count(v) -> int | None:
    """`v` as an int when it is a Python or numpy integer (the scalar fast path), else None."""
    if type(v) is int:
        return v
    if isinstance(v, np.integer):
        return int(v)
    return None


def _check_counts(name: str, values, what: str) -> np.ndarray:
    """`values` as an array of whole numbers >= 0 (integers, or floats with integral values)."""
    n = np.asarray(values)
    if not np.issubdtype(n.dtype, np.integer) and not (
        np.issubdtype(n.dtype, np.floating) and np.all(np.isfinite(n)) and np.all(n == np.floor(n))
    ):
        raise InvalidInputError(f"device {name!r}: {what} must be whole numbers, got {values!r}")
    if np.any(n < 0):
        raise InvalidInputError(f"device {name!r}: {what} must be >= 0, got {values!r}")
    return n


def _check_qd(name: str, queue_depth):
    qd = np.asarray(queue_depth)
    if qd.dtype == bool or not np.issubdtype(qd.dtype, np.number) or np.any(qd < 1) or np.any(qd != np.floor(qd)):
        raise InvalidInputError(f"device {name!r}: queue_depth must be a whole number >= 1, got {queue_depth!r}")
    return qd.astype(np.int64) if qd.ndim else int(qd)


def _check_read_bytes(name: str, read_bytes):
    rb = np.asarray(read_bytes)
    if rb.dtype == bool or not np.issubdtype(rb.dtype, np.number) or np.any(rb < 1) or np.any(rb != np.floor(rb)):
        raise InvalidInputError(f"device {name!r}: read_bytes must be a whole number >= 1, got {read_bytes!r}")
    return rb.astype(np.int64) if rb.ndim else int(rb)


def _scalar(x):
    a = np.asarray(x)
    return float(a) if a.ndim == 0 else a.astype(float)
