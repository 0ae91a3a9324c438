#!/usr/bin/env python
"""Cost of one call of the device model, the array path against the scalar fast path.

  python tools/bench_device_model.py              # every device preset, 20,000 calls each
  python tools/bench_device_model.py --calls 100000 --devices p4800x p3700

The array path (what every call took before the fast path, and what 0-d arrays still take) runs
numpy dispatch on each argument; plain ints take Python arithmetic. Both give the same float bits
(tests/test_devices_model.py checks it), so the ratio is what a per-lookup caller saves. It also
prints `HardwareSpec.scm_read_time_s`, which the planner and the benchmarks call per batch.
"""
from __future__ import annotations

import argparse
import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sdm.hardware.presets import DEVICE_PRESETS, device  # noqa: E402
from sdm.hardware.server import hardware  # noqa: E402


def per_call_us(fn, calls: int) -> float:
    """Best of 3 runs of `calls` calls, in microseconds per call (best: the least disturbed run)."""
    return min(timeit.repeat(fn, number=calls, repeat=3)) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20_000, help="calls per measurement (default 20000)")
    ap.add_argument("--devices", nargs="*", default=sorted(DEVICE_PRESETS), help="device presets to time")
    ap.add_argument("--n-reads", type=int, default=37, help="reads per call (default 37)")
    ap.add_argument("--read-bytes", type=int, default=4096)
    ap.add_argument("--queue-depth", type=int, default=32)
    a = ap.parse_args(argv)
    n, rb, qd = a.n_reads, a.read_bytes, a.queue_depth
    n0, rb0, qd0 = np.array(n), np.array(rb), np.array(qd)  # 0-d arrays: the array path
    print(f"read_time_s({n}, {rb}, {qd}): us per call, best of 3 x {a.calls} calls")
    print(f"{'device':<18}{'array path':>12}{'fast path':>12}{'speed-up':>10}  same result")
    for name in a.devices:
        d = device(name)
        slow = per_call_us(lambda: d.read_time_s(n0, rb0, qd0), a.calls)
        fast = per_call_us(lambda: d.read_time_s(n, rb, qd), a.calls)
        same = d.read_time_s(n0, rb0, qd0) == d.read_time_s(n, rb, qd)
        print(f"{name:<18}{slow:>12.2f}{fast:>12.2f}{slow / fast:>9.0f}x  {same}")
    hw = hardware("host-3dxp")
    slow = per_call_us(lambda: hw.scm_read_time_s(n0, rb0, qd0), a.calls)
    fast = per_call_us(lambda: hw.scm_read_time_s(n, rb, qd), a.calls)
    print(f"{'host-3dxp scm_read':<18}{slow:>12.2f}{fast:>12.2f}{slow / fast:>9.0f}x  "
          f"{hw.scm_read_time_s(n0, rb0, qd0) == hw.scm_read_time_s(n, rb, qd)}")
    lat_slow = per_call_us(lambda: d.latency_s(qd0, rb0), a.calls)
    lat_fast = per_call_us(lambda: d.latency_s(qd, rb), a.calls)
    print(f"{name + ' latency_s':<18}{lat_slow:>12.2f}{lat_fast:>12.2f}{lat_slow / lat_fast:>9.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
