/* The DRAM cache's probe (sdm/cache/index.py) as a C kernel: id -> slot over the set-associative tags.
 *
 * Same hash and layout as index.py's numba kernels (Fibonacci hash, then Lemire's multiply-shift to
 * a set; int32 tags, -1 = empty), so both give the same slots. Why C: a set of 16 int32 tags is one
 * 64-byte line, compared here with one AVX-512 compare into a mask (two AVX2 compares and movemasks
 * where AVX-512 is missing), where numba emits 16 scalar compares; the sets are hashed eight ids at
 * a time, a chunk ahead, and the tag lines of the next chunk are prefetched meanwhile.
 * The all-hit pass writes the recency stamps once every id is proved cached, and splits a large
 * batch over torch's OpenMP threads. Measured in tools/bench_lookup.py (see docs/runtime.md).
 * Built at first use by sdm/cache/native_probe.py with the machine's C compiler (-O3 -march=native);
 * ctypes calls it with the GIL released. Every pointer is the caller's numpy buffer; nothing is
 * allocated here.
 */
#include <stdint.h>
#include <stddef.h>
#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#define PROBE_AHEAD 16   /* scalar path: prefetch distance in ids */
#define CHUNK 32         /* AVX-512 path: ids hashed per step; the prefetch distance (16-64 alike) */
#define ID_MAX 2147483647ull
/* The all-hit pass splits a batch over threads from this many ids on (below, a team's start costs
 * more than it saves) */
#define PARALLEL_MIN_IDS 16384
#define MAX_THREADS 256

static inline int64_t hash_set(int64_t x, int64_t num_sets) {
    uint64_t h = ((uint64_t)x * 0x9E3779B97F4A7C15ull) >> 32;
    return (int64_t)((h * (uint64_t)num_sets) >> 32);
}

/* slot of id x, or -1. Ids outside [0, 2**31) are never cached (int32 tags; -1 marks empty). */
static inline int64_t probe_one(const int32_t* tags, int64_t num_sets, int64_t ways, int64_t x) {
    if ((uint64_t)x > ID_MAX) return -1;
    int64_t s = hash_set(x, num_sets);
    const int32_t* t = tags + s * ways;
#if defined(__AVX2__)
    if (ways == 16) {
        __m256i k = _mm256_set1_epi32((int32_t)x);
        __m256i a = _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i*)t), k);
        __m256i b = _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i*)(t + 8)), k);
        uint32_t m = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(a))
                   | ((uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(b)) << 8);
        return m ? s * ways + __builtin_ctz(m) : -1;   /* (a row sits in at most one way) */
    }
#endif
    int32_t xt = (int32_t)x;
    int64_t found = -1;
    for (int64_t w = 0; w < ways; w++) if (t[w] == xt) found = w;
    return found < 0 ? -1 : s * ways + found;
}

/* What the pass does with each id's slot besides writing it (NULL pointers: not done). */
typedef struct {
    uint64_t* seen;        /* one bit per slot: set for each hit; `fresh` counts the bits newly set */
    int* stop;             /* set by the thread that met a miss: the others stop at their next chunk */
    const int32_t* warm;   /* scores stamped next: each set's line prefetched for writing with its
                            * tag line (the stamp pass found them cold: 0.05-0.1 ms a call of 131k
                            * ids); one thread only: split over two, it made both slower (measured) */
    int64_t misses, fresh;
} visit_t;

/* Slots are written int64 (sdm_probe32) or int32 (the all-hit pass: half the bytes to write here and
 * for the pooling kernel to read); `wide` is a constant in each exported function below. */
static inline __attribute__((always_inline)) void put_slot(void* slots, int wide, int64_t i, int64_t s) {
    if (wide) ((int64_t*)slots)[i] = s; else ((int32_t*)slots)[i] = (int32_t)s;
}

/* Record id i at slot s (-1: absent); 1 when the pass stops here (a miss with stop_at_miss). */
static inline __attribute__((always_inline)) int visit(visit_t* v, int64_t i, int64_t s, int stop_at_miss,
                                                        void* slots, int wide) {
    if (s < 0) {
        if (stop_at_miss) return 1;
        v->misses++;
    } else if (v->seen) {   /* branch-free: a data-dependent branch here mispredicts on every new slot */
        uint64_t old = v->seen[s >> 6], bit = 1ull << (s & 63);
        v->fresh += (int64_t)((old & bit) == 0);
        v->seen[s >> 6] = old | bit;
    }
    put_slot(slots, wide, i, s);
    return 0;
}

/* Another thread of the pass met a miss (checked once a chunk). */
static inline __attribute__((always_inline)) int stopped(const visit_t* v) {
    return v->stop && __atomic_load_n(v->stop, __ATOMIC_RELAXED);
}

#if defined(__AVX512F__) && defined(__AVX512DQ__)
/* sets[j] = set of ids[j] for j in [0, k) (k <= CHUNK), -1 for ids never cached; eight at a time.
 * The 64-bit product's top half is taken as the scalar hash_set does; the second multiply is
 * 32 x 32 bits (h < 2**32 and num_sets < 2**31), as there. */
static inline void hash_chunk(const int64_t* ids, int64_t k, int64_t num_sets, int64_t* sets) {
    const __m512i golden = _mm512_set1_epi64((int64_t)0x9E3779B97F4A7C15ull);
    const __m512i ns = _mm512_set1_epi64(num_sets), id_max = _mm512_set1_epi64((int64_t)ID_MAX);
    const __m512i none = _mm512_set1_epi64(-1);
    for (int64_t j = 0; j < k; j += 8) {
        __mmask8 live = (__mmask8)(k - j >= 8 ? 0xFF : (1u << (k - j)) - 1);
        __m512i x = _mm512_maskz_loadu_epi64(live, ids + j);
        __mmask8 bad = _mm512_cmpgt_epu64_mask(x, id_max);
        __m512i h = _mm512_srli_epi64(_mm512_mullo_epi64(x, golden), 32);
        __m512i s = _mm512_srli_epi64(_mm512_mul_epu32(h, ns), 32);
        _mm512_mask_storeu_epi64(sets + j, live, _mm512_mask_mov_epi64(s, bad, none));
    }
}

/* The pass over 16-way sets: a whole set's tags in one compare. */
static inline __attribute__((always_inline)) int64_t pass16(const int32_t* tags, int64_t num_sets,
        const int64_t* ids, int64_t n, int stop_at_miss, void* slots, int wide, visit_t* v) {
    int64_t buf[2][CHUNK];
    int64_t *cur = buf[0], *next = buf[1];
    hash_chunk(ids, n < CHUNK ? n : CHUNK, num_sets, cur);
    for (int64_t b = 0; b < n; b += CHUNK) {
        if (stopped(v)) return -2 - b;
        int64_t k = n - b < CHUNK ? n - b : CHUNK;
        int64_t kn = n - b - k < CHUNK ? n - b - k : CHUNK;
        if (kn > 0) hash_chunk(ids + b + k, kn, num_sets, next);
        for (int64_t j = 0; j < k; j++) {
            if (j < kn && next[j] >= 0) {
                _mm_prefetch((const char*)(tags + next[j] * 16), _MM_HINT_T0);
                if (v->warm) __builtin_prefetch(v->warm + next[j] * 16, 1, 2);
            }
            int64_t i = b + j, st = cur[j], s = -1;
            if (st >= 0) {
                __mmask16 m = _mm512_cmpeq_epi32_mask(_mm512_loadu_si512(tags + st * 16),
                                                      _mm512_set1_epi32((int32_t)ids[i]));
                s = m ? st * 16 + __builtin_ctz(m) : -1;   /* (a row sits in at most one way) */
            }
            if (visit(v, i, s, stop_at_miss, slots, wide)) return i;
        }
        int64_t* t = cur; cur = next; next = t;
    }
    return -1;
}
#endif

static inline __attribute__((always_inline)) int64_t pass(const int32_t* tags, int64_t num_sets, int64_t ways,
        const int64_t* ids, int64_t n, int stop_at_miss, void* slots, int wide, visit_t* v) {
#if defined(__AVX512F__) && defined(__AVX512DQ__)
    if (ways == 16 && num_sets < 2147483648ll) return pass16(tags, num_sets, ids, n, stop_at_miss, slots, wide, v);
#endif
    for (int64_t b = 0; b < n; b += CHUNK) {
        if (stopped(v)) return -2 - b;
        int64_t e = n - b < CHUNK ? n : b + CHUNK;
        for (int64_t i = b; i < e; i++) {
            if (i + PROBE_AHEAD < n) {
                int64_t y = ids[i + PROBE_AHEAD];
                if ((uint64_t)y <= ID_MAX) {
                    int64_t sy = hash_set(y, num_sets) * ways;
                    __builtin_prefetch(tags + sy);
                }
            }
            if (visit(v, i, probe_one(tags, num_sets, ways, ids[i]), stop_at_miss, slots, wide)) return i;
        }
    }
    return -1;
}

/* slots[i] = slot of ids[i] for i in [0, n). With stop_at_miss: returns the first absent id's
 * position (slots from there on unwritten), or -1 when every id is cached. Without: an absent id's
 * slot is -1 and the number of absent ids is returned. Reads only, except `seen` (NULL, or one bit per
 * slot, zeroed by the caller): each hit slot's bit is set and *distinct counts the bits newly set
 * (a look-ahead window matches a batch by its distinct rows: sdm/cache/index.py's _window_hits). */
int64_t sdm_probe32(const int32_t* tags, int64_t num_sets, int64_t ways, const int64_t* ids, int64_t n,
                    int64_t stop_at_miss, int64_t* slots, uint64_t* seen, int64_t* distinct) {
    visit_t v = {seen, NULL, NULL, 0, 0};
    int64_t at = stop_at_miss ? pass(tags, num_sets, ways, ids, n, 1, slots, 1, &v)
                              : pass(tags, num_sets, ways, ids, n, 0, slots, 1, &v);
    if (distinct) *distinct = v.fresh;
    return stop_at_miss ? at : v.misses;
}

/* Thread t of T's share of the stamps: score[slot] = stamp for each id whose slot is among sets
 * [num_sets * t / T, num_sets * (t + 1) / T) and whose row is inside `mask` (NULL: all). Whole sets
 * each: two threads stamping neighbouring slots would bounce a score line between their cores on
 * every id. Branch-free: whose slot an id has is a coin toss (a branch here cost 3x the loop). */
static void stamp_share(int32_t* score, const int32_t* slots, const int64_t* ids, int64_t n, int32_t stamp,
                        const uint8_t* mask, int64_t num_sets, int64_t ways, int t, int T) {
    int64_t s_lo = num_sets * t / T * ways, s_len = num_sets * (t + 1) / T * ways - s_lo;
    int32_t sink = 0;
    int64_t i = 0;
#if defined(__AVX512F__)
    if (!mask) {   /* 16 stamps a scatter, lanes outside the range masked off (a row twice: same value) */
        const __m512i lo = _mm512_set1_epi32((int32_t)s_lo), len = _mm512_set1_epi32((int32_t)s_len);
        const __m512i value = _mm512_set1_epi32(stamp);
        for (; i + 16 <= n; i += 16) {
            __m512i sl = _mm512_loadu_si512(slots + i);
            __mmask16 mine = _mm512_cmplt_epu32_mask(_mm512_sub_epi32(sl, lo), len);
            _mm512_mask_i32scatter_epi32(score, mine, sl, value, 4);
        }
    }
#endif
    for (; i < n; i++) {
        int64_t slot = slots[i];
        uintptr_t mine = (uint64_t)(slot - s_lo) < (uint64_t)s_len;
        if (mask) mine &= mask[ids[i] & -(int64_t)mine] != 0;   /* (row 0 read when not mine) */
        /* the address picked by masks, not a ?: the compiler may turn into a branch */
        uintptr_t to = ((uintptr_t)(score + slot) & -mine) | ((uintptr_t)&sink & (mine - 1));
        *(int32_t*)to = stamp;
    }
}

/* The all-hit pass with its recency stamps: int32 slots (half the bytes of int64 to write here and for
 * the pooling kernel to read) as sdm_probe32 with stop_at_miss; once every id is proved cached,
 * score[slot] = stamp for each whose row is inside `mask` (one byte per row id; NULL: all). Returns
 * -1 when every id is cached, else the position of an absent id (the first one on one thread) with
 * nothing written but slots. With `threads` > 1 (built with OpenMP, the runtime torch's own kernels
 * run on: one pool of threads) and a large batch, the probe is split by position and the stamps by
 * slot range over a team of `threads`. */
int64_t sdm_probe_stamp32(const int32_t* tags, int64_t num_sets, int64_t ways, const int64_t* ids, int64_t n,
                          int32_t* slots, int32_t* score, int32_t stamp, const uint8_t* mask, int64_t threads) {
#if defined(_OPENMP)
    if (threads > 1 && n >= PARALLEL_MIN_IDS) {
        int stop = 0, team = (int)(threads < MAX_THREADS ? threads : MAX_THREADS);
        int64_t first = -1;
        #pragma omp parallel num_threads(team)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            int64_t lo = n * t / T, hi = n * (t + 1) / T;
            visit_t v = {NULL, &stop, NULL, 0, 0};
            int64_t at = pass(tags, num_sets, ways, ids + lo, hi - lo, 1, slots + lo, 0, &v);
            if (at >= 0) {
                __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
                #pragma omp critical(sdm_first_miss)
                if (first < 0 || lo + at < first) first = lo + at;
            }
            #pragma omp barrier
            if (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
                stamp_share(score, slots, ids, n, stamp, mask, num_sets, ways, t, T);
        }
        return first;
    }
#endif
    (void)threads;
    visit_t v = {NULL, NULL, score, 0, 0};
    int64_t at = pass(tags, num_sets, ways, ids, n, 1, slots, 0, &v);
    if (at < 0) stamp_share(score, slots, ids, n, stamp, mask, num_sets, ways, 0, 1);
    return at;
}

/* score[slots[i]] = stamp for each i whose row is inside `mask` (one byte per row id; NULL: all) and
 * whose slot's bit is clear in `skip` (one bit per slot; NULL: none skipped). */
void sdm_stamp32(int32_t* score, const int64_t* slots, const int64_t* ids, int64_t n, int32_t stamp,
                 const uint8_t* mask, const uint64_t* skip) {
    for (int64_t i = 0; i < n; i++) {
        int64_t s = slots[i];
        if (skip && (skip[s >> 6] >> (s & 63)) & 1ull) continue;
        if (!mask || mask[ids[i]]) score[s] = stamp;
    }
}
