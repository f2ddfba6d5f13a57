/*
 * check_pool.c - the buffer pool: handles and views, argument errors, the
 * budget and its timeouts, size-class reuse counted through stats, lifetime
 * (destroy with buffers out, double release, the RASTERLOADER_DEBUG report).
 * The threaded stress test is in check_pool_stress.c.
 */
#include "test_util.h"
#include "runtime/runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static raster_pool_t *
make_pool(size_t budget)
{
    raster_pool_t *p = NULL;
    ck_assert_int_eq(raster_pool_create(budget, &p), RASTER_OK);
    ck_assert_ptr_nonnull(p);
    return p;
}

static raster_pool_stats_t
stats_of(const raster_pool_t *p)
{
    raster_pool_stats_t s;
    raster_pool_get_stats(p, &s);
    return s;
}

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Runs fn() in a child whose stderr goes to 'msg'; returns the signal that
 * killed it, or 0 if it exited.  Works with and without CK_FORK. */
static int
run_in_child(void (*fn)(void), char *msg, size_t msg_cap)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < msg_cap && (got = read(fds[0], msg + n, msg_cap - 1 - n)) > 0)
        n += (size_t)got;
    msg[n] = '\0';
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

/* ------------------------------ basics -------------------------------- */

START_TEST(create_and_destroy)
{
    raster_pool_t *p = NULL;
    ck_assert_int_eq(raster_pool_create(0, &p), RASTER_E_INVALID_ARG);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "budget"));
    ck_assert_int_eq(raster_pool_create(100, NULL), RASTER_E_INVALID_ARG);
    p = make_pool(1 << 20);
    const raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.budget_bytes, 1 << 20);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.bytes_reserved, 0);
    ck_assert_uint_eq(s.acquires, 0);
    ck_assert_uint_eq(s.block_mallocs, 0);
    raster_pool_destroy(p);
    raster_pool_destroy(NULL);
    raster_buffer_release(NULL);
    ck_assert_ptr_null(raster_buffer_retain(NULL));
    ck_assert_ptr_null(raster_buffer_data(NULL));
}
END_TEST

START_TEST(acquire_shape_alignment_views)
{
    raster_pool_t *p = make_pool(1 << 20);
    for (int dt = 0; dt < RASTER_DTYPE_COUNT; dt++) {
        raster_buffer_t *buf = NULL;
        ck_assert_int_eq(raster_pool_acquire(p, (raster_dtype_t)dt, 3, 5, 7, 2, 0, &buf), RASTER_OK);
        ck_assert_ptr_nonnull(buf);
        raster_dtype_t got_dt;
        int64_t shape[4];
        raster_buffer_shape(buf, &got_dt, shape);
        ck_assert_int_eq(got_dt, dt);
        ck_assert_int_eq(shape[0], 3);
        ck_assert_int_eq(shape[1], 5);
        ck_assert_int_eq(shape[2], 7);
        ck_assert_int_eq(shape[3], 2);
        unsigned char *data = raster_buffer_data(buf);
        ck_assert_ptr_nonnull(data);
        ck_assert_uint_eq((uintptr_t)data % 64, 0);
        const size_t es = raster_dtype_size((raster_dtype_t)dt), n = 3 * 5 * 7 * 2 * es;
        memset(data, 0x5a, n);             /* the whole extent is ours (ASan checks) */

        raster_view_t v;
        ck_assert_int_eq(raster_buffer_view(buf, -1, &v), RASTER_OK);
        ck_assert_ptr_eq(v.data, data);
        ck_assert_int_eq(v.dtype, dt);
        ck_assert_int_eq(v.height, 15);
        ck_assert_int_eq(v.width, 7);
        ck_assert_int_eq(v.channels, 2);
        ck_assert_int_eq(v.chan_stride, (int64_t)es);
        ck_assert_int_eq(v.col_stride, 2 * (int64_t)es);
        ck_assert_int_eq(v.row_stride, 14 * (int64_t)es);
        for (int64_t i = 0; i < 3; i++) {
            ck_assert_int_eq(raster_buffer_view(buf, i, &v), RASTER_OK);
            ck_assert_ptr_eq(v.data, data + i * 5 * 7 * 2 * (int64_t)es);
            ck_assert_int_eq(v.height, 5);
            ck_assert_int_eq(v.row_stride, 14 * (int64_t)es);
        }
        ck_assert_int_eq(raster_buffer_view(buf, 3, &v), RASTER_E_BOUNDS);
        ck_assert_ptr_nonnull(strstr(raster_last_error(), "sample 3 of a batch of 3"));
        ck_assert_int_eq(raster_buffer_view(buf, -2, &v), RASTER_E_BOUNDS);
        ck_assert_int_eq(raster_buffer_view(buf, 0, NULL), RASTER_E_INVALID_ARG);
        ck_assert_int_eq(raster_buffer_view(NULL, 0, &v), RASTER_E_INVALID_ARG);
        raster_buffer_release(buf);
    }
    const raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.acquires, RASTER_DTYPE_COUNT);
    ck_assert_int_eq(s.buffers_outstanding, 0);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(retain_release_and_stats)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *a = NULL, *b = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 10, 10, 3, 0, &a), RASTER_OK);   /* 300 B */
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_F32, 2, 16, 16, 4, 0, &b), RASTER_OK);  /* 8 KiB */
    raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.bytes_in_use, 320 + 8192);      /* 300 B rounds to the 320 B class */
    ck_assert_uint_eq(s.bytes_reserved, 320 + 8192);
    ck_assert_uint_eq(s.peak_bytes_in_use, 320 + 8192);
    ck_assert_int_eq(s.buffers_outstanding, 2);
    ck_assert_uint_eq(s.acquires, 2);
    ck_assert_uint_eq(s.block_mallocs, 2);

    ck_assert_ptr_eq(raster_buffer_retain(a), a);
    raster_buffer_release(a);
    s = stats_of(p);
    ck_assert_int_eq(s.buffers_outstanding, 2);          /* one owner left */
    raster_buffer_release(a);
    s = stats_of(p);
    ck_assert_int_eq(s.buffers_outstanding, 1);
    ck_assert_uint_eq(s.bytes_in_use, 8192);
    ck_assert_uint_eq(s.bytes_reserved, 320 + 8192);     /* kept for reuse */
    ck_assert_uint_eq(s.peak_bytes_in_use, 320 + 8192);
    raster_buffer_release(b);

    /* Same shape again: the cached block, no allocator call. */
    raster_buffer_t *c = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 10, 10, 3, 0, &c), RASTER_OK);
    ck_assert_ptr_eq(c, a);
    s = stats_of(p);
    ck_assert_uint_eq(s.block_mallocs, 2);
    ck_assert_uint_eq(s.waits, 0);
    ck_assert_uint_eq(s.timeouts, 0);
    raster_buffer_release(c);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(invalid_arguments)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *buf = (raster_buffer_t *)p;   /* must be reset to NULL */
    ck_assert_int_eq(raster_pool_acquire(p, (raster_dtype_t)99, 1, 1, 1, 1, 0, &buf),
                     RASTER_E_INVALID_ARG);
    ck_assert_ptr_null(buf);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "unknown dtype 99"));
    ck_assert_int_eq(raster_pool_acquire(p, (raster_dtype_t)-1, 1, 1, 1, 1, 0, &buf),
                     RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, -4, 1, 1, 0, &buf), RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "negative extent in shape [1, -4, 1, 1]"));
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 1, 1, -1, 0, &buf), RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_F64, INT64_MAX, 2, 1, 1, 0, &buf),
                     RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "overflows"));
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U16, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 0, &buf),
                     RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_pool_acquire(NULL, RASTER_U8, 1, 1, 1, 1, 0, &buf), RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 1, 1, 1, 0, NULL), RASTER_E_INVALID_ARG);
    ck_assert_ptr_null(buf);
    const raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.acquires, 0);
    ck_assert_uint_eq(s.block_mallocs, 0);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(huge_request_fails_at_once)
{
    raster_pool_t *p = make_pool(1000);
    raster_buffer_t *buf = NULL;
    /* 1 x 7 x 11 x 13 u8 = 1001 bytes: one more than the budget; with a
     * forever timeout it must still fail without waiting (no wait counted:
     * a wait here would never end). */
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 7, 11, 13, -1, &buf), RASTER_E_NOMEM);
    ck_assert_uint_eq(stats_of(p).waits, 0);
    ck_assert_ptr_null(buf);
    const char *msg = raster_last_error();
    ck_assert_msg(strstr(msg, "1001 bytes") && strstr(msg, "budget of 1000 bytes"),
                  "message: %s", msg);
    /* Exactly the budget is fine, even though its size class (1024) is not:
     * blocks of a class larger than the budget are capped at the budget. */
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 10, 10, 10, 0, &buf), RASTER_OK);
    raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.bytes_in_use, 1000);
    raster_buffer_release(buf);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 30, 30, 1, 0, &buf), RASTER_OK);  /* 900 B */
    s = stats_of(p);
    ck_assert_uint_eq(s.bytes_in_use, 1000);
    ck_assert_uint_eq(s.block_mallocs, 1);                /* same class, same block */
    raster_buffer_release(buf);
    /* Beyond what any block can be, with an unlimited budget. */
    raster_pool_t *big = make_pool(SIZE_MAX);
    ck_assert_int_eq(raster_pool_acquire(big, RASTER_U8, 1, 1 << 30, 1 << 30, 5, 0, &buf),
                     RASTER_E_NOMEM);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "largest block"));
    raster_pool_destroy(big);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(zero_size_shapes)
{
    raster_pool_t *p = make_pool(4096);
    const int64_t shapes[][4] = {{0, 4, 4, 3}, {2, 0, 4, 3}, {2, 4, 0, 3}, {2, 4, 4, 0}, {0, 0, 0, 0}};
    raster_buffer_t *bufs[5];
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(raster_pool_acquire(p, RASTER_F32, shapes[i][0], shapes[i][1], shapes[i][2],
                                             shapes[i][3], 0, &bufs[i]), RASTER_OK);
        void *d = raster_buffer_data(bufs[i]);
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq((uintptr_t)d % 64, 0);
        raster_view_t v;
        ck_assert_int_eq(raster_buffer_view(bufs[i], -1, &v), RASTER_OK);
        ck_assert_ptr_nonnull(v.data);
        ck_assert_int_eq(v.height * v.width * v.channels, 0);
        if (shapes[i][0] > 0) {
            ck_assert_int_eq(raster_buffer_view(bufs[i], 1, &v), RASTER_OK);
            ck_assert_ptr_nonnull(v.data);
        } else {
            ck_assert_int_eq(raster_buffer_view(bufs[i], 0, &v), RASTER_E_BOUNDS);
        }
    }
    raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.acquires, 5);
    ck_assert_int_eq(s.buffers_outstanding, 5);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.bytes_reserved, 0);
    /* Zero-size buffers never wait, even on a spent budget. */
    raster_buffer_t *full = NULL, *empty = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 64, 64, 1, 0, &full), RASTER_OK);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 0, 64, 64, 1, 0, &empty), RASTER_OK);
    raster_buffer_release(empty);
    raster_buffer_release(full);
    for (int i = 0; i < 5; i++)
        raster_buffer_release(bufs[i]);
    /* Their handles are recycled too. */
    const uint64_t mallocs = stats_of(p).block_mallocs;
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 0, 1, 1, 1, 0, &empty), RASTER_OK);
        raster_buffer_release(empty);
    }
    s = stats_of(p);
    ck_assert_uint_eq(s.block_mallocs, mallocs);
    ck_assert_int_eq(s.buffers_outstanding, 0);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(allocation_failure)
{
    raster_pool_t *p = make_pool(1 << 16);
    raster_buffer_t *buf = NULL;
    raster__pool_fail_allocs(1);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 32, 32, 1, -1, &buf), RASTER_E_NOMEM);
    ck_assert_ptr_null(buf);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "out of memory for a block of 1024 bytes"));
    raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.bytes_reserved, 0);     /* the reservation was returned */
    ck_assert_int_eq(s.buffers_outstanding, 0);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 32, 32, 1, -1, &buf), RASTER_OK);
    raster_buffer_release(buf);
    raster_pool_destroy(p);
}
END_TEST

/* ------------------------------ budget -------------------------------- */

START_TEST(timeout_zero_tries_once)
{
    raster_pool_t *p = make_pool(4096);
    raster_buffer_t *a = NULL, *b = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 64, 64, 1, 0, &a), RASTER_OK);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 1, 1, 1, 0, &b), RASTER_E_TIMEOUT);
    ck_assert_ptr_null(b);
    const raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.timeouts, 1);
    ck_assert_uint_eq(s.waits, 0);
    ck_assert_uint_eq(s.acquires, 1);
    raster_buffer_release(a);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(timeout_50ms)
{
    raster_pool_t *p = make_pool(4096);
    raster_buffer_t *a = NULL, *b = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 32, 32, 4, 0, &a), RASTER_OK);
    const double t0 = now_ms();
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U16, 1, 8, 8, 1, 50, &b), RASTER_E_TIMEOUT);
    const double waited = now_ms() - t0;
    /* At least the timeout (load can only lengthen a wait); the upper
     * bound is a deadlock guard, not a measure. */
    ck_assert_msg(waited >= 45 && waited < 60000, "waited %.1f ms for a 50 ms timeout", waited);
    ck_assert_ptr_null(b);
    const char *msg = raster_last_error();
    ck_assert_msg(strstr(msg, "within 50 ms") && strstr(msg, "budget 4096 bytes"), "message: %s", msg);
    const raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.timeouts, 1);
    ck_assert_uint_eq(s.waits, 1);
    raster_buffer_release(a);
    raster_pool_destroy(p);
}
END_TEST

typedef struct waiter_arg {
    raster_pool_t *pool;
    int timeout_ms;
    int64_t h;
    raster_status_t st;
    raster_buffer_t *buf;
    double waited_ms;
} waiter_arg_t;

static void *
waiter_main(void *arg)
{
    waiter_arg_t *a = arg;
    const double t0 = now_ms();
    a->st = raster_pool_acquire(a->pool, RASTER_U8, 1, a->h, 64, 1, a->timeout_ms, &a->buf);
    a->waited_ms = now_ms() - t0;
    return NULL;
}

/* Waits until 'n' acquires have started waiting (an event; the 60 s bound
 * is a deadlock guard). */
static void
await_waits(raster_pool_t *p, uint64_t n)
{
    for (int i = 0; i < 60000 && stats_of(p).waits < n; i++)
        sleep_ms(1);
    ck_assert_uint_ge(stats_of(p).waits, n);
}

START_TEST(blocked_acquire_woken_by_release)
{
    const int timeouts[] = {-1, 10000};
    for (int k = 0; k < 2; k++) {
        raster_pool_t *p = make_pool(4096);
        raster_buffer_t *hold = NULL;
        ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 48, 64, 1, 0, &hold), RASTER_OK);
        waiter_arg_t wa = {p, timeouts[k], 32, RASTER_E_IO, NULL, 0};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &wa), 0);
        await_waits(p, 1);
        /* Still blocked a moment later: the pause can only hide a waiter
         * that wakes early, never fail a correct one. */
        sleep_ms(20);
        ck_assert_int_eq(stats_of(p).buffers_outstanding, 1);
        raster_buffer_release(hold);                            /* from this thread */
        pthread_join(th, NULL);
        ck_assert_int_eq(wa.st, RASTER_OK);
        ck_assert_ptr_nonnull(wa.buf);        /* woken by the release: a timeout would fail */
        const raster_pool_stats_t s = stats_of(p);
        ck_assert_uint_eq(s.waits, 1);
        ck_assert_uint_eq(s.timeouts, 0);
        ck_assert_uint_le(s.peak_bytes_in_use, 4096);
        ck_assert_uint_le(s.bytes_reserved, 4096);
        raster_buffer_release(wa.buf);
        raster_pool_destroy(p);
    }
}
END_TEST

START_TEST(eviction_of_other_classes)
{
    raster_pool_t *p = make_pool(4096);
    raster_buffer_t *b[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 32, 32, 1, 0, &b[i]), RASTER_OK);
    for (int i = 0; i < 4; i++)
        raster_buffer_release(b[i]);
    raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.bytes_reserved, 4096);      /* all cached as 1 KiB blocks */
    ck_assert_uint_eq(s.block_mallocs, 4);
    /* A 2 KiB request frees two cached 1 KiB blocks and makes one block. */
    raster_buffer_t *big = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 32, 64, 1, 0, &big), RASTER_OK);
    s = stats_of(p);
    ck_assert_uint_eq(s.block_mallocs, 5);
    ck_assert_uint_eq(s.bytes_reserved, 4096);
    ck_assert_uint_eq(s.bytes_in_use, 2048);
    ck_assert_uint_eq(s.waits, 0);
    /* The two 1 KiB blocks left are still reusable without an allocation. */
    raster_buffer_t *x = NULL, *y = NULL, *z = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 32, 32, 1, 0, &x), RASTER_OK);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 32, 32, 1, 0, &y), RASTER_OK);
    ck_assert_uint_eq(stats_of(p).block_mallocs, 5);
    /* Nothing cached, nothing left: a third one must wait. */
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 32, 32, 1, 0, &z), RASTER_E_TIMEOUT);
    raster_buffer_release(x);
    raster_buffer_release(y);
    raster_buffer_release(big);
    s = stats_of(p);
    ck_assert_uint_eq(s.peak_bytes_in_use, 4096);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    raster_pool_destroy(p);
}
END_TEST

/* ------------------------------ reuse --------------------------------- */

/* Shapes spread over several classes, two of them sharing one. */
static const int64_t steady_shapes[][5] = {
    {RASTER_U8, 1, 256, 256, 3},   {RASTER_F32, 4, 64, 64, 4}, {RASTER_U16, 2, 100, 100, 1},
    {RASTER_F16, 1, 33, 17, 5},    {RASTER_I32, 1, 1, 1, 1},   {RASTER_F64, 8, 16, 16, 2},
    {RASTER_U8, 1, 255, 256, 3},   {RASTER_U8, 0, 5, 5, 5},
};
#define STEADY_NSHAPES ((int)(sizeof steady_shapes / sizeof steady_shapes[0]))

static raster_buffer_t *
steady_acquire(raster_pool_t *p, int i)
{
    const int64_t *sh = steady_shapes[i];
    raster_buffer_t *buf = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, (raster_dtype_t)sh[0], sh[1], sh[2], sh[3], sh[4], 0,
                                         &buf), RASTER_OK);
    return buf;
}

/* Each cycle holds two buffers at once, as a prefetcher one step ahead would. */
static void
steady_cycles(raster_pool_t *p, int count)
{
    for (int cycle = 0; cycle < count; cycle++) {
        const int i = cycle % STEADY_NSHAPES, j = (cycle / STEADY_NSHAPES + i + 1) % STEADY_NSHAPES;
        raster_buffer_t *a = steady_acquire(p, i), *b = steady_acquire(p, j);
        raster_buffer_release(a);
        raster_buffer_release(b);
    }
}

START_TEST(steady_loop_does_not_allocate)
{
    raster_pool_t *p = make_pool(8u << 20);
    steady_cycles(p, STEADY_NSHAPES * STEADY_NSHAPES);      /* warm-up: every pair once */
    const raster_pool_stats_t warm = stats_of(p);
    ck_assert_int_eq(warm.buffers_outstanding, 0);
    steady_cycles(p, 10000);
    const raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.block_mallocs, warm.block_mallocs);
    ck_assert_uint_eq(s.bytes_reserved, warm.bytes_reserved);
    ck_assert_uint_eq(s.acquires, warm.acquires + 20000);
    ck_assert_uint_eq(s.waits, 0);
    ck_assert_int_eq(s.buffers_outstanding, 0);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    fprintf(stderr, "steady loop: %" PRIu64 " block mallocs in warm-up, %" PRIu64
            " in the 10000 cycles (20000 acquires) after it\n", warm.block_mallocs,
            s.block_mallocs - warm.block_mallocs);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(class_rounding_bounds_waste)
{
    raster_pool_t *p = make_pool((size_t)1 << 30);
    for (int64_t n = 1; n < (1 << 22); n = n * 5 / 4 + 1) {
        raster_buffer_t *buf = NULL;
        ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 1, n, 1, 0, &buf), RASTER_OK);
        const raster_pool_stats_t s = stats_of(p);
        ck_assert_uint_ge(s.bytes_in_use, (size_t)n);
        ck_assert_uint_eq(s.bytes_in_use % 64, 0);
        /* The sizing function callers budget with says the same. */
        ck_assert_uint_eq(raster_pool_block_nbytes((size_t)n), s.bytes_in_use);
        if (n > 256)
            ck_assert_msg(s.bytes_in_use * 4 <= (size_t)n * 5, "%" PRId64 " bytes -> %zu", n,
                          s.bytes_in_use);
        else
            ck_assert_uint_lt(s.bytes_in_use, (size_t)n + 64);
        /* The block is usable to its last requested byte. */
        ((unsigned char *)raster_buffer_data(buf))[n - 1] = 1;
        raster_buffer_release(buf);
    }
    raster_pool_destroy(p);
    ck_assert_uint_eq(raster_pool_block_nbytes(0), 0);
    ck_assert_uint_eq(raster_pool_block_nbytes(SIZE_MAX), 0);   /* no pool serves it */
}
END_TEST

/* ----------------------------- lifetime -------------------------------- */

START_TEST(destroy_with_buffers_out)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *a = NULL, *b = NULL, *cached = NULL, *z = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 64, 64, 3, 0, &a), RASTER_OK);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_F32, 2, 8, 8, 1, 0, &b), RASTER_OK);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U16, 1, 8, 8, 1, 0, &cached), RASTER_OK);
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U16, 0, 8, 8, 1, 0, &z), RASTER_OK);
    raster_buffer_release(cached);
    raster_pool_destroy(p);
    /* The buffers are still valid and the pool answers, closed. */
    memset(raster_buffer_data(a), 7, 64 * 64 * 3);
    raster_buffer_t *c = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 1, 1, 1, 0, &c), RASTER_E_CLOSED);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "destroyed"));
    raster_pool_stats_t s = stats_of(p);
    ck_assert_int_eq(s.buffers_outstanding, 3);
    ck_assert_uint_eq(s.bytes_reserved, s.bytes_in_use);   /* cached block freed */
    raster_buffer_retain(b);
    raster_buffer_release(a);
    raster_buffer_release(b);
    raster_buffer_release(z);
    s = stats_of(p);
    ck_assert_int_eq(s.buffers_outstanding, 1);
    ck_assert_uint_eq(s.bytes_in_use, 512);
    raster_buffer_release(b);      /* the last one frees the pool (ASan / valgrind check) */
}
END_TEST

static void *
release_later(void *arg)
{
    sleep_ms(30);
    raster_buffer_release(arg);
    return NULL;
}

START_TEST(destroy_wakes_waiters)
{
    raster_pool_t *p = make_pool(4096);
    raster_buffer_t *hold = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 64, 64, 1, 0, &hold), RASTER_OK);
    waiter_arg_t wa = {p, -1, 16, RASTER_E_IO, NULL, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &wa), 0);
    await_waits(p, 1);
    raster_pool_destroy(p);
    pthread_join(th, NULL);
    ck_assert_int_eq(wa.st, RASTER_E_CLOSED);
    ck_assert_ptr_null(wa.buf);
    /* Last buffer released on another thread: the pool goes there. */
    ck_assert_int_eq(pthread_create(&th, NULL, release_later, hold), 0);
    pthread_join(th, NULL);
}
END_TEST

START_TEST(destroy_while_waiting_and_nothing_out)
{
    /* The waiter itself keeps the pool alive until it has left acquire. */
    raster_pool_t *p = make_pool(4096);
    raster_buffer_t *hold = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_U8, 1, 64, 64, 1, 0, &hold), RASTER_OK);
    waiter_arg_t wa = {p, -1, 16, RASTER_E_IO, NULL, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &wa), 0);
    await_waits(p, 1);
    raster_buffer_release(hold);        /* wakes the waiter, which may win the race */
    raster_pool_destroy(p);
    pthread_join(th, NULL);
    ck_assert(wa.st == RASTER_OK || wa.st == RASTER_E_CLOSED);
    raster_buffer_release(wa.buf);
}
END_TEST

static raster_pool_t *child_pool;

static void
double_release_body(void)
{
    raster_buffer_t *buf = NULL;
    child_pool = make_pool(1 << 16);
    if (raster_pool_acquire(child_pool, RASTER_U8, 1, 4, 4, 1, 0, &buf) != RASTER_OK)
        _exit(3);
    raster_buffer_release(buf);
    raster_buffer_release(buf);          /* aborts */
}

/* Check's own signal test (CK_FORK mode only). */
START_TEST(double_release_raises_sigabrt)
{
    if (freopen("/dev/null", "w", stderr) == NULL)   /* keep the expected message out of the log */
        _exit(4);
    double_release_body();
}
END_TEST

START_TEST(double_release_aborts_with_message)
{
    char msg[1024];
    const int sig = run_in_child(double_release_body, msg, sizeof msg);
    ck_assert_int_eq(sig, SIGABRT);
    ck_assert_msg(strstr(msg, "raster_buffer_release(") && strstr(msg, "released twice"),
                  "message: %s", msg);
}
END_TEST

static void
retain_after_release_body(void)
{
    raster_buffer_t *buf = NULL;
    child_pool = make_pool(1 << 16);
    if (raster_pool_acquire(child_pool, RASTER_U8, 1, 4, 4, 1, 0, &buf) != RASTER_OK)
        _exit(3);
    raster_buffer_release(buf);
    raster_buffer_retain(buf);           /* aborts */
}

static void
double_destroy_body(void)
{
    raster_buffer_t *buf = NULL;
    child_pool = make_pool(1 << 16);
    if (raster_pool_acquire(child_pool, RASTER_U8, 1, 4, 4, 1, 0, &buf) != RASTER_OK)
        _exit(3);
    raster_pool_destroy(child_pool);     /* legal: the buffer keeps it alive */
    raster_pool_destroy(child_pool);     /* aborts */
}

START_TEST(misuse_aborts_with_message)
{
    char msg[1024];
    ck_assert_int_eq(run_in_child(retain_after_release_body, msg, sizeof msg), SIGABRT);
    ck_assert_msg(strstr(msg, "raster_buffer_retain(") && strstr(msg, "already released"),
                  "message: %s", msg);
    ck_assert_int_eq(run_in_child(double_destroy_body, msg, sizeof msg), SIGABRT);
    ck_assert_msg(strstr(msg, "destroyed twice"), "message: %s", msg);
}
END_TEST

/* Threads that keep taking the pool mutex while the main thread forks. */
static atomic_int churn_stop;

static void *
churn_main(void *arg)
{
    raster_pool_t *p = arg;
    while (!atomic_load(&churn_stop)) {
        raster_buffer_t *buf = NULL;
        if (raster_pool_acquire(p, RASTER_U8, 1, 16, 16, 1, 0, &buf) == RASTER_OK)
            raster_buffer_release(buf);
        raster_pool_stats_t s;
        raster_pool_get_stats(p, &s);
    }
    return NULL;
}

START_TEST(fork_while_threads_use_the_pool)
{
    /* A debug pool links every buffer out, so the ones the churn threads
     * held at fork() stay reachable in the child and valgrind does not call
     * them leaks: they are simply never returned there, by design. */
    ck_assert_int_eq(setenv("RASTERLOADER_DEBUG", "1", 1), 0);
    raster_pool_t *p = make_pool(1 << 20);
    unsetenv("RASTERLOADER_DEBUG");
    raster_buffer_t *held = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, RASTER_F32, 1, 8, 8, 1, 0, &held), RASTER_OK);
    ((float *)raster_buffer_data(held))[0] = 1.5f;
    atomic_store(&churn_stop, 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, churn_main, p), 0);
    for (int i = 0; i < 20; i++) {
        fflush(stdout);
        fflush(stderr);
        const pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            /* The child works with the inherited pool; a deadlock is SIGALRM
             * (a guard: generous, valgrind included). */
            alarm(60);
            raster_buffer_t *buf = NULL;
            int ok = raster_pool_acquire(p, RASTER_U8, 2, 32, 32, 3, 1000, &buf) == RASTER_OK;
            raster_buffer_release(buf);
            ok = ok && ((float *)raster_buffer_data(held))[0] == 1.5f;
            raster_buffer_release(held);
            if (freopen("/dev/null", "w", stderr) == NULL)   /* the debug report */
                _exit(2);
            raster_pool_destroy(p);
            _exit(ok ? 0 : 1);
        }
        ((float *)raster_buffer_data(held))[0] = 2.5f;   /* the child keeps its own copy */
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %d", i, status);
        ((float *)raster_buffer_data(held))[0] = 1.5f;
    }
    atomic_store(&churn_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    raster_buffer_release(held);
    ck_assert_int_eq(stats_of(p).buffers_outstanding, 0);
    raster_pool_destroy(p);
}
END_TEST

/* Acquires on behalf of the debug report test; its return address is the
 * call site the report must name. */
static __attribute__((noinline)) raster_buffer_t *
acquire_here(raster_pool_t *p, raster_dtype_t dt, int64_t h)
{
    raster_buffer_t *buf = NULL;
    if (raster_pool_acquire(p, dt, 1, h, 5, 3, 0, &buf) != RASTER_OK)
        return NULL;
    return buf;
}

START_TEST(debug_report_names_call_sites)
{
    ck_assert_int_eq(setenv("RASTERLOADER_DEBUG", "1", 1), 0);
    raster_pool_t *p = make_pool(1 << 16);
    unsetenv("RASTERLOADER_DEBUG");
    raster_buffer_t *a = acquire_here(p, RASTER_U16, 4);
    raster_buffer_t *b = acquire_here(p, RASTER_F32, 6);
    raster_buffer_t *c = acquire_here(p, RASTER_U8, 2);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    /* Debug pools poison released pixels. */
    unsigned char *cd = raster_buffer_data(c);
    memset(cd, 1, 30);
    raster_buffer_release(c);
    ck_assert_uint_eq(cd[0], 0xDD);      /* cached, not freed: still readable */

    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(stderr);
    const int saved = dup(2);
    dup2(fileno(tmp), 2);
    raster_pool_destroy(p);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char report[4096];
    rewind(tmp);
    const size_t n = fread(report, 1, sizeof report - 1, tmp);
    report[n] = '\0';
    fclose(tmp);

    ck_assert_msg(strstr(report, "destroyed with 2 buffer(s) still out"), "report: %s", report);
    ck_assert_msg(strstr(report, "uint16 [1, 4, 5, 3], 120 bytes, 1 reference(s), acquired at "),
                  "report: %s", report);
    ck_assert_msg(strstr(report, "float32 [1, 6, 5, 3], 360 bytes"), "report: %s", report);
    ck_assert_msg(strstr(report, "uint8") == NULL, "released buffer reported: %s", report);
    /* The module is this executable, and the address lies inside acquire_here(). */
    Dl_info di;
    ck_assert_int_ne(dladdr((void *)acquire_here, &di), 0);
    ck_assert_msg(strstr(report, di.dli_fname), "module %s not in: %s", di.dli_fname, report);
    int sites = 0;
    for (const char *s = strstr(report, ") ["); s != NULL; s = strstr(s + 1, ") [")) {
        void *site = NULL;
        ck_assert_int_eq(sscanf(s + 3, "%p", &site), 1);
        const uintptr_t off = (uintptr_t)site - (uintptr_t)acquire_here;
        ck_assert_msg(off > 0 && off < 4096, "site %p is not in acquire_here %p", site,
                      (void *)acquire_here);
        sites++;
    }
    ck_assert_int_eq(sites, 2);
    raster_buffer_release(a);
    raster_buffer_release(b);
}
END_TEST

static Suite *
pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, create_and_destroy);
    tcase_add_test(tc, acquire_shape_alignment_views);
    tcase_add_test(tc, retain_release_and_stats);
    tcase_add_test(tc, invalid_arguments);
    tcase_add_test(tc, huge_request_fails_at_once);
    tcase_add_test(tc, zero_size_shapes);
    tcase_add_test(tc, allocation_failure);
    suite_add_tcase(s, tc);

    tc = tcase_create("budget");
    tcase_add_test(tc, timeout_zero_tries_once);
    tcase_add_test(tc, timeout_50ms);
    tcase_add_test(tc, blocked_acquire_woken_by_release);
    tcase_add_test(tc, eviction_of_other_classes);
    suite_add_tcase(s, tc);

    tc = tcase_create("reuse");
    tcase_add_test(tc, steady_loop_does_not_allocate);
    tcase_add_test(tc, class_rounding_bounds_waste);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_add_test(tc, destroy_with_buffers_out);
    tcase_add_test(tc, destroy_wakes_waiters);
    tcase_add_test(tc, destroy_while_waiting_and_nothing_out);
    /* Check reports a signal only when each test runs in its own process. */
    const char *fork_env = getenv("CK_FORK");
    if (fork_env == NULL || strcmp(fork_env, "no") != 0)
        tcase_add_test_raise_signal(tc, double_release_raises_sigabrt, SIGABRT);
    tcase_add_test(tc, double_release_aborts_with_message);
    tcase_add_test(tc, misuse_aborts_with_message);
    tcase_add_test(tc, debug_report_names_call_sites);
    tcase_add_test(tc, fork_while_threads_use_the_pool);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(pool_suite)
