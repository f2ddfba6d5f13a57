/*
 * pool.c - the buffer pool: a byte budget, size classes, refcounted handles,
 * blocking acquire with a timeout, stats and a leak report.
 *
 * Why it is shaped this way:
 * - One allocation per block: a 128-byte handle header, then the pixels.
 *   The block is 64-byte aligned (posix_memalign) and the header is a
 *   multiple of 64 bytes, so the pixels are too.  The handle travels with
 *   its block through the free lists, so a recycled buffer costs neither a
 *   block nor a handle allocation: after warm-up a steady acquire/release
 *   loop never calls the allocator (stats.block_mallocs stays flat).
 * - Size classes are quarter steps between powers of two (64, 128, 192,
 *   256, then 320, 384, 448, 512, 640, ...).  Rounding wastes at most 25% of
 *   a block, against 50% for plain powers of two; that matters because the
 *   budget is charged for whole blocks, so waste is budget a producer cannot
 *   use.  Four classes per octave keep the class table small (221 lists),
 *   and a loader asking for the same [b,h,w,c] every step always lands in
 *   the same class, so reuse is exact.  A class larger than the budget is
 *   capped at the budget, so any request that fits the budget can be served.
 * - The budget counts reserved bytes: blocks handed out plus blocks kept for
 *   reuse.  When a new block would pass it, cached blocks of other classes
 *   are freed first (only if that is enough); otherwise acquire waits on a
 *   condition variable until a release returns memory.  That wait is the
 *   back-pressure that keeps prefetch from growing memory.  There is no
 *   fairness queue: a large request may wait while small ones that fit are
 *   served, which is what a prefetcher wants (it never blocks a consumer).
 * - Counters live under the pool mutex, so a stats snapshot is consistent.
 *   Only the refcount is lock-free: retain and non-final releases take no
 *   lock; the final release takes the mutex once to put the block back.
 * - The pool is kept alive by its buffers (and threads inside acquire):
 *   raster_pool_destroy() marks it closing, frees the cached blocks and
 *   wakes waiters; the struct goes with the last buffer.
 * - Misuse that would corrupt memory aborts with a message (a buffer
 *   released more times than retained, a pool destroyed twice): every
 *   handle carries a state word checked before its refcount is touched.
 *   The check is one load, so it runs in every build, not only debug ones.
 *   It cannot catch a release of a handle whose block was freed (that is a
 *   use after free, for ASan/valgrind) or reused by a later acquire.
 * - fork(): the fork hooks (run by fork.c) hold every pool's mutex across fork(),
 *   so the child never inherits a mutex locked by a thread it does not
 *   have; in the child each pool gets a fresh mutex and condition variable
 *   and works on.  Buffers the parent's other threads held are never
 *   returned in the child (their budget stays spent there); the child's
 *   copies of buffers held by the forking thread release normally.
 * - RASTERLOADER_DEBUG=1 at pool creation: each buffer remembers the return
 *   address of its raster_pool_acquire() call, live buffers are linked in a
 *   list, released blocks are filled with 0xDD (a use after release reads
 *   garbage, not stale pixels), and raster_pool_destroy() prints every
 *   buffer still out with its call site, resolved by dladdr() as
 *   "module(symbol+0xoff) [addr]" (the format of backtrace_symbols(), so
 *   `addr2line -e module 0xoff` gives the line when the symbol is static).
 */
#include "runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    BUF_HDR = 128,                /* handle header in front of the pixels */
    BLOCK_ALIGN = 64,
    CLASS_EMPTY = 0,              /* zero-byte buffers: a header, no pixels */
    CLASS_COUNT = 5 + (61 - 8 + 1) * 4,
    RECORDS_CACHED_MAX = 256      /* export records kept per pool */
};
#define BLOCK_MAX ((size_t)1 << 62)   /* largest class (k = 61, q = 4) */

enum { BUF_LIVE = 0x4c495645u, BUF_FREE = 0x46524545u };   /* "LIVE", "FREE" */
enum { POOL_MAGIC = 0x504f4f4cu };                          /* "POOL" */

struct raster_buffer {
    atomic_uint state;            /* BUF_LIVE while owned, BUF_FREE when cached */
    atomic_int refcount;          /* owners: handles + DLPack exports */
    raster_pool_t *pool;          /* the pool it returns to (kept alive by us) */
    void *data;                   /* first pixel byte: block + BUF_HDR, or empty_area */
    size_t block_nbytes;          /* pixel bytes charged to the budget (0: empty) */
    size_t nbytes;                /* pixel bytes of the current shape */
    raster_dtype_t dtype;
    int cls;                      /* size class, fixed for the block's life */
    int64_t shape[4];             /* b, h, w, c */
    const void *site;             /* acquire call site (debug report) */
    raster_buffer_t *next;        /* free list, or the debug live list */
    raster_buffer_t *prev;        /* debug live list */
};
_Static_assert(sizeof(struct raster_buffer) <= BUF_HDR, "buffer header outgrew BUF_HDR");
_Static_assert(BUF_HDR % BLOCK_ALIGN == 0, "pixels must stay 64-byte aligned");

struct raster_pool {
    unsigned magic;
    raster_pool_t *reg_prev, *reg_next;   /* all live pools, for fork() */
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* signalled when memory returns or on close */
    size_t budget;
    int debug;                    /* RASTERLOADER_DEBUG at creation */
    int closing;                  /* raster_pool_destroy() was called */
    int acquirers;                /* threads inside acquire (keep the pool alive) */
    int waiters;                  /* threads blocked on cv */
    size_t bytes_in_use, bytes_reserved, bytes_cached, peak_bytes_in_use;
    uint64_t acquires, waits, timeouts, block_mallocs, export_mallocs;
    int64_t buffers_outstanding, exports_outstanding;
    raster_buffer_t *free_list[CLASS_COUNT];
    void *records;                /* cached export records, linked by their first word */
    int records_cached;
    raster_buffer_t *live;        /* debug: buffers handed out */
};

/* Data pointer of zero-byte buffers: non-NULL and aligned (DLPack consumers
 * leak or reject NULL), never written since there is nothing to write. */
static _Alignas(BLOCK_ALIGN) unsigned char empty_area[BLOCK_ALIGN];

static atomic_int fail_allocs;

/* Every pool not yet freed, so the fork handlers can reach them. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static raster_pool_t *registry;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* ------------------------------ helpers ------------------------------- */

void
raster__abort(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rasterloader: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    abort();
}

void
raster__pool_fail_allocs(int n)
{
    atomic_store(&fail_allocs, n);
}

static int
injected_failure(void)
{
    int n = atomic_load(&fail_allocs);
    while (n > 0)
        if (atomic_compare_exchange_weak(&fail_allocs, &n, n - 1))
            return 1;
    return 0;
}

/* Size class of a request of 'n' bytes (1 <= n <= BLOCK_MAX) and its size. */
static int
size_class(size_t n, size_t *class_nbytes)
{
    if (n <= 256) {
        const size_t q = (n + 63) / 64;            /* 1..4 */
        *class_nbytes = q * 64;
        return (int)q;
    }
    const int k = 63 - __builtin_clzll((unsigned long long)(n - 1));   /* 2^k < n <= 2^(k+1) */
    const size_t base = (size_t)1 << k, step = base >> 2;
    const size_t q = (n - base + step - 1) / step;                      /* 1..4 */
    *class_nbytes = base + q * step;
    return 5 + (k - 8) * 4 + (int)(q - 1);
}

/* Bytes of a compact [b,h,w,c] buffer of 'dt'; 0 on overflow of int64. */
static int
shape_nbytes(raster_dtype_t dt, const int64_t shape[4], size_t *nbytes_out)
{
    int64_t n = (int64_t)raster_dtype_size(dt);
    for (int i = 0; i < 4; i++)
        if (__builtin_mul_overflow(n, shape[i], &n))
            return 0;
    if ((uint64_t)n > (uint64_t)SIZE_MAX)
        return 0;
    *nbytes_out = (size_t)n;
    return 1;
}

static void
deadline_after(int timeout_ms, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void
live_insert(raster_pool_t *p, raster_buffer_t *b)
{
    b->prev = NULL;
    b->next = p->live;
    if (p->live != NULL)
        p->live->prev = b;
    p->live = b;
}

static void
live_remove(raster_pool_t *p, raster_buffer_t *b)
{
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        p->live = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    b->next = b->prev = NULL;
}

static void
free_chain(raster_buffer_t *b)
{
    while (b != NULL) {
        raster_buffer_t *const next = b->next;
        free(b);
        b = next;
    }
}

static void
free_records(void *r)
{
    while (r != NULL) {
        void *next;
        memcpy(&next, r, sizeof next);
        free(r);
        r = next;
    }
}

static int
cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    /* Timeouts measure elapsed time: a wall-clock jump must not cut or
     * stretch them. */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    const int rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

/* Fork (hooks run by fork.c): hold the registry and every pool mutex
 * across fork(), so no pool is mid-update in the child. */
void
raster__pool_fork_prepare(void)
{
    pthread_mutex_lock(&registry_mu);
    for (raster_pool_t *p = registry; p != NULL; p = p->reg_next)
        pthread_mutex_lock(&p->mu);
}

void
raster__pool_fork_parent(void)
{
    for (raster_pool_t *p = registry; p != NULL; p = p->reg_next)
        pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&registry_mu);
}

/* The child has one thread, the one that forked, and it is not inside
 * acquire: nobody waits and nobody acquires.  The mutexes are ours to
 * unlock; the condition variable is made afresh, since the old one may
 * count waiters that do not exist here (and would wait for them). */
void
raster__pool_fork_child(void)
{
    for (raster_pool_t *p = registry; p != NULL; p = p->reg_next) {
        p->waiters = 0;
        p->acquirers = 0;
        cond_init(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&registry_mu);
}

static void
fork_hooks_register(void)
{
    static const raster__fork_hooks_t hooks = {raster__pool_fork_prepare, raster__pool_fork_parent,
                                               raster__pool_fork_child};
    raster__fork_hooks(RASTER__FORK_POOLS, &hooks);
}

static void
pool_free(raster_pool_t *p)
{
    pthread_mutex_lock(&registry_mu);
    if (p->reg_prev != NULL)
        p->reg_prev->reg_next = p->reg_next;
    else
        registry = p->reg_next;
    if (p->reg_next != NULL)
        p->reg_next->reg_prev = p->reg_prev;
    pthread_mutex_unlock(&registry_mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    p->magic = 0;
    free(p);
}

/* The pool struct goes once it is closing and nobody can reach it. */
static int
pool_unreachable(const raster_pool_t *p)
{
    return p->closing && p->buffers_outstanding == 0 && p->acquirers == 0;
}

/* Pops cached blocks of classes other than 'keep', largest first, until a
 * new block of 'need' bytes fits the budget; returns them chained for
 * freeing outside the lock.  The caller checked that the cache is enough. */
static raster_buffer_t *
evict_for(raster_pool_t *p, int keep, size_t need)
{
    raster_buffer_t *victims = NULL;
    for (int c = CLASS_COUNT - 1; c > CLASS_EMPTY && p->bytes_reserved + need > p->budget; c--) {
        while (c != keep && p->free_list[c] != NULL && p->bytes_reserved + need > p->budget) {
            raster_buffer_t *const b = p->free_list[c];
            p->free_list[c] = b->next;
            p->bytes_reserved -= b->block_nbytes;
            p->bytes_cached -= b->block_nbytes;
            b->next = victims;
            victims = b;
        }
    }
    return victims;
}

/* -------------------------------- pool -------------------------------- */

raster_status_t
raster_pool_create(size_t budget_bytes, raster_pool_t **pool_out)
{
    RASTER_CHECK(pool_out != NULL, RASTER_E_INVALID_ARG, "raster_pool_create: pool_out is NULL");
    *pool_out = NULL;
    RASTER_CHECK(budget_bytes > 0, RASTER_E_INVALID_ARG, "raster_pool_create: budget_bytes is 0");
    raster_pool_t *const p = calloc(1, sizeof *p);
    RASTER_CHECK(p != NULL, RASTER_E_NOMEM, "raster_pool_create: out of memory");
    int rc = cond_init(&p->cv);
    if (rc == 0 && (rc = pthread_mutex_init(&p->mu, NULL)) != 0)
        pthread_cond_destroy(&p->cv);
    if (rc != 0) {
        free(p);
        return raster__fail(RASTER_E_NOMEM, "raster_pool_create: mutex or condition init failed (%d)", rc);
    }
    const char *const dbg = getenv("RASTERLOADER_DEBUG");
    p->debug = dbg != NULL && atoi(dbg) != 0;
    p->budget = budget_bytes;
    p->magic = POOL_MAGIC;
    pthread_once(&fork_once, fork_hooks_register);
    pthread_mutex_lock(&registry_mu);
    p->reg_next = registry;
    if (registry != NULL)
        registry->reg_prev = p;
    registry = p;
    pthread_mutex_unlock(&registry_mu);
    *pool_out = p;
    return RASTER_OK;
}

/* Writes one line per buffer still out; called with the mutex held. */
static void
report_outstanding(const raster_pool_t *p)
{
    size_t nbytes = 0;
    for (const raster_buffer_t *b = p->live; b != NULL; b = b->next)
        nbytes += b->nbytes;
    fprintf(stderr, "rasterloader: pool %p destroyed with %" PRId64 " buffer(s) still out "
            "(%zu bytes; %" PRId64 " DLPack export(s) not yet deleted)\n",
            (const void *)p, p->buffers_outstanding, nbytes, p->exports_outstanding);
    for (const raster_buffer_t *b = p->live; b != NULL; b = b->next) {
        Dl_info di;
        const char *module = "?", *sym = NULL;
        uintptr_t off = (uintptr_t)b->site;
        if (b->site != NULL && dladdr(b->site, &di) != 0) {
            module = di.dli_fname != NULL && di.dli_fname[0] != '\0' ? di.dli_fname : "?";
            if (di.dli_sname != NULL) {
                sym = di.dli_sname;
                off = (uintptr_t)b->site - (uintptr_t)di.dli_saddr;
            } else {
                off = (uintptr_t)b->site - (uintptr_t)di.dli_fbase;
            }
        }
        fprintf(stderr, "  buffer %p: %s [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "], "
                "%zu bytes, %d reference(s), acquired at %s(%s+0x%" PRIxPTR ") [%p]\n",
                (const void *)b, raster_dtype_name(b->dtype), b->shape[0], b->shape[1],
                b->shape[2], b->shape[3], b->nbytes, atomic_load(&b->refcount), module,
                sym != NULL ? sym : "", off, b->site);
    }
    fflush(stderr);
}

void
raster_pool_destroy(raster_pool_t *pool)
{
    if (pool == NULL)
        return;
    if (pool->magic != POOL_MAGIC)
        raster__abort("raster_pool_destroy(%p): not a pool", (void *)pool);
    raster_buffer_t *blocks = NULL;
    pthread_mutex_lock(&pool->mu);
    if (pool->closing) {
        pthread_mutex_unlock(&pool->mu);
        raster__abort("raster_pool_destroy(%p): pool destroyed twice", (void *)pool);
    }
    pool->closing = 1;
    for (int c = 0; c < CLASS_COUNT; c++) {
        while (pool->free_list[c] != NULL) {
            raster_buffer_t *const b = pool->free_list[c];
            pool->free_list[c] = b->next;
            b->next = blocks;
            blocks = b;
        }
    }
    pool->bytes_reserved -= pool->bytes_cached;
    pool->bytes_cached = 0;
    void *const records = pool->records;
    pool->records = NULL;
    pool->records_cached = 0;
    if (pool->debug && pool->buffers_outstanding > 0)
        report_outstanding(pool);
    pthread_cond_broadcast(&pool->cv);          /* waiters return RASTER_E_CLOSED */
    const int unreachable = pool_unreachable(pool);
    pthread_mutex_unlock(&pool->mu);
    free_chain(blocks);
    free_records(records);
    if (unreachable)
        pool_free(pool);
}

raster_status_t
raster__pool_acquire_at(raster_pool_t *pool, raster_dtype_t dt, int64_t b, int64_t h, int64_t w,
                        int64_t c, int timeout_ms, const void *site, raster_buffer_t **buf_out)
{
    RASTER_CHECK(buf_out != NULL, RASTER_E_INVALID_ARG, "raster_pool_acquire: buf_out is NULL");
    *buf_out = NULL;
    RASTER_CHECK(pool != NULL, RASTER_E_INVALID_ARG, "raster_pool_acquire: pool is NULL");
    RASTER_CHECK((unsigned)dt < RASTER_DTYPE_COUNT, RASTER_E_INVALID_ARG,
                 "raster_pool_acquire: unknown dtype %d", (int)dt);
    const int64_t shape[4] = {b, h, w, c};
    RASTER_CHECK(b >= 0 && h >= 0 && w >= 0 && c >= 0, RASTER_E_INVALID_ARG,
                 "raster_pool_acquire: negative extent in shape [%" PRId64 ", %" PRId64 ", %" PRId64
                 ", %" PRId64 "]", b, h, w, c);
    size_t nbytes = 0;
    RASTER_CHECK(shape_nbytes(dt, shape, &nbytes), RASTER_E_INVALID_ARG,
                 "raster_pool_acquire: shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                 "] of %s overflows the byte count", b, h, w, c, raster_dtype_name(dt));
    RASTER_CHECK(nbytes <= pool->budget, RASTER_E_NOMEM,
                 "raster_pool_acquire: [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                 "] %s needs %zu bytes, more than the whole pool budget of %zu bytes",
                 b, h, w, c, raster_dtype_name(dt), nbytes, pool->budget);
    RASTER_CHECK(nbytes <= BLOCK_MAX, RASTER_E_NOMEM,
                 "raster_pool_acquire: %zu bytes is more than the largest block (%zu bytes)",
                 nbytes, BLOCK_MAX);

    int cls = CLASS_EMPTY;
    size_t block_nbytes = 0;
    if (nbytes > 0) {
        cls = size_class(nbytes, &block_nbytes);
        if (block_nbytes > pool->budget)
            block_nbytes = pool->budget;        /* every block of this class, in this pool */
    }
    struct timespec deadline;
    if (timeout_ms > 0)
        deadline_after(timeout_ms, &deadline);

    raster_status_t st = RASTER_OK;
    raster_buffer_t *buf = NULL;
    int waited = 0, timed_out = 0;
    pthread_mutex_lock(&pool->mu);
    pool->acquirers++;
    for (;;) {
        if (pool->closing) {
            st = RASTER_E_CLOSED;
            break;
        }
        if (pool->free_list[cls] != NULL) {
            buf = pool->free_list[cls];
            pool->free_list[cls] = buf->next;
            pool->bytes_cached -= buf->block_nbytes;
            break;
        }
        if (pool->bytes_reserved - pool->bytes_cached + block_nbytes <= pool->budget) {
            /* Reserve first, allocate outside the lock: the budget holds
             * while other threads go on. */
            raster_buffer_t *const victims = evict_for(pool, cls, block_nbytes);
            pool->bytes_reserved += block_nbytes;
            pthread_mutex_unlock(&pool->mu);
            free_chain(victims);
            void *blk = NULL;
            if (injected_failure() || posix_memalign(&blk, BLOCK_ALIGN, BUF_HDR + block_nbytes) != 0)
                blk = NULL;
            pthread_mutex_lock(&pool->mu);
            pool->block_mallocs++;
            if (blk == NULL) {
                pool->bytes_reserved -= block_nbytes;
                pthread_cond_broadcast(&pool->cv);   /* the reservation returned */
                st = RASTER_E_NOMEM;
                break;
            }
            buf = blk;
            buf->block_nbytes = block_nbytes;
            buf->cls = cls;
            buf->pool = pool;
            buf->data = block_nbytes > 0 ? (unsigned char *)blk + BUF_HDR : empty_area;
            atomic_init(&buf->state, BUF_FREE);
            atomic_init(&buf->refcount, 0);
            if (pool->closing) {                     /* destroyed while we allocated */
                pool->bytes_reserved -= block_nbytes;
                free(buf);
                buf = NULL;
                st = RASTER_E_CLOSED;
            }
            break;
        }
        if (timed_out || timeout_ms == 0) {
            pool->timeouts++;
            st = RASTER_E_TIMEOUT;
            break;
        }
        if (!waited) {
            waited = 1;
            pool->waits++;
        }
        pool->waiters++;
        if (timeout_ms < 0)
            pthread_cond_wait(&pool->cv, &pool->mu);
        else if (pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline) == ETIMEDOUT)
            timed_out = 1;                           /* one more look, then give up */
        pool->waiters--;
    }
    /* Snapshot for messages: after unlock the pool may be gone. */
    const size_t budget = pool->budget, in_use = pool->bytes_in_use;
    if (buf != NULL) {
        buf->dtype = dt;
        buf->nbytes = nbytes;
        memcpy(buf->shape, shape, sizeof buf->shape);
        buf->site = site;
        buf->next = buf->prev = NULL;
        atomic_store_explicit(&buf->refcount, 1, memory_order_relaxed);
        atomic_store_explicit(&buf->state, BUF_LIVE, memory_order_relaxed);
        pool->bytes_in_use += buf->block_nbytes;
        if (pool->bytes_in_use > pool->peak_bytes_in_use)
            pool->peak_bytes_in_use = pool->bytes_in_use;
        pool->acquires++;
        pool->buffers_outstanding++;
        if (pool->debug)
            live_insert(pool, buf);
    }
    pool->acquirers--;
    const int unreachable = pool_unreachable(pool);
    pthread_mutex_unlock(&pool->mu);
    if (unreachable)
        pool_free(pool);

    switch (st) {
    case RASTER_OK:
        *buf_out = buf;
        return RASTER_OK;
    case RASTER_E_CLOSED:
        return raster__fail(st, "raster_pool_acquire: the pool was destroyed");
    case RASTER_E_TIMEOUT:
        return raster__fail(st, "raster_pool_acquire: %zu bytes did not fit within %d ms "
                            "(budget %zu bytes, %zu in use)", block_nbytes, timeout_ms,
                            budget, in_use);
    default:
        return raster__fail(st, "raster_pool_acquire: out of memory for a block of %zu bytes",
                            block_nbytes);
    }
}

size_t
raster_pool_block_nbytes(size_t nbytes)
{
    size_t block_nbytes = 0;
    if (nbytes > 0 && nbytes <= BLOCK_MAX)
        size_class(nbytes, &block_nbytes);
    return block_nbytes;
}

RASTER__NOINLINE raster_status_t
raster_pool_acquire(raster_pool_t *pool, raster_dtype_t dt, int64_t b, int64_t h, int64_t w,
                    int64_t c, int timeout_ms, raster_buffer_t **buf_out)
{
    return raster__pool_acquire_at(pool, dt, b, h, w, c, timeout_ms, RASTER__CALLER, buf_out);
}

void
raster_pool_get_stats(const raster_pool_t *pool, raster_pool_stats_t *stats_out)
{
    if (stats_out == NULL)
        return;
    memset(stats_out, 0, sizeof *stats_out);
    if (pool == NULL)
        return;
    /* The mutex is the one mutable part of a const pool. */
    raster_pool_t *const p = (raster_pool_t *)pool;
    pthread_mutex_lock(&p->mu);
    stats_out->budget_bytes = p->budget;
    stats_out->bytes_in_use = p->bytes_in_use;
    stats_out->bytes_reserved = p->bytes_reserved;
    stats_out->peak_bytes_in_use = p->peak_bytes_in_use;
    stats_out->acquires = p->acquires;
    stats_out->waits = p->waits;
    stats_out->timeouts = p->timeouts;
    stats_out->block_mallocs = p->block_mallocs;
    stats_out->buffers_outstanding = p->buffers_outstanding;
    stats_out->exports_outstanding = p->exports_outstanding;
    stats_out->export_mallocs = p->export_mallocs;
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------ buffers ------------------------------- */

static void
check_live(const raster_buffer_t *buf, const char *who)
{
    const unsigned s = atomic_load_explicit(&buf->state, memory_order_relaxed);
    if (s == BUF_FREE)
        raster__abort("%s(%p): buffer already released to its pool (released twice?)",
                      who, (const void *)buf);
    if (s != BUF_LIVE)
        raster__abort("%s(%p): not a rasterloader buffer", who, (const void *)buf);
}

/* Last owner gone: the block goes back to its class list, or to the
 * allocator if the pool is closing. */
static void
buffer_return(raster_buffer_t *buf)
{
    raster_pool_t *const p = buf->pool;
    raster_buffer_t *to_free = NULL;
    /* Nobody else can reach the pixels now; poison them outside the lock. */
    if (p->debug && buf->block_nbytes > 0)
        memset(buf->data, 0xDD, buf->block_nbytes);
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&buf->state, BUF_FREE, memory_order_relaxed);
    p->bytes_in_use -= buf->block_nbytes;
    p->buffers_outstanding--;
    if (p->debug)
        live_remove(p, buf);
    if (p->closing) {
        p->bytes_reserved -= buf->block_nbytes;
        to_free = buf;
    } else {
        buf->next = p->free_list[buf->cls];
        p->free_list[buf->cls] = buf;
        p->bytes_cached += buf->block_nbytes;
        if (p->waiters > 0)
            pthread_cond_broadcast(&p->cv);          /* sizes differ: let each re-check */
    }
    const int unreachable = pool_unreachable(p);
    pthread_mutex_unlock(&p->mu);
    free(to_free);
    if (unreachable)
        pool_free(p);
}

raster_buffer_t *
raster_buffer_retain(raster_buffer_t *buf)
{
    if (buf == NULL)
        return NULL;
    check_live(buf, "raster_buffer_retain");
    if (atomic_fetch_add_explicit(&buf->refcount, 1, memory_order_relaxed) < 1)
        raster__abort("raster_buffer_retain(%p): buffer has no owner left", (void *)buf);
    return buf;
}

void
raster_buffer_release(raster_buffer_t *buf)
{
    if (buf == NULL)
        return;
    check_live(buf, "raster_buffer_release");
    const int prev = atomic_fetch_sub_explicit(&buf->refcount, 1, memory_order_acq_rel);
    if (prev > 1)
        return;
    if (prev < 1)          /* two threads raced to release the last reference */
        raster__abort("raster_buffer_release(%p): released more times than retained", (void *)buf);
    buffer_return(buf);
}

raster_status_t
raster_buffer_view(const raster_buffer_t *buf, int64_t index, raster_view_t *view_out)
{
    RASTER_CHECK(buf != NULL && view_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_buffer_view: NULL argument");
    RASTER_CHECK(atomic_load_explicit(&buf->state, memory_order_relaxed) == BUF_LIVE,
                 RASTER_E_INVALID_ARG, "raster_buffer_view: buffer %p was released",
                 (const void *)buf);
    const int64_t b = buf->shape[0], h = buf->shape[1], w = buf->shape[2], c = buf->shape[3];
    const int64_t esize = (int64_t)raster_dtype_size(buf->dtype);
    RASTER_CHECK(index >= -1 && index < b, RASTER_E_BOUNDS,
                 "raster_buffer_view: sample %" PRId64 " of a batch of %" PRId64, index, b);
    raster_view_t v;
    v.dtype = buf->dtype;
    v.width = w;
    v.channels = c;
    v.chan_stride = esize;
    v.col_stride = c * esize;
    v.row_stride = w * c * esize;
    if (index < 0) {
        v.data = buf->data;
        v.height = b * h;              /* cannot overflow: the byte count did not */
    } else {
        v.data = (unsigned char *)buf->data + index * h * v.row_stride;
        v.height = h;
    }
    *view_out = v;
    return RASTER_OK;
}

void
raster_buffer_shape(const raster_buffer_t *buf, raster_dtype_t *dt_out, int64_t shape_out[4])
{
    if (dt_out != NULL)
        *dt_out = buf != NULL ? buf->dtype : RASTER_U8;
    if (shape_out != NULL) {
        for (int i = 0; i < 4; i++)
            shape_out[i] = buf != NULL ? buf->shape[i] : 0;
    }
}

void *
raster_buffer_data(const raster_buffer_t *buf)
{
    return buf != NULL ? buf->data : NULL;
}

raster_pool_t *
raster__buffer_pool(const raster_buffer_t *buf)
{
    return buf->pool;
}

/* ------------------------- DLPack export records ------------------------ */

void *
raster__pool_record_get(raster_pool_t *pool)
{
    pthread_mutex_lock(&pool->mu);
    void *rec = pool->records;
    if (rec != NULL) {
        memcpy(&pool->records, rec, sizeof pool->records);
        pool->records_cached--;
    } else {
        pool->export_mallocs++;
    }
    pool->exports_outstanding++;
    pthread_mutex_unlock(&pool->mu);
    if (rec == NULL && !injected_failure())
        rec = malloc(RASTER__POOL_RECORD_NBYTES);
    if (rec == NULL) {
        pthread_mutex_lock(&pool->mu);
        pool->exports_outstanding--;
        pthread_mutex_unlock(&pool->mu);
        raster__fail(RASTER_E_NOMEM, "raster_buffer_to_dlpack: out of memory for a tensor record");
    }
    return rec;
}

void
raster__pool_record_put(raster_pool_t *pool, void *rec)
{
    pthread_mutex_lock(&pool->mu);
    pool->exports_outstanding--;
    if (!pool->closing && pool->records_cached < RECORDS_CACHED_MAX) {
        memcpy(rec, &pool->records, sizeof pool->records);
        pool->records = rec;
        pool->records_cached++;
        rec = NULL;
    }
    pthread_mutex_unlock(&pool->mu);
    free(rec);
}
