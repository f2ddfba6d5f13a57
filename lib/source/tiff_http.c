/*
 * tiff_http.c - HTTP range transfers for the remote byte source: the
 * native reader's tile bytes of an http(s) URL, fetched with libcurl
 * directly instead of through GDAL's /vsicurl/ read.
 *
 * Why not GDAL's read: fork() waits at gdal_env.c's gate until no thread is
 * inside a GDAL call, and a VSIFReadL of /vsicurl/ is one GDAL call from the
 * first byte asked to the last byte received, so a read stalled on a slow
 * server held every fork() of the process (a DataLoader starting its
 * workers) until GDAL gave up: GDAL_HTTP_TIMEOUT, or never.  The gate cannot
 * simply let such a thread be: GDAL 3.6's VSICurlHandle::Read (port/
 * cpl_vsil_curl.cpp) waits in MultiPerform() holding no GDAL mutex (its curl
 * multi handle is thread-local, the handle is this thread's alone), but on
 * its way there and back it takes process-wide ones for short moments: the
 * filesystem's hMutex (GetCachedFileProp, GetRegion, AddRegion,
 * SetCachedFileProp), oCacheFilePropMutex inside it, the config mutex
 * (VSICurlSetOptions), and libcurl/OpenSSL's own locks in
 * curl_multi_perform.  A fork() in one of those moments gives a child whose
 * first remote read deadlocks, and none of them can be seen from outside
 * GDAL.  So this file makes the transfer itself, with the libcurl multi
 * interface, and splits it where the locks are known:
 *
 *   inside the gate    every libcurl call that does work (easy handle
 *                      setup with GDAL's options, curl_multi_perform,
 *                      which runs the protocol, TLS and the callbacks
 *                      below, and the cleanup), as for any GDAL call;
 *   outside the gate   curl_multi_wait() and the back-off sleeps.  A thread
 *                      there holds no lock of GDAL's (it is in no GDAL
 *                      call), none of libcurl's (no share handle is used:
 *                      curl_multi_wait only reads this multi handle's
 *                      sockets and timers, owned by this thread, and
 *                      poll()s them) and none of the library's.
 *
 * So fork() never waits for the network: a thread blocked on a slow server
 * is outside the gate, and when its data arrives it has to re-enter the
 * gate (waiting there while a fork() is under way) before libcurl may take
 * a lock.  The child never touches the parent's transfers or connections:
 * each thread has its own set (a curl multi handle: connections kept alive
 * between reads, shared by every file the thread reads, as GDAL's /vsicurl/
 * keeps one per thread), marked with the process that made it; a child
 * forgets the set it inherits (never closes it: closing a TLS connection
 * writes to a socket its parent still uses) and opens its own.
 *
 * The options are GDAL's: each request's easy handle is set up by GDAL's
 * own CPLHTTPSetOptions() (what /vsicurl/ uses: GDAL_HTTP_TIMEOUT, proxies,
 * headers, user agent, certificates, authentication, CPL_CURL_VERBOSE).
 *
 * Retry rule (also in the README's remote section).  Transient failures:
 * HTTP 429, 500, 502, 503, 504; a connection reset, refused or timed out, a
 * send or receive failure, an empty reply; a body cut short (fewer bytes
 * than asked, or a Content-Range other than asked).  Those requests are
 * sent again, up to GDAL_HTTP_MAX_RETRY times (2 when it is not set), after
 * GDAL_HTTP_RETRY_DELAY seconds (0.25 when not set), doubling after each
 * round; when every retry fails, or a failure is not transient (404, 403, a
 * server that ignores Range requests, TLS errors), the read fails with
 * RASTER_E_IO naming the status or cause and the retries spent.  Nothing of
 * a failed request is kept (a connection that failed is closed by libcurl,
 * no byte is cached), so the next read of the same range starts afresh: a
 * transient fault is never left stuck.
 *
 * Layer: lib/source/, below tiff_vsi.c, its only caller; it
 * calls gdal_env.c (the gate, GDAL's options) and libcurl.
 */
#include "http.h"

#include <cpl_conv.h>
#include <curl/curl.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* cpl_http.h declares CPLHTTPSetOptions() for C++ only (GDAL's HTTP users
 * call it: /vsicurl/, CPLHTTPFetch); this is that symbol, GDAL 3.x's
 * signature: a change of it fails the link, not a read. */
extern void *raster__cpl_http_set_options(void *curl, const char *url, const char *const *options)
    __asm__("_Z17CPLHTTPSetOptionsPvPKcPKS1_");

/* A thread's connections: a multi handle keeps them between reads. */
typedef struct conn_set {
    CURLM *multi;
    pid_t pid;                  /* the process that made it */
} conn_set_t;

enum {
    MAX_CONNECTIONS = 16,       /* more requests of one read wait for a connection */
    DEFAULT_MAX_RETRY = 2,
    WAIT_MS = 1000,             /* the longest curl_multi_wait before libcurl's timers run */
};
#define DEFAULT_RETRY_DELAY_S 0.25

/* What a response's body is for, decided at its first byte. */
typedef enum body_verdict { UNDECIDED, PLACING, DISCARDING, REFUSED } body_verdict_t;

/* One request: the ranges [first, first + count) of the call, which follow
 * each other in the file, as one Range. */
typedef struct request {
    CURL *easy;
    struct curl_slist *headers;
    void *const *bufs;          /* the call's arrays */
    const size_t *sizes;
    uint64_t file_nbytes;
    int first, count;
    uint64_t start;
    size_t total;               /* bytes asked */
    int done;                   /* every byte is in place */
    /* One attempt's state: */
    size_t got;                 /* body bytes placed */
    int cursor;                 /* range and offset the next byte goes to */
    size_t cursor_off;
    body_verdict_t verdict;
    int range_ok;               /* Content-Range names exactly the bytes asked */
    int finished;               /* libcurl reported the transfer over */
    long status;
    char status_line[128];
    char refusal[320];          /* why the body was refused */
    int refusal_transient;
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
} request_t;

/* ------------------------------ connection sets ------------------------- */

const char *
raster__http_url_of(const char *path)
{
    static const char vsicurl[] = "/vsicurl/";
    if (strncmp(path, vsicurl, sizeof vsicurl - 1) != 0)
        return NULL;
    const char *url = path + sizeof vsicurl - 1;
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0 ? url : NULL;
}

static pthread_key_t conn_key;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

/* Thread exit: the thread's connections close (inside the gate, as every
 * libcurl call).  Not a forked child's inherited set: its sockets are the
 * parent's too (closing a TLS one would write to it).  The one libcurl call
 * not in a call frame (gdal_env.c): a thread-exit destructor may run after
 * GDAL's own per-thread state is gone, so it touches no GDAL error handler,
 * only the gate. */
static void
conn_set_free(void *p)
{
    conn_set_t *c = p;
    if (c->pid != getpid())
        return;                 /* forgotten, as its parent's */
    raster__gdal_enter();
    curl_multi_cleanup(c->multi);
    raster__gdal_leave();
    free(c);
}

static void
conn_key_create(void)
{
    (void)pthread_key_create(&conn_key, conn_set_free);
}

/* This thread's connection set (made on its first use, and again in a
 * forked child, which forgets its parent's); NULL when out of memory.
 * Outside the gate. */
static conn_set_t *
conn_set_of_thread(void)
{
    pthread_once(&conn_once, conn_key_create);
    conn_set_t *c = pthread_getspecific(conn_key);
    if (c != NULL && c->pid == getpid())
        return c;
    if ((c = calloc(1, sizeof *c)) == NULL)
        return NULL;
    c->pid = getpid();
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    c->multi = curl_multi_init();
    if (c->multi != NULL)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)MAX_CONNECTIONS);
    raster__gdal_frame_leave(&f, RASTER_OK);
    if (c->multi == NULL || pthread_setspecific(conn_key, c) != 0) {
        conn_set_free(c);
        return NULL;
    }
    return c;
}

/* ------------------------------ callbacks ------------------------------ */

/* Each header line of the response (libcurl: not NUL-terminated). */
static size_t
on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    request_t *r = ud;
    const size_t n = size * nmemb;
    char line[256];
    size_t len = n < sizeof line - 1 ? n : sizeof line - 1;
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'))
        len--;
    memcpy(line, p, len);
    line[len] = '\0';
    unsigned long long a, b;
    if (strncmp(line, "HTTP/", 5) == 0) {
        /* A new response (after a redirect or a 100 Continue): start over. */
        snprintf(r->status_line, sizeof r->status_line, "%.127s", line);
        r->range_ok = 0;
    } else if (strncasecmp(line, "Content-Range:", 14) == 0 &&
               sscanf(line + 14, " bytes %llu-%llu", &a, &b) == 2) {
        r->range_ok = a == r->start && b == r->start + r->total - 1;
    }
    return n;
}

static body_verdict_t
refuse(request_t *r, int transient, const char *why)
{
    snprintf(r->refusal, sizeof r->refusal, "%s", why);
    r->refusal_transient = transient;
    return REFUSED;
}

/* What the body of this response is for: the bytes asked (206 with the
 * Content-Range asked, or 200 for a range that is the whole file), an
 * error page to skip (the status says what failed), or something to refuse
 * (other bytes than asked, which must never reach a pixel). */
static body_verdict_t
judge_body(request_t *r)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status == 206)
        return r->range_ok ? PLACING
                           : refuse(r, 1, "the server answered other bytes than the range asked "
                                          "(Content-Range)");
    if (status == 200)
        return r->start == 0 && r->total == r->file_nbytes
                   ? PLACING
                   : refuse(r, 0, "the server ignores HTTP Range requests, and reading part of a "
                                  "remote file needs them: serve it from a server that answers "
                                  "them, such as nginx, Apache or object storage, or download the "
                                  "file and open it locally");
    return DISCARDING;
}

/* Body bytes: into the ranges' buffers, in order; never past what was asked. */
static size_t
on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    request_t *r = ud;
    size_t n = size * nmemb;
    if (r->verdict == UNDECIDED)
        r->verdict = judge_body(r);
    if (r->verdict == DISCARDING)
        return n;
    if (r->verdict == REFUSED)
        return 0;               /* ends the transfer (CURLE_WRITE_ERROR) */
    if (n > r->total - r->got) {
        r->verdict = refuse(r, 1, "the server sent more bytes than the range asked");
        return 0;
    }
    r->got += n;
    while (n > 0) {
        const size_t room = r->sizes[r->first + r->cursor] - r->cursor_off;
        const size_t take = n < room ? n : room;
        memcpy((uint8_t *)r->bufs[r->first + r->cursor] + r->cursor_off, p, take);
        p += take;
        n -= take;
        r->cursor_off += take;
        if (r->cursor_off == r->sizes[r->first + r->cursor])
            r->cursor++, r->cursor_off = 0;
    }
    return size * nmemb;
}

/* ------------------------------ one round of transfers ------------------ */

/* Inside the gate: a fresh attempt of 'r' added to the multi handle. */
static raster_status_t
request_start(conn_set_t *h, const char *url, request_t *r)
{
    r->got = 0;
    r->cursor = 0;
    r->cursor_off = 0;
    r->verdict = UNDECIDED;
    r->range_ok = r->finished = 0;
    r->status = 0;
    r->status_line[0] = r->refusal[0] = r->errbuf[0] = '\0';
    r->result = CURLE_OK;
    r->easy = curl_easy_init();
    if (r->easy == NULL)
        return RASTER_E_NOMEM;
    r->headers = raster__cpl_http_set_options(r->easy, url, NULL);
    char range[64];
    snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)r->start,
             (unsigned long long)(r->start + r->total - 1));
    curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(r->easy, CURLOPT_RANGE, range);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
        return RASTER_E_NOMEM;
    return RASTER_OK;
}

/* Inside the gate: record the requests libcurl has finished. */
static void
collect_finished(conn_set_t *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        request_t *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        r->result = m->data.result;
        r->finished = 1;
    }
}

/* Inside the gate: the attempt's easy handle and headers go. */
static void
request_end(conn_set_t *h, request_t *r)
{
    if (r->easy == NULL)
        return;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->finished) {
        r->result = CURLE_FAILED_INIT;
        snprintf(r->errbuf, sizeof r->errbuf, "libcurl's multi interface failed");
    }
    curl_multi_remove_handle(h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    r->easy = NULL;
    r->headers = NULL;
}

/* Runs an attempt of every request not done until all have finished, in
 * the caller's frame 'f': the gate is held around libcurl's work and left
 * for the network wait (the file's comment says why that wait holds no
 * lock). */
static raster_status_t
transfer_round(raster__gdal_frame_t *f, conn_set_t *h, const char *url, request_t *reqs, int nreq)
{
    raster_status_t st = RASTER_OK;
    for (int i = 0; i < nreq && st == RASTER_OK; i++)
        if (!reqs[i].done)
            st = request_start(h, url, &reqs[i]);
    while (st == RASTER_OK) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(h->multi, &running);
        collect_finished(h);
        if (mc != CURLM_OK || running == 0)
            break;
        raster__gdal_frame_pause(f);
        mc = curl_multi_wait(h->multi, NULL, 0, WAIT_MS, NULL);   /* the network wait */
        raster__gdal_frame_resume(f);
        if (mc != CURLM_OK)
            break;
    }
    for (int i = 0; i < nreq; i++)
        request_end(h, &reqs[i]);
    return st;
}

/* ------------------------------ outcomes and retries -------------------- */

static int
transient_curl_error(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_CONNECT: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE: case CURLE_GOT_NOTHING: case CURLE_OPERATION_TIMEDOUT:
        return 1;
    default:
        return 0;
    }
}

static int
transient_status(long status)
{
    return status == 429 || status == 500 || (status >= 502 && status <= 504);
}

/* NULL when the attempt brought every byte asked; otherwise what failed
 * (in 'buf'), and *transient says whether another attempt may do better. */
static const char *
attempt_failure(const request_t *r, char *buf, size_t bufn, int *transient)
{
    *transient = 0;
    const int http_error = r->status != 0 && (r->status < 200 || r->status >= 300);
    if (r->verdict == REFUSED) {
        *transient = r->refusal_transient;
        snprintf(buf, bufn, "%s", r->refusal);
    } else if (http_error) {
        /* "HTTP/1.1 503 Service Unavailable" -> "HTTP 503 Service Unavailable" */
        const char *sp = strchr(r->status_line, ' ');
        *transient = transient_status(r->status);
        if (sp != NULL)
            snprintf(buf, bufn, "HTTP%s", sp);
        else
            snprintf(buf, bufn, "HTTP %ld", r->status);
    } else if (r->result != CURLE_OK) {
        *transient = transient_curl_error(r->result);
        snprintf(buf, bufn, "%s%s%s", curl_easy_strerror(r->result), r->errbuf[0] ? ": " : "", r->errbuf);
    } else if (r->got < r->total) {
        *transient = 1;
        snprintf(buf, bufn, "short body: %zu of %zu bytes", r->got, r->total);
    } else {
        return NULL;
    }
    return buf;
}

typedef struct retry_rule {
    int max_retry;
    double delay_s;
} retry_rule_t;

/* In a frame. */
static retry_rule_t
retry_rule(void)
{
    retry_rule_t rule = {DEFAULT_MAX_RETRY, DEFAULT_RETRY_DELAY_S};
    const char *n = CPLGetConfigOption("GDAL_HTTP_MAX_RETRY", NULL);
    const char *d = CPLGetConfigOption("GDAL_HTTP_RETRY_DELAY", NULL);
    if (n != NULL)
        rule.max_retry = atoi(n) > 0 ? atoi(n) : 0;
    if (d != NULL)
        rule.delay_s = CPLAtof(d) > 0 ? CPLAtof(d) : 0;
    return rule;
}

/* Outside the gate: a back-off sleep must not hold a fork. */
static void
sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The call's ranges as requests, consecutive ranges joined; NULL on OOM. */
static request_t *
requests_of(int n, void **bufs, const uint64_t *offs, const size_t *sizes, uint64_t file_nbytes, int *nreq)
{
    request_t *reqs = calloc((size_t)n, sizeof *reqs);
    if (reqs == NULL)
        return NULL;
    int k = -1;
    for (int i = 0; i < n; i++) {
        if (k >= 0 && reqs[k].start + reqs[k].total == offs[i]) {
            reqs[k].count++;
            reqs[k].total += sizes[i];
            continue;
        }
        reqs[++k] = (request_t){.bufs = bufs, .sizes = sizes, .file_nbytes = file_nbytes, .first = i,
                                .count = 1, .start = offs[i], .total = sizes[i]};
    }
    *nreq = k + 1;
    return reqs;
}

/* Marks the requests whose attempt brought every byte done; the first that
 * failed (its cause in 'cause'), or NULL; *all_transient: whether every
 * failure may do better on another attempt. */
static const request_t *
judge_round(request_t *reqs, int nreq, char *cause, size_t cause_n, int *all_transient)
{
    const request_t *failed = NULL;
    *all_transient = 1;
    for (int i = 0; i < nreq; i++) {
        request_t *r = &reqs[i];
        char buf[512];
        int transient;
        if (r->done)
            continue;
        if (attempt_failure(r, buf, sizeof buf, &transient) == NULL) {
            r->done = 1;
            continue;
        }
        if (failed == NULL) {
            failed = r;
            snprintf(cause, cause_n, "%s", buf);
        }
        *all_transient &= transient;
    }
    return failed;
}

raster_status_t
raster__http_read_ranges(const char *url, const char *name, uint64_t file_nbytes, int n, void **bufs,
                         const uint64_t *offs, const size_t *sizes, const char *what)
{
    if (n <= 0)
        return RASTER_OK;
    conn_set_t *h = conn_set_of_thread();
    RASTER_CHECK(h != NULL, RASTER_E_NOMEM, "%s: out of memory for HTTP connections", name);
    int nreq = 0;
    request_t *reqs = requests_of(n, bufs, offs, sizes, file_nbytes, &nreq);
    RASTER_CHECK(reqs != NULL, RASTER_E_NOMEM, "%s: out of memory for %d range requests", name, n);
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);   /* CPLHTTPSetOptions may say something: not on stderr */
    const retry_rule_t rule = retry_rule();
    double delay_s = rule.delay_s;
    raster_status_t st = RASTER_OK;
    for (int round = 0;; round++) {
        st = transfer_round(&f, h, url, reqs, nreq);
        if (st != RASTER_OK) {
            st = raster__fail(st, "%s: %s: out of memory for an HTTP request", name, what);
            break;
        }
        char cause[512];
        int all_transient;
        const request_t *failed = judge_round(reqs, nreq, cause, sizeof cause, &all_transient);
        if (failed == NULL)
            break;
        if (!all_transient || round >= rule.max_retry) {
            char retries[64] = "";
            if (round > 0)
                snprintf(retries, sizeof retries, " (after %d retr%s, GDAL_HTTP_MAX_RETRY)", round,
                         round == 1 ? "y" : "ies");
            st = raster__fail(RASTER_E_IO, "%s: %s: reading %zu bytes at offset %llu over HTTP failed: %s%s",
                              name, what, failed->total, (unsigned long long)failed->start, cause, retries);
            break;
        }
        raster__gdal_frame_pause(&f);   /* the retry's wait holds no lock either */
        sleep_s(delay_s);
        raster__gdal_frame_resume(&f);
        delay_s *= 2;
    }
    raster__gdal_frame_leave(&f, st);
    free(reqs);
    return st;
}
