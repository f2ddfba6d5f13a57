/*
 * check_mask.c - raster_read_mask_into() against GDAL's mask bands for every
 * readable fixture: each band's own mask (read_masks) and the dataset mask
 * with rasterio's precedence (per-dataset mask, RGBA band 4, OR of bands),
 * on a window set, into compact and strided destinations.  Then
 * raster_read_masks_into(), a whole read's masks in one call: per-band masks
 * equal GDAL's, the boundless outside, the nodata-value rule against GDAL's
 * pixels, and the same masks whether the read's pixels are passed, passed in
 * a narrowing dtype, or not passed.
 */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static fixture_t *fixtures;
static int fixture_count;

static void check_mask(raster_dataset_t *ds, const char *path, raster_window_t w, int band, int strided)
{
    uint8_t *want = NULL;
    ck_assert_msg(gdal_oracle_mask(path, w, band, &want) == 0, "%s: oracle mask failed", path);
    const int64_t pitch = strided ? w.width * 3 + 5 : w.width;
    guarded_t g = guarded_alloc((size_t)(pitch * w.height));
    memset(g.data, 0x77, g.nbytes);
    raster_view_t v = raster_view_hwc(g.data, RASTER_U8, w.height, w.width, 1);
    if (strided)
        v.row_stride = pitch, v.col_stride = 3;
    raster_read_options_t opt;
    raster_read_options_init(&opt);
    opt.bands = &band;
    opt.band_count = band > 0 ? 1 : 0;
    if (band == 0)
        opt.bands = NULL;
    ck_assert_msg(raster_read_mask_into(ds, w, &opt, &v) == RASTER_OK, "%s band %d: %s", path, band,
                  raster_last_error());
    ck_assert(guarded_intact(&g));
    for (int64_t r = 0; r < w.height; r++)
        for (int64_t c = 0; c < w.width; c++)
            if (g.data[r * v.row_stride + c * v.col_stride] != want[r * w.width + c])
                ck_abort_msg("%s band %d window (%lld,%lld %lldx%lld) at (%lld,%lld): got %d want %d", path, band,
                             (long long)w.col_off, (long long)w.row_off, (long long)w.width, (long long)w.height,
                             (long long)r, (long long)c, g.data[r * v.row_stride + c * v.col_stride],
                             want[r * w.width + c]);
    if (strided)   /* bytes between the strided elements stay untouched */
        for (int64_t r = 0; r < w.height; r++)
            for (int64_t i = 0; i < pitch; i++)
                if ((i % 3 != 0 || i / 3 >= w.width) && g.data[r * pitch + i] != 0x77)
                    ck_abort_msg("%s: wrote between strided mask elements at row %lld byte %lld", path,
                                 (long long)r, (long long)i);
    guarded_free(&g);
    free(want);
}

START_TEST(masks_match_gdal)
{
    if (fixtures[_i].malformed)
        return;
    const char *path = fixture_path(fixtures[_i].name);
    raster_dataset_t *ds = NULL;
    ck_assert_msg(raster_open(path, &ds) == RASTER_OK, "%s", raster_last_error());
    raster_info_t in;
    raster_dataset_info(ds, &in);
    const int64_t W = in.width, H = in.height;
    const int64_t uw = W > 200 ? 173 : W, uh = H > 200 ? 151 : H;
    const raster_window_t wins[] = {{0, 0, W, H}, {(W - uw) / 2, (H - uh) / 3, uw, uh}, {W - 1, H - 1, 1, 1}};
    /* Under ASan and valgrind (RASTER_MATRIX_SCALE > 1) the whole-raster
     * window is read for the dataset mask and the last band only (under
     * valgrind, every band's whole mask made this suite the slowest); every
     * band still meets the other two windows, and every window both layouts. */
    const char *scale = getenv("RASTER_MATRIX_SCALE");
    const int sampled = scale != NULL && atoi(scale) > 1;
    const int last = in.band_count < 4 ? in.band_count : 4;
    for (size_t wi = 0; wi < 3; wi++)
        for (int band = 0; band <= last; band++) {
            if (sampled && wi == 0 && band != 0 && band != last)
                continue;
            check_mask(ds, path, wins[wi], band, (int)(wi + band) % 2);
        }
    raster_close(ds);
}
END_TEST

/* The fixtures include each mask source; make sure this suite saw them. */
START_TEST(mask_sources_present)
{
    const char *need[] = {"mask_internal", "rgba", "nodata", "mask_external"};
    for (size_t n = 0; n < 4; n++) {
        int found = 0;
        for (int i = 0; i < fixture_count; i++)
            found |= strstr(fixtures[i].name, need[n]) != NULL;
        ck_assert_msg(found, "no fixture named for '%s'", need[n]);
    }
}
END_TEST

/* ------------------------------ raster_read_masks_into ----------------- */

static raster_masks_options_t masks_opt(int rule, int boundless, int has_nodata, double nodata)
{
    raster_masks_options_t o;
    raster_masks_options_init(&o);
    o.rule = rule;
    o.boundless = boundless;
    o.has_nodata = has_nodata;
    o.nodata = nodata;
    return o;
}

/* The read_masks tests take every fixture with a mask source of its own and
 * a sample of the rest (dtypes, layouts, codecs): sample, don't sweep. */
static int sampled(int i)
{
    const char *n = fixtures[i].name;
    if (fixtures[i].malformed)
        return 0;
    if (strstr(n, "mask") || strstr(n, "rgba") || strstr(n, "alpha") || strstr(n, "nodata"))
        return 1;
    return i % 6 == 0;
}

/* Every band's mask of an inside window, in one CHW call, equals GDAL's. */
START_TEST(read_masks_bands_match_gdal)
{
    if (!sampled(_i))
        return;
    const char *path = fixture_path(fixtures[_i].name);
    raster_dataset_t *ds = NULL;
    ck_assert_msg(raster_open(path, &ds) == RASTER_OK, "%s", raster_last_error());
    raster_info_t in;
    raster_dataset_info(ds, &in);
    const int64_t n = in.band_count;
    const raster_window_t w = {in.width / 4, in.height / 5, in.width / 2 + 1, in.height / 3 + 1};
    uint8_t *got = malloc((size_t)(n * w.width * w.height));
    raster_view_t v = raster_view_hwc(got, RASTER_U8, w.height, w.width, n);
    v.chan_stride = w.width * w.height, v.row_stride = w.width, v.col_stride = 1;   /* CHW */
    for (int rule = RASTER_MASKS_BANDS; rule <= RASTER_MASKS_READ; rule++) {
        const raster_masks_options_t o = masks_opt(rule, 0, 0, 0.0);
        int no_mask = -1;
        ck_assert_msg(raster_read_masks_into(ds, w, &o, NULL, &v, &no_mask) == RASTER_OK, "%s: %s", path,
                      raster_last_error());
        int all_valid = 1;
        for (int b = 1; b <= n; b++) {
            raster_band_info_t bi;
            raster_band_info(ds, b, &bi);
            all_valid &= bi.mask_flags == 1;
            uint8_t *want = NULL;
            ck_assert(gdal_oracle_mask(path, w, b, &want) == 0);
            ck_assert_msg(memcmp(got + (b - 1) * w.width * w.height, want, (size_t)(w.width * w.height)) == 0,
                          "%s band %d: masks differ from GDAL's", path, b);
            free(want);
        }
        ck_assert_int_eq(no_mask, rule == RASTER_MASKS_READ && all_valid);
    }
    free(got);
    raster_close(ds);
}
END_TEST

/* Element k of an oracle buffer of 'dt' as a double. */
static double oracle_f64(const void *p, raster_dtype_t dt, int64_t k)
{
    switch (dt) {
    case RASTER_U8: return ((const uint8_t *)p)[k];
    case RASTER_I8: return ((const int8_t *)p)[k];
    case RASTER_U16: return ((const uint16_t *)p)[k];
    case RASTER_I16: return ((const int16_t *)p)[k];
    case RASTER_U32: return ((const uint32_t *)p)[k];
    case RASTER_I32: return ((const int32_t *)p)[k];
    case RASTER_F32: return ((const float *)p)[k];
    case RASTER_F64: return ((const double *)p)[k];
    default: ck_abort_msg("oracle dtype %d", (int)dt);
    }
    return 0.0;
}

/* 1 when every band of 'ds' has 'flag' in its mask flags. */
static int every_band_has(raster_dataset_t *ds, int n, int flag)
{
    for (int b = 1; b <= n; b++) {
        raster_band_info_t bi;
        raster_band_info(ds, b, &bi);
        if (!(bi.mask_flags & flag))
            return 0;
    }
    return 1;
}

/* Boundless, against the header's rules with GDAL as the oracle inside: the
 * dataset mask is GDAL's inside and 0 outside; a masked read with a nodata
 * value (band 1's first pixel) gives band 1 "pixel != value" on GDAL's
 * pixels (or 255 everywhere for a dataset without masks and a value that
 * rounds to a nonzero byte, or the band's own mask when every band has a
 * per-dataset mask).  The read's pixels passed as they are, in a narrowing
 * dtype (uint8), or not at all give the same masks. */
START_TEST(read_masks_boundless)
{
    if (!sampled(_i))
        return;
    const char *path = fixture_path(fixtures[_i].name);
    raster_dataset_t *ds = NULL;
    ck_assert_msg(raster_open(path, &ds) == RASTER_OK, "%s", raster_last_error());
    raster_info_t in;
    raster_dataset_info(ds, &in);
    const int n = in.band_count < 4 ? in.band_count : 4;
    const int64_t iw = in.width < 40 ? in.width : 40, ih = in.height < 30 ? in.height : 30;
    const int64_t top = 2, left = 3;
    const raster_window_t w = {-left, -top, iw + left, ih + top};
    const raster_window_t inner = {0, 0, iw, ih};
    const size_t plane = (size_t)(w.width * w.height);
    uint8_t *m = malloc(plane * 4), *m2 = malloc(plane * 4);
    int bands[4] = {1, 2, 3, 4};

    /* the dataset mask */
    const raster_masks_options_t od = masks_opt(RASTER_MASKS_DATASET, 1, 0, 0.0);
    const raster_view_t dv = raster_view_hwc(m, RASTER_U8, w.height, w.width, 1);
    ck_assert_msg(raster_read_masks_into(ds, w, &od, NULL, &dv, NULL) == RASTER_OK, "%s", raster_last_error());
    uint8_t *want = NULL;
    ck_assert(gdal_oracle_mask(path, inner, 0, &want) == 0);
    for (int64_t r = 0; r < w.height; r++)
        for (int64_t c = 0; c < w.width; c++) {
            const uint8_t e = r < top || c < left ? 0 : want[(r - top) * iw + (c - left)];
            ck_assert_msg(m[r * w.width + c] == e, "%s dataset mask at (%lld,%lld): %d, want %d", path,
                          (long long)r, (long long)c, m[r * w.width + c], e);
        }
    free(want);

    /* the read's pixels, in the file's dtype and in uint8 */
    raster_band_info_t b1;
    raster_band_info(ds, 1, &b1);
    const raster_dtype_t dt = b1.dtype;
    void *pix = malloc(raster_view_nbytes(dt, w.height, w.width, n)), *pix8 = malloc(plane * (size_t)n);
    const raster_view_t pv = raster_view_hwc(pix, dt, w.height, w.width, n);
    const raster_view_t pv8 = raster_view_hwc(pix8, RASTER_U8, w.height, w.width, n);
    raster_read_options_t ro;
    raster_read_options_init(&ro);
    ro.bands = bands;
    ro.band_count = n;
    ro.boundless = 1;
    ck_assert_msg(raster_read_into(ds, w, &ro, &pv) == RASTER_OK, "%s", raster_last_error());
    ck_assert_msg(raster_read_into(ds, w, &ro, &pv8) == RASTER_OK, "%s", raster_last_error());
    /* GDAL's band 1 pixels inside, as doubles (the oracle's own dtype) */
    double *g = malloc(sizeof(double) * (size_t)(iw * ih));
    {
        void *raw = NULL;
        raster_dtype_t rdt;
        ck_assert(gdal_oracle_read(path, inner, bands, 1, &raw, &rdt) == 0);
        for (int64_t k = 0; k < iw * ih; k++)
            g[k] = oracle_f64(raw, rdt, k);
        free(raw);
    }
    const double value = g[0];
    raster_masks_options_t ov = masks_opt(RASTER_MASKS_READ, 1, 1, value);
    ov.bands = bands;
    ov.band_count = n;
    const raster_view_t mv = raster_view_hwc(m, RASTER_U8, w.height, w.width, n);
    const raster_view_t mv2 = raster_view_hwc(m2, RASTER_U8, w.height, w.width, n);
    ck_assert_msg(raster_read_masks_into(ds, w, &ov, &pv, &mv, NULL) == RASTER_OK, "%s", raster_last_error());
    ck_assert_msg(raster_read_masks_into(ds, w, &ov, NULL, &mv2, NULL) == RASTER_OK, "%s", raster_last_error());
    ck_assert_msg(memcmp(m, m2, plane * (size_t)n) == 0, "%s: masks differ with and without pixels", path);
    memset(m2, 0x55, plane * (size_t)n);
    ck_assert_msg(raster_read_masks_into(ds, w, &ov, &pv8, &mv2, NULL) == RASTER_OK, "%s", raster_last_error());
    ck_assert_msg(memcmp(m, m2, plane * (size_t)n) == 0, "%s: masks differ with uint8 pixels", path);

    const int all_valid = every_band_has(ds, in.band_count, 1);
    const int per_dataset = every_band_has(ds, in.band_count, 2);
    const int valid_everywhere = all_valid && value == value && floor(value + 0.5) >= 1;
    uint8_t *own = NULL;
    if (per_dataset && !all_valid)
        ck_assert(gdal_oracle_mask(path, inner, 1, &own) == 0);
    for (int64_t r = 0; r < w.height; r++)
        for (int64_t c = 0; c < w.width; c++) {
            const int outside = r < top || c < left;
            const int64_t at = (r - top) * iw + (c - left);
            uint8_t e;
            if (valid_everywhere)
                e = 255;
            else if (outside)
                e = 0;
            else if (own != NULL)
                e = own[at];
            else
                e = (g[at] == value || (g[at] != g[at] && value != value)) ? 0 : 255;
            ck_assert_msg(m[(r * w.width + c) * n] == e, "%s band 1 masked read at (%lld,%lld): %d, want %d",
                          path, (long long)r, (long long)c, m[(r * w.width + c) * n], e);
        }
    free(own);
    free(g);
    free(pix);
    free(pix8);
    free(m);
    free(m2);
    raster_close(ds);
}
END_TEST

START_TEST(read_masks_bad_arguments)
{
    const char *path = NULL;
    for (int i = 0; i < fixture_count && path == NULL; i++)
        if (!fixtures[i].malformed)
            path = fixture_path(fixtures[i].name);
    raster_dataset_t *ds = NULL;
    ck_assert(raster_open(path, &ds) == RASTER_OK);
    uint8_t buf[16];
    const raster_view_t v = raster_view_hwc(buf, RASTER_U8, 4, 4, 1);
    const raster_window_t w = {0, 0, 4, 4};
    raster_masks_options_t o = masks_opt(RASTER_MASKS_DATASET, 0, 0, 0.0);
    o.struct_size = 4;
    ck_assert_int_eq(raster_read_masks_into(ds, w, &o, NULL, &v, NULL), RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "struct_size"));
    o = masks_opt(7, 0, 0, 0.0);
    ck_assert_int_eq(raster_read_masks_into(ds, w, &o, NULL, &v, NULL), RASTER_E_INVALID_ARG);
    const int band = 99;
    o = masks_opt(RASTER_MASKS_BANDS, 0, 0, 0.0);
    o.bands = &band;
    o.band_count = 1;
    ck_assert_int_eq(raster_read_masks_into(ds, w, &o, NULL, &v, NULL), RASTER_E_BOUNDS);
    ck_assert_int_eq(raster_last_error_cause(), RASTER_CAUSE_BAND_INDEX);
    o = masks_opt(RASTER_MASKS_DATASET, 0, 0, 0.0);
    const raster_view_t f = raster_view_hwc(buf, RASTER_U16, 2, 4, 1);
    ck_assert_int_eq(raster_read_masks_into(ds, (raster_window_t){0, 0, 4, 2}, &o, NULL, &f, NULL),
                     RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_last_error_cause(), RASTER_CAUSE_NONE);
    ck_assert_int_eq(raster_read_masks_into(ds, (raster_window_t){-1, 0, 4, 4}, &o, NULL, &v, NULL),
                     RASTER_E_BOUNDS);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "boundless"));
    o.boundless = 1;      /* boundless resampled masks read (rasterio's VRT), but not absurd windows */
    ck_assert_int_eq(raster_read_masks_resampled_into(ds, (raster_window_f_t){0, 0, 8, 8}, RASTER_RESAMPLE_NEAREST,
                                                      &o, &v, NULL),
                     RASTER_OK);
    ck_assert_int_eq(raster_read_masks_resampled_into(ds, (raster_window_f_t){-1e300, 0, 8, 8},
                                                      RASTER_RESAMPLE_NEAREST, &o, &v, NULL),
                     RASTER_E_BOUNDS);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "absurdly large"));
    raster_close(ds);
}
END_TEST

static Suite *mask_suite(void)
{
    fixture_count = fixtures_load(&fixtures);
    Suite *s = suite_create("mask");
    TCase *tc = tcase_create("mask");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, mask_sources_present);
    tcase_add_loop_test(tc, masks_match_gdal, 0, fixture_count);
    suite_add_tcase(s, tc);
    TCase *rm = tcase_create("read_masks");
    tcase_set_timeout(rm, 300);
    tcase_add_test(rm, read_masks_bad_arguments);
    tcase_add_loop_test(rm, read_masks_bands_match_gdal, 0, fixture_count);
    tcase_add_loop_test(rm, read_masks_boundless, 0, fixture_count);
    suite_add_tcase(s, rm);
    return s;
}

RASTER_SUITE_MAIN(mask_suite)
