/*
 * check_metadata.c - the Metadata (GDAL) section of the header: every call
 * gives what GDAL itself says about the same file (the oracle is a GDAL
 * handle opened here), results are released with raster_free(), and bad
 * bands, windows, closed datasets and NULL arguments fail with their status.
 * Fixtures: data/fixtures/dropin (tags, overviews, band texts, GCPs) and the
 * palette and int8 files of the main set.
 */
#include "test_util.h"

#include <gdal.h>
#include <cpl_string.h>
#include <gdal_alg.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAGS "dropin/tags_u16_3b_tiled_ovr.tif"
#define GCPS "dropin/gcps_u8_1b.tif"
#define PALETTE "u8_deflate_pred1_tile256_pixel_1b_512x512_palette.tif"
#define INT8 "i8_deflate_pred2_tile256_pixel_3b_700x531.tif"

static raster_dataset_t *
open_ok(const char *name)
{
    raster_dataset_t *ds = NULL;
    ck_assert_msg(raster_open(fixture_path(name), &ds) == RASTER_OK, "%s", raster_last_error());
    return ds;
}

static GDALDatasetH
gdal_open(const char *name)
{
    GDALAllRegister();
    GDALDatasetH h = GDALOpen(fixture_path(name), GA_ReadOnly);
    ck_assert_ptr_nonnull(h);
    return h;
}

/* 'got' (ours, NULL-terminated) equals GDAL's string list 'want'. */
static void
assert_lists_equal(char **got, CSLConstList want)
{
    ck_assert_ptr_nonnull(got);
    int n = 0;
    for (; got[n] != NULL; n++) {
        ck_assert_ptr_nonnull(want);
        ck_assert_str_eq(got[n], want[n]);
    }
    ck_assert_int_eq(n, CSLCount(want));
}

START_TEST(tags_equal_gdal)
{
    raster_dataset_t *ds = open_ok(TAGS);
    GDALDatasetH h = gdal_open(TAGS);
    static const struct { int band; const char *domain; } cases[] = {
        {0, NULL}, {0, ""}, {0, "CUSTOM"}, {0, "IMAGE_STRUCTURE"}, {1, NULL}, {2, "CUSTOM"},
        {3, "NO_SUCH_DOMAIN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char **items = NULL;
        ck_assert_int_eq(raster_metadata(ds, cases[i].band, cases[i].domain, &items), RASTER_OK);
        GDALMajorObjectH obj = cases[i].band ? (GDALMajorObjectH)GDALGetRasterBand(h, cases[i].band)
                                             : (GDALMajorObjectH)h;
        const char *dom = cases[i].domain && cases[i].domain[0] ? cases[i].domain : NULL;
        assert_lists_equal(items, GDALGetMetadata(obj, dom));
        raster_free(items);
    }
    char **domains = NULL;
    ck_assert_int_eq(raster_metadata_domains(ds, 0, &domains), RASTER_OK);
    char **want = GDALGetMetadataDomainList(h);
    assert_lists_equal(domains, want);
    CSLDestroy(want);
    raster_free(domains);
    char **files = NULL;
    ck_assert_int_eq(raster_file_list(ds, &files), RASTER_OK);
    want = GDALGetFileList(h);
    assert_lists_equal(files, want);
    CSLDestroy(want);
    raster_free(files);
    GDALClose(h);
    raster_close(ds);
}
END_TEST

START_TEST(items_and_overviews)
{
    raster_dataset_t *ds = open_ok(TAGS);
    GDALDatasetH h = gdal_open(TAGS);
    GDALRasterBandH b1 = GDALGetRasterBand(h, 1);
    char *v = NULL;
    ck_assert_int_eq(raster_metadata_item(ds, 1, -1, "BLOCK_SIZE_1_0", "TIFF", &v), RASTER_OK);
    ck_assert_str_eq(v, GDALGetMetadataItem(b1, "BLOCK_SIZE_1_0", "TIFF"));
    raster_free(v);
    ck_assert_int_eq(raster_metadata_item(ds, 1, 1, "BLOCK_SIZE_0_0", "TIFF", &v), RASTER_OK);
    ck_assert_str_eq(v, GDALGetMetadataItem(GDALGetOverview(b1, 1), "BLOCK_SIZE_0_0", "TIFF"));
    raster_free(v);
    ck_assert_int_eq(raster_metadata_item(ds, 0, -1, "NOT_THERE", NULL, &v), RASTER_OK);
    ck_assert_ptr_null(v);                                     /* absent is not an error */
    ck_assert_int_eq(raster_metadata_item(ds, 1, 2, "BLOCK_SIZE_0_0", "TIFF", &v), RASTER_E_BOUNDS);
    ck_assert_int_eq(raster_metadata_item(ds, 0, 0, "K", NULL, &v), RASTER_E_BOUNDS);
    int *f = NULL, n = -1;
    ck_assert_int_eq(raster_band_overviews(ds, 3, &f, &n), RASTER_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(f[0], 2);
    ck_assert_int_eq(f[1], 4);
    raster_free(f);
    GDALClose(h);
    raster_close(ds);
}
END_TEST

START_TEST(band_texts_and_scales)
{
    raster_dataset_t *ds = open_ok(TAGS);
    GDALDatasetH h = gdal_open(TAGS);
    for (int band = 1; band <= 3; band++) {
        GDALRasterBandH b = GDALGetRasterBand(h, band);
        char *t = NULL;
        ck_assert_int_eq(raster_band_text(ds, band, RASTER_TEXT_DESCRIPTION, &t), RASTER_OK);
        ck_assert_str_eq(t, GDALGetDescription(b));
        raster_free(t);
        ck_assert_int_eq(raster_band_text(ds, band, RASTER_TEXT_UNITS, &t), RASTER_OK);
        ck_assert_str_eq(t, GDALGetRasterUnitType(b));
        raster_free(t);
        double scale = 0, offset = 0;
        ck_assert_int_eq(raster_band_scale_offset(ds, band, &scale, &offset), RASTER_OK);
        ck_assert(scale == GDALGetRasterScale(b, NULL) && offset == GDALGetRasterOffset(b, NULL));
    }
    char *t = NULL;
    ck_assert_int_eq(raster_band_text(ds, 1, (raster_band_text_t)7, &t), RASTER_E_INVALID_ARG);
    GDALClose(h);
    raster_close(ds);
}
END_TEST

START_TEST(colormap_equals_gdal)
{
    raster_dataset_t *ds = open_ok(PALETTE);
    GDALDatasetH h = gdal_open(PALETTE);
    GDALColorTableH t = GDALGetRasterColorTable(GDALGetRasterBand(h, 1));
    int16_t *e = NULL;
    int n = 0;
    ck_assert_int_eq(raster_band_colormap(ds, 1, &e, &n), RASTER_OK);
    ck_assert_int_eq(n, GDALGetColorEntryCount(t));
    for (int i = 0; i < n; i++) {
        GDALColorEntry ce;
        GDALGetColorEntryAsRGB(t, i, &ce);
        ck_assert(e[4 * i] == ce.c1 && e[4 * i + 1] == ce.c2 && e[4 * i + 2] == ce.c3 &&
                  e[4 * i + 3] == ce.c4);
    }
    raster_free(e);
    GDALClose(h);
    raster_close(ds);
    ds = open_ok(TAGS);
    ck_assert_int_eq(raster_band_colormap(ds, 1, &e, &n), RASTER_OK);
    ck_assert_int_eq(n, -1);
    ck_assert_ptr_null(e);
    raster_close(ds);
}
END_TEST

START_TEST(gcps_equal_gdal)
{
    raster_dataset_t *ds = open_ok(GCPS);
    GDALDatasetH h = gdal_open(GCPS);
    raster_gcp_t *g = NULL;
    int n = 0;
    char *wkt = NULL;
    ck_assert_int_eq(raster_gcps(ds, &g, &n, &wkt), RASTER_OK);
    ck_assert_int_eq(n, GDALGetGCPCount(h));
    ck_assert_int_eq(n, 4);
    const GDAL_GCP *w = GDALGetGCPs(h);
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(g[i].id, w[i].pszId);
        ck_assert_str_eq(g[i].info, w[i].pszInfo);
        ck_assert(g[i].col == w[i].dfGCPPixel && g[i].row == w[i].dfGCPLine && g[i].x == w[i].dfGCPX &&
                  g[i].y == w[i].dfGCPY && g[i].z == w[i].dfGCPZ);
    }
    ck_assert_str_eq(wkt, GDALGetGCPProjection(h));
    raster_free(g);
    raster_free(wkt);
    GDALClose(h);
    raster_close(ds);
    ds = open_ok(TAGS);
    ck_assert_int_eq(raster_gcps(ds, &g, &n, &wkt), RASTER_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_str_eq(wkt, "");
    raster_free(g);
    raster_free(wkt);
    raster_close(ds);
}
END_TEST

START_TEST(checksum_equals_gdal)
{
    raster_dataset_t *ds = open_ok(TAGS);
    GDALDatasetH h = gdal_open(TAGS);
    const raster_window_t wins[] = {{0, 0, 96, 80}, {3, 5, 40, 33}, {95, 79, 1, 1}};
    for (int band = 1; band <= 3; band++)
        for (size_t i = 0; i < sizeof wins / sizeof wins[0]; i++) {
            const raster_window_t w = wins[i];
            int sum = -1;
            ck_assert_int_eq(raster_band_checksum(ds, band, w, &sum), RASTER_OK);
            ck_assert_int_eq(sum, GDALChecksumImage(GDALGetRasterBand(h, band), (int)w.col_off,
                                                    (int)w.row_off, (int)w.width, (int)w.height));
        }
    int sum = -1;
    ck_assert_int_eq(raster_band_checksum(ds, 1, (raster_window_t){5, 5, 0, 3}, &sum), RASTER_OK);
    ck_assert_int_eq(sum, 0);
    ck_assert_int_eq(raster_band_checksum(ds, 1, (raster_window_t){90, 0, 10, 3}, &sum), RASTER_E_BOUNDS);
    ck_assert_int_eq(raster_band_checksum(ds, 1, (raster_window_t){-1, 0, 10, 3}, &sum), RASTER_E_BOUNDS);
    GDALClose(h);
    raster_close(ds);
}
END_TEST

/* GDAL >= 3.7's checksum of int8 pixels (signed), computed from GDAL's pixels. */
START_TEST(checksum_int8_is_signed)
{
    raster_dataset_t *ds = open_ok(INT8);
    raster_info_t in;
    raster_dataset_info(ds, &in);
    static const int primes[11] = {7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43};
    const raster_window_t w = {200, 190, 120, 90};      /* across four tiles */
    for (int band = 1; band <= in.band_count; band++) {
        void *px = NULL;
        raster_dtype_t dt;
        ck_assert_int_eq(gdal_oracle_read(fixture_path(INT8), w, &band, 1, &px, &dt), 0);
        ck_assert_int_eq(dt, RASTER_I8);
        int want = 0, k = 0;
        for (int64_t i = 0; i < w.width * w.height; i++) {
            want += ((const int8_t *)px)[i] % primes[k++];
            k = k > 10 ? 0 : k;
            want &= 0xffff;
        }
        free(px);
        int sum = -1;
        ck_assert_int_eq(raster_band_checksum(ds, band, w, &sum), RASTER_OK);
        ck_assert_int_eq(sum, want);
    }
    /* and the band's SIGNEDBYTE marker of GDAL < 3.7 is not listed */
    char **items = NULL;
    ck_assert_int_eq(raster_metadata(ds, 1, "IMAGE_STRUCTURE", &items), RASTER_OK);
    for (char **p = items; *p; p++)
        ck_assert_ptr_null(strstr(*p, "PIXELTYPE"));
    raster_free(items);
    char *v = (char *)1;
    ck_assert_int_eq(raster_metadata_item(ds, 1, -1, "PIXELTYPE", "IMAGE_STRUCTURE", &v), RASTER_OK);
    ck_assert_ptr_null(v);
    raster_close(ds);
}
END_TEST

START_TEST(statistics_and_lnglat)
{
    /* On a copy: GDAL writes computed statistics into a .aux.xml beside it. */
    char path[] = "/tmp/check_metadata_XXXXXX.tif";
    const int fd = mkstemps(path, 4);
    ck_assert_int_ge(fd, 0);
    FILE *in = fopen(fixture_path(TAGS), "rb"), *out = fdopen(fd, "wb");
    char buf[1 << 14];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open(path, &ds), RASTER_OK);
    raster_stats_t s;
    ck_assert_int_eq(raster_band_statistics(ds, 2, RASTER_STATS_COMPUTE, &s), RASTER_OK);
    GDALAllRegister();
    GDALDatasetH h = GDALOpen(path, GA_ReadOnly);
    double mn, mx, mean, sd;
    ck_assert(GDALComputeRasterStatistics(GDALGetRasterBand(h, 2), FALSE, &mn, &mx, &mean, &sd, NULL,
                                          NULL) == CE_None);
    ck_assert(s.min == mn && s.max == mx && s.mean == mean && s.std == sd);
    ck_assert_int_eq(raster_band_statistics(ds, 2, RASTER_STATS_CLEAR | RASTER_STATS_APPROX, &s), RASTER_OK);
    ck_assert(s.min >= mn && s.max <= mx);
    GDALClose(h);
    double lng = 0, lat = 0;
    ck_assert_int_eq(raster_to_lnglat(ds, 400440.0, 5799620.0, &lng, &lat), RASTER_OK);
    ck_assert(lng > 13.5 && lng < 13.6 && lat > 52.3 && lat < 52.4);   /* UTM 33N, near Berlin */
    raster_close(ds);
    remove(path);
    strcat(path, ".aux.xml");
    remove(path);
    ds = open_ok(GCPS);                     /* GCPs but no dataset CRS */
    ck_assert_int_eq(raster_to_lnglat(ds, 0, 0, &lng, &lat), RASTER_E_INVALID_ARG);
    raster_close(ds);
}
END_TEST

START_TEST(bad_arguments)
{
    raster_dataset_t *ds = open_ok(TAGS);
    char **items = NULL;
    int16_t *e = NULL;
    int n = 0, sum = 0;
    ck_assert_int_eq(raster_metadata(ds, 4, NULL, &items), RASTER_E_BOUNDS);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "band 4 does not exist"));
    ck_assert_int_eq(raster_metadata(ds, -1, NULL, &items), RASTER_E_BOUNDS);
    ck_assert_int_eq(raster_band_colormap(ds, 0, &e, &n), RASTER_E_BOUNDS);
    ck_assert_int_eq(raster_metadata(ds, 0, NULL, NULL), RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_metadata(NULL, 0, NULL, &items), RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_band_checksum(NULL, 1, (raster_window_t){0, 0, 1, 1}, &sum),
                     RASTER_E_INVALID_ARG);
    raster_free(NULL);
    /* A reference that outlives raster_close(): every call says closed. */
    raster_dataset_t *ref = raster_dataset_retain(ds);
    raster_close(ds);
    ck_assert_int_eq(raster_metadata(ref, 0, NULL, &items), RASTER_E_CLOSED);
    ck_assert_int_eq(raster_band_checksum(ref, 1, (raster_window_t){0, 0, 1, 1}, &sum), RASTER_E_CLOSED);
    double lng, lat;
    ck_assert_int_eq(raster_to_lnglat(ref, 0, 0, &lng, &lat), RASTER_E_CLOSED);
    raster_dataset_release(ref);
}
END_TEST

/* Metadata calls share the dataset's GDAL handles with reads: many threads at once. */
static void *
meta_worker(void *arg)
{
    raster_dataset_t *ds = arg;
    for (int i = 0; i < 20; i++) {
        char **items = NULL;
        int sum = 0;
        if (raster_metadata(ds, 1 + i % 3, "CUSTOM", &items) != RASTER_OK ||
            raster_band_checksum(ds, 1 + i % 3, (raster_window_t){0, 0, 32, 32}, &sum) != RASTER_OK)
            return (void *)1;
        raster_free(items);
    }
    return NULL;
}

START_TEST(threads_share_handles)
{
    raster_dataset_t *ds = open_ok(TAGS);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, meta_worker, ds), 0);
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        ck_assert_ptr_null(r);
    }
    raster_close(ds);
}
END_TEST

static Suite *
metadata_suite(void)
{
    Suite *s = suite_create("metadata");
    TCase *c = tcase_create("gdal");
    tcase_set_timeout(c, 120);
    tcase_add_test(c, tags_equal_gdal);
    tcase_add_test(c, items_and_overviews);
    tcase_add_test(c, band_texts_and_scales);
    tcase_add_test(c, colormap_equals_gdal);
    tcase_add_test(c, gcps_equal_gdal);
    tcase_add_test(c, checksum_equals_gdal);
    tcase_add_test(c, checksum_int8_is_signed);
    tcase_add_test(c, statistics_and_lnglat);
    tcase_add_test(c, bad_arguments);
    tcase_add_test(c, threads_share_handles);
    suite_add_tcase(s, c);
    return s;
}

RASTER_SUITE_MAIN(metadata_suite)
