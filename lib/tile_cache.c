/*
 * tile_cache.c - an optional, process-wide cache of decoded segments (tiles
 * or strips) with a byte budget, least recently used out first.
 *
 * Why it exists, and why it is off by default: a loader of random windows
 * over more imagery than fits in memory decodes every tile again whatever
 * it caches, so a cache only costs memory there.  Overlapping windows are
 * different (a grid with stride < size decodes each tile up to four times,
 * a few epochs over one scene decode it every epoch), and for those a
 * budgeted cache turns repeat decodes into placing from memory.  GDAL's
 * block cache does the same job without a per-reader budget; this one has
 * one budget for the process and says so in its stats.
 *
 * Shape of the API (internal.h): the reader asks get(id, seg, bytes) for a
 * decoded prefix of at least 'bytes'; on a miss it reserve()s an entry,
 * decodes into it and put()s it.  Either way it places from the entry's
 * memory and release()s it.  Entries are refcounted so eviction never frees
 * memory a reader is placing from: an evicted entry that is still in use is
 * only unlinked, and freed by its last release.  The key is (dataset id,
 * segment index); ids come from raster__tile_cache_new_id() at open, never
 * from pointers, so a dataset opened at a freed dataset's address cannot
 * see its entries.  A partial decode (the rows a window needed) is stored
 * with its length; a later read needing more rows misses and the longer
 * prefix replaces it.
 *
 * Memory: every entry, linked or only in use, counts against the budget
 * from reserve() to its free; reserve() evicts unused entries from the cold
 * end until the new one fits and returns NULL when it cannot (the reader
 * then decodes into its scratch as without a cache), so the budget is a
 * hard ceiling.  A block freed by eviction is reused for the reservation
 * that caused it when the sizes match, which is the steady state (one
 * segment size per file): a full cache in a steady loop does not call the
 * allocator (stats.block_mallocs stays flat).  Blocks are mapped and
 * unmapped directly (mmap), not malloc'd: entries are hundreds of KiB to
 * MiB and freed from any thread, and glibc, whose mmap threshold rises to
 * the size of the last freed block, would then serve them from per-thread
 * arenas it rarely returns, so RSS crept past the budget (+5 MiB on a 2 MiB
 * budget in the soak).  An unmapped block leaves RSS at once.
 *
 * Threads: one mutex guards the table, the LRU list and the counters; the
 * budget is also an atomic so a disabled cache costs readers one load.
 * Fork: the mutex is held across fork() and released in both processes, so
 * the child never inherits it locked.  Entries in use by the parent's other
 * threads are never released in the child; their bytes stay counted there.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { ENTRY_HDR = 128, INITIAL_BUCKETS = 256 };

struct raster__tile_entry {
    uint64_t id;                  /* dataset id (raster__tile_cache_new_id) */
    int64_t seg;                  /* segment index in the dataset's tables */
    size_t capacity;              /* decoded bytes it has room for (budget charge) */
    size_t valid;                 /* decoded bytes that are good (a prefix) */
    int refs;                     /* readers using it now */
    int linked;                   /* in the table and the LRU list */
    raster__tile_entry_t *hnext;  /* hash chain */
    raster__tile_entry_t *prev, *next;   /* LRU list, head = most recent */
};
_Static_assert(sizeof(raster__tile_entry_t) <= ENTRY_HDR, "tile entry header outgrew ENTRY_HDR");

static struct {
    pthread_mutex_t mu;
    atomic_size_t budget;         /* 0: off */
    size_t bytes_used;
    int64_t entries;
    uint64_t hits, misses, inserts, evictions, block_mallocs;
    raster__tile_entry_t **buckets;
    size_t nbuckets;              /* power of two, or 0 before first use */
    raster__tile_entry_t *head, *tail;
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

static atomic_uint_fast64_t next_id = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void) { pthread_mutex_lock(&cache.mu); }
static void atfork_release(void) { pthread_mutex_unlock(&cache.mu); }

static void
atfork_register(void)
{
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

uint64_t
raster__tile_cache_new_id(void)
{
    return atomic_fetch_add(&next_id, 1);
}

int
raster__tile_cache_enabled(void)
{
    return atomic_load_explicit(&cache.budget, memory_order_relaxed) > 0;
}

void *
raster__tile_entry_data(const raster__tile_entry_t *e)
{
    return (unsigned char *)e + ENTRY_HDR;
}

size_t
raster__tile_entry_valid(const raster__tile_entry_t *e)
{
    return e->valid;
}

/* ------------------------------ table ---------------------------------- */

static size_t
bucket_of(uint64_t id, int64_t seg, size_t nbuckets)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ULL ^ (uint64_t)seg;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
    return (size_t)h & (nbuckets - 1);
}

static raster__tile_entry_t *
lookup(uint64_t id, int64_t seg)
{
    if (cache.nbuckets == 0)
        return NULL;
    for (raster__tile_entry_t *e = cache.buckets[bucket_of(id, seg, cache.nbuckets)]; e; e = e->hnext)
        if (e->id == id && e->seg == seg)
            return e;
    return NULL;
}

/* Doubles the table when it holds more entries than buckets; an allocation
 * failure just leaves longer chains. */
static void
table_grow(void)
{
    if (cache.nbuckets != 0 && (size_t)cache.entries < cache.nbuckets)
        return;
    const size_t n = cache.nbuckets ? cache.nbuckets * 2 : INITIAL_BUCKETS;
    raster__tile_entry_t **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < cache.nbuckets; i++)
        for (raster__tile_entry_t *e = cache.buckets[i], *nx; e; e = nx) {
            nx = e->hnext;
            const size_t k = bucket_of(e->id, e->seg, n);
            e->hnext = b[k];
            b[k] = e;
        }
    free(cache.buckets);
    cache.buckets = b;
    cache.nbuckets = n;
}

static void
lru_unlink(raster__tile_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        cache.head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        cache.tail = e->prev;
    e->prev = e->next = NULL;
}

static void
lru_push_head(raster__tile_entry_t *e)
{
    e->prev = NULL;
    e->next = cache.head;
    if (cache.head)
        cache.head->prev = e;
    cache.head = e;
    if (cache.tail == NULL)
        cache.tail = e;
}

/* Takes 'e' out of the table and the LRU list (its bytes stay counted
 * until it is freed). */
static void
unlink_entry(raster__tile_entry_t *e)
{
    raster__tile_entry_t **pp = &cache.buckets[bucket_of(e->id, e->seg, cache.nbuckets)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
    lru_unlink(e);
    e->linked = 0;
    cache.entries--;
}

/* Bookkeeping for an entry leaving memory; the caller frees it outside the
 * lock.  Chained through hnext. */
static void
retire(raster__tile_entry_t *e, raster__tile_entry_t **to_free)
{
    cache.bytes_used -= e->capacity;
    e->hnext = *to_free;
    *to_free = e;
}

/* Entry blocks: header + capacity bytes, page-aligned (so 64-byte aligned). */
static raster__tile_entry_t *
block_map(size_t capacity)
{
    void *p = mmap(NULL, ENTRY_HDR + capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void
block_unmap(raster__tile_entry_t *e)
{
    munmap(e, ENTRY_HDR + e->capacity);
}

static void
free_chain(raster__tile_entry_t *e)
{
    while (e != NULL) {
        raster__tile_entry_t *const nx = e->hnext;
        block_unmap(e);
        e = nx;
    }
}

/* Evicts unused entries from the cold end until 'need' more bytes fit the
 * budget or nothing unused is left.  A victim of exactly 'reuse_capacity'
 * bytes is handed back in *reuse instead of being retired (once). */
static void
evict_for(size_t need, size_t budget, size_t reuse_capacity, raster__tile_entry_t **reuse,
          raster__tile_entry_t **to_free)
{
    raster__tile_entry_t *e = cache.tail;
    while (e != NULL && cache.bytes_used + need > budget) {
        raster__tile_entry_t *const prev = e->prev;
        if (e->refs == 0) {
            unlink_entry(e);
            cache.evictions++;
            if (reuse != NULL && *reuse == NULL && e->capacity == reuse_capacity) {
                /* Keep its budget charge: it becomes the new reservation. */
                *reuse = e;
                need -= reuse_capacity < need ? reuse_capacity : need;
            } else {
                retire(e, to_free);
            }
        }
        e = prev;
    }
}

/* ------------------------------ reader API ------------------------------ */

const raster__tile_entry_t *
raster__tile_cache_get(uint64_t id, int64_t seg, size_t min_valid)
{
    if (!raster__tile_cache_enabled())
        return NULL;
    pthread_mutex_lock(&cache.mu);
    raster__tile_entry_t *e = lookup(id, seg);
    if (e != NULL && e->valid >= min_valid) {
        e->refs++;
        lru_unlink(e);
        lru_push_head(e);
        cache.hits++;
    } else {
        e = NULL;
        cache.misses++;
    }
    pthread_mutex_unlock(&cache.mu);
    return e;
}

raster__tile_entry_t *
raster__tile_cache_reserve(size_t capacity)
{
    const size_t budget = atomic_load(&cache.budget);
    if (budget == 0 || capacity == 0 || capacity > budget)
        return NULL;
    pthread_once(&atfork_once, atfork_register);
    raster__tile_entry_t *to_free = NULL, *e = NULL;
    pthread_mutex_lock(&cache.mu);
    evict_for(capacity, budget, capacity, &e, &to_free);
    if (e == NULL) {
        if (cache.bytes_used + capacity <= budget) {
            cache.bytes_used += capacity;      /* reserved before allocating */
            cache.block_mallocs++;
        } else {
            capacity = 0;                      /* everything left is in use */
        }
    }
    pthread_mutex_unlock(&cache.mu);
    free_chain(to_free);
    if (e == NULL && capacity > 0) {
        if ((e = block_map(capacity)) == NULL) {
            pthread_mutex_lock(&cache.mu);
            cache.bytes_used -= capacity;
            pthread_mutex_unlock(&cache.mu);
            return NULL;
        }
    }
    if (e != NULL) {
        memset(e, 0, sizeof *e);
        e->capacity = capacity;
        e->refs = 1;
    }
    return e;
}

void
raster__tile_cache_put(raster__tile_entry_t *e, uint64_t id, int64_t seg, size_t valid)
{
    if (e == NULL)
        return;
    raster__tile_entry_t *to_free = NULL;
    pthread_mutex_lock(&cache.mu);
    e->id = id;
    e->seg = seg;
    e->valid = valid < e->capacity ? valid : e->capacity;
    raster__tile_entry_t *old = lookup(id, seg);
    /* Another reader may have published the same segment meanwhile; keep
     * the longer prefix.  The loser stays valid for its reader. */
    table_grow();
    if (!e->linked && cache.nbuckets > 0 && atomic_load(&cache.budget) > 0 &&
        (old == NULL || old->valid < e->valid)) {
        if (old != NULL) {
            unlink_entry(old);
            if (old->refs == 0)
                retire(old, &to_free);
        }
        raster__tile_entry_t **b = &cache.buckets[bucket_of(id, seg, cache.nbuckets)];
        e->hnext = *b;
        *b = e;
        lru_push_head(e);
        e->linked = 1;
        cache.entries++;
        cache.inserts++;
    }
    pthread_mutex_unlock(&cache.mu);
    free_chain(to_free);
}

void
raster__tile_cache_release(const raster__tile_entry_t *ce)
{
    if (ce == NULL)
        return;
    raster__tile_entry_t *const e = (raster__tile_entry_t *)ce;   /* ours to count */
    raster__tile_entry_t *to_free = NULL;
    pthread_mutex_lock(&cache.mu);
    if (--e->refs == 0 && !e->linked)
        retire(e, &to_free);
    pthread_mutex_unlock(&cache.mu);
    free_chain(to_free);
}

void
raster__tile_cache_forget(uint64_t id)
{
    raster__tile_entry_t *to_free = NULL;
    pthread_mutex_lock(&cache.mu);
    for (raster__tile_entry_t *e = cache.head, *nx; e; e = nx) {
        nx = e->next;
        if (e->id != id)
            continue;
        unlink_entry(e);
        if (e->refs == 0)
            retire(e, &to_free);
    }
    pthread_mutex_unlock(&cache.mu);
    free_chain(to_free);
}

/* ------------------------------ public API ------------------------------ */

raster_status_t
raster_tile_cache_set_budget(size_t budget_bytes)
{
    pthread_once(&atfork_once, atfork_register);
    raster__tile_entry_t *to_free = NULL;
    pthread_mutex_lock(&cache.mu);
    atomic_store(&cache.budget, budget_bytes);
    if (budget_bytes == 0) {
        /* Off: drop the whole table; entries in use go with their release. */
        for (raster__tile_entry_t *e = cache.head, *nx; e; e = nx) {
            nx = e->next;
            unlink_entry(e);
            if (e->refs == 0)
                retire(e, &to_free);
        }
    } else {
        evict_for(0, budget_bytes, 0, NULL, &to_free);
    }
    pthread_mutex_unlock(&cache.mu);
    free_chain(to_free);
    return RASTER_OK;
}

void
raster_tile_cache_get_stats(raster_tile_cache_stats_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&cache.mu);
    s->budget_bytes = atomic_load(&cache.budget);
    s->bytes_used = cache.bytes_used;
    s->entries = cache.entries;
    s->hits = cache.hits;
    s->misses = cache.misses;
    s->inserts = cache.inserts;
    s->evictions = cache.evictions;
    s->block_mallocs = cache.block_mallocs;
    pthread_mutex_unlock(&cache.mu);
}
