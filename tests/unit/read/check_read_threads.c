/*
 * check_read_threads.c - one dataset read from several threads at once
 * (both readers) gives exactly what a single thread reads, and a close on
 * one thread while others hold references is safe.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 4

static fixture_t *fixtures;
static int fixture_count;

typedef struct job {
    raster_dataset_t *ds;
    raster_window_t win[32];
    void *want[32];
    int nwin, rounds, channels, failures;
} job_t;

static void *reader_thread(void *arg)
{
    job_t *j = arg;
    for (int round = 0; round < j->rounds; round++)
        for (int i = 0; i < j->nwin; i++) {
            const raster_window_t w = j->win[(i + round) % j->nwin];
            const size_t n = raster_view_nbytes(RASTER_F32, w.height, w.width, j->channels);
            float *buf = malloc(n);
            const raster_view_t v = raster_view_hwc(buf, RASTER_F32, w.height, w.width, j->channels);
            if (raster_read_into(j->ds, w, NULL, &v) != RASTER_OK ||
                memcmp(buf, j->want[(i + round) % j->nwin], n) != 0)
                j->failures++;
            free(buf);
        }
    return NULL;
}

static void run_threads(const char *name, int reader)
{
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = reader;
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open_ex(fixture_path(name), &oo, &ds), RASTER_OK);
    raster_info_t in;
    raster_dataset_info(ds, &in);
    /* RASTER_STRESS_SCALE > 1 (valgrind, TSan): fewer windows and rounds. */
    const char *scale = getenv("RASTER_STRESS_SCALE");
    const int light = scale != NULL && atoi(scale) > 1;
    job_t base = {.ds = ds, .nwin = light ? 6 : 24, .rounds = light ? 2 : 3, .channels = in.band_count};
    unsigned seed = 12345;
    for (int i = 0; i < base.nwin; i++) {
        const int64_t w = 1 + rand_r(&seed) % (in.width < 300 ? in.width : 300);
        const int64_t h = 1 + rand_r(&seed) % (in.height < 300 ? in.height : 300);
        base.win[i] = (raster_window_t){rand_r(&seed) % (in.width - w + 1), rand_r(&seed) % (in.height - h + 1), w, h};
        const size_t n = raster_view_nbytes(RASTER_F32, h, w, in.band_count);
        base.want[i] = malloc(n);
        const raster_view_t v = raster_view_hwc(base.want[i], RASTER_F32, h, w, in.band_count);
        ck_assert_int_eq(raster_read_into(ds, base.win[i], NULL, &v), RASTER_OK);
    }
    job_t jobs[NTHREADS];
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        jobs[t] = base;
        pthread_create(&th[t], NULL, reader_thread, &jobs[t]);
    }
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(th[t], NULL);
        ck_assert_msg(jobs[t].failures == 0, "%s reader %d thread %d: %d bad reads", name, reader, t,
                      jobs[t].failures);
    }
    for (int i = 0; i < base.nwin; i++)
        free(base.want[i]);
    raster_close(ds);
}

static const char *pick(const char *needle)
{
    for (int i = 0; i < fixture_count; i++)
        if (!fixtures[i].malformed && strstr(fixtures[i].name, needle))
            return fixtures[i].name;
    return NULL;
}

START_TEST(threads_share_one_dataset)
{
    const char *names[] = {pick("deflate"), pick("zstd"), pick("lzw"), pick("strip")};
    for (int i = 0; i < 4; i++) {
        ck_assert_ptr_nonnull(names[i]);
        run_threads(names[i], RASTER_READER_GDAL);
        run_threads(names[i], -1);
    }
}
END_TEST

typedef struct closer { raster_dataset_t *ds; int status_ok, status_closed, other; } closer_t;

static void *read_until_closed(void *arg)
{
    closer_t *c = arg;
    uint8_t buf[32 * 32 * 8];
    /* At least 2000 reads, and on until the close is seen: a reader that
     * ran 2000 reads before the main thread got to raster_close() (a busy
     * machine) would otherwise fail the test. */
    for (int i = 0; i < 2000 || c->status_closed == 0; i++) {
        const raster_view_t v = raster_view_hwc(buf, RASTER_U8, 32, 32, 1);
        const int band = 1;
        raster_read_options_t o;
        raster_read_options_init(&o);
        o.bands = &band;
        o.band_count = 1;
        const raster_status_t st = raster_read_into(c->ds, (raster_window_t){0, 0, 32, 32}, &o, &v);
        if (st == RASTER_OK) c->status_ok++;
        else if (st == RASTER_E_CLOSED) c->status_closed++;
        else c->other++;
    }
    raster_dataset_release(c->ds);
    return NULL;
}

/* Readers each hold a reference; the owner closes mid-stream: every read
 * either succeeds or reports RASTER_E_CLOSED, and nothing is freed early
 * (ASan/valgrind would see it). */
START_TEST(close_while_reading)
{
    const char *name = pick("deflate");
    ck_assert_ptr_nonnull(name);
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open(fixture_path(name), &ds), RASTER_OK);
    closer_t c[2] = {{raster_dataset_retain(ds), 0, 0, 0}, {raster_dataset_retain(ds), 0, 0, 0}};
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        pthread_create(&th[t], NULL, read_until_closed, &c[t]);
    raster_close(ds);
    for (int t = 0; t < 2; t++) {
        pthread_join(th[t], NULL);
        ck_assert_int_eq(c[t].other, 0);
        ck_assert_int_ge(c[t].status_ok + c[t].status_closed, 2000);
        ck_assert_int_gt(c[t].status_closed, 0);
    }
}
END_TEST

static Suite *read_threads_suite(void)
{
    fixture_count = fixtures_load(&fixtures);
    Suite *s = suite_create("read_threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, threads_share_one_dataset);
    tcase_add_test(tc, close_while_reading);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(read_threads_suite)
