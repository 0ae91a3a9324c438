"""The runtime's DRAM cache (sdm.cache.index) written from its definition in plain Python, one set
of lists per set, one batch at a time. For tests only: tests/test_cachesim_runtime.py holds
`sdm.cachesim.RuntimeCache` (which drives the real index) to it hit for hit.
"""
from __future__ import annotations


def fibonacci_set(key, num_sets):
    """Set of an id: top 32 bits of id * 2**64/phi (mod 2**64), scaled to num_sets by multiply-shift."""
    h = ((key * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)) >> 32
    return (h * num_sets) >> 32


class RefRuntimeCache:
    """Sets of `ways` slots in plain lists, a batch at a time, written from sdm.cache.index's doc:
    a batch's distinct ids are looked up; the ones found are read (one clock tick for the batch);
    the missing ones, ascending within each set, take the set's slots in order (empty ones first
    by way, then lowest key, ties by way), never a slot holding a row the batch found; a miss left
    without a slot bypasses (one clock tick for the placing). Keys: lru = tick of the last read or
    fill; fifo = tick of the fill; lfu = (batches that read it since its fill, tick of the last);
    static = admits only `hot_ids` (loaded first), never evicts by key (all equal)."""

    def __init__(self, policy, num_rows, rows, ways, layout="auto", hot_ids=None):
        self.policy = policy
        if layout == "auto" and rows >= num_rows:
            self.direct, self.sets, self.ways = True, num_rows, 1
        else:
            self.direct = False
            self.ways = max(1, min(ways, rows))
            self.sets = rows // self.ways
        self.slot = [[None] * self.ways for _ in range(self.sets)]   # [tag, key] or None
        self.tick = 0
        self.hot = None if hot_ids is None else set(int(x) for x in hot_ids)
        if policy == "static":
            self.hot = self.hot or set()
            if hot_ids is not None and self.sets * self.ways:
                self.place(list(dict.fromkeys(int(x) for x in hot_ids))[: self.sets * self.ways], set())

    def set_of(self, key):
        return key if self.direct else fibonacci_set(key, self.sets)

    def find(self, key):
        if not self.sets:
            return None
        for w, e in enumerate(self.slot[self.set_of(key)]):
            if e is not None and e[0] == key:
                return self.set_of(key), w
        return None

    def read(self, where):
        self.tick += 1
        for s, w in where:
            e = self.slot[s][w]
            if self.policy == "lru":
                e[1] = self.tick
            elif self.policy == "lfu":
                e[1] = (e[1][0] + 1, self.tick)

    def fill_key(self):
        if self.policy == "lfu":
            return (1, self.tick)
        return 0 if self.policy == "static" else self.tick

    def place(self, keys, protected):
        keys = [k for k in keys if self.policy != "static" or k in self.hot]
        if not keys or not self.sets:
            return
        by_set = {}
        for k in sorted(keys, key=lambda k: self.set_of(k)):   # stable: ascending ids stay in order
            by_set.setdefault(self.set_of(k), []).append(k)
        order = {}
        for s in by_set:
            empty = [w for w in range(self.ways) if self.slot[s][w] is None]
            used = sorted((w for w in range(self.ways) if self.slot[s][w] is not None and (s, w) not in protected),
                          key=lambda w: (self.slot[s][w][1], w))
            order[s] = empty + used
        self.tick += 1
        for s, ks in by_set.items():
            for k, w in zip(ks, order[s]):
                self.slot[s][w] = [k, self.fill_key()]

    def batch(self, ids):
        """Hit flag per lookup of one batch."""
        distinct = sorted(set(ids))
        found = {k: self.find(k) for k in distinct}
        where = [found[k] for k in distinct if found[k] is not None]
        if where:
            self.read(where)
        self.place([k for k in distinct if found[k] is None], set(where))
        return [found[k] is not None for k in ids]


def reference_runtime_hits(ids, batch_size, policy, num_rows, rows, ways, layout="auto", hot_ids=None):
    cache = RefRuntimeCache(policy, num_rows, rows, ways, layout, hot_ids)
    out = []
    for a in range(0, len(ids), batch_size):
        out += cache.batch([int(x) for x in ids[a:a + batch_size]])
    return out
