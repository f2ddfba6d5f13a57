/*
 * check_read_matrix.c - every readable fixture x a window set x band orders
 * x destination dtypes and layouts, read through raster_read_into() with the
 * GDAL reader forced and with the reader chosen at open, compared with an
 * independent oracle: GDAL's band-wise GDALRasterIO into CHW in the file's
 * own dtype, converted here with GDALCopyWords (GDAL's rules), _Float16
 * (round to nearest even) or a plain saturating cast for int8, which GDAL 3.6
 * cannot produce.  Same dtype and no scaling must match bit for bit.
 *
 * Inner loops test with plain ifs and ck_abort_msg(): every ck_assert*()
 * sends a location message to the Check runner through a pipe, which costs a
 * system call per pixel.
 */
#include "test_util.h"

#include <cpl_conv.h>
#include <gdal.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int matrix_scale(void)
{
    const char *s = getenv("RASTER_MATRIX_SCALE");
    const int v = s ? atoi(s) : 1;
    return v > 0 ? v : 1;
}

static inline double load_elem(const uint8_t *p, raster_dtype_t dt)
{
    switch (dt) {
    case RASTER_U8: return *p;
    case RASTER_I8: return (int8_t)*p;
    case RASTER_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case RASTER_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case RASTER_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case RASTER_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case RASTER_F16: { _Float16 v; memcpy(&v, p, 2); return (double)v; }
    case RASTER_F32: { float v; memcpy(&v, p, 4); return v; }
    case RASTER_F64: { double v; memcpy(&v, p, 8); return v; }
    }
    return 0;
}

/* The oracle's conversion of one double to 'dt', written to 'out'. */
/* A float32 element unscaled: GDAL converts from float32, not from double
 * (x +- 0.5f rounds in float, lib/dtype.c).  GDALCopyWords over 8 copies
 * takes GDAL's SSE2 chunk, whose float32 -> int16 rule is ours (its
 * one-value path differs there); int8, which GDAL 3.6 lacks, is GDAL 3.7's
 * float rule. */
static void expect_from_f32(const uint8_t *o, raster_dtype_t dt, uint8_t *out)
{
    float x;
    memcpy(&x, o, 4);
    if (dt == RASTER_I8) {
        const float v = isnan(x) ? 0.0f : x >= 0.0f ? x + 0.5f : x - 0.5f;
        const int8_t r = (int8_t)(v >= 127.0f ? 127 : v <= -128.0f ? -128 : (int)v);
        memcpy(out, &r, 1);
        return;
    }
    if (dt == RASTER_F16) {
        const _Float16 h = (_Float16)(double)x;
        memcpy(out, &h, 2);
        return;
    }
    float run[8];
    uint8_t conv[8 * 8];
    for (int i = 0; i < 8; i++)
        run[i] = x;
    GDALCopyWords(run, GDT_Float32, 4, conv, test_gdal_type(dt), (int)raster_dtype_size(dt), 8);
    memcpy(out, conv, raster_dtype_size(dt));
}

static void expect_elem(double v, raster_dtype_t dt, uint8_t *out)
{
    if (dt == RASTER_F16) {
        const _Float16 h = (_Float16)v;
        memcpy(out, &h, 2);
    } else if (dt == RASTER_I8) {
        const double r = isnan(v) ? 0 : v >= 127 ? 127 : v <= -128 ? -128 : (v >= 0 ? floor(v + 0.5) : ceil(v - 0.5));
        const int8_t x = (int8_t)r;
        memcpy(out, &x, 1);
    } else {
        GDALCopyWords(&v, GDT_Float64, 0, out, test_gdal_type(dt), 0, 1);
    }
}

static int same_elem(const uint8_t *a, const uint8_t *b, raster_dtype_t dt, size_t n)
{
    if (elem_bytes_eq(a, b, n))
        return 1;
    /* Any NaN equals any NaN after a conversion (payloads may differ). */
    return (dt == RASTER_F16 || dt == RASTER_F32 || dt == RASTER_F64) && isnan(load_elem(a, dt)) &&
           isnan(load_elem(b, dt));
}

typedef enum { LAYOUT_HWC, LAYOUT_CHW, LAYOUT_STRIDED } layout_t;

typedef struct combo {
    raster_window_t win;
    int bands[4], nbands;
    raster_dtype_t dt;     /* -1 = file dtype */
    int scaled;
    layout_t layout;
} combo_t;

static int n_checked;

/* Read one combo and compare every element with the oracle. */
/* 'oracle' holds every band of cb->win in CHW, file dtype 'odt'. */
static void check_combo(raster_dataset_t *ds, const char *path, const char *label, const combo_t *cb,
                        const void *oracle, raster_dtype_t odt)
{
    const raster_dtype_t dt = (int)cb->dt < 0 ? odt : cb->dt;
    const int64_t H = cb->win.height, W = cb->win.width, C = cb->nbands;
    const size_t es = raster_dtype_size(dt);
    /* Strided: the view sits at row 3, col 5 of a bigger HWC buffer with 2 extra channels. */
    const int64_t BH = H + 7, BW = W + 9, BC = C + 2;
    const size_t nbytes = cb->layout == LAYOUT_STRIDED ? (size_t)(BH * BW * BC) * es : (size_t)(H * W * C) * es;
    guarded_t g = guarded_alloc(nbytes);
    memset(g.data, 0x5a, nbytes);
    raster_view_t v;
    if (cb->layout == LAYOUT_HWC) {
        v = raster_view_hwc(g.data, dt, H, W, C);
    } else if (cb->layout == LAYOUT_CHW) {
        v = (raster_view_t){g.data, dt, H, W, C, W * (int64_t)es, (int64_t)es, H * W * (int64_t)es};
    } else {
        v = (raster_view_t){g.data + (3 * BW * BC + 5 * BC + 1) * es, dt, H, W, C,
                            BW * BC * (int64_t)es, BC * (int64_t)es, (int64_t)es};
    }
    double scale[4], offset[4];
    for (int k = 0; k < C; k++)
        scale[k] = 0.5 + 0.25 * k, offset[k] = -3.0 * k + 1.25;
    raster_read_options_t opt;
    raster_read_options_init(&opt);
    opt.bands = cb->bands;
    opt.band_count = cb->nbands;
    if (cb->scaled)
        opt.scale = scale, opt.offset = offset;
    const raster_status_t st = raster_read_into(ds, cb->win, &opt, &v);
    ck_assert_msg(st == RASTER_OK, "%s [%s]: read failed: %s", path, label, raster_last_error());
    ck_assert_msg(guarded_intact(&g), "%s [%s]: wrote outside the buffer", path, label);

    /* Every element against the oracle; the loop walks pointers and leaves
     * the per-element calls to the conversions themselves (the same check,
     * without the call overhead that was most of this suite's time). */
    const size_t oes = raster_dtype_size(odt);
    const int same = dt == odt && !cb->scaled;
    for (int64_t k = 0; k < C; k++)
        for (int64_t r = 0; r < H; r++) {
            const int64_t plane = cb->bands[k] - 1;
            const uint8_t *o = (const uint8_t *)oracle + (plane * H + r) * W * (int64_t)oes;
            const uint8_t *got = (const uint8_t *)v.data + r * v.row_stride + k * v.chan_stride;
            for (int64_t c = 0; c < W; c++, o += oes, got += v.col_stride) {
                uint8_t want[8];
                if (same)
                    memcpy(want, o, oes);
                else if (odt == RASTER_F32 && !cb->scaled)
                    expect_from_f32(o, dt, want);
                else
                    expect_elem(cb->scaled ? load_elem(o, odt) * scale[k] + offset[k] : load_elem(o, odt), dt, want);
                if (!same_elem(got, want, dt, es))
                    ck_abort_msg("%s [%s] window (%lld,%lld %lldx%lld) band %d (r %lld, c %lld): "
                                 "got %.17g want %.17g",
                                 path, label, (long long)cb->win.col_off, (long long)cb->win.row_off,
                                 (long long)W, (long long)H, cb->bands[k], (long long)r, (long long)c,
                                 load_elem(got, dt), load_elem(want, dt));
            }
        }
    /* The strided layout must leave the two spare channels and the margin alone. */
    if (cb->layout == LAYOUT_STRIDED)
        for (int64_t r = 0; r < BH; r++)
            for (int64_t c = 0; c < BW; c++) {
                const int pixel_inside = r >= 3 && r < 3 + H && c >= 5 && c < 5 + W;
                for (int64_t k = 0; k < BC; k++) {
                    const int inside = pixel_inside && k >= 1 && k < 1 + C;
                    if (!inside && g.data[((r * BW + c) * BC + k) * es] != 0x5a)
                        ck_abort_msg("%s [%s]: wrote outside the view at (%lld,%lld,%lld)", path, label,
                                     (long long)r, (long long)c, (long long)k);
                }
            }
    guarded_free(&g);
    n_checked++;
}

/* Windows: full, 1x1 corners, a block, an unaligned one, edge straddlers. */
static int window_set(const raster_info_t *in, raster_window_t *w)
{
    const int64_t W = in->width, H = in->height;
    const int64_t bw = in->block_width < W ? in->block_width : W, bh = in->block_height < H ? in->block_height : H;
    int n = 0;
    w[n++] = (raster_window_t){0, 0, W, H};
    w[n++] = (raster_window_t){0, 0, 1, 1};
    w[n++] = (raster_window_t){W - 1, H - 1, 1, 1};
    w[n++] = (raster_window_t){0, 0, bw, bh};
    const int64_t uw = W > 300 ? 257 : (W + 1) / 2, uh = H > 300 ? 211 : (H + 1) / 2;
    w[n++] = (raster_window_t){(W - uw) / 3, (H - uh) / 2, uw, uh};
    const int64_t ew = W > 37 ? 37 : W, eh = H > 29 ? 29 : H;
    w[n++] = (raster_window_t){W - ew, H - eh, ew, eh};
    w[n++] = (raster_window_t){0, H - 1, W, 1};
    w[n++] = (raster_window_t){W - 1, 0, 1, H};
    return n;
}

static void run_fixture(const char *name, int reader)
{
    const char *path = fixture_path(name);
    raster_dataset_t *ds = open_with_reader(path, reader);
    raster_info_t in;
    raster_dataset_info(ds, &in);
    raster_window_t wins[16];
    const int nw = window_set(&in, wins);
    const int nb = in.band_count;
    int orders[4][4] = {{1, 2, 3, 4}, {nb, nb - 1, nb - 2, nb - 3}, {nb}, {1, 1}};
    const int order_len[4] = {nb > 4 ? 4 : nb, nb > 4 ? 4 : nb, 1, 2};
    const raster_dtype_t dts[] = {(raster_dtype_t)-1, RASTER_F32, RASTER_U8, RASTER_I16, RASTER_F16,
                                  RASTER_I8, RASTER_U32, RASTER_F64};
    const int scale = matrix_scale();
    int combo_no = 0;
    int all_bands[64];
    for (int k = 0; k < nb && k < 64; k++)
        all_bands[k] = k + 1;
    for (int wi = 0; wi < nw; wi++) {
        void *oracle = NULL;
        raster_dtype_t odt;
        ck_assert_msg(gdal_oracle_read(path, wins[wi], all_bands, nb, &oracle, &odt) == 0, "%s: oracle failed",
                      path);
        for (int oi = 0; oi < 4; oi++)
            for (int di = 0; di < (int)(sizeof dts / sizeof dts[0]); di++) {
                /* Full products only for the file dtype; other dtypes sample the windows. */
                if (di > 0 && (wi + oi + di) % 3 != 0)
                    continue;
                if (combo_no++ % scale != 0)
                    continue;
                combo_t cb = {wins[wi], {0}, order_len[oi], dts[di], di == 1, (layout_t)((wi + oi + di) % 3)};
                memcpy(cb.bands, orders[oi], sizeof cb.bands);
                char label[96];
                snprintf(label, sizeof label, "reader %d, order %d, dtype %s%s, layout %d", reader, oi,
                         (int)cb.dt < 0 ? "file" : raster_dtype_name(cb.dt), cb.scaled ? " scaled" : "",
                         (int)cb.layout);
                check_combo(ds, path, label, &cb, oracle, odt);
            }
        free(oracle);
    }
    ck_assert_msg(n_checked > 0, "%s: no combination was checked", path);
    raster_close(ds);
}

static fixture_t *fixtures;
static int fixture_count;

START_TEST(gdal_reader_matches_oracle)
{
    if (fixtures[_i].malformed)
        return;
    run_fixture(fixtures[_i].name, RASTER_READER_GDAL);
}
END_TEST

START_TEST(default_reader_matches_oracle)
{
    if (fixtures[_i].malformed)
        return;
    run_fixture(fixtures[_i].name, -1);
}
END_TEST

/* Boundless windows on each side and fully outside: inside equals the
 * oracle, outside is the fill converted to the destination dtype. */
static void check_boundless(int reader)
{
    const char *path = fixture_path(fixtures[0].name);
    for (int i = 0; i < fixture_count; i++)
        if (!fixtures[i].malformed && strstr(fixtures[i].name, "u16")) {
            path = fixture_path(fixtures[i].name);
            break;
        }
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = reader;
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open_ex(path, &oo, &ds), RASTER_OK);
    raster_info_t in;
    raster_dataset_info(ds, &in);
    const int64_t W = in.width, H = in.height;
    const raster_window_t wins[] = {
        {-10, 5, 40, 30}, {W - 15, 5, 40, 30}, {5, -12, 30, 40}, {5, H - 7, 30, 40},
        {-5, -5, W + 10, H + 10}, {W + 100, H + 100, 16, 16}, {-50, -50, 20, 20}};
    for (size_t wi = 0; wi < sizeof wins / sizeof wins[0]; wi++) {
        const raster_window_t w = wins[wi];
        const int C = in.band_count;
        guarded_t g = guarded_alloc((size_t)(w.width * w.height * C) * 4);
        const raster_view_t v = raster_view_hwc(g.data, RASTER_F32, w.height, w.width, C);
        raster_read_options_t opt;
        raster_read_options_init(&opt);
        opt.boundless = 1;
        opt.fill_value = -7.5;
        ck_assert_msg(raster_read_into(ds, w, &opt, &v) == RASTER_OK, "%s", raster_last_error());
        ck_assert(guarded_intact(&g));
        /* Mask: 0 outside, the oracle's mask inside. */
        guarded_t gm = guarded_alloc((size_t)(w.width * w.height));
        const raster_view_t mv = raster_view_hwc(gm.data, RASTER_U8, w.height, w.width, 1);
        ck_assert_msg(raster_read_mask_into(ds, w, &opt, &mv) == RASTER_OK, "%s", raster_last_error());
        ck_assert(guarded_intact(&gm));
        const int64_t c0 = w.col_off < 0 ? 0 : w.col_off, r0 = w.row_off < 0 ? 0 : w.row_off;
        const int64_t c1 = w.col_off + w.width < W ? w.col_off + w.width : W;
        const int64_t r1 = w.row_off + w.height < H ? w.row_off + w.height : H;
        void *oracle = NULL;
        uint8_t *omask = NULL;
        raster_dtype_t odt;
        const int has_inner = c0 < c1 && r0 < r1;
        if (has_inner) {
            const raster_window_t iw = {c0, r0, c1 - c0, r1 - r0};
            int bands[16];
            for (int k = 0; k < C; k++)
                bands[k] = k + 1;
            ck_assert_int_eq(gdal_oracle_read(path, iw, bands, C, &oracle, &odt), 0);
            ck_assert_int_eq(gdal_oracle_mask(path, iw, 0, &omask), 0);
        }
        const float *got = (const float *)g.data;
        for (int64_t r = 0; r < w.height; r++)
            for (int64_t c = 0; c < w.width; c++) {
                const int64_t fr = w.row_off + r, fc = w.col_off + c;
                const int inside = fr >= 0 && fr < H && fc >= 0 && fc < W;
                const uint8_t m = gm.data[r * w.width + c];
                for (int k = 0; k < C; k++) {
                    const float x = got[(r * w.width + c) * C + k];
                    if (!inside) {
                        if (x != -7.5f)
                            ck_abort_msg("outside pixel (%lld,%lld) = %g", (long long)r, (long long)c, x);
                    } else {
                        const int64_t ir = fr - r0, ic = fc - c0, iwid = c1 - c0, ih = r1 - r0;
                        const double o = load_elem((const uint8_t *)oracle +
                                                       ((k * ih + ir) * iwid + ic) * (int64_t)raster_dtype_size(odt),
                                                   odt);
                        if (x != (float)o)
                            ck_abort_msg("inside pixel (%lld,%lld,%d) = %g want %g", (long long)r, (long long)c, k,
                                         x, o);
                    }
                }
                const uint8_t want_m = inside ? omask[(fr - r0) * (c1 - c0) + (fc - c0)] : 0;
                if (m != want_m)
                    ck_abort_msg("mask at (%lld,%lld) = %d want %d", (long long)r, (long long)c, m, want_m);
            }
        free(oracle);
        free(omask);
        guarded_free(&g);
        guarded_free(&gm);
    }
    raster_close(ds);
}

START_TEST(manifest_present)
{
    ck_assert_msg(fixture_count >= 20, "only %d fixtures in the manifest: run `make fixtures`", fixture_count);
}
END_TEST

START_TEST(boundless_gdal) { check_boundless(RASTER_READER_GDAL); }
END_TEST
START_TEST(boundless_default) { check_boundless(-1); }
END_TEST

/* Known answers for the conversion rules themselves, independent of files. */
START_TEST(float16_and_int8_rules)
{
    const double in[] = {1.0 + 1.0 / 2048, 1.0 + 3.0 / 2048, 65519.0, 65520.0, 5.960464477539063e-08,
                         2.9802322387695312e-08, -0.0, 1e300, -2.5, 2.5, NAN};
    const uint16_t f16[] = {0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x8000, 0x7c00, 0xc100, 0x4100};
    const int8_t i8[] = {1, 1, 127, 127, 0, 0, 0, 127, -3, 3, 0};
    /* Through a one-band f64 in-memory raster read into f16 / i8 views. */
    GDALAllRegister();
    GDALDriverH mem = GDALGetDriverByName("GTiff");
    const char *path = "/vsimem/rules.tif";
    GDALDatasetH h = GDALCreate(mem, path, 11, 1, 1, GDT_Float64, NULL);
    double row[11];
    memcpy(row, in, sizeof row);
    ck_assert_int_eq(GDALRasterIO(GDALGetRasterBand(h, 1), GF_Write, 0, 0, 11, 1, row, 11, 1, GDT_Float64, 0, 0), CE_None);
    GDALClose(h);
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open(path, &ds), RASTER_OK);
    uint16_t got16[11];
    int8_t got8[11];
    raster_view_t v = raster_view_hwc(got16, RASTER_F16, 1, 11, 1);
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){0, 0, 11, 1}, NULL, &v), RASTER_OK);
    for (int i = 0; i < 10; i++)
        ck_assert_msg(got16[i] == f16[i], "f16(%g) = %04x want %04x", in[i], got16[i], f16[i]);
    ck_assert((got16[10] & 0x7c00) == 0x7c00 && (got16[10] & 0x3ff) != 0);
    v = raster_view_hwc(got8, RASTER_I8, 1, 11, 1);
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){0, 0, 11, 1}, NULL, &v), RASTER_OK);
    for (int i = 0; i < 11; i++)
        ck_assert_msg(got8[i] == i8[i], "i8(%g) = %d want %d", in[i], got8[i], i8[i]);
    raster_close(ds);
    VSIUnlink(path);
}
END_TEST

static Suite *read_matrix_suite(void)
{
    fixture_count = fixtures_load(&fixtures);
    Suite *s = suite_create("read_matrix");
    TCase *tc = tcase_create("matrix");
    tcase_set_timeout(tc, 600);
    if (fixture_count > 0) {
        tcase_add_loop_test(tc, gdal_reader_matches_oracle, 0, fixture_count);
        tcase_add_loop_test(tc, default_reader_matches_oracle, 0, fixture_count);
        tcase_add_test(tc, boundless_gdal);
        tcase_add_test(tc, boundless_default);
    }
    tcase_add_test(tc, manifest_present);
    tcase_add_test(tc, float16_and_int8_rules);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(read_matrix_suite)
