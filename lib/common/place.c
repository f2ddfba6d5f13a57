/*
 * place.c - views, and copying decoded pixels into a destination view.
 *
 * Every reader ends here: a decoded block (a view of scratch or of GDAL's
 * output) is placed into the caller's view with band selection, dtype
 * conversion and scale/offset fused into one pass, so each output byte is
 * written once (mean/std as (x - mean) / std, scale/offset as x*scale +
 * offset, both in double).  The common case, same dtype and no scaling, is
 * a memcpy per row when both sides are compact HWC, a memcpy per row and
 * channel when both are planes (tile-cache entries into CHW arrays, a band
 * subset, a mask), an interleave kernel from planes into compact pixels
 * (entries into HWC), a deinterleave kernel the other way, and a typed
 * strided copy otherwise.  A conversion runs the vectorised kernels of convert.c
 * over contiguous runs: a compact HWC row is one run (per-channel
 * parameters as a repeating lane pattern), pixels into planes are
 * deinterleaved in the source dtype then converted plane by plane, planes
 * into pixels interleaved in the source dtype then converted as a row, and any
 * other layout converts per row and channel through small stack buffers
 * (strided copies in and out).  The scalar path (row_table, one element at
 * a time through double) stays for float16, which has no kernels, and is
 * the oracle the kernels are tested against (raster__place_scalar).
 * This file knows views and dtypes, nothing about files.
 */
#include "common.h"
#include "convert.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

raster_view_t
raster_view_hwc(void *data, raster_dtype_t dt, int64_t height, int64_t width, int64_t channels)
{
    const int64_t size = (int64_t)raster_dtype_size(dt);
    raster_view_t v = {data, dt, height, width, channels,
                       width * channels * size, channels * size, size};
    return v;
}

size_t
raster_view_nbytes(raster_dtype_t dt, int64_t height, int64_t width, int64_t channels)
{
    const size_t size = raster_dtype_size(dt);
    if (size == 0 || height < 0 || width < 0 || channels < 0)
        return 0;
    size_t n = size, tmp;
    if (__builtin_mul_overflow(n, (size_t)height, &tmp) || __builtin_mul_overflow(tmp, (size_t)width, &n) ||
        __builtin_mul_overflow(n, (size_t)channels, &tmp))
        return 0;
    return tmp;
}

raster_status_t
raster__view_check(const raster_view_t *v, const char *what)
{
    RASTER_CHECK(v != NULL, RASTER_E_INVALID_ARG, "%s: NULL view", what);
    const int64_t size = (int64_t)raster_dtype_size(v->dtype);
    RASTER_CHECK(size > 0, RASTER_E_INVALID_ARG, "%s: unknown dtype %d", what, (int)v->dtype);
    RASTER_CHECK(v->height >= 0 && v->width >= 0 && v->channels >= 0, RASTER_E_INVALID_ARG,
                 "%s: negative shape %lldx%lldx%lld", what, (long long)v->height,
                 (long long)v->width, (long long)v->channels);
    RASTER_CHECK(v->row_stride >= 0 && v->col_stride >= 0 && v->chan_stride >= 0,
                 RASTER_E_INVALID_ARG, "%s: negative strides are not supported", what);
    if (v->height == 0 || v->width == 0 || v->channels == 0)
        return RASTER_OK;
    RASTER_CHECK(v->data != NULL, RASTER_E_INVALID_ARG, "%s: NULL data", what);

    /* Elements must not alias: sorted by stride, each axis must step over the
     * whole extent of the smaller ones.  Axes of extent 1 never step. */
    int64_t ext[3] = {v->height, v->width, v->channels};
    int64_t str[3] = {v->row_stride, v->col_stride, v->chan_stride};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (str[j] < str[i] || (str[j] == str[i] && ext[j] < ext[i])) {
                int64_t t = str[i]; str[i] = str[j]; str[j] = t;
                t = ext[i]; ext[i] = ext[j]; ext[j] = t;
            }
    int64_t span = size;      /* bytes covered by the axes seen so far */
    for (int i = 0; i < 3; i++) {
        if (ext[i] == 1)
            continue;
        RASTER_CHECK(str[i] >= span, RASTER_E_INVALID_ARG,
                     "%s: strides (%lld, %lld, %lld) make elements overlap", what,
                     (long long)v->row_stride, (long long)v->col_stride, (long long)v->chan_stride);
        RASTER_CHECK(!__builtin_mul_overflow(str[i], ext[i] - 1, &span) &&
                         !__builtin_add_overflow(span, str[i], &span),
                     RASTER_E_INVALID_ARG, "%s: view extent overflows", what);
    }
    return RASTER_OK;
}

raster_view_t
raster__view_sub(const raster_view_t *v, int64_t r0, int64_t c0, int64_t h, int64_t w)
{
    raster_view_t s = *v;
    s.data = (uint8_t *)v->data + r0 * v->row_stride + c0 * v->col_stride;
    s.height = h;
    s.width = w;
    return s;
}

/* ---- the scalar path: one strided row converter per (source, destination) pair ---- */

/* What a converter computes per element, in double before the one rounding
 * to the destination: the value, in*scale + offset, or (in - mean) / std. */
enum { ROW_PLAIN = 0, ROW_AFFINE = 1, ROW_DIVIDE = 2 };

typedef void (*row_fn)(const uint8_t *src, int64_t src_step, uint8_t *dst, int64_t dst_step,
                       int64_t n, double a, double b, int mode);

#define LOAD_PLAIN(T) \
    static inline double load_##T(const uint8_t *p) { T x; memcpy(&x, p, sizeof x); return (double)x; }
typedef uint8_t u8; typedef int8_t i8; typedef uint16_t u16; typedef int16_t i16;
typedef uint32_t u32; typedef int32_t i32; typedef float f32; typedef double f64; typedef uint16_t f16;
LOAD_PLAIN(u8) LOAD_PLAIN(i8) LOAD_PLAIN(u16) LOAD_PLAIN(i16) LOAD_PLAIN(u32) LOAD_PLAIN(i32)
LOAD_PLAIN(f32) LOAD_PLAIN(f64)
static inline double load_f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return raster__f64_from_f16(h); }

#define STORE_INT(T, conv) \
    static inline void store_##T(uint8_t *p, double v) { const T x = conv(v); memcpy(p, &x, sizeof x); }
STORE_INT(u8, raster__d2u8) STORE_INT(i8, raster__d2i8) STORE_INT(u16, raster__d2u16)
STORE_INT(i16, raster__d2i16) STORE_INT(u32, raster__d2u32) STORE_INT(i32, raster__d2i32)
static inline void store_f32(uint8_t *p, double v) { const float x = (float)v; memcpy(p, &x, 4); }
static inline void store_f64(uint8_t *p, double v) { memcpy(p, &v, 8); }
static inline void store_f16(uint8_t *p, double v) { const uint16_t x = raster__f16_from_f64(v); memcpy(p, &x, 2); }

/* Plain conversion of one element: through double, except float32 into an
 * integer, which takes GDAL's float rules (common.h). */
#define PLAIN_VIA_DOUBLE(S, D) \
    static inline void plain_##S##_##D(uint8_t *p, const uint8_t *q) { store_##D(p, load_##S(q)); }
#define PLAIN_FROM_F32(D, conv) \
    static inline void plain_f32_##D(uint8_t *p, const uint8_t *q) \
    { float x; memcpy(&x, q, 4); const D y = conv(x); memcpy(p, &y, sizeof y); }
#define PLAIN_ROW(S) PLAIN_VIA_DOUBLE(S, u8) PLAIN_VIA_DOUBLE(S, i8) PLAIN_VIA_DOUBLE(S, u16) \
    PLAIN_VIA_DOUBLE(S, i16) PLAIN_VIA_DOUBLE(S, u32) PLAIN_VIA_DOUBLE(S, i32) PLAIN_VIA_DOUBLE(S, f16) \
    PLAIN_VIA_DOUBLE(S, f32) PLAIN_VIA_DOUBLE(S, f64)
PLAIN_ROW(u8) PLAIN_ROW(i8) PLAIN_ROW(u16) PLAIN_ROW(i16) PLAIN_ROW(u32) PLAIN_ROW(i32) PLAIN_ROW(f16)
PLAIN_ROW(f64)
PLAIN_FROM_F32(u8, raster__f2u8) PLAIN_FROM_F32(i8, raster__f2i8) PLAIN_FROM_F32(u16, raster__f2u16)
PLAIN_FROM_F32(i16, raster__f2i16) PLAIN_FROM_F32(u32, raster__f2u32) PLAIN_FROM_F32(i32, raster__f2i32)
PLAIN_VIA_DOUBLE(f32, f16) PLAIN_VIA_DOUBLE(f32, f32) PLAIN_VIA_DOUBLE(f32, f64)

/* ROW_AFFINE: a = scale, b = offset.  ROW_DIVIDE: a = std, b = mean; the
 * subtraction comes first and the division is a division (not a product
 * with 1/std), so x == mean gives exactly 0 and the result is NumPy's
 * (x.astype(float64) - mean) / std, rounded once. */
#define ROW_FN(S, D)                                                                   \
    static void row_##S##_##D(const uint8_t *src, int64_t ss, uint8_t *dst, int64_t ds, \
                              int64_t n, double a, double b, int mode)                  \
    {                                                                                   \
        if (mode == ROW_AFFINE)                                                         \
            for (int64_t i = 0; i < n; i++)                                             \
                store_##D(dst + i * ds, load_##S(src + i * ss) * a + b);                \
        else if (mode == ROW_DIVIDE)                                                    \
            for (int64_t i = 0; i < n; i++)                                             \
                store_##D(dst + i * ds, (load_##S(src + i * ss) - b) / a);              \
        else                                                                            \
            for (int64_t i = 0; i < n; i++)                                             \
                plain_##S##_##D(dst + i * ds, src + i * ss);                            \
    }
#define ROW_FNS(S) ROW_FN(S, u8) ROW_FN(S, i8) ROW_FN(S, u16) ROW_FN(S, i16) ROW_FN(S, u32) \
                   ROW_FN(S, i32) ROW_FN(S, f16) ROW_FN(S, f32) ROW_FN(S, f64)
ROW_FNS(u8) ROW_FNS(i8) ROW_FNS(u16) ROW_FNS(i16) ROW_FNS(u32) ROW_FNS(i32) ROW_FNS(f16)
ROW_FNS(f32) ROW_FNS(f64)

#define ROW_TABLE(S) {row_##S##_u8, row_##S##_i8, row_##S##_u16, row_##S##_i16, row_##S##_u32, \
                      row_##S##_i32, row_##S##_f16, row_##S##_f32, row_##S##_f64}
/* Indexed [source][destination] in raster_dtype_t order. */
static const row_fn row_table[RASTER_DTYPE_COUNT][RASTER_DTYPE_COUNT] = {
    ROW_TABLE(u8), ROW_TABLE(i8), ROW_TABLE(u16), ROW_TABLE(i16), ROW_TABLE(u32),
    ROW_TABLE(i32), ROW_TABLE(f16), ROW_TABLE(f32), ROW_TABLE(f64)};

/* float32 into int32, plain, by GDAL 3.7+'s NaN rule (common.h). */
static void
row_f32_i32_nan0(const uint8_t *src, int64_t ss, uint8_t *dst, int64_t ds, int64_t n, double a, double b,
                 int mode)
{
    if (mode != ROW_PLAIN) {
        row_f32_i32(src, ss, dst, ds, n, a, b, mode);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float x;
        memcpy(&x, src + i * ss, 4);
        const int32_t y = raster__f2i32_nan0(x);
        memcpy(dst + i * ds, &y, 4);
    }
}

/* Same dtype, no scaling: a raw strided element copy keeps NaN payloads. */
static void
copy_elems(const uint8_t *src, int64_t ss, uint8_t *dst, int64_t ds, int64_t n, size_t size)
{
    switch (size) {
    case 1: for (int64_t i = 0; i < n; i++) dst[i * ds] = src[i * ss]; break;
    case 2: for (int64_t i = 0; i < n; i++) memcpy(dst + i * ds, src + i * ss, 2); break;
    case 4: for (int64_t i = 0; i < n; i++) memcpy(dst + i * ds, src + i * ss, 4); break;
    default: for (int64_t i = 0; i < n; i++) memcpy(dst + i * ds, src + i * ss, 8); break;
    }
}

/* Chunky rows (compact pixels of SC channels) into planes (each channel's
 * row contiguous), every channel in order: one pass over the source row
 * with SC and the element type known, which the compiler unrolls and
 * vectorizes; a strided copy per channel reads the row SC times.  This is
 * the move from a pixel-interleaved tile to rasterio's CHW arrays. */
#define DEINTERLEAVE(T, SC)                                                              \
    static void deinterleave_##T##_##SC(const uint8_t *src, uint8_t *const *dst, int64_t n) \
    {                                                                                    \
        for (int64_t i = 0; i < n; i++)                                                  \
            for (int k = 0; k < SC; k++)                                                 \
                memcpy(dst[k] + i * (int64_t)sizeof(T), src + (i * SC + k) * (int64_t)sizeof(T), \
                       sizeof(T));                                                       \
    }
#define DEINTERLEAVE_ALL(T) DEINTERLEAVE(T, 2) DEINTERLEAVE(T, 3) DEINTERLEAVE(T, 4)
DEINTERLEAVE_ALL(uint8_t)
DEINTERLEAVE_ALL(uint16_t)
DEINTERLEAVE_ALL(uint32_t)
DEINTERLEAVE_ALL(uint64_t)

#ifdef __SSE2__
/* uint16 x 4 channels (the usual RGB+NIR tile), 8 pixels at a time: two
 * rounds of 16-bit unpacks and one of 64-bit ones turn 4 loads of 2 pixels
 * each into 4 stores of 8 samples of one channel.  2x the scalar loop. */
static void
deinterleave_u16x4_sse2(const uint8_t *src, uint8_t *const *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint8_t *p = src + i * 8;
        const __m128i a = _mm_loadu_si128((const __m128i *)p);
        const __m128i b = _mm_loadu_si128((const __m128i *)(p + 16));
        const __m128i c = _mm_loadu_si128((const __m128i *)(p + 32));
        const __m128i d = _mm_loadu_si128((const __m128i *)(p + 48));
        const __m128i t0 = _mm_unpacklo_epi16(a, b), t1 = _mm_unpackhi_epi16(a, b);
        const __m128i t2 = _mm_unpacklo_epi16(c, d), t3 = _mm_unpackhi_epi16(c, d);
        const __m128i u0 = _mm_unpacklo_epi16(t0, t1), u1 = _mm_unpackhi_epi16(t0, t1);
        const __m128i u2 = _mm_unpacklo_epi16(t2, t3), u3 = _mm_unpackhi_epi16(t2, t3);
        _mm_storeu_si128((__m128i *)(dst[0] + i * 2), _mm_unpacklo_epi64(u0, u2));
        _mm_storeu_si128((__m128i *)(dst[1] + i * 2), _mm_unpackhi_epi64(u0, u2));
        _mm_storeu_si128((__m128i *)(dst[2] + i * 2), _mm_unpacklo_epi64(u1, u3));
        _mm_storeu_si128((__m128i *)(dst[3] + i * 2), _mm_unpackhi_epi64(u1, u3));
    }
    if (i < n) {
        uint8_t *rest[4] = {dst[0] + i * 2, dst[1] + i * 2, dst[2] + i * 2, dst[3] + i * 2};
        deinterleave_uint16_t_4(src + i * 8, rest, n - i);
    }
}
#endif

typedef void (*deinterleave_fn)(const uint8_t *src, uint8_t *const *dst, int64_t n);

static deinterleave_fn
deinterleave_for(size_t size, int64_t channels)
{
#define PICK(T) (channels == 2 ? deinterleave_##T##_2 : channels == 3 ? deinterleave_##T##_3 \
                 : channels == 4 ? deinterleave_##T##_4 : NULL)
    switch (size) {
    case 1: return PICK(uint8_t);
    case 2:
#ifdef __SSE2__
        if (channels == 4)
            return deinterleave_u16x4_sse2;
#endif
        return PICK(uint16_t);
    case 4: return PICK(uint32_t);
    case 8: return PICK(uint64_t);
    default: return NULL;
    }
#undef PICK
}

/* Planes into compact pixels of DC channels, the inverse of DEINTERLEAVE:
 * channel k of pixel i from src[k][i].  The planes are pointers, so any
 * channel map (a subset, a reordering) costs nothing extra.  This is the
 * move from a tile-cache entry (planes) to read_hwc's HWC arrays. */
#define INTERLEAVE(T, DC)                                                                \
    static void interleave_##T##_##DC(const uint8_t *const *src, uint8_t *dst, int64_t n)  \
    {                                                                                    \
        for (int64_t i = 0; i < n; i++)                                                  \
            for (int k = 0; k < DC; k++)                                                 \
                memcpy(dst + (i * DC + k) * (int64_t)sizeof(T), src[k] + i * (int64_t)sizeof(T), \
                       sizeof(T));                                                       \
    }
#define INTERLEAVE_ALL(T) INTERLEAVE(T, 2) INTERLEAVE(T, 3) INTERLEAVE(T, 4)
INTERLEAVE_ALL(uint8_t)
INTERLEAVE_ALL(uint16_t)
INTERLEAVE_ALL(uint32_t)
INTERLEAVE_ALL(uint64_t)

#ifdef __SSE2__
/* uint16 x 4 channels, 8 pixels at a time: 16-bit unpacks pair channels
 * 0,1 and 2,3, 32-bit unpacks join the pairs into whole pixels. */
static void
interleave_u16x4_sse2(const uint8_t *const *src, uint8_t *dst, int64_t n)
{
    /* The plane pointers in registers: loaded from src[] in the loop, they
     * would wait on the stores before them (dst could alias src[]). */
    const uint8_t *const s0 = src[0], *const s1 = src[1], *const s2 = src[2], *const s3 = src[3];
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i a = _mm_loadu_si128((const __m128i *)(s0 + i * 2));
        const __m128i b = _mm_loadu_si128((const __m128i *)(s1 + i * 2));
        const __m128i c = _mm_loadu_si128((const __m128i *)(s2 + i * 2));
        const __m128i d = _mm_loadu_si128((const __m128i *)(s3 + i * 2));
        const __m128i ab0 = _mm_unpacklo_epi16(a, b), ab1 = _mm_unpackhi_epi16(a, b);
        const __m128i cd0 = _mm_unpacklo_epi16(c, d), cd1 = _mm_unpackhi_epi16(c, d);
        uint8_t *p = dst + i * 8;
        _mm_storeu_si128((__m128i *)p, _mm_unpacklo_epi32(ab0, cd0));
        _mm_storeu_si128((__m128i *)(p + 16), _mm_unpackhi_epi32(ab0, cd0));
        _mm_storeu_si128((__m128i *)(p + 32), _mm_unpacklo_epi32(ab1, cd1));
        _mm_storeu_si128((__m128i *)(p + 48), _mm_unpackhi_epi32(ab1, cd1));
    }
    if (i < n) {
        const uint8_t *rest[4] = {s0 + i * 2, s1 + i * 2, s2 + i * 2, s3 + i * 2};
        interleave_uint16_t_4(rest, dst + i * 8, n - i);
    }
}
#endif

typedef void (*interleave_fn)(const uint8_t *const *src, uint8_t *dst, int64_t n);

static interleave_fn
interleave_for(size_t size, int64_t channels)
{
#define PICK(T) (channels == 2 ? interleave_##T##_2 : channels == 3 ? interleave_##T##_3 \
                 : channels == 4 ? interleave_##T##_4 : NULL)
    switch (size) {
    case 1: return PICK(uint8_t);
    case 2:
#ifdef __SSE2__
        if (channels == 4)
            return interleave_u16x4_sse2;
#endif
        return PICK(uint16_t);
    case 4: return PICK(uint32_t);
    case 8: return PICK(uint64_t);
    default: return NULL;
    }
#undef PICK
}

/* Every destination channel k reads source channel k. */
static int
channels_in_order(const raster_view_t *dst, const raster__place_opts_t *o)
{
    if (o && o->chan_map)
        for (int64_t k = 0; k < dst->channels; k++)
            if (o->chan_map[k] != k)
                return 0;
    return 1;
}

/* Whether src is compact chunky pixels, dst planar rows, every channel in order. */
static int
is_deinterleave(const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *o)
{
    const int64_t size = (int64_t)raster_dtype_size(dst->dtype);
    return src->channels == dst->channels && src->chan_stride == size &&
           src->col_stride == size * src->channels && dst->col_stride == size && channels_in_order(dst, o);
}

/* Compact pixels: channels adjacent, pixels adjacent (one channel: any
 * channel stride, which then never steps: a mask's CHW array is one). */
static int
is_compact_chunky(const raster_view_t *v)
{
    const int64_t size = (int64_t)raster_dtype_size(v->dtype);
    return (v->chan_stride == size || v->channels == 1) && v->col_stride == size * v->channels;
}

/* Planes: each channel's row is contiguous (any channel stride). */
static int
is_planes(const raster_view_t *v)
{
    return v->col_stride == (int64_t)raster_dtype_size(v->dtype);
}

/* Whether both are compact chunky pixels, every channel in order: rows copy whole. */
static int
is_identity_compact(const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *o)
{
    return src->channels == dst->channels && is_compact_chunky(src) && is_compact_chunky(dst) &&
           channels_in_order(dst, o);
}

/* Source channel of destination channel k. */
static int64_t
source_channel(const raster__place_opts_t *o, int64_t k)
{
    return o && o->chan_map ? o->chan_map[k] : k;
}

/* Planes into planes (read() CHW from planes, a band subset, a mask): one
 * memcpy per row and channel, whatever the channel map. */
static void
copy_planes(const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *opts)
{
    const size_t row_nbytes = (size_t)dst->width * raster_dtype_size(dst->dtype);
    const uint8_t *s0 = src->data;
    uint8_t *d0 = dst->data;
    for (int64_t k = 0; k < dst->channels; k++) {
        const uint8_t *sk = s0 + source_channel(opts, k) * src->chan_stride;
        uint8_t *dk = d0 + k * dst->chan_stride;
        for (int64_t r = 0; r < dst->height; r++)
            memcpy(dk + r * dst->row_stride, sk + r * src->row_stride, row_nbytes);
    }
}

/* An interleave kernel when src is planes and dst compact pixels of 2 to 4
 * channels (any channel map), else NULL. */
static interleave_fn
planes_interleave(const raster_view_t *src, const raster_view_t *dst)
{
    if (!is_planes(src) || !is_compact_chunky(dst))
        return NULL;
    return interleave_for(raster_dtype_size(src->dtype), dst->channels);
}

/* Row r of each source plane that destination channels 0..n-1 read. */
static void
planes_row(const raster_view_t *src, const raster__place_opts_t *opts, int64_t r, int64_t n, const uint8_t **out)
{
    const uint8_t *row = (const uint8_t *)src->data + r * src->row_stride;
    for (int64_t k = 0; k < n; k++)
        out[k] = row + source_channel(opts, k) * src->chan_stride;
}

/* Elements per plane staged in L1 by interleave_staged(). */
enum { INTERLEAVE_STAGE = 512 };

/* n pixels of 'nch' planes into compact pixels at dst: each plane's chunk
 * is first copied (memcpy) into an L1 buffer, then interleaved from there.
 * Interleaving straight from the planes, which a cache hit reads from
 * memory, stalls on the loads of four streams at once (2.4x memcpy for a
 * uint16 x 4 window); memcpy's streams run at memory speed. */
typedef struct stage {
    _Alignas(64) uint8_t buf[4][INTERLEAVE_STAGE * 8];
    const uint8_t *at[4];          /* buf[k], as interleave kernels take them */
} stage_t;

/* Elements [x, x + m) of each plane into the stage (m <= INTERLEAVE_STAGE). */
static void
stage_planes(stage_t *st, const uint8_t *const *planes, int64_t nch, size_t size, int64_t x, int64_t m)
{
    for (int64_t k = 0; k < nch; k++) {
        memcpy(st->buf[k], planes[k] + x * (int64_t)size, (size_t)m * size);
        st->at[k] = st->buf[k];
    }
}

static void
interleave_staged(interleave_fn in, const uint8_t *const *planes, int64_t nch, size_t size, uint8_t *dst,
                  int64_t n)
{
    stage_t st;
    for (int64_t x = 0; x < n; x += INTERLEAVE_STAGE) {
        const int64_t m = n - x < INTERLEAVE_STAGE ? n - x : INTERLEAVE_STAGE;
        stage_planes(&st, planes, nch, size, x, m);
        in(st.at, dst + x * nch * (int64_t)size, m);
    }
}

/* Same dtype, no scaling: whole rows, planes, an (de)interleave, or element copies. */
static void
place_same_dtype(const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *opts)
{
    const size_t size = raster_dtype_size(dst->dtype);
    const uint8_t *s0 = src->data;
    uint8_t *d0 = dst->data;
    if (is_identity_compact(src, dst, opts)) {
        const size_t row_nbytes = (size_t)(dst->width * dst->channels) * size;
        for (int64_t r = 0; r < dst->height; r++)
            memcpy(d0 + r * dst->row_stride, s0 + r * src->row_stride, row_nbytes);
        return;
    }
    if (is_planes(src) && is_planes(dst)) {
        copy_planes(src, dst, opts);
        return;
    }
    const interleave_fn in = planes_interleave(src, dst);
    if (in != NULL) {
        const uint8_t *planes[4];
        for (int64_t r = 0; r < dst->height; r++) {
            planes_row(src, opts, r, dst->channels, planes);
            interleave_staged(in, planes, dst->channels, size, d0 + r * dst->row_stride, dst->width);
        }
        return;
    }
    const deinterleave_fn de = is_deinterleave(src, dst, opts) ? deinterleave_for(size, dst->channels) : NULL;
    if (de != NULL) {
        uint8_t *planes[4];
        for (int64_t r = 0; r < dst->height; r++) {
            for (int64_t k = 0; k < dst->channels; k++)
                planes[k] = d0 + r * dst->row_stride + k * dst->chan_stride;
            de(s0 + r * src->row_stride, planes, dst->width);
        }
        return;
    }
    for (int64_t r = 0; r < dst->height; r++)
        for (int64_t k = 0; k < dst->channels; k++) {
            const int64_t sk = source_channel(opts, k);
            copy_elems(s0 + r * src->row_stride + sk * src->chan_stride, src->col_stride,
                       d0 + r * dst->row_stride + k * dst->chan_stride, dst->col_stride, dst->width, size);
        }
}

static int
has_affine(const raster__place_opts_t *opts)
{
    return opts && (opts->scale || opts->offset);
}

/* Channel k's (scale, offset), or (std, mean) with 'divide'. */
static double
scale_of(const raster__place_opts_t *opts, int64_t k)
{
    return opts && opts->scale ? opts->scale[k] : 1.0;
}

static double
offset_of(const raster__place_opts_t *opts, int64_t k)
{
    return opts && opts->offset ? opts->offset[k] : 0.0;
}

/* The element-by-element path: any layout, any pair, through double. */
static void
place_converted_scalar(const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *opts)
{
    const uint8_t *s0 = src->data;
    uint8_t *d0 = dst->data;
    const row_fn fn = src->dtype == RASTER_F32 && dst->dtype == RASTER_I32 && raster__convert_nan_i32_is_zero()
                          ? row_f32_i32_nan0 : row_table[src->dtype][dst->dtype];
    const int mode = !has_affine(opts) ? ROW_PLAIN : opts->divide ? ROW_DIVIDE : ROW_AFFINE;
    for (int64_t r = 0; r < dst->height; r++)
        for (int64_t k = 0; k < dst->channels; k++) {
            const int64_t sk = source_channel(opts, k);
            fn(s0 + r * src->row_stride + sk * src->chan_stride, src->col_stride,
               d0 + r * dst->row_stride + k * dst->chan_stride, dst->col_stride, dst->width,
               scale_of(opts, k), offset_of(opts, k), mode);
        }
}

/* ---- the kernels' path (convert.c): contiguous runs, strided ones staged ---- */

/* A kernel with its lane parameters (a, b: RASTER__CVT_PERIOD each), or,
 * where convert.c has lookup tables for every channel, the gather kernel
 * with each lane's table. */
typedef struct kernel {
    raster__cvt_plain_fn plain;    /* or NULL and: */
    raster__cvt_param_fn param;
    double a[RASTER__CVT_PERIOD], b[RASTER__CVT_PERIOD];
    raster__cvt_gather_fn gather;  /* non-NULL: used instead of param */
    const void *tables[RASTER__CVT_PERIOD];   /* per destination channel */
    const void *lanes[RASTER__CVT_PERIOD];
} kernel_t;

static void
kernel_run(const kernel_t *kn, const void *src, void *dst, int64_t n)
{
    if (kn->plain)
        kn->plain(src, dst, n);
    else if (kn->gather)
        kn->gather(src, dst, n, kn->lanes);
    else
        kn->param(src, dst, n, kn->a, kn->b);
}

/* Lane j of a run takes channel (first + j % nchans)'s parameters: a
 * compact pixel row is (0, channels), one channel's run (k, 1). */
static void
kernel_params(kernel_t *kn, const raster__place_opts_t *opts, int64_t first, int64_t nchans)
{
    for (int j = 0; j < RASTER__CVT_PERIOD; j++) {
        kn->a[j] = scale_of(opts, first + j % nchans);
        kn->b[j] = offset_of(opts, first + j % nchans);
        if (kn->gather)
            kn->lanes[j] = kn->tables[first + j % nchans];
    }
}

/* The gather kernel and every destination channel's table where convert.c
 * has them for this call (its rule: lib/common/convert.h); else the param kernel. */
static void
kernel_tables(kernel_t *kn, const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *opts)
{
    double a[RASTER__CVT_PERIOD], b[RASTER__CVT_PERIOD];
    if (dst->channels > RASTER__CVT_PERIOD)
        return;
    for (int64_t k = 0; k < dst->channels; k++) {
        a[k] = scale_of(opts, k);
        b[k] = offset_of(opts, k);
    }
    if (raster__cvt_tables(src->dtype, dst->dtype, opts->divide, a, b, (int)dst->channels,
                           dst->height * dst->width, kn->tables))
        kn->gather = raster__cvt_gather(src->dtype, dst->dtype);
}

static int
unit_aligned(const uint8_t *p, int64_t step, size_t size)
{
    return step == (int64_t)size && (uintptr_t)p % size == 0;
}

/* Elements per staging chunk: a multiple of the period, so lane parameters
 * line up in every chunk; 480 elements of 8 bytes fit two buffers in 8 KiB
 * of stack (L1). */
enum { STAGE_ELEMS = 20 * RASTER__CVT_PERIOD };

/* n elements from src (step ss bytes) to dst (step ds): the kernel straight
 * on both when they are unit-stride and aligned, else through aligned stack
 * buffers, a strided copy on the way in or out. */
static void
convert_run(const kernel_t *kn, const uint8_t *src, int64_t ss, size_t s_size, uint8_t *dst, int64_t ds,
            size_t d_size, int64_t n)
{
    const int s_direct = unit_aligned(src, ss, s_size), d_direct = unit_aligned(dst, ds, d_size);
    if (s_direct && d_direct) {
        kernel_run(kn, src, dst, n);
        return;
    }
    _Alignas(64) uint8_t s_buf[STAGE_ELEMS * 8];
    _Alignas(64) uint8_t d_buf[STAGE_ELEMS * 8];
    for (int64_t i = 0; i < n; i += STAGE_ELEMS) {
        const int64_t m = n - i < STAGE_ELEMS ? n - i : STAGE_ELEMS;
        const uint8_t *in = src + i * ss;
        if (!s_direct) {
            copy_elems(in, ss, s_buf, (int64_t)s_size, m, s_size);
            in = s_buf;
        }
        uint8_t *out = d_direct ? dst + i * ds : d_buf;
        kernel_run(kn, in, out, m);
        if (!d_direct)
            copy_elems(d_buf, (int64_t)d_size, dst + i * ds, ds, m, d_size);
    }
}

static int
planes_unit_aligned(const raster_view_t *v)
{
    const int64_t size = (int64_t)raster_dtype_size(v->dtype);
    return v->col_stride == size && (uintptr_t)v->data % (uintptr_t)size == 0 && v->row_stride % size == 0 &&
           v->chan_stride % size == 0;
}

/* Compact pixels on both sides, channels in order, a channel count that
 * divides the period: each row is one run. */
static int
is_row_run(const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *opts)
{
    return src->channels == dst->channels && is_compact_chunky(src) && is_compact_chunky(dst) &&
           channels_in_order(dst, opts) && dst->channels > 0 && RASTER__CVT_PERIOD % dst->channels == 0;
}

static void
place_row_runs(kernel_t *kn, const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *opts)
{
    const size_t s_size = raster_dtype_size(src->dtype), d_size = raster_dtype_size(dst->dtype);
    kernel_params(kn, opts, 0, dst->channels);
    for (int64_t r = 0; r < dst->height; r++)
        convert_run(kn, (const uint8_t *)src->data + r * src->row_stride, (int64_t)s_size, s_size,
                    (uint8_t *)dst->data + r * dst->row_stride, (int64_t)d_size, d_size,
                    dst->width * dst->channels);
}

/* Compact pixels into aligned planes, every channel in order (read() of a
 * pixel-interleaved tile): a chunk of each row is deinterleaved in the
 * source dtype into stack planes (the narrow side, and SSE2 for uint16 x 4),
 * then each plane is one kernel run straight into its destination plane. */
static deinterleave_fn
planes_deinterleave(const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *opts)
{
    if (src->channels != dst->channels || !is_compact_chunky(src) || !planes_unit_aligned(dst) ||
        !channels_in_order(dst, opts))
        return NULL;
    return deinterleave_for(raster_dtype_size(src->dtype), dst->channels);
}

static void
place_deinterleaved(const kernel_t *kn, deinterleave_fn de, const raster_view_t *src, const raster_view_t *dst,
                    const raster__place_opts_t *opts)
{
    const int64_t s_size = (int64_t)raster_dtype_size(src->dtype), d_size = (int64_t)raster_dtype_size(dst->dtype);
    const int64_t chunk = STAGE_ELEMS / dst->channels;
    kernel_t per_channel[4];
    _Alignas(64) uint8_t buf[STAGE_ELEMS * 8];
    uint8_t *planes[4];
    for (int64_t k = 0; k < dst->channels; k++) {
        per_channel[k] = *kn;
        kernel_params(&per_channel[k], opts, k, 1);
        planes[k] = buf + k * chunk * s_size;
    }
    const uint8_t *s0 = src->data;
    uint8_t *d0 = dst->data;
    for (int64_t r = 0; r < dst->height; r++)
        for (int64_t x = 0; x < dst->width; x += chunk) {
            const int64_t m = dst->width - x < chunk ? dst->width - x : chunk;
            de(s0 + r * src->row_stride + x * src->col_stride, planes, m);
            for (int64_t k = 0; k < dst->channels; k++)
                kernel_run(&per_channel[k], planes[k],
                           d0 + r * dst->row_stride + k * dst->chan_stride + x * d_size, m);
        }
}

/* Whether every row of v starts aligned to its element size (kernels' rule). */
static int
planes_aligned_rows(const raster_view_t *v)
{
    const int64_t size = (int64_t)raster_dtype_size(v->dtype);
    return (uintptr_t)v->data % (uintptr_t)size == 0 && v->row_stride % size == 0;
}

/* Planes into compact pixels, converted (read_hwc(out_dtype=...) from a
 * tile-cache entry): a chunk of each row is staged (stage_planes) and
 * interleaved in the source dtype (the narrow side) into a stack buffer,
 * then converted as one run straight into the destination row, per-channel
 * parameters as the lane pattern. */
static void
place_interleaved(kernel_t *kn, interleave_fn in, const raster_view_t *src, const raster_view_t *dst,
                  const raster__place_opts_t *opts)
{
    const int64_t d_size = (int64_t)raster_dtype_size(dst->dtype), nch = dst->channels;
    const int64_t chunk = STAGE_ELEMS / nch;   /* pixels: a multiple of the period in elements */
    _Static_assert(STAGE_ELEMS / 2 <= INTERLEAVE_STAGE, "a chunk must fit the stage");
    _Alignas(64) uint8_t buf[STAGE_ELEMS * 8];
    stage_t st;
    kernel_params(kn, opts, 0, nch);
    const uint8_t *planes[4];
    for (int64_t r = 0; r < dst->height; r++) {
        planes_row(src, opts, r, nch, planes);
        uint8_t *drow = (uint8_t *)dst->data + r * dst->row_stride;
        for (int64_t x = 0; x < dst->width; x += chunk) {
            const int64_t m = dst->width - x < chunk ? dst->width - x : chunk;
            stage_planes(&st, planes, nch, (size_t)src->col_stride, x, m);
            in(st.at, buf, m);
            kernel_run(kn, buf, drow + x * nch * d_size, m * nch);
        }
    }
}

/* Any other layout: one run per row and channel, strided sides staged. */
static void
place_channel_runs(kernel_t *kn, const raster_view_t *src, const raster_view_t *dst,
                   const raster__place_opts_t *opts)
{
    const size_t s_size = raster_dtype_size(src->dtype), d_size = raster_dtype_size(dst->dtype);
    const uint8_t *s0 = src->data;
    uint8_t *d0 = dst->data;
    for (int64_t k = 0; k < dst->channels; k++) {
        const int64_t sk = source_channel(opts, k);
        kernel_params(kn, opts, k, 1);
        for (int64_t r = 0; r < dst->height; r++)
            convert_run(kn, s0 + r * src->row_stride + sk * src->chan_stride, src->col_stride, s_size,
                        d0 + r * dst->row_stride + k * dst->chan_stride, dst->col_stride, d_size, dst->width);
    }
}

/* Converts through the kernels; 0 (nothing written) where there is no
 * kernel for the pair (float16). */
static int
place_converted_fast(const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *opts)
{
    kernel_t kn;
    kn.plain = has_affine(opts) ? NULL : raster__cvt_plain(src->dtype, dst->dtype);
    kn.param = !has_affine(opts) ? NULL
               : opts->divide    ? raster__cvt_divide(src->dtype, dst->dtype)
                                 : raster__cvt_affine(src->dtype, dst->dtype);
    if (kn.plain == NULL && kn.param == NULL)
        return 0;
    kn.gather = NULL;
    if (kn.param != NULL)
        kernel_tables(&kn, src, dst, opts);
    if (is_row_run(src, dst, opts)) {
        place_row_runs(&kn, src, dst, opts);
        return 1;
    }
    const interleave_fn in = planes_interleave(src, dst);
    if (in != NULL && RASTER__CVT_PERIOD % dst->channels == 0 && planes_aligned_rows(dst)) {
        place_interleaved(&kn, in, src, dst, opts);
        return 1;
    }
    const deinterleave_fn de = planes_deinterleave(src, dst, opts);
    if (de != NULL)
        place_deinterleaved(&kn, de, src, dst, opts);
    else
        place_channel_runs(&kn, src, dst, opts);
    return 1;
}

void
raster__place(const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *opts)
{
    if (!has_affine(opts) && src->dtype == dst->dtype)
        place_same_dtype(src, dst, opts);
    else if (!place_converted_fast(src, dst, opts))
        place_converted_scalar(src, dst, opts);
}

void
raster__place_scalar(const raster_view_t *src, const raster_view_t *dst, const raster__place_opts_t *opts)
{
    if (!has_affine(opts) && src->dtype == dst->dtype)
        place_same_dtype(src, dst, opts);
    else
        place_converted_scalar(src, dst, opts);
}

void
raster__fill(const raster_view_t *dst, double value)
{
    uint8_t elem[8];
    const size_t size = raster_dtype_size(dst->dtype);
    raster__convert_scalar(value, dst->dtype, elem);
    uint8_t *d0 = dst->data;
    for (int64_t r = 0; r < dst->height; r++)
        for (int64_t c = 0; c < dst->width; c++)
            for (int64_t k = 0; k < dst->channels; k++)
                memcpy(d0 + r * dst->row_stride + c * dst->col_stride + k * dst->chan_stride, elem, size);
}
