/*
 * check_tile_cache_reads.c - the native reader with the decoded-tile cache
 * on: every window, cold and warm, reads exactly what the GDAL reader reads
 * on every compressed native fixture; a miss decodes the rows GDAL would,
 * so windows lower in the same tile hit; a budget too
 * small for one segment still reads right; a damaged segment publishes
 * nothing; entries are keyed by the file, so a re-opened file hits and a
 * file rewritten in place misses; threads sharing one dataset and a
 * churning cache read right (also under TSan).
 *
 * The cache is process-wide: tests set their own budget and look at
 * differences of the stats, so the suite also passes with CK_FORK=no.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static raster_tile_cache_stats_t
cstats(void)
{
    raster_tile_cache_stats_t s;
    raster_tile_cache_get_stats(&s);
    return s;
}

static void
cache_reset(size_t budget)
{
    raster_tile_cache_set_budget(0);
    raster_tile_cache_set_budget(budget);
}

/* How a window is read: the destination's dtype (-1: the file's), CHW
 * planes instead of HWC pixels, mean/std.  Entries hold planes for
 * pixel-interleaved files, so every shape takes another path out of them. */
typedef struct shape {
    int dtype;
    int chw;
    int normalise;
    const char *name;
} shape_t;

static const shape_t SHAPE_HWC = {-1, 0, 0, "hwc"};
static const shape_t SHAPES_MORE[] = {
    {-1, 1, 0, "chw"},
    {RASTER_F32, 1, 0, "chw float32"},
    {RASTER_F32, 0, 1, "hwc float32 mean/std"},
};
static const double MEANS[8] = {10, 20, 30, 40, 50, 60, 70, 80};
static const double STDS[8] = {3, 5, 7, 9, 11, 13, 15, 17};

static raster_view_t
shape_view(const shape_t *sh, uint8_t *data, raster_dtype_t dt, raster_window_t win, int nch)
{
    raster_view_t v = raster_view_hwc(data, dt, win.height, win.width, nch);
    if (sh->chw) {
        const int64_t size = (int64_t)raster_dtype_size(dt);
        v.col_stride = size;
        v.row_stride = win.width * size;
        v.chan_stride = win.height * win.width * size;
    }
    return v;
}

/* Reads 'win' through both datasets with the same options and shape; fails
 * the test on any difference of status or bytes. */
static void
read_same_shape(raster_dataset_t *nat, raster_dataset_t *gd, raster_window_t win, const int *bands, int nbands,
                const shape_t *sh, const char *what)
{
    raster_info_t in;
    raster_dataset_info(nat, &in);
    raster_read_options_t opt;
    raster_read_options_init(&opt);
    opt.bands = bands;
    opt.band_count = nbands;
    const int nch = bands ? nbands : in.band_count;
    if (sh->normalise && nch <= 8) {
        opt.mean = MEANS;
        opt.std = STDS;
    }
    const raster_dtype_t dt = sh->dtype < 0 ? in.dtype : (raster_dtype_t)sh->dtype;
    const size_t n = raster_view_nbytes(dt, win.height, win.width, nch);
    uint8_t *a = malloc(n), *b = malloc(n);
    ck_assert(a != NULL && b != NULL);
    memset(a, 0x5a, n);
    memset(b, 0xa5, n);
    raster_view_t va = shape_view(sh, a, dt, win, nch);
    raster_view_t vb = shape_view(sh, b, dt, win, nch);
    const raster_status_t sa = raster_read_into(nat, win, &opt, &va);
    if (sa != RASTER_OK)
        ck_abort_msg("%s: native read of (%lld,%lld %lldx%lld): %s", what, (long long)win.col_off,
                     (long long)win.row_off, (long long)win.width, (long long)win.height, raster_last_error());
    const raster_status_t sb = raster_read_into(gd, win, &opt, &vb);
    if (sb != RASTER_OK)
        ck_abort_msg("%s: GDAL read: %s", what, raster_last_error());
    if (memcmp(a, b, n) != 0) {
        size_t i = 0;
        while (a[i] == b[i])
            i++;
        ck_abort_msg("%s, %s: window (%lld,%lld %lldx%lld), %d band(s): byte %zu of %zu differs (%02x vs GDAL "
                     "%02x)", what, sh->name, (long long)win.col_off, (long long)win.row_off, (long long)win.width,
                     (long long)win.height, nch, i, n, a[i], b[i]);
    }
    free(a);
    free(b);
}

static void
read_same(raster_dataset_t *nat, raster_dataset_t *gd, raster_window_t win, const int *bands, int nbands,
          const char *what)
{
    read_same_shape(nat, gd, win, bands, nbands, &SHAPE_HWC, what);
}

/* Every other shape, with all bands, one band (the last: the widest
 * stride) and the bands reversed. */
static void
read_same_more_shapes(raster_dataset_t *nat, raster_dataset_t *gd, raster_window_t win, const int *rev, int nrev,
                      const char *what)
{
    const int last = nrev;
    for (size_t i = 0; i < sizeof SHAPES_MORE / sizeof SHAPES_MORE[0]; i++) {
        read_same_shape(nat, gd, win, NULL, 0, &SHAPES_MORE[i], what);
        read_same_shape(nat, gd, win, &last, 1, &SHAPES_MORE[i], what);
        read_same_shape(nat, gd, win, rev, nrev, &SHAPES_MORE[i], what);
    }
}

/* Overlapping windows (stride half their size) over the whole raster, with
 * all bands and with the bands reversed. */
static int
grid_pass(raster_dataset_t *nat, raster_dataset_t *gd, const char *name, int more_shapes)
{
    raster_info_t in;
    raster_dataset_info(nat, &in);
    const int64_t ww = in.width / 3 + 1, wh = in.height / 3 + 1;
    const int64_t sx = ww / 2 + 1, sy = wh / 2 + 1;
    int rev[8];
    const int nrev = in.band_count < 8 ? in.band_count : 8;
    for (int k = 0; k < nrev; k++)
        rev[k] = nrev - k;
    int reads = 0;
    for (int64_t r = 0; r < in.height; r += sy)
        for (int64_t c = 0; c < in.width; c += sx) {
            raster_window_t w = {c, r, c + ww <= in.width ? ww : in.width - c,
                                 r + wh <= in.height ? wh : in.height - r};
            read_same(nat, gd, w, NULL, 0, name);
            read_same(nat, gd, w, rev, nrev, name);
            reads += 2;
            if (more_shapes) {
                read_same_more_shapes(nat, gd, w, rev, nrev, name);
                reads += 3 * (int)(sizeof SHAPES_MORE / sizeof SHAPES_MORE[0]);
            }
        }
    return reads;
}

static int
cached_fixture(const fixture_t *f)
{
    return f->native_expected && !f->malformed && strstr(f->name, "_none_") == NULL &&
           strncmp(f->name, "hfa_", 4) != 0;
}

START_TEST(every_compressed_fixture_cold_and_warm)
{
    fixture_t *fx = NULL;
    const int nf = fixtures_load(&fx);
    ck_assert_int_gt(nf, 0);
    cache_reset((size_t)256 << 20);
    /* Under ASan, TSan and valgrind (RASTER_MATRIX_SCALE > 1): every 8th. */
    const char *scale = getenv("RASTER_MATRIX_SCALE");
    const int every = scale != NULL && atoi(scale) > 1 ? 8 : 1;
    int tried = 0, seen = 0;
    for (int i = 0; i < nf; i++) {
        if (!cached_fixture(&fx[i]) || seen++ % every != 0)
            continue;
        const char *path = fixture_path(fx[i].name);
        raster_dataset_t *nat = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
        raster_dataset_t *gd = open_with_reader(path, RASTER_READER_GDAL);
        const raster_tile_cache_stats_t s0 = cstats();
        grid_pass(nat, gd, fx[i].name, 1);
        const raster_tile_cache_stats_t s1 = cstats();
        const int reads = grid_pass(nat, gd, fx[i].name, 1);
        const raster_tile_cache_stats_t s2 = cstats();
        /* Cold: decoded and published; warm: every segment is a hit. */
        ck_assert_msg(s1.inserts > s0.inserts, "%s: nothing was cached", fx[i].name);
        ck_assert_msg(s2.misses == s1.misses, "%s: %llu misses on the warm pass", fx[i].name,
                      (unsigned long long)(s2.misses - s1.misses));
        ck_assert_msg(s2.hits - s1.hits >= (uint64_t)reads, "%s: %llu hits for %d reads", fx[i].name,
                      (unsigned long long)(s2.hits - s1.hits), reads);
        raster_close(gd);
        raster_close(nat);
        tried++;
    }
    ck_assert_int_gt(tried, 60 / every);
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);
    free(fx);
}
END_TEST

START_TEST(a_miss_decodes_the_rows_gdal_would_so_lower_windows_hit)
{
    const char *path = fixture_path("u16_deflate_pred2_tile256_pixel_3b_700x531.tif");
    raster_dataset_t *nat = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
    raster_dataset_t *gd = open_with_reader(path, RASTER_READER_GDAL);
    cache_reset((size_t)64 << 20);
    const raster_tile_cache_stats_t s0 = cstats();
    read_same(nat, gd, (raster_window_t){10, 3, 40, 20}, NULL, 0, "top rows");     /* tile 0 */
    const raster_tile_cache_stats_t s1 = cstats();
    ck_assert_uint_eq(s1.misses - s0.misses, 1);
    ck_assert_uint_eq(s1.inserts - s0.inserts, 1);
    read_same(nat, gd, (raster_window_t){0, 200, 50, 56}, NULL, 0, "its last rows");
    ck_assert_uint_eq(cstats().hits - s1.hits, 1);
    ck_assert_uint_eq(cstats().misses, s1.misses);
    /* A bottom-edge tile (rows 512..530 of 531): its rows inside the image. */
    read_same(nat, gd, (raster_window_t){0, 520, 50, 5}, NULL, 0, "bottom edge, top");
    const raster_tile_cache_stats_t s2 = cstats();
    read_same(nat, gd, (raster_window_t){0, 525, 50, 6}, NULL, 0, "bottom edge, last rows");
    ck_assert_uint_eq(cstats().hits - s2.hits, 1);
    raster_close(gd);
    raster_close(nat);
    raster_tile_cache_set_budget(0);
}
END_TEST

START_TEST(a_budget_below_one_segment_reads_right)
{
    const char *path = fixture_path("u8_deflate_pred2_tile512_band_3b_1024x768.tif");
    raster_dataset_t *nat = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
    raster_dataset_t *gd = open_with_reader(path, RASTER_READER_GDAL);
    cache_reset(4096);
    const raster_tile_cache_stats_t s0 = cstats();
    grid_pass(nat, gd, "tiny budget", 0);
    const raster_tile_cache_stats_t s1 = cstats();
    ck_assert_uint_eq(s1.inserts, s0.inserts);
    ck_assert_uint_eq(s1.bytes_used, 0);
    ck_assert_uint_eq(s1.hits, s0.hits);
    raster_close(gd);
    raster_close(nat);
    raster_tile_cache_set_budget(0);
}
END_TEST

START_TEST(a_damaged_segment_publishes_nothing)
{
    const char *path = fixture_path("corrupt_tile.tif");
    raster_dataset_t *nat = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
    raster_info_t in;
    raster_dataset_info(nat, &in);
    ck_assert_int_gt(in.block_width, 0);
    cache_reset((size_t)64 << 20);
    const int64_t bw = in.block_width, bh = in.block_height;
    const size_t n = raster_view_nbytes(in.dtype, bh, bw, in.band_count);
    uint8_t *buf = malloc(n);
    /* Tile by tile, twice: every good tile is published by the first pass
     * and a hit in the second; the damaged one fails both times, and is
     * never published. */
    int failed[2] = {0, 0};
    uint64_t inserts[2];
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t r = 0; r < in.height; r += bh)
            for (int64_t c = 0; c < in.width; c += bw) {
                const raster_window_t w = {c, r, c + bw <= in.width ? bw : in.width - c,
                                           r + bh <= in.height ? bh : in.height - r};
                raster_view_t v = raster_view_hwc(buf, in.dtype, w.height, w.width, in.band_count);
                const raster_status_t st = raster_read_into(nat, w, NULL, &v);
                if (st != RASTER_OK) {
                    ck_assert_int_eq(st, RASTER_E_CORRUPT);
                    ck_assert_ptr_nonnull(strstr(raster_last_error(), "tile"));
                    failed[pass]++;
                }
            }
        inserts[pass] = cstats().inserts;
    }
    ck_assert_int_ge(failed[0], 1);
    ck_assert_int_eq(failed[1], failed[0]);
    ck_assert_uint_eq(inserts[1], inserts[0]);
    raster_close(nat);
    free(buf);
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);
}
END_TEST

/* ------------------------------ file keys ------------------------------ */

static void
copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    ck_assert_ptr_nonnull(in);
    /* "r+b" then truncate: the same inode, rewritten in place. */
    FILE *out = fopen(to, "r+b");
    if (out == NULL)
        out = fopen(to, "wb");
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(ftruncate(fileno(out), 0), 0);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

START_TEST(a_reopened_file_hits_the_entries_of_its_last_open)
{
    const char *path = fixture_path("u16_deflate_pred2_tile256_pixel_3b_700x531.tif");
    cache_reset((size_t)64 << 20);
    raster_dataset_t *gd = open_with_reader(path, RASTER_READER_GDAL);
    raster_dataset_t *nat = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
    const raster_tile_cache_stats_t s0 = cstats();
    grid_pass(nat, gd, "first open", 0);
    raster_close(nat);
    const raster_tile_cache_stats_t s1 = cstats();
    ck_assert_uint_gt(s1.misses, s0.misses);
    ck_assert_int_gt(s1.entries, 0);                   /* kept after the close */
    nat = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
    const int reads = grid_pass(nat, gd, "second open", 0);
    const raster_tile_cache_stats_t s2 = cstats();
    ck_assert_uint_eq(s2.misses, s1.misses);
    ck_assert_uint_ge(s2.hits - s1.hits, (uint64_t)reads);
    raster_close(nat);
    raster_close(gd);
    raster_tile_cache_set_budget(0);
}
END_TEST

/* A file rewritten in place (same path, same inode) with other pixels of
 * the same shape: the new open misses and reads the new pixels. */
START_TEST(a_file_rewritten_in_place_misses)
{
    const char *a = "u16_deflate_pred2_tile256_pixel_3b_700x531.tif";
    const char *b = "u16_zstd_pred2_tile256_pixel_3b_700x531_bigtiff.tif";
    char tmp[] = "/tmp/rl-rewrite-XXXXXX";
    const int fd = mkstemp(tmp);
    ck_assert_int_ge(fd, 0);
    close(fd);
    cache_reset((size_t)64 << 20);
    char pa[1024], pb[1024];
    snprintf(pa, sizeof pa, "%s", fixture_path(a));
    snprintf(pb, sizeof pb, "%s", fixture_path(b));
    copy_file(pa, tmp);
    raster_dataset_t *nat = open_with_reader(tmp, RASTER_READER_NATIVE_TIFF);
    raster_dataset_t *gd = open_with_reader(pa, RASTER_READER_GDAL);
    grid_pass(nat, gd, "before the rewrite", 0);
    raster_close(nat);
    raster_close(gd);
    struct stat before, after;
    ck_assert_int_eq(stat(tmp, &before), 0);
    copy_file(pb, tmp);
    ck_assert_int_eq(stat(tmp, &after), 0);
    ck_assert_uint_eq(before.st_ino, after.st_ino);     /* in place */
    const raster_tile_cache_stats_t s0 = cstats();
    nat = open_with_reader(tmp, RASTER_READER_NATIVE_TIFF);
    gd = open_with_reader(pb, RASTER_READER_GDAL);
    grid_pass(nat, gd, "after the rewrite", 0);
    const raster_tile_cache_stats_t s1 = cstats();
    ck_assert_uint_gt(s1.misses, s0.misses);
    raster_close(nat);
    raster_close(gd);
    unlink(tmp);
    raster_tile_cache_set_budget(0);
}
END_TEST

/* ------------------------------ threads -------------------------------- */

typedef struct {
    raster_dataset_t *nat;
    const uint8_t *whole;       /* the GDAL reader's whole raster, HWC */
    raster_info_t in;
    unsigned seed;
    int reads;
} reader_arg_t;

static void *
reader_main(void *arg)
{
    reader_arg_t *a = arg;
    const int64_t size = raster_dtype_size(a->in.dtype), nch = a->in.band_count;
    const size_t row = (size_t)(a->in.width * nch * size);
    uint8_t *buf = malloc(raster_view_nbytes(a->in.dtype, 200, 200, (int)nch));
    for (int i = 0; i < a->reads; i++) {
        a->seed = a->seed * 1103515245u + 12345u;
        const int64_t w = 1 + (int64_t)((a->seed >> 8) % 200), h = 1 + (int64_t)((a->seed >> 16) % 200);
        a->seed = a->seed * 1103515245u + 12345u;
        const int64_t c = (int64_t)((a->seed >> 4) % (uint64_t)(a->in.width - w + 1));
        const int64_t r = (int64_t)((a->seed >> 12) % (uint64_t)(a->in.height - h + 1));
        raster_view_t v = raster_view_hwc(buf, a->in.dtype, h, w, (int)nch);
        if (raster_read_into(a->nat, (raster_window_t){c, r, w, h}, NULL, &v) != RASTER_OK)
            return (void *)"read failed";
        for (int64_t y = 0; y < h; y++)
            if (memcmp(buf + (size_t)(y * w * nch * size), a->whole + (size_t)(r + y) * row + (size_t)(c * nch * size),
                       (size_t)(w * nch * size)) != 0)
                return (void *)"pixels differ from GDAL's";
    }
    free(buf);
    return NULL;
}

START_TEST(threads_share_one_dataset_and_a_churning_cache)
{
    const char *path = fixture_path("u16_zstd_pred2_tile256_pixel_3b_700x531_bigtiff.tif");
    raster_dataset_t *nat = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
    raster_dataset_t *gd = open_with_reader(path, RASTER_READER_GDAL);
    raster_info_t in;
    raster_dataset_info(nat, &in);
    const size_t n = raster_view_nbytes(in.dtype, in.height, in.width, in.band_count);
    uint8_t *whole = malloc(n);
    raster_view_t v = raster_view_hwc(whole, in.dtype, in.height, in.width, in.band_count);
    ck_assert_int_eq(raster_read_into(gd, (raster_window_t){0, 0, in.width, in.height}, NULL, &v), RASTER_OK);
    raster_close(gd);
    /* Room for about three tiles of the six: constant eviction. */
    cache_reset((size_t)3 * (256 * 256 * 3 * 2 + 70000));
    raster_set_threads(2);
    const char *stress = getenv("RASTER_STRESS_SCALE");
    const int scale = stress ? atoi(stress) : 1;
    enum { NT = 4 };
    pthread_t th[NT];
    reader_arg_t args[NT];
    for (int k = 0; k < NT; k++) {
        args[k] = (reader_arg_t){nat, whole, in, 77u + (unsigned)k, 300 / (scale > 0 ? scale : 1) + 5};
        ck_assert_int_eq(pthread_create(&th[k], NULL, reader_main, &args[k]), 0);
    }
    for (int k = 0; k < NT; k++) {
        void *err = NULL;
        pthread_join(th[k], &err);
        ck_assert_msg(err == NULL, "thread %d: %s", k, (const char *)err);
    }
    const raster_tile_cache_stats_t s = cstats();
    ck_assert_uint_gt(s.hits, 0);
    ck_assert_uint_gt(s.evictions, 0);
    raster_set_threads(0);
    raster_close(nat);
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);
    free(whole);
}
END_TEST

static Suite *
tile_cache_reads_suite(void)
{
    Suite *s = suite_create("tile_cache_reads");
    TCase *tc = tcase_create("reads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, every_compressed_fixture_cold_and_warm);
    tcase_add_test(tc, a_miss_decodes_the_rows_gdal_would_so_lower_windows_hit);
    tcase_add_test(tc, a_budget_below_one_segment_reads_right);
    tcase_add_test(tc, a_damaged_segment_publishes_nothing);
    tcase_add_test(tc, a_reopened_file_hits_the_entries_of_its_last_open);
    tcase_add_test(tc, a_file_rewritten_in_place_misses);
    tcase_add_test(tc, threads_share_one_dataset_and_a_churning_cache);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(tile_cache_reads_suite)
