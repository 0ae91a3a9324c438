"""The job's process group: gloo on loopback, with a bounded timeout, and the error a rank raises
when a peer is gone.

torchrun (or the caller) sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT. Only loopback addresses
are accepted: this package launches on one machine. Every collective is bounded by `timeout_s`;
when a peer dies, gloo reports the broken connection at once or the collective times out, and
`collective_guard` turns either into `PeerLostError`, which names the rank and the step.
"""
from __future__ import annotations

import ipaddress
import os
from contextlib import contextmanager
from datetime import timedelta

import torch.distributed as dist

from sdm.core.errors import InvalidInputError, SdmError

__all__ = ["init_loopback", "PeerLostError", "collective_guard", "LOOPBACK_HOSTS"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class PeerLostError(SdmError, RuntimeError):
    """A collective failed or timed out: another rank died or stopped answering."""


def _check_loopback(addr: str) -> None:
    if addr in LOOPBACK_HOSTS:
        return
    try:
        if ipaddress.ip_address(addr).is_loopback:
            return
    except ValueError:
        pass
    raise InvalidInputError(f"MASTER_ADDR={addr!r} is not a loopback address; this launcher runs on one machine "
                            f"(use 127.0.0.1)")


def init_loopback(timeout_s: float = 30.0) -> tuple[int, int]:
    """(rank, world_size) after joining the gloo group named by the environment (torchrun's)."""
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise InvalidInputError(f"environment lacks {missing}: launch with torchrun --standalone --nproc_per_node=N")
    _check_loopback(os.environ["MASTER_ADDR"])
    if not timeout_s > 0:
        raise InvalidInputError(f"timeout_s must be > 0, not {timeout_s!r}")
    if not dist.is_initialized():
        timeout = timedelta(seconds=float(timeout_s))
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        dist.init_process_group("gloo", store=_attempt_store(rank, world, timeout), rank=rank, world_size=world,
                                timeout=timeout)
    return dist.get_rank(), dist.get_world_size()


def _attempt_store(rank: int, world: int, timeout: timedelta):
    """The rendezvous store, its keys prefixed by torchrun's restart count: a restarted worker must
    not read the addresses its dead predecessors published (seen with torchrun --standalone
    --max-restarts: the survivor of the first attempt dialled a dead rank's port and gave up)."""
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"     # torchrun's agent hosts the store
    store = dist.TCPStore(addr, port, world, is_master=(not agent and rank == 0), timeout=timeout,
                          multi_tenant=not agent)
    return dist.PrefixStore(f"sdm/attempt{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


@contextmanager
def collective_guard(rank: int, step: str, timeout_s: float):
    """Re-raise a failed collective as PeerLostError naming this rank and the step it was in."""
    try:
        yield
    except PeerLostError:
        raise
    except (RuntimeError, ConnectionError, dist.DistBackendError if hasattr(dist, "DistBackendError") else RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise PeerLostError(f"rank {rank}: {step} failed: a peer rank died or stopped answering within the "
                            f"process-group timeout ({timeout_s:g} s): {first}") from exc
