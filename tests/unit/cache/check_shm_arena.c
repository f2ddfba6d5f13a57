/*
 * check_shm_arena.c - the machine-wide tile-cache arena across processes:
 * a tile decoded in one process is a hit in a forked one (both ways);
 * workers SIGKILLed in a loop while inserting and while copying hits out
 * (critical sections widened by the test sleep) leave the arena unlocked,
 * consistent (every invariant checked) and with their pins reclaimed,
 * while the survivor keeps reading pixels equal to the GDAL reader's; the
 * budget holds with several processes inserting at once; a process killed
 * while the child it forked lives on has its slot and pins reclaimed (the
 * child does not keep the parent's slot lock); reader threads that hit
 * without the lock while another process evicts and reinserts get every
 * byte of their own key; a process SIGKILLed while its lock-free hits hold
 * hazards keeps its entries from eviction until the sweep finds it dead.
 *
 * Tables corrupted by hand (a cycle in a hash chain or in the LRU list,
 * indices and units out of range, a pin to a bad entry, the free list
 * into an entry in use) are survived by the process that meets them and
 * rebuilt by a process that attaches, with pixels still right; the fuzz
 * harness of the tables (tests/fuzz/fuzz_shm_tables.h) runs on a few fixed
 * inputs.
 *
 * The suite has its own arena (test_util.h); spawned processes, PID
 * namespaces, leftovers, the last slot and the refusal of foreign or
 * corrupted headers are in tests/python/cache/test_tile_cache_shared.py and
 * test_tile_cache_namespaces.py.
 */
#include "test_util.h"
#include "cache/shm_arena.h"
#include "../../fuzz/fuzz_shm_tables.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <libgen.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE "u16_deflate_pred2_tile256_pixel_3b_700x531.tif"

static raster_tile_cache_stats_t
cstats(void)
{
    raster_tile_cache_stats_t s;
    raster_tile_cache_get_stats(&s);
    return s;
}

static void
assert_consistent(const char *when)
{
    char why[256] = "";
    ck_assert_msg(raster__shm_check(why, sizeof why), "%s: %s", when, why);
}

/* The whole raster through the GDAL reader (HWC), the oracle. */
static uint8_t *
whole_of(const char *path, raster_info_t *in)
{
    raster_dataset_t *gd = open_with_reader(path, RASTER_READER_GDAL);
    raster_dataset_info(gd, in);
    const size_t n = raster_view_nbytes(in->dtype, in->height, in->width, in->band_count);
    uint8_t *whole = malloc(n);
    raster_view_t v = raster_view_hwc(whole, in->dtype, in->height, in->width, in->band_count);
    ck_assert_int_eq(raster_read_into(gd, (raster_window_t){0, 0, in->width, in->height}, NULL, &v), RASTER_OK);
    raster_close(gd);
    return whole;
}

/* Reads 'n' random windows through the native reader; returns the number
 * of windows whose pixels differ from 'whole' (or -1 on a failed read). */
static int
read_random(raster_dataset_t *nat, const uint8_t *whole, const raster_info_t *in, unsigned seed, int n)
{
    const int64_t size = raster_dtype_size(in->dtype), nch = in->band_count;
    const size_t row = (size_t)(in->width * nch * size);
    uint8_t *buf = malloc(raster_view_nbytes(in->dtype, 300, 300, (int)nch));
    int bad = 0;
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        const int64_t w = 1 + (int64_t)((seed >> 8) % 300), h = 1 + (int64_t)((seed >> 16) % 300);
        seed = seed * 1103515245u + 12345u;
        const int64_t c = (int64_t)((seed >> 4) % (uint64_t)(in->width - w + 1));
        const int64_t r = (int64_t)((seed >> 12) % (uint64_t)(in->height - h + 1));
        raster_view_t v = raster_view_hwc(buf, in->dtype, h, w, (int)nch);
        if (raster_read_into(nat, (raster_window_t){c, r, w, h}, NULL, &v) != RASTER_OK) {
            free(buf);
            return -1;
        }
        for (int64_t y = 0; y < h; y++)
            if (memcmp(buf + (size_t)(y * w * nch * size), whole + (size_t)(r + y) * row + (size_t)(c * nch * size),
                       (size_t)(w * nch * size)) != 0) {
                bad++;
                break;
            }
    }
    free(buf);
    return bad;
}

/* Whole-raster read through a fresh open: every tile once. */
static void
read_all(const char *path)
{
    raster_dataset_t *nat = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
    raster_info_t in;
    raster_dataset_info(nat, &in);
    const size_t n = raster_view_nbytes(in.dtype, in.height, in.width, in.band_count);
    uint8_t *buf = malloc(n);
    raster_view_t v = raster_view_hwc(buf, in.dtype, in.height, in.width, in.band_count);
    ck_assert_int_eq(raster_read_into(nat, (raster_window_t){0, 0, in.width, in.height}, NULL, &v), RASTER_OK);
    free(buf);
    raster_close(nat);
}

static int
child_status(pid_t pid)
{
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

START_TEST(a_tile_decoded_in_one_process_is_a_hit_in_another)
{
    const char *path = fixture_path(FIXTURE);
    raster_tile_cache_set_budget((size_t)64 << 20);
    raster_tile_cache_set_budget(0);            /* empty */
    raster_tile_cache_set_budget((size_t)64 << 20);
    ck_assert_int_eq(cstats().mode, RASTER_TILE_CACHE_SHARED);
    /* Parent decodes, child hits. */
    read_all(path);
    const raster_tile_cache_stats_t s0 = cstats();
    ck_assert_int_gt(s0.entries, 0);
    pid_t pid = fork();
    if (pid == 0) {
        read_all(path);
        const raster_tile_cache_stats_t s = cstats();
        _exit(s.misses == s0.misses && s.hits >= s0.hits + (uint64_t)s0.entries ? 0 : 1);
    }
    ck_assert_int_eq(child_status(pid), 0);
    /* Empty again: the child decodes, the parent hits. */
    raster_tile_cache_set_budget(0);
    raster_tile_cache_set_budget((size_t)64 << 20);
    pid = fork();
    if (pid == 0) {
        read_all(path);
        _exit(0);
    }
    ck_assert_int_eq(child_status(pid), 0);
    const raster_tile_cache_stats_t s1 = cstats();
    ck_assert_int_gt(s1.entries, 0);
    read_all(path);
    const raster_tile_cache_stats_t s2 = cstats();
    ck_assert_uint_eq(s2.misses, s1.misses);
    ck_assert_uint_ge(s2.hits - s1.hits, (uint64_t)s1.entries);
    ck_assert_int_ge(s2.attached_processes, 1);
    assert_consistent("after the children");
}
END_TEST

/* Children read random windows with the critical sections and the
 * copy-out window widened, and are SIGKILLed at random moments; the parent
 * checks the arena and reads right after every kill. */
START_TEST(workers_killed_mid_insert_and_mid_read_leave_it_consistent)
{
    const char *path = fixture_path(FIXTURE);
    raster_info_t in;
    uint8_t *whole = whole_of(path, &in);
    /* Room for about three tiles of the six: constant inserts and evictions. */
    raster_tile_cache_set_budget(0);
    raster_tile_cache_set_budget((size_t)3 * (256 * 256 * 3 * 2 + 70000));
    const raster_tile_cache_stats_t s0 = cstats();
    raster_dataset_t *nat = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
    const char *stress = getenv("RASTER_STRESS_SCALE");
    const int rounds = stress != NULL && atoi(stress) > 1 ? 4 : 12;
    unsigned seed = 4242;
    for (int round = 0; round < rounds; round++) {
        pid_t kids[2];
        int ready[2];
        ck_assert_int_eq(pipe(ready), 0);
        for (int k = 0; k < 2; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                close(ready[0]);
                raster__shm_test_sleep(1500);
                raster_dataset_t *mine = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
                for (int i = 0;; i++) {
                    if (read_random(mine, whole, &in, (unsigned)(getpid() * 7 + round + i), 4) != 0)
                        _exit(3);       /* a wrong pixel or a failed read */
                    if (i == 0 && write(ready[1], "r", 1) != 1)
                        _exit(4);
                }
            }
        }
        close(ready[1]);
        char c;
        for (int k = 0; k < 2; k++)     /* both are in their read loop */
            ck_assert_int_eq(read(ready[0], &c, 1), 1);
        close(ready[0]);
        seed = seed * 1103515245u + 12345u;
        usleep(5000 + (seed >> 8) % 40000);
        for (int k = 0; k < 2; k++)
            kill(kids[k], SIGKILL);
        for (int k = 0; k < 2; k++) {
            const int st = child_status(kids[k]);
            ck_assert_msg(st == 100 + SIGKILL, "round %d: child ended with %d, not by the kill", round, st);
        }
        assert_consistent("after a kill");
        ck_assert_int_eq(read_random(nat, whole, &in, seed, 8), 0);
    }
    const raster_tile_cache_stats_t s = cstats();
    ck_assert_int_eq(s.attached_processes, 1);          /* the dead were swept */
    ck_assert_uint_gt(s.inserts - s0.inserts, 0);
    /* Where a kill lands is up to the scheduler, so how many kills hit a
     * critical section or a pin is only reported, never asserted (a test
     * must not depend on timing): the assertions are the invariants and
     * pixels after every kill.  That a dead process's pin is reclaimed is
     * proven deterministically by a_dead_parent_slot_is_reclaimed_while_its_child_lives. */
    fprintf(stderr, "killed %d workers: %llu lock repairs, %llu pins reclaimed, %llu inserts\n", 2 * rounds,
            (unsigned long long)(s.repairs - s0.repairs), (unsigned long long)(s.reclaimed_pins - s0.reclaimed_pins),
            (unsigned long long)(s.inserts - s0.inserts));
    /* Nothing is pinned any more: turning it off frees every byte. */
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);
    ck_assert_int_eq(cstats().entries, 0);
    assert_consistent("off");
    raster_close(nat);
    free(whole);
}
END_TEST

START_TEST(the_budget_holds_across_processes)
{
    const size_t budget = (size_t)40 * 4096 * 4;
    raster_tile_cache_set_budget(0);
    raster_tile_cache_set_budget(budget);
    pid_t kids[3];
    for (int k = 0; k < 3; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            int bad = 0;
            for (int i = 0; i < 3000; i++) {
                raster__tile_entry_t *e = raster__tile_cache_reserve(4096 * (size_t)(1 + (i + k) % 4));
                if (e == NULL)
                    continue;
                memset(raster__tile_entry_data(e), k, 4096);
                raster__tile_key_t key;
                memset(&key, 0, sizeof key);
                key.file[0] = 1000 + (uint64_t)k;
                key.seg = i;
                raster__tile_cache_put(e, &key, 4096);
                raster__tile_cache_release(e);
                if (cstats().bytes_used > budget)
                    bad++;
            }
            _exit(bad ? 1 : 0);
        }
    }
    int over = 0;
    for (int i = 0; i < 200; i++) {
        over += cstats().bytes_used > budget;
        usleep(500);
    }
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(child_status(kids[k]), 0);
    ck_assert_int_eq(over, 0);
    const raster_tile_cache_stats_t s = cstats();
    ck_assert_uint_le(s.bytes_used, budget);
    ck_assert_uint_gt(s.evictions, 0);
    assert_consistent("after three inserting processes");
    raster_tile_cache_set_budget(0);
}
END_TEST

/* A process killed while a child it forked lives on: the child shares
 * the open file description the parent's slot lock is on, unless the fork
 * hook gave it one of its own; the dead parent's slot must be reclaimed
 * (and its pin dropped) while the child lives. */
START_TEST(a_dead_parent_slot_is_reclaimed_while_its_child_lives)
{
    const char *path = fixture_path(FIXTURE);
    raster_tile_cache_set_budget(0);
    raster_tile_cache_set_budget((size_t)64 << 20);
    read_all(path);
    const raster_tile_cache_stats_t s0 = cstats();
    ck_assert_int_eq(s0.attached_processes, 1);
    int ready[2], hold[2];
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(hold), 0);
    const pid_t parent = fork();
    if (parent == 0) {
        raster__tile_key_t k;
        memset(&k, 0, sizeof k);
        k.file[0] = 4242;
        raster__tile_entry_t *e = raster__tile_cache_reserve(4096);     /* takes a slot; pinned */
        if (e == NULL || cstats().attached_processes != 2)
            _exit(2);
        if (fork() == 0) {                  /* the child: never uses the cache, lives on */
            /* fork() returns here only after the fork hooks ran, so the
             * child's own descriptor is in place when the test is told. */
            char c;
            close(hold[1]);
            if (write(ready[1], "r", 1) != 1)
                _exit(3);
            _exit(read(hold[0], &c, 1) == 0 ? 0 : 1);
        }
        pause();                            /* until SIGKILLed */
        _exit(4);
    }
    close(ready[1]);
    close(hold[0]);
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    kill(parent, SIGKILL);
    ck_assert_int_eq(child_status(parent), 100 + SIGKILL);
    const raster_tile_cache_stats_t s1 = cstats();     /* the grandchild still runs */
    close(hold[1]);                                     /* now it may end (reaped by init) */
    ck_assert_int_eq(s1.attached_processes, 1);
    ck_assert_uint_eq(s1.reclaimed_pins, s0.reclaimed_pins + 1);
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);          /* nothing is pinned any more */
    assert_consistent("after the parent died");
}
END_TEST

/* ------------------------------ lock-free hits across processes -------- */

#define SEG 4096

static raster__tile_key_t
seg_key(uint64_t id, int64_t seg)
{
    raster__tile_key_t k;
    memset(&k, 0, sizeof k);
    k.file[0] = id;
    k.seg = seg;
    return k;
}

static uint8_t
seg_byte(uint64_t id, int64_t seg, size_t i)
{
    return (uint8_t)(id * 131 + (uint64_t)seg * 7 + i);
}

/* Publishes segment 'seg' of 'id', every byte its own (as a decode does);
 * 1 if there was room. */
static int
seg_insert(uint64_t id, int64_t seg)
{
    raster__tile_entry_t *e = raster__tile_cache_reserve(SEG);
    if (e == NULL)
        return 0;
    uint8_t *d = raster__tile_entry_data(e);
    for (size_t i = 0; i < SEG; i++)
        d[i] = seg_byte(id, seg, i);
    const raster__tile_key_t k = seg_key(id, seg);
    raster__tile_cache_put(e, &k, SEG);
    raster__tile_cache_release(e);
    return 1;
}

static const raster__tile_entry_t *
seg_get(uint64_t id, int64_t seg)
{
    const raster__tile_key_t k = seg_key(id, seg);
    return raster__tile_cache_get(&k, SEG);
}

/* 1 if every byte of hit 'e' is segment 'seg' of 'id''s. */
static int
seg_right(const raster__tile_entry_t *e, uint64_t id, int64_t seg)
{
    const uint8_t *d = raster__tile_entry_data(e);
    for (size_t i = 0; i < SEG; i++)
        if (d[i] != seg_byte(id, seg, i))
            return 0;
    return raster__tile_entry_valid(e) >= SEG;
}

enum { XP_READERS = 2, XP_HITS = 3000, XP_KEYS = 32, XP_HELD = 6 };

typedef struct xp_reader {
    uint64_t id;
    unsigned seed;
    long bad, hits;
} xp_reader_t;

static void *
xp_read(void *arg)
{
    xp_reader_t *r = arg;
    while (r->hits < XP_HITS) {         /* the other process inserts until told */
        const int64_t seg = rand_r(&r->seed) % XP_KEYS;
        const raster__tile_entry_t *e = seg_get(r->id, seg);
        if (e == NULL)
            continue;
        r->bad += !seg_right(e, r->id, seg);
        r->hits++;
        raster__tile_cache_release(e);
    }
    return NULL;
}

/* Reader threads of this process hit without the lock while another
 * process evicts and reinserts the keys round and round in a budget that
 * holds a few: every hit holds exactly its own key's bytes. */
START_TEST(hits_hold_their_own_bytes_while_another_process_evicts)
{
    raster_tile_cache_set_budget(0);
    raster_tile_cache_set_budget(XP_HELD * SEG);
    const uint64_t id = 0x5eed0000u + (uint64_t)getpid();
    int stop[2];
    ck_assert_int_eq(pipe(stop), 0);
    const pid_t pid = fork();
    if (pid == 0) {
        close(stop[1]);
        fcntl(stop[0], F_SETFL, O_NONBLOCK);
        char c;
        for (int64_t n = 0; read(stop[0], &c, 1) < 0; n++) {    /* EOF: the parent is done */
            const raster__tile_entry_t *e = seg_get(id, n % XP_KEYS);
            if (e != NULL)
                raster__tile_cache_release(e);
            else
                seg_insert(id, n % XP_KEYS);
        }
        _exit(0);
    }
    close(stop[0]);
    xp_reader_t r[XP_READERS];
    pthread_t tid[XP_READERS];
    for (int i = 0; i < XP_READERS; i++) {
        r[i] = (xp_reader_t){id, (unsigned)(5 + i), 0, 0};
        ck_assert_int_eq(pthread_create(&tid[i], NULL, xp_read, &r[i]), 0);
    }
    for (int i = 0; i < XP_READERS; i++) {
        pthread_join(tid[i], NULL);
        ck_assert_int_eq(r[i].bad, 0);
    }
    close(stop[1]);
    ck_assert_int_eq(child_status(pid), 0);
    ck_assert_uint_le(cstats().bytes_used, XP_HELD * SEG);
    assert_consistent("after the churn");
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);
}
END_TEST

/* A process SIGKILLed while its hits hold hazards (not pins): its entries
 * survive a lower budget while it lives, and become evictable once the
 * sweep finds its slot unlocked. */
START_TEST(a_process_killed_holding_hazards_lets_its_entries_go)
{
    enum { HELD = 8 };
    raster_tile_cache_set_budget(0);
    raster_tile_cache_set_budget(64 * SEG);
    const uint64_t id = 0x4a2a0000u + (uint64_t)getpid();
    for (int64_t seg = 0; seg < HELD; seg++)
        ck_assert(seg_insert(id, seg));
    const raster_tile_cache_stats_t s0 = cstats();
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    const pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        /* The first lookup after fork takes a slot (under the lock); the
         * hits after it are lock-free. */
        const raster__tile_entry_t *none = seg_get(id, 999);
        for (int64_t seg = 0; seg < HELD; seg++) {
            const raster__tile_entry_t *e = seg_get(id, seg);
            if (none != NULL || e == NULL || !seg_right(e, id, seg))
                _exit(2);
        }
        if (write(ready[1], "r", 1) != 1)
            _exit(3);
        pause();                            /* until SIGKILLed, never released */
        _exit(4);
    }
    close(ready[1]);
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    raster_tile_cache_set_budget(SEG);      /* nothing it holds may go */
    raster_tile_cache_stats_t s = cstats();
    ck_assert_int_eq(s.entries, HELD);
    ck_assert_uint_eq(s.bytes_used, HELD * SEG);
    assert_consistent("while it holds hazards");
    kill(pid, SIGKILL);
    ck_assert_int_eq(child_status(pid), 100 + SIGKILL);
    s = cstats();                           /* sweeps: its slot and hazards go */
    ck_assert_int_eq(s.attached_processes, 1);
    ck_assert_uint_eq(s.reclaimed_pins, s0.reclaimed_pins);     /* hazards, not pins */
    raster_tile_cache_set_budget(SEG);
    ck_assert_uint_le(cstats().bytes_used, SEG);
    assert_consistent("after it died");
    raster_tile_cache_set_budget(0);
    ck_assert_uint_eq(cstats().bytes_used, 0);
}
END_TEST

static const char *const corruptions[] = {"hash-cycle",         "lru-cycle",     "index-out-of-range",
                                          "units-out-of-range", "pin-bad-entry", "free-list-in-use"};

/* One corruption: the process that meets it reads right pixels (the bad
 * link is noticed, the operation misses, the tables are rebuilt); made
 * again, a process attaching checks the tables whole and rebuilds them. */
START_TEST(corrupted_tables_are_rebuilt_never_trusted)
{
    const char *what = corruptions[_i];
    const char *path = fixture_path(FIXTURE);
    raster_info_t in;
    uint8_t *whole = whole_of(path, &in);
    raster_tile_cache_set_budget(0);
    raster_tile_cache_set_budget((size_t)64 << 20);
    read_all(path);
    raster_dataset_t *nat = open_with_reader(path, RASTER_READER_NATIVE_TIFF);
    ck_assert_msg(raster__shm_test_corrupt(what), "%s: not applied", what);
    ck_assert_int_eq(read_random(nat, whole, &in, 11, 40), 0);
    read_all(path);                                     /* two published entries again */
    const uint64_t repairs = cstats().repairs;
    ck_assert_msg(raster__shm_test_corrupt(what), "%s: not applied again", what);
    char why[256] = "";
    ck_assert_msg(raster__shm_test_reattach(why, sizeof why), "%s: %s", what, why);
    assert_consistent(what);
    const raster_tile_cache_stats_t s = cstats();
    ck_assert_uint_gt(s.repairs, repairs);
    ck_assert_msg(strstr(s.reason, "inconsistent") && strstr(s.reason, "rebuilt"), "%s: reason '%s'", what,
                  s.reason);
    ck_assert_int_eq(read_random(nat, whole, &in, 12, 40), 0);
    assert_consistent(what);
    raster_close(nat);
    free(whole);
}
END_TEST

/* The tables' fuzz harness on fixed inputs: zeros, ones, bytes from a
 * generator (whole-region and spliced modes), and the saved crashes, in an
 * arena of its own. */
START_TEST(the_tables_fuzz_harness_on_fixed_inputs)
{
    char tag[32];
    snprintf(tag, sizeof tag, "t%dfz", (int)getpid());
    setenv("RASTERLOADER_TILE_CACHE_NAME", tag, 1);
    setenv("RASTERLOADER_TILE_CACHE_TEST_NPROCS", "4", 1);
    uint8_t in[4096];
    unsigned seed = 99;
    for (int round = 0; round < 24; round++) {
        for (size_t i = 0; i < sizeof in; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = round < 2 ? (uint8_t)(round ? 0xff : 0) : round < 4 ? (uint8_t)(i % 7 == 0 ? 0xff : 1)
                                                                       : (uint8_t)(seed >> 16);
        }
        in[0] = (uint8_t)(round & 1 ? in[0] | 1 : in[0] & ~1u);   /* both modes */
        fuzz_shm_tables_one(in, round < 12 ? sizeof in : 64 + (size_t)round * 13);
    }
    /* The inputs the fuzzer crashed on (tests/corpus/fuzz_shm_tables). */
    char src[1024], dir[1200];
    snprintf(src, sizeof src, "%s", __FILE__);
    snprintf(dir, sizeof dir, "%s/../../corpus/fuzz_shm_tables", dirname(src));
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s", dir);
    int replayed = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char path[1500];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = e->d_name[0] == '.' ? NULL : fopen(path, "rb");
        if (f == NULL)
            continue;
        const size_t n = fread(in, 1, sizeof in, f);
        fclose(f);
        fuzz_shm_tables_one(in, n);
        replayed++;
    }
    closedir(d);
    ck_assert_int_ge(replayed, 2);
    raster__shm_detach();
    ck_assert_int_eq(shm_unlink(raster__shm_name()), -1);      /* the last one left removed it */
}
END_TEST

static Suite *
shm_arena_suite(void)
{
    Suite *s = suite_create("shm_arena");
    TCase *tc = tcase_create("processes");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, a_tile_decoded_in_one_process_is_a_hit_in_another);
    tcase_add_test(tc, workers_killed_mid_insert_and_mid_read_leave_it_consistent);
    tcase_add_test(tc, the_budget_holds_across_processes);
    tcase_add_test(tc, a_dead_parent_slot_is_reclaimed_while_its_child_lives);
    tcase_add_test(tc, hits_hold_their_own_bytes_while_another_process_evicts);
    tcase_add_test(tc, a_process_killed_holding_hazards_lets_its_entries_go);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("distrust");
    tcase_set_timeout(tt, 300);
    tcase_add_loop_test(tt, corrupted_tables_are_rebuilt_never_trusted, 0,
                        (int)(sizeof corruptions / sizeof corruptions[0]));
    tcase_add_test(tt, the_tables_fuzz_harness_on_fixed_inputs);
    suite_add_tcase(s, tt);
    return s;
}

RASTER_SUITE_MAIN(shm_arena_suite)
