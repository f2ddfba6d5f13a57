/*
 * check_batch.c - batch reads: every sample equals the single read of its
 * window (images, labels, validity masks, fused scale/offset, boundless),
 * for every thread count, pooled or into caller views (also CHW); a failing
 * sample is named with its index, file and window, and leaves nothing
 * acquired (pool stats); argument errors never acquire; steady batches do
 * not allocate; the mask exports as [B, H, W].  Labels: label_fill outside
 * the label raster (uint8 and int16), validity beside labels, labels off the
 * image grid refused naming both; an output size resamples the image and
 * validity (as the resampled single reads) and labels (GDAL's nearest);
 * mean/std is (x - mean) / std.  RASTER_STRESS_SCALE=n (valgrind
 * runs use 50) cuts the repeated rounds and thread counts.
 */
#include "test_util.h"
#include "runtime/runtime.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define IMG_TILED "u16_deflate_pred2_tile256_pixel_3b_700x531.tif"
#define IMG_STRIPS "u16_zstd_pred1_strip16_band_3b_700x531.tif"
#define IMG_BE "u16_deflate_pred2_tile256_pixel_3b_700x531_be.tif"
#define IMG_MASKED "u8_deflate_pred2_tile256_pixel_3b_700x531_mask_internal.tif"
/* Labels on the grids of the images above (UTM 33N 10 m, and WGS 84). */
#define LABEL "u16_deflate_pred2_tile256_pixel_1b_700x531_mask_external.tif"
#define LABEL_GEO "i16_zstd_pred1_strip16_band_1b_700x531_be.tif"
/* A raster on another grid (UTM 18N, 30 m) than every image above. */
#define OFF_GRID "u8_deflate_pred2_tile256_pixel_1b_700x531_nodata0.tif"
#define CORRUPT "corrupt_tile.tif"

#define B 6
#define WIN 96

/* 1, or RASTER_STRESS_SCALE: how much to cut repetition (valgrind). */
static int
stress_scale(void)
{
    const char *s = getenv("RASTER_STRESS_SCALE");
    return s != NULL && atoi(s) > 0 ? atoi(s) : 1;
}

static raster_dataset_t *
open_fx(const char *name)
{
    raster_dataset_t *ds = NULL;
    ck_assert_msg(raster_open(fixture_path(name), &ds) == RASTER_OK, "%s: %s", name,
                  raster_last_error());
    return ds;
}

static raster_pool_stats_t
stats_of(const raster_pool_t *p)
{
    raster_pool_stats_t s;
    raster_pool_get_stats(p, &s);
    return s;
}

static void
assert_pool_idle(const raster_pool_t *p)
{
    const raster_pool_stats_t s = stats_of(p);
    ck_assert_int_eq(s.buffers_outstanding, 0);
    ck_assert_uint_eq(s.bytes_in_use, 0);
}

/* A batch over three image files (tiled, planar strips, big-endian), with
 * labels for some samples and validity masks for the others. */
typedef struct scene {
    raster_dataset_t *img[3], *label, *label_geo, *masked;
    raster_batch_item_t items[B];
} scene_t;

static void
scene_open(scene_t *s)
{
    memset(s, 0, sizeof *s);
    s->img[0] = open_fx(IMG_TILED);
    s->img[1] = open_fx(IMG_STRIPS);
    s->img[2] = open_fx(IMG_BE);
    s->label = open_fx(LABEL);
    s->label_geo = open_fx(LABEL_GEO);
    s->masked = open_fx(IMG_MASKED);
    unsigned seed = 7;
    for (int i = 0; i < B; i++) {
        raster_batch_item_t *it = &s->items[i];
        it->image = i == 4 ? s->masked : s->img[i % 3];
        it->window = (raster_window_t){rand_r(&seed) % (700 - WIN), rand_r(&seed) % (531 - WIN), WIN, WIN};
        it->label = i % 2 == 1 ? NULL : it->image == s->masked ? s->label_geo : s->label;
    }
}

static void
scene_close(scene_t *s)
{
    for (int i = 0; i < 3; i++)
        raster_close(s->img[i]);
    raster_close(s->label);
    raster_close(s->label_geo);
    raster_close(s->masked);
}

/* Opened once per TCase (GDAL opens dominate under valgrind); each test
 * works on a copy of the items, and never closes these datasets. */
static scene_t g_scene;

static void
scene_setup(void)
{
    scene_open(&g_scene);
}

static void
scene_teardown(void)
{
    scene_close(&g_scene);
}

/* Sample i of 'image' (view) and of 'mask' (NULL: no masks) equal the
 * single reads of the item, into 'dt' with 'opt'. */
static void
assert_samples(const scene_t *s, const raster_view_t *images, const raster_view_t *masks,
               raster_dtype_t dt, const raster_read_options_t *opt)
{
    for (int i = 0; i < B; i++) {
        const raster_batch_item_t *it = &s->items[i];
        const int64_t c = 3;
        const size_t esz = raster_dtype_size(dt);
        uint8_t *want = malloc(raster_view_nbytes(dt, WIN, WIN, c));
        const raster_view_t wv = raster_view_hwc(want, dt, WIN, WIN, c);
        ck_assert_int_eq(raster_read_into(it->image, it->window, opt, &wv), RASTER_OK);
        const raster_view_t *g = &images[i];
        /* One assertion per sample: Check's per-call cost adds up under valgrind. */
        int64_t bad = -1;
        for (int64_t r = 0; r < WIN && bad < 0; r++)
            for (int64_t col = 0; col < WIN && bad < 0; col++)
                for (int64_t k = 0; k < c && bad < 0; k++)
                    if (memcmp((uint8_t *)g->data + r * g->row_stride + col * g->col_stride +
                                   k * g->chan_stride,
                               want + ((r * WIN + col) * c + k) * esz, esz) != 0)
                        bad = (r * WIN + col) * c + k;
        ck_assert_msg(bad < 0, "sample %d differs at element %lld (HWC order)", i, (long long)bad);
        free(want);
        if (masks == NULL)
            continue;
        uint8_t m[WIN * WIN];
        const raster_view_t mv = raster_view_hwc(m, RASTER_U8, WIN, WIN, 1);
        if (it->label != NULL) {
            const int one = 1;
            raster_read_options_t lo;
            raster_read_options_init(&lo);
            lo.bands = &one;
            lo.band_count = 1;
            ck_assert_int_eq(raster_read_into(it->label, it->window, &lo, &mv), RASTER_OK);
        } else {
            ck_assert_int_eq(raster_read_mask_into(it->image, it->window, NULL, &mv), RASTER_OK);
        }
        const raster_view_t *gm = &masks[i];
        int64_t mbad = -1;
        for (int64_t r = 0; r < WIN && mbad < 0; r++)
            for (int64_t col = 0; col < WIN && mbad < 0; col++)
                if (((uint8_t *)gm->data)[r * gm->row_stride + col * gm->col_stride] !=
                    m[r * WIN + col])
                    mbad = r * WIN + col;
        ck_assert_msg(mbad < 0, "mask of sample %d differs at pixel %lld", i, (long long)mbad);
    }
}

static void
buffer_views(raster_buffer_t *buf, raster_view_t *views)
{
    for (int i = 0; i < B; i++)
        ck_assert_int_eq(raster_buffer_view(buf, i, &views[i]), RASTER_OK);
}

/* ------------------------------ results -------------------------------- */

START_TEST(pooled_equals_single_reads_for_every_thread_count)
{
    scene_t s = g_scene;
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
    const int threads[] = {1, 3, 2, 8};
    const size_t nthreads = stress_scale() > 1 ? 2 : sizeof threads / sizeof *threads;
    for (size_t t = 0; t < nthreads; t++) {
        raster_batch_options_t bo;
        raster_batch_options_init(&bo);
        bo.dtype = RASTER_U16;
        bo.masks = 1;
        bo.threads = threads[t];
        raster_buffer_t *img = NULL, *mask = NULL;
        int64_t failed = 99;
        ck_assert_msg(raster_batch_read(pool, s.items, B, &bo, &img, &mask, &failed) == RASTER_OK,
                      "%s", raster_last_error());
        ck_assert_int_eq(failed, -1);
        raster_dtype_t dt;
        int64_t shape[4];
        raster_buffer_shape(img, &dt, shape);
        ck_assert_int_eq(dt, RASTER_U16);
        ck_assert_int_eq(shape[0], B);
        ck_assert_int_eq(shape[1], WIN);
        ck_assert_int_eq(shape[2], WIN);
        ck_assert_int_eq(shape[3], 3);
        raster_buffer_shape(mask, &dt, shape);
        ck_assert_int_eq(dt, RASTER_U8);
        ck_assert_int_eq(shape[3], 1);
        raster_view_t iv[B], mv[B];
        buffer_views(img, iv);
        buffer_views(mask, mv);
        assert_samples(&s, iv, mv, RASTER_U16, NULL);
        raster_buffer_release(img);
        raster_buffer_release(mask);
        assert_pool_idle(pool);
    }
    raster_pool_destroy(pool);
}
END_TEST

START_TEST(dtype_and_normalisation_are_fused)
{
    scene_t s = g_scene;
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
    const int bands[] = {3, 1, 2};
    const double scale[] = {1 / 1000.0, 1 / 2000.0, 1 / 3000.0}, offset[] = {-1.0, -0.5, 0.25};
    raster_read_options_t ro;
    raster_read_options_init(&ro);
    ro.bands = bands;
    ro.band_count = 3;
    ro.scale = scale;
    ro.offset = offset;
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);     /* float32 by default */
    bo.read = &ro;
    bo.threads = 2;
    /* The masked sample (u8) with its own options: per-item override. */
    raster_read_options_t ro8 = ro;
    s.items[4].opt = &ro8;
    raster_buffer_t *img = NULL, *mask = NULL;
    ck_assert_msg(raster_batch_read(pool, s.items, B, &bo, &img, &mask, NULL) == RASTER_OK, "%s",
                  raster_last_error());
    ck_assert_ptr_null(mask);          /* masks not asked for */
    raster_view_t iv[B];
    buffer_views(img, iv);
    assert_samples(&s, iv, NULL, RASTER_F32, &ro);
    raster_buffer_release(img);
    assert_pool_idle(pool);
    raster_pool_destroy(pool);
}
END_TEST

START_TEST(into_caller_views_chw)
{
    scene_t s = g_scene;
    /* One [B, C, H, W] float64 block, each sample a CHW view of it. */
    const int64_t c = 3;
    double *block = malloc((size_t)B * c * WIN * WIN * sizeof *block);
    uint8_t *mblock = malloc((size_t)B * WIN * WIN);
    raster_view_t iv[B], mv[B];
    for (int i = 0; i < B; i++) {
        iv[i] = (raster_view_t){block + (size_t)i * c * WIN * WIN, RASTER_F64, WIN, WIN, c,
                                WIN * sizeof(double), sizeof(double), WIN * WIN * sizeof(double)};
        mv[i] = raster_view_hwc(mblock + (size_t)i * WIN * WIN, RASTER_U8, WIN, WIN, 1);
    }
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.threads = 2;
    ck_assert_msg(raster_batch_read_into(s.items, B, &bo, iv, mv, NULL) == RASTER_OK, "%s",
                  raster_last_error());
    assert_samples(&s, iv, mv, RASTER_F64, NULL);
    /* Without masks: the mask views are not touched. */
    memset(mblock, 0x5A, (size_t)B * WIN * WIN);
    ck_assert_int_eq(raster_batch_read_into(s.items, B, &bo, iv, NULL, NULL), RASTER_OK);
    ck_assert_int_eq(mblock[0], 0x5A);
    free(block);
    free(mblock);
}
END_TEST

START_TEST(boundless_samples_fill_and_mask_zero)
{
    raster_dataset_t *img = open_fx(IMG_TILED), *label = open_fx(LABEL);
    raster_read_options_t ro;
    raster_read_options_init(&ro);
    ro.boundless = 1;
    ro.fill_value = 7;
    raster_batch_item_t items[2] = {
        {img, {-40, -40, WIN, WIN}, &ro, label, 1},
        {img, {700 - 50, 531 - 30, WIN, WIN}, &ro, NULL, 0},
    };
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(8 << 20, &pool), RASTER_OK);
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.dtype = RASTER_U16;
    bo.masks = 1;
    raster_buffer_t *ib = NULL, *mb = NULL;
    ck_assert_msg(raster_batch_read(pool, items, 2, &bo, &ib, &mb, NULL) == RASTER_OK, "%s",
                  raster_last_error());
    const uint16_t *px = raster_buffer_data(ib);
    const uint8_t *m = raster_buffer_data(mb);
    ck_assert_uint_eq(px[0], 7);                              /* outside: fill */
    ck_assert_uint_eq(m[0], 0);                               /* outside: masked */
    ck_assert_uint_eq(m[WIN * WIN + 0], 255);                 /* inside, validity: all valid */
    ck_assert_uint_eq(m[WIN * WIN + WIN * WIN - 1], 0);       /* sample 1 corner: outside */
    uint16_t want[WIN * WIN * 3];
    const raster_view_t wv = raster_view_hwc(want, RASTER_U16, WIN, WIN, 3);
    ck_assert_int_eq(raster_read_into(img, items[1].window, &ro, &wv), RASTER_OK);
    ck_assert_int_eq(memcmp(px + WIN * WIN * 3, want, sizeof want), 0);
    raster_buffer_release(ib);
    raster_buffer_release(mb);
    raster_pool_destroy(pool);
    raster_close(img);
    raster_close(label);
}
END_TEST

START_TEST(mask_exports_as_bhw)
{
    scene_t s = g_scene;
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(16 << 20, &pool), RASTER_OK);
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.masks = 1;
    raster_buffer_t *img = NULL, *mask = NULL;
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &img, &mask, NULL), RASTER_OK);
    raster_dlpack_request_t req;
    raster_dlpack_request_init(&req);
    req.squeeze_channels = 1;
    raster_DLManagedTensor *t = NULL;
    ck_assert_int_eq(raster_buffer_to_dlpack(mask, &req, (void **)&t), RASTER_OK);
    ck_assert_int_eq(t->dl_tensor.ndim, 3);
    ck_assert_int_eq(t->dl_tensor.shape[0], B);
    ck_assert_int_eq(t->dl_tensor.shape[1], WIN);
    ck_assert_int_eq(t->dl_tensor.shape[2], WIN);
    ck_assert_int_eq(t->dl_tensor.strides[0], WIN * WIN);
    ck_assert_int_eq(t->dl_tensor.strides[1], WIN);
    ck_assert_int_eq(t->dl_tensor.strides[2], 1);
    ck_assert_ptr_eq(t->dl_tensor.data, raster_buffer_data(mask));
    /* The image has three channels: it cannot be squeezed. */
    void *bad = NULL;
    ck_assert_int_eq(raster_buffer_to_dlpack(img, &req, &bad), RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "squeeze_channels"));
    raster_buffer_release(img);
    raster_buffer_release(mask);
    ck_assert_int_eq(stats_of(pool).buffers_outstanding, 1);   /* the export holds it */
    t->deleter(t);
    assert_pool_idle(pool);
    raster_pool_destroy(pool);
}
END_TEST

/* ------------------------------ failures ------------------------------- */

START_TEST(failing_sample_is_named_and_nothing_leaks)
{
    scene_t s = g_scene;
    raster_dataset_t *bad = open_fx(CORRUPT);
    /* corrupt_tile.tif: tile 4 of its 3x3 grid (rows/cols 256..511) is garbage. */
    s.items[3].image = bad;
    s.items[3].window = (raster_window_t){300, 300, WIN, WIN};
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
    for (int threads = 1; threads <= 4; threads *= stress_scale() > 1 ? 4 : 2) {
        raster_batch_options_t bo;
        raster_batch_options_init(&bo);
        bo.masks = 1;
        bo.threads = threads;
        raster_buffer_t *img = (raster_buffer_t *)&bo, *mask = (raster_buffer_t *)&bo;
        int64_t failed = -7;
        const raster_status_t st = raster_batch_read(pool, s.items, B, &bo, &img, &mask, &failed);
        ck_assert_int_eq(st, RASTER_E_CORRUPT);
        ck_assert_ptr_null(img);
        ck_assert_ptr_null(mask);
        ck_assert_int_eq(failed, 3);
        const char *msg = raster_last_error();
        ck_assert_msg(strstr(msg, "batch sample 3 of 6") != NULL, "%s", msg);
        ck_assert_msg(strstr(msg, CORRUPT) != NULL, "%s", msg);
        ck_assert_msg(strstr(msg, "window (col 300, row 300, 96x96)") != NULL, "%s", msg);
        /* Both buffers were acquired, and both went back. */
        const raster_pool_stats_t st2 = stats_of(pool);
        ck_assert_uint_ge(st2.acquires, 2);
        assert_pool_idle(pool);
    }
    raster_pool_destroy(pool);
    raster_close(bad);
}
END_TEST

START_TEST(failing_label_is_named)
{
    scene_t s = g_scene;
    s.items[5].label = s.label;
    s.items[5].label_band = 2;      /* the label file has one band */
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.masks = 1;
    raster_buffer_t *img = NULL, *mask = NULL;
    int64_t failed = -1;
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &img, &mask, &failed),
                     RASTER_E_BOUNDS);
    ck_assert_int_eq(failed, 5);
    const char *msg = raster_last_error();
    ck_assert_msg(strstr(msg, "batch sample 5 of 6") && strstr(msg, "label band 2"), "%s", msg);
    assert_pool_idle(pool);
    raster_pool_destroy(pool);
}
END_TEST

START_TEST(mixed_shapes_fail_before_acquiring)
{
    scene_t s = g_scene;
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    raster_buffer_t *img = NULL, *mask = NULL;
    int64_t failed = -1;

    s.items[2].window.width = WIN + 1;
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &img, &mask, &failed),
                     RASTER_E_INVALID_ARG);
    ck_assert_int_eq(failed, 2);
    ck_assert_msg(strstr(raster_last_error(), "batch sample 2 of 6") &&
                      strstr(raster_last_error(), "one shape"), "%s", raster_last_error());
    s.items[2].window.width = WIN;

    const int two[] = {1, 2};
    raster_read_options_t ro;
    raster_read_options_init(&ro);
    ro.bands = two;
    ro.band_count = 2;
    s.items[1].opt = &ro;           /* 2 channels where the others have 3 */
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &img, &mask, &failed),
                     RASTER_E_INVALID_ARG);
    ck_assert_int_eq(failed, 1);
    s.items[1].opt = NULL;

    s.items[0].image = NULL;
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &img, &mask, &failed),
                     RASTER_E_INVALID_ARG);
    ck_assert_int_eq(failed, 0);
    s.items[0].image = s.img[0];

    ck_assert_int_eq(raster_batch_read(pool, s.items, 0, &bo, &img, &mask, &failed),
                     RASTER_E_INVALID_ARG);
    ck_assert_int_eq(failed, -1);
    ck_assert_int_eq(raster_batch_read(NULL, s.items, B, &bo, &img, &mask, &failed),
                     RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, NULL, &mask, NULL),
                     RASTER_E_INVALID_ARG);
    raster_batch_options_t old = bo;
    old.struct_size = 4;
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &old, &img, &mask, NULL),
                     RASTER_E_INVALID_ARG);
    ck_assert_uint_eq(stats_of(pool).acquires, 0);
    raster_pool_destroy(pool);
}
END_TEST

START_TEST(pool_timeout_releases_the_image_buffer)
{
    scene_t s = g_scene;
    /* Room for the float32 image (6*96*96*3*4 = 663552 bytes, class 786432)
     * but not for the mask as well. */
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(800000, &pool), RASTER_OK);
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.masks = 1;
    bo.timeout_ms = 30;
    raster_buffer_t *img = NULL, *mask = NULL;
    int64_t failed = 3;
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &img, &mask, &failed),
                     RASTER_E_TIMEOUT);
    ck_assert_int_eq(failed, -1);
    ck_assert_ptr_null(img);
    const raster_pool_stats_t st = stats_of(pool);
    ck_assert_uint_eq(st.acquires, 1);
    ck_assert_uint_eq(st.timeouts, 1);
    assert_pool_idle(pool);
    /* Without masks it fits. */
    bo.masks = 0;
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &img, &mask, &failed), RASTER_OK);
    raster_buffer_release(img);
    raster_pool_destroy(pool);
}
END_TEST

START_TEST(closed_dataset_is_reported_and_retained_ones_survive)
{
    scene_t s = g_scene;
    /* Sample 1 reads a dataset closed while another holder keeps it. */
    s.img[1] = s.items[1].image = open_fx(IMG_STRIPS);
    raster_dataset_t *extra = raster_dataset_retain(s.img[1]);
    raster_close(s.img[1]);
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    raster_buffer_t *img = NULL, *mask = NULL;
    int64_t failed = -1;
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &img, &mask, &failed),
                     RASTER_E_CLOSED);
    ck_assert_int_eq(failed, 1);
    assert_pool_idle(pool);
    raster_dataset_release(extra);
    raster_pool_destroy(pool);
}
END_TEST

/* ------------------------------ steady state ---------------------------- */

START_TEST(steady_batches_do_not_allocate)
{
    scene_t s = g_scene;
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.masks = 1;
    bo.threads = 2;
    uint64_t scratch = 0, blocks = 0;
    /* Warm-up: each of the 2 threads must have met every item in both the
     * tile cache's miss and hit paths (on by default) before counting; which
     * thread takes which item varies, so a few rounds even under valgrind
     * (stress scale 50: two rounds saw a thread's first hit of an item in
     * the counted round). */
    const int warm = 20 / stress_scale() + 8, rounds = warm + 20 / stress_scale() + 2;
    for (int round = 0; round < rounds; round++) {
        if (round == warm) {
            scratch = raster__scratch_allocations();
            blocks = stats_of(pool).block_mallocs;
        }
        raster_buffer_t *img = NULL, *mask = NULL;
        ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &img, &mask, NULL), RASTER_OK);
        raster_buffer_release(mask);
        raster_buffer_release(img);
    }
    ck_assert_uint_eq(stats_of(pool).block_mallocs, blocks);
    ck_assert_uint_eq(raster__scratch_allocations(), scratch);
    raster_pool_destroy(pool);
}
END_TEST

typedef struct concurrent {
    scene_t *s;
    raster_pool_t *pool;
    int failures;
} concurrent_t;

static void *
batch_thread(void *arg)
{
    concurrent_t *c = arg;
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.dtype = RASTER_U16;
    bo.masks = 1;
    bo.threads = 3;
    const int rounds = 10 / stress_scale() + 1;
    for (int round = 0; round < rounds; round++) {
        raster_buffer_t *img = NULL, *mask = NULL;
        if (raster_batch_read(c->pool, c->s->items, B, &bo, &img, &mask, NULL) != RASTER_OK)
            c->failures++;
        raster_buffer_release(img);
        raster_buffer_release(mask);
    }
    return NULL;
}

/* Batch reads from several user threads at once, each nesting tile-level
 * parallel reads inside the shared worker pool: no deadlock, no failure. */
START_TEST(concurrent_batches_share_the_workers)
{
    scene_t s = g_scene;
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
    concurrent_t c[3] = {{&s, pool, 0}, {&s, pool, 0}, {&s, pool, 0}};
    pthread_t tid[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&tid[i], NULL, batch_thread, &c[i]), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(tid[i], NULL);
        ck_assert_int_eq(c[i].failures, 0);
    }
    assert_pool_idle(pool);
    raster_pool_destroy(pool);
}
END_TEST


/* ------------------------------ labels --------------------------------- */

/* Outside the label raster the label is label_fill (255 as uint8, -1 as
 * int16), inside it equals the single read; the validity buffer beside it
 * equals the image's boundless dataset mask. */
START_TEST(label_fill_and_validity_beside_labels)
{
    raster_dataset_t *img = open_fx(IMG_TILED), *label = open_fx(LABEL);
    raster_read_options_t ro;
    raster_read_options_init(&ro);
    ro.boundless = 1;
    raster_batch_item_t items[2] = {
        {img, {-40, -30, WIN, WIN}, &ro, label, 1},
        {img, {700 - 50, 531 - 20, WIN, WIN}, &ro, label, 1},
    };
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(16 << 20, &pool), RASTER_OK);
    const raster_dtype_t dts[2] = {RASTER_U8, RASTER_I16};
    const double fills[2] = {255, -1};
    for (int t = 0; t < 2; t++) {
        raster_batch_options_t bo;
        raster_batch_options_init(&bo);
        bo.masks = 1;
        bo.validity = 1;
        bo.label_dtype = dts[t];
        bo.label_fill = fills[t];
        raster_batch_buffers_t out;
        ck_assert_msg(raster_batch_read_ex(pool, items, 2, &bo, &out, NULL) == RASTER_OK, "%s",
                      raster_last_error());
        raster_dtype_t dt;
        int64_t shape[4];
        raster_buffer_shape(out.mask, &dt, shape);
        ck_assert_int_eq(dt, dts[t]);
        const size_t esz = raster_dtype_size(dts[t]);
        for (int i = 0; i < 2; i++) {
            /* The single reads: the label boundless with the fill, the mask boundless. */
            uint8_t want[WIN * WIN * 2], wantv[WIN * WIN];
            const int one = 1;
            raster_read_options_t lo;
            raster_read_options_init(&lo);
            lo.bands = &one;
            lo.band_count = 1;
            lo.boundless = 1;
            lo.fill_value = fills[t];
            const raster_view_t wl = raster_view_hwc(want, dts[t], WIN, WIN, 1);
            ck_assert_int_eq(raster_read_into(label, items[i].window, &lo, &wl), RASTER_OK);
            const raster_view_t wv = raster_view_hwc(wantv, RASTER_U8, WIN, WIN, 1);
            ck_assert_int_eq(raster_read_mask_into(img, items[i].window, &ro, &wv), RASTER_OK);
            const uint8_t *gl = (const uint8_t *)raster_buffer_data(out.mask) + i * WIN * WIN * esz;
            const uint8_t *gv = (const uint8_t *)raster_buffer_data(out.validity) + i * WIN * WIN;
            ck_assert_int_eq(memcmp(gl, want, WIN * WIN * esz), 0);
            ck_assert_int_eq(memcmp(gv, wantv, WIN * WIN), 0);
        }
        /* Sample 0's corner is outside: the fill, and invalid. */
        if (dts[t] == RASTER_U8)
            ck_assert_uint_eq(((const uint8_t *)raster_buffer_data(out.mask))[0], 255);
        else
            ck_assert_int_eq(((const int16_t *)raster_buffer_data(out.mask))[0], -1);
        ck_assert_uint_eq(((const uint8_t *)raster_buffer_data(out.validity))[0], 0);
        raster_buffer_release(out.image);
        raster_buffer_release(out.mask);
        raster_buffer_release(out.validity);
        assert_pool_idle(pool);
    }
    /* -1 is no uint8 value: refused before anything is acquired. */
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.masks = 1;
    bo.label_fill = -1;
    raster_batch_buffers_t out;
    const uint64_t acquires = stats_of(pool).acquires;
    ck_assert_int_eq(raster_batch_read_ex(pool, items, 2, &bo, &out, NULL), RASTER_E_INVALID_ARG);
    ck_assert_msg(strstr(raster_last_error(), "label_fill -1") && strstr(raster_last_error(), "uint8"),
                  "%s", raster_last_error());
    ck_assert_uint_eq(stats_of(pool).acquires, acquires);
    /* raster_batch_read() has no place for validity masks. */
    raster_buffer_t *ib = NULL, *mb = NULL;
    bo.label_fill = 0;
    bo.validity = 1;
    ck_assert_int_eq(raster_batch_read(pool, items, 2, &bo, &ib, &mb, NULL), RASTER_E_INVALID_ARG);
    raster_pool_destroy(pool);
    raster_close(img);
    raster_close(label);
}
END_TEST

/* A label on another grid fails naming both files and grids, before any
 * acquire; label_resample does not help across CRSs. */
START_TEST(label_on_another_grid_is_refused)
{
    scene_t s = g_scene;
    raster_dataset_t *off = open_fx(OFF_GRID);
    s.items[2].label = off;
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(16 << 20, &pool), RASTER_OK);
    for (int resample = 0; resample < 2; resample++) {
        raster_batch_options_t bo;
        raster_batch_options_init(&bo);
        bo.masks = 1;
        bo.label_resample = resample;
        raster_buffer_t *ib = NULL, *mb = NULL;
        int64_t failed = -1;
        ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &ib, &mb, &failed), RASTER_E_INVALID_ARG);
        ck_assert_int_eq(failed, 2);
        const char *msg = raster_last_error();
        ck_assert_msg(strstr(msg, "batch sample 2 of 6") && strstr(msg, OFF_GRID) && strstr(msg, IMG_BE) &&
                          strstr(msg, "EPSG:32633") && strstr(msg, "EPSG:32618") && strstr(msg, "CRSs differ"),
                      "%s", msg);
        ck_assert_int_eq(raster_batch_item_check(&s.items[2], &bo), RASTER_E_INVALID_ARG);
        ck_assert_int_eq(raster_batch_item_check(&s.items[0], &bo), RASTER_OK);
    }
    /* Without masks the label is not read, so not checked. */
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    raster_buffer_t *ib = NULL, *mb = NULL;
    ck_assert_int_eq(raster_batch_read(pool, s.items, B, &bo, &ib, &mb, NULL), RASTER_OK);
    raster_buffer_release(ib);
    ck_assert_uint_eq(stats_of(pool).acquires, 1);
    raster_pool_destroy(pool);
    raster_close(off);
}
END_TEST

/* An output size other than the window's: the image is the resampled read,
 * the validity mask the resampled mask read (same method), the label the
 * nearest resampled read of the label (same grid). */
START_TEST(output_size_resamples_image_mask_and_label)
{
    scene_t s = g_scene;
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(16 << 20, &pool), RASTER_OK);
    const int64_t oh = 40, ow = 56;
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.dtype = RASTER_U16;
    bo.masks = 1;
    bo.validity = 1;
    bo.out_height = oh;
    bo.out_width = ow;
    bo.resampling = RASTER_RESAMPLE_BILINEAR;
    bo.threads = 2;
    raster_batch_buffers_t out;
    ck_assert_msg(raster_batch_read_ex(pool, s.items, B, &bo, &out, NULL) == RASTER_OK, "%s",
                  raster_last_error());
    raster_dtype_t dt;
    int64_t shape[4];
    raster_buffer_shape(out.image, &dt, shape);
    ck_assert_int_eq(shape[1], oh);
    ck_assert_int_eq(shape[2], ow);
    for (int i = 0; i < B; i++) {
        const raster_batch_item_t *it = &s.items[i];
        const raster_window_f_t wf = {(double)it->window.col_off, (double)it->window.row_off, WIN, WIN};
        uint16_t want[40 * 56 * 3];
        uint8_t wm[40 * 56], wl[40 * 56];
        const raster_view_t wv = raster_view_hwc(want, RASTER_U16, oh, ow, 3);
        ck_assert_int_eq(raster_read_resampled_into(it->image, wf, RASTER_RESAMPLE_BILINEAR, NULL, &wv), RASTER_OK);
        const raster_view_t mv = raster_view_hwc(wm, RASTER_U8, oh, ow, 1);
        ck_assert_int_eq(raster_read_mask_resampled_into(it->image, wf, RASTER_RESAMPLE_BILINEAR, NULL, &mv),
                         RASTER_OK);
        ck_assert_int_eq(memcmp((uint16_t *)raster_buffer_data(out.image) + i * oh * ow * 3, want, sizeof want), 0);
        ck_assert_int_eq(memcmp((uint8_t *)raster_buffer_data(out.validity) + i * oh * ow, wm, sizeof wm), 0);
        const uint8_t *gm = (uint8_t *)raster_buffer_data(out.mask) + i * oh * ow;
        if (it->label == NULL) {
            ck_assert_int_eq(memcmp(gm, wm, sizeof wm), 0);
            continue;
        }
        const int one = 1;
        raster_read_options_t lo;
        raster_read_options_init(&lo);
        lo.bands = &one;
        lo.band_count = 1;
        const raster_view_t lv = raster_view_hwc(wl, RASTER_U8, oh, ow, 1);
        ck_assert_int_eq(raster_read_resampled_into(it->label, wf, RASTER_RESAMPLE_NEAREST, &lo, &lv), RASTER_OK);
        ck_assert_msg(memcmp(gm, wl, sizeof wl) == 0, "label of sample %d differs from GDAL's nearest", i);
    }
    raster_buffer_release(out.image);
    raster_buffer_release(out.mask);
    raster_buffer_release(out.validity);
    /* Resampled samples cannot be boundless. */
    raster_read_options_t ro;
    raster_read_options_init(&ro);
    ro.boundless = 1;
    s.items[1].opt = &ro;
    ck_assert_int_eq(raster_batch_read_ex(pool, s.items, B, &bo, &out, NULL), RASTER_E_UNSUPPORTED);
    assert_pool_idle(pool);
    raster_pool_destroy(pool);
}
END_TEST

/* mean/std is (x - mean) / std in double, rounded once: x == mean is 0
 * exactly, and every value equals the expression computed here. */
START_TEST(mean_std_is_subtract_then_divide)
{
    scene_t s = g_scene;
    const raster_batch_item_t *it = &s.items[0];
    uint16_t raw[WIN * WIN * 3];
    const raster_view_t rv = raster_view_hwc(raw, RASTER_U16, WIN, WIN, 3);
    ck_assert_int_eq(raster_read_into(it->image, it->window, NULL, &rv), RASTER_OK);
    /* The first pixel's values as the means: that pixel must come out 0. */
    const double mean[3] = {raw[0], raw[1], raw[2]}, std[3] = {0.1, 3.0, 7.0};
    raster_read_options_t ro;
    raster_read_options_init(&ro);
    ro.mean = mean;
    ro.std = std;
    float got[WIN * WIN * 3];
    double got64[WIN * WIN * 3];
    const raster_view_t gv = raster_view_hwc(got, RASTER_F32, WIN, WIN, 3);
    const raster_view_t gv64 = raster_view_hwc(got64, RASTER_F64, WIN, WIN, 3);
    ck_assert_int_eq(raster_read_into(it->image, it->window, &ro, &gv), RASTER_OK);
    ck_assert_int_eq(raster_read_into(it->image, it->window, &ro, &gv64), RASTER_OK);
    for (int k = 0; k < 3; k++) {
        ck_assert(got[k] == 0.0f && !signbit(got[k]));
        ck_assert(got64[k] == 0.0);
    }
    int64_t bad = -1;
    for (int64_t e = 0; e < WIN * WIN * 3 && bad < 0; e++) {
        const double want = ((double)raw[e] - mean[e % 3]) / std[e % 3];
        if (got64[e] != want || got[e] != (float)want)
            bad = e;
    }
    ck_assert_msg(bad < 0, "element %lld differs", (long long)bad);
    /* Both ways at once is refused; a std of 0 too. */
    const double one[3] = {1, 1, 1}, zero[3] = {1, 0, 1};
    ro.scale = one;
    ck_assert_int_eq(raster_read_into(it->image, it->window, &ro, &gv), RASTER_E_INVALID_ARG);
    ro.scale = NULL;
    ro.std = zero;
    ck_assert_int_eq(raster_read_into(it->image, it->window, &ro, &gv), RASTER_E_INVALID_ARG);
    ck_assert_msg(strstr(raster_last_error(), "std of channel 1 is 0"), "%s", raster_last_error());
}
END_TEST

static Suite *
batch_suite(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("results");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, scene_setup, scene_teardown);
    tcase_add_test(tc, pooled_equals_single_reads_for_every_thread_count);
    tcase_add_test(tc, dtype_and_normalisation_are_fused);
    tcase_add_test(tc, into_caller_views_chw);
    tcase_add_test(tc, boundless_samples_fill_and_mask_zero);
    tcase_add_test(tc, mask_exports_as_bhw);
    suite_add_tcase(s, tc);
    tc = tcase_create("labels");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, scene_setup, scene_teardown);
    tcase_add_test(tc, label_fill_and_validity_beside_labels);
    tcase_add_test(tc, label_on_another_grid_is_refused);
    tcase_add_test(tc, output_size_resamples_image_mask_and_label);
    tcase_add_test(tc, mean_std_is_subtract_then_divide);
    suite_add_tcase(s, tc);
    tc = tcase_create("failures");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, scene_setup, scene_teardown);
    tcase_add_test(tc, failing_sample_is_named_and_nothing_leaks);
    tcase_add_test(tc, failing_label_is_named);
    tcase_add_test(tc, mixed_shapes_fail_before_acquiring);
    tcase_add_test(tc, pool_timeout_releases_the_image_buffer);
    tcase_add_test(tc, closed_dataset_is_reported_and_retained_ones_survive);
    suite_add_tcase(s, tc);
    tc = tcase_create("steady");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, scene_setup, scene_teardown);
    tcase_add_test(tc, steady_batches_do_not_allocate);
    tcase_add_test(tc, concurrent_batches_share_the_workers);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(batch_suite)
