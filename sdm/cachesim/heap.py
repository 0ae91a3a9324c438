"""An indexed binary min-heap in flat arrays, for numba kernels (LFU, Belady's OPT).

heap[i]  id at heap slot i;  pos[id]  its slot (-1 if absent);  key[id]  its priority.
Keys of ids in the heap are unique in every caller (they embed a time), so eviction order never
depends on tie-breaking.
"""
from __future__ import annotations

from numba import njit


@njit(cache=True, inline="always")
def sift_up(heap, pos, key, i):
    x = heap[i]
    kx = key[x]
    while i > 0:
        parent = (i - 1) >> 1
        p = heap[parent]
        if key[p] <= kx:
            break
        heap[i] = p
        pos[p] = i
        i = parent
    heap[i] = x
    pos[x] = i


@njit(cache=True, inline="always")
def sift_down(heap, pos, key, i, size):
    x = heap[i]
    kx = key[x]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and key[heap[c + 1]] < key[heap[c]]:
            c += 1
        y = heap[c]
        if key[y] >= kx:
            break
        heap[i] = y
        pos[y] = i
        i = c
    heap[i] = x
    pos[x] = i


@njit(cache=True, inline="always")
def push(heap, pos, key, size, x):
    """Insert id x (key[x] already set); returns the new size."""
    heap[size] = x
    pos[x] = size
    sift_up(heap, pos, key, size)
    return size + 1


@njit(cache=True, inline="always")
def pop_min(heap, pos, key, size):
    """Remove the id with the smallest key; returns (id, new size)."""
    x = heap[0]
    pos[x] = -1
    size -= 1
    if size > 0:
        heap[0] = heap[size]
        pos[heap[0]] = 0
        sift_down(heap, pos, key, 0, size)
    return x, size
