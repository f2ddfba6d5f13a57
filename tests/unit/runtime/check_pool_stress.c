/*
 * check_pool_stress.c - the pool and DLPack exports under threads.
 *
 * NTHREADS workers each run 'cycles' of: acquire a buffer of a random dtype
 * and shape (blocking on a budget small enough that they wait), fill it with
 * a pattern unique to (thread, cycle), export it (random layout, sample,
 * crop, channels), check every exported element through the tensor's
 * strides, then drop the handle and the tensor in a random order; a quarter
 * of the tensors are deleted by a separate thread, which checks the whole
 * pattern once more first (by then the export is the only owner).  A
 * clobbered byte means two owners shared a block; a lost or doubled block
 * shows in the final stats.  RASTER_STRESS_SCALE=n divides the cycle count
 * (valgrind runs use 50).
 */
#include "test_util.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NTHREADS 8
#define CYCLES 20000
#define BUDGET ((size_t)256 << 10)
#define QUEUE_CAP 64

static int
stress_cycles(void)
{
    const char *s = getenv("RASTER_STRESS_SCALE");
    const int scale = s != NULL && atoi(s) > 0 ? atoi(s) : 1;
    return CYCLES / scale > 0 ? CYCLES / scale : 1;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Failures are recorded here by any thread and asserted by the main one
 * (Check's assertions are not thread-safe). */
static atomic_int failures;
static char failure_msg[512];
static pthread_mutex_t failure_mu = PTHREAD_MUTEX_INITIALIZER;

static void
record_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
record_failure(const char *fmt, ...)
{
    if (atomic_fetch_add(&failures, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        pthread_mutex_lock(&failure_mu);
        vsnprintf(failure_msg, sizeof failure_msg, fmt, ap);
        pthread_mutex_unlock(&failure_mu);
        va_end(ap);
    }
}

/* ------------------------------ pattern -------------------------------- */

static uint64_t
pattern_word(uint64_t seed, uint64_t j)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + j * 0xD1B54A32D192ED03ULL;
    x ^= x >> 29;
    return x;
}

static unsigned char
pattern_byte(uint64_t seed, size_t off)
{
    return (unsigned char)(pattern_word(seed, off / 8) >> (8 * (off % 8)));
}

static void
pattern_fill(unsigned char *d, size_t n, uint64_t seed)
{
    size_t j = 0;
    for (; (j + 1) * 8 <= n; j++) {
        const uint64_t w = pattern_word(seed, j);
        memcpy(d + j * 8, &w, 8);
    }
    for (size_t i = j * 8; i < n; i++)
        d[i] = pattern_byte(seed, i);
}

/* Returns the first bad offset, or n. */
static size_t
pattern_check(const unsigned char *d, size_t n, uint64_t seed)
{
    size_t j = 0;
    for (; (j + 1) * 8 <= n; j++) {
        uint64_t w;
        memcpy(&w, d + j * 8, 8);
        if (w != pattern_word(seed, j))
            return j * 8;
    }
    for (size_t i = j * 8; i < n; i++)
        if (d[i] != pattern_byte(seed, i))
            return i;
    return n;
}

/* --------------------------- deleter thread ---------------------------- */

typedef struct item {
    void *managed;
    int versioned;
    const unsigned char *base;     /* buffer's first byte, kept alive by the export */
    size_t nbytes;
    uint64_t seed;
} item_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    item_t items[QUEUE_CAP];
    int head, count, done;
    uint64_t deleted;
} queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
           {{0}}, 0, 0, 0, 0};

static void
queue_push(item_t it)
{
    pthread_mutex_lock(&queue.mu);
    while (queue.count == QUEUE_CAP)
        pthread_cond_wait(&queue.not_full, &queue.mu);
    queue.items[(queue.head + queue.count) % QUEUE_CAP] = it;
    queue.count++;
    pthread_cond_signal(&queue.not_empty);
    pthread_mutex_unlock(&queue.mu);
}

static void *
deleter_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&queue.mu);
        while (queue.count == 0 && !queue.done)
            pthread_cond_wait(&queue.not_empty, &queue.mu);
        if (queue.count == 0) {
            pthread_mutex_unlock(&queue.mu);
            return NULL;
        }
        const item_t it = queue.items[queue.head];
        queue.head = (queue.head + 1) % QUEUE_CAP;
        queue.count--;
        pthread_cond_signal(&queue.not_full);
        pthread_mutex_unlock(&queue.mu);
        const size_t bad = pattern_check(it.base, it.nbytes, it.seed);
        if (bad != it.nbytes)
            record_failure("deleter thread: byte %zu of %zu clobbered (seed %" PRIx64 ")", bad, it.nbytes, it.seed);
        dlpack_delete(it.managed, it.versioned);
        queue.deleted++;          /* only this thread writes it; read after join */
    }
}

/* ------------------------------ workers -------------------------------- */

typedef struct worker {
    raster_pool_t *pool;
    int tid, cycles;
    uint64_t rng;
    uint64_t handed_off;
} worker_t;

static uint64_t
next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int64_t
rand_below(uint64_t *s, int64_t n)
{
    return n > 0 ? (int64_t)(next_rand(s) % (uint64_t)n) : 0;
}

/* Checks every element of the export against the pattern at its byte
 * offset in the buffer. */
static void
check_tensor(const raster_DLTensor *t, const unsigned char *base, size_t es, uint64_t seed)
{
    int64_t shape[4] = {1, 1, 1, 1}, strides[4] = {0, 0, 0, 0};
    const int lead = 4 - t->ndim;
    for (int d = 0; d < t->ndim; d++) {
        shape[lead + d] = t->shape[d];
        strides[lead + d] = t->strides[d];
    }
    const unsigned char *const data = t->data;
    for (int64_t i0 = 0; i0 < shape[0]; i0++)
        for (int64_t i1 = 0; i1 < shape[1]; i1++)
            for (int64_t i2 = 0; i2 < shape[2]; i2++)
                for (int64_t i3 = 0; i3 < shape[3]; i3++) {
                    const int64_t e = i0 * strides[0] + i1 * strides[1] + i2 * strides[2] + i3 * strides[3];
                    const unsigned char *p = data + e * (int64_t)es;
                    const size_t off = (size_t)(p - base);
                    for (size_t k = 0; k < es; k++)
                        if (p[k] != pattern_byte(seed, off + k)) {
                            record_failure("tensor element at byte %zu clobbered (seed %" PRIx64 ")", off + k, seed);
                            return;
                        }
                }
}

static void *
worker_main(void *arg)
{
    worker_t *w = arg;
    for (int cycle = 0; cycle < w->cycles && atomic_load(&failures) == 0; cycle++) {
        uint64_t *r = &w->rng;
        const raster_dtype_t dt = (raster_dtype_t)rand_below(r, RASTER_DTYPE_COUNT);
        const int64_t b = 1 + rand_below(r, 2), h = rand_below(r, 33), wd = rand_below(r, 33);
        const int64_t c = 1 + rand_below(r, 4);
        raster_buffer_t *buf = NULL;
        const raster_status_t st = raster_pool_acquire(w->pool, dt, b, h, wd, c, 60000, &buf);
        if (st != RASTER_OK) {
            record_failure("thread %d cycle %d: acquire: %s: %s", w->tid, cycle, raster_status_str(st),
                 raster_last_error());
            break;
        }
        const size_t es = raster_dtype_size(dt), nbytes = (size_t)(b * h * wd * c) * es;
        unsigned char *const base = raster_buffer_data(buf);
        const uint64_t seed = ((uint64_t)(w->tid + 1) << 40) ^ ((uint64_t)cycle << 8) ^ (next_rand(r) & 0xff);
        pattern_fill(base, nbytes, seed);

        raster_dlpack_request_t req;
        raster_dlpack_request_init(&req);
        req.versioned = (int)rand_below(r, 2);
        req.read_only = req.versioned && rand_below(r, 2);
        req.index = rand_below(r, b + 1) - 1;
        req.row_off = rand_below(r, h + 1);
        req.height = rand_below(r, 2) ? -1 : rand_below(r, h - req.row_off + 1);
        req.col_off = rand_below(r, wd + 1);
        req.width = rand_below(r, 2) ? -1 : rand_below(r, wd - req.col_off + 1);
        req.chan_off = rand_below(r, c);
        req.channels = rand_below(r, 2) ? -1 : 1 + rand_below(r, c - req.chan_off);
        void *managed = NULL;
        const raster_status_t est = raster_buffer_to_dlpack(buf, &req, &managed);
        if (est != RASTER_OK) {
            record_failure("thread %d cycle %d: export: %s", w->tid, cycle, raster_last_error());
            raster_buffer_release(buf);
            break;
        }
        const raster_DLTensor *t = req.versioned ? &((raster_DLManagedTensorVersioned *)managed)->dl_tensor
                                                 : &((raster_DLManagedTensor *)managed)->dl_tensor;
        check_tensor(t, base, es, seed);

        switch (rand_below(r, 4)) {
        case 0:                         /* handle first, then the tensor */
            raster_buffer_release(buf);
            if (pattern_check(base, nbytes, seed) != nbytes)
                record_failure("thread %d cycle %d: clobbered while only the export held it", w->tid, cycle);
            dlpack_delete(managed, req.versioned);
            break;
        case 1:                         /* tensor first, then the handle */
            dlpack_delete(managed, req.versioned);
            if (pattern_check(base, nbytes, seed) != nbytes)
                record_failure("thread %d cycle %d: clobbered while only the handle held it", w->tid, cycle);
            raster_buffer_release(buf);
            break;
        case 2:                         /* tensor to the deleter thread, then the handle */
            queue_push((item_t){managed, req.versioned, base, nbytes, seed});
            raster_buffer_release(buf);
            w->handed_off++;
            break;
        default:                        /* handle, then the tensor to the deleter thread */
            raster_buffer_release(buf);
            queue_push((item_t){managed, req.versioned, base, nbytes, seed});
            w->handed_off++;
            break;
        }
    }
    return NULL;
}

START_TEST(threads_acquire_fill_export_release)
{
    const int cycles = stress_cycles();
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(BUDGET, &pool), RASTER_OK);
    pthread_t deleter, th[NTHREADS];
    worker_t w[NTHREADS];
    ck_assert_int_eq(pthread_create(&deleter, NULL, deleter_main, NULL), 0);
    const double t0 = now_s();
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker_t){pool, i, cycles, 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1), 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    /* Watch the counters while the workers run: a snapshot is consistent. */
    uint64_t samples = 0;
    for (;;) {
        raster_pool_stats_t s;
        raster_pool_get_stats(pool, &s);
        ck_assert_uint_le(s.bytes_in_use, s.bytes_reserved);
        ck_assert_uint_le(s.bytes_reserved, BUDGET);
        ck_assert_uint_le(s.peak_bytes_in_use, BUDGET);
        ck_assert_int_ge(s.buffers_outstanding, 0);
        ck_assert_int_ge(s.exports_outstanding, 0);
        samples++;
        if (s.acquires == (uint64_t)NTHREADS * (uint64_t)cycles || atomic_load(&failures) > 0)
            break;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    uint64_t handed_off = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        handed_off += w[i].handed_off;
    }
    pthread_mutex_lock(&queue.mu);
    queue.done = 1;
    pthread_cond_signal(&queue.not_empty);
    pthread_mutex_unlock(&queue.mu);
    pthread_join(deleter, NULL);
    const double wall = now_s() - t0;
    ck_assert_msg(atomic_load(&failures) == 0, "%d failure(s), first: %s", atomic_load(&failures),
                  failure_msg);
    ck_assert_uint_eq(queue.deleted, handed_off);

    raster_pool_stats_t s;
    raster_pool_get_stats(pool, &s);
    fprintf(stderr, "stress: %d threads x %d cycles (acquire/fill/export/check/delete/release) in "
            "%.2f s; %" PRIu64 " tensors deleted on another thread; waits %" PRIu64
            ", block mallocs %" PRIu64 ", export mallocs %" PRIu64 ", peak %zu of %zu bytes, "
            "%" PRIu64 " stats snapshots\n", NTHREADS, cycles, wall, handed_off, s.waits,
            s.block_mallocs, s.export_mallocs, s.peak_bytes_in_use, BUDGET, samples);
    ck_assert_uint_eq(s.acquires, (uint64_t)NTHREADS * (uint64_t)cycles);
    ck_assert_int_eq(s.buffers_outstanding, 0);
    ck_assert_int_eq(s.exports_outstanding, 0);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    ck_assert_uint_eq(s.timeouts, 0);
    ck_assert_uint_le(s.peak_bytes_in_use, BUDGET);
    ck_assert_uint_le(s.bytes_reserved, BUDGET);
    raster_pool_destroy(pool);
}
END_TEST

/* Buffers and exports outlive the pool and are dropped by many threads at
 * once: the last of them, whichever it is, frees the pool. */
#define LATE 64

typedef struct late {
    raster_buffer_t *buf[LATE];
    void *managed[LATE];
    int from, to;
} late_t;

static void *
late_main(void *arg)
{
    late_t *l = arg;
    for (int i = l->from; i < l->to; i++) {
        raster_buffer_release(l->buf[i]);
        dlpack_delete(l->managed[i], i & 1);
    }
    return NULL;
}

START_TEST(concurrent_release_after_destroy)
{
    for (int round = 0; round < 20; round++) {
        raster_pool_t *pool = NULL;
        ck_assert_int_eq(raster_pool_create(1 << 20, &pool), RASTER_OK);
        late_t l;
        for (int i = 0; i < LATE; i++) {
            ck_assert_int_eq(raster_pool_acquire(pool, RASTER_U16, 1, 8, 8 + i, 3, 0, &l.buf[i]),
                             RASTER_OK);
            raster_dlpack_request_t req;
            raster_dlpack_request_init(&req);
            req.versioned = i & 1;
            ck_assert_int_eq(raster_buffer_to_dlpack(l.buf[i], &req, &l.managed[i]), RASTER_OK);
        }
        raster_pool_destroy(pool);
        pthread_t th[NTHREADS];
        late_t parts[NTHREADS];
        for (int t = 0; t < NTHREADS; t++) {
            parts[t] = l;
            parts[t].from = t * LATE / NTHREADS;
            parts[t].to = (t + 1) * LATE / NTHREADS;
            ck_assert_int_eq(pthread_create(&th[t], NULL, late_main, &parts[t]), 0);
        }
        for (int t = 0; t < NTHREADS; t++)
            pthread_join(th[t], NULL);
    }
}
END_TEST

static Suite *
pool_stress_suite(void)
{
    Suite *s = suite_create("pool_stress");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, threads_acquire_fill_export_release);
    tcase_add_test(tc, concurrent_release_after_destroy);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(pool_stress_suite)
