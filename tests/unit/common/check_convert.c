/*
 * check_convert.c - the conversion kernels (lib/common/convert.c) against their
 * oracles, for every (source, destination) dtype pair:
 * - raster__place() (kernels) against raster__place_scalar() (the element-
 *   by-element path through double that was the only path before), byte for
 *   byte over the whole destination buffer (so also nothing written outside
 *   the view), in every mode (plain, scale/offset, mean/std) and layout:
 *   contiguous runs of every length 1..40 and an odd long one (the vector
 *   tails), compact pixel rows of 1 to 5 channels, pixels to planes, planes
 *   to pixels, a strided sub-view with channels reordered and dropped, and
 *   misaligned views; planes (the tile cache's entries) into pixels and
 *   planes, with channel subsets, one band of four and a 1-channel mask;
 *   the same dtype against an element-by-element copy (the scalar path
 *   shares place.c's copy paths there);
 * - plain conversion against GDALCopyWords of the GDAL the library links
 *   (3.6; what rasterio's read(out_dtype=...) does) for every pair it has
 *   (no int8, no float16), bit for bit, in runs of 8 (GDAL's SSE2 chunks);
 *   one value at a time (GDAL's scalar path) too, where GDAL itself differs
 *   in exactly two values of one pair (float32 -> int16, lib/common/dtype.c);
 * - the lookup tables (8- and 16-bit integer sources with scale/offset or
 *   mean/std) against the direct kernels and the scalar path for every
 *   input value, every destination and parameters that stress the
 *   expression (negative, tiny, zero std, NaN and +-0 means), then through
 *   raster__place() in every layout; and the rule that builds and evicts
 *   them;
 * - mean/std against the expression NumPy computes, (double(x) - mean) / std
 *   rounded once (tests/python/read/test_normalise.py checks NumPy itself).
 * The source values are every saturation edge of every dtype and +-1 of it,
 * halves (rounding), NaN, +-inf, -0.0, subnormals, then random bits.
 */
#include "test_util.h"

#include "common/convert.h"

#include <gdal.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const NAMES[RASTER_DTYPE_COUNT] = {"u8", "i8", "u16", "i16", "u32", "i32", "f16", "f32",
                                                      "f64"};

static int is_float(raster_dtype_t dt)
{
    return dt == RASTER_F16 || dt == RASTER_F32 || dt == RASTER_F64;
}

/* Edges of every dtype's range, +-1, and values around them. */
static const int64_t INT_EDGES[] = {0, 1, -1, 2, -2, 126, 127, 128, 129, -127, -128, -129, 254, 255, 256,
                                    32766, 32767, 32768, -32767, -32768, -32769, 65534, 65535, 65536,
                                    2147483646, 2147483647, 2147483648LL, -2147483647, -2147483647 - 1,
                                    -2147483649LL, 4294967294LL, 4294967295LL};
static const double FLOAT_EDGES[] = {
    0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997, 0.49999999999999994,
    -0.49999999999999994, 127.5, 127.49999, -128.5, -128.49999, 254.5, 255.4999, 255.5, 256.0, -0.75,
    32767.5, -32768.5, -32768.49, 65535.49, 65535.5, 65536.0, 2147483647.4, 2147483647.5, -2147483648.5,
    -2147483648.6, 4294967295.4, 4294967295.5, 4294967296.0, 1e10, -1e10, 16777217.0, 3.4028234663852886e38,
    3.5e38, -3.5e38, 1e-40, -1e-40, 5e-324, 1e300, -1e300, 1.0 / 3.0, 65504.0, 65520.0, 6e-8,
    /* Where GDAL's x +- 0.5f rounds in float (odd integers in [2^23, 2^24)),
     * and the last floats below 2^31 and 2^32. */
    8388609.0, -8388609.0, 8388611.0, 16777215.0, -16777215.0, 2147483520.0, -2147483520.0, 4294967040.0,
    2147483648.0, 1.17549435e-38, -1.17549435e-38};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Element i of the source pattern of dtype dt, written raw at p. */
static void source_elem(raster_dtype_t dt, size_t i, uint8_t *p)
{
    const size_t n_int = sizeof INT_EDGES / sizeof INT_EDGES[0];
    const size_t n_flt = sizeof FLOAT_EDGES / sizeof FLOAT_EDGES[0];
    const size_t size = raster_dtype_size(dt);
    if (is_float(dt)) {
        double v;
        if (i < n_flt) {
            v = FLOAT_EDGES[i];
        } else if (i < n_flt + n_int) {
            v = (double)INT_EDGES[i - n_flt];
        } else if (i < n_flt + n_int + 4) {
            const double specials[4] = {NAN, -NAN, INFINITY, -INFINITY};
            v = specials[i - n_flt - n_int];
        } else if (i % 3 == 0) {
            /* Random bits: every exponent, NaN payloads, subnormals. */
            const uint64_t bits = next_rand();
            memcpy(p, &bits, size);
            return;
        } else {
            v = (double)(int64_t)(next_rand() % 140000) / 2.0 - 35000.0 + (double)(next_rand() % 1000) / 1000.0;
        }
        if (dt == RASTER_F64) {
            memcpy(p, &v, 8);
        } else if (dt == RASTER_F32) {
            const float f = (float)v;
            memcpy(p, &f, 4);
        } else {
            const uint16_t h = raster__f16_from_f64(v);
            memcpy(p, &h, 2);
        }
        return;
    }
    uint64_t bits = next_rand();
    if (i < n_int)
        bits = (uint64_t)INT_EDGES[i];     /* wraps into the type: edges of narrower types land too */
    memcpy(p, &bits, size);                /* little endian: the low bytes */
}

typedef enum { MODE_PLAIN, MODE_AFFINE, MODE_DIVIDE } mode_t_;
static const char *const MODE_NAMES[] = {"plain", "scale/offset", "mean/std"};

/* Per-channel parameters: odd factors, a negative one, a tiny std, std 0. */
static const double SCALES[] = {0.5, -3.25, 1.0 / 3.0, 1e-3, 7.0, 0.0};
static const double OFFSETS[] = {0.25, 100.0, -7.5, 0.5, -32768.0, 1000.0};

typedef struct layout {
    const char *name;
    int64_t h, w;
    int64_t s_channels, d_channels;
    int s_planar, d_planar;      /* CHW instead of HWC */
    int64_t d_pad;               /* dst sits at row 1, col 1 of a buffer of +pad rows/cols/channels */
    size_t misalign;             /* bytes added to both data pointers */
    const int *chan_map;         /* NULL = identity */
} layout_t;

static const int MAP_SUBSET[] = {2, 0, 3};
static const int MAP_LAST[] = {3};

/* The oracle for the same dtype with no scaling (raster__place_scalar()
 * shares place.c's copy paths there): element by element, raw bytes. */
static void place_elementwise(const raster_view_t *src, const raster_view_t *dst, const int *chan_map)
{
    const size_t size = raster_dtype_size(dst->dtype);
    for (int64_t r = 0; r < dst->height; r++)
        for (int64_t c = 0; c < dst->width; c++)
            for (int64_t k = 0; k < dst->channels; k++) {
                const int64_t sk = chan_map ? chan_map[k] : k;
                memcpy((uint8_t *)dst->data + r * dst->row_stride + c * dst->col_stride + k * dst->chan_stride,
                       (const uint8_t *)src->data + r * src->row_stride + c * src->col_stride +
                           sk * src->chan_stride,
                       size);
            }
}

/* The buffer a view of layout l needs (dst: the padded one). */
static size_t layout_nbytes(raster_dtype_t dt, const layout_t *l, int dst)
{
    const int64_t pad = dst ? l->d_pad : 0;
    const int64_t c = dst ? l->d_channels : l->s_channels;
    return (size_t)((l->h + 2 * pad) * (l->w + 2 * pad) * (c + pad)) * raster_dtype_size(dt) + l->misalign;
}

static raster_view_t make_view(uint8_t *base, raster_dtype_t dt, const layout_t *l, int dst)
{
    const int64_t es = (int64_t)raster_dtype_size(dt);
    const int64_t c = dst ? l->d_channels : l->s_channels;
    const int planar = dst ? l->d_planar : l->s_planar;
    const int64_t pad = dst ? l->d_pad : 0;
    const int64_t H = l->h + 2 * pad, W = l->w + 2 * pad, C = c + pad;
    raster_view_t v;
    if (planar)
        v = (raster_view_t){NULL, dt, l->h, l->w, c, W * es, es, H * W * es};
    else
        v = (raster_view_t){NULL, dt, l->h, l->w, c, W * C * es, C * es, es};
    v.data = base + l->misalign + pad * v.row_stride + pad * v.col_stride;
    return v;
}

static int n_compared;

/* One pair, mode and layout: kernels and scalar path write the same bytes. */
static void check_against_scalar(raster_dtype_t s, raster_dtype_t d, mode_t_ mode, const layout_t *l)
{
    const size_t s_nbytes = layout_nbytes(s, l, 0), d_nbytes = layout_nbytes(d, l, 1);
    uint8_t *sbuf = malloc(s_nbytes), *fast = malloc(d_nbytes), *slow = malloc(d_nbytes);
    ck_assert(sbuf && fast && slow);
    const size_t es = raster_dtype_size(s);
    for (size_t i = 0; (i + 1) * es + l->misalign <= s_nbytes; i++)
        source_elem(s, i, sbuf + l->misalign + i * es);
    memset(fast, 0x5a, d_nbytes);
    memset(slow, 0x5a, d_nbytes);
    const raster_view_t sv = make_view(sbuf, s, l, 0);
    const raster_view_t fast_v = make_view(fast, d, l, 1), slow_v = make_view(slow, d, l, 1);
    raster__place_opts_t po = {l->chan_map, NULL, NULL, mode == MODE_DIVIDE};
    if (mode != MODE_PLAIN) {
        po.scale = SCALES;
        po.offset = OFFSETS;
    }
    raster__place(&sv, &fast_v, &po);
    if (s == d && mode == MODE_PLAIN)
        place_elementwise(&sv, &slow_v, l->chan_map);
    else
        raster__place_scalar(&sv, &slow_v, &po);
    if (memcmp(fast, slow, d_nbytes) != 0) {
        size_t at = 0;
        while (fast[at] == slow[at])
            at++;
        ck_abort_msg("%s -> %s, %s, %s: byte %zu of %zu differs (kernels 0x%02x, scalar 0x%02x)", NAMES[s],
                     NAMES[d], MODE_NAMES[mode], l->name, at, d_nbytes, fast[at], slow[at]);
    }
    n_compared += (int)(l->h * l->w * l->d_channels);
    free(sbuf);
    free(fast);
    free(slow);
}

static void check_pair_layouts(raster_dtype_t s, raster_dtype_t d, mode_t_ m)
{
    static const layout_t layouts[] = {
        {"hwc 1 channel", 3, 37, 1, 1, 0, 0, 0, 0, NULL},
        {"hwc 2 channels", 3, 37, 2, 2, 0, 0, 0, 0, NULL},
        {"hwc 3 channels", 3, 37, 3, 3, 0, 0, 0, 0, NULL},
        {"hwc 4 channels", 5, 41, 4, 4, 0, 0, 0, 0, NULL},
        {"hwc 5 channels (not a divisor of the period)", 3, 19, 5, 5, 0, 0, 0, 0, NULL},
        {"hwc to chw", 3, 37, 4, 4, 0, 1, 0, 0, NULL},
        {"chw to hwc", 3, 37, 3, 3, 1, 0, 0, 0, NULL},
        {"chw to chw", 3, 29, 2, 2, 1, 1, 0, 0, NULL},
        {"hwc to strided sub-view, channels 3,1,4", 4, 23, 4, 3, 0, 0, 2, 0, MAP_SUBSET},
        {"hwc misaligned by 1 byte", 3, 37, 3, 3, 0, 0, 0, 1, NULL},
        {"hwc one long row", 1, 1037, 4, 4, 0, 0, 0, 0, NULL},
        {"chw 2 planes, staged long run", 2, 1111, 2, 2, 0, 1, 0, 0, NULL},
        /* Planes as tile-cache entries hold them (tiff_read.c), into every shape a read asks for. */
        {"chw to hwc 4 channels", 3, 37, 4, 4, 1, 0, 0, 0, NULL},
        {"chw to hwc 2 channels", 2, 41, 2, 2, 1, 0, 0, 0, NULL},
        {"chw to hwc, channels 3,1,4", 4, 23, 4, 3, 1, 0, 0, 0, MAP_SUBSET},
        {"chw to chw, channels 3,1,4", 4, 23, 4, 3, 1, 1, 0, 0, MAP_SUBSET},
        {"chw to chw, band 4 of 4", 3, 37, 4, 1, 1, 1, 0, 0, MAP_LAST},
        {"hwc to chw, band 4 of 4", 3, 37, 4, 1, 0, 1, 0, 0, MAP_LAST},
        {"chw 1 channel to chw (a mask)", 3, 37, 1, 1, 1, 1, 0, 0, NULL},
        {"chw to hwc misaligned by 1 byte", 3, 37, 4, 4, 1, 0, 0, 1, NULL},
        {"chw to hwc one long row", 1, 1037, 4, 4, 1, 0, 0, 0, NULL},
        {"chw to hwc 3 channels one long row", 1, 1037, 3, 3, 1, 0, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        check_against_scalar(s, d, m, &layouts[i]);
    for (int64_t n = 1; n <= 40; n++) {     /* every vector tail */
        const layout_t run = {"contiguous run", 1, n, 1, 1, 0, 0, 0, 0, NULL};
        check_against_scalar(s, d, m, &run);
    }
}

/* Every pair, one test per source dtype (a failure names the pair): the
 * direct kernels (lookup tables off; the next test has them on). */
START_TEST(kernels_equal_scalar_path)
{
    const raster_dtype_t s = (raster_dtype_t)_i;
    raster__cvt_tables_enable(0);
    for (int d = 0; d < RASTER_DTYPE_COUNT; d++)
        for (mode_t_ m = MODE_PLAIN; m <= MODE_DIVIDE; m++)
            check_pair_layouts(s, (raster_dtype_t)d, m);
    raster__cvt_tables_enable(1);
    ck_assert_int_gt(n_compared, 0);
}
END_TEST

/* ---- lookup tables (convert.h): 8- and 16-bit integer sources ---- */

static const raster_dtype_t SMALL_INTS[] = {RASTER_U8, RASTER_I8, RASTER_U16, RASTER_I16};

static int64_t entries_of(raster_dtype_t s)
{
    return (int64_t)1 << (8 * raster_dtype_size(s));
}

/* Every value of s, in increasing order, at out. */
static void every_value(raster_dtype_t s, uint8_t *out)
{
    const int64_t n = entries_of(s), first = s == RASTER_I8 || s == RASTER_I16 ? -n / 2 : 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t v = first + i;
        if (raster_dtype_size(s) == 1)
            out[i] = (uint8_t)v;
        else {
            const uint16_t u = (uint16_t)v;
            memcpy(out + 2 * i, &u, 2);
        }
    }
}

/* The gather kernel with every lane reading 'table'. */
static void gather_one_table(raster_dtype_t s, raster_dtype_t d, const void *table, const void *src, void *dst,
                             int64_t n)
{
    const void *lanes[RASTER__CVT_PERIOD];
    for (int j = 0; j < RASTER__CVT_PERIOD; j++)
        lanes[j] = table;
    raster__cvt_gather(s, d)(src, dst, n, lanes);
}

/* Parameters (a: scale or std, b: offset or mean) that stress the
 * expression: a negative std, tiny and subnormal ones, std 0 and -0, a NaN
 * mean, +-0 means (their own keys: the bits differ), huge results. */
static const double TAB_A[] = {300.0, -3.25, 1e-300, 5e-324, 0.0, -0.0, 1.0 / 3.0, 0.5, 1e-3, 7.0, 2.0};
static const double TAB_B[] = {1000.0, 100.0, 0.5, -1.0, 1000.0, 2.0, NAN, -0.0, 0.0, -32768.0, 1e300};
enum { NPARAMS = sizeof TAB_A / sizeof TAB_A[0] };

/* Under ASan and valgrind (RASTER_MATRIX_SCALE > 1): one parameter pair per
 * destination and mode, two destinations per layout test. */
static int reduced(void)
{
    const char *scale = getenv("RASTER_MATRIX_SCALE");
    return scale != NULL && atoi(scale) > 1;
}

/* For one source dtype, every destination with tables (all but float16 and float64), both modes, every
 * parameter pair: the table (built by convert.c) gathered over every input
 * value equals the direct kernel over every input value, which equals the
 * scalar path (the oracle), byte for byte; also with the values reversed
 * (the gather's indexing, not the order, gives the result). */
START_TEST(tables_equal_direct_every_value)
{
    const raster_dtype_t s = SMALL_INTS[_i];
    const int64_t n = entries_of(s);
    const size_t ss = raster_dtype_size(s);
    uint8_t *src = malloc((size_t)n * ss), *rev = malloc((size_t)n * ss);
    uint8_t *direct = malloc((size_t)n * 8), *scalar = malloc((size_t)n * 8), *got = malloc((size_t)n * 8);
    ck_assert(src && rev && direct && scalar && got);
    every_value(s, src);
    for (int64_t i = 0; i < n; i++)
        memcpy(rev + i * (int64_t)ss, src + (n - 1 - i) * (int64_t)ss, ss);
    int compared = 0;
    for (int d = 0; d < RASTER_DTYPE_COUNT; d++) {
        if (d == RASTER_F16 || d == RASTER_F64)
            continue;
        const size_t ds = raster_dtype_size((raster_dtype_t)d);
        for (int divide = 0; divide <= 1; divide++)
            for (size_t p = 0; p < NPARAMS; p++) {
                if (reduced() && p != ((size_t)d + (size_t)divide) % NPARAMS)
                    continue;
                const double a = TAB_A[p], b = TAB_B[p];
                double pa[RASTER__CVT_PERIOD], pb[RASTER__CVT_PERIOD];
                for (int j = 0; j < RASTER__CVT_PERIOD; j++) {
                    pa[j] = a;
                    pb[j] = b;
                }
                const raster__cvt_param_fn fn = divide ? raster__cvt_divide(s, (raster_dtype_t)d)
                                                       : raster__cvt_affine(s, (raster_dtype_t)d);
                fn(src, direct, n, pa, pb);
                const raster_view_t sv = raster_view_hwc(src, s, 1, n, 1);
                const raster_view_t dv = raster_view_hwc(scalar, (raster_dtype_t)d, 1, n, 1);
                const raster__place_opts_t po = {NULL, &a, &b, divide};
                raster__place_scalar(&sv, &dv, &po);
                ck_assert_msg(memcmp(direct, scalar, (size_t)n * ds) == 0, "%s -> %s %s a=%g b=%g: direct != scalar",
                              NAMES[s], NAMES[d], divide ? "mean/std" : "scale/offset", a, b);
                raster__cvt_tables_clear();
                const void *table = NULL;
                ck_assert_int_eq(raster__cvt_tables(s, (raster_dtype_t)d, divide, &a, &b, 1, n, &table), 1);
                gather_one_table(s, (raster_dtype_t)d, table, src, got, n);
                ck_assert_msg(memcmp(got, direct, (size_t)n * ds) == 0, "%s -> %s %s a=%g b=%g: table != direct",
                              NAMES[s], NAMES[d], divide ? "mean/std" : "scale/offset", a, b);
                gather_one_table(s, (raster_dtype_t)d, table, rev, got, n);
                for (int64_t i = 0; i < n; i++)
                    memcpy(scalar + i * (int64_t)ds, direct + (n - 1 - i) * (int64_t)ds, ds);
                ck_assert_msg(memcmp(got, scalar, (size_t)n * ds) == 0, "%s -> %s a=%g b=%g: reversed values differ",
                              NAMES[s], NAMES[d], a, b);
                compared++;
            }
    }
    ck_assert_int_eq(compared, 7 * 2 * (reduced() ? 1 : NPARAMS));
    raster__cvt_tables_clear();
    free(src);
    free(rev);
    free(direct);
    free(scalar);
    free(got);
}
END_TEST

/* raster__place() through tables in every layout, against the scalar
 * path: each channel's table (SCALES[k], OFFSETS[k]) is built first, so
 * every run of the layouts above takes the gather kernel. */
START_TEST(tables_equal_scalar_path_in_every_layout)
{
    const raster_dtype_t s = SMALL_INTS[_i];
    enum { NCH = sizeof SCALES / sizeof SCALES[0] };
    for (int d = 0; d < RASTER_DTYPE_COUNT; d++)
        for (mode_t_ m = MODE_AFFINE; m <= MODE_DIVIDE; m++) {
            if (d == RASTER_F16 || d == RASTER_F64 || (reduced() && d != RASTER_U8 && d != RASTER_F32))
                continue;
            const void *tables[NCH];
            raster__cvt_tables_clear();
            ck_assert_int_eq(raster__cvt_tables(s, (raster_dtype_t)d, m == MODE_DIVIDE, SCALES, OFFSETS, NCH,
                                                entries_of(s), tables),
                             1);
            check_pair_layouts(s, (raster_dtype_t)d, m);
        }
    raster__cvt_tables_clear();
}
END_TEST

/* raster__place() really reads the table: an entry changed behind its back
 * shows in the output (so the layout test above tests the gather path). */
START_TEST(place_reads_the_table)
{
    enum { H = 256, W = 256 };
    const double std = 2.0, mean = 1.0;
    uint16_t *src = malloc(H * W * 2);
    float *dst = malloc(H * W * 4);
    ck_assert(src && dst);
    for (int i = 0; i < H * W; i++)
        src[i] = (uint16_t)(i % 100);
    raster__cvt_tables_clear();
    const void *table = NULL;
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F32, 1, &std, &mean, 1, H * W, &table), 1);
    ((float *)(uintptr_t)table)[7] = 12345.0f;
    const raster_view_t sv = raster_view_hwc(src, RASTER_U16, H, W, 1);
    const raster_view_t dv = raster_view_hwc(dst, RASTER_F32, H, W, 1);
    const raster__place_opts_t po = {NULL, &std, &mean, 1};
    raster__place(&sv, &dv, &po);
    ck_assert(dst[7] == 12345.0f && dst[107] == 12345.0f);
    ck_assert(dst[8] == 3.5f);
    raster__cvt_tables_clear();
    raster__place(&sv, &dv, &po);     /* a fresh table: the right value again */
    ck_assert(dst[7] == 3.0f);
    raster__cvt_tables_clear();
    free(src);
    free(dst);
}
END_TEST

/* The rule of convert.h: a table is built once a key's values reach its
 * entries (in one call or over several); keys are the parameters' bits;
 * tables in use by the request are never evicted, so a request whose tables
 * exceed the budget converts directly; least recently used tables go first;
 * off means off. */
START_TEST(table_build_rule)
{
    const void *t[17];
    const double two = 2.0, one = 1.0, zero = 0.0, minus_zero = -0.0;
    raster__cvt_tables_clear();
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F32, 1, &two, &one, 1, 65535, t), 0);
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F32, 1, &two, &one, 1, 0, t), 0);
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F32, 1, &two, &one, 1, 1, t), 1);
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F32, 1, &two, &one, 1, 0, t), 1);
    /* the other mode, and -0.0 against 0.0, are other keys */
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F32, 0, &two, &one, 1, 0, t), 0);
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F32, 1, &two, &zero, 1, 65536, t), 1);
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F32, 1, &two, &minus_zero, 1, 0, t), 0);
    ck_assert_int_eq(raster__cvt_tables(RASTER_U8, RASTER_F32, 1, &two, &one, 1, 256, t), 1);
    /* int16 to float32: 256 KiB each, 16 fill the budget */
    double a[17], b[17];
    for (int k = 0; k < 17; k++) {
        a[k] = 1.0 + k;
        b[k] = 0.0;
    }
    raster__cvt_tables_clear();
    ck_assert_int_eq(raster__cvt_tables(RASTER_I16, RASTER_F32, 0, a, b, 17, 65536, t), 0);
    ck_assert(RASTER__CVT_TABLE_BUDGET == 16 * 65536 * 4);
    ck_assert_int_eq(raster__cvt_tables(RASTER_I16, RASTER_F32, 0, a, b, 16, 0, t), 1);
    ck_assert_int_eq(raster__cvt_tables(RASTER_I16, RASTER_F32, 0, a + 16, b + 16, 1, 65536, t), 1);
    ck_assert_int_eq(raster__cvt_tables(RASTER_I16, RASTER_F32, 0, a + 1, b + 1, 15, 0, t), 1);
    ck_assert_int_eq(raster__cvt_tables(RASTER_I16, RASTER_F32, 0, a, b, 1, 0, t), 0);   /* evicted: the oldest */
    /* no table for float16, float64, 32-bit sources, or when off */
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F16, 1, &two, &one, 1, 1 << 20, t), 0);
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F64, 1, &two, &one, 1, 1 << 20, t), 0);
    ck_assert_int_eq(raster__cvt_tables(RASTER_I32, RASTER_F32, 1, &two, &one, 1, 1 << 20, t), 0);
    raster__cvt_tables_enable(0);
    ck_assert_int_eq(raster__cvt_tables(RASTER_U16, RASTER_F32, 1, &two, &one, 1, 1 << 20, t), 0);
    raster__cvt_tables_enable(1);
    raster__cvt_tables_clear();
}
END_TEST

static double load_double(raster_dtype_t dt, const uint8_t *p)
{
    switch (dt) {
    case RASTER_U8: return *p;
    case RASTER_I8: return (int8_t)*p;
    case RASTER_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case RASTER_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case RASTER_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case RASTER_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case RASTER_F16: { uint16_t v; memcpy(&v, p, 2); return raster__f64_from_f16(v); }
    case RASTER_F32: { float v; memcpy(&v, p, 4); return v; }
    case RASTER_F64: { double v; memcpy(&v, p, 8); return v; }
    }
    return 0;
}

static int skip_for_gdal(int s, int d)
{
    return s == d || test_gdal_type((raster_dtype_t)s) == GDT_Unknown ||
           test_gdal_type((raster_dtype_t)d) == GDT_Unknown;
}

/* The element of dtype d at p as text, for a failure message. */
static double elem_at(raster_dtype_t d, const uint8_t *p, size_t i)
{
    return load_double(d, p + i * raster_dtype_size(d));
}

/* Both NaN (a float destination: GDAL and we may carry other payloads). */
static int both_nan(raster_dtype_t d, const uint8_t *a, const uint8_t *b)
{
    return is_float(d) && isnan(load_double(d, a)) && isnan(load_double(d, b));
}

/* A contiguous run (the kernels' own case) against GDALCopyWords over the
 * same run, whose length is a multiple of 8 so that every value takes
 * GDAL's SSE2 chunks where it has them: no exceptions. */
START_TEST(plain_kernels_equal_gdal_copy_words)
{
    enum { N = 1040 };
    int pairs = 0;
    for (int s = 0; s < RASTER_DTYPE_COUNT; s++)
        for (int d = 0; d < RASTER_DTYPE_COUNT; d++) {
            if (skip_for_gdal(s, d))
                continue;
            const size_t ss = raster_dtype_size((raster_dtype_t)s), ds = raster_dtype_size((raster_dtype_t)d);
            uint8_t *src = malloc(N * ss), *got = malloc(N * ds), *want = malloc(N * ds);
            ck_assert(src && got && want);
            for (size_t i = 0; i < N; i++)
                source_elem((raster_dtype_t)s, i, src + i * ss);
            const raster_view_t sv = raster_view_hwc(src, (raster_dtype_t)s, 1, N, 1);
            const raster_view_t dv = raster_view_hwc(got, (raster_dtype_t)d, 1, N, 1);
            raster__place(&sv, &dv, NULL);
            GDALCopyWords(src, test_gdal_type((raster_dtype_t)s), (int)ss, want, test_gdal_type((raster_dtype_t)d),
                          (int)ds, N);
            for (size_t i = 0; i < N; i++)
                if (memcmp(got + i * ds, want + i * ds, ds) != 0 && !both_nan((raster_dtype_t)d, got + i * ds, want + i * ds))
                    ck_abort_msg("%s -> %s: %.17g gave %.17g, GDALCopyWords %.17g", NAMES[s], NAMES[d],
                                 elem_at((raster_dtype_t)s, src, i), elem_at((raster_dtype_t)d, got, i),
                                 elem_at((raster_dtype_t)d, want, i));
            pairs++;
            free(src);
            free(got);
            free(want);
        }
    ck_assert_int_eq(pairs, 7 * 6);
}
END_TEST

/* GDAL's own two rules for float32 -> int16: its SSE2 chunks (ours) clamp
 * first and add -0.5f below 0.5, its scalar path (one value, or the tail of
 * a copy after the last chunk of 8) adds +-0.5f by sign and maps NaN to 0. */
static int gdal_scalar_differs(int s, int d, float x)
{
    return s == RASTER_F32 && d == RASTER_I16 && (isnan(x) || x == 0.49999997f);
}

/* Value by value (GDAL's scalar path): equal too, except the two values
 * where GDAL's own paths disagree, which must differ exactly as named. */
START_TEST(plain_kernels_equal_gdal_scalar_path)
{
    enum { N = 1040 };
    int differs = 0;
    for (int s = 0; s < RASTER_DTYPE_COUNT; s++)
        for (int d = 0; d < RASTER_DTYPE_COUNT; d++) {
            if (skip_for_gdal(s, d))
                continue;
            const size_t ss = raster_dtype_size((raster_dtype_t)s), ds = raster_dtype_size((raster_dtype_t)d);
            uint8_t src[8], got[8], want[8];
            for (size_t i = 0; i < N; i++) {
                source_elem((raster_dtype_t)s, i, src);
                const raster_view_t sv = raster_view_hwc(src, (raster_dtype_t)s, 1, 1, 1);
                const raster_view_t dv = raster_view_hwc(got, (raster_dtype_t)d, 1, 1, 1);
                raster__place(&sv, &dv, NULL);
                GDALCopyWords(src, test_gdal_type((raster_dtype_t)s), 0, want, test_gdal_type((raster_dtype_t)d), 0, 1);
                const int same = memcmp(got, want, ds) == 0 || both_nan((raster_dtype_t)d, got, want);
                const int expect_differ = gdal_scalar_differs(s, d, (float)load_double((raster_dtype_t)s, src));
                if (same == expect_differ)
                    ck_abort_msg("%s -> %s: %.17g gave %.17g, GDAL's scalar path %.17g", NAMES[s], NAMES[d],
                                 load_double((raster_dtype_t)s, src), load_double((raster_dtype_t)d, got),
                                 load_double((raster_dtype_t)d, want));
                differs += expect_differ;
            }
        }
    ck_assert_int_ge(differs, 3);     /* 0.49999997f, NaN, -NaN are in the pattern */
}
END_TEST

/* mean/std is NumPy's ((x.astype(float64) - mean) / std).astype(dst): the
 * double expression here, rounded once by the scalar rule. */
START_TEST(mean_std_is_numpys_expression)
{
    enum { N = 4 * 301 };
    const double mean[4] = {1000.0, 0.5, -3.0, 1e-3}, std[4] = {3.0, 0.1, 7.0, 1.0 / 3.0};
    for (int s = 0; s < RASTER_DTYPE_COUNT; s++)
        for (int d = 0; d < RASTER_DTYPE_COUNT; d++) {
            const size_t ss = raster_dtype_size((raster_dtype_t)s), ds = raster_dtype_size((raster_dtype_t)d);
            uint8_t *src = malloc(N * ss), *got = malloc(N * ds);
            ck_assert(src && got);
            for (size_t i = 0; i < N; i++)
                source_elem((raster_dtype_t)s, i, src + i * ss);
            const raster_view_t sv = raster_view_hwc(src, (raster_dtype_t)s, 1, N / 4, 4);
            const raster_view_t dv = raster_view_hwc(got, (raster_dtype_t)d, 1, N / 4, 4);
            const raster__place_opts_t po = {NULL, std, mean, 1};
            raster__place(&sv, &dv, &po);
            for (size_t i = 0; i < N; i++) {
                const double x = load_double((raster_dtype_t)s, src + i * ss);
                uint8_t want[8];
                raster__convert_scalar((x - mean[i % 4]) / std[i % 4], (raster_dtype_t)d, want);
                const double g = load_double((raster_dtype_t)d, got + i * ds);
                if (memcmp(got + i * ds, want, ds) != 0 && !(isnan(g) && isnan(load_double((raster_dtype_t)d, want))))
                    ck_abort_msg("%s -> %s: (%.17g - %g) / %g gave %.17g", NAMES[s], NAMES[d], x, mean[i % 4],
                                 std[i % 4], g);
            }
            free(src);
            free(got);
        }
}
END_TEST

static Suite *convert_suite(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("convert");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, kernels_equal_scalar_path, 0, RASTER_DTYPE_COUNT);
    tcase_add_loop_test(tc, tables_equal_direct_every_value, 0, 4);
    tcase_add_loop_test(tc, tables_equal_scalar_path_in_every_layout, 0, 4);
    tcase_add_test(tc, place_reads_the_table);
    tcase_add_test(tc, table_build_rule);
    tcase_add_test(tc, plain_kernels_equal_gdal_copy_words);
    tcase_add_test(tc, plain_kernels_equal_gdal_scalar_path);
    tcase_add_test(tc, mean_std_is_numpys_expression);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(convert_suite)
