/*
 * dtype.c - element sizes and names, and the scalar conversion rules every
 * reader shares.
 *
 * The rules are GDAL's (GDALCopyWords of GDAL 3.6, the GDAL the library
 * links), so that a read with a destination dtype equals rasterio's
 * read(out_dtype=...): integer to narrower integer saturates; double to
 * float32 rounds to nearest even and overflows to inf; float16, which GDAL
 * 3.6 cannot produce, rounds to nearest even straight from double, as
 * numpy's astype.  Float to integer, measured against GDALCopyWords
 * (tests/unit/check_convert.c) and rasterio (tests/python/
 * test_convert_gdal_rules.py):
 * - float64 (and every scaled or normalised value, which is a double):
 *   NaN 0, x +- 0.5 in double by sign, saturate, truncate (raster__d2*).
 * - float32 (raster__f2*, common.h): x +- 0.5f added IN FLOAT by sign, so
 *   it rounds where the sum is not a float: 0.49999997f gives 1 (-1), an
 *   odd integer in [2^23, 2^24) goes one further from zero (8388609.0f ->
 *   8388610); then saturate and truncate.  NaN gives 0, except into int32:
 *   INT32_MIN in GDAL 3.6, 0 from 3.7 on: the running GDAL's rule
 *   (raster__convert_nan_i32_zero, set by gdal_env.c).
 *   uint32: 2^32 and up saturate (4294967040.0f, the last float below,
 *   stays).  int32: 2^31 and up give INT32_MAX (2147483520.0f stays).
 * - float32 -> int16: GDAL has two rules.  Its SSE2 path, which takes each
 *   copy call in chunks of 8 (every column of a read but a tail of fewer
 *   than 8 per row), clamps first (NaN gives -32768) and adds +0.5f from
 *   0.5 up, -0.5f below (0.49999997f gives 0); its scalar path (that tail,
 *   and 1-value calls) is the general float32 rule (NaN 0, 0.49999997f 1).
 *   Ours is the SSE2 rule everywhere, GDAL's for nearly every value; only
 *   those two values in GDAL's tail columns differ.  Same in GDAL 3.10.
 * - int8 (GDAL 3.7+; 3.6 has no int8 buffers): the general float32 rule,
 *   what rasterio's GDAL 3.10 gives.  int64/uint64: not rasterloader dtypes.
 */
#include "common.h"

#include <math.h>
#include <string.h>

size_t
raster_dtype_size(raster_dtype_t dt)
{
    switch (dt) {
    case RASTER_U8: case RASTER_I8: return 1;
    case RASTER_U16: case RASTER_I16: case RASTER_F16: return 2;
    case RASTER_U32: case RASTER_I32: case RASTER_F32: return 4;
    case RASTER_F64: return 8;
    }
    return 0;
}

const char *
raster_dtype_name(raster_dtype_t dt)
{
    static const char *const names[RASTER_DTYPE_COUNT] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float16", "float32", "float64"};
    return (unsigned)dt < RASTER_DTYPE_COUNT ? names[dt] : "unknown";
}

uint16_t
raster__f16_from_f64(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    const uint16_t sign = (uint16_t)((bits >> 48) & 0x8000u);
    const uint64_t mag = bits & 0x7fffffffffffffffULL;
    if (mag >= 0x7ff0000000000000ULL) {           /* inf or NaN */
        if (mag == 0x7ff0000000000000ULL)
            return sign | 0x7c00u;
        return sign | 0x7e00u | (uint16_t)((mag >> 42) & 0x1ffu);   /* quiet NaN */
    }
    const int exp = (int)(mag >> 52) - 1023;
    const uint64_t mant = mag & ((1ULL << 52) - 1);
    if (exp > 15)
        return sign | 0x7c00u;
    if (exp >= -14) {                               /* normal half */
        uint32_t h = ((uint32_t)(exp + 15) << 10) | (uint32_t)(mant >> 42);
        const uint64_t rem = mant & ((1ULL << 42) - 1), half = 1ULL << 41;
        if (rem > half || (rem == half && (h & 1u)))
            h++;                                    /* may carry into inf: correct */
        return sign | (uint16_t)h;
    }
    if (exp < -25)
        return sign;                                /* below half the smallest subnormal */
    const uint64_t full = (1ULL << 52) | mant;
    const int shift = 52 - (exp + 24);              /* 43..53 */
    uint64_t h = full >> shift;
    const uint64_t rem = full & ((1ULL << shift) - 1), half = 1ULL << (shift - 1);
    if (rem > half || (rem == half && (h & 1u)))
        h++;
    return sign | (uint16_t)h;
}

double
raster__f64_from_f16(uint16_t h)
{
    const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp((double)mant, -24);
    else if (exp == 31)
        v = mant ? (double)NAN : (double)INFINITY;
    else
        v = ldexp((double)(1024 + mant), exp - 25);
    return (h & 0x8000u) ? -v : v;
}

void
raster__convert_scalar(double v, raster_dtype_t dt, void *out)
{
    switch (dt) {
    case RASTER_U8:  { const uint8_t x = raster__d2u8(v);  memcpy(out, &x, 1); break; }
    case RASTER_I8:  { const int8_t x = raster__d2i8(v);   memcpy(out, &x, 1); break; }
    case RASTER_U16: { const uint16_t x = raster__d2u16(v); memcpy(out, &x, 2); break; }
    case RASTER_I16: { const int16_t x = raster__d2i16(v); memcpy(out, &x, 2); break; }
    case RASTER_U32: { const uint32_t x = raster__d2u32(v); memcpy(out, &x, 4); break; }
    case RASTER_I32: { const int32_t x = raster__d2i32(v); memcpy(out, &x, 4); break; }
    case RASTER_F16: { const uint16_t x = raster__f16_from_f64(v); memcpy(out, &x, 2); break; }
    case RASTER_F32: { const float x = (float)v; memcpy(out, &x, 4); break; }
    case RASTER_F64: memcpy(out, &v, 8); break;
    }
}
