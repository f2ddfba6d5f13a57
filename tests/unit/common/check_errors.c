/*
 * check_errors.c - every documented failure returns its status with a
 * message naming the file, window and cause, and writes nothing outside the
 * destination (guard bytes on both sides of every buffer).
 */
#include "test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static fixture_t *fixtures;
static int fixture_count;

/* A small readable 3-band fixture (or any readable one). */
static const char *some_fixture(void)
{
    for (int i = 0; i < fixture_count; i++)
        if (!fixtures[i].malformed && strstr(fixtures[i].name, "3b"))
            return fixture_path(fixtures[i].name);
    for (int i = 0; i < fixture_count; i++)
        if (!fixtures[i].malformed)
            return fixture_path(fixtures[i].name);
    return NULL;
}

static raster_dataset_t *open_some(raster_info_t *in)
{
    const char *p = some_fixture();
    ck_assert_ptr_nonnull(p);
    raster_dataset_t *ds = NULL;
    ck_assert_msg(raster_open(p, &ds) == RASTER_OK, "%s", raster_last_error());
    raster_dataset_info(ds, in);
    return ds;
}

#define ASSERT_MSG_HAS(s) ck_assert_msg(strstr(raster_last_error(), (s)) != NULL, \
                                        "message \"%s\" lacks \"%s\"", raster_last_error(), (s))

START_TEST(missing_file)
{
    raster_dataset_t *ds = (raster_dataset_t *)0x1;
    ck_assert_int_eq(raster_open("/nonexistent/dir/x.tif", &ds), RASTER_E_IO);
    ck_assert_ptr_null(ds);
    ASSERT_MSG_HAS("/nonexistent/dir/x.tif");
    ASSERT_MSG_HAS("no such file");
}
END_TEST

START_TEST(not_a_raster)
{
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open(fixture_path("not_a_tiff.tif"), &ds), RASTER_E_FORMAT);
    ck_assert_ptr_null(ds);
    ASSERT_MSG_HAS("not_a_tiff.tif");
    ck_assert_int_eq(raster_open(fixture_path("zero_length.tif"), &ds), RASTER_E_FORMAT);
    ck_assert_int_eq(raster_open("/tmp", &ds), RASTER_E_FORMAT);
}
END_TEST

START_TEST(null_arguments)
{
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open(NULL, &ds), RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_open("x", NULL), RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_open("", &ds), RASTER_E_INVALID_ARG);
    uint8_t b[4];
    raster_view_t v = raster_view_hwc(b, RASTER_U8, 1, 1, 1);
    ck_assert_int_eq(raster_read_into(NULL, (raster_window_t){0, 0, 1, 1}, NULL, &v), RASTER_E_INVALID_ARG);
    raster_info_t in;
    ds = open_some(&in);
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){0, 0, 1, 1}, NULL, NULL), RASTER_E_INVALID_ARG);
    v.data = NULL;
    v.channels = in.band_count;
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){0, 0, 1, 1}, NULL, &v), RASTER_E_INVALID_ARG);
    ASSERT_MSG_HAS("NULL data");
    ck_assert_int_eq(raster_dataset_info(ds, NULL), RASTER_E_INVALID_ARG);
    raster_close(ds);
    raster_close(NULL);
}
END_TEST

/* Outside without boundless, zero and negative sizes: nothing written. */
START_TEST(bad_windows)
{
    raster_info_t in;
    raster_dataset_t *ds = open_some(&in);
    const int64_t W = in.width, H = in.height;
    struct { raster_window_t w; raster_status_t st; const char *needle; } cases[] = {
        {{-1, 0, 4, 4}, RASTER_E_BOUNDS, "outside"},
        {{0, -1, 4, 4}, RASTER_E_BOUNDS, "outside"},
        {{W - 3, 0, 4, 4}, RASTER_E_BOUNDS, "outside"},
        {{0, H - 3, 4, 4}, RASTER_E_BOUNDS, "outside"},
        {{W, H, 4, 4}, RASTER_E_BOUNDS, "outside"},
        {{0, 0, 0, 4}, RASTER_E_INVALID_ARG, ">= 1"},
        {{0, 0, 4, -2}, RASTER_E_INVALID_ARG, ">= 1"},
        {{INT64_MAX - 1, 0, 4, 4}, RASTER_E_BOUNDS, "large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const raster_window_t w = cases[i].w;
        const int64_t h = w.height > 0 ? w.height : 1, wd = w.width > 0 ? w.width : 1;
        guarded_t g = guarded_alloc((size_t)(h * wd * in.band_count) * 8);
        memset(g.data, 0x11, g.nbytes);
        raster_view_t v = raster_view_hwc(g.data, RASTER_F64, w.height, w.width, in.band_count);
        ck_assert_int_eq(raster_read_into(ds, w, NULL, &v), cases[i].st);
        ASSERT_MSG_HAS(cases[i].needle);
        ASSERT_MSG_HAS(some_fixture());
        ck_assert(guarded_intact(&g));
        for (size_t j = 0; j < g.nbytes; j++)
            if (g.data[j] != 0x11)
                ck_abort_msg("case %zu: a failed read wrote byte %zu", i, j);
        guarded_free(&g);
    }
    raster_close(ds);
}
END_TEST

START_TEST(view_mismatch)
{
    raster_info_t in;
    raster_dataset_t *ds = open_some(&in);
    const raster_window_t w = {0, 0, 8, 6};
    guarded_t g = guarded_alloc(8 * 6 * 8 * 8);
    /* Too small: one row short, one column short, one channel short. */
    raster_view_t v = raster_view_hwc(g.data, RASTER_U16, 5, 8, in.band_count);
    ck_assert_int_eq(raster_read_into(ds, w, NULL, &v), RASTER_E_INVALID_ARG);
    ASSERT_MSG_HAS("needs 6x8x");
    v = raster_view_hwc(g.data, RASTER_U16, 6, 7, in.band_count);
    ck_assert_int_eq(raster_read_into(ds, w, NULL, &v), RASTER_E_INVALID_ARG);
    v = raster_view_hwc(g.data, RASTER_U16, 6, 8, in.band_count - 1);
    ck_assert_int_eq(raster_read_into(ds, w, NULL, &v), RASTER_E_INVALID_ARG);
    /* Unknown dtype, negative and overlapping strides. */
    v = raster_view_hwc(g.data, (raster_dtype_t)42, 6, 8, in.band_count);
    ck_assert_int_eq(raster_read_into(ds, w, NULL, &v), RASTER_E_INVALID_ARG);
    ASSERT_MSG_HAS("dtype");
    v = raster_view_hwc(g.data, RASTER_U16, 6, 8, in.band_count);
    v.col_stride = -v.col_stride;
    ck_assert_int_eq(raster_read_into(ds, w, NULL, &v), RASTER_E_INVALID_ARG);
    ASSERT_MSG_HAS("negative");
    v = raster_view_hwc(g.data, RASTER_U16, 6, 8, in.band_count);
    v.row_stride = v.col_stride;     /* rows on top of each other */
    ck_assert_int_eq(raster_read_into(ds, w, NULL, &v), RASTER_E_INVALID_ARG);
    ASSERT_MSG_HAS("overlap");
    /* A mask destination must be uint8 with one channel. */
    v = raster_view_hwc(g.data, RASTER_U16, 6, 8, 1);
    ck_assert_int_eq(raster_read_mask_into(ds, w, NULL, &v), RASTER_E_INVALID_ARG);
    ASSERT_MSG_HAS("uint8");
    v = raster_view_hwc(g.data, RASTER_U8, 6, 8, 2);
    ck_assert_int_eq(raster_read_mask_into(ds, w, NULL, &v), RASTER_E_INVALID_ARG);
    ck_assert(guarded_intact(&g));
    guarded_free(&g);
    raster_close(ds);
}
END_TEST

START_TEST(unknown_bands_and_options)
{
    raster_info_t in;
    raster_dataset_t *ds = open_some(&in);
    uint16_t buf[16];
    raster_view_t v = raster_view_hwc(buf, RASTER_U16, 2, 2, 1);
    raster_read_options_t opt;
    raster_read_options_init(&opt);
    const int bad[] = {0, in.band_count + 1, -3};
    for (int i = 0; i < 3; i++) {
        opt.bands = &bad[i];
        opt.band_count = 1;
        ck_assert_int_eq(raster_read_into(ds, (raster_window_t){0, 0, 2, 2}, &opt, &v), RASTER_E_BOUNDS);
        ASSERT_MSG_HAS("does not exist");
    }
    opt.bands = bad;
    opt.band_count = 0;
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){0, 0, 2, 2}, &opt, &v), RASTER_E_INVALID_ARG);
    raster_read_options_t stale = {0};
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){0, 0, 2, 2}, &stale, &v), RASTER_E_INVALID_ARG);
    ASSERT_MSG_HAS("raster_read_options_init");
    raster_band_info_t bi;
    ck_assert_int_eq(raster_band_info(ds, in.band_count + 1, &bi), RASTER_E_BOUNDS);
    ck_assert_int_eq(raster_band_info(ds, 1, &bi), RASTER_OK);
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = 7;
    raster_dataset_t *ds2 = NULL;
    ck_assert_int_eq(raster_open_ex(some_fixture(), &oo, &ds2), RASTER_E_INVALID_ARG);
    raster_close(ds);
}
END_TEST

/* The causes a binding picks exception classes by: set with the message at
 * the failing site, RASTER_CAUSE_NONE for any other failure, kept when a
 * batch re-words a sample's failure (also across its worker threads). */
START_TEST(error_causes)
{
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open("/nonexistent/dir/x.tif", &ds), RASTER_E_IO);
    ck_assert_int_eq(raster_last_error_cause(), RASTER_CAUSE_NOT_FOUND);
    ck_assert_int_eq(raster_open(fixture_path("not_a_tiff.tif"), &ds), RASTER_E_FORMAT);
    ck_assert_int_eq(raster_last_error_cause(), RASTER_CAUSE_NONE);
    raster_info_t in;
    ds = open_some(&in);
    uint16_t buf[4 * 16];
    raster_view_t v = raster_view_hwc(buf, RASTER_U16, 2, 2, 1);
    raster_read_options_t opt;
    raster_read_options_init(&opt);
    const int bad = in.band_count + 1;
    opt.bands = &bad;
    opt.band_count = 1;
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){0, 0, 2, 2}, &opt, &v), RASTER_E_BOUNDS);
    ck_assert_int_eq(raster_last_error_cause(), RASTER_CAUSE_BAND_INDEX);
    ck_assert_int_eq(raster_read_into(ds, (raster_window_t){-1, 0, 2, 2}, NULL, &v), RASTER_E_BOUNDS);
    ck_assert_int_eq(raster_last_error_cause(), RASTER_CAUSE_NONE);      /* a window, not a band */
    raster_band_info_t bi;
    ck_assert_int_eq(raster_band_info(ds, bad, &bi), RASTER_E_BOUNDS);
    ck_assert_int_eq(raster_last_error_cause(), RASTER_CAUSE_BAND_INDEX);
    char **items = NULL;
    ck_assert_int_eq(raster_metadata(ds, bad, NULL, &items), RASTER_E_BOUNDS);
    ck_assert_int_eq(raster_last_error_cause(), RASTER_CAUSE_BAND_INDEX);
    /* a batch of 4 samples on up to 4 threads: the prefixed message keeps the cause */
    raster_batch_item_t items4[4];
    for (int i = 0; i < 4; i++)
        items4[i] = (raster_batch_item_t){.image = ds, .window = {0, 0, 2, 2}};
    raster_view_t views[4];
    for (int i = 0; i < 4; i++)
        views[i] = raster_view_hwc(buf + 4 * i, RASTER_U16, 2, 2, 1);
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.read = &opt;
    bo.threads = 4;
    ck_assert_int_eq(raster_batch_read_into(items4, 4, &bo, views, NULL, NULL), RASTER_E_BOUNDS);
    ASSERT_MSG_HAS("batch sample");
    ck_assert_int_eq(raster_last_error_cause(), RASTER_CAUSE_BAND_INDEX);
    raster_close(ds);
}
END_TEST

/* A retained dataset read after raster_close() says it is closed. */
START_TEST(closed_dataset)
{
    raster_info_t in;
    raster_dataset_t *ds = open_some(&in);
    raster_dataset_t *held = raster_dataset_retain(ds);
    raster_close(ds);
    uint8_t buf[64];
    raster_view_t v = raster_view_hwc(buf, RASTER_U8, 1, 1, in.band_count);
    ck_assert_int_eq(raster_read_into(held, (raster_window_t){0, 0, 1, 1}, NULL, &v), RASTER_E_CLOSED);
    ASSERT_MSG_HAS("closed");
    v = raster_view_hwc(buf, RASTER_U8, 1, 1, 1);
    ck_assert_int_eq(raster_read_mask_into(held, (raster_window_t){0, 0, 1, 1}, NULL, &v), RASTER_E_CLOSED);
    ck_assert_int_eq(raster_dataset_info(held, &in), RASTER_E_CLOSED);
    raster_dataset_release(held);
}
END_TEST

/* ------------------------------ descriptor limit ----------------------- */

/* Descriptors this process has open (/proc/self/fd, less the directory's). */
static int
open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

static void
nofile_set(rlim_t soft)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = soft;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

#define FD_ROOM 40          /* descriptors left under the lowered limit */
#define MAX_HELD 400

/* Running out of descriptors is an I/O error naming the file and the
 * limit (not a format error), and a dataset the native reader serves
 * holds one descriptor: with FD_ROOM descriptors free, FD_ROOM - 1 datasets
 * open (an open holds GDAL's descriptor and the reader's for a moment).
 * Then the same limit meets GDAL's open of a file only GDAL reads (HFA),
 * and the re-open of a forked child's first read. */
START_TEST(descriptor_limit)
{
    char path[512], hfa[512];     /* fixture_path() reuses its buffer */
    snprintf(path, sizeof path, "%s", some_fixture());
    snprintf(hfa, sizeof hfa, "%s", fixture_path("hfa_i16_1b_700x531.img"));
    raster_info_t in;
    raster_dataset_t *warm = open_some(&in);   /* GDAL's and PROJ's own files, opened once */
    ck_assert_int_eq(in.reader, RASTER_READER_NATIVE_TIFF);
    raster_close(warm);
    struct rlimit saved;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    /* The forked child's verdict comes back through a pipe, not its exit
     * status: under valgrind (CK_FORK=no) the child's exit runs a leak
     * check over what earlier tests left in the process. */
    int verdict[2];
    ck_assert_int_eq(pipe(verdict), 0);
    const int base = open_fd_count();
    char limit[32];
    snprintf(limit, sizeof limit, "limit of %d open files", base + FD_ROOM);
    nofile_set((rlim_t)(base + FD_ROOM));
    static raster_dataset_t *held[MAX_HELD];
    int n = 0;
    raster_status_t st = RASTER_OK;
    while (n < MAX_HELD && (st = raster_open(path, &held[n])) == RASTER_OK)
        n++;
    ck_assert_msg(st == RASTER_E_IO, "open %d: %s: %s", n, raster_status_str(st), raster_last_error());
    ASSERT_MSG_HAS(path);
    ASSERT_MSG_HAS("RLIMIT_NOFILE");
    ASSERT_MSG_HAS(limit);
    ck_assert_msg(n >= FD_ROOM - 1, "%d datasets opened with %d descriptors free", n, FD_ROOM);
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open(hfa, &ds), RASTER_E_IO);
    ASSERT_MSG_HAS("hfa_i16_1b_700x531.img");
    ASSERT_MSG_HAS("RLIMIT_NOFILE");
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* No descriptor free: the limit is on descriptor numbers, so it
         * goes to the lowest free one.  The child's first read must open
         * the file again. */
        const int lowest_free = open("/dev/null", O_RDONLY);
        close(lowest_free);
        struct rlimit rl = {(rlim_t)lowest_free, saved.rlim_max};
        double px[64];          /* one pixel of any dtype and band count */
        raster_view_t v = raster_view_hwc(px, in.dtype, 1, 1, in.band_count);
        const raster_status_t rs = setrlimit(RLIMIT_NOFILE, &rl) != 0
                                       ? RASTER_E_INVALID_ARG
                                       : raster_read_into(held[0], (raster_window_t){0, 0, 1, 1}, NULL, &v);
        const char ok = rs == RASTER_E_IO && strstr(raster_last_error(), "after fork") != NULL &&
                        strstr(raster_last_error(), "RLIMIT_NOFILE") != NULL;
        if (!ok)
            fprintf(stderr, "child: %s: %s\n", raster_status_str(rs), raster_last_error());
        _exit(write(verdict[1], &ok, 1) == 1 ? 0 : 1);
    }
    close(verdict[1]);
    char ok = 0;
    ck_assert_int_eq(read(verdict[0], &ok, 1), 1);
    close(verdict[0]);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    ck_assert_msg(ok, "the child's re-open at the limit: see its message above");
    while (n > 0)
        raster_close(held[--n]);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
}
END_TEST

/* Hostile files: open or read fails with a status, never a crash, and the
 * destination's guards survive.  Reads cover the whole raster. */
START_TEST(malformed_files_fail_cleanly)
{
    if (!fixtures[_i].malformed)
        return;
    const char *path = fixture_path(fixtures[_i].name);
    for (int reader = -1; reader <= 0; reader++) {
        raster_open_options_t oo;
        raster_open_options_init(&oo);
        oo.reader = reader;
        raster_dataset_t *ds = NULL;
        const raster_status_t st = raster_open_ex(path, &oo, &ds);
        if (st != RASTER_OK) {
            ck_assert_msg(st == RASTER_E_FORMAT || st == RASTER_E_CORRUPT || st == RASTER_E_IO,
                          "%s: open gave %s", path, raster_status_str(st));
            ck_assert_ptr_nonnull(strstr(raster_last_error(), fixtures[_i].name));
            continue;
        }
        raster_info_t in;
        raster_dataset_info(ds, &in);
        guarded_t g = guarded_alloc((size_t)(in.width * in.height * in.band_count) * 8);
        raster_view_t v = raster_view_hwc(g.data, RASTER_F64, in.height, in.width, in.band_count);
        const raster_status_t rs = raster_read_into(ds, (raster_window_t){0, 0, in.width, in.height}, NULL, &v);
        ck_assert_msg(rs == RASTER_E_CORRUPT || rs == RASTER_E_IO, "%s (reader %d): read gave %s: %s", path,
                      reader, raster_status_str(rs), raster_last_error());
        ck_assert_msg(strstr(raster_last_error(), fixtures[_i].name) != NULL, "message lacks the file: %s",
                      raster_last_error());
        ck_assert(guarded_intact(&g));
        guarded_free(&g);
        raster_close(ds);
    }
}
END_TEST

static Suite *errors_suite(void)
{
    fixture_count = fixtures_load(&fixtures);
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, not_a_raster);
    tcase_add_test(tc, null_arguments);
    tcase_add_test(tc, bad_windows);
    tcase_add_test(tc, view_mismatch);
    tcase_add_test(tc, unknown_bands_and_options);
    tcase_add_test(tc, closed_dataset);
    tcase_add_test(tc, error_causes);
    tcase_add_test(tc, descriptor_limit);
    tcase_add_loop_test(tc, malformed_files_fail_cleanly, 0, fixture_count);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(errors_suite)
