/*
 * scratch.c - per-thread scratch memory.
 *
 * Readers stage decoded or native-dtype pixels here before placing them.
 * Each thread keeps one block per slot, grown to the largest request and
 * never shrunk, so steady-state reads do not call the allocator; a pthread
 * key destructor frees the blocks when the thread exits.
 */
#include "common.h"

#include <stdlib.h>

typedef struct scratch {
    void *block[RASTER_SCRATCH_SLOTS];
    size_t nbytes[RASTER_SCRATCH_SLOTS];
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t allocations;
static atomic_int fail_skip, fail_count;    /* raster__scratch_fail_allocs() */

void
raster__scratch_fail_allocs(int skip, int n)
{
    atomic_store(&fail_count, 0);
    atomic_store(&fail_skip, skip);
    atomic_store(&fail_count, n);
}

/* 1 when the test hook says this allocation fails. */
static int
injected_failure(void)
{
    if (atomic_load_explicit(&fail_count, memory_order_relaxed) <= 0)
        return 0;
    for (int s = atomic_load(&fail_skip); s > 0;)
        if (atomic_compare_exchange_weak(&fail_skip, &s, s - 1))
            return 0;
    for (int n = atomic_load(&fail_count); n > 0;)
        if (atomic_compare_exchange_weak(&fail_count, &n, n - 1))
            return 1;
    return 0;
}

static void
scratch_free(void *p)
{
    scratch_t *s = p;
    for (int i = 0; i < RASTER_SCRATCH_SLOTS; i++)
        free(s->block[i]);
    free(s);
}

static void
scratch_key_create(void)
{
    pthread_key_create(&scratch_key, scratch_free);
}

void *
raster__scratch(int slot, size_t nbytes)
{
    pthread_once(&scratch_once, scratch_key_create);
    scratch_t *s = pthread_getspecific(scratch_key);
    if (s == NULL) {
        s = injected_failure() ? NULL : calloc(1, sizeof *s);
        if (s == NULL || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            raster__fail(RASTER_E_NOMEM, "out of memory for per-thread scratch");
            return NULL;
        }
        atomic_fetch_add(&allocations, 1);
    }
    if (nbytes > s->nbytes[slot] || s->block[slot] == NULL) {
        /* Round up so a slowly growing request does not reallocate each time. */
        size_t want = 4096;
        while (want < nbytes && want < ((size_t)1 << 62))
            want <<= 1;
        if (want < nbytes) {
            raster__fail(RASTER_E_NOMEM, "out of memory for %zu bytes of scratch", nbytes);
            return NULL;
        }
        void *p = NULL;
        if (injected_failure() || posix_memalign(&p, 64, want) != 0) {
            raster__fail(RASTER_E_NOMEM, "out of memory for %zu bytes of scratch", want);
            return NULL;
        }
        free(s->block[slot]);
        s->block[slot] = p;
        s->nbytes[slot] = want;
        atomic_fetch_add(&allocations, 1);
    }
    return s->block[slot];
}

uint64_t
raster__scratch_allocations(void)
{
    return atomic_load(&allocations);
}
