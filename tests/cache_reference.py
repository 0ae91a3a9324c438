"""Plain, obviously correct, slow policies: one Python call per access. For tests (and
tools/bench_cachesim.py's baseline) only.

Each is a `HookCache` (find / insert / evict) over Python containers, written from the policy's
definition rather than from the kernels, so that agreement between the two means something.
`reference_hits(ids, capacity, name)` replays a list of ids and returns the hit flags.
"""
from __future__ import annotations

from collections import OrderedDict, deque

from sdm.cache.setassoc import geometry


class HookCache:
    """One access at a time: `access` = find, or evict while full then insert (demand fill).

    Subclasses override `find`, `insert`, `evict` (and `admit` to bypass). `t` is the position of
    the current access, for policies that need time (LRU ticks, Belady's next use).
    """

    name = "base"

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.init()

    def init(self) -> None:  # per-policy state
        pass

    def __len__(self) -> int:
        raise NotImplementedError

    def find(self, key: int, t: int) -> bool:
        raise NotImplementedError

    def insert(self, key: int, t: int) -> None:
        raise NotImplementedError

    def evict(self, t: int) -> None:
        raise NotImplementedError

    def admit(self, key: int, t: int) -> bool:
        return True

    def access(self, key: int, t: int) -> bool:
        if self.find(key, t):
            return True
        if self.capacity <= 0 or not self.admit(key, t):
            return False
        while len(self) >= self.capacity:
            self.evict(t)
        self.insert(key, t)
        return False


class RefLRU(HookCache):
    name = "lru"

    def init(self):
        self.d = OrderedDict()

    def __len__(self):
        return len(self.d)

    def find(self, key, t):
        if key in self.d:
            self.d.move_to_end(key)
            return True
        return False

    def insert(self, key, t):
        self.d[key] = True

    def evict(self, t):
        self.d.popitem(last=False)


class RefFIFO(RefLRU):
    name = "fifo"

    def find(self, key, t):
        return key in self.d


class RefLFU(HookCache):
    """Evict min (count, last access time); counts reset on eviction unless `global_counts`."""

    name = "lfu"

    def __init__(self, capacity, global_counts=False):
        self.global_counts = global_counts
        super().__init__(capacity)

    def init(self):
        self.cached = set()
        self.count = {}
        self.last = {}

    def __len__(self):
        return len(self.cached)

    def find(self, key, t):
        self.count[key] = self.count.get(key, 0) + 1
        self.last[key] = t
        return key in self.cached

    def insert(self, key, t):
        self.cached.add(key)

    def evict(self, t):
        victim = min(self.cached, key=lambda k: (self.count[k], self.last[k]))
        self.cached.remove(victim)
        if not self.global_counts:
            self.count[victim] = 0


class RefOPT(HookCache):
    """Belady: evict the cached id whose next use is furthest (scanning the future each time)."""

    name = "opt"

    def __init__(self, capacity, ids, bypass=True):
        self.ids = list(ids)
        self.bypass = bypass
        super().__init__(capacity)

    def init(self):
        self.cached = set()

    def __len__(self):
        return len(self.cached)

    def next_use(self, key, t):
        for u in range(t + 1, len(self.ids)):
            if self.ids[u] == key:
                return u
        return len(self.ids)

    def find(self, key, t):
        return key in self.cached

    def admit(self, key, t):
        if not self.bypass or len(self.cached) < self.capacity:
            return True
        furthest = max(self.next_use(k, t) for k in self.cached)
        return self.next_use(key, t) < furthest

    def insert(self, key, t):
        self.cached.add(key)

    def evict(self, t):
        victim = max(self.cached, key=lambda k: self.next_use(k, t))
        self.cached.remove(victim)


class RefS3FIFO(HookCache):
    """S3-FIFO by the paper's Algorithm 1 with deques; ghost = the last `ghost_cap` ids sent to G."""

    name = "s3fifo"

    def __init__(self, capacity, small_cap, ghost_cap, move_threshold=2):
        self.small_cap, self.ghost_cap, self.move_threshold = small_cap, ghost_cap, move_threshold
        super().__init__(capacity)

    def init(self):
        self.S, self.M = deque(), deque()  # append = head (newest), popleft = tail (oldest)
        self.freq = {}
        self.ghost = []  # every id sent to G, oldest first
        self.left_ghost = set()  # ids inserted into the cache since their latest entry in G

    def __len__(self):
        return len(self.S) + len(self.M)

    def find(self, key, t):
        if key in self.freq:
            self.freq[key] = min(self.freq[key] + 1, 3)
            return True
        return False

    def in_ghost(self, key):
        window = self.ghost[-self.ghost_cap:] if self.ghost_cap > 0 else []
        return key in window and key not in self.left_ghost

    def insert(self, key, t):
        if self.in_ghost(key):
            self.M.append(key)
        else:
            self.S.append(key)
        self.left_ghost.add(key)
        self.freq[key] = 0

    def evict_main(self):
        while self.M:
            v = self.M.popleft()
            if self.freq[v] > 0:
                self.freq[v] -= 1
                self.M.append(v)
            else:
                del self.freq[v]
                return

    def evict(self, t):
        if len(self.S) >= self.small_cap:
            while self.S:
                v = self.S.popleft()
                if self.freq[v] >= self.move_threshold:
                    self.M.append(v)
                    if len(self.M) > self.capacity - self.small_cap:
                        self.evict_main()
                else:
                    del self.freq[v]
                    self.ghost.append(v)
                    self.left_ghost.discard(v)
                    return
        else:
            self.evict_main()


def fmix64_int(key):
    """MurmurHash3 fmix64 on a Python int (the kernel's numpy version must agree)."""
    mask = (1 << 64) - 1
    h = key & mask
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
    h ^= h >> 33
    return h


class RefSetAssoc(HookCache):
    """Sets of `ways` LRU entries; set = fmix64(original id) % sets."""

    name = "setassoc"

    def __init__(self, capacity, ways=32):
        self.sets, self.ways = geometry(capacity, ways)
        super().__init__(capacity)

    def init(self):
        self.table = [OrderedDict() for _ in range(self.sets)]

    def set_of(self, key):
        return fmix64_int(key) % self.sets

    def access(self, key, t):
        if self.sets == 0:
            return False
        s = self.table[self.set_of(key)]
        if key in s:
            s.move_to_end(key)
            return True
        if len(s) >= self.ways:
            s.popitem(last=False)
        s[key] = True
        return False


def reference_static_hits(ids, capacity, hot_ids=None):
    """Pinned set: the given ids (first `capacity` distinct), or the top ids by count, ties to the
    smaller id."""
    if hot_ids is None:
        counts = {}
        for x in ids:
            counts[x] = counts.get(x, 0) + 1
        hot = sorted(counts, key=lambda k: (-counts[k], k))[: max(capacity, 0)]
    else:
        hot = []
        for x in hot_ids:
            if x not in hot:
                hot.append(x)
        hot = hot[: max(capacity, 0)]
    pinned = set(hot)
    return [x in pinned for x in ids]


def reference_hits(ids, capacity, name, **kw):
    """Hit flags of replaying `ids` (a list of ints) through the named reference policy."""
    ids = [int(x) for x in ids]
    if name == "static":
        return reference_static_hits(ids, capacity, kw.get("hot_ids"))
    if name == "lru":
        cache = RefLRU(capacity)
    elif name == "fifo":
        cache = RefFIFO(capacity)
    elif name in ("lfu", "lfu-global"):
        cache = RefLFU(capacity, global_counts=name == "lfu-global")
    elif name in ("opt", "opt-demand"):
        cache = RefOPT(capacity, ids, bypass=name == "opt")
    elif name == "s3fifo":
        small = max(1, int(capacity * kw.get("small_ratio", 0.1))) if capacity > 0 else 0
        cache = RefS3FIFO(capacity, small, max(capacity - small, 0), kw.get("move_threshold", 2))
    elif name.startswith("setassoc"):
        cache = RefSetAssoc(capacity, kw.get("ways", 32))
    else:
        raise ValueError(f"no reference for {name!r}")
    return [cache.access(x, t) for t, x in enumerate(ids)]


def reference_stack_distances(ids):
    """LRU stack distance per access by the definition (None for a first access)."""
    out = []
    for t, x in enumerate(ids):
        prev = None
        for u in range(t - 1, -1, -1):
            if ids[u] == x:
                prev = u
                break
        out.append(None if prev is None else len(set(ids[prev + 1: t])) + 1)
    return out


def reference_bytes_used(rows, pages, hits, row_bytes, warmup=0):
    """Page mode: bytes of distinct rows read during each residency that a miss at t >= warmup started.

    Walks the accesses in time: a miss on a page opens a new residency (a fresh set of used rows);
    a hit adds its row to the page's open residency, if a miss opened one (pinned pages have none).
    """
    open_rows = {}  # page -> (counted?, rows used)
    used = 0
    for t, (row, page, hit) in enumerate(zip(rows, pages, hits)):
        if not hit:
            if page in open_rows and open_rows[page][0]:
                used += len(open_rows[page][1])
            open_rows[page] = (t >= warmup, {row})
        elif page in open_rows:
            open_rows[page][1].add(row)
    return (used + sum(len(s) for c, s in open_rows.values() if c)) * row_bytes

