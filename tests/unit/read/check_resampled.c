/*
 * check_resampled.c - raster_read_resampled_into(): the same pixels as
 * GDALDatasetRasterIOEx called the way rasterio calls it (float window, its
 * truncation as the integer window, the output size as the buffer's), for
 * both readers, into strided sub-views; dtypes GDAL 3.6 lacks and
 * scale/offset go through float64 with our conversion; every bad argument
 * is a specific status with a message, and nothing outside dst is written;
 * resampled masks equal GDAL's mask bands resampled the same way;
 * raster_read_window_into() picks the plain or the resampled read.
 * (tests/python/read/test_resampled.py compares with rasterio itself.)
 */
#include "test_util.h"

#include <gdal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NAME "u16_deflate_pred2_tile256_pixel_3b_700x531.tif"

/* GDAL's own answer: the call rasterio makes, into a compact HWC buffer. */
static void *
oracle(const char *path, raster_window_f_t w, int alg, int oh, int ow, const int *bands, int nb,
       GDALDataType type, int size)
{
    GDALDatasetH h = GDALOpen(path, GA_ReadOnly);
    ck_assert_ptr_nonnull(h);
    void *buf = malloc((size_t)oh * ow * nb * size);
    GDALRasterIOExtraArg extra;
    INIT_RASTERIO_EXTRA_ARG(extra);
    extra.eResampleAlg = (GDALRIOResampleAlg)alg;
    extra.bFloatingPointWindowValidity = TRUE;
    extra.dfXOff = w.col_off;
    extra.dfYOff = w.row_off;
    extra.dfXSize = w.width;
    extra.dfYSize = w.height;
    ck_assert_int_eq(GDALDatasetRasterIOEx(h, GF_Read, (int)w.col_off, (int)w.row_off, (int)w.width,
                                           (int)w.height, buf, ow, oh, type, nb, (int *)bands,
                                           (GSpacing)nb * size, (GSpacing)ow * nb * size, size, &extra),
                     CE_None);
    GDALClose(h);
    return buf;
}

START_TEST(equals_gdal_for_both_readers_into_sub_views)
{
    GDALAllRegister();
    const char *path = fixture_path(NAME);
    const raster_window_f_t wins[] = {{0, 0, 700, 531}, {13.5, 9.25, 120.5, 90.75}, {600, 500, 100, 31}};
    const int shapes[][2] = {{50, 70}, {1, 1}, {300, 211}, {31, 100}};
    const int algs[] = {RASTER_RESAMPLE_NEAREST, RASTER_RESAMPLE_BILINEAR, RASTER_RESAMPLE_CUBIC,
                        RASTER_RESAMPLE_AVERAGE, RASTER_RESAMPLE_MODE, RASTER_RESAMPLE_LANCZOS};
    const int bands[] = {3, 1};
    /* Under ASan and valgrind (RASTER_MATRIX_SCALE > 1): one window, two shapes. */
    const char *scale = getenv("RASTER_MATRIX_SCALE");
    const int light = scale != NULL && atoi(scale) > 1;
    const size_t nwins = light ? 1 : sizeof wins / sizeof *wins;
    const size_t nshapes = light ? 2 : sizeof shapes / sizeof *shapes;
    for (int reader = 0; reader < 2; reader++) {
        raster_dataset_t *ds = open_with_reader(path, reader);
        for (size_t wi = light ? 1 : 0; wi < (light ? 2 : nwins); wi++)
            for (size_t si = 0; si < nshapes; si++)
                for (size_t ai = 0; ai < sizeof algs / sizeof *algs; ai++) {
                    const int oh = shapes[si][0], ow = shapes[si][1];
                    /* GDAL's mode is quadratic in the pixels per output pixel
                     * (40 s for 700x531 -> 1x1, rasterio's too): not here. */
                    if (algs[ai] == RASTER_RESAMPLE_MODE &&
                        wins[wi].width * wins[wi].height > 2000.0 * oh * ow)
                        continue;
                    uint16_t *want = oracle(path, wins[wi], algs[ai], oh, ow, bands, 2, GDT_UInt16, 2);
                    /* A sub-view two pixels in from the corner of a bigger guarded buffer. */
                    const int64_t bh = oh + 3, bw = ow + 5;
                    guarded_t g = guarded_alloc((size_t)(bh * bw * 2 * 2));
                    raster_view_t big = raster_view_hwc(g.data, RASTER_U16, bh, bw, 2);
                    raster_view_t v = big;
                    v.data = (uint8_t *)g.data + 2 * big.row_stride + 2 * big.col_stride;
                    v.height = oh;
                    v.width = ow;
                    raster_read_options_t o;
                    raster_read_options_init(&o);
                    o.bands = bands;
                    o.band_count = 2;
                    if (raster_read_resampled_into(ds, wins[wi], (raster_resampling_t)algs[ai], &o, &v) != RASTER_OK)
                        ck_abort_msg("reader %d: %s", reader, raster_last_error());
                    for (int y = 0; y < oh; y++)
                        if (memcmp((uint8_t *)v.data + y * v.row_stride, want + (size_t)y * ow * 2,
                                   (size_t)ow * 2 * 2) != 0)
                            ck_abort_msg("reader %d, window %zu, shape %dx%d, resampling %d: row %d "
                                         "differs from GDAL", reader, wi, oh, ow, algs[ai], y);
                    ck_assert(guarded_intact(&g));
                    guarded_free(&g);
                    free(want);
                }
        raster_close(ds);
    }
}
END_TEST

/* int8, float16 and scale/offset: resampled in float64 by GDAL, then ours. */
START_TEST(staged_dtypes_and_scale_follow_the_float64_result)
{
    raster_dataset_t *ds = open_with_reader(fixture_path(NAME), RASTER_READER_NATIVE_TIFF);
    const raster_window_f_t w = {10.5, 20, 200, 150.5};
    const int oh = 40, ow = 55, nb = 3;
    double *f64 = malloc((size_t)oh * ow * nb * 8);
    raster_view_t vf = raster_view_hwc(f64, RASTER_F64, oh, ow, nb);
    ck_assert_int_eq(raster_read_resampled_into(ds, w, RASTER_RESAMPLE_BILINEAR, NULL, &vf), RASTER_OK);
    const double scale[3] = {1.0 / 257, 0.5, 2.0}, offset[3] = {-100, 0.25, -3};
    float *f32 = malloc((size_t)oh * ow * nb * 4);
    raster_view_t v32 = raster_view_hwc(f32, RASTER_F32, oh, ow, nb);
    raster_read_options_t o;
    raster_read_options_init(&o);
    o.scale = scale;
    o.offset = offset;
    ck_assert_int_eq(raster_read_resampled_into(ds, w, RASTER_RESAMPLE_BILINEAR, &o, &v32), RASTER_OK);
    int8_t *i8 = malloc((size_t)oh * ow * nb);
    raster_view_t v8 = raster_view_hwc(i8, RASTER_I8, oh, ow, nb);
    ck_assert_int_eq(raster_read_resampled_into(ds, w, RASTER_RESAMPLE_BILINEAR, &o, &v8), RASTER_OK);
    for (int i = 0; i < oh * ow * nb; i++) {
        const double y = f64[i] * scale[i % nb] + offset[i % nb];
        if (f32[i] != (float)y)
            ck_abort_msg("float32 element %d: %.9g, want %.9g", i, (double)f32[i], (double)(float)y);
        /* Round half away from zero, saturate (GDAL's rule, as place.c). */
        const double r = y < 0 ? ceil(y - 0.5) : floor(y + 0.5);
        const int want = r < -128 ? -128 : r > 127 ? 127 : (int)r;
        if (i8[i] != want)
            ck_abort_msg("int8 element %d: %d, want %d (from %.9g)", i, i8[i], want, y);
    }
    free(f64);
    free(f32);
    free(i8);
    raster_close(ds);
}
END_TEST

START_TEST(bad_arguments_are_named_and_write_nothing)
{
    raster_dataset_t *ds = open_with_reader(fixture_path(NAME), RASTER_READER_NATIVE_TIFF);
    guarded_t g = guarded_alloc(10 * 10 * 3 * 2);
    memset(g.data, 0x3c, g.nbytes);
    raster_view_t v = raster_view_hwc(g.data, RASTER_U16, 10, 10, 3);
    raster_read_options_t o;
    raster_read_options_init(&o);
    const struct {
        raster_window_f_t w;
        int alg, boundless;
        raster_status_t st;
        const char *msg;
    } cases[] = {
        {{0, 0, 100, 100}, 8, 0, RASTER_E_INVALID_ARG, "resampling 8"},
        {{0, 0, 100, 100}, -1, 0, RASTER_E_INVALID_ARG, "resampling -1"},
        {{-1e300, 0, 100, 100}, 0, 1, RASTER_E_BOUNDS, "absurdly large"},
        {{0, 0, 1e12, 100}, 1, 1, RASTER_E_BOUNDS, "absurdly large"},
        {{NAN, 0, 100, 100}, 0, 0, RASTER_E_INVALID_ARG, "finite"},
        {{0, 0, INFINITY, 100}, 0, 0, RASTER_E_INVALID_ARG, "finite"},
        {{0, 0, 0, 100}, 0, 0, RASTER_E_INVALID_ARG, "positive"},   /* slivers (0.5) read, as GDAL 3.10 */
        {{-0.5, 0, 100, 100}, 0, 0, RASTER_E_BOUNDS, "outside"},
        {{650, 0, 50.5, 100}, 0, 0, RASTER_E_BOUNDS, "outside"},
        {{0, 500, 100, 32}, 0, 0, RASTER_E_BOUNDS, "outside"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        o.boundless = cases[i].boundless;
        const raster_status_t st = raster_read_resampled_into(ds, cases[i].w, (raster_resampling_t)cases[i].alg,
                                                              &o, &v);
        ck_assert_msg(st == cases[i].st, "case %zu: %s, want %s", i, raster_status_str(st),
                      raster_status_str(cases[i].st));
        ck_assert_msg(strstr(raster_last_error(), cases[i].msg), "case %zu: message '%s' lacks '%s'", i,
                      raster_last_error(), cases[i].msg);
    }
    o.boundless = 0;
    raster_view_t two = raster_view_hwc(g.data, RASTER_U16, 10, 10, 2);
    ck_assert_int_eq(raster_read_resampled_into(ds, (raster_window_f_t){0, 0, 9, 9}, 0, &o, &two),
                     RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "needs 3 channel(s)"));
    int band9 = 9;
    o.bands = &band9;
    o.band_count = 1;
    raster_view_t one = raster_view_hwc(g.data, RASTER_U16, 10, 10, 1);
    ck_assert_int_eq(raster_read_resampled_into(ds, (raster_window_f_t){0, 0, 9, 9}, 0, &o, &one),
                     RASTER_E_BOUNDS);
    for (size_t i = 0; i < g.nbytes; i++)
        if (g.data[i] != 0x3c)
            ck_abort_msg("byte %zu of dst was written by a failed read", i);
    ck_assert(guarded_intact(&g));
    raster_dataset_retain(ds);        /* a holder that outlives close */
    raster_close(ds);
    ck_assert_int_eq(raster_read_resampled_into(ds, (raster_window_f_t){0, 0, 9, 9}, 0, NULL, &v),
                     RASTER_E_CLOSED);
    raster_dataset_release(ds);
    guarded_free(&g);
}
END_TEST

/* Masks: each band's GDAL mask resampled the same way; the dataset mask of a
 * nodata file with several bands is 255 where any band's is nonzero. */
START_TEST(masks_equal_gdal_mask_bands)
{
    GDALAllRegister();
    const char *path = fixture_path("f32_lzw_pred1_strip16_pixel_3b_700x531_nodata_m3.4e38.tif");
    raster_dataset_t *ds = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
    const raster_window_f_t w = {7.5, 5, 300, 200.25};
    const int oh = 61, ow = 97;
    GDALDatasetH h = GDALOpen(path, GA_ReadOnly);
    ck_assert_ptr_nonnull(h);
    uint8_t want[3][61 * 97], any[61 * 97], got[61 * 97];
    const int algs[] = {RASTER_RESAMPLE_NEAREST, RASTER_RESAMPLE_AVERAGE};
    for (int ai = 0; ai < 2; ai++) {
        const int alg = algs[ai];
        GDALRasterIOExtraArg extra;
        INIT_RASTERIO_EXTRA_ARG(extra);
        extra.eResampleAlg = (GDALRIOResampleAlg)alg;
        extra.bFloatingPointWindowValidity = TRUE;
        extra.dfXOff = w.col_off;
        extra.dfYOff = w.row_off;
        extra.dfXSize = w.width;
        extra.dfYSize = w.height;
        for (int b = 0; b < 3; b++)
            ck_assert_int_eq(GDALRasterIOEx(GDALGetMaskBand(GDALGetRasterBand(h, b + 1)), GF_Read, 7, 5, 300,
                                            200, want[b], ow, oh, GDT_Byte, 0, 0, &extra),
                             CE_None);
        for (int i = 0; i < oh * ow; i++)
            any[i] = (want[0][i] | want[1][i] | want[2][i]) ? 255 : 0;
        raster_view_t v = raster_view_hwc(got, RASTER_U8, oh, ow, 1);
        for (int b = 1; b <= 3; b++) {
            raster_read_options_t o;
            raster_read_options_init(&o);
            o.bands = &b;
            o.band_count = 1;
            ck_assert_int_eq(raster_read_mask_resampled_into(ds, w, (raster_resampling_t)alg, &o, &v),
                             RASTER_OK);
            ck_assert_msg(memcmp(got, want[b - 1], sizeof got) == 0, "band %d mask, resampling %d", b, alg);
        }
        ck_assert_int_eq(raster_read_mask_resampled_into(ds, w, (raster_resampling_t)alg, NULL, &v),
                         RASTER_OK);
        ck_assert_msg(memcmp(got, any, sizeof got) == 0, "dataset mask, resampling %d", alg);
    }
    GDALClose(h);
    /* Bad destinations. */
    uint16_t wide[4];
    raster_view_t v16 = raster_view_hwc(wide, RASTER_U16, 2, 2, 1);
    ck_assert_int_eq(raster_read_mask_resampled_into(ds, w, 0, NULL, &v16), RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "uint8"));
    raster_view_t v3 = raster_view_hwc(got, RASTER_U8, 2, 2, 3);
    ck_assert_int_eq(raster_read_mask_resampled_into(ds, w, 0, NULL, &v3), RASTER_E_INVALID_ARG);
    raster_close(ds);
}
END_TEST

/* raster_read_window_into() decides plain or resampled: a whole-pixel
 * window at its own size, or whole lengths with fractional offsets read
 * nearest, equal raster_read_into() of the rounded window, with boundless
 * too; fractional offsets with another method, fractional lengths or
 * another size equal GDAL's float-window call (rasterio's), even at the
 * window's own size (issue 25: they were read at the rounded window).  The
 * masks entry decides the same way. */
START_TEST(window_entry_decides_plain_or_resampled)
{
    GDALAllRegister();
    const char *path = fixture_path(NAME);
    const int bands[] = {3, 1};
    raster_read_options_t o;
    raster_read_options_init(&o);
    o.bands = bands;
    o.band_count = 2;
    enum { H = 40, W = 50 };
    uint16_t got[H * W * 2], want[H * W * 2];
    const raster_view_t vg = raster_view_hwc(got, RASTER_U16, H, W, 2);
    const raster_view_t vw = raster_view_hwc(want, RASTER_U16, H, W, 2);
    for (int reader = 0; reader < 2; reader++) {
        raster_dataset_t *ds = open_with_reader(path, reader);
        /* plain: whole pixels, and fractional offsets read nearest (GDAL's rule: floor(x + 0.5)) */
        const raster_window_f_t plain[] = {{13, 9, W, H}, {13.4, 9.5, W, H}, {12.6, 8.5, W, H}};
        for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
            ck_assert_int_eq(raster_read_window_into(ds, plain[i], RASTER_RESAMPLE_NEAREST, &o, &vg), RASTER_OK);
            const raster_window_t r = {(int64_t)floor(plain[i].col_off + 0.5),
                                       (int64_t)floor(plain[i].row_off + 0.5), W, H};
            ck_assert_int_eq(raster_read_into(ds, r, &o, &vw), RASTER_OK);
            ck_assert_msg(memcmp(got, want, sizeof got) == 0, "reader %d, plain window %zu", reader, i);
            uint16_t *gd = oracle(path, plain[i], RASTER_RESAMPLE_NEAREST, H, W, bands, 2, GDT_UInt16, 2);
            ck_assert_msg(memcmp(got, gd, sizeof got) == 0, "reader %d, window %zu: not GDAL's nearest",
                          reader, i);
            free(gd);
        }
        /* boundless is a plain read (outside filled) when it is whole pixels */
        raster_read_options_t ob = o;
        ob.boundless = 1;
        ob.fill_value = 7;
        const raster_window_f_t edge = {-10, -5, W, H};
        ck_assert_int_eq(raster_read_window_into(ds, edge, RASTER_RESAMPLE_BILINEAR, &ob, &vg), RASTER_OK);
        ck_assert_int_eq(raster_read_into(ds, (raster_window_t){-10, -5, W, H}, &ob, &vw), RASTER_OK);
        ck_assert(memcmp(got, want, sizeof got) == 0);
        /* resampled: GDAL's float-window call, at the window's own size too */
        const raster_window_f_t res[] = {{13.4, 9.5, W, H}, {100.3, 200.6, W, H}, {13, 9, W + 0.5, H},
                                         {13, 9, 2 * W, 2 * H}};
        const int algs[] = {RASTER_RESAMPLE_BILINEAR, RASTER_RESAMPLE_CUBIC, RASTER_RESAMPLE_NEAREST,
                            RASTER_RESAMPLE_AVERAGE};
        for (size_t i = 0; i < sizeof res / sizeof *res; i++) {
            ck_assert_int_eq(raster_read_window_into(ds, res[i], (raster_resampling_t)algs[i], &o, &vg),
                             RASTER_OK);
            uint16_t *gd = oracle(path, res[i], algs[i], H, W, bands, 2, GDT_UInt16, 2);
            ck_assert_msg(memcmp(got, gd, sizeof got) == 0, "reader %d, resampled window %zu", reader, i);
            free(gd);
        }
        /* masks: the same decision (a file without masks: all 255 either way,
         * so compare with the explicit entries) */
        raster_masks_options_t mo;
        raster_masks_options_init(&mo);
        mo.rule = RASTER_MASKS_DATASET;
        uint8_t mg[H * W], mw[H * W];
        const raster_view_t mvg = raster_view_hwc(mg, RASTER_U8, H, W, 1);
        const raster_view_t mvw = raster_view_hwc(mw, RASTER_U8, H, W, 1);
        int nm1 = -1, nm2 = -1;
        ck_assert_int_eq(raster_read_masks_window_into(ds, res[1], RASTER_RESAMPLE_BILINEAR, &mo, NULL, &mvg, &nm1),
                         RASTER_OK);
        ck_assert_int_eq(raster_read_masks_resampled_into(ds, res[1], RASTER_RESAMPLE_BILINEAR, &mo, &mvw, &nm2),
                         RASTER_OK);
        ck_assert(memcmp(mg, mw, sizeof mg) == 0 && nm1 == nm2);
        ck_assert_int_eq(raster_read_masks_window_into(ds, plain[1], RASTER_RESAMPLE_NEAREST, &mo, NULL, &mvg, &nm1),
                         RASTER_OK);
        ck_assert_int_eq(raster_read_masks_into(ds, (raster_window_t){13, 10, W, H}, &mo, NULL, &mvw, &nm2),
                         RASTER_OK);
        ck_assert(memcmp(mg, mw, sizeof mg) == 0 && nm1 == nm2);
        raster_close(ds);
    }
}
END_TEST

/* Boundless resampled reads (rasterio's VRT over the window): a window
 * inside the raster gives the plain resampled read's pixels, the outside is
 * the fill value (0 with fill_none), and the part inside equals GDAL's read
 * of that part where the output grid maps onto it in whole pixels. */
START_TEST(boundless_resampled_reads)
{
    GDALAllRegister();
    const char *path = fixture_path(NAME);
    enum { H = 30, W = 40 };
    uint16_t got[H * W * 3], want[H * W * 3];
    const raster_view_t vg = raster_view_hwc(got, RASTER_U16, H, W, 3);
    const raster_view_t vw = raster_view_hwc(want, RASTER_U16, H, W, 3);
    raster_read_options_t o, ob;
    raster_read_options_init(&o);
    ob = o;
    ob.boundless = 1;
    ob.fill_value = 7;
    for (int reader = 0; reader < 2; reader++) {
        raster_dataset_t *ds = open_with_reader(path, reader);
        const raster_window_f_t inside = {7.5, 5, 300, 200.25};
        for (int alg = 0; alg <= RASTER_RESAMPLE_CUBIC; alg++) {
            ck_assert_int_eq(raster_read_window_into(ds, inside, (raster_resampling_t)alg, &ob, &vg), RASTER_OK);
            ck_assert_int_eq(raster_read_window_into(ds, inside, (raster_resampling_t)alg, &o, &vw), RASTER_OK);
            ck_assert_msg(memcmp(got, want, sizeof got) == 0, "reader %d, alg %d", reader, alg);
        }
        /* wholly outside: the fill value, or 0 without one */
        const raster_window_f_t outside = {800.5, -100, 60, 45};
        ck_assert_int_eq(raster_read_window_into(ds, outside, RASTER_RESAMPLE_BILINEAR, &ob, &vg), RASTER_OK);
        for (size_t i = 0; i < sizeof got / sizeof *got; i++)
            ck_assert_int_eq(got[i], 7);
        raster_read_options_t none = ob;
        none.fill_none = 1;
        ck_assert_int_eq(raster_read_window_into(ds, outside, RASTER_RESAMPLE_BILINEAR, &none, &vg), RASTER_OK);
        for (size_t i = 0; i < sizeof got / sizeof *got; i++)
            ck_assert_int_eq(got[i], 0);
        /* across the top-left corner, half size (2 source pixels per output
         * pixel, nearest): the first 5 rows and columns are outside, the rest
         * GDAL's nearest read of (0, 0, 70, 50) at half size */
        const raster_window_f_t corner = {-10, -10, 2 * W, 2 * H};
        ck_assert_int_eq(raster_read_window_into(ds, corner, RASTER_RESAMPLE_NEAREST, &ob, &vg), RASTER_OK);
        const int bands[] = {1, 2, 3};
        uint16_t *gd = oracle(path, (raster_window_f_t){0, 0, 2 * W - 10, 2 * H - 10}, 0, H - 5, W - 5, bands, 3,
                              GDT_UInt16, 2);
        for (int r = 0; r < H; r++)
            for (int c = 0; c < W; c++)
                for (int k = 0; k < 3; k++) {
                    const uint16_t v = got[(r * W + c) * 3 + k];
                    const uint16_t w = (r < 5 || c < 5) ? 7 : gd[((r - 5) * (W - 5) + (c - 5)) * 3 + k];
                    ck_assert_msg(v == w, "reader %d, (%d, %d, %d): %u, want %u", reader, r, c, k, v, w);
                }
        free(gd);
        /* its masks, every rule (the file has none: 0 outside, 255 inside;
         * read_masks() and dataset_mask() through rasterio's blank raster) */
        for (int rule = RASTER_MASKS_BANDS; rule <= RASTER_MASKS_DATASET; rule++) {
            raster_masks_options_t mo;
            raster_masks_options_init(&mo);
            mo.rule = rule;
            mo.boundless = 1;
            const int nch = rule == RASTER_MASKS_DATASET ? 1 : 3;
            uint8_t m[H * W * 3];
            memset(m, 0x3c, sizeof m);
            const raster_view_t mv = raster_view_hwc(m, RASTER_U8, H, W, nch);
            int no_mask = -1;
            ck_assert_int_eq(raster_read_masks_window_into(ds, corner, RASTER_RESAMPLE_NEAREST, &mo, NULL, &mv,
                                                           &no_mask),
                             RASTER_OK);
            ck_assert_int_eq(no_mask, 0);
            for (int r = 0; r < H; r++)
                for (int c = 0; c < W; c++)
                    for (int k = 0; k < nch; k++)
                        ck_assert_msg(m[(r * W + c) * nch + k] == ((r < 5 || c < 5) ? 0 : 255),
                                      "reader %d, rule %d, (%d, %d, %d): %u", reader, rule, r, c, k,
                                      m[(r * W + c) * nch + k]);
        }
        raster_close(ds);
    }
}
END_TEST

static Suite *
resampled_suite(void)
{
    Suite *s = suite_create("resampled");
    TCase *tc = tcase_create("resampled");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, equals_gdal_for_both_readers_into_sub_views);
    tcase_add_test(tc, staged_dtypes_and_scale_follow_the_float64_result);
    tcase_add_test(tc, bad_arguments_are_named_and_write_nothing);
    tcase_add_test(tc, masks_equal_gdal_mask_bands);
    tcase_add_test(tc, window_entry_decides_plain_or_resampled);
    tcase_add_test(tc, boundless_resampled_reads);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(resampled_suite)
