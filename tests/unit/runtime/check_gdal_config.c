/*
 * check_gdal_config.c - raster_gdal_config_push()/_pop(): the options are
 * GDAL's thread-local config on the pushing thread until the pop, which
 * restores what was there; the library's worker threads see them while they
 * run the pusher's items and nothing after; other threads never see them.
 */
#include "test_util.h"
#include "runtime/runtime.h"

#include <cpl_conv.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define KEY "RASTER_CHECK_GDAL_CONFIG"

static const char *tl(const char *k) { return CPLGetThreadLocalConfigOption(k, NULL); }

START_TEST(push_pop_restores)
{
    CPLSetThreadLocalConfigOption(KEY, "before");
    const char *k1[] = {KEY, "RASTER_CHECK_OTHER"}, *v1[] = {"outer", "1"};
    ck_assert_int_eq(raster_gdal_config_push(k1, v1, 2), RASTER_OK);
    ck_assert_str_eq(tl(KEY), "outer");
    ck_assert_str_eq(CPLGetConfigOption("RASTER_CHECK_OTHER", ""), "1");
    const char *k2[] = {KEY}, *v2[] = {"inner"};
    ck_assert_int_eq(raster_gdal_config_push(k2, v2, 1), RASTER_OK);
    ck_assert_str_eq(tl(KEY), "inner");
    raster_gdal_config_pop();
    ck_assert_str_eq(tl(KEY), "outer");
    raster_gdal_config_pop();
    ck_assert_str_eq(tl(KEY), "before");
    ck_assert_ptr_null(tl("RASTER_CHECK_OTHER"));
    raster_gdal_config_pop();                      /* nothing pushed: nothing happens */
    ck_assert_str_eq(tl(KEY), "before");
    CPLSetThreadLocalConfigOption(KEY, NULL);
    ck_assert_int_eq(raster_gdal_config_push(NULL, NULL, 0), RASTER_OK);   /* empty is fine */
    raster_gdal_config_pop();
}
END_TEST

START_TEST(bad_arguments_change_nothing)
{
    const char *k[] = {KEY, ""}, *v[] = {"x", "y"};
    ck_assert_int_eq(raster_gdal_config_push(k, v, 2), RASTER_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "option 1"));
    ck_assert_ptr_null(tl(KEY));
    ck_assert_int_eq(raster_gdal_config_push(NULL, v, 1), RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_gdal_config_push(k, v, -1), RASTER_E_INVALID_ARG);
    raster_gdal_config_pop();
    ck_assert_ptr_null(tl(KEY));
}
END_TEST

/* Items record what GDAL says KEY is on the thread that runs them. */
typedef struct {
    char seen[64][16];
    pthread_t who[64];
    atomic_int others_started;     /* items other than item 0 begun */
} items_t;

/* Item 0 waits until another item has begun: its thread is busy, so that
 * item runs on another thread, and the helpers are certain to take part
 * with no sleep to make room for them.  A pool whose helpers never help
 * leaves item 0 waiting until the deadlock guard (60 s), and then
 * threads_used() is 1. */
static void
wait_for_another_thread(items_t *it)
{
    for (int ms = 0; ms < 60000 && atomic_load(&it->others_started) == 0; ms++)
        usleep(1000);
}

static raster_status_t
record(void *ctx, int64_t i)
{
    items_t *it = ctx;
    if (i > 0)
        atomic_fetch_add(&it->others_started, 1);
    const char *v = CPLGetConfigOption(KEY, "unset");
    snprintf(it->seen[i], sizeof it->seen[i], "%s", v);
    it->who[i] = pthread_self();
    if (i == 0)
        wait_for_another_thread(it);
    return RASTER_OK;
}

static int
threads_used(const items_t *it)
{
    int n = 0;
    for (int i = 0; i < 64; i++) {
        int dup = 0;
        for (int j = 0; j < i && !dup; j++)
            dup = pthread_equal(it->who[i], it->who[j]);
        n += !dup;
    }
    return n;
}

START_TEST(workers_see_the_callers_options_while_they_help)
{
    static items_t it;
    const char *k[] = {KEY}, *v[] = {"pushed"};
    ck_assert_int_eq(raster_gdal_config_push(k, v, 1), RASTER_OK);
    ck_assert_int_eq(raster__parallel_for(64, 4, record, &it), RASTER_OK);
    raster_gdal_config_pop();
    ck_assert_int_gt(threads_used(&it), 1);
    for (int i = 0; i < 64; i++)
        ck_assert_msg(strcmp(it.seen[i], "pushed") == 0, "item %d saw %s", i, it.seen[i]);
    /* After the pop the same workers see nothing. */
    memset(&it, 0, sizeof it);
    ck_assert_int_eq(raster__parallel_for(64, 4, record, &it), RASTER_OK);
    ck_assert_int_gt(threads_used(&it), 1);
    for (int i = 0; i < 64; i++)
        ck_assert_msg(strcmp(it.seen[i], "unset") == 0, "item %d saw %s", i, it.seen[i]);
}
END_TEST

static void *
other_thread(void *arg)
{
    *(const char **)arg = CPLGetConfigOption(KEY, "unset");
    return NULL;
}

START_TEST(other_threads_never_see_them)
{
    const char *k[] = {KEY}, *v[] = {"mine"};
    ck_assert_int_eq(raster_gdal_config_push(k, v, 1), RASTER_OK);
    const char *seen = NULL;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &seen), 0);
    pthread_join(t, NULL);
    raster_gdal_config_pop();
    ck_assert_str_eq(seen, "unset");
}
END_TEST

static Suite *
gdal_config_suite(void)
{
    Suite *s = suite_create("gdal_config");
    TCase *tc = tcase_create("gdal_config");
    tcase_add_test(tc, push_pop_restores);
    tcase_add_test(tc, bad_arguments_change_nothing);
    tcase_add_test(tc, workers_see_the_callers_options_while_they_help);
    tcase_add_test(tc, other_threads_never_see_them);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(gdal_config_suite)
