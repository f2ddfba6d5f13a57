/*
 * tile_cache.c - the cache of decoded segments (tiles or strips) with a
 * byte budget, least recently used out first: the mode switch, and the
 * private (per-process) cache that serves when the shared one cannot.
 *
 * Why it exists: a training loader reads the same scenes again and again
 * (epochs, overlapping windows, several workers over the same files), and
 * without a cache every read decodes every tile again, where GDAL keeps
 * decoded blocks (5 % of RAM per process by default).  The cache is keyed
 * by the file (identity at open, see cache.h), not by the open dataset,
 * so a file opened again (per worker, or in every __getitem__) hits.
 *
 * Modes (raster_tile_cache_get_stats().mode), decided at first use:
 * - shared (the default): one arena per user and machine in POSIX shared
 *   memory (shm_arena.c), which every process attaches to; the budget is
 *   one hard ceiling for all of them;
 * - private: this file's LRU, per process, when the arena cannot be used
 *   (the reason is in the stats) or RASTERLOADER_TILE_CACHE_SHARED=0;
 * - off: RASTERLOADER_TILE_CACHE_BYTES=0 or raster_tile_cache_set_budget(0).
 * The budget: RASTERLOADER_TILE_CACHE_BYTES (bytes, or with K/M/G), or
 * raster_tile_cache_set_budget(), else RASTER_TILE_CACHE_DEFAULT_PERCENT of
 * the memory this process may use (physical memory, or the memory limit of
 * its cgroup when lower: see raster__tile_cache_default_budget), for the
 * whole machine.
 *
 * The private cache: the reader asks get(key, bytes) for a decoded prefix
 * of at least 'bytes'; on a miss it reserve()s an entry, decodes into it
 * and put()s it.  Either way it places from the entry's memory and
 * release()s it.  Entries are refcounted so eviction never frees memory a
 * reader is placing from: an evicted entry that is still in use is only
 * unlinked, and freed by its last release.  A partial decode (the rows a
 * window needed) is stored with its length; a later read needing more rows
 * misses and the longer prefix replaces it.
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
 * Threads: a hit takes no global lock.  The table's buckets are split in
 * NSTRIPES stripes (bucket index modulo NSTRIPES, so a key's stripe does
 * not change when the table grows), each with its own mutex, which guards
 * its buckets' chains, the refs of the entries chained there (and of an
 * entry being released: the stripe of its key) and its hit and miss
 * counts.  The cache's mutex guards the LRU list, the budget's
 * bookkeeping and the other counters; it is taken before a stripe's,
 * never after, and all stripes are held to grow the table.  A hit locks
 * one stripe, takes a ref and marks the entry referenced; it does not
 * move it: the evictor gives a referenced entry a second chance (clears
 * the mark and moves it to the hot end: CLOCK over the LRU list).  The
 * budget is also an atomic so a disabled cache costs readers one load.
 * Fork: every mutex is held across fork() and released in both
 * processes, so the child never inherits one locked.  Entries in use by the parent's other
 * threads are never released in the child; their bytes stay counted there.
 */
#include "cache.h"
#include "shm_arena.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

enum { ENTRY_HDR = 128, INITIAL_BUCKETS = 256 };

struct raster__tile_entry {
    raster__tile_key_t key;       /* file identity, IFD, segment */
    size_t capacity;              /* decoded bytes it has room for (budget charge) */
    size_t valid;                 /* decoded bytes that are good (a prefix) */
    int refs;                     /* readers using it now (under its key's stripe) */
    int linked;                   /* in the table and the LRU list (under both locks) */
    atomic_int referenced;        /* hit since the evictor last passed it */
    int stripe;                   /* its key's stripe, from put() on (0 before: only its reserver holds it) */
    raster__tile_entry_t *hnext;  /* hash chain */
    raster__tile_entry_t *prev, *next;   /* LRU list, head = most recent */
};
_Static_assert(sizeof(raster__tile_entry_t) <= ENTRY_HDR, "tile entry header outgrew ENTRY_HDR");

enum { NSTRIPES = 32 };         /* a power of two, at most INITIAL_BUCKETS; TSan follows at most 64 locks held at once (the table grows under all of them) */

typedef struct stripe {
    _Alignas(64) pthread_mutex_t mu;
    uint64_t hits, misses;
} stripe_t;

static stripe_t stripes[NSTRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;

static void
stripes_init(void)
{
    for (int i = 0; i < NSTRIPES; i++)
        pthread_mutex_init(&stripes[i].mu, NULL);
}

static void
stripes_lock_all(void)
{
    pthread_once(&stripes_once, stripes_init);
    for (int i = 0; i < NSTRIPES; i++)
        pthread_mutex_lock(&stripes[i].mu);
}

static void
stripes_unlock_all(void)
{
    for (int i = NSTRIPES; i-- > 0;)
        pthread_mutex_unlock(&stripes[i].mu);
}

static stripe_t *
stripe_of(const raster__tile_key_t *k)
{
    pthread_once(&stripes_once, stripes_init);
    return &stripes[raster__tile_key_hash(k) & (NSTRIPES - 1)];
}

static struct {
    pthread_mutex_t mu;
    atomic_size_t budget;         /* 0: off */
    size_t bytes_used;
    int64_t entries;
    uint64_t inserts, evictions, block_mallocs;
    raster__tile_entry_t **buckets;
    size_t nbuckets;              /* power of two, or 0 before first use */
    raster__tile_entry_t *head, *tail;
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* GDAL's cache limit as the first open set it (raster__tile_cache_note_gdal). */
static _Atomic int64_t gdal_cache_limit = -1;

void
raster__tile_cache_note_gdal(int64_t gdal_cache_bytes)
{
    atomic_store(&gdal_cache_limit, gdal_cache_bytes);
}

/* Fork (hooks run by fork.c): the private cache's mutex is held across
 * fork(), so the child inherits the table whole and the mutex free. */
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

void raster__tile_cache_fork_prepare(void) { pthread_mutex_lock(&cache.mu); stripes_lock_all(); }
void raster__tile_cache_fork_parent(void) { stripes_unlock_all(); pthread_mutex_unlock(&cache.mu); }
void raster__tile_cache_fork_child(void) { stripes_unlock_all(); pthread_mutex_unlock(&cache.mu); }

static void
fork_hooks_register(void)
{
    static const raster__fork_hooks_t hooks = {raster__tile_cache_fork_prepare, raster__tile_cache_fork_parent,
                                               raster__tile_cache_fork_child};
    raster__fork_hooks(RASTER__FORK_TILE_CACHE, &hooks);
}


/* ------------------------------ keys ----------------------------------- */

void
raster__tile_key_file_local(const struct stat *sb, uint64_t file_out[5])
{
    file_out[0] = (uint64_t)sb->st_dev;
    file_out[1] = (uint64_t)sb->st_ino;
    file_out[2] = (uint64_t)sb->st_size;
    file_out[3] = (uint64_t)sb->st_mtim.tv_sec * 1000000000u + (uint64_t)sb->st_mtim.tv_nsec;
    file_out[4] = (uint64_t)sb->st_ctim.tv_sec * 1000000000u + (uint64_t)sb->st_ctim.tv_nsec;
}

/* FNV-1a, 64 bits, from 'seed'. */
static uint64_t
fnv1a(const char *s, uint64_t seed)
{
    uint64_t h = seed;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

void
raster__tile_key_file_remote(const char *url, uint64_t nbytes, int64_t mtime_s, uint64_t file_out[5])
{
    /* Two independent 64-bit hashes of the URL: a collision of both (and
     * of size and time) is not a practical concern.  The top bit of word 0
     * set keeps remote identities apart from local ones (a device number
     * never has it). */
    file_out[0] = fnv1a(url, 0xcbf29ce484222325ULL) | (1ULL << 63);
    file_out[1] = fnv1a(url, 0x84222325cbf29ce4ULL);
    file_out[2] = nbytes;
    file_out[3] = (uint64_t)mtime_s;
    file_out[4] = 0;
}

/* ------------------------------ table ---------------------------------- */

static size_t
bucket_of(const raster__tile_key_t *k, size_t nbuckets)
{
    return (size_t)raster__tile_key_hash(k) & (nbuckets - 1);
}

/* The entry of 'k', whose hash is 'h' (a hit hashes once: its stripe and
 * its bucket are both bits of it). */
static raster__tile_entry_t *
lookup_hashed(const raster__tile_key_t *k, uint64_t h)
{
    if (cache.nbuckets == 0)
        return NULL;
    for (raster__tile_entry_t *e = cache.buckets[h & (cache.nbuckets - 1)]; e; e = e->hnext)
        if (raster__tile_key_equal(&e->key, k))
            return e;
    return NULL;
}

static raster__tile_entry_t *
lookup(const raster__tile_key_t *k)
{
    return lookup_hashed(k, raster__tile_key_hash(k));
}

/* Doubles the table when it holds more entries than buckets; an allocation
 * failure just leaves longer chains.  Under the cache's mutex; takes every
 * stripe to move the chains. */
static void
table_grow(void)
{
    if (cache.nbuckets != 0 && (size_t)cache.entries < cache.nbuckets)
        return;
    const size_t n = cache.nbuckets ? cache.nbuckets * 2 : INITIAL_BUCKETS;
    raster__tile_entry_t **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    stripes_lock_all();
    raster__tile_entry_t **const old = cache.buckets;
    for (size_t i = 0; i < cache.nbuckets; i++)
        for (raster__tile_entry_t *e = cache.buckets[i], *nx; e; e = nx) {
            nx = e->hnext;
            const size_t k = bucket_of(&e->key, n);
            e->hnext = b[k];
            b[k] = e;
        }
    cache.buckets = b;
    cache.nbuckets = n;
    stripes_unlock_all();
    free(old);
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
    raster__tile_entry_t **pp = &cache.buckets[bucket_of(&e->key, cache.nbuckets)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
    lru_unlink(e);
    e->linked = 0;
    cache.entries--;
}

/* Unlinks 'e' if no reader holds it (its refs are its stripe's). */
static int
unlink_if_unused(raster__tile_entry_t *e)
{
    stripe_t *st = stripe_of(&e->key);
    pthread_mutex_lock(&st->mu);
    const int unused = e->refs == 0;
    if (unused)
        unlink_entry(e);
    pthread_mutex_unlock(&st->mu);
    return unused;
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
        if (atomic_exchange_explicit(&e->referenced, 0, memory_order_relaxed)) {
            lru_unlink(e);      /* hit since last time: a second chance (each entry once) */
            lru_push_head(e);
            e = prev;
            continue;
        }
        if (unlink_if_unused(e)) {
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

/* ------------------------------ private cache --------------------------- */

/* get() of n keys, each under its stripe's lock (out[i] NULL: a miss). */
static void
private_get_many(const raster__tile_key_t *keys, const size_t *min_valid, int64_t n,
                 const raster__tile_entry_t **out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = NULL;
    if (n <= 0 || atomic_load_explicit(&cache.budget, memory_order_relaxed) == 0)
        return;
    pthread_once(&stripes_once, stripes_init);
    for (int64_t i = 0; i < n; i++) {
        const uint64_t h = raster__tile_key_hash(&keys[i]);
        stripe_t *st = &stripes[h & (NSTRIPES - 1)];
        pthread_mutex_lock(&st->mu);
        raster__tile_entry_t *e = lookup_hashed(&keys[i], h);
        if (e != NULL && e->valid >= min_valid[i]) {
            e->refs++;
            if (!atomic_load_explicit(&e->referenced, memory_order_relaxed))
                atomic_store_explicit(&e->referenced, 1, memory_order_relaxed);
            st->hits++;
            out[i] = e;
        } else {
            st->misses++;
        }
        pthread_mutex_unlock(&st->mu);
    }
}

static raster__tile_entry_t *
private_reserve(size_t capacity)
{
    const size_t budget = atomic_load(&cache.budget);
    if (budget == 0 || capacity == 0 || capacity > budget)
        return NULL;
    pthread_once(&fork_once, fork_hooks_register);
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

static void
private_put(raster__tile_entry_t *e, const raster__tile_key_t *k, size_t valid)
{
    raster__tile_entry_t *to_free = NULL;
    pthread_mutex_lock(&cache.mu);
    table_grow();
    stripe_t *st = stripe_of(k);
    pthread_mutex_lock(&st->mu);
    e->key = *k;
    e->stripe = (int)(st - stripes);
    e->valid = valid < e->capacity ? valid : e->capacity;
    raster__tile_entry_t *old = lookup(k);
    /* Another reader may have published the same segment meanwhile; keep
     * the longer prefix.  The loser stays valid for its reader. */
    if (!e->linked && cache.nbuckets > 0 && atomic_load(&cache.budget) > 0 &&
        (old == NULL || old->valid < e->valid)) {
        if (old != NULL) {
            unlink_entry(old);
            if (old->refs == 0)
                retire(old, &to_free);
        }
        raster__tile_entry_t **b = &cache.buckets[bucket_of(k, cache.nbuckets)];
        e->hnext = *b;
        *b = e;
        lru_push_head(e);
        e->linked = 1;
        cache.entries++;
        cache.inserts++;
    }
    pthread_mutex_unlock(&st->mu);
    pthread_mutex_unlock(&cache.mu);
    free_chain(to_free);
}

/* release() of the private entries among es[0..n), each under its key's
 * stripe (NULL and the shared arena's entries skipped). */
static void
private_release_many(const raster__tile_entry_t *const *es, int64_t n)
{
    raster__tile_entry_t *to_free = NULL;
    for (int64_t i = 0; i < n; i++) {
        if (es[i] == NULL || raster__shm_owns(es[i]))
            continue;
        raster__tile_entry_t *const e = (raster__tile_entry_t *)es[i];   /* ours to count */
        pthread_once(&stripes_once, stripes_init);
        stripe_t *st = &stripes[e->stripe & (NSTRIPES - 1)];
        pthread_mutex_lock(&st->mu);
        const int last = --e->refs == 0 && !e->linked;
        pthread_mutex_unlock(&st->mu);
        if (last) {             /* unlinked and unused: nobody else can reach it */
            e->hnext = to_free;
            to_free = e;
        }
    }
    if (to_free == NULL)
        return;
    pthread_mutex_lock(&cache.mu);
    for (raster__tile_entry_t *e = to_free; e != NULL; e = e->hnext)
        cache.bytes_used -= e->capacity;
    pthread_mutex_unlock(&cache.mu);
    free_chain(to_free);
}



static void
private_set_budget(size_t budget_bytes)
{
    pthread_once(&fork_once, fork_hooks_register);
    raster__tile_entry_t *to_free = NULL;
    pthread_mutex_lock(&cache.mu);
    atomic_store(&cache.budget, budget_bytes);
    if (budget_bytes == 0) {
        /* Off: drop the whole table; entries in use go with their release. */
        for (raster__tile_entry_t *e = cache.head, *nx; e; e = nx) {
            nx = e->next;
            stripe_t *st = stripe_of(&e->key);
            pthread_mutex_lock(&st->mu);
            unlink_entry(e);
            const int unused = e->refs == 0;
            pthread_mutex_unlock(&st->mu);
            if (unused)
                retire(e, &to_free);
        }
    } else {
        evict_for(0, budget_bytes, 0, NULL, &to_free);
    }
    pthread_mutex_unlock(&cache.mu);
    free_chain(to_free);
}

static void
private_stats(raster_tile_cache_stats_t *s)
{
    pthread_mutex_lock(&cache.mu);
    s->budget_bytes = atomic_load(&cache.budget);
    s->bytes_used = cache.bytes_used;
    s->entries = cache.entries;
    s->hits = s->misses = 0;
    pthread_once(&stripes_once, stripes_init);
    for (int i = 0; i < NSTRIPES; i++) {
        pthread_mutex_lock(&stripes[i].mu);
        s->hits += stripes[i].hits;
        s->misses += stripes[i].misses;
        pthread_mutex_unlock(&stripes[i].mu);
    }
    s->inserts = cache.inserts;
    s->evictions = cache.evictions;
    s->block_mallocs = cache.block_mallocs;
    pthread_mutex_unlock(&cache.mu);
}

/* ------------------------------ mode ----------------------------------- */

/* Which cache this process uses: decided at first use from the
 * environment, or by the first raster_tile_cache_set_budget(). */
enum { MODE_OFF = 0, MODE_PRIVATE = 1, MODE_SHARED = 2 };

static struct {
    pthread_mutex_t mu;
    atomic_int inited;
    atomic_int mode;
    int shared_tried;
    char reason[192];
} M = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* "123", "64M", "2G", "512k" (powers of 1024); -1 if malformed. */
static long long
parse_bytes(const char *v)
{
    char *end = NULL;
    errno = 0;
    const double x = strtod(v, &end);
    if (end == v || errno != 0 || x < 0)
        return -1;
    double m = 1;
    switch (*end) {
    case 'k': case 'K': m = 1024.0, end++; break;
    case 'm': case 'M': m = 1048576.0, end++; break;
    case 'g': case 'G': m = 1073741824.0, end++; break;
    case 't': case 'T': m = 1099511627776.0, end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B' || *end == 'b')   /* "MiB", "MB" */
        end += *end == 'i' ? 1 : 0, end += (*end == 'B' || *end == 'b');
    if (*end != '\0' || x * m > 9e18)
        return -1;
    return (long long)(x * m);
}

/* ------------------------------ default budget ------------------------- */

/* The limit in the cgroup file 'path': a number of bytes, or UINT64_MAX
 * for "max", a missing file or anything else. */
static uint64_t
limit_in_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return UINT64_MAX;
    char buf[64];
    const int got = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    if (!got || buf[0] < '0' || buf[0] > '9')
        return UINT64_MAX;
    char *end = NULL;
    errno = 0;
    const unsigned long long v = strtoull(buf, &end, 10);
    if (errno != 0 || (*end != '\n' && *end != '\0'))
        return UINT64_MAX;
    return (uint64_t)v;
}

/* The lowest 'file' limit of the cgroup 'cg' (a path from /proc/self/cgroup)
 * and of each parent up to the hierarchy's mount point 'mount', included:
 * a parent's limit bounds its children, and inside a container the mount
 * point is the container's own cgroup (its path in /proc/self/cgroup may
 * name directories the container does not see: those are skipped). */
static uint64_t
lowest_limit_up(const char *mount, const char *cg, const char *file)
{
    char dir[4096], path[4096 + 32];
    if (strstr(cg, "/..") != NULL)
        cg = "";            /* outside our cgroup namespace: only the mount point */
    if (snprintf(dir, sizeof dir, "%s%s", mount, cg) >= (int)sizeof dir)
        return UINT64_MAX;
    const size_t floor = strlen(mount);
    uint64_t lowest = UINT64_MAX;
    for (;;) {
        size_t len = strlen(dir);
        while (len > floor && dir[len - 1] == '/')
            dir[--len] = '\0';
        snprintf(path, sizeof path, "%s/%s", dir, file);
        const uint64_t v = limit_in_file(path);
        lowest = v < lowest ? v : lowest;
        char *slash = strrchr(dir, '/');
        if (len <= floor || slash == NULL || (size_t)(slash - dir) < floor)
            break;
        *slash = '\0';
    }
    return lowest;
}

/* Whether the comma-separated list 'controllers' names "memory". */
static int
names_memory(const char *controllers)
{
    for (const char *p = controllers; (p = strstr(p, "memory")) != NULL; p += 6)
        if ((p == controllers || p[-1] == ',') && (p[6] == ',' || p[6] == '\0'))
            return 1;
    return 0;
}

uint64_t
raster__cgroup_memory_limit(const char *root)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/proc/self/cgroup", root);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return UINT64_MAX;
    uint64_t lowest = UINT64_MAX;
    char line[4096], mount[4096];
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        /* "hierarchy-id:controllers:path"; v2 is "0::path". */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL || c2[1] != '/')
            continue;
        *c1 = *c2 = '\0';
        const char *controllers = c1 + 1, *cg = c2 + 1, *file;
        if (strcmp(line, "0") == 0 && controllers[0] == '\0') {
            snprintf(mount, sizeof mount, "%s/sys/fs/cgroup", root);
            file = "memory.max";
        } else if (names_memory(controllers)) {
            snprintf(mount, sizeof mount, "%s/sys/fs/cgroup/memory", root);
            file = "memory.limit_in_bytes";
        } else {
            continue;
        }
        const uint64_t v = lowest_limit_up(mount, cg, file);
        lowest = v < lowest ? v : lowest;
    }
    fclose(f);
    return lowest;
}

uint64_t
raster__tile_cache_budget_for(uint64_t ram_nbytes, uint64_t cgroup_limit)
{
    const uint64_t memory = cgroup_limit < ram_nbytes ? cgroup_limit : ram_nbytes;
    /* Whole pages: the shared arena's capacity is the budget in 4 KiB units. */
    return memory / 100 * RASTER_TILE_CACHE_DEFAULT_PERCENT / 4096 * 4096;
}

size_t
raster__tile_cache_default_budget(void)
{
    const long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    const uint64_t ram = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : (uint64_t)10 << 30;
    return (size_t)raster__tile_cache_budget_for(ram, raster__cgroup_memory_limit(""));
}

/* Under M.mu: attach to the shared arena or fall back to a private cache
 * of 'budget' bytes, with the reason kept for the stats. */
static void
use_budget(size_t budget, int explicit_budget)
{
    if (budget == 0) {
        atomic_store(&M.mode, MODE_OFF);
        return;
    }
    if (!M.shared_tried) {
        M.shared_tried = 1;
        const char *sh = getenv("RASTERLOADER_TILE_CACHE_SHARED");
        if (sh != NULL && strcmp(sh, "0") == 0) {
            snprintf(M.reason, sizeof M.reason, "RASTERLOADER_TILE_CACHE_SHARED=0: private cache");
        } else if (raster__shm_attach(budget, explicit_budget ? budget : 0, M.reason, sizeof M.reason)) {
            atomic_store(&M.mode, MODE_SHARED);
            const size_t b = raster__shm_budget();
            if (explicit_budget && b < budget)
                snprintf(M.reason, sizeof M.reason,
                         "budget capped to the arena's capacity (%zu bytes: at most a quarter of /dev/shm and "
                         "half of what it had free, or the size an earlier process made it)", b);
            return;
        }
    }
    if (atomic_load(&M.mode) == MODE_SHARED) {
        const size_t b = raster__shm_set_budget(budget);
        if (b < budget)
            snprintf(M.reason, sizeof M.reason, "budget capped to the arena's capacity (%zu bytes)", b);
        return;
    }
    private_set_budget(budget);
    atomic_store(&M.mode, MODE_PRIVATE);
}

static void
ensure_init(void)
{
    if (atomic_load_explicit(&M.inited, memory_order_acquire))
        return;
    pthread_mutex_lock(&M.mu);
    if (!atomic_load(&M.inited)) {
        const char *v = getenv("RASTERLOADER_TILE_CACHE_BYTES");
        long long b = v != NULL && v[0] != '\0' ? parse_bytes(v) : -2;
        if (b == -1) {
            snprintf(M.reason, sizeof M.reason, "RASTERLOADER_TILE_CACHE_BYTES=%.40s is not a size: default used", v);
            b = -2;
        }
        if (b == 0)
            snprintf(M.reason, sizeof M.reason, "off: RASTERLOADER_TILE_CACHE_BYTES=0");
        use_budget(b == -2 ? raster__tile_cache_default_budget() : (size_t)b, b != -2);
        atomic_store_explicit(&M.inited, 1, memory_order_release);
    }
    pthread_mutex_unlock(&M.mu);
}

/* ------------------------------ reader API ----------------------------- */

int
raster__tile_cache_enabled(void)
{
    ensure_init();
    switch (atomic_load_explicit(&M.mode, memory_order_relaxed)) {
    case MODE_SHARED: return raster__shm_budget() > 0;
    case MODE_PRIVATE: return atomic_load_explicit(&cache.budget, memory_order_relaxed) > 0;
    default: return 0;
    }
}

void
raster__tile_cache_get_many(const raster__tile_key_t *keys, const size_t *min_valid, int64_t n,
                            const raster__tile_entry_t **out)
{
    if (!raster__tile_cache_enabled()) {
        for (int64_t i = 0; i < n; i++)
            out[i] = NULL;
        return;
    }
    if (atomic_load(&M.mode) == MODE_SHARED)
        raster__shm_get_many(keys, min_valid, n, out);
    else
        private_get_many(keys, min_valid, n, out);
}

const raster__tile_entry_t *
raster__tile_cache_get(const raster__tile_key_t *k, size_t min_valid)
{
    const raster__tile_entry_t *e;
    raster__tile_cache_get_many(k, &min_valid, 1, &e);
    return e;
}

raster__tile_entry_t *
raster__tile_cache_reserve(size_t capacity)
{
    if (!raster__tile_cache_enabled())
        return NULL;
    return atomic_load(&M.mode) == MODE_SHARED ? raster__shm_reserve(capacity) : private_reserve(capacity);
}

void
raster__tile_cache_put(raster__tile_entry_t *e, const raster__tile_key_t *k, size_t valid)
{
    if (e == NULL)
        return;
    if (raster__shm_owns(e))
        raster__shm_put(e, k, valid);
    else
        private_put(e, k, valid);
}

void
raster__tile_cache_release_many(const raster__tile_entry_t *const *es, int64_t n)
{
    raster__shm_release_many(es, n);
    private_release_many(es, n);
}

void
raster__tile_cache_release(const raster__tile_entry_t *e)
{
    raster__tile_cache_release_many(&e, 1);
}

void *
raster__tile_entry_data(const raster__tile_entry_t *e)
{
    if (raster__shm_owns(e))
        return raster__shm_entry_data(e);
    return (unsigned char *)e + ENTRY_HDR;
}

size_t
raster__tile_entry_valid(const raster__tile_entry_t *e)
{
    if (raster__shm_owns(e))
        return raster__shm_entry_valid(e);
    return e->valid;
}

/* ------------------------------ public API ----------------------------- */

raster_status_t
raster_tile_cache_set_budget(size_t budget_bytes)
{
    pthread_mutex_lock(&M.mu);
    if (!atomic_load(&M.inited) || strncmp(M.reason, "off:", 4) == 0 || strncmp(M.reason, "budget capped", 13) == 0)
        M.reason[0] = '\0';
    switch (atomic_load(&M.mode)) {
    case MODE_SHARED: {
        /* Machine-wide: every attached process sees the new budget. */
        const size_t b = raster__shm_set_budget(budget_bytes);
        if (b < budget_bytes)
            snprintf(M.reason, sizeof M.reason, "budget capped to the arena's capacity (%zu bytes)", b);
        break;
    }
    case MODE_PRIVATE:
        private_set_budget(budget_bytes);
        break;
    default:
        use_budget(budget_bytes, 1);
        break;
    }
    atomic_store_explicit(&M.inited, 1, memory_order_release);
    pthread_mutex_unlock(&M.mu);
    return RASTER_OK;
}

void
raster_tile_cache_get_stats(raster_tile_cache_stats_t *s)
{
    if (s == NULL)
        return;
    ensure_init();
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&M.mu);
    const int mode = atomic_load(&M.mode);
    snprintf(s->reason, sizeof s->reason, "%s", M.reason);
    pthread_mutex_unlock(&M.mu);
    s->mode = mode;
    if (mode == MODE_SHARED) {
        raster__shm_stats(s);
    } else {
        private_stats(s);
        s->capacity_bytes = s->budget_bytes;
        s->attached_processes = 1;
    }
    s->gdal_cache_bytes = atomic_load(&gdal_cache_limit);
}

void
raster_tile_cache_detach(void)
{
    raster__shm_detach();
    raster__shm_reap();
}
