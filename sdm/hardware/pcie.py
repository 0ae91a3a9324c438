"""PCIe transfer time with per-command latency, link bandwidth and command batching.

The first-generation deployment (seed 000/001, arXiv 2107.04140) found that issuing every small tensor
as its own PCIe command wastes most of the link on per-command overhead (doorbell write, descriptor
fetch, completion interrupt), and batched commands: many tensors for one request go in one command.
This module models exactly that trade: time = commands x command latency + bytes / bandwidth.

All functions take numpy arrays (one entry per request, per card, ...) and broadcast, so a timeline over
thousands of requests is one vector expression, not a Python loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from sdm.core.errors import InvalidInputError


@dataclass(frozen=True)
class PcieLink:
    """One direction of one PCIe link (host<->switch, or switch<->card).

    `latency_s` is the fixed cost of one command (DMA descriptor + completion), paid once per command
    however many bytes it carries; `max_batch` is how many tensors one batched command may carry.
    """

    name: str
    bandwidth_bytes_per_s: float
    latency_s: float
    max_batch: int = 64
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.bandwidth_bytes_per_s > 0:
            raise InvalidInputError(
                f"PCIe link {self.name!r}: bandwidth_bytes_per_s must be > 0, got {self.bandwidth_bytes_per_s}")
        if self.latency_s < 0:
            raise InvalidInputError(f"PCIe link {self.name!r}: latency_s must be >= 0, got {self.latency_s}")
        if int(self.max_batch) < 1:
            raise InvalidInputError(f"PCIe link {self.name!r}: max_batch must be >= 1, got {self.max_batch}")

    def commands(self, n_transfers, *, batching: bool = True):
        """Commands needed for `n_transfers` tensors: one each, or ceil(n / max_batch) when batched."""
        n = np.asarray(n_transfers, dtype=np.int64)
        if np.any(n < 0):
            raise InvalidInputError(f"PCIe link {self.name!r}: negative transfer count")
        if not batching:
            return n
        return -(-n // int(self.max_batch))

    def transfer_time_s(self, nbytes, n_transfers=1, *, batching: bool = True):
        """Seconds to move `nbytes` split over `n_transfers` tensors (arrays broadcast).

        Zero transfers cost nothing; bytes with no transfer count are an error of the caller.
        """
        b = np.asarray(nbytes, dtype=np.float64)
        if np.any(b < 0):
            raise InvalidInputError(f"PCIe link {self.name!r}: negative byte count")
        cmds = self.commands(n_transfers, batching=batching)
        t = cmds * self.latency_s + b / self.bandwidth_bytes_per_s
        return np.where(cmds > 0, t, 0.0)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "latency_s": self.latency_s,
            "max_batch": self.max_batch,
            "sources": dict(self.sources),
        }


def serial_arrival_s(ready_s: np.ndarray, xfer_s: np.ndarray) -> np.ndarray:
    """When the last of several producers' tensors has arrived over one shared (serial) link.

    `ready_s[r, p]`: when producer p's tensor for request r is ready; `xfer_s[r, p]`: its time on the
    link. Producers are served in order of readiness (first come, first served), so the answer is the
    classic single-server recursion t = max(t, ready) + xfer, run over the few producers (cards + host)
    and vectorized over requests.
    """
    ready = np.asarray(ready_s, dtype=np.float64)
    xfer = np.asarray(xfer_s, dtype=np.float64)
    if ready.shape != xfer.shape or ready.ndim != 2:
        raise InvalidInputError(f"serial_arrival_s: shapes {ready.shape} and {xfer.shape} must be equal and 2-D")
    order = np.argsort(ready, axis=1, kind="stable")
    r_sorted = np.take_along_axis(ready, order, axis=1)
    x_sorted = np.take_along_axis(xfer, order, axis=1)
    t = np.zeros(ready.shape[0])
    for p in range(ready.shape[1]):  # loop over producers (<= cards + 1), not rows
        t = np.maximum(t, r_sorted[:, p]) + x_sorted[:, p]
    return t
