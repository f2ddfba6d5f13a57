/*
 * check_remote.c - the library over HTTP, against Debian's nginx on
 * 127.0.0.1, started by tests/remote/httpd.py for this suite and stopped at
 * its end (the helper stops nginx when its stdin closes).
 *
 * Reads of URLs equal reads of the local file byte for byte, with the GDAL
 * and the native reader; a 256x256 window of a COG costs at most one range
 * request per touched tile (the native reader: one per tile row), counted
 * in nginx's access log; a missing URL is RASTER_E_IO naming the URL.  A
 * fork() while another thread's read is held by the quirky server (same
 * helper) returns at once, and the child and then the parent read the right
 * bytes.  The
 * Python suite (tests/python/remote/test_remote.py) covers failures, retries and
 * timeouts; this one proves the C API on its own.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
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

/* A loopback server run by tests/remote/httpd.py: its pid, its stdin (the
 * helper stops when it closes; the quirky one also reads commands there),
 * its stdout (what it prints), its port. */
typedef struct server {
    pid_t pid;
    int in_fd;
    FILE *out;
    int port;
    char log[1024];             /* nginx's access log */
} server_t;

static server_t nginx_srv = {-1, -1, NULL, 0, ""};
static server_t quirky_srv = {-1, -1, NULL, 0, ""};

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
             "../../remote/httpd.py");
    return buf;
}

/* Starts the helper's 'kind' server on the fixtures; returns once it has
 * printed its port (and nginx its log). */
static void
server_start(server_t *s, const char *kind)
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
        execlp("python3", "python3", helper_path(), kind, "--root", root, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return;
    }
    s->pid = pid;
    s->in_fd = in[1];
    s->out = fdopen(out[0], "r");
    const int want_log = strcmp(kind, "nginx") == 0;
    char line[1200];
    while (s->out != NULL && fgets(line, sizeof line, s->out) != NULL) {
        if (sscanf(line, "port %d", &s->port) == 1 && !want_log)
            break;
        if (sscanf(line, "log %1023s", s->log) == 1)
            break;
    }
    if (s->port <= 0)
        fprintf(stderr, "check_remote: the %s test server did not start\n", kind);
}

static void
server_stop(server_t *s)
{
    if (s->pid <= 0)
        return;
    close(s->in_fd);                    /* the helper stops its server and exits */
    if (s->out != NULL)
        fclose(s->out);
    for (int i = 0; i < 100; i++) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = -1;
            return;
        }
        usleep(50 * 1000);
    }
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = -1;
}

static void
nginx_start(void)
{
    server_start(&nginx_srv, "nginx");
    if (nginx_srv.log[0] == '\0')
        fprintf(stderr, "check_remote: nginx did not start (is nginx-light installed?)\n");
}

static void
nginx_stop(void)
{
    server_stop(&nginx_srv);
}

static void
quirky_start(void)
{
    server_start(&quirky_srv, "quirky");
}

static void
quirky_stop(void)
{
    server_stop(&quirky_srv);
}

static const char *
url_of(const char *name, const char *query)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "http://127.0.0.1:%d/%s%s", nginx_srv.port, name, query ? query : "");
    return buf;
}

#define SYNC_PATH "/__rl_sync__"     /* the sentinel request: never counted */

static int
log_lines(void)
{
    FILE *f = fopen(nginx_srv.log, "r");
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
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)nginx_srv.port)};
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
        ck_assert_msg(nginx_srv.port > 0, "no test server (nginx-light installed?)"); \
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

/* ------------------------------ fork during a stalled read ------------- */

typedef struct window_read {
    raster_dataset_t *ds;
    raster_window_t win;
    void *buf;                  /* owned: the pixels, when st is RASTER_OK */
    size_t nbytes;
    raster_status_t st;
} window_read_t;

/* A window read without Check's asserts (it runs on a thread, or in a
 * forked child). */
static void *
window_read_run(void *p)
{
    window_read_t *r = p;
    raster_info_t in;
    r->st = raster_dataset_info(r->ds, &in);
    if (r->st != RASTER_OK)
        return NULL;
    r->nbytes = raster_view_nbytes(in.dtype, r->win.height, r->win.width, in.band_count);
    r->buf = malloc(r->nbytes);
    const raster_view_t v = raster_view_hwc(r->buf, in.dtype, r->win.height, r->win.width, in.band_count);
    r->st = r->buf == NULL ? RASTER_E_NOMEM : raster_read_into(r->ds, r->win, NULL, &v);
    return NULL;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Blocks until the quirky server prints that it holds a /stall/ request. */
static int
server_holds_a_request(server_t *s)
{
    char line[1200];
    while (fgets(line, sizeof line, s->out) != NULL)
        if (strncmp(line, "stalled ", 8) == 0)
            return 1;
    return 0;
}

/* The child's exit status: 0 when it read the window and its bytes are the
 * local file's, 2 when the read failed, 3 when the bytes differ. */
static int
child_reads(raster_dataset_t *ds, raster_window_t win, const void *want, size_t want_nbytes)
{
    window_read_t r = {ds, win, NULL, 0, RASTER_OK};
    window_read_run(&r);
    if (r.st != RASTER_OK) {
        fprintf(stderr, "child: %s\n", raster_last_error());
        return 2;
    }
    return r.nbytes == want_nbytes && memcmp(r.buf, want, want_nbytes) == 0 ? 0 : 3;
}

/* What the child said through 'fd' (child_reads()'s value), or -1 when it
 * said nothing (it hung, then is killed after the guard: a deadlock guard
 * only, or crashed).  Not its exit status: under valgrind a forked child's
 * exit status is valgrind's, which counts as leaks what the threads it does
 * not have were holding. */
static int
child_result(pid_t pid, int fd, double guard_s)
{
    const double until = now_s() + guard_s;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_s() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(10 * 1000);
    }
    unsigned char said;
    return read(fd, &said, 1) == 1 ? said : -1;
}

/* A thread's read is held by the server (a /stall/ URL: the first tile
 * request waits until the test releases it); fork() from another thread
 * returns at once, not when the read ends; the child reads the same window
 * of the same dataset correctly; then the server lets the held request go
 * and the parent's read completes with the right bytes.  GDAL_HTTP_TIMEOUT
 * is 30 s: a fork() that waited for the read would take that long. */
START_TEST(fork_while_a_read_is_stalled)
{
    setup_env();
    setenv("GDAL_HTTP_TIMEOUT", "30", 1);
    ck_assert_msg(quirky_srv.port > 0, "no quirky test server");
    const raster_window_t win = {512, 512, 256, 256};
    raster_dataset_t *local = open_with_reader(fixture_path(COGS[0]), RASTER_READER_NATIVE_TIFF);
    size_t want_nbytes;
    void *want = read_window(local, win, &want_nbytes);
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/stall/65536/%s?check_remote", quirky_srv.port, COGS[0]);
    raster_dataset_t *ds = open_with_reader(url, RASTER_READER_NATIVE_TIFF);

    window_read_t stalled = {ds, win, NULL, 0, RASTER_OK};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, window_read_run, &stalled), 0);
    ck_assert_msg(server_holds_a_request(&quirky_srv), "the read never reached the server");

    int said[2];
    ck_assert_int_eq(pipe(said), 0);
    const double t0 = now_s();
    const pid_t pid = fork();
    if (pid == 0) {
        const unsigned char r = (unsigned char)child_reads(ds, win, want, want_nbytes);
        _exit(write(said[1], &r, 1) == 1 ? 0 : 1);
    }
    const double fork_s = now_s() - t0;
    ck_assert_int_ge(pid, 0);
    close(said[1]);
    const int child = child_result(pid, said[0], 60);
    close(said[0]);

    ck_assert_int_eq(write(quirky_srv.in_fd, "release\n", 8), 8);
    pthread_join(t, NULL);
    ck_assert_msg(fork_s < 5.0, "fork() took %.1f s: it waited for the stalled read", fork_s);
    ck_assert_msg(child == 0, "the child %s", child == 2 ? "failed to read" : child == 3 ? "read wrong bytes"
                                                                                 : "hung or crashed");
    ck_assert_msg(stalled.st == RASTER_OK, "the stalled read failed: %s", raster_last_error());
    ck_assert_uint_eq(stalled.nbytes, want_nbytes);
    ck_assert_msg(memcmp(stalled.buf, want, want_nbytes) == 0, "the stalled read returned wrong bytes");
    free(stalled.buf);
    free(want);
    raster_close(ds);
    raster_close(local);
}
END_TEST

/* ------------------------------ threads -------------------------------- */

enum { READ_THREADS = 4, WINDOWS_PER_THREAD = 6 };

typedef struct thread_reads {
    raster_dataset_t *remote, *local;
    int k;                      /* this thread's share of the windows */
    int wrong;                  /* windows whose bytes differ, or failed */
} thread_reads_t;

static void *
thread_reads_run(void *p)
{
    thread_reads_t *t = p;
    for (int i = 0; i < WINDOWS_PER_THREAD; i++) {
        const int64_t off = 64 * ((t->k * WINDOWS_PER_THREAD + i) % 12);   /* 0 .. 704 */
        window_read_t a = {t->remote, {off, 704 - off, 256, 256}, NULL, 0, RASTER_OK};
        window_read_t b = {t->local, a.win, NULL, 0, RASTER_OK};
        window_read_run(&a);
        window_read_run(&b);
        if (a.st != RASTER_OK || b.st != RASTER_OK)
            fprintf(stderr, "check_remote: %s\n", raster_last_error());
        t->wrong += a.st != RASTER_OK || b.st != RASTER_OK || a.nbytes != b.nbytes ||
                    memcmp(a.buf, b.buf, a.nbytes) != 0;
        free(a.buf);
        free(b.buf);
    }
    return NULL;
}

/* Threads share one remote dataset of the native reader (its HTTP
 * transfers, one connection set per handle): every window equals the local
 * file's.  Under TSan (make test-tsan) it checks the transfers' sharing. */
START_TEST(threads_share_a_remote_dataset)
{
    NEED_SERVER();
    raster_dataset_t *remote = open_with_reader(url_of(COGS[0], "?threads"), RASTER_READER_NATIVE_TIFF);
    raster_dataset_t *local = open_with_reader(fixture_path(COGS[0]), RASTER_READER_NATIVE_TIFF);
    pthread_t th[READ_THREADS];
    thread_reads_t t[READ_THREADS];
    for (int k = 0; k < READ_THREADS; k++) {
        t[k] = (thread_reads_t){remote, local, k, 0};
        ck_assert_int_eq(pthread_create(&th[k], NULL, thread_reads_run, &t[k]), 0);
    }
    for (int k = 0; k < READ_THREADS; k++) {
        pthread_join(th[k], NULL);
        ck_assert_msg(t[k].wrong == 0, "thread %d: %d windows wrong or failed", k, t[k].wrong);
    }
    raster_close(remote);
    raster_close(local);
}
END_TEST

static Suite *
remote_suite(void)
{
    Suite *s = suite_create("remote");
    TCase *tc = tcase_create("http");
    tcase_add_unchecked_fixture(tc, nginx_start, nginx_stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, gdal_reads_equal_local);
    tcase_add_test(tc, native_reads_equal_local);
    tcase_add_test(tc, requests_per_window);
    tcase_add_test(tc, missing_url_is_io_error);
    tcase_add_test(tc, threads_share_a_remote_dataset);
    suite_add_tcase(s, tc);
    TCase *tf = tcase_create("fork");
    tcase_add_unchecked_fixture(tf, quirky_start, quirky_stop);
    tcase_set_timeout(tf, 120);
    tcase_add_test(tf, fork_while_a_read_is_stalled);
    suite_add_tcase(s, tf);
    return s;
}

RASTER_SUITE_MAIN(remote_suite)
