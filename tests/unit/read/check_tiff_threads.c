/*
 * check_tiff_threads.c - parallel decode gives the same bytes as one
 * thread, survives concurrent callers and fork(), and steady-state reads
 * allocate nothing.
 *
 * The thread count is process-wide (raster_set_threads), so every test sets
 * it itself.  Large windows are used so that reads really go to the worker
 * pool; raster__thread_allocations() proves the pool was started.
 */
#include "check_tiff_common.h"

#include "codec/codec.h"
#include "runtime/runtime.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static fixture_t *fixtures;
static int fixture_count;

/* The largest native fixtures of a few kinds: tiles, strips, planar, BE. */
static const char *const big_fixtures[] = {
    "u16_zstd_pred2_tile512_pixel_4b_1024x768.tif",
    "u16_deflate_pred1_tile256_band_4b_1000x777.tif",
    "i16_deflate_pred2_tile512_band_3b_1000x777_bigtiff_be.tif",
    "u16_lzw_pred1_strip16_pixel_1b_1000x777.tif",
    "cog_u16_deflate_pred2_tile256_pixel_3b_1024x1024.tif",
    "f32_lzw_pred3_tile256_band_3b_700x531.tif",
    "u8_none_tile256_pixel_3b_700x531.tif",
};
#define NBIG (sizeof big_fixtures / sizeof big_fixtures[0])

static raster_dataset_t *
open_native(const char *name)
{
    raster_dataset_t *ds = NULL;
    ck_assert_msg(raster_open(fixture_path(name), &ds) == RASTER_OK, "%s: %s", name, raster_last_error());
    raster_info_t in;
    raster_dataset_info(ds, &in);
    ck_assert_msg(in.reader == RASTER_READER_NATIVE_TIFF, "%s is not native", name);
    return ds;
}

/* A few requests per dataset that touch many segments. */
static int
requests(raster_dataset_t *ds, tiff_req_t *r)
{
    raster_info_t in;
    raster_dataset_info(ds, &in);
    int n = 0;
    memset(r, 0, 4 * sizeof *r);
    r[n].win = (raster_window_t){0, 0, in.width, in.height};
    r[n++].dt = in.dtype;
    r[n].win = (raster_window_t){in.width / 5, in.height / 7, in.width / 2 + 3, in.height / 2 + 5};
    r[n].dt = RASTER_F32;
    r[n++].scaled = 1;
    r[n].win = (raster_window_t){3, 1, in.width - 7, in.height - 2};
    r[n].nbands = 2;
    r[n].bands[0] = in.band_count;
    r[n].bands[1] = 1;
    r[n].layout = DST_CHW;
    r[n++].dt = in.dtype;
    r[n].win = (raster_window_t){1, 2, in.width - 1, in.height - 2};
    r[n].layout = DST_STRIDED;
    r[n++].dt = RASTER_U16;
    return n;
}

START_TEST(one_and_many_threads_agree)
{
    const uint64_t pool_before = raster__thread_allocations();
    /* Under sanitizers and valgrind (scale > 1) every other fixture. */
    const size_t step = tiff_matrix_scale() > 1 ? 2 : 1;
    for (size_t f = 0; f < NBIG; f += step) {
        raster_dataset_t *ds = open_native(big_fixtures[f]);
        raster_info_t in;
        raster_dataset_info(ds, &in);
        tiff_req_t r[4];
        const int n = requests(ds, r);
        for (int i = 0; i < n; i++) {
            dst_buf_t one, many;
            raster_set_threads(1);
            ck_assert_int_eq(tiff_req_read(ds, &r[i], in.band_count, &one), RASTER_OK);
            for (int threads = 2; threads <= 3; threads++) {
                raster_set_threads(threads);
                ck_assert_int_eq(raster_get_threads(), threads);
                ck_assert_int_eq(tiff_req_read(ds, &r[i], in.band_count, &many), RASTER_OK);
                char label[256];
                tiff_req_label(&r[i], label, sizeof label);
                ck_assert_msg(memcmp(one.g.data, many.g.data, one.g.nbytes) == 0,
                              "%s %s: %d threads differ from one", big_fixtures[f], label, threads);
                dst_free(&many);
            }
            dst_free(&one);
        }
        raster_close(ds);
    }
    ck_assert_msg(raster__thread_allocations() > pool_before, "the worker pool was never used");
    raster_set_threads(0);
    ck_assert_int_ge(raster_get_threads(), 1);
}
END_TEST

/* ------------------------------ concurrent callers --------------------- */

typedef struct caller {
    raster_dataset_t *ds;
    tiff_req_t req[4];
    int nreq;
    dst_buf_t want[4];
    int band_count;
    int rounds;
    int bad;
} caller_t;

static void *
caller_main(void *arg)
{
    caller_t *c = arg;
    for (int round = 0; round < c->rounds; round++)
        for (int i = 0; i < c->nreq; i++) {
            dst_buf_t got;
            if (tiff_req_read(c->ds, &c->req[i], c->band_count, &got) != RASTER_OK ||
                memcmp(got.g.data, c->want[i].g.data, got.g.nbytes) != 0)
                c->bad++;
            dst_free(&got);
        }
    return NULL;
}

START_TEST(concurrent_callers_share_the_pool)
{
    enum { NCALLERS = 4 };
    caller_t c[NCALLERS];
    raster_set_threads(1);
    for (int k = 0; k < NCALLERS; k++) {
        memset(&c[k], 0, sizeof c[k]);
        c[k].ds = open_native(big_fixtures[k % NBIG]);
        raster_info_t in;
        raster_dataset_info(c[k].ds, &in);
        c[k].band_count = in.band_count;
        c[k].nreq = requests(c[k].ds, c[k].req);
        c[k].rounds = 6 / tiff_matrix_scale() + 1;
        for (int i = 0; i < c[k].nreq; i++)
            ck_assert_int_eq(tiff_req_read(c[k].ds, &c[k].req[i], in.band_count, &c[k].want[i]), RASTER_OK);
    }
    raster_set_threads(2);
    pthread_t tid[NCALLERS];
    for (int k = 0; k < NCALLERS; k++)
        ck_assert_int_eq(pthread_create(&tid[k], NULL, caller_main, &c[k]), 0);
    for (int k = 0; k < NCALLERS; k++) {
        pthread_join(tid[k], NULL);
        ck_assert_msg(c[k].bad == 0, "caller %d got %d wrong reads", k, c[k].bad);
        for (int i = 0; i < c[k].nreq; i++)
            dst_free(&c[k].want[i]);
        raster_close(c[k].ds);
    }
    raster_set_threads(0);
}
END_TEST

/* ------------------------------ fork ----------------------------------- */

typedef struct spinner {
    raster_dataset_t *ds;
    tiff_req_t req;
    int band_count;
    atomic_int stop;
} spinner_t;

static void *
spinner_main(void *arg)
{
    spinner_t *s = arg;
    while (!atomic_load(&s->stop)) {
        dst_buf_t d;
        (void)tiff_req_read(s->ds, &s->req, s->band_count, &d);
        dst_free(&d);
    }
    return NULL;
}

/* A child forked while another thread of the parent is in the middle of
 * parallel reads re-creates the pool and re-opens the file, and reads the
 * same bytes.  alarm() turns a deadlock into a failure. */
START_TEST(fork_child_reads_with_its_own_pool)
{
    raster_set_threads(2);
    raster_dataset_t *ds = open_native(big_fixtures[0]);
    raster_info_t in;
    raster_dataset_info(ds, &in);
    tiff_req_t r[4];
    const int n = requests(ds, r);
    dst_buf_t want[4];
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(tiff_req_read(ds, &r[i], in.band_count, &want[i]), RASTER_OK);

    spinner_t sp = {ds, r[0], in.band_count, 0};
    pthread_t tid;
    ck_assert_int_eq(pthread_create(&tid, NULL, spinner_main, &sp), 0);
    int child_failures = 0;
    for (int round = 0; round < 3; round++) {
        usleep(20000);
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        const pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            alarm(60);
#if defined(__SANITIZE_THREAD__)
            /* TSan cannot start threads after a multi-threaded fork: the
             * child checks the descriptor re-open on one thread. */
            raster_set_threads(1);
#endif
            int bad = 0;
            for (int i = 0; i < n; i++) {
                dst_buf_t got;
                if (tiff_req_read(ds, &r[i], in.band_count, &got) != RASTER_OK ||
                    memcmp(got.g.data, want[i].g.data, got.g.nbytes) != 0)
                    bad++;
                dst_free(&got);
            }
            raster_close(ds);   /* closes the child's descriptor only */
            /* The verdict goes through the pipe, not the exit status: under
             * valgrind a child exits with the leak check's status, and the
             * parent's threads' memory (pool, their scratch) is unreachable
             * in a child by nature. */
            const char verdict = bad == 0 ? 'y' : 'n';
            _exit(write(fds[1], &verdict, 1) == 1 ? 0 : 3);
        }
        close(fds[1]);
        char verdict = 0;
        if (read(fds[0], &verdict, 1) != 1 || verdict != 'y')
            child_failures++;
        close(fds[0]);
        int status = 0;
        waitpid(pid, &status, 0);
    }
    atomic_store(&sp.stop, 1);
    pthread_join(tid, NULL);
    ck_assert_msg(child_failures == 0, "%d forked child(ren) failed", child_failures);
    /* The parent's descriptor still works after the children closed theirs. */
    for (int i = 0; i < n; i++) {
        dst_buf_t got;
        ck_assert_int_eq(tiff_req_read(ds, &r[i], in.band_count, &got), RASTER_OK);
        ck_assert(memcmp(got.g.data, want[i].g.data, got.g.nbytes) == 0);
        dst_free(&got);
        dst_free(&want[i]);
    }
    raster_close(ds);
    raster_set_threads(0);
}
END_TEST

/* ------------------------------ allocations ---------------------------- */

static uint64_t
allocations(void)
{
    return raster__scratch_allocations() + raster__tiff_allocations() + raster__thread_allocations();
}

/* Reads into preallocated buffers; only the library's own counters move. */
static void
steady_rounds(raster_dataset_t **ds, int nds, int rounds, void **bufs)
{
    for (int round = 0; round < rounds; round++)
        for (int d = 0; d < nds; d++) {
            raster_info_t in;
            raster_dataset_info(ds[d], &in);
            uint64_t rng = 42 + (uint64_t)d;      /* the same windows every round */
            for (int i = 0; i < 24; i++) {
                const int64_t w = tiff_rand_range(&rng, 1, in.width < 300 ? in.width : 300);
                const int64_t h = tiff_rand_range(&rng, 1, in.height < 300 ? in.height : 300);
                const raster_window_t win = {tiff_rand_range(&rng, 0, in.width - w),
                                             tiff_rand_range(&rng, 0, in.height - h), w, h};
                const raster_dtype_t dt = i % 3 ? in.dtype : RASTER_F32;
                const raster_view_t v = raster_view_hwc(bufs[d], dt, h, w, in.band_count);
                ck_assert_int_eq(raster_read_into(ds[d], win, NULL, &v), RASTER_OK);
            }
            /* And the whole raster, which goes parallel. */
            const raster_view_t v = raster_view_hwc(bufs[d], in.dtype, in.height, in.width, in.band_count);
            ck_assert_int_eq(raster_read_into(ds[d], (raster_window_t){0, 0, in.width, in.height}, NULL, &v),
                             RASTER_OK);
        }
}

static void
check_steady(int threads)
{
    raster_set_threads(threads);
    raster_dataset_t *ds[NBIG];
    void *bufs[NBIG];
    for (size_t d = 0; d < NBIG; d++) {
        ds[d] = open_native(big_fixtures[d]);
        raster_info_t in;
        raster_dataset_info(ds[d], &in);
        bufs[d] = malloc(raster_view_nbytes(RASTER_F64, in.height, in.width, in.band_count));
    }
    /* Warm-up: every thread meets every segment size and codec. */
    steady_rounds(ds, NBIG, threads > 1 ? 4 : 1, bufs);
    const uint64_t before = allocations();
    steady_rounds(ds, NBIG, 2, bufs);
    ck_assert_msg(allocations() == before, "%d thread(s): %llu allocations in steady state", threads,
                  (unsigned long long)(allocations() - before));
    for (size_t d = 0; d < NBIG; d++) {
        raster_close(ds[d]);
        free(bufs[d]);
    }
    raster_set_threads(0);
}

START_TEST(steady_state_allocates_nothing_one_thread) { check_steady(1); }
END_TEST
START_TEST(steady_state_allocates_nothing_two_threads) { check_steady(2); }
END_TEST

static Suite *
tiff_threads_suite(void)
{
    fixture_count = fixtures_load(&fixtures);
    Suite *s = suite_create("tiff_threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, one_and_many_threads_agree);
    tcase_add_test(tc, concurrent_callers_share_the_pool);
    tcase_add_test(tc, fork_child_reads_with_its_own_pool);
    suite_add_tcase(s, tc);
    tc = tcase_create("allocations");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, steady_state_allocates_nothing_one_thread);
    tcase_add_test(tc, steady_state_allocates_nothing_two_threads);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(tiff_threads_suite)
