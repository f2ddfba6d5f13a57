/*
 * check_warped_vrt.c - raster_open_warped(): the pixels, masks and grid of
 * GDAL's own warped VRT built with rasterio's options (the oracle below
 * builds it with GDAL calls directly), read through every entry (image,
 * mask, resampled) from several threads and from a forked child; bad
 * arguments and closed sources are named errors; int8 takes the one GDAL
 * dtype table's rule on the reader's and the warp's path.
 * (tests/python/dropin/test_warpedvrt.py compares with rasterio itself.)
 */
#include "test_util.h"

#include <cpl_string.h>
#include <gdal.h>
#include <gdalwarper.h>
#include <ogr_srs_api.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NODATA0 "u8_deflate_pred2_tile256_pixel_1b_700x531_nodata0.tif"   /* EPSG:32618 */
#define RGBA "u8_deflate_pred2_tile256_pixel_4b_512x512_rgba.tif"
#define DST "EPSG:32619"

/* The oracle: GDAL's warped VRT with rasterio's options for (crs=DST). */
static GDALDatasetH
oracle_vrt(const char *path, GDALDatasetH *src_out)
{
    GDALAllRegister();
    GDALDatasetH src = GDALOpen(path, GA_ReadOnly);
    ck_assert_ptr_nonnull(src);
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    char *dst_wkt = NULL;
    ck_assert_int_eq(OSRSetFromUserInput(srs, DST), OGRERR_NONE);
    OSRExportToWkt(srs, &dst_wkt);
    OSRDestroySpatialReference(srs);
    GDALWarpOptions *wo = GDALCreateWarpOptions();
    wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "UNIFIED_SRC_NODATA", "YES");
    wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "INIT_DEST", "NO_DATA");
    wo->nBandCount = 1;
    wo->panSrcBands = CPLMalloc(sizeof(int));
    wo->panDstBands = CPLMalloc(sizeof(int));
    wo->panSrcBands[0] = wo->panDstBands[0] = 1;
    wo->padfSrcNoDataReal = CPLCalloc(1, sizeof(double));
    wo->padfSrcNoDataImag = CPLCalloc(1, sizeof(double));
    wo->padfDstNoDataReal = CPLCalloc(1, sizeof(double));
    wo->padfDstNoDataImag = CPLCalloc(1, sizeof(double));
    wo->hSrcDS = src;
    char **to = CSLSetNameValue(NULL, "INIT_DEST", "NO_DATA");
    GDALDatasetH vrt = GDALAutoCreateWarpedVRTEx(src, GDALGetProjectionRef(src), dst_wkt, GRA_NearestNeighbour,
                                                 (double)0.125f, wo, (CSLConstList)to);
    ck_assert_ptr_nonnull(vrt);
    GDALSetRasterNoDataValue(GDALGetRasterBand(vrt, 1), 0.0);
    CSLDestroy(to);
    GDALDestroyWarpOptions(wo);
    CPLFree(dst_wkt);
    *src_out = src;
    return vrt;
}

static raster_dataset_t *
warped(const char *name, const char *crs)
{
    raster_dataset_t *src = NULL, *ds = NULL;
    ck_assert_int_eq(raster_open(fixture_path(name), &src), RASTER_OK);
    raster_warp_options_t o;
    raster_warp_options_init(&o);
    o.crs = crs;
    ck_assert_msg(raster_open_warped(src, &o, &ds) == RASTER_OK, "%s", raster_last_error());
    raster_close(src);        /* the warped dataset keeps what it needs, as in rasterio */
    return ds;
}

START_TEST(pixels_masks_and_grid_equal_gdal)
{
    GDALDatasetH src, vrt = oracle_vrt(fixture_path(NODATA0), &src);
    raster_dataset_t *ds = warped(NODATA0, DST);
    raster_info_t in;
    ck_assert_int_eq(raster_dataset_info(ds, &in), RASTER_OK);
    ck_assert_int_eq(in.width, GDALGetRasterXSize(vrt));
    ck_assert_int_eq(in.height, GDALGetRasterYSize(vrt));
    double gt[6];
    GDALGetGeoTransform(vrt, gt);
    ck_assert_mem_eq(in.geotransform, gt, sizeof gt);
    ck_assert_str_eq(in.driver, "VRT");
    const int W = (int)in.width, H = (int)in.height;
    uint8_t *want = malloc((size_t)W * H), *got = malloc((size_t)W * H);
    raster_view_t one = raster_view_hwc(got, RASTER_U8, 1, 1, 1);    /* messages name the VRT */
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){W, 0, 1, 1}, NULL, &one), RASTER_E_BOUNDS);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "WarpedVRT("));
    ck_assert_int_eq(GDALRasterIO(GDALGetRasterBand(vrt, 1), GF_Read, 0, 0, W, H, want, W, H, GDT_Byte, 0, 0),
                     CE_None);
    raster_view_t v = raster_view_hwc(got, RASTER_U8, H, W, 1);
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){0, 0, W, H}, NULL, &v), RASTER_OK);
    ck_assert_mem_eq(got, want, (size_t)W * H);
    ck_assert_int_eq(GDALRasterIO(GDALGetMaskBand(GDALGetRasterBand(vrt, 1)), GF_Read, 0, 0, W, H, want, W,
                                  H, GDT_Byte, 0, 0),
                     CE_None);
    ck_assert_int_eq(raster_read_mask_into(ds, (raster_window_t){0, 0, W, H}, NULL, &v), RASTER_OK);
    ck_assert_mem_eq(got, want, (size_t)W * H);
    /* A resampled read is GDAL's resampled read of the VRT. */
    GDALRasterIOExtraArg ex;
    INIT_RASTERIO_EXTRA_ARG(ex);
    ck_assert_int_eq(GDALRasterIOEx(GDALGetRasterBand(vrt, 1), GF_Read, 0, 0, W, H, want, 64, 48, GDT_Byte, 0,
                                    0, &ex),
                     CE_None);
    raster_view_t small = raster_view_hwc(got, RASTER_U8, 48, 64, 1);
    ck_assert_int_eq(raster_read_resampled_into(ds, (raster_window_f_t){0, 0, W, H}, RASTER_RESAMPLE_NEAREST,
                                                NULL, &small),
                     RASTER_OK);
    ck_assert_mem_eq(got, want, 48 * 64);
    raster_warp_info_t wi;
    ck_assert_int_eq(raster_warp_info(ds, &wi), RASTER_OK);
    ck_assert_int_eq(wi.has_src_nodata, 1);
    ck_assert_int_eq(wi.has_nodata, 1);
    ck_assert_str_eq(wi.init_dest, "NO_DATA");
    free(want);
    free(got);
    raster_close(ds);
    GDALClose(vrt);
    GDALClose(src);
}
END_TEST

typedef struct {
    raster_dataset_t *ds;
    const uint8_t *want;
    int w, h, ok;
} job_t;

static void *
read_job(void *arg)
{
    job_t *j = arg;
    uint8_t *buf = malloc((size_t)j->w * j->h);
    raster_view_t v = raster_view_hwc(buf, RASTER_U8, j->h, j->w, 1);
    j->ok = 1;
    for (int k = 0; k < 3; k++)
        j->ok &= raster_read_into(j->ds, (raster_window_t){0, 0, j->w, j->h}, NULL, &v) == RASTER_OK &&
                 memcmp(buf, j->want, (size_t)j->w * j->h) == 0;
    free(buf);
    return NULL;
}

START_TEST(threads_and_forked_child_rebuild_their_own)
{
    raster_dataset_t *ds = warped(NODATA0, DST);
    raster_info_t in;
    raster_dataset_info(ds, &in);
    const int W = (int)in.width, H = (int)in.height;
    uint8_t *want = malloc((size_t)W * H);
    raster_view_t v = raster_view_hwc(want, RASTER_U8, H, W, 1);
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){0, 0, W, H}, NULL, &v), RASTER_OK);
    pthread_t t[4];
    job_t jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job_t){ds, want, W, H, 0};
        pthread_create(&t[i], NULL, read_job, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(jobs[i].ok, 1);
    }
    const pid_t pid = fork();
    if (pid == 0) {
        job_t j = {ds, want, W, H, 0};
        read_job(&j);
        _exit(j.ok ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(want);
    raster_close(ds);
}
END_TEST

START_TEST(bad_arguments_are_named)
{
    raster_dataset_t *src = NULL, *ds = NULL;
    ck_assert_int_eq(raster_open(fixture_path(NODATA0), &src), RASTER_OK);
    raster_warp_options_t o;
    raster_warp_options_init(&o);
    o.crs = "EPSG:999999";
    ck_assert_int_eq(raster_open_warped(src, &o, &ds), RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "not a CRS"));
    ck_assert_ptr_null(ds);
    raster_warp_options_init(&o);
    o.resampling = RASTER_RESAMPLE_GAUSS;
    ck_assert_int_eq(raster_open_warped(src, &o, &ds), RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "resampling"));
    raster_warp_options_init(&o);
    o.src_alpha = 5;
    ck_assert_int_eq(raster_open_warped(src, &o, &ds), RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_warp_info(src, &(raster_warp_info_t){0}), RASTER_E_INVALID_ARG);
    raster_close(src);
    ck_assert_int_eq(raster_open(fixture_path(RGBA), &src), RASTER_OK);
    raster_warp_options_init(&o);
    o.add_alpha = 1;
    ck_assert_int_eq(raster_open_warped(src, &o, &ds), RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "already has an alpha band"));
    raster_dataset_retain(src);
    raster_close(src);                 /* closed, memory kept by our reference */
    ck_assert_int_eq(raster_open_warped(src, NULL, &ds), RASTER_E_CLOSED);
    raster_dataset_release(src);
}
END_TEST

/* RASTER_I8 through the one GDAL dtype table (lib/runtime/gdal_env.c) on
 * both GDAL paths.  GDAL 3.6 has no Int8: a signed-byte band is a Byte band
 * with PIXELTYPE=SIGNEDBYTE.  The GDAL reader carries its bytes as Byte
 * (plain reads equal the native reader's, negative values included) and
 * resamples it as bytes, nearest only (a resampled read equals the plain
 * one; before, GDAL 3.6 resampled it into float64 as 0..255 and every
 * negative pixel came back 127); a warp cannot compute in int8, so
 * working_dtype=RASTER_I8 is RASTER_E_UNSUPPORTED there, and opens from
 * GDAL 3.7 on (GDT_Int8). */
#define I8 "i8_none_strip16_pixel_1b_700x531.tif"

static void
read_i8(int reader, int8_t *out, int64_t h, int64_t w, int resampled)
{
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = reader;
    raster_dataset_t *ds = NULL;
    ck_assert_msg(raster_open_ex(fixture_path(I8), &oo, &ds) == RASTER_OK, "%s", raster_last_error());
    raster_band_info_t bi;
    ck_assert_int_eq(raster_band_info(ds, 1, &bi), RASTER_OK);
    ck_assert_int_eq(bi.dtype, RASTER_I8);
    const raster_view_t v = raster_view_hwc(out, RASTER_I8, h, w, 1);
    const raster_status_t st =
        resampled ? raster_read_resampled_into(ds, (raster_window_f_t){0, 0, (double)w, (double)h},
                                               RASTER_RESAMPLE_NEAREST, NULL, &v)
                  : raster_read_into(ds, (raster_window_t){0, 0, w, h}, NULL, &v);
    ck_assert_msg(st == RASTER_OK, "%s", raster_last_error());
    raster_close(ds);
}

/* The resampled GDAL path beyond int8 into int8: into int16 (the int8
 * stage, then our conversion) the values are the same numbers; a method
 * that mixes pixels is refused before GDAL 3.7 (it would mix 0..255). */
static void
resampled_i8_other_ways(const int8_t *native, int64_t h, int64_t w)
{
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open(fixture_path(I8), &ds), RASTER_OK);
    const raster_window_f_t win = {0, 0, (double)w, (double)h};
    int16_t *wide = malloc((size_t)(h * w) * sizeof *wide);
    const raster_view_t v16 = raster_view_hwc(wide, RASTER_I16, h, w, 1);
    ck_assert_msg(raster_read_resampled_into(ds, win, RASTER_RESAMPLE_NEAREST, NULL, &v16) == RASTER_OK, "%s",
                  raster_last_error());
    for (int64_t i = 0; i < h * w; i++)
        ck_assert_int_eq(wide[i], native[i]);
    int8_t one[4];
    const raster_view_t v8 = raster_view_hwc(one, RASTER_I8, 2, 2, 1);
    const raster_status_t st = raster_read_resampled_into(ds, win, RASTER_RESAMPLE_BILINEAR, NULL, &v8);
#if GDAL_VERSION_NUM >= 3070000
    ck_assert_msg(st == RASTER_OK, "%s", raster_last_error());
#else
    ck_assert_int_eq(st, RASTER_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "only nearest"));
#endif
    free(wide);
    raster_close(ds);
}

START_TEST(int8_on_the_reader_and_the_warp_paths)
{
    enum { H = 64, W = 700 };
    static int8_t native[H * W], gdal[H * W], resampled[H * W];
    read_i8(RASTER_READER_NATIVE_TIFF, native, H, W, 0);
    read_i8(RASTER_READER_GDAL, gdal, H, W, 0);
    read_i8(RASTER_READER_GDAL, resampled, H, W, 1);
    int negative = 0;
    for (int i = 0; i < H * W; i++)
        negative += native[i] < 0;
    ck_assert_int_gt(negative, 0);    /* the window tells signed from unsigned bytes */
    ck_assert_mem_eq(gdal, native, sizeof native);
    ck_assert_mem_eq(resampled, native, sizeof native);
    resampled_i8_other_ways(native, H, W);

    raster_dataset_t *src = NULL, *ds = NULL;
    ck_assert_int_eq(raster_open(fixture_path(I8), &src), RASTER_OK);
    raster_warp_options_t o;
    raster_warp_options_init(&o);
    o.working_dtype = RASTER_I8;
    const raster_status_t st = raster_open_warped(src, &o, &ds);
#if GDAL_VERSION_NUM >= 3070000
    ck_assert_msg(st == RASTER_OK, "%s", raster_last_error());
#else
    ck_assert_int_eq(st, RASTER_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "working dtype"));
    ck_assert_ptr_null(ds);
#endif
    raster_close(ds);
    raster_close(src);
}
END_TEST

static Suite *
warped_vrt_suite(void)
{
    Suite *s = suite_create("warped_vrt");
    TCase *tc = tcase_create("warped_vrt");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pixels_masks_and_grid_equal_gdal);
    tcase_add_test(tc, threads_and_forked_child_rebuild_their_own);
    tcase_add_test(tc, bad_arguments_are_named);
    tcase_add_test(tc, int8_on_the_reader_and_the_warp_paths);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(warped_vrt_suite)
