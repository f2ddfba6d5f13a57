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
 *            lock's dirty word, budget and counters
 *   procs    nprocs process slots (NPROCS unless a test asked for fewer):
 *            pid (for people; it is not used to judge liveness), that
 *            process's pins (entry, count), its lock-free hit and miss
 *            counts and its hazard words
 *   entries  fixed table of entry descriptors (key, units, state, refs,
 *            hash chain, LRU links, generation, referenced)
 *   buckets  hash table heads (entry index or -1)
 *   bitmap   one bit per UNIT bytes of entry memory
 *   data     entry memory, UNIT-aligned (so 64-byte aligned)
 *
 * Locks are open-file-description locks (fcntl F_OFD_SETLK) on bytes of
 * the object itself (advisory byte ranges: they do not touch its
 * contents): byte 0 is the arena's lock, byte 1 + s is process slot s's
 * liveness lock.  The kernel keeps them per open file description, drops
 * them when the last descriptor of it is closed (so when the process
 * dies, however it dies) and answers F_OFD_GETLK the same in every PID
 * namespace: nothing here depends on pids, which mean nothing across
 * namespaces (two jobs in containers that share /dev/shm, docker
 * --ipc=host, see the same arena; a pid judged with kill() in the
 * caller's namespace reclaimed the other job's live slots, and the tiles
 * those were copying were overwritten).  Neither is a pthread robust
 * mutex: its owner is a thread id, which collide across namespaces (a
 * waiter killed while blocked would have the kernel mark a lock held by
 * another namespace's thread of the same tid "owner died").
 *
 * Rules that make it safe against processes dying at any moment:
 * - The arena's lock (byte 0, F_OFD_SETLKW; a process-local mutex first,
 *   as the threads of a process share its descriptor) guards every field
 *   but the entry memory.  The holder sets the header's dirty word while
 *   it holds the lock; a process killed inside a critical section leaves
 *   it set, and the next locker rebuilds all derived state (hash chains,
 *   LRU list, free list, bitmap, refs and bytes in use, slots_hw) from the
 *   authoritative words (each descriptor's state, key and units; each
 *   process's pins and hazards: an entry a hazard names is kept), with
 *   every generation opened first and closed after.  So a critical
 *   section may be cut anywhere (a generation left odd only makes readers
 *   take the lock).
 * - Liveness: a process holds its slot's byte locked for as long as it is
 *   attached; a slot is live iff that byte is locked by another open file
 *   description (F_OFD_GETLK).  After fork() the child shares the parent's
 *   open file description, which would keep the parent's slot alive in
 *   the child: the fork hook gives the child a descriptor of its own
 *   (reopened through /proc/self/fd, else by name with the same inode) in
 *   place of the inherited one, and the child takes a slot of its own on
 *   first use.
 * - An entry is published (state PUBLISHED, linked) only by put(), after
 *   its bytes are decoded and finished; a reader only finds published
 *   entries.  A process killed while decoding leaves a RESERVED entry
 *   pinned by a dead process: never visible, reclaimed with its pins.
 * - A hit takes no lock (hit_lockless): the reader walks the hash chain
 *   without it (every index bound-checked, at most 64 steps: a walk torn
 *   by a concurrent change may miss, never leave the table), reads the
 *   entry's generation (even: stable), its state, key, valid bytes and
 *   units, publishes a hazard (the entry's index) in one of its slot's
 *   NHAZ hazard words (threads of a process claim words by compare-and-
 *   swap; only that process writes them), then reads the generation
 *   again: unchanged means the entry was published, whole, and is now
 *   held.  The lock holder opens an entry's generation (odd, a seq_cst
 *   read-modify-write) before it changes any word readers look at, and
 *   closes it (even) after; before it frees or evicts an entry it reads
 *   every hazard of the slots below slots_hw.  Both sides store then
 *   load (Dekker): either the evictor sees the hazard (the entry is not
 *   evicted, or is RETIRED, not freed) or the reader sees the new
 *   generation (it lets go and asks again under the lock).  A RETIRED
 *   entry that only hazards hold is freed by a later locked operation
 *   (retired_collect: at reserve and at every sweep).  Release is a
 *   compare-and-swap of the hazard word back to 0, no lock.  Anything in
 *   doubt (no slot yet, no free hazard word, an entry being changed, a
 *   long chain, units out of range) is asked again under the lock, which
 *   pins as below and finds corruption.  Hits only set the entry's
 *   'referenced' word, they do not move it: eviction gives a referenced
 *   entry a second chance (CLOCK over the LRU list); hit and miss counts
 *   are per slot (summed for the stats, added to the header's when the
 *   slot is freed).
 * - Under the lock, readers pin entries in their own process slot (refs
 *   counted per process), unlock, copy the pixels out with no lock held,
 *   then unpin.  Pinned and hazarded entries are never freed (nor evicted,
 *   except a hazard published while the evictor decides: then RETIRED).
 *   The pins and hazards of a dead process (its slot's byte unlocked) are
 *   dropped when the arena sweeps: at attach, when no unpinned entry is
 *   left to evict, and for the stats; hazards of a slot with no pid are
 *   never looked at.
 * - Memory: entry memory is reserved in the shm file with posix_fallocate,
 *   in steps, before any unit of it is handed out, so no page is ever
 *   touched that tmpfs has not backed (no SIGBUS when /dev/shm fills up).
 *   A failed fallocate caps the arena at what it has backed: reserve
 *   evicts cold entries and reuses their memory, so the cache keeps
 *   caching within it (a decode into scratch only when everything backed
 *   is pinned).  The budget is a hard ceiling on bytes of entries across
 *   all processes.
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
 *   The tables are not trusted either (another process of the user may
 *   have scribbled on them): the geometry is copied out of the checked
 *   header at attach and every pointer is made from that copy; every index
 *   read from the tables is bound-checked and every walk is bounded (a
 *   cycle ends it); the tables are checked whole at attach.  Corruption
 *   found either way is REBUILT (the same rebuild as after a killed lock
 *   holder, which drops whatever it cannot make sense of) and said in the
 *   stats' reason; the arena stays shared.  What a corrupting process
 *   writes into entry memory or keys is not detectable (no checksums):
 *   the promise is no crash and no hang, not protection from a process of
 *   the same user that writes garbage on purpose.
 *
 * Allocation: lowest fit over the bitmap (4 KiB units), inside the memory
 * already backed before past it (see units_find); evict from the cold end
 * of the LRU until the entry fits the budget and a run of free units is
 * found.  A published entry gives back
 * the units past its valid bytes (the decoder's margin), so the budget
 * counts decoded pixels, not the decoder's room.
 *
 * Processes: NPROCS slots (512: 8 ranks with 32 DataLoader workers each,
 * and their main processes, fit).  A process that finds every slot taken
 * by a live process stays attached without a slot and reads uncached
 * (hits none, inserts none: it never takes memory beyond the machine's
 * budget, where it used to get a private cache of the whole budget); it
 * asks again for a slot at its stats, on a read after another process
 * gave one back, and at most once a second else (a killed process's slot
 * is found by a sweep), and the stats' reason says so meanwhile.
 *
 * Leaving: the last process to leave (at exit, or raster_tile_cache_detach(),
 * which the Python package calls when a multiprocessing child ends, as
 * those end with _exit()) unlinks the object, so no memory stays held once
 * nothing reads.  An arena whose processes are all dead (killed, or ended
 * with _exit) is a leftover: the next process to attach finds no slot
 * locked, marks it abandoned, unlinks it and makes a new one sized for
 * today (the stats' reason says so); a process that opened the old one
 * meanwhile sees the mark under the lock and opens the name again.
 *
 * Test hooks: RASTERLOADER_TILE_CACHE_TEST_SLEEP_US=n sleeps n us inside
 * every critical section and after a pin is taken (before the copy), to
 * widen the windows in which tests SIGKILL processes;
 * RASTERLOADER_TILE_CACHE_TEST_NPROCS=n makes an arena created by this
 * process have n process slots (1..NPROCS), so that tests run out of slots
 * with a few processes.
 */
#include "shm_arena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define SHM_MAGIC 0x4548434143544c52ULL       /* "RLTCACHE" */
#define SHM_LAYOUT_VERSION 4u                 /* 2: OFD locks, no mutex, nprocs in the header; 3: entries of pixel-interleaved segments hold planes; 4: lock-free hits (hazards, generations) */
#define UNIT ((size_t)4096)
#define NPROCS 512
#define NPINS 256
#define NHAZ 64                               /* hazard words per process slot */
#define PIN_MAX (1 << 20)                     /* more pins of one entry by one process: garbage */
#define COMMIT_STEP ((uint64_t)32 << 20)
#define MIN_CAPACITY ((size_t)4 << 20)
/* /dev/shm room rule (raster__shm_capacity_for): the arena takes at most
 * 1/SHM_SHARE_DIVISOR of /dev/shm's size and half of what is free, and is
 * not made at all when that is under MIN_SHARED_ROOM. */
#define SHM_SHARE_DIVISOR 4
#define MIN_SHARED_ROOM ((uint64_t)32 << 20)
#define LOCK_ARENA_BYTE 0
#define LOCK_SLOT_BYTE(s) ((off_t)1 + (off_t)(s))

enum { ST_FREE = 0, ST_RESERVED = 1, ST_PUBLISHED = 2, ST_RETIRED = 3 };

typedef struct shm_pin {
    int32_t entry;                /* entry index + 1; 0: free */
    int32_t count;
} shm_pin_t;

typedef struct shm_proc {
    int32_t pid;                  /* 0: free; else who took it, in its namespace */
    uint32_t pad;
    shm_pin_t pins[NPINS];        /* pins taken under the lock (count per entry) */
    /* Written by this process's threads without the lock: */
    _Alignas(64) _Atomic uint64_t hits, misses;     /* lock-free lookups; added into the header's
                                                       when the slot is freed */
    _Alignas(64) _Atomic uint32_t hz[NHAZ];         /* hazards: entry index + 1, 0: free */
} shm_proc_t;

typedef struct shm_entry {        /* the shared descriptor */
    raster__tile_key_t key;
    uint64_t unit_off;            /* first unit of its memory */
    uint32_t nunits;
    uint32_t state;               /* ST_* */
    uint64_t capacity, valid;
    int32_t refs;                 /* pins, all processes (derived) */
    int32_t hnext, prev, next;    /* hash chain, LRU (derived) */
    _Atomic uint64_t gen;         /* odd while the lock holder changes it, even when stable */
    _Atomic uint32_t referenced;  /* set by hits: a second chance at eviction */
    uint32_t pad;
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
    /* Under the arena lock: */
    _Atomic uint32_t dirty;       /* 1 while a process is inside a critical section (its
                                     store and load also order the tables' words around
                                     the lock, beside the system call's own barrier) */
    uint32_t abandoned;           /* 1: unlinked, open the name again */
    _Atomic uint64_t budget;      /* also read without the lock */
    uint64_t bytes_used;
    uint64_t committed;           /* bytes of data fallocate'd */
    int64_t entries_linked;
    uint64_t hits, misses, inserts, evictions, commits, repairs, reclaimed_pins;
    uint64_t commit_failures;     /* posix_fallocate said no (/dev/shm full) */
    uint64_t corruptions;         /* rebuilds for tables found inconsistent */
    uint64_t slots_freed;         /* slots given back (a process left or was swept) */
    int32_t lru_head, lru_tail, free_head;
    uint32_t entries_hw;          /* descriptors ever used: [0, entries_hw) */
    uint32_t slots_hw;            /* slots ever taken: [0, slots_hw) hold every hazard */
    uint32_t retired_waiting;     /* RETIRED entries without pins, waiting for hazards (a hint) */
} shm_hdr_t;

/* The geometry, copied from the header once it is checked: every pointer
 * into the arena is made from this copy, never from the shared header. */
typedef struct geometry {
    uint64_t nunits, nentries, nbuckets, nprocs, capacity;
    uint64_t off_procs, off_entries, off_buckets, off_bitmap, off_data;
} geometry_t;

static struct {
    shm_hdr_t *h;                 /* NULL: not attached */
    uint8_t *base;
    size_t map_nbytes;
    geometry_t g;
    int fd;                       /* this process's own open file description:
                                     its locks are this process's */
    _Atomic int slot;             /* this process's slot, -1 after fork (the
                                     child hook runs in every fork: it is
                                     registered before the first attach) */
    int corrupt;                  /* found inconsistent in this critical section */
    struct timespec commit_failed;/* last failed commit: retried a second later */
    struct timespec slot_failed;  /* last time every slot was taken (0: never) */
    uint64_t slot_failed_gen;     /* slots_freed then */
    useconds_t test_sleep;
    char name[64];
    char note[168];               /* for the stats' reason: a leftover removed, a rebuild */
    pthread_mutex_t local;        /* serialises attach and detach */
    pthread_mutex_t threads;      /* the threads of this process, before the arena lock */
} A = {.fd = -1, .slot = -1, .local = PTHREAD_MUTEX_INITIALIZER, .threads = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------ layout --------------------------------- */

static shm_proc_t *
procs(void)
{
    return (shm_proc_t *)(A.base + A.g.off_procs);
}

static shm_entry_t *
entries(void)
{
    return (shm_entry_t *)(A.base + A.g.off_entries);
}

static int32_t *
buckets(void)
{
    return (int32_t *)(A.base + A.g.off_buckets);
}

static uint64_t *
bitmap(void)
{
    return (uint64_t *)(A.base + A.g.off_bitmap);
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

/* ------------------------------ trust (under the lock) ----------------- */

/* Something read from the tables makes no sense: the operation gives up
 * (a miss, no reservation) and the tables are rebuilt before the lock is
 * released. */
static void
corrupt(const char *what)
{
    if (!A.corrupt)
        snprintf(A.note, sizeof A.note, "the arena's tables were inconsistent (%s): rebuilt", what);
    A.corrupt = 1;
}

/* Descriptors in use, bounded by the table. */
static uint32_t
hw(void)
{
    const uint32_t v = A.h->entries_hw;
    return v <= A.g.nentries ? v : (uint32_t)A.g.nentries;
}

/* An entry index read from the tables: in range, or corruption noted. */
static int
idx_ok(int32_t i)
{
    if (i >= 0 && (uint32_t)i < hw())
        return 1;
    corrupt("an entry index out of range");
    return 0;
}

/* An entry's units lie inside the arena. */
static int
units_ok(const shm_entry_t *e)
{
    return e->nunits > 0 && e->unit_off < A.g.nunits && e->nunits <= A.g.nunits - e->unit_off &&
           e->capacity <= (uint64_t)e->nunits * UNIT && e->valid <= e->capacity;
}

static void
used_sub(uint64_t n)
{
    if (A.h->bytes_used < n) {
        corrupt("bytes in use below an entry's size");
        return;
    }
    A.h->bytes_used -= n;
}

/* ------------------------------ generations and hazards ---------------- */

/* The lock holder opens an entry's generation (odd) before it changes
 * any word a lock-free reader looks at (state, key, valid, units, the
 * hash chain's link) and closes it (even, one more) after: a reader that
 * reads the same even generation before and after its reads saw a
 * stable entry.  Nested opens are one.  A holder killed with it open
 * leaves it odd (readers miss) until the rebuild closes it. */
static void
gen_open(shm_entry_t *e)
{
    if (atomic_load_explicit(&e->gen, memory_order_relaxed) & 1)
        return;
    /* A sequentially consistent read-modify-write: the odd word is seen
     * before any change, and before the hazards are read (the other half
     * of the readers' store-then-load).  No fences: TSan (gcc) does not
     * model them. */
    atomic_fetch_add_explicit(&e->gen, 1, memory_order_seq_cst);
}

static void
gen_close(shm_entry_t *e)
{
    const uint64_t g = atomic_load_explicit(&e->gen, memory_order_relaxed);
    if (g & 1)
        atomic_store_explicit(&e->gen, g + 1, memory_order_release);
}

/* Slots that may hold hazards: every slot ever taken lies below. */
static uint32_t
slots_hw(void)
{
    const uint32_t v = A.h->slots_hw;
    return v <= A.g.nprocs ? v : (uint32_t)A.g.nprocs;
}

/* Whether some process's hazard names entry 'idx' (under the lock, after
 * gen_open of it: a reader that publishes its hazard later sees the new
 * generation and lets go).  Slots of dead processes count until the
 * sweep frees them. */
static int
hazarded(int32_t idx)
{
    const uint32_t want = (uint32_t)idx + 1, n = slots_hw();
    for (uint32_t s = 0; s < n; s++) {
        shm_proc_t *pr = &procs()[s];
        if (pr->pid == 0)
            continue;
        for (int j = 0; j < NHAZ; j++)
            if (atomic_load_explicit(&pr->hz[j], memory_order_seq_cst) == want)
                return 1;
    }
    return 0;
}

/* ------------------------------ OFD locks ------------------------------ */

static int
ofd_lock(int fd, short type, off_t start, off_t len, int wait)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len, .l_pid = 0};
    int rc;
    do
        rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
    while (rc != 0 && errno == EINTR);
    return rc == 0;
}

/* 1 if another open file description (another process, or a descriptor
 * this process kept for a test) holds a lock in [start, start + len).
 * When the kernel cannot say, the answer is "held": a live process is
 * never reclaimed. */
static int
ofd_held(int fd, off_t start, off_t len)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len, .l_pid = 0};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return 1;
    return fl.l_type != F_UNLCK;
}

/* Some slot is held by a live process other than this one. */
static int
anyone_attached(void)
{
    return ofd_held(A.fd, LOCK_SLOT_BYTE(0), (off_t)A.g.nprocs);
}

/* ------------------------------ lists (under the lock) ----------------- */

static uint64_t
bucket_of(const raster__tile_key_t *k)
{
    return raster__tile_key_hash(k) & (A.g.nbuckets - 1);
}

static shm_entry_t *
lookup(const raster__tile_key_t *k)
{
    shm_entry_t *E = entries();
    uint64_t steps = 0;
    for (int32_t i = buckets()[bucket_of(k)]; i >= 0; i = E[i].hnext) {
        if (!idx_ok(i))
            return NULL;
        if (++steps > A.g.nentries) {
            corrupt("a cycle in a hash chain");
            return NULL;
        }
        if (raster__tile_key_equal(&E[i].key, k))
            return &E[i];
    }
    return NULL;
}

/* The LRU neighbour index 'i' (-1: none) is usable. */
static int
link_ok(int32_t i)
{
    return i == -1 || idx_ok(i);
}

static void
lru_unlink(shm_entry_t *e)
{
    shm_entry_t *E = entries();
    if (!link_ok(e->prev) || !link_ok(e->next))
        return;
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
    if (!link_ok(A.h->lru_head))
        return;
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
    for (uint64_t steps = 0; *pp >= 0 && *pp != i; pp = &E[*pp].hnext)
        if (!idx_ok(*pp) || ++steps > A.g.nentries) {
            corrupt("a cycle or a bad index in a hash chain");
            return;
        }
    if (*pp == i)
        *pp = e->hnext;
    e->hnext = -1;
}

static void
bits_set(uint64_t off, uint64_t n, int on)
{
    if (off > A.g.nunits || n > A.g.nunits - off) {
        corrupt("an entry's units outside the arena");
        return;
    }
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
    const uint64_t total = A.g.nunits;
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
    if (to > A.g.capacity)
        to = A.g.capacity;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (A.commit_failed.tv_sec != 0 && now.tv_sec - A.commit_failed.tv_sec < 1)
        return 0;           /* /dev/shm was full a moment ago: do not ask on every miss */
    const int rc = posix_fallocate(A.fd, (off_t)(A.g.off_data + A.h->committed),
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
    if (units_ok(e)) {
        bits_set(e->unit_off, e->nunits, 0);
        used_sub((uint64_t)e->nunits * UNIT);
    } else {
        corrupt("an entry's units outside the arena");
    }
    gen_open(e);
    e->state = ST_FREE;
    e->refs = 0;
    e->hnext = A.h->free_head;
    A.h->free_head = index_of(e);
    gen_close(e);
}

/* A reserved or retired entry whose last pin went: freed, unless a
 * hazard still names it (then a later locked operation frees it, see
 * retired_collect). */
static void
entry_free_unless_used(shm_entry_t *e)
{
    if (e->refs != 0 || (e->state != ST_RESERVED && e->state != ST_RETIRED))
        return;
    gen_open(e);
    /* A hazard on a reserved entry is a reader's that failed its check
     * (it never reads one): only a retired entry waits for hazards. */
    if (e->state == ST_RESERVED || !hazarded(index_of(e)))
        entry_free(e);
    else
        A.h->retired_waiting++;
    gen_close(e);
}

/* Out of the table and the LRU list; freed now or once unused. */
static void
entry_unlink(shm_entry_t *e)
{
    gen_open(e);
    hash_remove(e);
    lru_unlink(e);
    A.h->entries_linked--;
    e->state = ST_RETIRED;
    entry_free_unless_used(e);
    gen_close(e);
}

/* Frees the retired entries no pin and no hazard holds any more (their
 * readers let go without the lock). */
static void
retired_collect(void)
{
    if (A.h->retired_waiting == 0)
        return;
    A.h->retired_waiting = 0;
    shm_entry_t *E = entries();
    for (uint32_t i = 0; i < hw(); i++)
        if (E[i].state == ST_RETIRED && E[i].refs == 0)
            entry_free_unless_used(&E[i]);
}

/* ------------------------------ pins (under the lock) ------------------ */

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
    if (p->count < 0 || p->count >= PIN_MAX || e->refs < 0 || e->refs >= INT32_MAX / 2) {
        if (p->count == 0)
            p->entry = 0;
        corrupt("a pin count out of range");
        return 0;
    }
    p->count++;
    e->refs++;
    return 1;
}

/* Drops slot 'pr''s hazards and moves its lock-free counts into the
 * header's (the slot is being freed or taken). */
static void
slot_clear_hazards(shm_proc_t *pr)
{
    for (int j = 0; j < NHAZ; j++)
        if (atomic_load_explicit(&pr->hz[j], memory_order_relaxed) != 0) {
            atomic_store_explicit(&pr->hz[j], 0, memory_order_relaxed);
            A.h->retired_waiting++;     /* what it named may be freeable now */
        }
    A.h->hits += atomic_exchange_explicit(&pr->hits, 0, memory_order_relaxed);
    A.h->misses += atomic_exchange_explicit(&pr->misses, 0, memory_order_relaxed);
}

/* Drops every pin of slot 's' (a dead process, or this one leaving). */
static void
slot_reclaim(int s)
{
    shm_proc_t *pr = &procs()[s];
    shm_entry_t *E = entries();
    for (int i = 0; i < NPINS; i++) {
        const int64_t idx = (int64_t)pr->pins[i].entry - 1;
        const int32_t count = pr->pins[i].count;
        if (idx >= 0 && idx < (int64_t)hw() && count > 0 && count <= PIN_MAX) {
            shm_entry_t *e = &E[idx];
            const int64_t left = (int64_t)e->refs - count;
            e->refs = (int32_t)(left > 0 ? left : 0);
            A.h->reclaimed_pins += (uint64_t)count;
            entry_free_unless_used(e);
        } else if (idx != -1 || count != 0) {
            corrupt("a pin to a bad entry");
        }
        pr->pins[i].entry = 0;
        pr->pins[i].count = 0;
    }
    slot_clear_hazards(pr);
    pr->pid = 0;
    A.h->slots_freed++;
}

/* Reclaims the slots of processes that are gone (their byte unlocked);
 * returns how many live ones are attached, this one included. */
static int
sweep(void)
{
    int live = 0;
    for (int s = 0; s < (int)A.g.nprocs; s++) {
        shm_proc_t *pr = &procs()[s];
        if (s == A.slot) {
            live++;
            continue;
        }
        if (pr->pid == 0)
            continue;
        if (ofd_held(A.fd, LOCK_SLOT_BYTE(s), 1))
            live++;
        else
            slot_reclaim(s);
    }
    retired_collect();
    return live;
}

/* ------------------------------ repair --------------------------------- */

/* Recounts every entry's refs from the slots' pins, dropping pins that
 * make no sense (bad entry, count out of range, in a free slot). */
static void
repair_refs(void)
{
    shm_entry_t *E = entries();
    const uint32_t n = hw();
    for (uint32_t i = 0; i < n; i++)
        E[i].refs = 0;
    for (uint64_t s = 0; s < A.g.nprocs; s++)
        for (int i = 0; i < NPINS; i++) {
            shm_pin_t *p = &procs()[s].pins[i];
            const int64_t idx = (int64_t)p->entry - 1;
            if (idx < 0 || idx >= (int64_t)n || p->count <= 0 || p->count > PIN_MAX || procs()[s].pid == 0 ||
                E[idx].state > ST_RETIRED || (int64_t)E[idx].refs + p->count > INT32_MAX / 2) {
                p->entry = p->count = 0;
                continue;
            }
            E[idx].refs += p->count;
        }
}

/* Whether descriptor 'e' can stay (its units are free so far, and it has a
 * reason to exist); RETIRED when only a reader's pin keeps it. */
static int
repair_keeps(shm_entry_t *e, int used)
{
    if (e->state == ST_FREE || e->state > ST_RETIRED || !units_ok(e))
        return 0;
    for (uint64_t u = e->unit_off; u < e->unit_off + e->nunits; u++)
        if (bit_get(u))
            return 0;           /* overlaps one kept already */
    if (e->state == ST_RESERVED)
        return e->refs > 0;     /* only while its reserver's pin holds it (see entry_free_unless_used) */
    if (e->state != ST_PUBLISHED)
        return used;            /* retired: only while a pin or a hazard holds it */
    if (lookup(&e->key) == NULL)
        return 1;
    if (!used)
        return 0;               /* one of two: the other stays linked */
    e->state = ST_RETIRED;      /* a reader copies from it: keep it, unlinked */
    return 1;
}

/* For the rebuild: slots_hw recounted from the slots, every generation
 * opened (readers in flight let go), then which entries a hazard names
 * (hz[i]; NULL when there is no memory for it: all count as named). */
static uint8_t *
repair_hazards(uint32_t n)
{
    uint32_t top = 0;
    for (uint32_t s = 0; s < A.g.nprocs; s++)
        if (procs()[s].pid != 0)
            top = s + 1;
    if (A.slot >= 0 && (uint32_t)A.slot + 1 > top)
        top = (uint32_t)A.slot + 1;
    A.h->slots_hw = top;
    for (uint32_t i = 0; i < n; i++)
        gen_open(&entries()[i]);
    uint8_t *hz = calloc((size_t)n + 1, 1);
    if (hz == NULL)
        return NULL;
    for (uint32_t s = 0; s < top; s++)
        for (int j = 0; j < NHAZ && procs()[s].pid != 0; j++) {
            const uint32_t v = atomic_load_explicit(&procs()[s].hz[j], memory_order_seq_cst);
            if (v > 0 && v <= n)
                hz[v - 1] = 1;
        }
    return hz;
}

/* After a process died holding the lock, or the tables were found
 * inconsistent: rebuild everything derived from the descriptors' (state,
 * key, units) and the processes' pins.  Total: any content of the tables
 * gives consistent tables. */
static void
repair(void)
{
    shm_hdr_t *h = A.h;
    shm_entry_t *E = entries();
    h->entries_hw = hw();
    repair_refs();
    memset(bitmap(), 0, (size_t)((A.g.nunits + 63) / 64) * 8);
    for (uint64_t b = 0; b < A.g.nbuckets; b++)
        buckets()[b] = -1;
    h->lru_head = h->lru_tail = h->free_head = -1;
    h->bytes_used = 0;
    h->entries_linked = 0;
    const int was_corrupt = A.corrupt;
    uint8_t *hz = repair_hazards(h->entries_hw);
    h->retired_waiting = 0;
    for (uint32_t i = h->entries_hw; i-- > 0;) {
        shm_entry_t *e = &E[i];
        e->hnext = e->prev = e->next = -1;
        const int named = hz == NULL || hz[i];
        if (!repair_keeps(e, e->refs > 0 || named)) {
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
        } else if (e->refs == 0) {
            h->retired_waiting++;       /* only a hazard holds it */
        }
    }
    free(hz);
    for (uint32_t i = 0; i < h->entries_hw; i++)
        gen_close(&E[i]);
    for (uint64_t s = 0; s < A.g.nprocs; s++)      /* pins of what was dropped */
        for (int i = 0; i < NPINS; i++) {
            shm_pin_t *p = &procs()[s].pins[i];
            if (p->entry > 0 && E[p->entry - 1].state == ST_FREE)
                p->entry = p->count = 0;
        }
    if (h->committed > A.g.capacity)
        h->committed = A.g.capacity;
    if (atomic_load(&h->budget) > A.g.capacity)
        atomic_store(&h->budget, A.g.capacity);
    A.corrupt = 0;              /* what the rebuild itself walked is consistent now */
    h->repairs++;
    h->corruptions += (uint64_t)was_corrupt;
}

/* The header's own words that index the tables are in range. */
static int
header_sane(void)
{
    const shm_hdr_t *h = A.h;
    const int64_t n = h->entries_hw;
    return h->entries_hw <= A.g.nentries && h->lru_head >= -1 && h->lru_head < n && h->lru_tail >= -1 &&
           h->lru_tail < n && h->free_head >= -1 && h->free_head < n && h->committed <= A.g.capacity &&
           atomic_load(&h->budget) <= A.g.capacity && h->bytes_used <= A.g.capacity &&
           h->entries_linked >= 0 && h->entries_linked <= n && h->slots_hw <= A.g.nprocs;
}

/* ------------------------------ whole-table check ---------------------- */

typedef struct checker {
    char *why;
    size_t n;
    int ok;
    uint64_t *claimed;            /* one bit per unit: held by an entry seen so far */
} checker_t;

static void
check_fail(checker_t *c, const char *fmt, long long a, long long b)
{
    if (c->ok)
        snprintf(c->why, c->n, fmt, a, b);
    c->ok = 0;
}

enum { SEEN_HASH = 1, SEEN_LRU = 2, SEEN_FREE = 4 };

/* Walks one list ('lru': next, else hnext), every member in range, once,
 * in 'state', ended by -1 exactly (another negative value is garbage the
 * walks would stop at, and the unlinks would follow); returns how many it
 * holds. */
static int64_t
check_list(checker_t *c, int32_t head, uint8_t *seen, uint8_t flag, uint32_t state, int lru)
{
    shm_entry_t *E = entries();
    const uint32_t n = hw();
    int64_t count = 0;
    int32_t prev = -1;
    for (int32_t i = head; i != -1 && c->ok; prev = i, i = lru ? E[i].next : E[i].hnext) {
        if (i < 0 || (uint32_t)i >= n || (seen[i] & flag) || E[i].state != state) {
            check_fail(c, "list %lld: entry %lld out of range, met twice or in the wrong state", flag, i);
            break;
        }
        if (lru && E[i].prev != prev)
            check_fail(c, "LRU list: entry %lld's back link is %lld", i, E[i].prev);
        seen[i] |= flag;
        count++;
    }
    if (lru && c->ok && A.h->lru_tail != prev)
        check_fail(c, "LRU list: tail %lld but the list ends at %lld", A.h->lru_tail, prev);
    return count;
}

/* Pins: in range, in live-looking slots, counted into refs[]. */
static void
check_pins(checker_t *c, int64_t *refs)
{
    const shm_entry_t *E = entries();
    const uint32_t n = hw();
    for (uint64_t s = 0; s < A.g.nprocs && c->ok; s++)
        for (int i = 0; i < NPINS && c->ok; i++) {
            const shm_pin_t *p = &procs()[s].pins[i];
            if (p->entry == 0 && p->count == 0)
                continue;
            if (procs()[s].pid == 0 || s >= A.h->slots_hw || p->entry <= 0 || (uint32_t)(p->entry - 1) >= n || p->count <= 0 ||
                p->count > PIN_MAX || E[p->entry - 1].state == ST_FREE || E[p->entry - 1].state > ST_RETIRED)
                check_fail(c, "slot %lld: a pin to entry %lld that cannot be pinned", (long long)s, (long long)p->entry - 1);
            else
                refs[p->entry - 1] += p->count;
        }
}

/* One descriptor against its pins and the bitmap; adds its units. */
static void
check_entry(checker_t *c, uint32_t i, const int64_t *refs, uint64_t *units, int64_t *published, int64_t *nfree)
{
    const shm_entry_t *e = &entries()[i];
    if (e->state == ST_FREE) {
        (*nfree)++;
        return;
    }
    if (e->state > ST_RETIRED || !units_ok(e)) {
        check_fail(c, "entry %lld: state %lld or its units are out of range", i, e->state);
        return;
    }
    if (e->refs != refs[i])
        check_fail(c, "entry %lld: refs %lld but the processes hold other pins", i, e->refs);
    /* A retired entry without pins may wait for a lock-free reader's
     * hazard (retired_collect frees it after). */
    if (e->state == ST_RESERVED && e->refs == 0)
        check_fail(c, "entry %lld: state %lld with no reference left (leaked)", i, e->state);
    *units += e->nunits;
    /* Each unit held by one entry at most: with the count of marked units
     * equal to the units held, the bitmap is then exactly the units held
     * (two entries on one unit and an orphan mark elsewhere balance the
     * counts; fuzz_shm_tables found that). */
    for (uint64_t u = e->unit_off; u < e->unit_off + e->nunits && c->ok; u++) {
        if (!bit_get(u))
            check_fail(c, "entry %lld: unit %lld is not marked used", i, (long long)u);
        else if (c->claimed[u >> 6] >> (u & 63) & 1)
            check_fail(c, "entry %lld: unit %lld is held by another entry too", i, (long long)u);
        c->claimed[u >> 6] |= 1ULL << (u & 63);
    }
    if (e->state == ST_PUBLISHED)
        (*published)++;
}

/* Every invariant of the tables, every walk bounded (what attach checks
 * and raster__shm_check() reports).  Under the lock. */
static int
tables_valid(char *why, size_t why_nbytes)
{
    checker_t c = {why, why_nbytes, 1, NULL};
    if (!header_sane()) {
        check_fail(&c, "the header's table indices are out of range (%lld, %lld)", A.h->entries_hw,
                   A.h->lru_head);
        return 0;
    }
    const uint32_t n = hw();
    int64_t *refs = calloc((size_t)n + 1, sizeof *refs);
    uint8_t *seen = calloc((size_t)n + 1, 1);
    c.claimed = calloc((size_t)(A.g.nunits + 63) / 64 + 1, sizeof *c.claimed);
    if (refs == NULL || seen == NULL || c.claimed == NULL) {
        free(refs);
        free(seen);
        free(c.claimed);
        check_fail(&c, "no memory to check %lld entries", n, 0);
        return 0;
    }
    check_pins(&c, refs);
    uint64_t units = 0;
    int64_t published = 0, nfree = 0, hashed = 0;
    for (uint32_t i = 0; i < n && c.ok; i++)
        check_entry(&c, i, refs, &units, &published, &nfree);
    for (uint64_t b = 0; b < A.g.nbuckets && c.ok; b++) {
        const int64_t before = hashed;
        hashed += check_list(&c, buckets()[b], seen, SEEN_HASH, ST_PUBLISHED, 0);
        for (int32_t i = buckets()[b]; c.ok && hashed > before && i >= 0; i = entries()[i].hnext)
            if (bucket_of(&entries()[i].key) != b)
                check_fail(&c, "entry %lld is chained in bucket %lld, not its own", i, (long long)b);
    }
    const int64_t in_lru = c.ok ? check_list(&c, A.h->lru_head, seen, SEEN_LRU, ST_PUBLISHED, 1) : 0;
    const int64_t freed = c.ok ? check_list(&c, A.h->free_head, seen, SEEN_FREE, ST_FREE, 0) : 0;
    uint64_t marked = 0;
    for (uint64_t u = 0; u < A.g.nunits; u++)
        marked += (uint64_t)bit_get(u);
    if (c.ok && (hashed != published || in_lru != published || published != A.h->entries_linked))
        check_fail(&c, "%lld published, %lld in the table or the LRU list or counted", published,
                   hashed != published ? hashed : in_lru != published ? in_lru : A.h->entries_linked);
    if (c.ok && freed != nfree)
        check_fail(&c, "%lld free descriptors, %lld on the free list", nfree, freed);
    if (c.ok && marked != units)
        check_fail(&c, "%lld units marked but entries hold %lld", (long long)marked, (long long)units);
    if (c.ok && units * UNIT != A.h->bytes_used)
        check_fail(&c, "bytes_used %lld but entries hold %lld", (long long)A.h->bytes_used,
                   (long long)(units * UNIT));
    free(refs);
    free(seen);
    free(c.claimed);
    return c.ok;
}

/* ------------------------------ the arena's lock ----------------------- */

/* Takes the arena's lock: 1, or 0 when it cannot be had (no descriptor
 * after a failed reopen at fork, or the kernel refused): the caller then
 * acts as on a miss.  Repairs first if the last holder died inside, or if
 * the header's indices are out of range. */
static int
lock(void)
{
    pthread_mutex_lock(&A.threads);
    if (A.h == NULL || A.fd < 0 || !ofd_lock(A.fd, F_WRLCK, LOCK_ARENA_BYTE, 1, 1)) {
        pthread_mutex_unlock(&A.threads);
        return 0;
    }
    const uint32_t dirty = atomic_load(&A.h->dirty);
    if (!header_sane())
        corrupt("the header's table indices are out of range");
    if (dirty || A.corrupt)
        repair();
    atomic_store(&A.h->dirty, 1);
    return 1;
}

static void
unlock_now(void)
{
    if (A.corrupt)
        repair();
    atomic_store(&A.h->dirty, 0);
    ofd_lock(A.fd, F_UNLCK, LOCK_ARENA_BYTE, 1, 0);
    pthread_mutex_unlock(&A.threads);
}

static void
unlock(void)
{
    test_pause();
    unlock_now();
}

/* ------------------------------ slots (under the lock) ----------------- */

/* This process's slot: a new one after fork (the parent keeps its own).
 * When every slot is held by a live process, asks again only when
 * 'force' (stats), when a slot was given back since, or a second later
 * (a dead process's slot is only found by a sweep). */
static int
slot_take(int force)
{
    if (A.slot >= 0)
        return 1;
    if (A.fd < 0)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!force && A.slot_failed.tv_sec != 0 && now.tv_sec - A.slot_failed.tv_sec < 1 &&
        A.h->slots_freed == A.slot_failed_gen)
        return 0;
    sweep();
    for (int s = 0; s < (int)A.g.nprocs; s++) {
        shm_proc_t *pr = &procs()[s];
        if (pr->pid != 0 || !ofd_lock(A.fd, F_WRLCK, LOCK_SLOT_BYTE(s), 1, 0))
            continue;
        memset(pr->pins, 0, sizeof pr->pins);
        slot_clear_hazards(pr);
        if ((uint32_t)s >= A.h->slots_hw)
            A.h->slots_hw = (uint32_t)s + 1;    /* before the pid: hazards are looked for below it */
        pr->pid = (int32_t)getpid();
        A.slot = s;
        A.slot_failed.tv_sec = 0;
        return 1;
    }
    A.slot_failed = now;
    A.slot_failed_gen = A.h->slots_freed;
    if (A.slot_failed.tv_sec == 0)
        A.slot_failed.tv_sec = 1;
    return 0;
}

/* Under the lock: this process has a slot (after fork, the child takes
 * one; without one it reads uncached). */
static int
me_ready(void)
{
    return slot_take(0);
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
    uint64_t nunits, nentries, nbuckets, nprocs;
    uint64_t off_procs, off_entries, off_buckets, off_bitmap, off_data, total;
} layout_t;

/* Process slots of an arena this process creates (the test knob, else
 * NPROCS). */
static uint64_t create_nprocs = NPROCS;

static uint64_t
align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

static layout_t
layout_with(uint64_t capacity, uint64_t nprocs)
{
    layout_t L;
    L.nunits = capacity / UNIT;
    L.nentries = L.nunits / 8 > 256 ? L.nunits / 8 : 256;     /* one per 32 KiB */
    if (L.nentries > L.nunits)
        L.nentries = L.nunits;
    L.nbuckets = 1;
    while (L.nbuckets < L.nentries)
        L.nbuckets <<= 1;
    L.nprocs = nprocs;
    L.off_procs = align_up(sizeof(shm_hdr_t), 4096);
    L.off_entries = align_up(L.off_procs + nprocs * sizeof(shm_proc_t), 64);
    L.off_buckets = align_up(L.off_entries + L.nentries * sizeof(shm_entry_t), 64);
    L.off_bitmap = align_up(L.off_buckets + L.nbuckets * sizeof(int32_t), 64);
    L.off_data = align_up(L.off_bitmap + (L.nunits + 63) / 64 * 8, 4096);
    L.total = L.off_data + L.nunits * UNIT;
    return L;
}

static layout_t
layout_for(uint64_t capacity)
{
    return layout_with(capacity, create_nprocs);
}

static void
geometry_take(const shm_hdr_t *h)
{
    A.g = (geometry_t){h->nunits,      h->nentries,    h->nbuckets,   h->nprocs,     h->capacity,
                       h->off_procs,   h->off_entries, h->off_buckets, h->off_bitmap, h->off_data};
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
    /* The creator's slot (0) is locked before anyone can see the arena, so
     * that it never looks abandoned. */
    if (rc == 0 && !ofd_lock(fd, F_WRLCK, LOCK_SLOT_BYTE(0), 1, 0))
        rc = errno;
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
    h->nprocs = L.nprocs;
    h->npins = NPINS;
    h->off_procs = L.off_procs;
    h->off_entries = L.off_entries;
    h->off_buckets = L.off_buckets;
    h->off_bitmap = L.off_bitmap;
    h->off_data = L.off_data;
    atomic_store(&h->budget, budget > 0 && budget < h->capacity ? budget : h->capacity);
    h->lru_head = h->lru_tail = h->free_head = -1;
    h->slots_hw = 1;
    int32_t *b = (int32_t *)(base + L.off_buckets);
    for (uint64_t i = 0; i < L.nbuckets; i++)
        b[i] = -1;
    ((shm_proc_t *)(base + L.off_procs))[0].pid = (int32_t)getpid();
    h->magic = SHM_MAGIC;
    atomic_store(&h->ready, 1);
    A.h = h;
    A.base = base;
    A.map_nbytes = L.total;
    A.fd = fd;
    A.slot = 0;
    geometry_take(h);
    return 1;
}

/* What is wrong with a header that is ready, or NULL. */
static const char *
header_fault(const shm_hdr_t *h, uint64_t size)
{
    if (h->magic != SHM_MAGIC)
        return "has a bad magic number (corrupted or not an arena)";
    if (h->layout_version != SHM_LAYOUT_VERSION || h->hdr_nbytes != sizeof *h)
        return "has another layout version";
    if (h->owner_uid != (uint32_t)getuid())
        return "names another owner in its header";
    if (h->total_nbytes != size || h->unit != UNIT || h->nprocs < 1 || h->nprocs > NPROCS || h->npins != NPINS)
        return "has inconsistent sizes in its header";
    const layout_t L = layout_with(h->capacity, h->nprocs);
    if (h->capacity % UNIT != 0 || L.nunits != h->nunits ||
        L.nentries != h->nentries || L.nbuckets != h->nbuckets || L.off_procs != h->off_procs ||
        L.off_entries != h->off_entries || L.off_buckets != h->off_buckets || L.off_bitmap != h->off_bitmap ||
        L.off_data != h->off_data || L.total != h->total_nbytes)
        return "has inconsistent offsets in its header";
    return NULL;
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
    /* The kernel must answer liveness across namespaces, or no sharing. */
    if (!ofd_lock(fd, F_UNLCK, LOCK_ARENA_BYTE, 1, 0)) {
        const int err = errno;
        close(fd);
        return fail(why, n, "%s: open file description locks (F_OFD_SETLK) are needed to share it: refused",
                    A.name, err);
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
    else
        bad = header_fault(h, (uint64_t)sb.st_size);
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
    geometry_take(h);
    return 1;
}

/* This process lets go of its mapping (no slot held, nothing pinned). */
static void
unmap(void)
{
    munmap(A.base, A.map_nbytes);
    close(A.fd);
    A.h = NULL;
    A.base = NULL;
    A.fd = -1;
    A.slot = -1;
}

/* Under the lock, with no live process attached: nobody can use it any
 * more; whoever opened it meanwhile sees the mark and opens the name
 * again (which the unlink frees for a new arena). */
static void
abandon(void)
{
    A.h->abandoned = 1;
    shm_unlink(A.name);
}

void
raster__shm_detach(void)
{
    pthread_mutex_lock(&A.local);
    if (A.h == NULL || A.slot < 0 || !lock()) {
        pthread_mutex_unlock(&A.local);
        return;
    }
    slot_reclaim(A.slot);
    ofd_lock(A.fd, F_UNLCK, LOCK_SLOT_BYTE(A.slot), 1, 0);
    A.slot = -1;
    sweep();
    if (!anyone_attached() && !A.h->abandoned)
        abandon();
    unlock_now();
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
            /* Slot locks say who lives, in every PID namespace. */
            if (lock()) {
                if (!anyone_attached() && !A.h->abandoned)
                    abandon();
                unlock_now();
            }
            unmap();
        }
    }
    pthread_mutex_unlock(&A.local);
}

static void
detach_at_exit(void)
{
    raster__shm_detach();
}

/* A descriptor of the arena on an open file description of its own: the
 * same inode opened again (through /proc, else by name, checked to be the
 * same object); -1 if neither works. */
static int
reopen_own(int fd)
{
    struct stat was, now;
    if (fstat(fd, &was) != 0)
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int nfd = open(path, O_RDWR | O_CLOEXEC);
    if (nfd < 0)
        nfd = shm_open(A.name, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    if (nfd >= 0 && (fstat(nfd, &now) != 0 || now.st_ino != was.st_ino || now.st_dev != was.st_dev)) {
        close(nfd);
        nfd = -1;
    }
    return nfd;
}

/* Fork (hook run by fork.c): the parent keeps its slot; the child takes
 * its own on first use, on a descriptor of its own: the inherited one
 * shares the parent's open file description, whose locks (the parent's
 * slot, and the arena's lock if a parent thread held it) would otherwise
 * stay held as long as the child lives, and which the child's own locks
 * would not be told apart from.  The local mutexes may have been held by
 * threads that do not exist in the child. */
void
raster__shm_arena_fork_child(void)
{
    pthread_mutex_init(&A.local, NULL);
    pthread_mutex_init(&A.threads, NULL);
    A.slot = -1;
    A.slot_failed.tv_sec = 0;
    if (A.fd < 0)
        return;
    const int nfd = reopen_own(A.fd);
    if (nfd >= 0 && dup3(nfd, A.fd, O_CLOEXEC) >= 0) {
        close(nfd);
        return;
    }
    if (nfd >= 0)
        close(nfd);
    close(A.fd);                /* at least the parent's locks go */
    A.fd = -1;
    snprintf(A.note, sizeof A.note, "%s could not be opened again after fork: this process reads uncached",
             A.name);
}

static void
fork_hooks_register(void)
{
    static const raster__fork_hooks_t hooks = {NULL, NULL, raster__shm_arena_fork_child};
    raster__fork_hooks(RASTER__FORK_SHM_ARENA, &hooks);
}

/* The test knobs of the environment, read at attach. */
static void
test_knobs(void)
{
    const char *sl = getenv("RASTERLOADER_TILE_CACHE_TEST_SLEEP_US");
    A.test_sleep = sl ? (useconds_t)strtoul(sl, NULL, 10) : 0;
    const char *np = getenv("RASTERLOADER_TILE_CACHE_TEST_NPROCS");
    const unsigned long v = np ? strtoul(np, NULL, 10) : 0;
    create_nprocs = v >= 1 && v <= NPROCS ? v : NPROCS;
}

/* Under the lock, in an arena just opened: 1 to use it, 0 to open the
 * name again (it was abandoned, or it is a leftover of dead processes,
 * which this call removes and notes). */
static int
usable_after_open(void)
{
    if (A.h->abandoned)
        return 0;
    if (anyone_attached())
        return 1;
    snprintf(A.note, sizeof A.note,
             "removed a leftover arena (%llu MiB, its processes all dead) and made a new one",
             (unsigned long long)(A.g.capacity >> 20));
    abandon();
    return 0;
}

/* Under the lock, at attach: the tables are checked whole, and rebuilt if
 * they are not consistent. */
static void
tables_trust(void)
{
    char why[96];
    sweep();
    if (tables_valid(why, sizeof why))
        return;
    snprintf(A.note, sizeof A.note, "the arena's tables were inconsistent at attach (%s): rebuilt", why);
    A.h->corruptions++;
    repair();
}

/* Opens or creates the arena: 1, or 0 with the reason. */
static int
open_or_create(size_t capacity, size_t budget, char *why, size_t n)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        int stale = 0;
        const int r = open_existing(why, n, &stale);
        if (r == 1) {
            if (!lock()) {
                unmap();
                snprintf(why, n, "%s: its lock cannot be taken (%s): refused", A.name, strerror(errno));
                return 0;
            }
            const int use = usable_after_open();
            if (use)
                tables_trust();
            unlock_now();
            if (use)
                return 1;
            unmap();
            continue;
        }
        if (r == 0 && !stale)
            return 0;
        if (r == 0 && stale)
            shm_unlink(A.name);     /* ours, half made by a creator that died */
        const int c = create(capacity, budget, why, n);
        if (c >= 0)
            return c;
    }
    if (why[0] == '\0')
        snprintf(why, n, "%s: could not open or create it", A.name);
    return 0;
}

static void
atexit_register(void)
{
    atexit(detach_at_exit);
}

int
raster__shm_attach(size_t capacity, size_t budget, char *why, size_t n)
{
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    pthread_once(&fork_once, fork_hooks_register);   /* before there is a slot to inherit */
    name_init();
    test_knobs();
    why[0] = '\0';
    pthread_mutex_lock(&A.local);
    const int got = A.h != NULL || open_or_create(capacity, budget, why, n);
    if (got && lock()) {
        slot_take(1);
        if (budget > 0)
            atomic_store(&A.h->budget, budget < A.g.capacity ? budget : A.g.capacity);
        unlock_now();
    }
    pthread_mutex_unlock(&A.local);
    if (!got)
        return 0;
    why[0] = '\0';
    static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
    pthread_once(&exit_once, atexit_register);
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

/* Read without the lock by the entry's pinner: bounded by the arena
 * whatever the descriptor says now. */
void *
raster__shm_entry_data(const raster__tile_entry_t *te)
{
    const shm_entry_t *e = (const shm_entry_t *)te;
    const uint64_t off = e->unit_off;
    return A.base + A.g.off_data + (off < A.g.nunits ? off : 0) * UNIT;
}

size_t
raster__shm_entry_valid(const raster__tile_entry_t *te)
{
    const shm_entry_t *e = (const shm_entry_t *)te;
    const uint64_t off = e->unit_off, valid = e->valid;
    const uint64_t room = off < A.g.nunits ? (A.g.nunits - off) * UNIT : 0;
    return (size_t)(valid < room ? valid : room);
}

/* Under the lock: the published entry of 'k' with 'min_valid' bytes,
 * pinned and made the most recent, or NULL (a miss). */
static shm_entry_t *
hit_take(const raster__tile_key_t *k, size_t min_valid)
{
    shm_entry_t *e = lookup(k);
    if (e != NULL && !units_ok(e))
        corrupt("an entry's units outside the arena");
    if (e != NULL && e->state == ST_PUBLISHED && !A.corrupt && e->valid >= min_valid && pin_add(e)) {
        lru_unlink(e);
        lru_push_head(e);
        A.h->hits++;
        return e;
    }
    A.h->misses++;
    return NULL;
}

/* Under the lock: drops one of this process's pins of 'e' (none: this
 * slot was reclaimed, at exit, and the count with it). */
static void
hit_drop(shm_entry_t *e)
{
    shm_pin_t *p = A.slot >= 0 ? pin_find(index_of(e), 0) : NULL;
    if (p == NULL)
        return;
    if (p->count <= 1)
        p->entry = p->count = 0;
    else
        p->count--;
    e->refs = e->refs > 1 ? e->refs - 1 : 0;
    entry_free_unless_used(e);
}

/* The keys not done[] (all when done is NULL) under the lock, pinned in
 * this process's slot. */
static void
get_locked(const raster__tile_key_t *keys, const size_t *min_valid, int64_t n, const raster__tile_entry_t **out,
           const int *done)
{
    if (!lock())
        return;
    int hits = 0;
    const int ready = me_ready();
    for (int64_t i = 0; i < n; i++) {
        if (done != NULL && done[i])
            continue;
        if (ready)
            hits += (out[i] = (const raster__tile_entry_t *)hit_take(&keys[i], min_valid[i])) != NULL;
        else
            A.h->misses++;
    }
    if (A.corrupt && hits > 0) {
        /* Found inconsistent after some pins were taken: the rebuild at
         * unlock may drop what it cannot make sense of, so none is a hit. */
        for (int64_t i = 0; i < n; i++)
            if ((done == NULL || !done[i]) && out[i] != NULL) {
                hit_drop((shm_entry_t *)out[i]);
                out[i] = NULL;
            }
        hits = 0;
    }
    unlock();
    if (hits > 0)
        test_pause();   /* pinned, unlocked: the copy-out window */
}

/* ------------------------------ lock-free hits ------------------------ */

/* What a lock-free reader reads of a descriptor the lock holder may be
 * changing: single loads of each word (a torn snapshot is caught by the
 * generation check that follows, see hit_lockless).  A seqlock's reads
 * race with the writer by design, so ThreadSanitizer is told not to
 * report these plain reads (the generation and hazard words stay atomic
 * and instrumented). */
typedef struct snapshot {
    raster__tile_key_t key;
    uint64_t unit_off, capacity, valid;
    uint32_t nunits, state;
    int32_t hnext;
} snapshot_t;

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RACY_READS __attribute__((no_sanitize("thread")))
#endif
#endif
#if !defined(RACY_READS) && defined(__SANITIZE_THREAD__)
#define RACY_READS __attribute__((no_sanitize_thread))
#endif
#ifndef RACY_READS
#define RACY_READS
#endif

static RACY_READS void
snapshot_take(const shm_entry_t *e, snapshot_t *out)
{
    const uint64_t *kw = (const uint64_t *)(const void *)&e->key;
    uint64_t *ow = (uint64_t *)(void *)&out->key;
    for (size_t i = 0; i < sizeof e->key / sizeof *kw; i++)
        ow[i] = __atomic_load_n(&kw[i], __ATOMIC_RELAXED);
    out->unit_off = __atomic_load_n(&e->unit_off, __ATOMIC_RELAXED);
    out->capacity = __atomic_load_n(&e->capacity, __ATOMIC_RELAXED);
    out->valid = __atomic_load_n(&e->valid, __ATOMIC_RELAXED);
    out->nunits = __atomic_load_n(&e->nunits, __ATOMIC_RELAXED);
    out->state = __atomic_load_n(&e->state, __ATOMIC_RELAXED);
    out->hnext = __atomic_load_n(&e->hnext, __ATOMIC_RELAXED);
}

static RACY_READS int32_t
bucket_head(uint64_t b)
{
    return __atomic_load_n(&buckets()[b], __ATOMIC_RELAXED);
}

/* Where this thread starts looking for a free hazard word (threads of a
 * process spread over the slot's words). */
static _Thread_local uint32_t hz_hint = UINT32_MAX;

static uint32_t
hz_start(void)
{
    if (hz_hint == UINT32_MAX) {
        static _Atomic uint32_t next_thread;
        hz_hint = (atomic_fetch_add_explicit(&next_thread, 1, memory_order_relaxed) * 8u) % NHAZ;
    }
    return hz_hint;
}

/* Publishes a hazard on entry 'idx' in slot 's': the word, or NULL when
 * every word is taken (the caller takes the lock instead). */
static _Atomic uint32_t *
hazard_take(int s, int32_t idx)
{
    _Atomic uint32_t *hz = procs()[s].hz;
    const uint32_t start = hz_start();
    for (uint32_t t = 0; t < NHAZ; t++) {
        _Atomic uint32_t *w = &hz[(start + t) % NHAZ];
        uint32_t zero = 0;
        if (atomic_load_explicit(w, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(w, &zero, (uint32_t)idx + 1, memory_order_seq_cst,
                                                    memory_order_relaxed))
            return w;
    }
    return NULL;
}

/* Drops one hazard of this process on entry 'idx': 1, or 0 if it holds
 * none (the entry was pinned under the lock). */
static int
hazard_drop(int s, int32_t idx)
{
    _Atomic uint32_t *hz = procs()[s].hz;
    const uint32_t start = hz_start();
    for (uint32_t t = 0; t < NHAZ; t++) {
        uint32_t want = (uint32_t)idx + 1;
        if (atomic_compare_exchange_strong_explicit(&hz[(start + t) % NHAZ], &want, 0, memory_order_release,
                                                    memory_order_relaxed))
            return 1;
    }
    return 0;
}

enum { LF_HIT, LF_MISS, LF_LOCKED };

/* A hit without the lock (the rule is in the header comment): walks the
 * hash chain with every index bound-checked and the walk bounded (a torn
 * walk may miss, never leave the table), reads the entry between two
 * reads of its generation with its hazard published in between.  LF_HIT
 * with *out pinned by a hazard, LF_MISS, or LF_LOCKED when in doubt (no
 * slot, no free hazard word, a chain too long, an entry being changed):
 * the caller asks under the lock, which also finds any corruption. */
static int
hit_lockless(int s, const raster__tile_key_t *k, size_t min_valid, shm_entry_t **out)
{
    shm_entry_t *E = entries();
    const uint64_t n = A.g.nentries;
    int32_t i = bucket_head(bucket_of(k));
    for (uint64_t steps = 0; i >= 0; steps++) {
        if ((uint64_t)i >= n || steps > 64)
            return LF_LOCKED;
        shm_entry_t *e = &E[i];
        const uint64_t g1 = atomic_load_explicit(&e->gen, memory_order_acquire);
        snapshot_t sn;
        snapshot_take(e, &sn);
        if (!raster__tile_key_equal(&sn.key, k)) {
            i = sn.hnext;
            continue;
        }
        const shm_entry_t units = {.unit_off = sn.unit_off, .nunits = sn.nunits, .capacity = sn.capacity,
                                   .valid = sn.valid};
        if ((g1 & 1) || sn.state != ST_PUBLISHED || !units_ok(&units))
            return LF_LOCKED;       /* being changed, or nonsense the locked path rebuilds */
        if (sn.valid < min_valid)
            return LF_MISS;
        _Atomic uint32_t *w = hazard_take(s, i);
        if (w == NULL)
            return LF_LOCKED;
        /* The hazard (a seq_cst read-modify-write, after the snapshot's
         * reads), then the generation again (Dekker with gen_open). */
        if (atomic_load_explicit(&e->gen, memory_order_seq_cst) != g1) {
            atomic_store_explicit(w, 0, memory_order_release);
            return LF_LOCKED;
        }
        if (!atomic_load_explicit(&e->referenced, memory_order_relaxed))
            atomic_store_explicit(&e->referenced, 1, memory_order_relaxed);
        *out = e;
        return LF_HIT;
    }
    return LF_MISS;
}

enum { CHUNK = 64 };            /* segments looked up (or let go) together */

/* Up to CHUNK segments: lock-free where it can, the rest under one
 * acquisition of the lock. */
static void
get_chunk(const raster__tile_key_t *keys, const size_t *min_valid, int64_t n, const raster__tile_entry_t **out)
{
    const int s = atomic_load(&A.slot);
    int64_t locked = 0, hits_lf = 0, misses_lf = 0;
    int done[CHUNK];
    for (int64_t i = 0; i < n; i++) {
        shm_entry_t *e = NULL;
        const int r = s >= 0 ? hit_lockless(s, &keys[i], min_valid[i], &e) : LF_LOCKED;
        done[i] = r != LF_LOCKED;
        out[i] = (const raster__tile_entry_t *)e;
        hits_lf += r == LF_HIT;
        misses_lf += r == LF_MISS;
        locked += r == LF_LOCKED;
    }
    if (hits_lf)
        atomic_fetch_add_explicit(&procs()[s].hits, (uint64_t)hits_lf, memory_order_relaxed);
    if (misses_lf)
        atomic_fetch_add_explicit(&procs()[s].misses, (uint64_t)misses_lf, memory_order_relaxed);
    if (locked > 0)
        get_locked(keys, min_valid, n, out, done);
    else if (hits_lf > 0)
        test_pause();   /* pinned: the copy-out window */
}

/* Every segment of a window (each lock and unlock of the arena is a
 * system call, fcntl: the common hit takes none, the rest one per chunk). */
void
raster__shm_get_many(const raster__tile_key_t *keys, const size_t *min_valid, int64_t n,
                     const raster__tile_entry_t **out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = NULL;
    if (A.h == NULL)
        return;
    for (int64_t at = 0; at < n; at += CHUNK)
        get_chunk(keys + at, min_valid + at, n - at < CHUNK ? n - at : CHUNK, out + at);
}

const raster__tile_entry_t *
raster__shm_get(const raster__tile_key_t *k, size_t min_valid)
{
    const raster__tile_entry_t *e;
    raster__shm_get_many(k, &min_valid, 1, &e);
    return e;
}

/* A descriptor for a new entry (from the free list, else never used), or
 * NULL. */
static shm_entry_t *
descriptor_take(void)
{
    shm_entry_t *E = entries();
    const int32_t i = A.h->free_head;
    if (i >= 0) {
        if (!idx_ok(i) || E[i].state != ST_FREE) {
            corrupt("the free list holds an entry in use");
            return NULL;
        }
        A.h->free_head = E[i].hnext;
        return &E[i];
    }
    if (A.h->entries_hw >= A.g.nentries)
        return NULL;
    return &E[A.h->entries_hw++];
}

/* Nobody uses 'e': no pin, no hazard (a reader that publishes one after
 * this look sees the generation its eviction opens, and lets go). */
static int
entry_unused(const shm_entry_t *e)
{
    return e->refs <= 0 && !hazarded(index_of(e));
}

/* The coldest published entry nobody is using, or -1 (also when the LRU
 * list makes no sense). */
static int32_t
coldest_unused(void)
{
    shm_entry_t *E = entries();
    uint64_t steps = 0;
    for (int32_t v = A.h->lru_tail; v >= 0;) {
        /* Each entry is passed at most twice (once moved, once cleared). */
        if (!idx_ok(v) || ++steps > 2 * A.g.nentries + 2) {
            corrupt("a cycle or a bad index in the LRU list");
            return -1;
        }
        const int32_t prev = E[v].prev;
        if (E[v].refs <= 0) {
            /* Lock-free hits only mark the entry: its second chance is a
             * move to the hot end now (CLOCK over the LRU list). */
            if (!atomic_exchange_explicit(&E[v].referenced, 0, memory_order_relaxed)) {
                if (entry_unused(&E[v]))
                    return v;
                v = prev;
                continue;
            }
            lru_unlink(&E[v]);
            lru_push_head(&E[v]);
        }
        v = prev;
    }
    return -1;
}

raster__tile_entry_t *
raster__shm_reserve(size_t capacity)
{
    const uint64_t nunits = (capacity + UNIT - 1) / UNIT, need = nunits * UNIT;
    if (capacity == 0 || need > raster__shm_budget())
        return NULL;
    if (!lock())
        return NULL;
    shm_entry_t *e = NULL;
    if (!me_ready())
        goto out;
    /* Larger than all the memory the arena can back: evicting would not help. */
    if (!commit_upto(need))
        goto out;
    int swept = 0;
    for (;;) {
        const uint64_t budget = atomic_load(&A.h->budget);
        if (need > budget || A.corrupt)
            goto out;
        uint64_t at = UINT64_MAX;
        const int have_desc = A.h->free_head >= 0 || A.h->entries_hw < A.g.nentries;
        if (have_desc && A.h->bytes_used + need <= budget)
            at = units_find(nunits);
        /* units_find() looks inside the backed memory first, so a run past
         * it means none is free inside.  When /dev/shm cannot back more,
         * the arena lives within what it has: evict and look again. */
        if (at != UINT64_MAX && !commit_upto((at + nunits) * UNIT))
            at = UINT64_MAX;
        if (at != UINT64_MAX) {
            if ((e = descriptor_take()) == NULL)
                goto out;
            gen_open(e);
            memset(&e->key, 0, sizeof e->key);
            e->unit_off = at;
            e->nunits = (uint32_t)nunits;
            e->capacity = capacity;
            e->valid = 0;
            e->refs = 0;
            e->hnext = e->prev = e->next = -1;
            atomic_store_explicit(&e->referenced, 0, memory_order_relaxed);   /* a new entry: not hit yet */
            bits_set(at, nunits, 1);
            A.h->bytes_used += need;
            e->state = ST_RESERVED;
            gen_close(e);
            if (!pin_add(e)) {
                entry_free(e);
                e = NULL;
            }
            goto out;
        }
        /* Memory lock-free readers let go of, then the coldest entry
         * nobody is using. */
        retired_collect();
        const int32_t v = coldest_unused();
        if (v >= 0) {
            entry_unlink(&entries()[v]);
            A.h->evictions++;
            continue;
        }
        if (swept++ || A.corrupt)
            goto out;
        sweep();        /* pins of dead processes may hold the rest */
    }
out:
    if (e != NULL && A.corrupt)
        e = NULL;       /* rebuilt at unlock; a reserved entry unpublished is freed with its pin */
    unlock();
    return (raster__tile_entry_t *)e;
}

void
raster__shm_put(raster__tile_entry_t *te, const raster__tile_key_t *k, size_t valid)
{
    shm_entry_t *e = (shm_entry_t *)te;
    if (!lock())
        return;
    if (e->state == ST_RESERVED && units_ok(e) && me_ready() && atomic_load(&A.h->budget) > 0) {
        gen_open(e);
        e->key = *k;
        e->valid = valid < e->capacity ? valid : e->capacity;
        shm_entry_t *old = lookup(k);
        /* Another process may have published the same segment meanwhile;
         * the longer prefix wins, the loser stays valid for its reader. */
        if (!A.corrupt && (old == NULL || old->valid < e->valid)) {
            if (old != NULL)
                entry_unlink(old);
            /* The decoder's room past the valid bytes (the DEFLATE margin,
             * rows below the image) goes back to the arena. */
            const uint64_t keep = e->valid > 0 ? (e->valid + UNIT - 1) / UNIT : 1;
            if (keep < e->nunits) {
                bits_set(e->unit_off + keep, e->nunits - keep, 0);
                used_sub((e->nunits - keep) * UNIT);
                e->nunits = (uint32_t)keep;
                e->capacity = keep * UNIT;
            }
            hash_insert(e);
            lru_push_head(e);
            A.h->entries_linked++;
            A.h->inserts++;
            e->state = ST_PUBLISHED;    /* last: what repair() trusts */
        }
        gen_close(e);
    }
    unlock();
}

/* Entries of this arena among es[0..n) (NULL and others skipped) under
 * one acquisition of the lock. */
/* An entry of this arena among es[] that a hazard of this process does
 * not cover (a pin under the lock, or one taken before fork). */
static int
release_lockless(const raster__tile_entry_t *te, int s)
{
    if (te == NULL || !raster__shm_owns(te))
        return 1;
    return s >= 0 && hazard_drop(s, index_of((const shm_entry_t *)te));
}

/* Up to CHUNK entries: hazards dropped without the lock, pins under one
 * acquisition of it. */
static void
release_chunk(const raster__tile_entry_t *const *es, int64_t n, int s)
{
    int64_t pinned = 0;
    uint8_t left[CHUNK];
    for (int64_t i = 0; i < n; i++)
        pinned += left[i] = !release_lockless(es[i], s);
    if (pinned == 0 || !lock())
        return;
    for (int64_t i = 0; i < n; i++)
        if (left[i])
            hit_drop((shm_entry_t *)es[i]);   /* shared memory: ours to count */
    unlock();
}

/* Entries of this arena among es[0..n) (NULL and others skipped). */
void
raster__shm_release_many(const raster__tile_entry_t *const *es, int64_t n)
{
    if (A.h == NULL)
        return;
    const int s = atomic_load(&A.slot);
    for (int64_t at = 0; at < n; at += CHUNK)
        release_chunk(es + at, n - at < CHUNK ? n - at : CHUNK, s);
}

void
raster__shm_release(const raster__tile_entry_t *ce)
{
    raster__shm_release_many(&ce, 1);
}

/* Evicts unused entries from the cold end while more than 'b' bytes are in
 * use; with 'b' == 0, unlinks every entry (in use or not). */
static void
evict_to(uint64_t b)
{
    shm_entry_t *E = entries();
    uint64_t steps = 0;
    for (int32_t v = A.h->lru_tail; v >= 0 && A.h->bytes_used > b && !A.corrupt;) {
        if (!idx_ok(v) || ++steps > A.g.nentries) {
            corrupt("a cycle or a bad index in the LRU list");
            return;
        }
        const int32_t prev = E[v].prev;
        if (entry_unused(&E[v])) {
            entry_unlink(&E[v]);
            A.h->evictions++;
        }
        v = prev;
    }
    steps = 0;
    if (b == 0)         /* off: nothing stays linked, in use or not */
        for (int32_t v = A.h->lru_head; v >= 0 && !A.corrupt;) {
            if (!idx_ok(v) || ++steps > A.g.nentries) {
                corrupt("a cycle or a bad index in the LRU list");
                return;
            }
            const int32_t nx = E[v].next;
            entry_unlink(&E[v]);
            v = nx;
        }
}

size_t
raster__shm_set_budget(size_t budget)
{
    const uint64_t b = budget < A.g.capacity ? budget : A.g.capacity;
    if (!lock())
        return 0;
    atomic_store(&A.h->budget, b);
    evict_to(b);
    unlock();
    return (size_t)b;
}

/* The stats' reason from the arena, when tile_cache.c has none. */
static void
stats_reason(raster_tile_cache_stats_t *s, uint64_t failures, uint64_t committed)
{
    if (s->reason[0] != '\0')
        return;
    if (A.slot < 0 && A.slot_failed.tv_sec != 0)
        snprintf(s->reason, sizeof s->reason,
                 "all %llu process slots of the arena are held by live processes: this process reads "
                 "uncached until one frees",
                 (unsigned long long)A.g.nprocs);
    else if (A.note[0] != '\0')
        snprintf(s->reason, sizeof s->reason, "%s", A.note);
    else if (failures > 0)
        snprintf(s->reason, sizeof s->reason,
                 "/dev/shm ran out of space with %llu MiB of the arena reserved: the cache evicts within "
                 "that (%llu failed reservations)",
                 (unsigned long long)(committed >> 20), (unsigned long long)failures);
}

void
raster__shm_stats(raster_tile_cache_stats_t *s)
{
    snprintf(s->name, sizeof s->name, "%s", A.name);
    if (!lock()) {
        stats_reason(s, 0, 0);
        return;
    }
    if (A.slot < 0 && A.slot_failed.tv_sec != 0)
        slot_take(1);           /* a slot may have freed */
    s->attached_processes = sweep();
    s->budget_bytes = (size_t)atomic_load(&A.h->budget);
    s->capacity_bytes = (size_t)A.g.capacity;
    s->bytes_used = (size_t)A.h->bytes_used;
    s->entries = A.h->entries_linked;
    s->hits = A.h->hits;
    s->misses = A.h->misses;
    for (uint32_t p = 0; p < slots_hw(); p++)       /* lock-free counts of live slots */
        if (procs()[p].pid != 0) {
            s->hits += atomic_load_explicit(&procs()[p].hits, memory_order_relaxed);
            s->misses += atomic_load_explicit(&procs()[p].misses, memory_order_relaxed);
        }
    s->inserts = A.h->inserts;
    s->evictions = A.h->evictions;
    s->block_mallocs = A.h->commits;
    s->repairs = A.h->repairs;
    s->reclaimed_pins = A.h->reclaimed_pins;
    const uint64_t failures = A.h->commit_failures, committed = A.h->committed;
    unlock_now();
    stats_reason(s, failures, committed);
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
    if (A.h == NULL || !lock()) {
        snprintf(why, n, "not attached");
        return 0;
    }
    sweep();
    int ok = tables_valid(why, n);
    if (ok && A.h->bytes_used > atomic_load(&A.h->budget) && A.h->entries_linked > 0) {
        /* Entries in use may outlast a lowered budget; published ones not. */
        int64_t pinned = 0;
        for (uint32_t i = 0; i < hw(); i++)
            pinned += entries()[i].state != ST_FREE &&
                      (entries()[i].refs > 0 || entries()[i].state == ST_RETIRED || hazarded((int32_t)i));
        if (pinned == 0) {
            snprintf(why, n, "bytes_used %llu over the budget %llu", (unsigned long long)A.h->bytes_used,
                     (unsigned long long)atomic_load(&A.h->budget));
            ok = 0;
        }
    }
    unlock_now();
    return ok;
}

void *
raster__shm_test_tables(size_t *nbytes)
{
    if (A.h == NULL) {
        *nbytes = 0;
        return NULL;
    }
    *nbytes = (size_t)(A.g.off_data - A.g.off_procs);
    return A.base + A.g.off_procs;
}

int
raster__shm_test_reattach(char *why, size_t n)
{
    pthread_mutex_lock(&A.local);
    const int kept = A.fd;      /* holds the old slot's lock: a live process */
    munmap(A.base, A.map_nbytes);
    A.h = NULL;
    A.base = NULL;
    A.fd = -1;
    A.slot = -1;
    A.note[0] = '\0';
    pthread_mutex_unlock(&A.local);
    const int ok = raster__shm_attach(MIN_CAPACITY, 0, why, n);
    close(kept);                /* the old slot is a dead process's now */
    return ok;
}

/* Hand-made corruptions for check_shm_arena (names in shm_arena.h). */
int
raster__shm_test_corrupt(const char *what)
{
    if (A.h == NULL || !lock())
        return 0;
    shm_entry_t *E = entries();
    int32_t pub = -1, pub2 = -1;
    for (uint32_t i = 0; i < hw(); i++)
        if (E[i].state == ST_PUBLISHED) {
            pub2 = pub >= 0 && pub2 < 0 ? (int32_t)i : pub2;
            pub = pub < 0 ? (int32_t)i : pub;
        }
    int done = 1;
    if (strcmp(what, "hash-cycle") == 0 && pub >= 0)
        E[pub].hnext = pub;                     /* a lookup of another key in its bucket loops */
    else if (strcmp(what, "lru-cycle") == 0 && pub2 >= 0)
        E[pub].next = pub2, E[pub2].next = pub, E[pub].prev = pub2, E[pub2].prev = pub,
        A.h->lru_tail = pub;
    else if (strcmp(what, "index-out-of-range") == 0 && pub >= 0)
        E[pub].prev = (int32_t)A.g.nentries + 7, E[pub].hnext = (int32_t)A.g.nentries * 3;
    else if (strcmp(what, "units-out-of-range") == 0 && pub >= 0)
        E[pub].unit_off = A.g.nunits + 100;
    else if (strcmp(what, "pin-bad-entry") == 0 && A.slot >= 0)
        procs()[A.slot].pins[NPINS - 1] = (shm_pin_t){(int32_t)A.g.nentries + 50, 3};
    else if (strcmp(what, "free-list-in-use") == 0 && pub >= 0)
        A.h->free_head = pub;
    else
        done = 0;
    /* Leave without the rebuild the next lock would do for a dead holder. */
    atomic_store(&A.h->dirty, 0);
    ofd_lock(A.fd, F_UNLCK, LOCK_ARENA_BYTE, 1, 0);
    pthread_mutex_unlock(&A.threads);
    return done;
}
