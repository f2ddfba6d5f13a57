/*
 * check_fork_order.c - the one fork handler (lib/common/fork.c) runs every slot's
 * prepare hook in slot order (the GDAL gate first, the pools last) and the
 * parent and child hooks in the reverse order, and skips a NULL hook.
 * Recording hooks stand in for the layers' own in every slot (this process
 * uses no layer, so nothing registers the real ones); the behaviour of the
 * real hooks across fork() is check_fork's and check_shm_arena's.
 */
#include "test_util.h"

#include "common/common.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char trace[64];
static int ntrace;

static void
rec(char kind, int slot)
{
    if (ntrace + 2 < (int)sizeof trace) {
        trace[ntrace++] = kind;
        trace[ntrace++] = (char)('0' + slot);
        trace[ntrace] = '\0';
    }
}

#define SLOT_HOOKS(i)                                \
    static void prepare##i(void) { rec('P', i); }    \
    static void parent##i(void) { rec('A', i); }     \
    static void child##i(void) { rec('C', i); }
SLOT_HOOKS(0)
SLOT_HOOKS(1)
SLOT_HOOKS(2)
SLOT_HOOKS(4)
static void child3(void) { rec('C', 3); }

static const raster__fork_hooks_t hooks[RASTER__FORK_SLOTS] = {
    {prepare0, parent0, child0}, {prepare1, parent1, child1}, {prepare2, parent2, child2},
    {NULL, NULL, child3},        /* as the shm arena: a child hook only */
    {prepare4, parent4, child4},
};

START_TEST(prepare_in_slot_order_parent_and_child_reversed)
{
    ck_assert_int_eq(RASTER__FORK_GDAL, 0);          /* the order fork.c states */
    ck_assert_int_lt(RASTER__FORK_GDAL, RASTER__FORK_THREADS);
    ck_assert_int_lt(RASTER__FORK_THREADS, RASTER__FORK_TILE_CACHE);
    ck_assert_int_lt(RASTER__FORK_TILE_CACHE, RASTER__FORK_SHM_ARENA);
    ck_assert_int_lt(RASTER__FORK_SHM_ARENA, RASTER__FORK_POOLS);
    /* Registered out of order: the slot, not the call order, decides. */
    const int order[RASTER__FORK_SLOTS] = {4, 1, 3, 0, 2};
    for (int i = 0; i < RASTER__FORK_SLOTS; i++)
        raster__fork_hooks((raster__fork_slot_t)order[i], &hooks[order[i]]);
    ntrace = 0;
    trace[0] = '\0';
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(strcmp(trace, "P0P1P2P4C4C3C2C1C0") == 0 ? 0 : 1);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_str_eq(trace, "P0P1P2P4A4A2A1A0");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child's hooks did not run C4 C3 C2 C1 C0 (status %d)", status);
}
END_TEST

static Suite *
fork_order_suite(void)
{
    Suite *s = suite_create("fork_order");
    TCase *tc = tcase_create("order");
    tcase_add_test(tc, prepare_in_slot_order_parent_and_child_reversed);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(fork_order_suite)
