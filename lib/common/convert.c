/*
 * convert.c - dtype conversion kernels: one loop per (source, destination)
 * dtype pair and mode, over contiguous runs (convert.h says what each does).
 *
 * Why this is fast: the scalar path (place.c) loads every element through
 * memcpy into a double, calls the destination's converter with its branches,
 * and steps by byte strides; about 1 ns per value.  Here each loop has its
 * types fixed, restrict pointers, unit stride, and per-value work written
 * as selects (x == x ? x : 0, clamps as min/max) instead of branches, so
 * gcc at -O3 and clang turn it into SIMD with a scalar tail, at the speed
 * of the bytes written.  CMakeLists.txt builds this file with -O3 (outside
 * Debug) and -fno-trapping-math, clang's default: without it gcc will not
 * turn a comparison of doubles into a select (the comparison could raise a
 * floating-point exception flag, which nothing here reads); the values,
 * rounding and NaN results are unchanged.
 *
 * Why it equals the scalar path bit for bit:
 * - Lossless pairs (a wider integer, an integer of at most 16 bits into
 *   float32, anything into float64, float64 into float32) are one C cast,
 *   which rounds to nearest even exactly as the double detour does (an
 *   integer of 32 bits is exact in double, so (float)(double)x == (float)x).
 * - An integer into a narrower one is clamped (in int64: exact).
 * - A float32 into an integer: GDAL's float rules (raster__f2*, common.h,
 *   the functions the scalar path calls), inlined.
 * - A float64 into an integer: RASTER__D2INT's rule (common.h) written
 *   branch-free: NaN 0, clamp, then +-0.5 and truncation (the clamp first
 *   is the same: a clamped value rounds to itself).
 * - scale/offset and mean/std are the same double expressions in the same
 *   order, and the build has -ffp-contract=off (no fused multiply-add).
 * tests/unit/check_convert.c compares every pair and mode against the
 * scalar path and GDALCopyWords.
 *
 * At the end: lookup tables for 8- and 16-bit integer sources with
 * parameters (convert.h says the rule and the memory), because there the
 * double division of mean/std (about 0.6 ns per value) is the floor of the
 * direct kernels, and a table lookup is one load (about 0.34 ns per value
 * for uint16 -> float32, 0.25 for uint8, per-thread CPU time, in cache).
 * A table is filled by the direct kernel above over every input value, so
 * it is bit-identical to it by construction.
 */
#include "convert.h"

#include <math.h>

typedef uint8_t u8;
typedef int8_t i8;
typedef uint16_t u16;
typedef int16_t i16;
typedef uint32_t u32;
typedef int32_t i32;
typedef float f32;
typedef double f64;

/* Each dtype's range as doubles, and whether it is a float.  A pair is
 * lossless when the source range lies inside the destination's. */
#define LO_u8 0.0
#define HI_u8 255.0
#define LO_i8 -128.0
#define HI_i8 127.0
#define LO_u16 0.0
#define HI_u16 65535.0
#define LO_i16 -32768.0
#define HI_i16 32767.0
#define LO_u32 0.0
#define HI_u32 4294967295.0
#define LO_i32 -2147483648.0
#define HI_i32 2147483647.0
#define LO_f32 (-HUGE_VAL)
#define HI_f32 HUGE_VAL
#define LO_f64 (-HUGE_VAL)
#define HI_f64 HUGE_VAL
#define FLOAT_u8 0
#define FLOAT_i8 0
#define FLOAT_u16 0
#define FLOAT_i16 0
#define FLOAT_u32 0
#define FLOAT_i32 0
#define FLOAT_f32 1
#define FLOAT_f64 1
#define F32_u8 0
#define F32_i8 0
#define F32_u16 0
#define F32_i16 0
#define F32_u32 0
#define F32_i32 0
#define F32_f32 1
#define F32_f64 0

/* double -> integer: RASTER__D2INT's rule, as selects.  The truncation goes
 * through int32 (int64 for uint32), which SIMD has; the clamped value fits. */
#define FROM_DOUBLE_INT(D, W)                                \
    static inline D from_double_##D(double v)                \
    {                                                        \
        v = v == v ? v : 0.0;                                \
        v = v > LO_##D ? v : LO_##D;                         \
        v = v < HI_##D ? v : HI_##D;                         \
        v = v >= 0 ? v + 0.5 : v - 0.5;                      \
        return (D)(W)v;                                      \
    }
FROM_DOUBLE_INT(u8, int32_t)
FROM_DOUBLE_INT(i8, int32_t)
FROM_DOUBLE_INT(u16, int32_t)
FROM_DOUBLE_INT(i16, int32_t)
FROM_DOUBLE_INT(u32, int64_t)
FROM_DOUBLE_INT(i32, int32_t)
static inline f32 from_double_f32(double v) { return (f32)v; }
static inline f64 from_double_f64(double v) { return v; }

/* float32 -> integer: GDAL's float rules (common.h), written as selects
 * in float, four lanes where double has two. */
static inline u8 from_float_u8(float x) { return raster__f2u8(x); }
static inline i8 from_float_i8(float x) { return raster__f2i8(x); }
static inline u16 from_float_u16(float x) { return raster__f2u16(x); }
static inline i16 from_float_i16(float x) { return raster__f2i16(x); }
static inline u32 from_float_u32(float x) { return raster__f2u32(x); }
static inline i32 from_float_i32(float x) { return raster__f2i32(x); }
static inline f32 from_float_f32(float x) { return x; }      /* never used: float pairs are casts */
static inline f64 from_float_f64(float x) { return x; }

/* integer -> narrower integer: clamp in int64, which gcc narrows to the
 * lanes the values need. */
#define FROM_INT(D)                                                    \
    static inline D from_int_##D(int64_t v)                            \
    {                                                                  \
        v = v > (int64_t)LO_##D ? v : (int64_t)LO_##D;                 \
        v = v < (int64_t)HI_##D ? v : (int64_t)HI_##D;                 \
        return (D)v;                                                   \
    }
FROM_INT(u8)
FROM_INT(i8)
FROM_INT(u16)
FROM_INT(i16)
FROM_INT(u32)
FROM_INT(i32)
static inline f32 from_int_f32(int64_t v) { return (f32)v; }     /* never used: float pairs are casts */
static inline f64 from_int_f64(int64_t v) { return (f64)v; }

/* One element S -> D without parameters.  The conditions are constants per
 * pair, folded away before vectorisation. */
#define CONVERT(S, D, x)                                                       \
    ((FLOAT_##D || (LO_##S >= LO_##D && HI_##S <= HI_##D)) ? (D)(x)            \
     : F32_##S   ? from_float_##D((float)(x))                                  \
     : FLOAT_##S ? from_double_##D((double)(x))                                \
                 : from_int_##D((int64_t)(x)))

#define PLAIN_KERNEL(S, D)                                                       \
    static void plain_##S##_##D(const void *src, void *dst, int64_t n)           \
    {                                                                            \
        const S *restrict s = src;                                               \
        D *restrict d = dst;                                                     \
        for (int64_t i = 0; i < n; i++)                                          \
            d[i] = CONVERT(S, D, s[i]);                                          \
    }

/* Lanes in blocks of the period, so the parameter index is the inner loop's
 * counter (no modulo); the tail starts a new period. */
#define PARAM_KERNEL(NAME, S, D, EXPR)                                                       \
    static void NAME##_##S##_##D(const void *src, void *dst, int64_t n, const double *a,     \
                                 const double *b)                                            \
    {                                                                                        \
        const S *restrict s = src;                                                           \
        D *restrict d = dst;                                                                 \
        const double *restrict pa = a, *restrict pb = b;                                     \
        int64_t i = 0;                                                                       \
        for (; i + RASTER__CVT_PERIOD <= n; i += RASTER__CVT_PERIOD)                         \
            for (int j = 0; j < RASTER__CVT_PERIOD; j++) {                                   \
                const double x = (double)s[i + j];                                           \
                d[i + j] = from_double_##D(EXPR);                                            \
            }                                                                                \
        for (int j = 0; i + j < n; j++) {                                                    \
            const double x = (double)s[i + j];                                               \
            d[i + j] = from_double_##D(EXPR);                                                \
        }                                                                                    \
    }
#define AFFINE_KERNEL(S, D) PARAM_KERNEL(affine, S, D, x * pa[j] + pb[j])
#define DIVIDE_KERNEL(S, D) PARAM_KERNEL(divide, S, D, (x - pb[j]) / pa[j])

#define FOR_DST(M, S) M(S, u8) M(S, i8) M(S, u16) M(S, i16) M(S, u32) M(S, i32) M(S, f32) M(S, f64)
#define FOR_PAIRS(M) FOR_DST(M, u8) FOR_DST(M, i8) FOR_DST(M, u16) FOR_DST(M, i16) \
                     FOR_DST(M, u32) FOR_DST(M, i32) FOR_DST(M, f32) FOR_DST(M, f64)
FOR_PAIRS(PLAIN_KERNEL)
FOR_PAIRS(AFFINE_KERNEL)
FOR_PAIRS(DIVIDE_KERNEL)

/* Indexed [source][destination] in raster_dtype_t order; float16 is NULL. */
#define TABLE_ROW(K, S) {K##_##S##_u8, K##_##S##_i8, K##_##S##_u16, K##_##S##_i16, K##_##S##_u32, \
                         K##_##S##_i32, NULL, K##_##S##_f32, K##_##S##_f64}
#define TABLE(K) {TABLE_ROW(K, u8), TABLE_ROW(K, i8), TABLE_ROW(K, u16), TABLE_ROW(K, i16), \
                  TABLE_ROW(K, u32), TABLE_ROW(K, i32), {NULL}, TABLE_ROW(K, f32), TABLE_ROW(K, f64)}
static const raster__cvt_plain_fn plain_table[RASTER_DTYPE_COUNT][RASTER_DTYPE_COUNT] = TABLE(plain);
static const raster__cvt_param_fn affine_table[RASTER_DTYPE_COUNT][RASTER_DTYPE_COUNT] = TABLE(affine);
static const raster__cvt_param_fn divide_table[RASTER_DTYPE_COUNT][RASTER_DTYPE_COUNT] = TABLE(divide);

static int
pair_known(raster_dtype_t s, raster_dtype_t d)
{
    return (unsigned)s < RASTER_DTYPE_COUNT && (unsigned)d < RASTER_DTYPE_COUNT;
}

/* float32 NaN into int32 by the running GDAL's rule (common.h). */
static atomic_int nan_i32_zero;

void
raster__convert_nan_i32_zero(int zero)
{
    atomic_store_explicit(&nan_i32_zero, zero != 0, memory_order_relaxed);
}

int
raster__convert_nan_i32_is_zero(void)
{
    return atomic_load_explicit(&nan_i32_zero, memory_order_relaxed);
}

static void
plain_f32_i32_nan0(const void *src, void *dst, int64_t n)
{
    const float *restrict s = src;
    int32_t *restrict d = dst;
    for (int64_t i = 0; i < n; i++)
        d[i] = raster__f2i32_nan0(s[i]);
}

raster__cvt_plain_fn
raster__cvt_plain(raster_dtype_t s, raster_dtype_t d)
{
    if (s == RASTER_F32 && d == RASTER_I32 && raster__convert_nan_i32_is_zero())
        return plain_f32_i32_nan0;
    return pair_known(s, d) && s != d ? plain_table[s][d] : NULL;
}

raster__cvt_param_fn
raster__cvt_affine(raster_dtype_t s, raster_dtype_t d)
{
    return pair_known(s, d) ? affine_table[s][d] : NULL;
}

raster__cvt_param_fn
raster__cvt_divide(raster_dtype_t s, raster_dtype_t d)
{
    return pair_known(s, d) ? divide_table[s][d] : NULL;
}

/* ---- lookup tables for 8- and 16-bit integer sources (convert.h) ---- */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Gather kernels: lane j of a block of the period reads its own table
 * (lanes[j] points at the entry of input value 0, so a signed value indexes
 * it directly).  One load of the value, one of the table, one store.  When
 * the lanes repeat every 8 (1, 2, 4 or 8 channels) or every 6 (3 or 6
 * channels), that many table pointers stay in registers and the loop does
 * that many values per turn; other channel counts reload each lane's
 * pointer (about 1.6x slower per value). */
static int
lanes_repeat(const void *const *lanes, int p)
{
    for (int j = p; j < RASTER__CVT_PERIOD; j++)
        if (lanes[j] != lanes[j % p])
            return 0;
    return 1;
}

#define GATHER_KERNEL(S, D)                                                                     \
    static void gather_##S##_##D(const void *src, void *dst, int64_t n, const void *const *lanes) \
    {                                                                                           \
        const S *restrict s = src;                                                              \
        D *restrict d = dst;                                                                    \
        int64_t i = 0;                                                                          \
        if (lanes_repeat(lanes, 8)) {                                                           \
            const D *t0 = lanes[0], *t1 = lanes[1], *t2 = lanes[2], *t3 = lanes[3];             \
            const D *t4 = lanes[4], *t5 = lanes[5], *t6 = lanes[6], *t7 = lanes[7];             \
            for (; i + 8 <= n; i += 8) {                                                        \
                d[i] = t0[s[i]];                                                                \
                d[i + 1] = t1[s[i + 1]];                                                        \
                d[i + 2] = t2[s[i + 2]];                                                        \
                d[i + 3] = t3[s[i + 3]];                                                        \
                d[i + 4] = t4[s[i + 4]];                                                        \
                d[i + 5] = t5[s[i + 5]];                                                        \
                d[i + 6] = t6[s[i + 6]];                                                        \
                d[i + 7] = t7[s[i + 7]];                                                        \
            }                                                                                   \
        } else if (lanes_repeat(lanes, 6)) {                                                    \
            const D *t0 = lanes[0], *t1 = lanes[1], *t2 = lanes[2], *t3 = lanes[3];             \
            const D *t4 = lanes[4], *t5 = lanes[5];                                             \
            for (; i + 6 <= n; i += 6) {                                                        \
                d[i] = t0[s[i]];                                                                \
                d[i + 1] = t1[s[i + 1]];                                                        \
                d[i + 2] = t2[s[i + 2]];                                                        \
                d[i + 3] = t3[s[i + 3]];                                                        \
                d[i + 4] = t4[s[i + 4]];                                                        \
                d[i + 5] = t5[s[i + 5]];                                                        \
            }                                                                                   \
        } else {                                                                                \
            for (; i + RASTER__CVT_PERIOD <= n; i += RASTER__CVT_PERIOD)                        \
                for (int j = 0; j < RASTER__CVT_PERIOD; j++)                                    \
                    d[i + j] = ((const D *)lanes[j])[s[i + j]];                                 \
        }                                                                                       \
        /* i is a multiple of 8, 6 or 24: the tail starts at lane 0 */                          \
        for (int j = 0; i + j < n; j++)                                                         \
            d[i + j] = ((const D *)lanes[j])[s[i + j]];                                         \
    }
#define FOR_SMALL_SRC(M) FOR_DST(M, u8) FOR_DST(M, i8) FOR_DST(M, u16) FOR_DST(M, i16)
FOR_SMALL_SRC(GATHER_KERNEL)

#define GATHER_ROW(S) {gather_##S##_u8, gather_##S##_i8, gather_##S##_u16, gather_##S##_i16, gather_##S##_u32, \
                       gather_##S##_i32, NULL, gather_##S##_f32, gather_##S##_f64}
static const raster__cvt_gather_fn gather_table[4][RASTER_DTYPE_COUNT] = {GATHER_ROW(u8), GATHER_ROW(i8),
                                                                          GATHER_ROW(u16), GATHER_ROW(i16)};

raster__cvt_gather_fn
raster__cvt_gather(raster_dtype_t s, raster_dtype_t d)
{
    /* Not into float64: a uint16 table is 512 KiB there, 2 MiB for four
     * bands, this CPU's whole L2; with values spread over the range the
     * gather ran at 0.5x the direct kernel (1.1x with imagery's values),
     * bench/results/conversion.md. */
    if (!pair_known(s, d) || s > RASTER_I16 || d == RASTER_F64)
        return NULL;
    return gather_table[s][d];
}

/* Element size per dtype, here rather than dtype.c's raster_dtype_size():
 * the layer rule (tools/check_layers.py) keeps convert.c from calling its
 * layer-mate. */
static size_t
elem_size(raster_dtype_t t)
{
    static const size_t size[RASTER_DTYPE_COUNT] = {sizeof(u8), sizeof(i8), sizeof(u16), sizeof(i16), sizeof(u32),
                                                    sizeof(i32), 2, sizeof(f32), sizeof(f64)};
    return size[t];
}

/* Entries of a source dtype's table (every value it can hold), and the
 * index of input value 0 (a signed source's table starts at its minimum). */
static int64_t
table_entries(raster_dtype_t s)
{
    return (int64_t)1 << (8 * elem_size(s));
}

static int64_t
table_zero(raster_dtype_t s)
{
    return s == RASTER_I8 || s == RASTER_I16 ? table_entries(s) / 2 : 0;
}

/* Source values first, first+1, ... (m of them) in dtype s at out. */
static void
iota(raster_dtype_t s, int64_t first, int64_t m, void *out)
{
    for (int64_t i = 0; i < m; i++) {
        const int64_t v = first + i;
        switch (s) {
        case RASTER_U8: ((u8 *)out)[i] = (u8)v; break;
        case RASTER_I8: ((i8 *)out)[i] = (i8)v; break;
        case RASTER_U16: ((u16 *)out)[i] = (u16)v; break;
        default: ((i16 *)out)[i] = (i16)v; break;
        }
    }
}

/* The table is the direct kernel's output for every input value, in order:
 * bit-identical to converting directly, by construction. */
static void
table_build(raster_dtype_t s, raster_dtype_t d, raster__cvt_param_fn fn, double a, double b, uint8_t *table)
{
    double pa[RASTER__CVT_PERIOD], pb[RASTER__CVT_PERIOD];
    for (int j = 0; j < RASTER__CVT_PERIOD; j++) {
        pa[j] = a;
        pb[j] = b;
    }
    enum { CHUNK = 40 * RASTER__CVT_PERIOD };
    _Alignas(64) uint8_t in[CHUNK * 2];
    const int64_t n = table_entries(s), first = -table_zero(s), d_size = (int64_t)elem_size(d);
    for (int64_t i = 0; i < n; i += CHUNK) {
        const int64_t m = n - i < CHUNK ? n - i : CHUNK;
        iota(s, first + i, m, in);
        fn(in, table + i * d_size, m, pa, pb);
    }
}

/* One key's record: a built table, or only the count of values this thread
 * converted directly with that key so far. */
typedef struct table_slot {
    raster_dtype_t s, d;
    int divide;
    uint64_t a_bits, b_bits;     /* the parameters' bits: -0.0, NaN payloads are keys of their own */
    int64_t seen;
    uint8_t *table;              /* NULL: not built yet */
    size_t bytes;
    uint64_t used;               /* the request that last used it (LRU; the current one is never evicted) */
} table_slot_t;

typedef struct table_cache {
    table_slot_t slot[RASTER__CVT_TABLE_SLOTS];
    size_t bytes;
    uint64_t request;
} table_cache_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static atomic_int tables_off = -1;      /* -1: not read from the environment yet */

static void
cache_free(void *p)
{
    table_cache_t *c = p;
    if (c == NULL)
        return;
    for (int i = 0; i < RASTER__CVT_TABLE_SLOTS; i++)
        free(c->slot[i].table);
    free(c);
}

static void
cache_key_make(void)
{
    if (pthread_key_create(&cache_key, cache_free) != 0)
        atomic_store(&tables_off, 1);          /* no per-thread cache: direct conversion only */
}

static table_cache_t *
cache_get(void)
{
    pthread_once(&cache_once, cache_key_make);
    if (atomic_load(&tables_off) == 1)
        return NULL;
    table_cache_t *c = pthread_getspecific(cache_key);
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c != NULL && pthread_setspecific(cache_key, c) != 0) {
            free(c);
            c = NULL;
        }
    }
    return c;
}

void
raster__cvt_tables_enable(int on)
{
    atomic_store(&tables_off, on ? 0 : 1);
}

void
raster__cvt_tables_clear(void)
{
    pthread_once(&cache_once, cache_key_make);
    table_cache_t *c = pthread_getspecific(cache_key);
    if (c != NULL) {
        pthread_setspecific(cache_key, NULL);
        cache_free(c);
    }
}

/* RASTERLOADER_CONVERT_TABLES=0 turns tables off for the process (to compare
 * with the direct path); read once. */
static int
tables_enabled(void)
{
    int off = atomic_load(&tables_off);
    if (off < 0) {
        const char *e = getenv("RASTERLOADER_CONVERT_TABLES");
        off = e != NULL && strcmp(e, "0") == 0;
        int expected = -1;
        atomic_compare_exchange_strong(&tables_off, &expected, off);
        off = atomic_load(&tables_off);
    }
    return !off;
}

static uint64_t
bits_of(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static table_slot_t *
slot_find(table_cache_t *c, raster_dtype_t s, raster_dtype_t d, int divide, uint64_t ab, uint64_t bb)
{
    for (int i = 0; i < RASTER__CVT_TABLE_SLOTS; i++) {
        table_slot_t *t = &c->slot[i];
        if (t->used != 0 && t->s == s && t->d == d && t->divide == divide && t->a_bits == ab && t->b_bits == bb)
            return t;
    }
    return NULL;
}

static void
slot_drop(table_cache_t *c, table_slot_t *t)
{
    free(t->table);
    c->bytes -= t->bytes;
    memset(t, 0, sizeof *t);
}

/* The least recently used slot the current request has not used (empty
 * slots first), or with 'with_table' only slots holding a table; NULL if
 * none. */
static table_slot_t *
slot_victim(table_cache_t *c, int with_table)
{
    table_slot_t *best = NULL;
    for (int i = 0; i < RASTER__CVT_TABLE_SLOTS; i++) {
        table_slot_t *t = &c->slot[i];
        if (t->used == c->request || (with_table && t->table == NULL))
            continue;
        if (best == NULL || t->used < best->used)
            best = t;
    }
    return best;
}

/* A slot for a new key: an empty one, else the LRU one not in this request. */
static table_slot_t *
slot_claim(table_cache_t *c)
{
    table_slot_t *t = slot_victim(c, 0);
    if (t != NULL && t->used != 0)
        slot_drop(c, t);
    return t;
}

/* Room for 'bytes' more within the budget, evicting LRU tables the current
 * request does not use; 0 if it cannot be made. */
static int
make_room(table_cache_t *c, size_t bytes)
{
    while (c->bytes + bytes > RASTER__CVT_TABLE_BUDGET) {
        table_slot_t *t = slot_victim(c, 1);
        if (t == NULL)
            return 0;
        slot_drop(c, t);
    }
    return 1;
}

/* The table for one channel's key, counting 'values' towards building it;
 * NULL while it does not pay yet (or cannot be had). */
static const uint8_t *
table_for(table_cache_t *c, raster_dtype_t s, raster_dtype_t d, int divide, double a, double b, int64_t values)
{
    const uint64_t ab = bits_of(a), bb = bits_of(b);
    table_slot_t *t = slot_find(c, s, d, divide, ab, bb);
    if (t == NULL) {
        t = slot_claim(c);
        if (t == NULL)
            return NULL;
        *t = (table_slot_t){.s = s, .d = d, .divide = divide, .a_bits = ab, .b_bits = bb};
    }
    t->used = c->request;
    if (t->table != NULL)
        return t->table;
    const int64_t entries = table_entries(s);
    t->seen = t->seen + values < entries ? t->seen + values : entries;
    if (t->seen < entries)
        return NULL;
    const size_t bytes = (size_t)entries * elem_size(d);
    if (!make_room(c, bytes))
        return NULL;
    uint8_t *table = malloc(bytes);
    if (table == NULL)
        return NULL;
    table_build(s, d, divide ? raster__cvt_divide(s, d) : raster__cvt_affine(s, d), a, b, table);
    t->table = table;
    t->bytes = bytes;
    c->bytes += bytes;
    return t->table;
}

int
raster__cvt_tables(raster_dtype_t s, raster_dtype_t d, int divide, const double *a, const double *b, int nchans,
                   int64_t values, const void **tables)
{
    if (raster__cvt_gather(s, d) == NULL || nchans < 1 || nchans > RASTER__CVT_PERIOD || !tables_enabled() ||
        (divide ? raster__cvt_divide(s, d) : raster__cvt_affine(s, d)) == NULL)
        return 0;
    table_cache_t *c = cache_get();
    if (c == NULL)
        return 0;
    c->request++;
    int all = 1;
    for (int k = 0; k < nchans; k++) {
        const uint8_t *t = table_for(c, s, d, divide, a[k], b[k], values);
        tables[k] = t != NULL ? t + table_zero(s) * (int64_t)elem_size(d) : NULL;
        all = all && t != NULL;
    }
    return all;
}
