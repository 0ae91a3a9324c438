"""The AIO submit / reap loop, the only one, as a numba kernel: it runs without the GIL or Python.

`pump` keeps up to `limit` reads of one batch in flight on an AIO context and returns once `until`
of them have completed (or a syscall failed), leaving the rest in flight; the caller checks the
finished ones (checksums) while the device keeps working, then calls it again. It calls libc's
`syscall` and reads `errno` through `__errno_location`, both resolved by name, so the compiled
kernel caches on disk. `aio_engine.AioReader` drives it (shared queue-depth budget, checks).
A loop that is sequential by nature (each submit depends on the last reap), so numba earns its place:
the same loop in Python via ctypes measured 0.93x its throughput (docs/pagestore.md).
"""
from __future__ import annotations

import numba as nb
from numba import types

# syscall(nr, a1..a5): always pass all five arguments (io_getevents' fifth, the timeout, must be NULL)
_syscall = types.ExternalFunction(
    "syscall", types.int64(types.int64, types.int64, types.int64, types.intp, types.intp, types.intp)
)
_errno_location = types.ExternalFunction("__errno_location", types.CPointer(types.int32)())

PUMP_OK, PUMP_SUBMIT_FAILED, PUMP_GETEVENTS_FAILED = 0, 1, 2
_EINTR = 4
_EAGAIN = 11


@nb.njit(nogil=True, cache=True)
def pump(nr_submit, nr_getevents, ctx, ptrs_addr, events_addr, event_bytes, n, state, limit, until):
    """state = [submitted, done, errno]; returns PUMP_OK or which syscall failed (errno in state[2])."""
    submitted = state[0]
    done = state[1]
    while done < until:
        room = min(limit - (submitted - done), n - submitted)
        if room > 0:
            r = _syscall(nr_submit, ctx, room, ptrs_addr + 8 * submitted, 0, 0)
            if r >= 0:
                submitted += r
            else:
                e = _errno_location()[0]
                if e != _EAGAIN or submitted == done:  # EAGAIN with reads in flight: reap, then retry
                    state[0] = submitted
                    state[1] = done
                    state[2] = e
                    return PUMP_SUBMIT_FAILED
        if submitted == done:
            break  # nothing in flight and no room granted: let the caller re-grant
        r = _syscall(nr_getevents, ctx, 1, min(limit, n - done), events_addr + event_bytes * done, 0)
        if r < 0:
            e = _errno_location()[0]
            if e == _EINTR:
                continue
            state[0] = submitted
            state[1] = done
            state[2] = e
            return PUMP_GETEVENTS_FAILED
        done += r
    state[0] = submitted
    state[1] = done
    return PUMP_OK
