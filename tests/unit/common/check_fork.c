/*
 * check_fork.c - fork() while another thread is in the middle of a read.
 *
 * A reader thread loops over reads of one dataset (with the default thread
 * count, the decode worker pool is busy too) while the main thread
 * forks several times at arbitrary moments.  Each child, which inherits
 * whatever locks and half-finished state the parent's threads had at that
 * instant, must: open the file again and read it right, read the inherited
 * dataset right, read a mask, and run a batch read; it exits 0 only if every
 * result equals the parent's reference.  The parent waits with a deadline,
 * so a child that deadlocks fails the test (and is killed) instead of
 * hanging it.  Run for the native reader and for the GDAL reader.  (Not
 * under TSan, which does not support threads started after a fork.)
 */
#include "test_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FORKS 6
#define CHILD_DEADLINE_S 120

static fixture_t *fixtures;
static int fixture_count;

static const char *
pick(const char *word)
{
    for (int i = 0; i < fixture_count; i++)
        if (!fixtures[i].malformed && fixtures[i].native_expected && strstr(fixtures[i].name, word) &&
            strstr(fixtures[i].name, "tile256") && strstr(fixtures[i].name, "3b"))
            return fixture_path(fixtures[i].name);
    return NULL;
}

static raster_dataset_t *
open_with(const char *path, int reader)
{
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = reader;
    raster_dataset_t *ds = NULL;
    return raster_open_ex(path, &oo, &ds) == RASTER_OK ? ds : NULL;
}

/* The window every check reads: several tiles, so the worker pool helps. */
static const raster_window_t WIN = {37, 21, 600, 500};

static uint16_t *
read_win(raster_dataset_t *ds, int bands)
{
    const size_t n = (size_t)(WIN.width * WIN.height * bands);
    uint16_t *buf = malloc(n * sizeof *buf);
    raster_view_t v = raster_view_hwc(buf, RASTER_U16, WIN.height, WIN.width, bands);
    if (raster_read_into(ds, WIN, NULL, &v) != RASTER_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

typedef struct looper {
    raster_dataset_t *ds;
    atomic_int stop;
    atomic_long reads;
    int bands;
} looper_t;

static void *
loop_reads(void *arg)
{
    looper_t *l = arg;
    uint64_t s = 12345;
    uint16_t *buf = malloc((size_t)(256 * 256 * l->bands) * sizeof *buf);
    while (!atomic_load(&l->stop)) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        const raster_window_t w = {(int64_t)(s >> 40) % 400, (int64_t)(s >> 20) % 250, 256, 256};
        raster_view_t v = raster_view_hwc(buf, RASTER_U16, 256, 256, l->bands);
        if (raster_read_into(l->ds, w, NULL, &v) != RASTER_OK)
            abort();
        uint8_t m[64 * 64];
        raster_view_t mv = raster_view_hwc(m, RASTER_U8, 64, 64, 1);
        if (raster_read_mask_into(l->ds, (raster_window_t){w.col_off, w.row_off, 64, 64}, NULL, &mv) !=
            RASTER_OK)
            abort();
        atomic_fetch_add(&l->reads, 1);
    }
    free(buf);
    return NULL;
}

/* In the child: every way of reading must work and be right.  Returns the
 * exit code (0 good; 10+ says which step failed). */
static int
child_checks(const char *path, int reader, raster_dataset_t *inherited, const uint16_t *ref,
             const uint8_t *ref_mask, int bands)
{
    const size_t n = (size_t)(WIN.width * WIN.height * bands) * sizeof(uint16_t);
    raster_dataset_t *fresh = open_with(path, reader);
    if (fresh == NULL)
        return 10;
    uint16_t *a = read_win(fresh, bands);
    if (a == NULL)
        return 11;
    if (memcmp(a, ref, n) != 0)
        return 12;
    free(a);
    uint16_t *b = read_win(inherited, bands);
    if (b == NULL)
        return 13;
    if (memcmp(b, ref, n) != 0)
        return 14;
    free(b);
    uint8_t *m = malloc((size_t)(WIN.width * WIN.height));
    raster_view_t mv = raster_view_hwc(m, RASTER_U8, WIN.height, WIN.width, 1);
    if (raster_read_mask_into(inherited, WIN, NULL, &mv) != RASTER_OK)
        return 15;
    if (memcmp(m, ref_mask, (size_t)(WIN.width * WIN.height)) != 0)
        return 16;
    free(m);
    /* A batch over both datasets, on the library's worker threads. */
    raster_batch_item_t items[4];
    memset(items, 0, sizeof items);
    raster_view_t views[4];
    uint16_t *bb = malloc(4 * n);
    for (int i = 0; i < 4; i++) {
        items[i].image = i % 2 ? inherited : fresh;
        items[i].window = WIN;
        views[i] = raster_view_hwc((uint8_t *)bb + (size_t)i * n, RASTER_U16, WIN.height, WIN.width,
                                   bands);
    }
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.threads = 2;
    if (raster_batch_read_into(items, 4, &bo, views, NULL, NULL) != RASTER_OK)
        return 17;
    for (int i = 0; i < 4; i++)
        if (memcmp((uint8_t *)bb + (size_t)i * n, ref, n) != 0)
            return 18;
    free(bb);
    raster_close(fresh);
    return 0;
}

/* Wait for 'pid' at most CHILD_DEADLINE_S; a child still running then is
 * deadlocked: kill it and report. */
static int
wait_deadline(pid_t pid, int *status)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        const pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= CHILD_DEADLINE_S) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return 0;
        }
        usleep(2000);
    }
}

static void
check_fork_mid_read(int reader)
{
    const char *path = pick("deflate");
    ck_assert_ptr_nonnull(path);
    raster_dataset_t *ds = open_with(path, reader);
    ck_assert_ptr_nonnull(ds);
    raster_info_t in;
    raster_dataset_info(ds, &in);
    if (reader == RASTER_READER_GDAL)
        ck_assert_int_eq(in.reader, RASTER_READER_GDAL);
    const int bands = in.band_count;
    uint16_t *ref = read_win(ds, bands);
    ck_assert_ptr_nonnull(ref);
    uint8_t *ref_mask = malloc((size_t)(WIN.width * WIN.height));
    raster_view_t mv = raster_view_hwc(ref_mask, RASTER_U8, WIN.height, WIN.width, 1);
    ck_assert_int_eq(raster_read_mask_into(ds, WIN, NULL, &mv), RASTER_OK);

    looper_t l = {ds, 0, 0, bands};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, loop_reads, &l), 0);
    while (atomic_load(&l.reads) < 3)
        usleep(1000);
    /* RASTER_STRESS_SCALE > 1 (valgrind): two forks are enough there. */
    const char *scale = getenv("RASTER_STRESS_SCALE");
    const int forks = scale != NULL && atoi(scale) > 1 ? 2 : FORKS;
    for (int k = 0; k < forks; k++) {
        usleep((useconds_t)(1000 + 2371 * k % 7000));     /* somewhere inside a read */
        const pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            _exit(child_checks(path, reader, ds, ref, ref_mask, bands));
        int status = 0;
        ck_assert_msg(wait_deadline(pid, &status), "fork %d: the child deadlocked (killed after %d s)",
                      k, CHILD_DEADLINE_S);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "fork %d: the child failed (%s %d)", k,
                      WIFEXITED(status) ? "exit" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    /* The reader still reads after the forks (none wedged it): its next read
     * is awaited, not assumed to have happened while the children ran (60 s:
     * a deadlock guard). */
    const long after_forks = atomic_load(&l.reads);
    for (int ms = 0; ms < 60000 && atomic_load(&l.reads) <= after_forks; ms++)
        usleep(1000);
    atomic_store(&l.stop, 1);
    pthread_join(th, NULL);
    ck_assert_int_gt(atomic_load(&l.reads), after_forks);
    free(ref);
    free(ref_mask);
    raster_close(ds);
}

START_TEST(fork_mid_read_native) { check_fork_mid_read(-1); }
END_TEST

START_TEST(fork_mid_read_gdal) { check_fork_mid_read(RASTER_READER_GDAL); }
END_TEST

static Suite *
fork_suite(void)
{
    fixture_count = fixtures_load(&fixtures);
    Suite *s = suite_create("fork");
    TCase *tc = tcase_create("fork");
    tcase_set_timeout(tc, 10 * CHILD_DEADLINE_S);
    tcase_add_test(tc, fork_mid_read_native);
    tcase_add_test(tc, fork_mid_read_gdal);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(fork_suite)
