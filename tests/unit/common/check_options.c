/*
 * check_options.c - the struct_size rule of rasterloader.h, through every
 * public options struct and the call that takes it, at its three edges:
 *   - one byte short of the first field: RASTER_E_INVALID_ARG naming the
 *     struct and its _init();
 *   - exactly the first field (the oldest caller the rule accepts): the
 *     call works, and a field set past struct_size is not read (it keeps
 *     its default, which the call's result shows);
 *   - larger than this library's struct (a newer caller): RASTER_E_INVALID_ARG
 *     naming the struct, and nothing is done.
 * Each struct sits in room for more bytes, so a larger struct_size never
 * describes memory outside the object (the library must not read it anyway).
 */
#include "test_util.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define NODATA0 "u8_deflate_pred2_tile256_pixel_1b_700x531_nodata0.tif"   /* EPSG:32618, nodata 0 */
#define FIRST(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#define ROOMY(T) union { T s; unsigned char room[sizeof(T) + 64]; }

/* A struct_size refusal: the status and a message naming the struct. */
static void
expect_refused(raster_status_t st, const char *type, const char *edge)
{
    ck_assert_int_eq(st, RASTER_E_INVALID_ARG);
    char want[96];
    snprintf(want, sizeof want, "%s_t.struct_size", type);
    ck_assert_msg(strstr(raster_last_error(), want) != NULL, "%s", raster_last_error());
    ck_assert_msg(strstr(raster_last_error(), edge) != NULL, "%s", raster_last_error());
    if (strcmp(edge, "less than") == 0) {
        snprintf(want, sizeof want, "%s_init()", type);
        ck_assert_msg(strstr(raster_last_error(), want) != NULL, "%s", raster_last_error());
    }
}

START_TEST(open_options)
{
    ROOMY(raster_open_options_t) o;
    memset(&o, 0xff, sizeof o);
    raster_open_options_init(&o.s);
    o.s.reader = RASTER_READER_GDAL;
    raster_dataset_t *ds = NULL;
    o.s.struct_size = FIRST(raster_open_options_t, reader) - 1;
    expect_refused(raster_open_ex(fixture_path(NODATA0), &o.s, &ds), "raster_open_options", "less than");
    ck_assert_ptr_null(ds);
    o.s.struct_size = sizeof o.s + 8;
    expect_refused(raster_open_ex(fixture_path(NODATA0), &o.s, &ds), "raster_open_options", "larger");
    ck_assert_ptr_null(ds);
    o.s.struct_size = FIRST(raster_open_options_t, reader);
    ck_assert_msg(raster_open_ex(fixture_path(NODATA0), &o.s, &ds) == RASTER_OK, "%s", raster_last_error());
    raster_info_t info;
    ck_assert_int_eq(raster_dataset_info(ds, &info), RASTER_OK);
    ck_assert_int_eq(info.reader, RASTER_READER_GDAL);      /* the first field was read */
    raster_close(ds);
}
END_TEST

START_TEST(read_options)
{
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open(fixture_path(NODATA0), &ds), RASTER_OK);
    uint8_t px[4 * 4];
    const raster_view_t dst = raster_view_hwc(px, RASTER_U8, 4, 4, 1);
    const raster_window_t outside = {-2, -2, 4, 4};
    ROOMY(raster_read_options_t) o;
    memset(&o, 0xff, sizeof o);
    raster_read_options_init(&o.s);
    o.s.boundless = 1;
    o.s.struct_size = FIRST(raster_read_options_t, bands) - 1;
    expect_refused(raster_read_into(ds, outside, &o.s, &dst), "raster_read_options", "less than");
    expect_refused(raster_read_mask_into(ds, outside, &o.s, &dst), "raster_read_options", "less than");
    o.s.struct_size = sizeof o.s + 8;
    expect_refused(raster_read_into(ds, outside, &o.s, &dst), "raster_read_options", "larger");
    const raster_window_f_t wf = {0, 0, 8, 8};
    expect_refused(raster_read_resampled_into(ds, wf, RASTER_RESAMPLE_NEAREST, &o.s, &dst),
                   "raster_read_options", "larger");
    /* The oldest caller: 'boundless' lies past its struct_size, so it is the
     * default 0, and a window reaching outside the raster is out of bounds. */
    o.s.struct_size = FIRST(raster_read_options_t, bands);
    ck_assert_int_eq(raster_read_into(ds, outside, &o.s, &dst), RASTER_E_BOUNDS);
    ck_assert_msg(raster_read_into(ds, (raster_window_t){0, 0, 4, 4}, &o.s, &dst) == RASTER_OK, "%s",
                  raster_last_error());
    o.s.struct_size = sizeof o.s;
    ck_assert_int_eq(raster_read_into(ds, outside, &o.s, &dst), RASTER_OK);   /* whole: boundless read */
    raster_close(ds);
}
END_TEST

START_TEST(batch_options_and_item_read_options)
{
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open(fixture_path(NODATA0), &ds), RASTER_OK);
    raster_batch_item_t item = {ds, {0, 0, 4, 4}, NULL, NULL, 0};
    ROOMY(raster_batch_options_t) o;
    memset(&o, 0xff, sizeof o);
    raster_batch_options_init(&o.s);
    o.s.masks = 1;
    o.s.label_fill = -1;            /* not a uint8 label: refused when masks is read */
    o.s.struct_size = FIRST(raster_batch_options_t, dtype) - 1;
    expect_refused(raster_batch_item_check(&item, &o.s), "raster_batch_options", "less than");
    o.s.struct_size = sizeof o.s + 8;
    expect_refused(raster_batch_item_check(&item, &o.s), "raster_batch_options", "larger");
    o.s.struct_size = FIRST(raster_batch_options_t, dtype);
    ck_assert_msg(raster_batch_item_check(&item, &o.s) == RASTER_OK, "%s", raster_last_error());
    o.s.struct_size = sizeof o.s;
    ck_assert_int_eq(raster_batch_item_check(&item, &o.s), RASTER_E_INVALID_ARG);   /* masks read */

    /* A sample's own read options follow the same rule, before any read. */
    float px[4 * 4];
    const raster_view_t v = raster_view_hwc(px, RASTER_F32, 4, 4, 1);
    ROOMY(raster_read_options_t) ro;
    memset(&ro, 0, sizeof ro);
    raster_read_options_init(&ro.s);
    item.opt = &ro.s;
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    int64_t failed = -2;
    ro.s.struct_size = sizeof ro.s + 8;
    expect_refused(raster_batch_read_into(&item, 1, &bo, &v, NULL, &failed), "raster_read_options", "larger");
    ck_assert_int_eq(failed, 0);
    ck_assert_msg(strstr(raster_last_error(), "batch sample 0 of 1") != NULL, "%s", raster_last_error());
    ro.s.struct_size = FIRST(raster_read_options_t, bands) - 1;
    expect_refused(raster_batch_read_into(&item, 1, &bo, &v, NULL, &failed), "raster_read_options", "less than");
    ro.s.struct_size = FIRST(raster_read_options_t, bands);
    ck_assert_msg(raster_batch_read_into(&item, 1, &bo, &v, NULL, &failed) == RASTER_OK, "%s",
                  raster_last_error());
    raster_close(ds);
}
END_TEST

START_TEST(dlpack_request)
{
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(1 << 20, &pool), RASTER_OK);
    raster_buffer_t *buf = NULL;
    ck_assert_int_eq(raster_pool_acquire(pool, RASTER_U8, 2, 4, 4, 1, 0, &buf), RASTER_OK);
    ROOMY(raster_dlpack_request_t) r;
    memset(&r, 0xff, sizeof r);
    raster_dlpack_request_init(&r.s);
    r.s.index = 1;
    r.s.versioned = 1;
    void *m = NULL;
    r.s.struct_size = FIRST(raster_dlpack_request_t, index) - 1;
    expect_refused(raster_buffer_to_dlpack(buf, &r.s, &m), "raster_dlpack_request", "less than");
    ck_assert_ptr_null(m);
    r.s.struct_size = sizeof r.s + 8;
    expect_refused(raster_buffer_to_dlpack(buf, &r.s, &m), "raster_dlpack_request", "larger");
    ck_assert_ptr_null(m);
    r.s.struct_size = FIRST(raster_dlpack_request_t, index);
    ck_assert_msg(raster_buffer_to_dlpack(buf, &r.s, &m) == RASTER_OK, "%s", raster_last_error());
    raster_DLManagedTensor *t = m;
    ck_assert_int_eq(t->dl_tensor.ndim, 3);        /* index read; versioned not: legacy */
    ck_assert_ptr_eq(t->manager_ctx, (void *)t);
    t->deleter(t);
    raster_buffer_release(buf);
    raster_pool_destroy(pool);
}
END_TEST

START_TEST(warp_options)
{
    raster_dataset_t *src = NULL, *ds = NULL;
    ck_assert_int_eq(raster_open(fixture_path(NODATA0), &src), RASTER_OK);
    ROOMY(raster_warp_options_t) o;
    memset(&o, 0xff, sizeof o);
    raster_warp_options_init(&o.s);
    o.s.crs = "EPSG:32619";
    o.s.nodata_mode = RASTER_WARP_NODATA_VALUE;
    o.s.nodata = 7;
    o.s.struct_size = FIRST(raster_warp_options_t, crs) - 1;
    expect_refused(raster_open_warped(src, &o.s, &ds), "raster_warp_options", "less than");
    ck_assert_ptr_null(ds);
    o.s.struct_size = sizeof o.s + 8;
    expect_refused(raster_open_warped(src, &o.s, &ds), "raster_warp_options", "larger");
    ck_assert_ptr_null(ds);
    o.s.struct_size = FIRST(raster_warp_options_t, crs);
    ck_assert_msg(raster_open_warped(src, &o.s, &ds) == RASTER_OK, "%s", raster_last_error());
    raster_warp_info_t wi;
    ck_assert_int_eq(raster_warp_info(ds, &wi), RASTER_OK);
    ck_assert(wi.has_nodata && wi.nodata == 0);    /* the default (the source's), not 7 */
    raster_close(ds);
    o.s.struct_size = sizeof o.s;
    ck_assert_msg(raster_open_warped(src, &o.s, &ds) == RASTER_OK, "%s", raster_last_error());
    ck_assert_int_eq(raster_warp_info(ds, &wi), RASTER_OK);
    ck_assert(wi.has_nodata && wi.nodata == 7);    /* whole struct: read */
    raster_close(ds);
    raster_close(src);
}
END_TEST

static Suite *
options_suite(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("struct_size");
    tcase_add_test(tc, open_options);
    tcase_add_test(tc, read_options);
    tcase_add_test(tc, batch_options_and_item_read_options);
    tcase_add_test(tc, dlpack_request);
    tcase_add_test(tc, warp_options);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(options_suite)
