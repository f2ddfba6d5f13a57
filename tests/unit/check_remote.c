/*
 * check_remote.c - the library over HTTP, against Debian's nginx on
 * 127.0.0.1, started by tests/remote/httpd.py for this suite and stopped at
 * its end (the helper stops nginx when its stdin closes).
 *
 * Reads of URLs equal reads of the local file byte for byte, with the GDAL
 * and the native reader; a 256x256 window of a COG costs at most one range
 * request per touched tile (the native reader: one per tile row), counted
 * in nginx's access log; a missing URL is RASTER_E_IO naming the URL.  The
 * Python suite (tests/python/test_remote.py) covers failures, retries and
 * timeouts; this one proves the C API on its own.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const COGS[] = {
    "cog_u16_deflate_pred2_tile256_pixel_3b_1024x1024.tif",
    "cog_i16_zstd_pred2_tile256_pixel_1b_1000x777.tif",
};

static pid_t server_pid = -1;
static int server_stdin = -1;
static int server_port;
static char server_log[1024];

/* tests/remote/httpd.py, found next to this file's source. */
static const char *
helper_path(void)
{
    static char buf[4096];
    const char *src = getenv("RASTER_SOURCE_DIR");
    if (src != NULL) {
        snprintf(buf, sizeof buf, "%s/tests/remote/httpd.py", src);
        return buf;
    }
    snprintf(buf, sizeof buf, "%s", __FILE__);
    char *slash = strrchr(buf, '/');
    snprintf(slash ? slash + 1 : buf, sizeof buf - (size_t)(slash ? slash + 1 - buf : 0),
             "../remote/httpd.py");
    return buf;
}

static void
server_start(void)
{
    int in[2], out[2];
    if (access(helper_path(), R_OK) != 0 || pipe(in) != 0 || pipe(out) != 0)
        return;
    char root[4096];
    snprintf(root, sizeof root, "%s", fixture_path(""));
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execlp("python3", "python3", helper_path(), "nginx", "--root", root, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return;
    }
    FILE *f = fdopen(out[0], "r");
    char line[1200];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "port %d", &server_port) == 1)
            continue;
        if (sscanf(line, "log %1023s", server_log) == 1)
            break;
    }
    if (f != NULL)
        fclose(f);
    server_pid = pid;
    server_stdin = in[1];
    if (server_port <= 0 || server_log[0] == '\0')
        fprintf(stderr, "check_remote: the test server did not start (is nginx installed?)\n");
}

static void
server_stop(void)
{
    if (server_pid <= 0)
        return;
    close(server_stdin);                /* the helper stops nginx and exits */
    for (int i = 0; i < 100; i++) {
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            server_pid = -1;
            return;
        }
        usleep(50 * 1000);
    }
    kill(server_pid, SIGTERM);
    waitpid(server_pid, NULL, 0);
    server_pid = -1;
}

static const char *
url_of(const char *name, const char *query)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "http://127.0.0.1:%d/%s%s", server_port, name, query ? query : "");
    return buf;
}

#define SYNC_PATH "/__rl_sync__"     /* the sentinel request: never counted */

static int
log_lines(void)
{
    FILE *f = fopen(server_log, "r");
    if (f == NULL)
        return -1;
    int n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, SYNC_PATH) == NULL;
    fclose(f);
    return n;
}

/* nginx logs a request when it finishes answering it, in the same pass of
 * its one event loop: once it has answered a request sent after them, every
 * request answered before is in the log.  So the count waits for an answer,
 * not for a quiet period (no clock; the receive timeout is a deadlock guard). */
static int
log_lines_synced(void)
{
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s, 0);
    const struct timeval guard = {60, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(s, (const struct sockaddr *)&a, sizeof a), 0);
    static const char req[] = "GET " SYNC_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(write(s, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    char buf[512];
    ssize_t r;
    while ((r = read(s, buf, sizeof buf)) > 0)
        ;                           /* until nginx closes: the answer is complete */
    ck_assert_msg(r == 0, "the sentinel request got no answer");
    close(s);
    return log_lines();
}

static void *
read_window(raster_dataset_t *ds, raster_window_t w, size_t *nbytes)
{
    raster_info_t in;
    ck_assert_int_eq(raster_dataset_info(ds, &in), RASTER_OK);
    *nbytes = raster_view_nbytes(in.dtype, w.height, w.width, in.band_count);
    void *buf = malloc(*nbytes);
    ck_assert_ptr_nonnull(buf);
    const raster_view_t v = raster_view_hwc(buf, in.dtype, w.height, w.width, in.band_count);
    const raster_status_t st = raster_read_into(ds, w, NULL, &v);
    ck_assert_msg(st == RASTER_OK, "%s", raster_last_error());
    return buf;
}

static void
setup_env(void)
{
    setenv("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR", 1);
    setenv("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", ".tif", 1);
    setenv("GDAL_HTTP_MAX_RETRY", "0", 1);
}

#define NEED_SERVER()                                                           \
    do {                                                                        \
        setup_env();                                                            \
        ck_assert_msg(server_port > 0, "no test server (nginx-light installed?)"); \
    } while (0)

static void
equal_reads(int reader)
{
    const raster_window_t wins[] = {{0, 0, 256, 256}, {300, 300, 256, 256}, {744, 521, 256, 256},
                                    {5, 700, 1, 1}};
    for (size_t f = 0; f < sizeof COGS / sizeof COGS[0]; f++) {
        raster_dataset_t *local = open_with_reader(fixture_path(COGS[f]), reader);
        raster_dataset_t *remote = open_with_reader(url_of(COGS[f], reader ? "?n" : "?g"), reader);
        raster_info_t in;
        ck_assert_int_eq(raster_dataset_info(remote, &in), RASTER_OK);
        ck_assert_int_eq(in.reader, reader);
        for (size_t k = 0; k < sizeof wins / sizeof wins[0]; k++) {
            size_t n1, n2;
            void *a = read_window(local, wins[k], &n1);
            void *b = read_window(remote, wins[k], &n2);
            ck_assert_uint_eq(n1, n2);
            ck_assert_msg(memcmp(a, b, n1) == 0, "%s window %zu differs over HTTP", COGS[f], k);
            free(a);
            free(b);
        }
        raster_close(remote);
        raster_close(local);
    }
}

START_TEST(gdal_reads_equal_local)
{
    NEED_SERVER();
    equal_reads(RASTER_READER_GDAL);
}
END_TEST

START_TEST(native_reads_equal_local)
{
    NEED_SERVER();
    equal_reads(RASTER_READER_NATIVE_TIFF);
}
END_TEST

/* Window (300, 300, 256x256) of a 256-tiled COG touches 2x2 tiles. */
static int
requests_for_window(int reader, const char *query)
{
    raster_dataset_t *ds = open_with_reader(url_of(COGS[0], query), reader);
    const int before = log_lines_synced();
    size_t n;
    free(read_window(ds, (raster_window_t){300, 300, 256, 256}, &n));
    const int after = log_lines_synced();
    raster_close(ds);
    return after - before;
}

START_TEST(requests_per_window)
{
    NEED_SERVER();
    const int gdal = requests_for_window(RASTER_READER_GDAL, "?rg");
    const int native = requests_for_window(RASTER_READER_NATIVE_TIFF, "?rn");
    ck_assert_msg(gdal >= 1 && gdal <= 4, "GDAL reader: %d requests for 4 tiles", gdal);
    ck_assert_msg(native >= 1 && native <= 2, "native reader: %d requests for 2 rows of tiles",
                  native);
}
END_TEST

START_TEST(missing_url_is_io_error)
{
    NEED_SERVER();
    const char *url = url_of("no_such_file.tif", NULL);
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open(url, &ds), RASTER_E_IO);
    ck_assert_ptr_null(ds);
    ck_assert_msg(strstr(raster_last_error(), url) != NULL, "%s", raster_last_error());
    ck_assert_msg(strstr(raster_last_error(), "404") != NULL, "%s", raster_last_error());
}
END_TEST

static Suite *
remote_suite(void)
{
    Suite *s = suite_create("remote");
    TCase *tc = tcase_create("http");
    tcase_add_unchecked_fixture(tc, server_start, server_stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, gdal_reads_equal_local);
    tcase_add_test(tc, native_reads_equal_local);
    tcase_add_test(tc, requests_per_window);
    tcase_add_test(tc, missing_url_is_io_error);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(remote_suite)
