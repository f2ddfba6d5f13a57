/*
 * check_mask.c - raster_read_mask_into() against GDAL's mask bands for every
 * readable fixture: each band's own mask (read_masks) and the dataset mask
 * with rasterio's precedence (per-dataset mask, RGBA band 4, OR of bands),
 * on a window set, into compact and strided destinations.
 */
#include "test_util.h"

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

static Suite *mask_suite(void)
{
    fixture_count = fixtures_load(&fixtures);
    Suite *s = suite_create("mask");
    TCase *tc = tcase_create("mask");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, mask_sources_present);
    tcase_add_loop_test(tc, masks_match_gdal, 0, fixture_count);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(mask_suite)
