"""One line on stderr per long step of a command (on a terminal or not: logs see it too), with its
time when it took over 2 s. tqdm bars cover the steps that can count their progress."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager


@contextmanager
def step(label: str, enabled: bool = True):
    """`with step("writing plan.json", enabled):` prints "label ..." before and "label: 3.1 s" after
    a step that took over 2 s."""
    if not enabled:
        yield
        return
    print(f"{label} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    yield
    dt = time.perf_counter() - t0
    if dt > 2.0:
        print(f"{label}: {dt:.1f} s", file=sys.stderr, flush=True)
