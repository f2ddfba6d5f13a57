/*
 * threads.c - the small persistent worker pool that decodes the segments of
 * one read in parallel.
 *
 * Why a pool of our own and not one thread per read or OpenMP: a read of a
 * 2048x2048 window is 16-25 tile decodes of a millisecond or more each, so
 * it pays to spread them over the cores, but creating threads per read would
 * cost more than a small decode and would allocate on every read.  The pool
 * is made on first need, holds raster_get_threads()-1 workers, and never
 * shrinks; each worker keeps its own scratch and decoder contexts (through
 * raster__scratch() and the per-thread codec state in lib/codec/), so a
 * steady stream of reads allocates nothing.
 *
 * The calling thread always works on its own job: it lists the job, wakes
 * as many workers as can help, takes items from the same atomic counter, and
 * then waits only for helpers still inside an item.  So a job never waits
 * for a busy pool (concurrent reads from many user threads share the workers
 * and each makes progress on its own), and a job with one item never wakes
 * anybody.  The job lives on the caller's stack; a helper touches it only
 * between joining and leaving under the pool mutex, and the caller leaves
 * only when no helper is inside.
 *
 * Fork: a child inherits the pool's memory but none of its threads, and
 * maybe a mutex locked by a thread that no longer exists.  The fork hooks
 * (run by fork.c) drop the pool pointer in the child (the old pool is
 * leaked on purpose: touching it could deadlock), and the child's first
 * parallel read starts a fresh pool.  The creation mutex is held across
 * fork() so the child never inherits it locked.  The hooks are registered
 * before the first pool is made, so no pool outlives a fork() unseen and
 * a read needs no getpid() to know the pool is its process's.
 */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 64

typedef struct job {
    raster__task_fn fn;
    void *ctx;
    const raster__gdal_config_t *gdal_config;   /* the caller's GDAL options
                                                   (gdal_config.c), borrowed */
    int64_t n;
    atomic_int_fast64_t next;   /* next item to take */
    atomic_int failed;          /* set after the first failure: skip the rest */
    /* Below: guarded by the pool mutex. */
    int helpers, max_helpers;   /* workers inside the job / allowed in */
    int listed;
    struct job *prev, *nxt;
    int64_t err_index;
    raster_status_t err_st;
    char err_msg[1024];
    raster_cause_t err_cause;       /* travels with the message to the caller's thread */
} job_t;

typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t work;        /* workers wait here for a listed job */
    pthread_cond_t left;        /* callers wait here for helpers to leave */
    job_t *head;                /* jobs that helpers may still join */
    atomic_int nworkers;        /* written under g_create_mu */
} pool_t;

static _Atomic(pool_t *) g_pool;
static pthread_mutex_t g_create_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_fork_once = PTHREAD_ONCE_INIT;
static atomic_int g_threads;            /* 0: default (cores) */
static atomic_uint_fast64_t g_allocations;

void raster__threads_fork_prepare(void) { pthread_mutex_lock(&g_create_mu); }
void raster__threads_fork_parent(void) { pthread_mutex_unlock(&g_create_mu); }

void
raster__threads_fork_child(void)
{
    atomic_store(&g_pool, NULL);        /* leaked on purpose, see header */
    pthread_mutex_unlock(&g_create_mu);
}

static void
fork_hooks_register(void)
{
    static const raster__fork_hooks_t hooks = {raster__threads_fork_prepare, raster__threads_fork_parent,
                                               raster__threads_fork_child};
    raster__fork_hooks(RASTER__FORK_THREADS, &hooks);
}

/* Online cores, asked once: sysconf() reads /sys on every call, and this
 * runs on every read. */
static int
default_threads(void)
{
    static atomic_int cores;
    int n = atomic_load_explicit(&cores, memory_order_relaxed);
    if (n == 0) {
        const long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c < 1 ? 1 : c > MAX_THREADS ? MAX_THREADS : (int)c;
        atomic_store_explicit(&cores, n, memory_order_relaxed);
    }
    return n;
}

raster_status_t
raster_set_threads(int n)
{
    atomic_store(&g_threads, n <= 0 ? 0 : n > MAX_THREADS ? MAX_THREADS : n);
    return RASTER_OK;
}

int
raster_get_threads(void)
{
    const int n = atomic_load(&g_threads);
    return n > 0 ? n : default_threads();
}

uint64_t
raster__thread_allocations(void)
{
    return atomic_load(&g_allocations);
}

/* ------------------------------ items ---------------------------------- */

static void
run_items(pool_t *p, job_t *j)
{
    for (;;) {
        const int64_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n)
            return;
        if (atomic_load(&j->failed))
            continue;
        const raster_status_t st = j->fn(j->ctx, i);
        if (st != RASTER_OK) {
            atomic_store(&j->failed, 1);
            pthread_mutex_lock(&p->mu);
            if (j->err_st == RASTER_OK || i < j->err_index) {
                j->err_st = st;
                j->err_index = i;
                snprintf(j->err_msg, sizeof j->err_msg, "%s", raster_last_error());
                j->err_cause = raster_last_error_cause();
            }
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void
unlist(pool_t *p, job_t *j)
{
    if (!j->listed)
        return;
    if (j->prev)
        j->prev->nxt = j->nxt;
    else
        p->head = j->nxt;
    if (j->nxt)
        j->nxt->prev = j->prev;
    j->listed = 0;
}

/* A listed job that still has items and room for one more helper. */
static job_t *
find_job(pool_t *p)
{
    for (job_t *j = p->head; j != NULL; j = j->nxt)
        if (j->helpers < j->max_helpers && atomic_load(&j->next) < j->n)
            return j;
    return NULL;
}

static void *
worker_main(void *arg)
{
    pool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        job_t *j = find_job(p);
        if (j == NULL) {
            pthread_cond_wait(&p->work, &p->mu);
            continue;
        }
        j->helpers++;
        pthread_mutex_unlock(&p->mu);
        /* The caller's rasterio.Env options, on this thread while it helps. */
        const raster__gdal_config_t *const cfg = j->gdal_config;
        const raster__gdal_config_t *const prev = cfg != NULL ? raster__gdal_config_adopt(cfg) : NULL;
        run_items(p, j);
        if (cfg != NULL)
            raster__gdal_config_drop(cfg, prev);
        pthread_mutex_lock(&p->mu);
        /* Nothing left to take: stop others from joining. */
        unlist(p, j);
        if (--j->helpers == 0)
            pthread_cond_broadcast(&p->left);
        /* j may be gone as soon as the mutex is released. */
    }
    return NULL;
}

/* ------------------------------ pool ----------------------------------- */

/* The pool of this process with at least 'want' workers, or as many as the
 * system allowed; NULL if it could not be made at all. */
static pool_t *
pool_get(int want)
{
    pool_t *p = atomic_load(&g_pool);
    if (p != NULL && p->nworkers >= want)
        return p;
    pthread_once(&g_fork_once, fork_hooks_register);
    pthread_mutex_lock(&g_create_mu);
    p = atomic_load(&g_pool);
    if (p == NULL) {
        p = calloc(1, sizeof *p);
        if (p != NULL) {
            atomic_fetch_add(&g_allocations, 1);
            pthread_mutex_init(&p->mu, NULL);
            pthread_cond_init(&p->work, NULL);
            pthread_cond_init(&p->left, NULL);
            atomic_store(&g_pool, p);
        }
    }
    if (p != NULL) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        while (p->nworkers < want) {
            pthread_t tid;
            if (pthread_create(&tid, &attr, worker_main, p) != 0)
                break;
            atomic_fetch_add(&g_allocations, 1);
            atomic_fetch_add(&p->nworkers, 1);
        }
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&g_create_mu);
    return p;
}

raster_status_t
raster__parallel_for(int64_t n, int max_threads, raster__task_fn fn, void *ctx)
{
    if (n <= 0)
        return RASTER_OK;
    if (max_threads > MAX_THREADS)
        max_threads = MAX_THREADS;
    pool_t *p = NULL;
    if (n > 1 && max_threads > 1)
        p = pool_get(max_threads - 1);
    if (p == NULL || p->nworkers == 0) {
        for (int64_t i = 0; i < n; i++)
            RASTER_TRY(fn(ctx, i));
        return RASTER_OK;
    }
    job_t j;
    memset(&j, 0, sizeof j);
    j.fn = fn;
    j.ctx = ctx;
    j.gdal_config = raster__gdal_config_current();
    j.n = n;
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    const int64_t helpers = n - 1 < max_threads - 1 ? n - 1 : max_threads - 1;
    j.max_helpers = (int)helpers;

    pthread_mutex_lock(&p->mu);
    j.nxt = p->head;
    if (p->head)
        p->head->prev = &j;
    p->head = &j;
    j.listed = 1;
    if (helpers > 1)
        pthread_cond_broadcast(&p->work);
    else
        pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);

    run_items(p, &j);

    pthread_mutex_lock(&p->mu);
    unlist(p, &j);
    while (j.helpers > 0)
        pthread_cond_wait(&p->left, &p->mu);
    pthread_mutex_unlock(&p->mu);

    if (j.err_st != RASTER_OK)
        return raster__fail_cause(j.err_st, j.err_cause, "%s", j.err_msg);
    return RASTER_OK;
}
