/*
 * shm_arena.c - one shared-memory arena of decoded segments per user and
 * machine, which every process reading through rasterloader attaches to:
 * the main process, its DataLoader workers (fork, spawn, forkserver) and
 * the torchrun ranks of the node.  W workers pay the budget once, and a
 * tile decoded by one of them is a hit for the others.
 *
 * The arena is a POSIX shm object "/rasterloader-tc-v<layout>-<uid>"
 * (plus "-<tag>" from RASTERLOADER_TILE_CACHE_NAME, which tests use so
 * that they never share state with each other or a user's arena), mode
 * 0600, laid out as:
 *
 *   header   magic, layout version, owner uid, sizes and offsets, the
 *            robust process-shared mutex, budget and counters
 *   procs    NPROCS process slots: pid, start time, and that process's
 *            pins (entry, count)
 *   entries  fixed table of entry descriptors (key, units, state, refs,
 *            hash chain, LRU links)
 *   buckets  hash table heads (entry index or -1)
 *   bitmap   one bit per UNIT bytes of entry memory
 *   data     entry memory, UNIT-aligned (so 64-byte aligned)
 *
 * Rules that make it safe against processes dying at any moment:
 * - One robust mutex guards every field but the entry memory.  A process
 *   killed while holding it leaves it EOWNERDEAD; the next locker rebuilds
 *   all derived state (hash chains, LRU list, free list, bitmap, refs and
 *   bytes in use) from the authoritative words (each descriptor's state,
 *   key and units; each process's pins) and marks it consistent.  So a
 *   critical section may be cut anywhere.
 * - An entry is published (state PUBLISHED, linked) only by put(), after
 *   its bytes are decoded and finished; a reader only finds published
 *   entries.  A process killed while decoding leaves a RESERVED entry
 *   pinned by a dead process: never visible, reclaimed with its pins.
 * - Readers pin entries in their own process slot (refs counted per
 *   process), unlock, copy the pixels out with no lock held, then unpin.
 *   Pinned entries are never evicted or freed.  The pins of a process that
 *   is gone (its pid no longer runs, or runs with another start time) are
 *   dropped when the arena sweeps: at attach, when no unpinned entry is
 *   left to evict, and for the stats.
 * - Memory: entry memory is reserved in the shm file with posix_fallocate,
 *   in steps, before any unit of it is handed out, so no page is ever
 *   touched that tmpfs has not backed (no SIGBUS when /dev/shm fills up).
 *   A failed fallocate caps the arena at what it has backed: reserve
 *   evicts cold entries and reuses their memory, so the cache keeps
 *   caching within it (a decode into scratch only when everything backed
 *   is pinned).  The
 *   budget is a hard ceiling on bytes of entries across all processes.
 * - Room (raster__shm_capacity_for): /dev/shm is also where torch puts
 *   every batch a DataLoader worker hands to the main process (2 workers x
 *   prefetch 2 batches, plus the batch in use), so the arena, tables
 *   included, takes at most a quarter of /dev/shm's size and half of what
 *   is free when it is made; its capacity is the budget within that.  When
 *   that room is under 32 MiB (a /dev/shm under 128 MiB, as docker's
 *   default 64 MB), no arena is made: each process uses a private cache
 *   (anonymous memory, not /dev/shm), with the reason in the stats.
 * - Trust: the object is opened O_NOFOLLOW, checked with fstat to belong
 *   to this user with no access for others, and its header is checked
 *   (magic, layout version, owner, sizes, offsets) before use; anything
 *   else is refused with the reason, and the process uses a private cache.
 *
 * Allocation: lowest fit over the bitmap (4 KiB units), inside the memory
 * already backed before past it (see units_find); evict from the cold end of the LRU until the entry fits the
 * budget and a run of free units is found.  A published entry gives back
 * the units past its valid bytes (the decoder's margin), so the budget
 * counts decoded pixels, not the decoder's room.
 *
 * The last process to leave (at exit, or raster_tile_cache_detach(), which
 * the Python package calls when a multiprocessing child ends, as those end
 * with _exit()) unlinks the object, so no memory stays held once nothing
 * reads; a killed process leaves it for the next run, which reuses it.
 *
 * Test hook: RASTERLOADER_TILE_CACHE_TEST_SLEEP_US=n sleeps n us inside
 * every critical section and after a pin is taken (before the copy), to
 * widen the windows in which tests SIGKILL processes.
 */
#include "shm_arena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define SHM_MAGIC 0x4548434143544c52ULL       /* "RLTCACHE" */
#define SHM_LAYOUT_VERSION 1u
#define UNIT ((size_t)4096)
#define NPROCS 128
#define NPINS 256
#define COMMIT_STEP ((uint64_t)32 << 20)
#define MIN_CAPACITY ((size_t)4 << 20)
/* /dev/shm room rule (raster__shm_capacity_for): the arena takes at most
 * 1/SHM_SHARE_DIVISOR of /dev/shm's size and half of what is free, and is
 * not made at all when that is under MIN_SHARED_ROOM. */
#define SHM_SHARE_DIVISOR 4
#define MIN_SHARED_ROOM ((uint64_t)32 << 20)

enum { ST_FREE = 0, ST_RESERVED = 1, ST_PUBLISHED = 2, ST_RETIRED = 3 };

typedef struct shm_pin {
    int32_t entry;                /* entry index + 1; 0: free */
    int32_t count;
} shm_pin_t;

typedef struct shm_proc {
    int32_t pid;                  /* 0: free */
    uint32_t pad;
    uint64_t start_time;          /* /proc/<pid>/stat field 22 */
    shm_pin_t pins[NPINS];
} shm_proc_t;

typedef struct shm_entry {        /* the shared descriptor */
    raster__tile_key_t key;
    uint64_t unit_off;            /* first unit of its memory */
    uint32_t nunits;
    uint32_t state;               /* ST_* */
    uint64_t capacity, valid;
    int32_t refs;                 /* pins, all processes (derived) */
    int32_t hnext, prev, next;    /* hash chain, LRU (derived) */
} shm_entry_t;

typedef struct shm_hdr {
    uint64_t magic;
    uint32_t layout_version;
    uint32_t hdr_nbytes;
    uint32_t owner_uid;
    _Atomic uint32_t ready;       /* 1 once the creator has laid it out */
    uint64_t total_nbytes;
    uint64_t capacity;            /* bytes of entry memory */
    uint64_t unit, nunits, nentries, nbuckets, nprocs, npins;
    uint64_t off_procs, off_entries, off_buckets, off_bitmap, off_data;
    pthread_mutex_t mu;
    /* Under mu: */
    _Atomic uint64_t budget;      /* also read without the lock */
    uint64_t bytes_used;
    uint64_t committed;           /* bytes of data fallocate'd */
    int64_t entries_linked;
    uint64_t hits, misses, inserts, evictions, commits, repairs, reclaimed_pins;
    uint64_t commit_failures;     /* posix_fallocate said no (/dev/shm full) */
    int32_t lru_head, lru_tail, free_head;
    uint32_t entries_hw;          /* descriptors ever used: [0, entries_hw) */
    uint64_t cursor;              /* unused (was a rotating start; layout kept) */
} shm_hdr_t;

static struct {
    shm_hdr_t *h;                 /* NULL: not attached */
    uint8_t *base;
    size_t map_nbytes;
    int fd;
    int slot;                     /* this process's slot, -1 after fork (the
                                     child hook runs in every fork: it is
                                     registered before the first attach) */
    struct timespec commit_failed;/* last failed commit: retried a second later */
    pid_t pid;                    /* whose slot it is */
    useconds_t test_sleep;
    char name[64];
    pthread_mutex_t local;        /* serialises re-attach after fork */
} A = {.fd = -1, .slot = -1, .local = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------ layout --------------------------------- */

static shm_proc_t *
procs(void)
{
    return (shm_proc_t *)(A.base + A.h->off_procs);
}

static shm_entry_t *
entries(void)
{
    return (shm_entry_t *)(A.base + A.h->off_entries);
}

static int32_t *
buckets(void)
{
    return (int32_t *)(A.base + A.h->off_buckets);
}

static uint64_t *
bitmap(void)
{
    return (uint64_t *)(A.base + A.h->off_bitmap);
}

static int32_t
index_of(const shm_entry_t *e)
{
    return (int32_t)(e - entries());
}

static void
test_pause(void)
{
    if (A.test_sleep)
        usleep(A.test_sleep);
}

/* ------------------------------ processes ------------------------------ */

/* Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or
 * 0 if the process is gone. */
static uint64_t
start_time_of(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');          /* the name may hold spaces */
    if (p == NULL)
        return 0;
    int field = 2;
    for (; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    return strtoull(p, NULL, 10);
}

static int
proc_alive(const shm_proc_t *pr)
{
    if (pr->pid <= 0)
        return 0;
    if (kill(pr->pid, 0) != 0 && errno == ESRCH)
        return 0;
    return start_time_of(pr->pid) == pr->start_time;
}

/* ------------------------------ lists (under mu) ----------------------- */

static uint64_t
bucket_of(const raster__tile_key_t *k)
{
    return raster__tile_key_hash(k) & (A.h->nbuckets - 1);
}

static shm_entry_t *
lookup(const raster__tile_key_t *k)
{
    shm_entry_t *E = entries();
    for (int32_t i = buckets()[bucket_of(k)]; i >= 0; i = E[i].hnext)
        if (raster__tile_key_equal(&E[i].key, k))
            return &E[i];
    return NULL;
}

static void
lru_unlink(shm_entry_t *e)
{
    shm_entry_t *E = entries();
    if (e->prev >= 0)
        E[e->prev].next = e->next;
    else
        A.h->lru_head = e->next;
    if (e->next >= 0)
        E[e->next].prev = e->prev;
    else
        A.h->lru_tail = e->prev;
    e->prev = e->next = -1;
}

static void
lru_push_head(shm_entry_t *e)
{
    shm_entry_t *E = entries();
    const int32_t i = index_of(e);
    e->prev = -1;
    e->next = A.h->lru_head;
    if (A.h->lru_head >= 0)
        E[A.h->lru_head].prev = i;
    A.h->lru_head = i;
    if (A.h->lru_tail < 0)
        A.h->lru_tail = i;
}

static void
hash_insert(shm_entry_t *e)
{
    int32_t *b = &buckets()[bucket_of(&e->key)];
    e->hnext = *b;
    *b = index_of(e);
}

static void
hash_remove(shm_entry_t *e)
{
    shm_entry_t *E = entries();
    int32_t *pp = &buckets()[bucket_of(&e->key)];
    const int32_t i = index_of(e);
    while (*pp >= 0 && *pp != i)
        pp = &E[*pp].hnext;
    if (*pp == i)
        *pp = e->hnext;
    e->hnext = -1;
}

static void
bits_set(uint64_t off, uint64_t n, int on)
{
    uint64_t *b = bitmap();
    for (uint64_t u = off; u < off + n; u++) {
        if (on)
            b[u >> 6] |= 1ULL << (u & 63);
        else
            b[u >> 6] &= ~(1ULL << (u & 63));
    }
}

static int
bit_get(uint64_t u)
{
    return (int)((bitmap()[u >> 6] >> (u & 63)) & 1);
}

/* First run of 'n' free units in [lo, hi); UINT64_MAX if there is none. */
static uint64_t
units_find_in(uint64_t lo, uint64_t hi, uint64_t n)
{
    uint64_t run = 0;
    for (uint64_t u = lo; u < hi;) {
        if ((u & 63) == 0 && run == 0 && bitmap()[u >> 6] == ~0ULL) {
            u += 64;
            continue;
        }
        if (bit_get(u)) {
            run = 0;
        } else if (++run == n) {
            return u + 1 - n;
        }
        u++;
    }
    return UINT64_MAX;
}

/* Lowest run of 'n' free units, within the memory already backed first:
 * tmpfs keeps a page once touched, so the arena's real footprint is the
 * highest unit ever used, not the bytes in use.  Lowest-first keeps that
 * mark near the budget when the budget is below the capacity (a rotating
 * cursor walked the whole capacity under a small budget: 2.4 GB of RSS for
 * a 2 MiB budget in the soak smoke). */
static uint64_t
units_find(uint64_t n)
{
    const uint64_t total = A.h->nunits;
    if (n > total)
        return UINT64_MAX;
    uint64_t backed = A.h->committed / UNIT;
    if (backed > total)
        backed = total;
    const uint64_t at = units_find_in(0, backed, n);
    return at != UINT64_MAX ? at : units_find_in(backed > n ? backed - n : 0, total, n);
}

/* Makes sure the data bytes up to 'end' are backed by tmpfs, reserving a
 * whole COMMIT_STEP at a time.  When /dev/shm says no, the step is not
 * retried smaller: the last free bytes of /dev/shm are what torch's worker
 * batches need, and the arena can evict within what it has; it asks again
 * a second later (something may have been freed). */
static int
commit_upto(uint64_t end)
{
    if (end <= A.h->committed)
        return 1;
    uint64_t to = (end + COMMIT_STEP - 1) / COMMIT_STEP * COMMIT_STEP;
    if (to > A.h->capacity)
        to = A.h->capacity;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (A.commit_failed.tv_sec != 0 && now.tv_sec - A.commit_failed.tv_sec < 1)
        return 0;           /* /dev/shm was full a moment ago: do not ask on every miss */
    const int rc = posix_fallocate(A.fd, (off_t)(A.h->off_data + A.h->committed),
                                   (off_t)(to - A.h->committed));
    if (rc != 0) {
        A.commit_failed = now;
        A.h->commit_failures++;
        return 0;
    }
    A.h->committed = to;
    A.h->commits++;
    return 1;
}

/* An entry's memory and descriptor go back to the arena. */
static void
entry_free(shm_entry_t *e)
{
    bits_set(e->unit_off, e->nunits, 0);
    A.h->bytes_used -= (uint64_t)e->nunits * UNIT;
    e->state = ST_FREE;
    e->refs = 0;
    e->hnext = A.h->free_head;
    A.h->free_head = index_of(e);
}

/* Out of the table and the LRU list; freed now or by its last unpin. */
static void
entry_unlink(shm_entry_t *e)
{
    hash_remove(e);
    lru_unlink(e);
    A.h->entries_linked--;
    if (e->refs == 0)
        entry_free(e);
    else
        e->state = ST_RETIRED;
}

/* ------------------------------ pins (under mu) ------------------------ */

static shm_pin_t *
pin_find(int32_t idx, int create)
{
    shm_pin_t *pins = procs()[A.slot].pins, *free_pin = NULL;
    for (int i = 0; i < NPINS; i++) {
        if (pins[i].entry == idx + 1)
            return &pins[i];
        if (pins[i].entry == 0 && free_pin == NULL)
            free_pin = &pins[i];
    }
    if (!create || free_pin == NULL)
        return NULL;
    free_pin->count = 0;
    free_pin->entry = idx + 1;
    return free_pin;
}

static int
pin_add(shm_entry_t *e)
{
    shm_pin_t *p = pin_find(index_of(e), 1);
    if (p == NULL)
        return 0;
    p->count++;
    e->refs++;
    return 1;
}

/* Drops every pin of slot 's' (a dead process, or this one leaving). */
static void
slot_reclaim(int s)
{
    shm_proc_t *pr = &procs()[s];
    shm_entry_t *E = entries();
    for (int i = 0; i < NPINS; i++) {
        const int32_t idx = pr->pins[i].entry - 1;
        if (idx >= 0 && (uint32_t)idx < A.h->entries_hw) {
            shm_entry_t *e = &E[idx];
            e->refs -= pr->pins[i].count;
            A.h->reclaimed_pins += (uint64_t)pr->pins[i].count;
            if (e->refs <= 0) {
                e->refs = 0;
                if (e->state == ST_RESERVED || e->state == ST_RETIRED)
                    entry_free(e);
            }
        }
        pr->pins[i].entry = 0;
        pr->pins[i].count = 0;
    }
    pr->pid = 0;
    pr->start_time = 0;
}

/* Reclaims the slots of processes that are gone; returns how many live
 * ones are attached. */
static int
sweep(void)
{
    int live = 0;
    for (int s = 0; s < NPROCS; s++) {
        shm_proc_t *pr = &procs()[s];
        if (pr->pid == 0)
            continue;
        if (s == A.slot && pr->pid == A.pid) {
            live++;
            continue;
        }
        if (proc_alive(pr))
            live++;
        else
            slot_reclaim(s);
    }
    return live;
}

/* ------------------------------ repair --------------------------------- */

/* After a process died holding the lock: rebuild everything derived from
 * the descriptors' (state, key, units) and the processes' pins. */
static void
repair(void)
{
    shm_hdr_t *h = A.h;
    shm_entry_t *E = entries();
    if (h->entries_hw > h->nentries)
        h->entries_hw = (uint32_t)h->nentries;
    for (uint32_t i = 0; i < h->entries_hw; i++)
        E[i].refs = 0;
    for (int s = 0; s < NPROCS; s++)
        for (int i = 0; i < NPINS; i++) {
            shm_pin_t *p = &procs()[s].pins[i];
            if (p->entry <= 0 || (uint32_t)(p->entry - 1) >= h->entries_hw || p->count <= 0 ||
                procs()[s].pid == 0) {
                p->entry = p->count = 0;
                continue;
            }
            E[p->entry - 1].refs += p->count;
        }
    memset(bitmap(), 0, (size_t)((h->nunits + 63) / 64) * 8);
    for (uint64_t b = 0; b < h->nbuckets; b++)
        buckets()[b] = -1;
    h->lru_head = h->lru_tail = h->free_head = -1;
    h->bytes_used = 0;
    h->entries_linked = 0;
    for (uint32_t i = h->entries_hw; i-- > 0;) {
        shm_entry_t *e = &E[i];
        e->hnext = e->prev = e->next = -1;
        int keep = e->state != ST_FREE && e->nunits > 0 && e->unit_off + e->nunits <= h->nunits &&
                   (uint64_t)e->nunits * UNIT >= e->capacity && e->valid <= e->capacity;
        if (keep && (e->state == ST_RESERVED || e->state == ST_RETIRED) && e->refs == 0)
            keep = 0;
        for (uint64_t u = e->unit_off; keep && u < e->unit_off + e->nunits; u++)
            keep = !bit_get(u);
        if (keep && e->state == ST_PUBLISHED) {
            shm_entry_t *dup = lookup(&e->key);
            if (dup != NULL)
                keep = 0;   /* one of two: the other stays linked */
        }
        if (!keep && e->refs > 0 && e->state == ST_PUBLISHED && e->nunits > 0 &&
            e->unit_off + e->nunits <= h->nunits) {
            keep = 1;       /* a reader copies from it: keep it, unlinked */
            for (uint64_t u = e->unit_off; keep && u < e->unit_off + e->nunits; u++)
                keep = !bit_get(u);
            e->state = keep ? ST_RETIRED : e->state;
        }
        if (!keep) {
            e->state = ST_FREE;
            e->refs = 0;
            e->hnext = h->free_head;
            h->free_head = (int32_t)i;
            continue;
        }
        bits_set(e->unit_off, e->nunits, 1);
        h->bytes_used += (uint64_t)e->nunits * UNIT;
        if (e->state == ST_PUBLISHED) {
            hash_insert(e);
            lru_push_head(e);
            h->entries_linked++;
        }
    }
    h->repairs++;
}

static void
lock(void)
{
    const int rc = pthread_mutex_lock(&A.h->mu);
    if (rc == EOWNERDEAD) {
        repair();
        pthread_mutex_consistent(&A.h->mu);
    }
}

static void
unlock(void)
{
    test_pause();
    pthread_mutex_unlock(&A.h->mu);
}

/* This process's slot: a new one after fork (the parent keeps its own). */
static int
slot_take(void)
{
    if (A.slot >= 0)
        return 1;
    const pid_t me = getpid();
    const uint64_t st = start_time_of(me);
    sweep();
    for (int s = 0; s < NPROCS; s++) {
        shm_proc_t *pr = &procs()[s];
        if (pr->pid != 0)
            continue;
        memset(pr->pins, 0, sizeof pr->pins);
        pr->start_time = st;
        pr->pid = (int32_t)me;
        A.slot = s;
        A.pid = me;
        return 1;
    }
    return 0;
}

/* Under mu: this process has a slot (after fork, the child takes one). */
static int
me_ready(void)
{
    return slot_take();
}

/* ------------------------------ attach --------------------------------- */

static void
name_init(void)
{
    const char *tag = getenv("RASTERLOADER_TILE_CACHE_NAME");
    char clean[24] = "";
    if (tag != NULL) {
        size_t j = 0;
        for (size_t i = 0; tag[i] && j + 1 < sizeof clean; i++)
            if ((tag[i] >= 'a' && tag[i] <= 'z') || (tag[i] >= 'A' && tag[i] <= 'Z') ||
                (tag[i] >= '0' && tag[i] <= '9') || tag[i] == '-' || tag[i] == '_')
                clean[j++] = tag[i];
        clean[j] = '\0';
    }
    snprintf(A.name, sizeof A.name, "/rasterloader-tc-v%u-%u%s%s", SHM_LAYOUT_VERSION, (unsigned)getuid(),
             clean[0] ? "-" : "", clean);
}

const char *
raster__shm_name(void)
{
    if (A.name[0] == '\0')
        name_init();
    return A.name;
}

typedef struct layout {
    uint64_t nunits, nentries, nbuckets;
    uint64_t off_procs, off_entries, off_buckets, off_bitmap, off_data, total;
} layout_t;

static uint64_t
align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

static layout_t
layout_for(uint64_t capacity)
{
    layout_t L;
    L.nunits = capacity / UNIT;
    L.nentries = L.nunits / 8 > 256 ? L.nunits / 8 : 256;     /* one per 32 KiB */
    if (L.nentries > L.nunits)
        L.nentries = L.nunits;
    L.nbuckets = 1;
    while (L.nbuckets < L.nentries)
        L.nbuckets <<= 1;
    L.off_procs = align_up(sizeof(shm_hdr_t), 4096);
    L.off_entries = align_up(L.off_procs + NPROCS * sizeof(shm_proc_t), 64);
    L.off_buckets = align_up(L.off_entries + L.nentries * sizeof(shm_entry_t), 64);
    L.off_bitmap = align_up(L.off_buckets + L.nbuckets * sizeof(int32_t), 64);
    L.off_data = align_up(L.off_bitmap + (L.nunits + 63) / 64 * 8, 4096);
    L.total = L.off_data + L.nunits * UNIT;
    return L;
}

static int
fail(char *why, size_t n, const char *fmt, const char *arg, int err)
{
    char msg[160];
    snprintf(msg, sizeof msg, fmt, arg);
    if (err)
        snprintf(why, n, "%s: %s", msg, strerror(err));
    else
        snprintf(why, n, "%s", msg);
    return 0;
}

uint64_t
raster__shm_capacity_for(uint64_t want, uint64_t shm_total, uint64_t shm_free, char *why, size_t n)
{
    uint64_t room = shm_total / SHM_SHARE_DIVISOR;
    if (room > shm_free / 2)
        room = shm_free / 2;
    if (room < MIN_SHARED_ROOM) {
        snprintf(why, n,
                 "/dev/shm is small (%llu MiB, %llu MiB free): a shared arena may take at most a quarter of it "
                 "and half of what is free (%llu MiB, under %llu), so each process uses a private cache",
                 (unsigned long long)(shm_total >> 20), (unsigned long long)(shm_free >> 20),
                 (unsigned long long)(room >> 20), (unsigned long long)(MIN_SHARED_ROOM >> 20));
        return 0;
    }
    const uint64_t meta = layout_for(room).off_data;
    const uint64_t fits = (room - meta) / UNIT * UNIT;   /* room >= 32 MiB > meta */
    /* Rounded up, so that a budget of 'want' bytes fits whole. */
    uint64_t capacity = want < fits ? align_up(want, UNIT) : fits;
    if (capacity < MIN_CAPACITY)
        capacity = MIN_CAPACITY;    /* a tiny budget: room for it to be raised a little */
    return capacity;
}

/* Creates the object (O_EXCL) and lays it out: 1, or 0 with the reason,
 * or -1 if another process was first. */
static int
create(uint64_t capacity, size_t budget, char *why, size_t n)
{
    struct statvfs vfs;
    if (statvfs("/dev/shm", &vfs) == 0) {
        capacity = raster__shm_capacity_for(capacity, (uint64_t)vfs.f_blocks * vfs.f_frsize,
                                            (uint64_t)vfs.f_bavail * vfs.f_frsize, why, n);
        if (capacity == 0)
            return 0;
    } else {
        capacity = capacity / UNIT * UNIT;
        if (capacity < MIN_CAPACITY)
            capacity = MIN_CAPACITY;
    }
    const layout_t L = layout_for(capacity);
    const int fd = shm_open(A.name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return -1;
        return fail(why, n, "shm_open(%s, O_CREAT)", A.name, errno);
    }
    /* The header and tables are backed now; entry memory as it is used. */
    int rc = ftruncate(fd, (off_t)L.total) == 0 ? 0 : errno;
    if (rc == 0)
        rc = posix_fallocate(fd, 0, (off_t)L.off_data);
    uint8_t *base = rc == 0 ? mmap(NULL, L.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (base == MAP_FAILED) {
        if (rc == 0)
            rc = errno;
        shm_unlink(A.name);
        close(fd);
        return fail(why, n, "laying out %s", A.name, rc);
    }
    shm_hdr_t *h = (shm_hdr_t *)base;
    h->layout_version = SHM_LAYOUT_VERSION;
    h->hdr_nbytes = sizeof *h;
    h->owner_uid = (uint32_t)getuid();
    h->total_nbytes = L.total;
    h->capacity = L.nunits * UNIT;
    h->unit = UNIT;
    h->nunits = L.nunits;
    h->nentries = L.nentries;
    h->nbuckets = L.nbuckets;
    h->nprocs = NPROCS;
    h->npins = NPINS;
    h->off_procs = L.off_procs;
    h->off_entries = L.off_entries;
    h->off_buckets = L.off_buckets;
    h->off_bitmap = L.off_bitmap;
    h->off_data = L.off_data;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&h->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    atomic_store(&h->budget, budget > 0 && budget < h->capacity ? budget : h->capacity);
    h->lru_head = h->lru_tail = h->free_head = -1;
    int32_t *b = (int32_t *)(base + L.off_buckets);
    for (uint64_t i = 0; i < L.nbuckets; i++)
        b[i] = -1;
    h->magic = SHM_MAGIC;
    atomic_store(&h->ready, 1);
    A.h = h;
    A.base = base;
    A.map_nbytes = L.total;
    A.fd = fd;
    return 1;
}

/* Opens an existing object and checks that it is ours and sane. */
static int
open_existing(char *why, size_t n, int *stale)
{
    *stale = 0;
    const int fd = shm_open(A.name, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return -1;          /* gone meanwhile: create it */
        return fail(why, n, "shm_open(%s)", A.name, errno);
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return fail(why, n, "fstat(%s)", A.name, errno);
    }
    if (sb.st_uid != getuid()) {
        char msg[64];
        snprintf(msg, sizeof msg, "%u", (unsigned)sb.st_uid);
        close(fd);
        snprintf(why, n, "%s belongs to uid %s, not to this user (%u): refused", A.name, msg,
                 (unsigned)getuid());
        return 0;
    }
    if ((sb.st_mode & 077) != 0) {
        close(fd);
        snprintf(why, n, "%s is accessible to other users (mode %03o): refused", A.name,
                 (unsigned)(sb.st_mode & 0777));
        return 0;
    }
    if ((uint64_t)sb.st_size < sizeof(shm_hdr_t)) {
        close(fd);
        *stale = (uint64_t)sb.st_size == 0;     /* a creator died before ftruncate */
        snprintf(why, n, "%s is %lld bytes, smaller than its header: refused", A.name, (long long)sb.st_size);
        return 0;
    }
    uint8_t *base = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        close(fd);
        return fail(why, n, "mmap(%s)", A.name, errno);
    }
    shm_hdr_t *h = (shm_hdr_t *)base;
    /* A creator lays it out in microseconds; wait a little for it. */
    for (int i = 0; i < 200 && !atomic_load(&h->ready); i++)
        usleep(5000);
    const char *bad = NULL;
    if (!atomic_load(&h->ready))
        bad = "was never finished by its creator", *stale = 1;
    else if (h->magic != SHM_MAGIC)
        bad = "has a bad magic number (corrupted or not an arena)";
    else if (h->layout_version != SHM_LAYOUT_VERSION || h->hdr_nbytes != sizeof *h)
        bad = "has another layout version";
    else if (h->owner_uid != (uint32_t)getuid())
        bad = "names another owner in its header";
    else if (h->total_nbytes != (uint64_t)sb.st_size || h->unit != UNIT || h->nprocs != NPROCS ||
             h->npins != NPINS)
        bad = "has inconsistent sizes in its header";
    else {
        const layout_t L = layout_for(h->capacity);
        if (h->capacity % UNIT != 0 || L.nunits != h->nunits || L.nentries != h->nentries ||
            L.nbuckets != h->nbuckets || L.off_procs != h->off_procs || L.off_entries != h->off_entries ||
            L.off_buckets != h->off_buckets || L.off_bitmap != h->off_bitmap || L.off_data != h->off_data ||
            L.total != h->total_nbytes)
            bad = "has inconsistent offsets in its header";
    }
    if (bad != NULL) {
        munmap(base, (size_t)sb.st_size);
        close(fd);
        snprintf(why, n, "%s %s: refused", A.name, bad);
        return 0;
    }
    A.h = h;
    A.base = base;
    A.map_nbytes = (size_t)sb.st_size;
    A.fd = fd;
    return 1;
}

void
raster__shm_detach(void)
{
    pthread_mutex_lock(&A.local);
    if (A.h == NULL || A.slot < 0) {
        pthread_mutex_unlock(&A.local);
        return;
    }
    lock();
    if (A.slot >= 0)
        slot_reclaim(A.slot);
    A.slot = -1;
    const int others = sweep();
    pthread_mutex_unlock(&A.h->mu);
    if (others == 0)
        shm_unlink(A.name);
    pthread_mutex_unlock(&A.local);
}

void
raster__shm_reap(void)
{
    pthread_mutex_lock(&A.local);
    if (A.h == NULL) {          /* attached once: raster__shm_detach() decides */
        name_init();
        char why[192];
        int stale = 0;
        if (open_existing(why, sizeof why, &stale) == 1) {
            lock();
            const int live = sweep();
            pthread_mutex_unlock(&A.h->mu);
            if (live == 0)
                shm_unlink(A.name);
            munmap(A.base, A.map_nbytes);
            close(A.fd);
            A.h = NULL;
            A.base = NULL;
            A.fd = -1;
        }
    }
    pthread_mutex_unlock(&A.local);
}

static void
detach_at_exit(void)
{
    raster__shm_detach();
}

/* Fork (hook run by fork.c): the parent keeps its slot; the child takes
 * its own on first use. */
void
raster__shm_arena_fork_child(void)
{
    A.slot = -1;
}

static void
fork_hooks_register(void)
{
    static const raster__fork_hooks_t hooks = {NULL, NULL, raster__shm_arena_fork_child};
    raster__fork_hooks(RASTER__FORK_SHM_ARENA, &hooks);
}

int
raster__shm_attach(size_t capacity, size_t budget, char *why, size_t n)
{
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    pthread_once(&fork_once, fork_hooks_register);   /* before there is a slot to inherit */
    name_init();
    const char *sl = getenv("RASTERLOADER_TILE_CACHE_TEST_SLEEP_US");
    A.test_sleep = sl ? (useconds_t)strtoul(sl, NULL, 10) : 0;
    int got = 0;
    for (int attempt = 0; attempt < 3 && !got; attempt++) {
        int stale = 0;
        const int r = open_existing(why, n, &stale);
        if (r == 1) {
            got = 1;
            break;
        }
        if (r == 0 && !stale)
            return 0;
        if (r == 0 && stale)
            shm_unlink(A.name);     /* ours, half made by a creator that died */
        const int c = create(capacity, budget, why, n);
        if (c == 1) {
            got = 1;
            break;
        }
        if (c == 0)
            return 0;
    }
    if (!got) {
        if (why[0] == '\0')
            snprintf(why, n, "%s: could not open or create it", A.name);
        return 0;
    }
    lock();
    const int ok = slot_take();
    if (ok && budget > 0) {
        atomic_store(&A.h->budget, budget < A.h->capacity ? budget : A.h->capacity);
    }
    pthread_mutex_unlock(&A.h->mu);
    if (!ok) {
        munmap(A.base, A.map_nbytes);
        close(A.fd);
        A.h = NULL;
        snprintf(why, n, "%s: all %d process slots are taken by live processes", A.name, NPROCS);
        return 0;
    }
    why[0] = '\0';
    atexit(detach_at_exit);
    return 1;
}

/* ------------------------------ reader API ----------------------------- */

int
raster__shm_owns(const void *e)
{
    return A.h != NULL && (const uint8_t *)e >= A.base && (const uint8_t *)e < A.base + A.map_nbytes;
}

size_t
raster__shm_budget(void)
{
    return A.h ? (size_t)atomic_load_explicit(&A.h->budget, memory_order_relaxed) : 0;
}

void *
raster__shm_entry_data(const raster__tile_entry_t *te)
{
    const shm_entry_t *e = (const shm_entry_t *)te;
    return A.base + A.h->off_data + e->unit_off * UNIT;
}

size_t
raster__shm_entry_valid(const raster__tile_entry_t *te)
{
    const shm_entry_t *e = (const shm_entry_t *)te;
    return (size_t)e->valid;
}

const raster__tile_entry_t *
raster__shm_get(const raster__tile_key_t *k, size_t min_valid)
{
    lock();
    shm_entry_t *e = me_ready() ? lookup(k) : NULL;
    if (e != NULL && e->state == ST_PUBLISHED && e->valid >= min_valid && pin_add(e)) {
        lru_unlink(e);
        lru_push_head(e);
        A.h->hits++;
    } else {
        e = NULL;
        A.h->misses++;
    }
    unlock();
    if (e != NULL)
        test_pause();   /* pinned, unlocked: the copy-out window */
    return (const raster__tile_entry_t *)e;
}

raster__tile_entry_t *
raster__shm_reserve(size_t capacity)
{
    const uint64_t nunits = (capacity + UNIT - 1) / UNIT, need = nunits * UNIT;
    if (capacity == 0 || need > raster__shm_budget())
        return NULL;
    lock();
    shm_entry_t *E = entries(), *e = NULL;
    if (!me_ready())
        goto out;
    /* Larger than all the memory the arena can back: evicting would not help. */
    if (!commit_upto(need))
        goto out;
    int swept = 0;
    for (;;) {
        const uint64_t budget = atomic_load(&A.h->budget);
        if (need > budget)
            goto out;
        uint64_t at = UINT64_MAX;
        const int have_desc = A.h->free_head >= 0 || A.h->entries_hw < A.h->nentries;
        if (have_desc && A.h->bytes_used + need <= budget)
            at = units_find(nunits);
        /* units_find() looks inside the backed memory first, so a run past
         * it means none is free inside.  When /dev/shm cannot back more,
         * the arena lives within what it has: evict and look again. */
        if (at != UINT64_MAX && !commit_upto((at + nunits) * UNIT))
            at = UINT64_MAX;
        if (at != UINT64_MAX) {
            int32_t i;
            if (A.h->free_head >= 0) {
                i = A.h->free_head;
                A.h->free_head = E[i].hnext;
            } else {
                i = (int32_t)A.h->entries_hw++;
            }
            e = &E[i];
            memset(&e->key, 0, sizeof e->key);
            e->unit_off = at;
            e->nunits = (uint32_t)nunits;
            e->capacity = capacity;
            e->valid = 0;
            e->refs = 0;
            e->hnext = e->prev = e->next = -1;
            bits_set(at, nunits, 1);
            A.h->bytes_used += need;
            e->state = ST_RESERVED;
            if (!pin_add(e)) {
                entry_free(e);
                e = NULL;
            }
            goto out;
        }
        /* Evict the coldest entry nobody is using. */
        int32_t v = A.h->lru_tail;
        while (v >= 0 && E[v].refs > 0)
            v = E[v].prev;
        if (v >= 0) {
            entry_unlink(&E[v]);
            A.h->evictions++;
            continue;
        }
        if (swept++)
            goto out;
        sweep();        /* pins of dead processes may hold the rest */
    }
out:
    unlock();
    return (raster__tile_entry_t *)e;
}

void
raster__shm_put(raster__tile_entry_t *te, const raster__tile_key_t *k, size_t valid)
{
    shm_entry_t *e = (shm_entry_t *)te;
    lock();
    if (e->state == ST_RESERVED && me_ready() && atomic_load(&A.h->budget) > 0) {
        e->key = *k;
        e->valid = valid < e->capacity ? valid : e->capacity;
        shm_entry_t *old = lookup(k);
        /* Another process may have published the same segment meanwhile;
         * the longer prefix wins, the loser stays valid for its reader. */
        if (old == NULL || old->valid < e->valid) {
            if (old != NULL)
                entry_unlink(old);
            /* The decoder's room past the valid bytes (the DEFLATE margin,
             * rows below the image) goes back to the arena. */
            const uint64_t keep = e->valid > 0 ? (e->valid + UNIT - 1) / UNIT : 1;
            if (keep < e->nunits) {
                bits_set(e->unit_off + keep, e->nunits - keep, 0);
                A.h->bytes_used -= (e->nunits - keep) * UNIT;
                e->nunits = (uint32_t)keep;
                e->capacity = keep * UNIT;
            }
            hash_insert(e);
            lru_push_head(e);
            A.h->entries_linked++;
            A.h->inserts++;
            e->state = ST_PUBLISHED;    /* last: what repair() trusts */
        }
    }
    unlock();
}

void
raster__shm_release(const raster__tile_entry_t *ce)
{
    shm_entry_t *e = (shm_entry_t *)ce;   /* shared memory: ours to count */
    lock();
    shm_pin_t *p = A.slot >= 0 ? pin_find(index_of(e), 0) : NULL;
    /* No pin: this slot was reclaimed (at exit), and the count with it. */
    if (p != NULL) {
        if (--p->count == 0)
            p->entry = 0;
        if (--e->refs == 0 && (e->state == ST_RESERVED || e->state == ST_RETIRED))
            entry_free(e);
    }
    unlock();
}

size_t
raster__shm_set_budget(size_t budget)
{
    lock();
    const uint64_t b = budget < A.h->capacity ? budget : A.h->capacity;
    atomic_store(&A.h->budget, b);
    shm_entry_t *E = entries();
    for (int32_t v = A.h->lru_tail; v >= 0 && A.h->bytes_used > b;) {
        const int32_t prev = E[v].prev;
        if (E[v].refs == 0) {
            entry_unlink(&E[v]);
            A.h->evictions++;
        }
        v = prev;
    }
    if (b == 0)         /* off: nothing stays linked, in use or not */
        for (int32_t v = A.h->lru_head; v >= 0;) {
            const int32_t nx = E[v].next;
            entry_unlink(&E[v]);
            v = nx;
        }
    unlock();
    return (size_t)b;
}

void
raster__shm_stats(raster_tile_cache_stats_t *s)
{
    lock();
    s->attached_processes = sweep();
    s->budget_bytes = (size_t)atomic_load(&A.h->budget);
    s->capacity_bytes = (size_t)A.h->capacity;
    s->bytes_used = (size_t)A.h->bytes_used;
    s->entries = A.h->entries_linked;
    s->hits = A.h->hits;
    s->misses = A.h->misses;
    s->inserts = A.h->inserts;
    s->evictions = A.h->evictions;
    s->block_mallocs = A.h->commits;
    s->repairs = A.h->repairs;
    s->reclaimed_pins = A.h->reclaimed_pins;
    const uint64_t failures = A.h->commit_failures, committed = A.h->committed;
    pthread_mutex_unlock(&A.h->mu);
    snprintf(s->name, sizeof s->name, "%s", A.name);
    if (failures > 0 && s->reason[0] == '\0')
        snprintf(s->reason, sizeof s->reason,
                 "/dev/shm ran out of space with %llu MiB of the arena reserved: the cache evicts within "
                 "that (%llu failed reservations)",
                 (unsigned long long)(committed >> 20), (unsigned long long)failures);
}

/* ------------------------------ tests ---------------------------------- */

void
raster__shm_test_sleep(unsigned us)
{
    A.test_sleep = (useconds_t)us;
}

int
raster__shm_check(char *why, size_t n)
{
    if (A.h == NULL) {
        snprintf(why, n, "not attached");
        return 0;
    }
    lock();
    sweep();
    shm_hdr_t *h = A.h;
    shm_entry_t *E = entries();
    int ok = 1;
    uint64_t used = 0, units = 0;
    int64_t published = 0;
    int32_t *refs = calloc(h->entries_hw + 1, sizeof *refs);
    for (int s = 0; s < NPROCS && refs; s++)
        for (int i = 0; i < NPINS; i++) {
            const shm_pin_t *p = &procs()[s].pins[i];
            if (p->entry > 0 && (uint32_t)(p->entry - 1) < h->entries_hw)
                refs[p->entry - 1] += p->count;
        }
    for (uint32_t i = 0; i < h->entries_hw && ok; i++) {
        const shm_entry_t *e = &E[i];
        if (refs && e->state != ST_FREE && e->refs != refs[i]) {
            snprintf(why, n, "entry %u: refs %d but the processes hold %d pins", i, e->refs, refs[i]);
            ok = 0;
        }
        if (e->state == ST_FREE)
            continue;
        if ((e->state == ST_RESERVED || e->state == ST_RETIRED) && e->refs == 0) {
            snprintf(why, n, "entry %u: state %u with no reference left (leaked)", i, e->state);
            ok = 0;
        }
        used += (uint64_t)e->nunits * UNIT;
        units += e->nunits;
        for (uint64_t u = e->unit_off; u < e->unit_off + e->nunits && ok; u++)
            if (!bit_get(u)) {
                snprintf(why, n, "entry %u: unit %llu is not marked used", i, (unsigned long long)u);
                ok = 0;
            }
        if (e->state == ST_PUBLISHED) {
            published++;
            if (ok && lookup(&e->key) != e) {
                snprintf(why, n, "entry %u: published but not found in the table", i);
                ok = 0;
            }
        }
    }
    uint64_t marked = 0;
    for (uint64_t u = 0; u < h->nunits; u++)
        marked += (uint64_t)bit_get(u);
    int64_t in_lru = 0;
    for (int32_t v = h->lru_head; v >= 0 && in_lru <= (int64_t)h->nentries; v = E[v].next)
        in_lru++;
    if (ok && used != h->bytes_used) {
        snprintf(why, n, "bytes_used %llu but entries hold %llu", (unsigned long long)h->bytes_used,
                 (unsigned long long)used);
        ok = 0;
    }
    if (ok && marked != units) {
        snprintf(why, n, "%llu units marked but entries hold %llu", (unsigned long long)marked,
                 (unsigned long long)units);
        ok = 0;
    }
    if (ok && (published != h->entries_linked || in_lru != published)) {
        snprintf(why, n, "%lld published, %lld counted, %lld in the LRU list", (long long)published,
                 (long long)h->entries_linked, (long long)in_lru);
        ok = 0;
    }
    if (ok && h->bytes_used > atomic_load(&h->budget) && published > 0) {
        /* Entries in use may outlast a lowered budget; published ones not. */
        int64_t pinned = 0;
        for (uint32_t i = 0; i < h->entries_hw; i++)
            pinned += E[i].state != ST_FREE && E[i].refs > 0;
        if (pinned == 0) {
            snprintf(why, n, "bytes_used %llu over the budget %llu", (unsigned long long)h->bytes_used,
                     (unsigned long long)atomic_load(&h->budget));
            ok = 0;
        }
    }
    free(refs);
    pthread_mutex_unlock(&h->mu);
    return ok;
}
