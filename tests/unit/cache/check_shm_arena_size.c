/*
 * check_shm_arena_size.c - how much memory the tile cache takes, and where:
 * - the arena's room rule (raster__shm_capacity_for): at most a quarter of
 *   /dev/shm and half of what is free, a private cache when that is under
 *   32 MiB (docker's 64 MB /dev/shm), on numbers;
 * - the default budget under a memory cgroup: the parsing of
 *   /proc/self/cgroup and the limit files (v1 and v2 layouts, "max",
 *   nested limits, paths a container does not see) on fake trees;
 * - a /dev/shm that fills up after the arena was made (a 256 MiB tmpfs in
 *   a private mount namespace, filled by another file): the cache keeps
 *   inserting by evicting within the memory it has backed, and the bytes
 *   it backs never grow.  Needs root (unshare, mount); skips with the
 *   reason otherwise;
 * - leftovers: a process that never attached (a DataLoader's main process)
 *   removes, at raster_tile_cache_detach(), an arena whose attached
 *   processes all died without detaching, and never one in use.
 *
 * The DataLoader in a 64 MB /dev/shm and a reader in a real memory cgroup
 * are in tests/python/cache/test_tile_cache_limits.py.
 */
#include "test_util.h"
#include "cache/shm_arena.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB ((uint64_t)1 << 20)

/* ------------------------------ room rule ------------------------------ */

static uint64_t
capacity_for(uint64_t want, uint64_t total, uint64_t free_nbytes, char *why)
{
    why[0] = '\0';
    return raster__shm_capacity_for(want, total, free_nbytes, why, 256);
}

START_TEST(the_arena_takes_at_most_a_quarter_of_dev_shm)
{
    char why[256];
    /* A large budget on a 256 MiB /dev/shm: a quarter of it, tables included. */
    uint64_t c = capacity_for(2500 * MiB, 256 * MiB, 256 * MiB, why);
    ck_assert_uint_le(c, 64 * MiB);
    ck_assert_uint_gt(c, 60 * MiB);
    ck_assert_uint_eq(c % 4096, 0);
    /* Half of what is free when that is less. */
    c = capacity_for(2500 * MiB, 1024 * MiB, 100 * MiB, why);
    ck_assert_uint_le(c, 50 * MiB);
    ck_assert_uint_gt(c, 46 * MiB);
    /* A budget that fits is the capacity. */
    ck_assert_uint_eq(capacity_for(8 * MiB, 256 * MiB, 256 * MiB, why), 8 * MiB);
    ck_assert_uint_eq(capacity_for(24 * MiB + 100, 24 * 1024 * MiB, 24 * 1024 * MiB, why), 24 * MiB + 4096);
    /* A tiny budget gets the minimum arena (room to raise it a little). */
    ck_assert_uint_eq(capacity_for(MiB, 256 * MiB, 256 * MiB, why), 4 * MiB);
    /* Exactly 32 MiB of room (a 128 MiB /dev/shm) is enough. */
    ck_assert_uint_gt(capacity_for(2500 * MiB, 128 * MiB, 128 * MiB, why), 28 * MiB);
    ck_assert_str_eq(why, "");
}
END_TEST

START_TEST(a_small_dev_shm_means_a_private_cache_with_the_reason)
{
    char why[256];
    /* docker's default 64 MB: a quarter is 16 MiB, too small to share. */
    ck_assert_uint_eq(capacity_for(2500 * MiB, 64 * MiB, 64 * MiB, why), 0);
    ck_assert_msg(strstr(why, "/dev/shm is small (64 MiB, 64 MiB free)") != NULL, "%s", why);
    ck_assert_msg(strstr(why, "private cache") != NULL, "%s", why);
    /* Even for a small budget: the rule is about /dev/shm, not the budget. */
    ck_assert_uint_eq(capacity_for(8 * MiB, 127 * MiB, 127 * MiB, why), 0);
    /* A large /dev/shm that is nearly full. */
    ck_assert_uint_eq(capacity_for(2500 * MiB, 4096 * MiB, 60 * MiB, why), 0);
    ck_assert_msg(strstr(why, "60 MiB free") != NULL, "%s", why);
    ck_assert_uint_eq(capacity_for(2500 * MiB, 0, 0, why), 0);
}
END_TEST

/* ------------------------------ cgroups -------------------------------- */

/* A fake root: a temporary directory holding proc/self/cgroup and
 * sys/fs/cgroup/... files. */
static char fake_root[64];

static void
fake_root_make(void)
{
    snprintf(fake_root, sizeof fake_root, "/tmp/rl-cgroup-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fake_root));
}

/* Writes 'text' to fake_root/'rel', making the directories on the way. */
static void
fake_file(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fake_root, rel);
    for (char *p = path + strlen(fake_root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        ck_assert_msg(mkdir(path, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void
fake_root_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fake_root);
    ck_assert_int_eq(system(cmd), 0);
}

/* RASTER_TILE_CACHE_DEFAULT_PERCENT of 'memory', in whole 4 KiB pages. */
static uint64_t
share_of(uint64_t memory)
{
    return memory / 100 * RASTER_TILE_CACHE_DEFAULT_PERCENT / 4096 * 4096;
}

START_TEST(cgroup_v2_limits_nested_and_max)
{
    fake_root_make();
    fake_file("proc/self/cgroup", "0::/user.slice/job/step\n");
    /* No limit anywhere: "max" at every level, none at the root. */
    fake_file("sys/fs/cgroup/user.slice/memory.max", "max\n");
    fake_file("sys/fs/cgroup/user.slice/job/memory.max", "max\n");
    fake_file("sys/fs/cgroup/user.slice/job/step/memory.max", "max\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), UINT64_MAX);
    /* A parent's limit bounds the child. */
    fake_file("sys/fs/cgroup/user.slice/job/memory.max", "167772160\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 167772160);
    /* The lowest of several wins, at any level. */
    fake_file("sys/fs/cgroup/user.slice/job/step/memory.max", "104857600\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 104857600);
    fake_file("sys/fs/cgroup/user.slice/memory.max", "52428800\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 52428800);
    fake_root_remove();
}
END_TEST

START_TEST(cgroup_v2_in_a_container_reads_the_mount_point)
{
    fake_root_make();
    /* A cgroup namespace: the process is at the root of what it sees, and
     * the mount point holds the container's own limit. */
    fake_file("proc/self/cgroup", "0::/\n");
    fake_file("sys/fs/cgroup/memory.max", "268435456\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 268435456);
    /* A path from outside the namespace ("/../..") or one the container
     * does not see: the mount point's limit still holds. */
    fake_file("proc/self/cgroup", "0::/../../system.slice/other\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 268435456);
    fake_file("proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 268435456);
    fake_root_remove();
}
END_TEST

START_TEST(cgroup_v1_memory_controller)
{
    fake_root_make();
    fake_file("proc/self/cgroup",
              "9:name=systemd:/\n5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n");
    /* v1's "no limit" is a huge number, not "max". */
    fake_file("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    fake_file("sys/fs/cgroup/memory/docker/memory.limit_in_bytes", "9223372036854771712\n");
    fake_file("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 9223372036854771712ULL);
    ck_assert_uint_eq(raster__tile_cache_budget_for(16 * 1024 * MiB, 9223372036854771712ULL),
                      share_of(16 * 1024 * MiB));
    fake_file("sys/fs/cgroup/memory/docker/memory.limit_in_bytes", "536870912\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 536870912);
    /* Controllers mounted together ("cpu,memory") count too. */
    fake_file("proc/self/cgroup", "3:cpu,memory:/docker/abc\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 536870912);
    /* "memory" must be a whole controller name. */
    fake_file("proc/self/cgroup", "3:nomemory:/docker/abc\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), UINT64_MAX);
    fake_root_remove();
}
END_TEST

START_TEST(cgroup_hybrid_and_malformed_files)
{
    fake_root_make();
    /* Nothing to read: no limit. */
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), UINT64_MAX);
    ck_assert_uint_eq(raster__cgroup_memory_limit("/nonexistent-root"), UINT64_MAX);
    /* Hybrid: v1 memory and v2 both give a limit; the lower wins. */
    fake_file("proc/self/cgroup", "4:memory:/a\n0::/a\n");
    fake_file("sys/fs/cgroup/memory/a/memory.limit_in_bytes", "300000000\n");
    fake_file("sys/fs/cgroup/a/memory.max", "200000000\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 200000000);
    /* Garbage lines and values are no limit, not a crash. */
    fake_file("sys/fs/cgroup/a/memory.max", "12abc\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), 300000000);
    fake_file("sys/fs/cgroup/memory/a/memory.limit_in_bytes", "-5\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), UINT64_MAX);
    fake_file("proc/self/cgroup", "garbage\n::\n0:\n4:memory:\n4:memory:relative\n");
    ck_assert_uint_eq(raster__cgroup_memory_limit(fake_root), UINT64_MAX);
    fake_root_remove();
}
END_TEST

START_TEST(the_default_budget_is_a_share_of_the_lower_of_ram_and_the_limit)
{
    const uint64_t ram = 24 * 1024 * MiB, limit = 160 * MiB;
    ck_assert_uint_eq(raster__tile_cache_budget_for(ram, limit), share_of(limit));
    ck_assert_uint_eq(share_of(limit), 16 * MiB - 4096);
    ck_assert_uint_eq(raster__tile_cache_budget_for(ram, UINT64_MAX), share_of(ram));
    ck_assert_uint_eq(raster__tile_cache_budget_for(limit, ram), share_of(limit));
    ck_assert_uint_eq(raster__tile_cache_budget_for(ram, 0), 0);
}
END_TEST

/* ------------------------------ /dev/shm fills up ---------------------- */

/* In the forked child: a failure is printed and the exit code says it. */
static int
child_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

enum { SKIP = 77, ENTRY_NBYTES = 1 << 20 };

static raster__tile_key_t
key_of(uint32_t i)
{
    raster__tile_key_t k;
    memset(&k, 0, sizeof k);
    k.file[0] = 0xf111;
    k.seg = i;
    return k;
}

/* A miss for entry 'i', filled with its pattern and published.  1 when it
 * was inserted (reserve gave memory), 0 when it was decoded "into scratch". */
static int
insert_one(uint32_t i)
{
    const raster__tile_key_t k = key_of(i);
    const raster__tile_entry_t *hit = raster__tile_cache_get(&k, ENTRY_NBYTES);
    if (hit != NULL) {
        raster__tile_cache_release(hit);
        return 1;
    }
    raster__tile_entry_t *e = raster__tile_cache_reserve(ENTRY_NBYTES);
    if (e == NULL)
        return 0;
    memset(raster__tile_entry_data(e), (int)(i & 0xff), ENTRY_NBYTES);
    raster__tile_cache_put(e, &k, ENTRY_NBYTES);
    raster__tile_cache_release(e);
    return 1;
}

/* Bytes /dev/shm has backed for the arena object. */
static uint64_t
arena_backed(void)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", raster__shm_name());
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_blocks * 512 : 0;
}

/* Fills /dev/shm with another file until it has no free byte left. */
static int
fill_dev_shm(void)
{
    const int fd = open("/dev/shm/filler", O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 0;
    struct statvfs v;
    if (statvfs("/dev/shm", &v) != 0)
        return 0;
    off_t at = 0;
    /* Whole free space first, then what a rounding may have left. */
    for (uint64_t step = (uint64_t)v.f_bavail * v.f_frsize; step >= 4096; step /= 2)
        while (posix_fallocate(fd, at, (off_t)step) == 0)
            at += (off_t)step;
    close(fd);
    return statvfs("/dev/shm", &v) == 0 && v.f_bavail == 0;
}

static int
fills_up_child(void)
{
    if (unshare(CLONE_NEWNS) != 0) {
        printf("SKIP: unshare(CLONE_NEWNS): %s (needs root)\n", strerror(errno));
        return SKIP;
    }
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=256m") != 0) {
        printf("SKIP: a private tmpfs on /dev/shm: %s\n", strerror(errno));
        return SKIP;
    }
    /* 48 MiB of budget within the 64 MiB the room rule gives a 256 MiB /dev/shm. */
    raster_tile_cache_set_budget(48 * MiB);
    raster_tile_cache_stats_t s;
    raster_tile_cache_get_stats(&s);
    if (s.mode != RASTER_TILE_CACHE_SHARED || s.budget_bytes != 48 * MiB)
        return child_fail("not a shared arena of 48 MiB: mode %d, budget %zu (%s)", s.mode, s.budget_bytes,
                          s.reason);
    /* 20 entries: the arena backs its first 32 MiB step. */
    for (uint32_t i = 0; i < 20; i++)
        if (!insert_one(i))
            return child_fail("entry %u not inserted with /dev/shm empty", i);
    const uint64_t backed = arena_backed();
    if (!fill_dev_shm())
        return child_fail("could not fill /dev/shm");
    /* 200 more, 6 times what is backed: every one must still be cached. */
    raster_tile_cache_get_stats(&s);
    const uint64_t misses0 = s.misses, inserts0 = s.inserts;
    int scratch = 0;
    for (uint32_t i = 20; i < 220; i++)
        scratch += !insert_one(i);
    raster_tile_cache_stats_t t;
    raster_tile_cache_get_stats(&t);
    char why[256] = "";
    if (!raster__shm_check(why, sizeof why))
        return child_fail("arena inconsistent: %s", why);
    printf("backed %llu MiB; 200 misses: %llu inserts, %d into scratch, %llu evictions; reason: %s\n",
           (unsigned long long)(backed >> 20), (unsigned long long)(t.inserts - inserts0), scratch,
           (unsigned long long)t.evictions, t.reason);
    if (t.misses - misses0 != 200 || t.inserts - inserts0 != 200 || scratch != 0)
        return child_fail("with /dev/shm full: %llu misses, %llu inserts, %d decoded into scratch",
                          (unsigned long long)(t.misses - misses0), (unsigned long long)(t.inserts - inserts0),
                          scratch);
    if (arena_backed() != backed)
        return child_fail("the arena's backed bytes went from %llu to %llu", (unsigned long long)backed,
                          (unsigned long long)arena_backed());
    if (t.bytes_used > backed || t.evictions < 200 - 32 || strstr(t.reason, "ran out of space") == NULL)
        return child_fail("bytes used %zu, evictions %llu, reason '%s'", t.bytes_used,
                          (unsigned long long)t.evictions, t.reason);
    /* An entry larger than all the arena has backed is not reserved, and
     * nothing is evicted for it. */
    if (raster__tile_cache_reserve(40 * MiB) != NULL)
        return child_fail("a 40 MiB entry was reserved with %llu MiB backed", (unsigned long long)(backed >> 20));
    raster_tile_cache_get_stats(&s);
    if (s.evictions != t.evictions)
        return child_fail("%llu entries evicted for an entry that cannot fit",
                          (unsigned long long)(s.evictions - t.evictions));
    /* The newest entries are hits with their own bytes. */
    for (uint32_t i = 210; i < 220; i++) {
        const raster__tile_key_t k = key_of(i);
        const raster__tile_entry_t *e = raster__tile_cache_get(&k, ENTRY_NBYTES);
        if (e == NULL)
            return child_fail("entry %u is not a hit", i);
        const uint8_t *d = raster__tile_entry_data(e);
        const int good = d[0] == (uint8_t)i && d[ENTRY_NBYTES - 1] == (uint8_t)i &&
                         memcmp(d, d + 1, ENTRY_NBYTES - 1) == 0;
        raster__tile_cache_release(e);
        if (!good)
            return child_fail("entry %u holds another entry's bytes", i);
    }
    return 0;
}

START_TEST(a_dev_shm_that_fills_up_keeps_the_cache_caching_within_its_memory)
{
    fflush(NULL);
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const int rc = fills_up_child();
        raster_tile_cache_detach();     /* the tmpfs goes with the namespace; tidy anyway */
        fflush(NULL);
        _exit(rc);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st), "child killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ck_assert_msg(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == SKIP, "child failed (exit %d): see stderr",
                  WEXITSTATUS(st));
}
END_TEST

/* ------------------------------ leftovers ------------------------------ */

static int
arena_exists(void)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", raster__shm_name());
    return access(path, F_OK) == 0;
}

/* A child that attaches, caches a tile, tells the parent through 'ready'
 * and then waits for 'go' to be closed before it exits normally (or is
 * SIGKILLed by the parent). */
static pid_t
attached_child(int ready[2], int go[2])
{
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(go), 0);
    fflush(NULL);
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        raster_tile_cache_set_budget(8 * MiB);
        const int ok = insert_one(1);
        (void)!write(ready[1], ok ? "y" : "n", 1);
        char c;
        (void)!read(go[0], &c, 1);      /* EOF: the parent let go */
        exit(0);                         /* exit(): the arena is detached */
    }
    close(ready[1]);
    close(go[0]);
    char c = 0;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    ck_assert_int_eq(c, 'y');
    close(ready[0]);
    return pid;
}

/* The main process of a DataLoader never reads: its workers, SIGTERMed by
 * it, _exit() without detaching.  At its exit (the Python package calls
 * raster_tile_cache_detach()) it removes the arena they left, but never one
 * a live process still uses. */
START_TEST(a_process_that_never_attached_removes_an_arena_left_by_dead_ones)
{
    int ready[2], go[2];
    pid_t pid = attached_child(ready, go);
    ck_assert(arena_exists());
    raster_tile_cache_detach();         /* the child is alive: kept */
    ck_assert_msg(arena_exists(), "removed while a live process was attached");
    kill(pid, SIGKILL);                 /* dies attached, as a SIGTERMed worker does */
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    close(go[1]);
    ck_assert(arena_exists());
    raster_tile_cache_detach();
    ck_assert_msg(!arena_exists(), "an arena with no live process left was kept");
    /* A child ending normally still detaches and removes it itself. */
    pid = attached_child(ready, go);
    close(go[1]);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    ck_assert(!arena_exists());
}
END_TEST

static Suite *
suite(void)
{
    Suite *s = suite_create("shm_arena_size");
    TCase *tc = tcase_create("size");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_arena_takes_at_most_a_quarter_of_dev_shm);
    tcase_add_test(tc, a_small_dev_shm_means_a_private_cache_with_the_reason);
    tcase_add_test(tc, cgroup_v2_limits_nested_and_max);
    tcase_add_test(tc, cgroup_v2_in_a_container_reads_the_mount_point);
    tcase_add_test(tc, cgroup_v1_memory_controller);
    tcase_add_test(tc, cgroup_hybrid_and_malformed_files);
    tcase_add_test(tc, the_default_budget_is_a_share_of_the_lower_of_ram_and_the_limit);
    tcase_add_test(tc, a_dev_shm_that_fills_up_keeps_the_cache_caching_within_its_memory);
    tcase_add_test(tc, a_process_that_never_attached_removes_an_arena_left_by_dead_ones);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(suite)
