/*
 * dtype.c - element sizes and names, and the scalar conversion rules every
 * reader shares.
 *
 * The rules are GDAL's (GDALCopyWords), so that a read with a destination
 * dtype equals rasterio's read(out_dtype=...): float to integer rounds half
 * away from zero and saturates; integer to narrower integer saturates; double
 * to float32 rounds to nearest even and overflows to inf.  Two deliberate
 * choices where GDAL has no single answer: NaN becomes 0 for every integer
 * destination (GDAL's SSE2 float32->int16 path gives -32768 for NaN in
 * 8-element chunks but 0 in the scalar tail); float16, which GDAL 3.6 cannot
 * produce, rounds to nearest even straight from double, as numpy's astype.
 * And one place where we are exact and GDAL is not: a float32 rounds into
 * an integer here as its double value +- 0.5 (exact), where GDALCopyWords
 * adds 0.5f in float, which rounds when the sum is not a float: GDAL (and
 * so rasterio's read(out_dtype=...) of a float32 file) gives 1 for
 * 0.49999997f into uint8/int16/..., and 8388610 for 8388609.0f (any odd
 * integer in [2^23, 2^24)) into int32/uint32; tests/unit/common/check_convert.c
 * names that set of values.  The vectorised kernels (convert.c) follow these
 * rules bit for bit.
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
