/* The DRAM cache's probe (sdm/cache/index.py) as a C kernel: id -> slot over the set-associative tags.
 *
 * Same hash and layout as index.py's numba kernels (Fibonacci hash, then Lemire's multiply-shift to
 * a set; int32 tags, -1 = empty), so both give the same slots. Why C: a set of 16 int32 tags is one
 * 64-byte line, compared here with two AVX2 compares and a movemask, where numba emits 16 scalar
 * compares; and the tag line of the id PROBE_AHEAD places on is prefetched. Measured 2x faster than
 * the numba pass on the all-hit path (tools/bench_lookup.py). Built at first use by
 * sdm/cache/native_probe.py with the machine's C compiler (-O3 -march=native); ctypes calls it with
 * the GIL released. Every pointer is the caller's numpy buffer; nothing is allocated here.
 */
#include <stdint.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define PROBE_AHEAD 16

static inline int64_t hash_set(int64_t x, int64_t num_sets) {
    uint64_t h = ((uint64_t)x * 0x9E3779B97F4A7C15ull) >> 32;
    return (int64_t)((h * (uint64_t)num_sets) >> 32);
}

/* slot of id x, or -1. Ids outside [0, 2**31) are never cached (int32 tags; -1 marks empty). */
static inline int64_t probe_one(const int32_t* tags, int64_t num_sets, int64_t ways, int64_t x) {
    if ((uint64_t)x > 2147483647ull) return -1;
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

/* slots[i] = slot of ids[i] for i in [0, n). With stop_at_miss: returns the first absent id's
 * position (slots from there on unwritten), or -1 when every id is cached. Without: an absent id's
 * slot is -1 and the number of absent ids is returned. Reads only, except `seen` (NULL, or one bit per
 * slot, zeroed by the caller): each hit slot's bit is set and *distinct counts the bits newly set
 * (a look-ahead window matches a batch by its distinct rows: sdm/cache/index.py's _window_hits). */
int64_t sdm_probe32(const int32_t* tags, int64_t num_sets, int64_t ways, const int64_t* ids, int64_t n,
                    int64_t stop_at_miss, int64_t* slots, uint64_t* seen, int64_t* distinct) {
    int64_t misses = 0, fresh = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i + PROBE_AHEAD < n) {
            int64_t y = ids[i + PROBE_AHEAD];
            if ((uint64_t)y <= 2147483647ull) __builtin_prefetch(tags + hash_set(y, num_sets) * ways);
        }
        int64_t s = probe_one(tags, num_sets, ways, ids[i]);
        if (s < 0) {
            if (stop_at_miss) return i;
            misses++;
        } else if (seen) {   /* branch-free: a data-dependent branch here mispredicts on every new slot */
            uint64_t old = seen[s >> 6], bit = 1ull << (s & 63);
            fresh += (int64_t)(((old & bit) == 0));
            seen[s >> 6] = old | bit;
        }
        slots[i] = s;
    }
    if (distinct) *distinct = fresh;
    return stop_at_miss ? -1 : misses;
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
