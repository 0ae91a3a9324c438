"""An indexed binary min-heap in flat arrays, for numba kernels (LFU, Belady's OPT).

hid[i]  id at heap slot i;  hkey[i]  its priority (kept beside the id, so sifting compares a
contiguous array instead of chasing key[hid[i]]);  pos[id]  its slot, -1 if absent.
Keys are unique in every caller (they embed a time), so eviction never depends on tie-breaking.
"""
from __future__ import annotations

from numba import njit


@njit(cache=True, inline="always")
def sift_up(hid, hkey, pos, i):
    x = hid[i]
    k = hkey[i]
    while i > 0:
        parent = (i - 1) >> 1
        if hkey[parent] <= k:
            break
        hid[i] = hid[parent]
        hkey[i] = hkey[parent]
        pos[hid[i]] = i
        i = parent
    hid[i] = x
    hkey[i] = k
    pos[x] = i


@njit(cache=True, inline="always")
def sift_down(hid, hkey, pos, i, size):
    x = hid[i]
    k = hkey[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and hkey[c + 1] < hkey[c]:
            c += 1
        if hkey[c] >= k:
            break
        hid[i] = hid[c]
        hkey[i] = hkey[c]
        pos[hid[i]] = i
        i = c
    hid[i] = x
    hkey[i] = k
    pos[x] = i


@njit(cache=True, inline="always")
def push(hid, hkey, pos, size, x, k):
    """Insert id x with key k; returns the new size."""
    hid[size] = x
    hkey[size] = k
    pos[x] = size
    sift_up(hid, hkey, pos, size)
    return size + 1


@njit(cache=True, inline="always")
def update(hid, hkey, pos, i, k, size):
    """Set the key of the id at slot i to k and restore heap order."""
    old = hkey[i]
    hkey[i] = k
    if k < old:
        sift_up(hid, hkey, pos, i)
    else:
        sift_down(hid, hkey, pos, i, size)


@njit(cache=True, inline="always")
def pop_min(hid, hkey, pos, size):
    """Remove the id with the smallest key; returns (id, new size)."""
    x = hid[0]
    pos[x] = -1
    size -= 1
    if size > 0:
        hid[0] = hid[size]
        hkey[0] = hkey[size]
        pos[hid[0]] = 0
        sift_down(hid, hkey, pos, 0, size)
    return x, size
