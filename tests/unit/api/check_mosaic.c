/*
 * check_mosaic.c - raster_mosaic_read_source() / raster_mosaic_read_sources()
 * (lib/api/mosaic.c) on the Sentinel-2-like mosaic fixture (data/fixtures/mosaic/,
 * nodata 0 with a swath-edge nodata band), against GDAL's own read:
 *   - "direct": a plain window into a channel slice of an HWC buffer equals
 *     GDAL, and writes nothing outside its slice;
 *   - "first": pixels are placed only where the destination still holds
 *     nodata and the source is valid (merge's copy_first);
 *   - a fractional window takes the resampled read (= raster_read_resampled_into);
 *   - lanes in parallel equal lanes one after another;
 *   - bad input: several channels, float16 compositing, unknown mode;
 *   - raster_mosaic_read(): the fill around the direct rectangles, the
 *     validity masks and the normalisation of a whole query.
 * The whole mosaic (merge's windows, warped sources) is compared with rasterio
 * in tests/python/mosaic/test_mosaic.py.
 */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define B02 "mosaic/s2_32631_B02.tif"
/* Over the east side: valid pixels and the swath-edge nodata (0). */
static const raster_window_t WIN = {850, 400, 174, 150};

static raster_view_t
slice_of_hwc(void *data, int64_t h, int64_t w, int64_t c, int64_t ch)
{
    const raster_view_t v = {(char *)data + ch * 2, RASTER_U16, h, w, 1, w * c * 2, c * 2, 2};
    return v;
}

static uint16_t *
oracle(raster_window_t win)
{
    const int band = 1;
    void *out = NULL;
    raster_dtype_t dt;
    ck_assert_int_eq(gdal_oracle_read(fixture_path(B02), win, &band, 1, &out, &dt), 0);
    ck_assert_int_eq(dt, RASTER_U16);
    return out;
}

START_TEST(direct_into_a_channel_slice_equals_gdal)
{
    raster_dataset_t *ds = open_with_reader(fixture_path(B02), _i);
    const int64_t h = WIN.height, w = WIN.width, c = 3;
    guarded_t g = guarded_alloc((size_t)(h * w * c * 2));
    memset(g.data, 0x11, g.nbytes);
    const raster_view_t v = slice_of_hwc(g.data, h, w, c, 1);
    const raster_window_f_t wf = {WIN.col_off, WIN.row_off, WIN.width, WIN.height};
    ck_assert_int_eq(raster_mosaic_read_source(ds, 1, wf, RASTER_RESAMPLE_NEAREST,
                                               RASTER_COMPOSITE_DIRECT, 0, 1, 0, &v), RASTER_OK);
    uint16_t *want = oracle(WIN), *got = (uint16_t *)g.data;
    int zeros = 0;
    for (int64_t i = 0; i < h * w; i++) {
        ck_assert_uint_eq(got[i * c + 1], want[i]);
        ck_assert_uint_eq(got[i * c], 0x1111);          /* other channels untouched */
        ck_assert_uint_eq(got[i * c + 2], 0x1111);
        zeros += want[i] == 0;
    }
    ck_assert_int_gt(zeros, 0);                          /* the window shows nodata */
    ck_assert(guarded_intact(&g));
    free(want);
    guarded_free(&g);
    raster_close(ds);
}
END_TEST

START_TEST(first_fills_only_pixels_still_nodata)
{
    raster_dataset_t *ds = open_with_reader(fixture_path(B02), RASTER_READER_NATIVE_TIFF);
    const int64_t h = WIN.height, w = WIN.width;
    uint16_t *dst = malloc((size_t)(h * w * 2)), *before = malloc((size_t)(h * w * 2));
    for (int64_t i = 0; i < h * w; i++)      /* an earlier scene: nodata in a checkerboard */
        dst[i] = before[i] = ((i / 7 + i / w) % 2) ? 0 : (uint16_t)(1000 + i % 50);
    const raster_view_t v = {dst, RASTER_U16, h, w, 1, w * 2, 2, 2};
    const raster_window_f_t wf = {WIN.col_off, WIN.row_off, WIN.width, WIN.height};
    ck_assert_int_eq(raster_mosaic_read_source(ds, 1, wf, RASTER_RESAMPLE_NEAREST,
                                               RASTER_COMPOSITE_FIRST, 0, 1, 0, &v), RASTER_OK);
    uint16_t *src = oracle(WIN);
    int kept = 0, filled = 0, left_empty = 0;
    for (int64_t i = 0; i < h * w; i++) {
        const uint16_t want = before[i] == 0 && src[i] != 0 ? src[i] : before[i];
        ck_assert_uint_eq(dst[i], want);
        kept += before[i] != 0 && src[i] != 0;
        filled += before[i] == 0 && src[i] != 0;
        left_empty += before[i] == 0 && src[i] == 0;
    }
    ck_assert(kept > 0 && filled > 0 && left_empty > 0);   /* every rule met */
    free(src);
    free(before);
    free(dst);
    raster_close(ds);
}
END_TEST

START_TEST(fractional_window_is_the_resampled_read)
{
    raster_dataset_t *ds = open_with_reader(fixture_path(B02), RASTER_READER_NATIVE_TIFF);
    const int64_t h = 77, w = 91;
    const raster_window_f_t wf = {700.4, 300.6, 150.3, 120.2};
    uint16_t *a = malloc((size_t)(h * w * 2)), *b = malloc((size_t)(h * w * 2));
    const raster_view_t va = {a, RASTER_U16, h, w, 1, w * 2, 2, 2};
    const raster_view_t vb = {b, RASTER_U16, h, w, 1, w * 2, 2, 2};
    const int band = 1;
    raster_read_options_t opt;
    raster_read_options_init(&opt);
    opt.bands = &band;
    opt.band_count = 1;
    ck_assert_int_eq(raster_mosaic_read_source(ds, 1, wf, RASTER_RESAMPLE_BILINEAR,
                                               RASTER_COMPOSITE_DIRECT, 0, 0, 0, &va), RASTER_OK);
    ck_assert_int_eq(raster_read_resampled_into(ds, wf, RASTER_RESAMPLE_BILINEAR, &opt, &vb),
                     RASTER_OK);
    ck_assert_int_eq(memcmp(a, b, (size_t)(h * w * 2)), 0);
    free(a);
    free(b);
    raster_close(ds);
}
END_TEST

START_TEST(lanes_in_parallel_equal_lanes_in_order)
{
    raster_dataset_t *ds = open_with_reader(fixture_path(B02), RASTER_READER_NATIVE_TIFF);
    const int64_t h = 64, w = 64, c = 4, n = c * 2;
    uint16_t *par = calloc((size_t)(h * w * c), 2), *seq = calloc((size_t)(h * w * c), 2);
    raster_mosaic_source_t items[8];
    for (int k = 0; k < 2; k++) {
        uint16_t *buf = k ? seq : par;
        for (int64_t i = 0; i < n; i++) {
            const int lane = (int)(i / 2);
            const raster_window_f_t wf = {650.0 + 13 * lane + 7 * (i % 2), 280.0 + 5 * lane,
                                          (double)w, (double)h};
            items[i] = (raster_mosaic_source_t){
                .ds = ds, .band = 1, .lane = lane, .win = wf,
                .resampling = RASTER_RESAMPLE_NEAREST,
                .composite = i % 2 ? RASTER_COMPOSITE_FIRST : RASTER_COMPOSITE_DIRECT,
                .nodata = 0, .has_src_nodata = 1, .src_nodata = 0,
                .dst = slice_of_hwc(buf, h, w, c, lane)};
        }
        ck_assert_int_eq(raster_mosaic_read_sources(items, n, k ? 1 : 4), RASTER_OK);
    }
    ck_assert_int_eq(memcmp(par, seq, (size_t)(h * w * c * 2)), 0);
    free(par);
    free(seq);
    raster_close(ds);
}
END_TEST

START_TEST(bad_input_is_an_error_naming_the_file)
{
    raster_dataset_t *ds = open_with_reader(fixture_path(B02), RASTER_READER_NATIVE_TIFF);
    uint16_t buf[4 * 4 * 2];
    const raster_window_f_t wf = {0, 0, 4, 4};
    raster_view_t v = {buf, RASTER_U16, 4, 4, 2, 16, 4, 2};
    ck_assert_int_eq(raster_mosaic_read_source(ds, 1, wf, 0, RASTER_COMPOSITE_DIRECT, 0, 0, 0, &v),
                     RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "s2_32631_B02.tif"));
    v.channels = 1;
    ck_assert_int_eq(raster_mosaic_read_source(ds, 1, wf, 0, (raster_composite_t)7, 0, 0, 0, &v),
                     RASTER_E_INVALID_ARG);
    v.dtype = RASTER_F16;
    ck_assert_int_eq(raster_mosaic_read_source(ds, 1, wf, 0, RASTER_COMPOSITE_FIRST, 0, 0, 0, &v),
                     RASTER_E_UNSUPPORTED);
    v.dtype = RASTER_U16;
    const raster_window_f_t off = {5000, 0, 4, 4};
    ck_assert_int_ne(raster_mosaic_read_source(ds, 1, off, 0, RASTER_COMPOSITE_FIRST, 0, 0, 0, &v),
                     RASTER_OK);
    ck_assert_int_eq(raster_mosaic_read_sources(NULL, 3, 1), RASTER_E_INVALID_ARG);
    raster_close(ds);
}
END_TEST

/* raster_mosaic_read(): each lane's plane filled with its nodata where no
 * DIRECT source writes (and only there: a sentinel under a direct rectangle
 * would survive a fill that skipped it, but the source overwrites it; the
 * fill itself is checked outside), the validity (any lane not nodata, on the
 * raw values), then (x - mean) / std per lane, against a computation here
 * from GDAL's pixels; and the checks on lanes, items and validity. */
START_TEST(whole_query_fills_masks_and_normalises)
{
    raster_dataset_t *ds = open_with_reader(fixture_path(B02), RASTER_READER_NATIVE_TIFF);
    enum { H = 40, W = 60, C = 2 };
    float *img = malloc((size_t)H * W * C * sizeof(float));
    float *raw = malloc((size_t)H * W * C * sizeof(float));
    uint8_t valid[H * W];
    float valid_f[H * W];
    for (int pass = 0; pass < 2; pass++) {    /* pass 0: no normalisation, the raw values */
        for (int64_t i = 0; i < (int64_t)H * W * C; i++)
            img[i] = -12345.0f;               /* what the fill must replace */
        /* lane 0: one DIRECT rectangle (rows 5..29, cols 10..49); lane 1: none. */
        const raster_window_t src = {900, 450, 40, 25};
        raster_mosaic_source_t item = {
            .ds = ds, .band = 1, .lane = 0,
            .win = {src.col_off, src.row_off, src.width, src.height},
            .resampling = RASTER_RESAMPLE_NEAREST, .composite = RASTER_COMPOSITE_DIRECT,
            .nodata = 0, .has_src_nodata = 1, .src_nodata = 0,
            .dst = {img + (5 * W + 10) * C, RASTER_F32, src.height, src.width, 1, W * C * 4, C * 4, 4}};
        raster_mosaic_lane_t lanes[C];
        for (int c = 0; c < C; c++)
            lanes[c] = (raster_mosaic_lane_t){
                .plane = {img + c, RASTER_F32, H, W, 1, W * C * 4, C * 4, 4},
                .nodata = c == 0 ? 0.0 : -1.0,
                .normalise = pass, .divide = 1, .scale = 2.0 + c, .offset = 100.0 * (c + 1)};
        const raster_mosaic_validity_t vds[2] = {
            {{valid, RASTER_U8, H, W, 1, W, 1, 1}, 0, C},
            {{valid_f, RASTER_F32, H, W, 1, W * 4, 4, 4}, 0, 1}};
        ck_assert_int_eq(raster_mosaic_read(&item, 1, lanes, C, vds, 2, 2), RASTER_OK);
        if (pass == 0) {
            memcpy(raw, img, (size_t)H * W * C * sizeof(float));
            uint16_t *want = oracle(src);
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++) {
                    const int inside = y >= 5 && y < 30 && x >= 10 && x < 50;
                    const float v0 = img[(y * W + x) * C], v1 = img[(y * W + x) * C + 1];
                    ck_assert(inside ? v0 == (float)want[(y - 5) * src.width + (x - 10)] : v0 == 0.0f);
                    ck_assert(v1 == -1.0f);        /* no source: all nodata */
                    const uint8_t v = v0 != 0.0f ? 255 : 0;   /* lane 1 is all nodata */
                    ck_assert_uint_eq(valid[y * W + x], v);
                    ck_assert(valid_f[y * W + x] == (float)v);
                }
            free(want);
        } else {
            for (int64_t i = 0; i < (int64_t)H * W; i++)
                for (int c = 0; c < C; c++) {
                    const double x = raw[i * C + c];
                    ck_assert(img[i * C + c] == (float)((x - 100.0 * (c + 1)) / (2.0 + c)));
                }
            for (int64_t i = 0; i < (int64_t)H * W; i++)      /* validity of the raw values */
                ck_assert_uint_eq(valid[i], raw[i * C] != 0.0f ? 255 : 0);
        }
    }
    /* bad input */
    raster_mosaic_lane_t ln = {.plane = {img, RASTER_F32, H, W, 1, W * C * 4, C * 4, 4}, .nodata = 0};
    raster_mosaic_source_t bad = {.ds = ds, .band = 1, .lane = 1, .win = {0, 0, 4, 4},
                                  .dst = {img, RASTER_F32, 4, 4, 1, W * C * 4, C * 4, 4}};
    ck_assert_int_eq(raster_mosaic_read(&bad, 1, &ln, 1, NULL, 0, 1), RASTER_E_INVALID_ARG);
    bad.lane = 0;
    bad.dst.data = raw;                                     /* not inside the plane */
    ck_assert_int_eq(raster_mosaic_read(&bad, 1, &ln, 1, NULL, 0, 1), RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "inside"));
    ln.normalise = ln.divide = 1;                           /* std 0 */
    ck_assert_int_eq(raster_mosaic_read(NULL, 0, &ln, 1, NULL, 0, 1), RASTER_E_INVALID_ARG);
    ln.normalise = 0;
    const raster_mosaic_validity_t small = {{valid, RASTER_U8, H - 1, W, 1, W, 1, 1}, 0, 1};
    ck_assert_int_eq(raster_mosaic_read(NULL, 0, &ln, 1, &small, 1, 1), RASTER_E_INVALID_ARG);
    free(img);
    free(raw);
    raster_close(ds);
}
END_TEST

static Suite *
mosaic_suite(void)
{
    Suite *s = suite_create("mosaic");
    TCase *tc = tcase_create("sources");
    tcase_add_loop_test(tc, direct_into_a_channel_slice_equals_gdal, RASTER_READER_GDAL,
                        RASTER_READER_NATIVE_TIFF + 1);
    tcase_add_test(tc, first_fills_only_pixels_still_nodata);
    tcase_add_test(tc, fractional_window_is_the_resampled_read);
    tcase_add_test(tc, lanes_in_parallel_equal_lanes_in_order);
    tcase_add_test(tc, bad_input_is_an_error_naming_the_file);
    tcase_add_test(tc, whole_query_fills_masks_and_normalises);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(mosaic_suite)
