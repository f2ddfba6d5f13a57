/*
 * check_tile_cache.c - the decoded-segment cache: off by default, hits and
 * misses by (dataset id, segment) and decoded prefix, least-recently-used
 * eviction within the byte budget, entries in use never freed under a
 * reader, batches of keys pinned and let go together, budget changes, keys
 * that tell every field apart, no allocation in a steady full cache,
 * threaded stresses (single and batched readers) that check every byte they
 * read, and readers that only hit while a writer evicts and reinserts other
 * keys into the same memory (every byte of a hit is its own key's).
 *
 * The cache is on by default in the suite's own shared arena (test_util.h),
 * so these run against shm_arena.c (and with RASTERLOADER_TILE_CACHE_SHARED=0
 * against the private cache); every test starts from budget 0 and looks at
 * differences of the stats, so the suite also passes with CK_FORK=no.
 */
#include "test_util.h"
#include "cache/cache.h"
#include "cache/shm_arena.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SEG 4096

/* Keys of made-up files: file[0] is a fresh id per "file". */
static uint64_t
new_id(void)
{
    static uint64_t next = 1;
    return __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
}

static raster__tile_key_t
key(uint64_t id, int64_t seg)
{
    raster__tile_key_t k;
    memset(&k, 0, sizeof k);
    k.file[0] = id;
    k.seg = seg;
    return k;
}

static const raster__tile_entry_t *
get(uint64_t id, int64_t seg, size_t min_valid)
{
    const raster__tile_key_t k = key(id, seg);
    return raster__tile_cache_get(&k, min_valid);
}

static void
put(raster__tile_entry_t *e, uint64_t id, int64_t seg, size_t valid)
{
    const raster__tile_key_t k = key(id, seg);
    raster__tile_cache_put(e, &k, valid);
}

static raster_tile_cache_stats_t
cstats(void)
{
    raster_tile_cache_stats_t s;
    raster_tile_cache_get_stats(&s);
    return s;
}

static void
reset(size_t budget)
{
    raster_tile_cache_set_budget(0);
    raster_tile_cache_set_budget(budget);
}

/* Decodes (fills) and publishes segment 'seg' of 'id' with 'valid' bytes,
 * as a reader does on a miss; returns 1 if it could reserve. */
static int
insert(uint64_t id, int64_t seg, size_t cap, size_t valid)
{
    raster__tile_entry_t *e = raster__tile_cache_reserve(cap);
    if (e == NULL)
        return 0;
    memset(raster__tile_entry_data(e), (int)((id * 31 + (uint64_t)seg) & 0xff), valid);
    put(e, id, seg, valid);
    raster__tile_cache_release(e);
    return 1;
}

static int
present(uint64_t id, int64_t seg, size_t min_valid)
{
    const raster__tile_entry_t *e = get(id, seg, min_valid);
    if (e == NULL)
        return 0;
    const uint8_t *d = raster__tile_entry_data(e);
    ck_assert_uint_eq(d[0], (id * 31 + (uint64_t)seg) & 0xff);
    raster__tile_cache_release(e);
    return 1;
}

/* On by default, in the shared arena (this suite's own, see test_util.h),
 * with the default budget unless RASTERLOADER_TILE_CACHE_BYTES says. */
START_TEST(on_by_default_in_the_shared_arena)
{
    raster_tile_cache_stats_t s = cstats();
    if (getenv("RASTERLOADER_TILE_CACHE_BYTES") == NULL && getenv("RASTERLOADER_TILE_CACHE_SHARED") == NULL) {
        ck_assert_int_eq(s.mode, RASTER_TILE_CACHE_SHARED);
        ck_assert_msg(s.reason[0] == '\0', "reason: %s", s.reason);
        ck_assert_int_ge(s.attached_processes, 1);
        ck_assert_ptr_nonnull(strstr(s.name, getenv("RASTERLOADER_TILE_CACHE_NAME")));
        ck_assert_uint_gt(s.budget_bytes, 0);
        ck_assert_uint_le(s.budget_bytes, raster__tile_cache_default_budget());
        ck_assert_int_eq(raster__tile_cache_enabled(), 1);
    }
    /* Off: nothing is reserved or found, and nothing is counted. */
    raster_tile_cache_set_budget(0);
    s = cstats();
    ck_assert_uint_eq(s.budget_bytes, 0);
    ck_assert_int_eq(raster__tile_cache_enabled(), 0);
    ck_assert_ptr_null(raster__tile_cache_reserve(SEG));
    ck_assert_ptr_null(get(1, 0, 1));
    ck_assert_uint_eq(cstats().misses, s.misses);
    raster__tile_cache_release(NULL);
    put(NULL, 1, 0, 0);
    raster_tile_cache_get_stats(NULL);
}
END_TEST

START_TEST(ids_are_unique)
{
    const uint64_t a = new_id(), b = new_id();
    ck_assert_uint_ne(a, 0);
    ck_assert_uint_gt(b, a);
}
END_TEST

START_TEST(hit_miss_and_prefixes)
{
    reset(16 * SEG);
    const raster_tile_cache_stats_t s0 = cstats();
    const uint64_t id = new_id(), other = new_id();
    ck_assert_int_eq(present(id, 3, 1), 0);
    ck_assert(insert(id, 3, SEG, SEG / 2));
    ck_assert_int_eq(present(id, 3, SEG / 2), 1);     /* the prefix it has */
    ck_assert_int_eq(present(id, 3, SEG), 0);         /* more rows than decoded */
    ck_assert_int_eq(present(other, 3, 1), 0);        /* another dataset */
    ck_assert_int_eq(present(id, 4, 1), 0);           /* another segment */
    ck_assert(insert(id, 3, SEG, SEG));               /* the longer prefix replaces it */
    ck_assert_int_eq(present(id, 3, SEG), 1);
    ck_assert(insert(id, 3, SEG, SEG / 4));           /* a shorter one does not */
    ck_assert_int_eq(present(id, 3, SEG), 1);
    const raster_tile_cache_stats_t s = cstats();
    ck_assert_uint_eq(s.hits - s0.hits, 3);
    ck_assert_uint_eq(s.misses - s0.misses, 4);
    ck_assert_uint_eq(s.inserts - s0.inserts, 2);
    ck_assert_int_eq(s.entries, 1);
    ck_assert_uint_eq(s.bytes_used, SEG);             /* replaced and losing entries freed */
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);
    ck_assert_int_eq(cstats().entries, 0);
}
END_TEST

START_TEST(least_recently_used_goes_first)
{
    reset(3 * SEG);
    const raster_tile_cache_stats_t s0 = cstats();
    const uint64_t id = new_id();
    for (int64_t seg = 0; seg < 3; seg++)
        ck_assert(insert(id, seg, SEG, SEG));
    ck_assert(present(id, 0, 1));         /* 0 is now the most recent: 1 is coldest */
    ck_assert(insert(id, 3, SEG, SEG));
    ck_assert(!present(id, 1, 1));
    ck_assert(present(id, 0, 1) && present(id, 2, 1) && present(id, 3, 1));
    const raster_tile_cache_stats_t s = cstats();
    ck_assert_uint_eq(s.evictions - s0.evictions, 1);
    ck_assert_uint_le(s.bytes_used, 3 * SEG);
    ck_assert_int_eq(s.entries, 3);
    /* Larger than the whole budget: never cached. */
    ck_assert_ptr_null(raster__tile_cache_reserve(4 * SEG));
    raster_tile_cache_set_budget(0);
}
END_TEST

START_TEST(entries_in_use_are_never_freed)
{
    reset(2 * SEG);
    const uint64_t id = new_id();
    ck_assert(insert(id, 0, SEG, SEG));
    ck_assert(insert(id, 1, SEG, SEG));
    const raster__tile_entry_t *a = get(id, 0, SEG);
    const raster__tile_entry_t *b = get(id, 1, SEG);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    /* Full, and everything is pinned: no room, and no eviction under readers. */
    ck_assert_ptr_null(raster__tile_cache_reserve(SEG));
    ck_assert_uint_eq(cstats().bytes_used, 2 * SEG);
    /* Turning the cache off unlinks them; their memory stays until release. */
    raster_tile_cache_set_budget(0);
    ck_assert_int_eq(cstats().entries, 0);
    ck_assert_uint_eq(cstats().bytes_used, 2 * SEG);
    ck_assert_uint_eq(((const uint8_t *)raster__tile_entry_data(a))[SEG - 1], (id * 31) & 0xff);
    raster__tile_cache_release(a);
    ck_assert_uint_eq(cstats().bytes_used, SEG);
    raster__tile_cache_release(b);
    ck_assert_uint_eq(cstats().bytes_used, 0);
}
END_TEST

/* get_many() pins every hit of a batch under one lock (a key twice: two
 * pins of one entry) and counts misses one by one; the pinned entries
 * survive eviction; release_many() (NULLs skipped) drops every pin. */
START_TEST(batches_pin_and_release_together)
{
    reset(4 * SEG);
    const raster_tile_cache_stats_t s0 = cstats();
    const uint64_t id = new_id();
    for (int64_t seg = 0; seg < 4; seg++)
        ck_assert(insert(id, seg, SEG, SEG / 2));
    const raster__tile_key_t keys[6] = {key(id, 0), key(id, 9), key(id, 1), key(id, 2), key(id, 0), key(id, 3)};
    const size_t need[6] = {SEG / 2, 1, SEG, 1, 1, SEG / 2};    /* seg 1: more than decoded */
    const raster__tile_entry_t *got[6];
    raster__tile_cache_get_many(keys, need, 6, got);
    const int hit[6] = {1, 0, 0, 1, 1, 1};
    for (int i = 0; i < 6; i++) {
        ck_assert_msg((got[i] != NULL) == hit[i], "key %d: %s", i, got[i] ? "hit" : "miss");
        if (got[i] != NULL)
            ck_assert_uint_eq(((const uint8_t *)raster__tile_entry_data(got[i]))[SEG / 2 - 1],
                              (id * 31 + (uint64_t)keys[i].seg) & 0xff);
    }
    ck_assert_ptr_eq(got[0], got[4]);
    raster_tile_cache_stats_t s = cstats();
    ck_assert_uint_eq(s.hits - s0.hits, 4);
    ck_assert_uint_eq(s.misses - s0.misses, 2);
    /* Full, and all pinned but seg 1: inserts evict seg 1, then each other (never a pinned one). */
    ck_assert(insert(id, 10, SEG, SEG));
    ck_assert(insert(id, 11, SEG, SEG));
    ck_assert(!present(id, 1, 1) && !present(id, 10, 1));
    ck_assert(present(id, 0, 1) && present(id, 2, 1) && present(id, 3, 1));
    /* One release_many drops all five pins (seg 0 twice). */
    raster__tile_cache_release_many(got, 6);
    raster_tile_cache_set_budget(SEG);
    s = cstats();
    ck_assert_uint_le(s.bytes_used, SEG);
    raster__tile_cache_release_many(NULL, 0);
    raster__tile_cache_get_many(NULL, NULL, 0, NULL);
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);
}
END_TEST

START_TEST(lower_budget_evicts_at_once)
{
    reset(8 * SEG);
    const uint64_t id = new_id();
    for (int64_t seg = 0; seg < 8; seg++)
        ck_assert(insert(id, seg, SEG, SEG));
    ck_assert_int_eq(cstats().entries, 8);
    raster_tile_cache_set_budget(3 * SEG);
    const raster_tile_cache_stats_t s = cstats();
    ck_assert_int_eq(s.entries, 3);
    ck_assert_uint_eq(s.bytes_used, 3 * SEG);
    ck_assert(present(id, 7, 1) && present(id, 6, 1) && present(id, 5, 1));
    raster_tile_cache_set_budget(0);
}
END_TEST

/* Every word of the key tells entries apart: the file identity (each of
 * its five words: a rewritten file differs in one), the IFD, the segment. */
START_TEST(every_key_field_tells_entries_apart)
{
    reset(64 * SEG);
    const uint64_t id = new_id();
    raster__tile_key_t base = key(id, 7);
    base.file[1] = 11, base.file[2] = 22, base.file[3] = 33, base.file[4] = 44, base.ifd = 0;
    raster__tile_entry_t *e = raster__tile_cache_reserve(SEG);
    ck_assert_ptr_nonnull(e);
    raster__tile_cache_put(e, &base, SEG);
    raster__tile_cache_release(e);
    const raster__tile_entry_t *h = raster__tile_cache_get(&base, SEG);
    ck_assert_ptr_nonnull(h);
    raster__tile_cache_release(h);
    for (int f = 0; f < 7; f++) {
        raster__tile_key_t k = base;
        if (f < 5)
            k.file[f]++;
        else if (f == 5)
            k.ifd++;
        else
            k.seg++;
        ck_assert_msg(raster__tile_cache_get(&k, 1) == NULL, "field %d does not tell entries apart", f);
    }
    raster_tile_cache_set_budget(0);
}
END_TEST

START_TEST(steady_full_cache_does_not_allocate)
{
    reset(8 * SEG);
    const uint64_t id = new_id();
    for (int64_t seg = 0; seg < 8; seg++)
        ck_assert(insert(id, seg, SEG, SEG));
    const raster_tile_cache_stats_t s0 = cstats();
    for (int64_t seg = 8; seg < 1000; seg++)
        ck_assert(insert(id, seg, SEG, SEG));
    const raster_tile_cache_stats_t s = cstats();
    ck_assert_uint_eq(s.block_mallocs, s0.block_mallocs);
    ck_assert_uint_eq(s.evictions - s0.evictions, 992);
    ck_assert_uint_eq(s.bytes_used, 8 * SEG);
    /* A different size needs a new block and frees the victims it evicts
     * (the shared arena allocates from its own memory, never the system). */
    ck_assert(insert(id, 5000, 2 * SEG, 2 * SEG));
    if (cstats().mode == RASTER_TILE_CACHE_PRIVATE)
        ck_assert_uint_eq(cstats().block_mallocs, s0.block_mallocs + 1);
    else
        ck_assert_uint_eq(cstats().block_mallocs, s0.block_mallocs);
    ck_assert_uint_le(cstats().bytes_used, 8 * SEG);
    raster_tile_cache_set_budget(0);
}
END_TEST

/* ------------------------------ threads -------------------------------- */

#define STRESS_THREADS 4
#define STRESS_KEYS 64

typedef struct stress {
    uint64_t ids[2];
    unsigned seed;
    int bad;
} stress_t;

static uint8_t
pattern(uint64_t id, int64_t seg, size_t i)
{
    return (uint8_t)(id * 131 + (uint64_t)seg * 7 + i);
}

static void *
stress_thread(void *arg)
{
    stress_t *st = arg;
    for (int round = 0; round < 4000; round++) {
        const uint64_t id = st->ids[rand_r(&st->seed) & 1];
        const int64_t seg = rand_r(&st->seed) % STRESS_KEYS;
        const size_t valid = SEG / 4 * (size_t)(1 + rand_r(&st->seed) % 4);
        const raster__tile_entry_t *e = get(id, seg, valid);
        if (e == NULL) {
            raster__tile_entry_t *n = raster__tile_cache_reserve(SEG);
            if (n == NULL)
                continue;
            uint8_t *d = raster__tile_entry_data(n);
            for (size_t i = 0; i < valid; i++)
                d[i] = pattern(id, seg, i);
            put(n, id, seg, valid);
            e = n;
        }
        const uint8_t *d = raster__tile_entry_data(e);
        if (raster__tile_entry_valid(e) < valid)
            st->bad++;
        for (size_t i = 0; i < valid; i += 97)
            st->bad += d[i] != pattern(id, seg, i);
        raster__tile_cache_release(e);
    }
    return NULL;
}

/* As a window's read does: a batch of keys looked up together, the misses
 * filled one by one, every byte checked, the batch let go together. */
static void *
stress_batch_thread(void *arg)
{
    enum { BATCH = 4 };
    stress_t *st = arg;
    for (int round = 0; round < 1000; round++) {
        raster__tile_key_t keys[BATCH];
        size_t need[BATCH];
        const raster__tile_entry_t *got[BATCH];
        for (int j = 0; j < BATCH; j++) {
            keys[j] = key(st->ids[rand_r(&st->seed) & 1], rand_r(&st->seed) % STRESS_KEYS);
            need[j] = SEG / 4 * (size_t)(1 + rand_r(&st->seed) % 4);
        }
        raster__tile_cache_get_many(keys, need, BATCH, got);
        for (int j = 0; j < BATCH; j++) {
            const uint64_t id = keys[j].file[0];
            const int64_t seg = keys[j].seg;
            if (got[j] == NULL) {
                raster__tile_entry_t *n = raster__tile_cache_reserve(SEG);
                if (n == NULL)
                    continue;
                uint8_t *d = raster__tile_entry_data(n);
                for (size_t i = 0; i < need[j]; i++)
                    d[i] = pattern(id, seg, i);
                put(n, id, seg, need[j]);
                got[j] = n;
            }
            const uint8_t *d = raster__tile_entry_data(got[j]);
            st->bad += raster__tile_entry_valid(got[j]) < need[j];
            for (size_t i = 0; i < need[j]; i += 97)
                st->bad += d[i] != pattern(id, seg, i);
        }
        raster__tile_cache_release_many(got, BATCH);
    }
    return NULL;
}

/* Single and batched readers at once (the batched ones pin up to 4 entries
 * each, in a budget of 24 entries: eviction never frees a pinned one). */
static void
stress_run(void *(*even)(void *), void *(*odd)(void *))
{
    reset(24 * SEG);      /* well under the key space: constant eviction */
    const raster_tile_cache_stats_t s0 = cstats();
    stress_t st[STRESS_THREADS];
    pthread_t tid[STRESS_THREADS];
    const uint64_t ids[2] = {new_id(), new_id()};
    for (int i = 0; i < STRESS_THREADS; i++) {
        st[i] = (stress_t){{ids[0], ids[1]}, (unsigned)(1234 + i), 0};
        ck_assert_int_eq(pthread_create(&tid[i], NULL, i % 2 ? odd : even, &st[i]), 0);
    }
    for (int i = 0; i < STRESS_THREADS; i++) {
        pthread_join(tid[i], NULL);
        ck_assert_int_eq(st[i].bad, 0);
    }
    const raster_tile_cache_stats_t s = cstats();
    ck_assert_uint_gt(s.hits - s0.hits, 0);
    ck_assert_uint_gt(s.evictions - s0.evictions, 0);
    ck_assert_uint_le(s.bytes_used, 24 * SEG);
    if (s.mode == RASTER_TILE_CACHE_SHARED) {
        char why[256] = "";
        ck_assert_msg(raster__shm_check(why, sizeof why), "arena after the threads: %s", why);
    }
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);
}

START_TEST(threads_read_batches_only_what_was_written)
{
    stress_run(stress_batch_thread, stress_thread);
}
END_TEST

START_TEST(threads_read_only_what_was_written)
{
    stress_run(stress_thread, stress_thread);
}
END_TEST

/* ------------------------------ hits under churn ------------------------ */

/* Readers that only look up (the lock-free path of both caches), while one
 * thread evicts and reinserts other keys into the same descriptors and
 * memory: a hit holds every byte of its own key, never another key's. */
enum { CHURN_READERS = 3, CHURN_HITS = 3000, CHURN_KEYS = 32, CHURN_HELD = 6 };

typedef struct churn {
    uint64_t id;
    unsigned seed;
    atomic_int *readers_left;
    long bad, hits;
} churn_t;

/* Segment 'seg' of 'id' as the writer decodes it: every byte its own. */
static void
churn_fill(uint8_t *d, uint64_t id, int64_t seg)
{
    for (size_t i = 0; i < SEG; i++)
        d[i] = pattern(id, seg, i);
}

static void *
churn_reader(void *arg)
{
    churn_t *c = arg;
    uint8_t *want = malloc(SEG);
    while (c->hits < CHURN_HITS) {     /* the writer goes on until then */
        const int64_t seg = rand_r(&c->seed) % CHURN_KEYS;
        const raster__tile_entry_t *e = get(c->id, seg, SEG);
        if (e == NULL)
            continue;
        churn_fill(want, c->id, seg);
        c->bad += raster__tile_entry_valid(e) < SEG || memcmp(raster__tile_entry_data(e), want, SEG) != 0;
        c->hits++;
        raster__tile_cache_release(e);
    }
    free(want);
    atomic_fetch_sub(c->readers_left, 1);
    return NULL;
}

/* Inserts the keys round and round (the budget holds CHURN_HELD of them)
 * until every reader is done. */
static void *
churn_writer(void *arg)
{
    churn_t *c = arg;
    for (int64_t n = 0; atomic_load(c->readers_left) > 0; n++) {
        const int64_t seg = n % CHURN_KEYS;
        const raster__tile_entry_t *e = get(c->id, seg, SEG);
        if (e != NULL) {
            raster__tile_cache_release(e);
            continue;
        }
        raster__tile_entry_t *w = raster__tile_cache_reserve(SEG);
        if (w == NULL)
            continue;
        churn_fill(raster__tile_entry_data(w), c->id, seg);
        put(w, c->id, seg, SEG);
        raster__tile_cache_release(w);
    }
    return NULL;
}

START_TEST(hits_hold_their_own_bytes_while_others_evict)
{
    reset(CHURN_HELD * SEG);
    const raster_tile_cache_stats_t s0 = cstats();
    atomic_int left = CHURN_READERS;
    const uint64_t id = new_id();
    churn_t c[CHURN_READERS + 1];
    pthread_t tid[CHURN_READERS + 1];
    for (int i = 0; i <= CHURN_READERS; i++) {
        c[i] = (churn_t){id, (unsigned)(77 + i), &left, 0, 0};
        ck_assert_int_eq(pthread_create(&tid[i], NULL, i == CHURN_READERS ? churn_writer : churn_reader, &c[i]), 0);
    }
    long hits = 0;
    for (int i = 0; i <= CHURN_READERS; i++) {
        pthread_join(tid[i], NULL);
        ck_assert_int_eq(c[i].bad, 0);
        hits += c[i].hits;
    }
    const raster_tile_cache_stats_t s = cstats();
    ck_assert_uint_ge(s.hits - s0.hits, (uint64_t)hits);
    ck_assert_uint_gt(s.evictions - s0.evictions, 0);
    ck_assert_uint_le(s.bytes_used, CHURN_HELD * SEG);
    if (s.mode == RASTER_TILE_CACHE_SHARED) {
        char why[256] = "";
        ck_assert_msg(raster__shm_check(why, sizeof why), "arena after the churn: %s", why);
    }
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);
}
END_TEST

static Suite *
tile_cache_suite(void)
{
    Suite *s = suite_create("tile_cache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, on_by_default_in_the_shared_arena);
    tcase_add_test(tc, ids_are_unique);
    tcase_add_test(tc, hit_miss_and_prefixes);
    tcase_add_test(tc, least_recently_used_goes_first);
    tcase_add_test(tc, entries_in_use_are_never_freed);
    tcase_add_test(tc, batches_pin_and_release_together);
    tcase_add_test(tc, lower_budget_evicts_at_once);
    tcase_add_test(tc, every_key_field_tells_entries_apart);
    tcase_add_test(tc, steady_full_cache_does_not_allocate);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, threads_read_only_what_was_written);
    tcase_add_test(tc, threads_read_batches_only_what_was_written);
    tcase_add_test(tc, hits_hold_their_own_bytes_while_others_evict);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(tile_cache_suite)
