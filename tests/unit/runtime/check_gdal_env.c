/*
 * check_gdal_env.c - the GDAL environment layer (lib/runtime/gdal_env.c) on its own:
 * the idle-handle stack and its fork rule, the status table of the error
 * capture fed with GDAL's own CPLError (class and number, as GDAL's drivers
 * and /vsicurl/ send them), the URL mapping and the dtype table.  The readers' statuses on
 * real files and servers are checked in check_errors, check_hostile and
 * check_remote; this suite pins the rules those rely on.
 */
#include "test_util.h"

#include "runtime/runtime.h"

#include <cpl_error.h>
#include <gdal.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------ handle stack --------------------------- */

static int closed[8];
static int closed_count;

static void
fake_close(void *h)
{
    closed[closed_count++] = (int)(intptr_t)h;
}

START_TEST(stack_pops_last_pushed_and_destroy_closes_idle)
{
    raster__handle_stack_t s;
    closed_count = 0;
    raster__handle_stack_init(&s, fake_close);
    ck_assert_ptr_null(raster__handle_stack_pop(&s));
    for (intptr_t h = 1; h <= 5; h++)
        raster__handle_stack_push(&s, (void *)h);
    ck_assert_int_eq((int)(intptr_t)raster__handle_stack_pop(&s), 5);
    ck_assert_int_eq((int)(intptr_t)raster__handle_stack_pop(&s), 4);
    ck_assert_int_eq(closed_count, 0);
    raster__handle_stack_destroy(&s);
    ck_assert_int_eq(closed_count, 3);      /* 1, 2, 3 were idle */
}
END_TEST

/* After fork() the child forgets the parent's handles without closing any
 * (they share the parent's offsets and connections); the parent keeps them. */
START_TEST(stack_forgets_parent_handles_after_fork)
{
    raster__handle_stack_t s;
    closed_count = 0;
    raster__handle_stack_init(&s, fake_close);
    raster__handle_stack_push(&s, (void *)(intptr_t)7);
    raster__handle_stack_push(&s, (void *)(intptr_t)8);
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int bad = raster__handle_stack_pop(&s) != NULL;      /* nothing idle in the child */
        raster__handle_stack_push(&s, (void *)(intptr_t)9); /* the child's own */
        bad |= (int)(intptr_t)raster__handle_stack_pop(&s) != 9;
        raster__handle_stack_destroy(&s);
        _exit(bad || closed_count != 0 ? 1 : 0);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw the parent's handles");
    ck_assert_int_eq((int)(intptr_t)raster__handle_stack_pop(&s), 8);
    raster__handle_stack_destroy(&s);
    ck_assert_int_eq(closed_count, 1);
    ck_assert_int_eq(closed[0], 7);
}
END_TEST

/* ------------------------------ capture -------------------------------- */

#define LOCAL_FILE fixture_path("not_a_tiff.tif")
#define REMOTE "/vsicurl/http://127.0.0.1:9/x.tif"

/* The status of 'call' on 'path' after GDAL sent (cls, no, msg). */
static raster_status_t
status_after(CPLErr cls, CPLErrorNum no, const char *msg, const char *path, raster__gdal_call_t call)
{
    raster__gdal_capture_begin();
    CPLError(cls, no, "%s", msg);
    const raster_status_t st = raster__gdal_capture_status(path, call, RASTER_E_CORRUPT);
    raster__gdal_capture_end();
    return st;
}

START_TEST(status_from_numbers)
{
    const raster__gdal_call_t R = RASTER__GDAL_CALL_READ, O = RASTER__GDAL_CALL_OPEN;
    /* A decode failure of a local file: the caller's 'otherwise'. */
    ck_assert_int_eq(status_after(CE_Failure, CPLE_AppDefined, "ZIPDecode:Decoding error", LOCAL_FILE, R),
                     RASTER_E_CORRUPT);
    /* The same words on a remote dataset: /vsicurl/ reports a failed range
     * as a short read only, so a failed remote read is the network's. */
    ck_assert_int_eq(status_after(CE_Failure, CPLE_AppDefined, "TIFFFillTile:Read error", REMOTE, R),
                     RASTER_E_IO);
    ck_assert_int_eq(status_after(CE_Failure, CPLE_HttpResponse, "HTTP response code: 404", REMOTE, O),
                     RASTER_E_IO);
    ck_assert_int_eq(status_after(CE_Failure, CPLE_AWSAccessDenied, "Access Denied", "/vsis3/b/k", O),
                     RASTER_E_IO);
    ck_assert_int_eq(status_after(CE_Failure, CPLE_NotSupported, "no such thing", LOCAL_FILE, R),
                     RASTER_E_UNSUPPORTED);
    ck_assert_int_eq(status_after(CE_Failure, CPLE_OutOfMemory, "Cannot allocate", LOCAL_FILE, R),
                     RASTER_E_NOMEM);
    ck_assert_int_eq(status_after(CE_Failure, CPLE_FileIO, "read failed", LOCAL_FILE, O), RASTER_E_IO);
    ck_assert_int_eq(status_after(CE_Failure, CPLE_FileIO, "short read", LOCAL_FILE, R), RASTER_E_CORRUPT);
    /* CPLE_OpenFailed alone: GDAL's "no such file" and "not recognized"
     * share it; the stat tells them apart. */
    ck_assert_int_eq(status_after(CE_Failure, CPLE_OpenFailed, "x", "/nonexistent/dir/x.tif", O),
                     RASTER_E_IO);
    ck_assert_int_eq(status_after(CE_Failure, CPLE_OpenFailed, "x", LOCAL_FILE, O), RASTER_E_FORMAT);
    /* A driver that knew the file and then found it damaged. */
    ck_assert_int_eq(status_after(CE_Failure, CPLE_AppDefined, "TIFFReadDirectory:Cannot handle zero "
                                  "number of tiles", LOCAL_FILE, O),
                     RASTER_E_FORMAT);
    /* Whatever GDAL said, a failed VSI call is the transfer's. */
    ck_assert_int_eq(status_after(CE_Failure, CPLE_AppDefined, "x", REMOTE, RASTER__GDAL_CALL_VSI),
                     RASTER_E_IO);
}
END_TEST

/* libtiff has no error numbers: its "feature not implemented" words are the
 * table's, and a server ignoring Range is not a missing feature. */
START_TEST(status_from_the_words_table)
{
    const raster__gdal_call_t R = RASTER__GDAL_CALL_READ, O = RASTER__GDAL_CALL_OPEN;
    ck_assert_int_eq(status_after(CE_Failure, CPLE_AppDefined,
                                  "PredictorSetup:Horizontal differencing \"Predictor\" not supported "
                                  "with 12-bit samples", LOCAL_FILE, R),
                     RASTER_E_UNSUPPORTED);
    ck_assert_int_eq(status_after(CE_Failure, CPLE_AppDefined,
                                  "TIFFReadDirectory:Cannot handle different values per sample for "
                                  "\"BitsPerSample\"", LOCAL_FILE, O),
                     RASTER_E_UNSUPPORTED);
    raster__gdal_capture_begin();
    CPLError(CE_Failure, CPLE_AppDefined, "Range downloading not supported by this server!");
    ck_assert_int_eq(raster__gdal_capture_status(REMOTE, O, RASTER_E_FORMAT), RASTER_E_IO);
    ck_assert(raster__gdal_capture_said(RASTER__GDAL_SAID_NO_RANGE));
    ck_assert(!raster__gdal_capture_said(RASTER__GDAL_SAID_UNSUPPORTED));
    ck_assert_ptr_nonnull(strstr(raster__gdal_capture_detail(), "ignores HTTP Range requests"));
    raster__gdal_capture_end();
}
END_TEST

START_TEST(detail_names_first_and_last_failure_and_retries)
{
    raster__gdal_capture_begin();
    CPLError(CE_Warning, CPLE_AppDefined, "HTTP error code: 503 - u. Retrying again in 0.1 secs");
    CPLError(CE_Warning, CPLE_AppDefined, "HTTP error code: 503 - u. Retrying again in 0.2 secs");
    CPLError(CE_Failure, CPLE_AppDefined, "first cause");
    CPLError(CE_Failure, CPLE_AppDefined, "summary");
    const char *d = raster__gdal_capture_detail();
    raster__gdal_capture_end();
    ck_assert_msg(strstr(d, "first cause; then: summary") != NULL, "%s", d);
    ck_assert_msg(strstr(d, "after 2 retries, GDAL_HTTP_MAX_RETRY") != NULL, "%s", d);
    /* A new capture starts empty. */
    raster__gdal_capture_begin();
    ck_assert(!raster__gdal_capture_said(RASTER__GDAL_SAID_RETRY));
    raster__gdal_capture_end();
}
END_TEST

/* ------------------------------ paths ---------------------------------- */

START_TEST(urls_map_to_gdal_paths)
{
    static const char *const cases[][2] = {
        {"HTTPS://host/a.tif", "/vsicurl/https://host/a.tif"},
        {"http://host/a.tif?x=1", "/vsicurl/http://host/a.tif?x=1"},
        {"s3://bucket/key.tif", "/vsis3/bucket/key.tif"},
        {"gs://bucket/key.tif", "/vsigs/bucket/key.tif"},
        {"az://container/key.tif", "/vsiaz/container/key.tif"},
        {"/vsicurl/http://host/a.tif", "/vsicurl/http://host/a.tif"},
        {"/data/a.tif", "/data/a.tif"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = raster__gdal_path_of(cases[i][0]);
        ck_assert_str_eq(p, cases[i][1]);
        ck_assert_int_eq(raster__path_is_remote(p), cases[i][0][0] != '/' || strncmp(p, "/vsi", 4) == 0);
        free(p);
    }
    ck_assert(raster__path_is_remote("/vsizip//vsicurl/http://host/a.zip/a.tif"));
    ck_assert(!raster__path_is_remote("/vsimem/a.tif"));
    ck_assert(!raster__path_is_remote("/data/vsicurl/a.tif"));
}
END_TEST

/* ------------------------------ dtype table ---------------------------- */

/* The one table: every dtype with a GDAL type comes back from it, int8 is
 * GDAL's Int8 from 3.7 and before that has no GDAL type to compute in but
 * travels as Byte (a SIGNEDBYTE band's bytes), float16 has none. */
START_TEST(dtype_table_round_trips_and_pins_int8)
{
    const raster_dtype_t all[] = {RASTER_U8, RASTER_I8, RASTER_U16, RASTER_I16, RASTER_U32,
                                  RASTER_I32, RASTER_F16, RASTER_F32, RASTER_F64};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const int gdt = raster__gdal_type(all[i]);
        raster_dtype_t back;
        if (gdt != GDT_Unknown) {
            ck_assert_int_eq(raster__dtype_of_gdal(gdt, NULL, &back), 1);
            ck_assert_int_eq(back, all[i]);
            ck_assert_int_eq(GDALGetDataTypeSizeBytes(gdt), raster_dtype_size(all[i]));
            ck_assert_int_eq(raster__gdal_carrier(all[i]), gdt);
        }
    }
    ck_assert_int_eq(raster__gdal_type(RASTER_F16), GDT_Unknown);
    ck_assert_int_eq(raster__gdal_carrier(RASTER_F16), GDT_Unknown);
    ck_assert_int_eq(raster__gdal_type(RASTER_U8), GDT_Byte);
#if GDAL_VERSION_NUM >= 3070000
    ck_assert_int_eq(raster__gdal_type(RASTER_I8), GDT_Int8);
    ck_assert_int_eq(raster__gdal_carrier(RASTER_I8), GDT_Int8);
#else
    ck_assert_int_eq(raster__gdal_type(RASTER_I8), GDT_Unknown);
    ck_assert_int_eq(raster__gdal_carrier(RASTER_I8), GDT_Byte);
#endif
    raster_dtype_t dt = RASTER_F64;
    ck_assert_int_eq(raster__dtype_of_gdal(GDT_Byte, "SIGNEDBYTE", &dt), 1);
    ck_assert_int_eq(dt, RASTER_I8);
    ck_assert_int_eq(raster__dtype_of_gdal(GDT_Byte, "", &dt), 1);
    ck_assert_int_eq(dt, RASTER_U8);
    ck_assert_int_eq(raster__dtype_of_gdal(GDT_CInt16, NULL, &dt), 0);
    ck_assert_int_eq(raster__dtype_of_gdal(GDT_Unknown, NULL, &dt), 0);
}
END_TEST

static Suite *
gdal_env_suite(void)
{
    Suite *s = suite_create("gdal_env");
    TCase *tc = tcase_create("handles");
    tcase_add_test(tc, stack_pops_last_pushed_and_destroy_closes_idle);
    tcase_add_test(tc, stack_forgets_parent_handles_after_fork);
    suite_add_tcase(s, tc);
    tc = tcase_create("capture");
    tcase_add_test(tc, status_from_numbers);
    tcase_add_test(tc, status_from_the_words_table);
    tcase_add_test(tc, detail_names_first_and_last_failure_and_retries);
    suite_add_tcase(s, tc);
    tc = tcase_create("paths");
    tcase_add_test(tc, urls_map_to_gdal_paths);
    tcase_add_test(tc, dtype_table_round_trips_and_pins_int8);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(gdal_env_suite)
