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

raster__cvt_plain_fn
raster__cvt_plain(raster_dtype_t s, raster_dtype_t d)
{
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
