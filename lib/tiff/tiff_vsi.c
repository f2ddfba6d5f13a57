/*
 * tiff_vsi.c - raw segment bytes of remote files (/vsicurl/, /vsis3/, ...)
 * through GDAL's virtual file system, next to tiff_io.c's pread.
 *
 * The directory is parsed once, at open, by libtiff reading through a VSI
 * handle: GDAL has just opened the same URL for the metadata, so the header
 * is already in /vsicurl/'s cache and costs no second request.  After that a
 * read fetches every byte range of its plan with one VSIFReadMultiRangeL:
 * GDAL sends the ranges as parallel requests (GDAL_HTTP_MULTIRANGE), merging
 * consecutive ones (GDAL_HTTP_MERGE_CONSECUTIVE_RANGES), and tiff_read.c has
 * already joined neighbours separated by small gaps (a COG's tile leaders
 * and trailers), so a window costs about one request per row of touched
 * tiles and waits for one round trip, not one per tile.  GDAL's parallel
 * multi-range read does not retry; when it fails, each range is read again
 * on its own with VSIFReadL, which retries as GDAL_HTTP_MAX_RETRY and
 * GDAL_HTTP_RETRY_DELAY say (GDAL's own TIFF reader falls back the same way).
 *
 * VSI handles are not thread-safe and are cheap to open once /vsicurl/ knows
 * the file (no request), so each dataset keeps a small stack of idle
 * handles: a read pops one (opening a new one when all are busy) and pushes
 * it back.  After fork() the parent's handles are forgotten, not closed (their
 * connections belong to the parent), and the child opens its own.
 *
 * Every VSI call runs inside gdal_reader.c's fork gate (raster__gdal_enter /
 * raster__gdal_leave), one call at a time, never nested, so that fork()
 * never copies a GDAL or curl lock held by another thread into the child.
 *
 * Every failure here is the network's (the plan has checked the ranges
 * against the file size): RASTER_E_IO naming the URL, the ranges and GDAL's
 * first message (the HTTP status or curl's error), which GDAL reports through
 * CPLError and this file captures instead of printing.
 */
#include "tiff_internal.h"

#include <cpl_error.h>
#include <cpl_vsi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct raster__tiff_vsi {
    pthread_mutex_t mu;
    pid_t pid;                  /* process the idle handles belong to */
    VSILFILE **idle;            /* owned: handles not in use */
    int idle_count, idle_cap;
};

/* ------------------------------ GDAL messages -------------------------- */

/* What GDAL said during a read, kept per thread instead of printed: its
 * first failure ("Request for A-B failed with response_code=500", "CURL
 * error: ...") and its last retry notice ("HTTP error code: 503 - URL.
 * Retrying again in 1.0 secs"), whichever names the cause. */
typedef struct vsi_errs {
    int failures, retries;
    char first[384];
    char retry[384];
} vsi_errs_t;

static _Thread_local vsi_errs_t vsi_errs;

static void CPL_STDCALL
vsi_errs_handler(CPLErr cls, CPLErrorNum no, const char *msg)
{
    (void)no;
    msg = msg ? msg : "";
    const char *again = cls == CE_Warning ? strstr(msg, ". Retrying") : NULL;
    if (again != NULL) {
        vsi_errs.retries++;
        snprintf(vsi_errs.retry, sizeof vsi_errs.retry, "%.*s", (int)(again - msg), msg);
    } else if (cls >= CE_Failure && vsi_errs.failures++ == 0) {
        snprintf(vsi_errs.first, sizeof vsi_errs.first, "%s", msg);
    }
}

static void
capture_begin(void)
{
    memset(&vsi_errs, 0, sizeof vsi_errs);
    CPLPushErrorHandler(vsi_errs_handler);
}

static void
capture_end(void)
{
    CPLPopErrorHandler();
}

/* The cause of a failed read, for the message (valid until the next read). */
static const char *
capture_detail(void)
{
    static _Thread_local char d[900];
    const char *cause = vsi_errs.first[0] ? vsi_errs.first
                        : vsi_errs.retry[0] ? vsi_errs.retry
                                            : "the request failed (GDAL gives no HTTP status for "
                                              "it; CPL_CURL_VERBOSE=YES shows the exchange)";
    if (vsi_errs.retries > 0)
        snprintf(d, sizeof d, "%.500s (after %d retr%s, GDAL_HTTP_MAX_RETRY)", cause,
                 vsi_errs.retries, vsi_errs.retries == 1 ? "y" : "ies");
    else
        snprintf(d, sizeof d, "%.500s", cause);
    if (strstr(cause, RASTER__GDAL_NO_RANGE_MSG)) {
        const size_t n = strlen(d);
        snprintf(d + n, sizeof d - n, "%s", RASTER__GDAL_NO_RANGE_HINT);
    }
    return d;
}

/* ------------------------------ handles -------------------------------- */

static VSILFILE *
handle_open(const struct raster__tiff *t)
{
    capture_begin();
    raster__gdal_enter();
    VSILFILE *fp = VSIFOpenExL(t->path, "rb", TRUE);
    raster__gdal_leave();
    capture_end();
    if (fp == NULL)
        raster__fail(RASTER_E_IO, "%s: cannot open it through GDAL's VSI: %s", t->path,
                     capture_detail());
    return fp;
}

static VSILFILE *
handle_acquire(const struct raster__tiff *t)
{
    struct raster__tiff_vsi *v = t->vsi;
    VSILFILE *fp = NULL;
    pthread_mutex_lock(&v->mu);
    if (v->pid != getpid()) {
        v->idle_count = 0;      /* the parent's: forget, never close */
        v->pid = getpid();
    }
    if (v->idle_count > 0)
        fp = v->idle[--v->idle_count];
    pthread_mutex_unlock(&v->mu);
    return fp != NULL ? fp : handle_open(t);
}

static void
handle_release(const struct raster__tiff *t, VSILFILE *fp)
{
    struct raster__tiff_vsi *v = t->vsi;
    pthread_mutex_lock(&v->mu);
    if (v->pid == getpid()) {
        if (v->idle_count == v->idle_cap) {
            const int cap = v->idle_cap ? v->idle_cap * 2 : 4;
            VSILFILE **p = realloc(v->idle, (size_t)cap * sizeof *p);
            if (p != NULL)
                v->idle = p, v->idle_cap = cap;
        }
        if (v->idle_count < v->idle_cap) {
            v->idle[v->idle_count++] = fp;
            fp = NULL;
        }
    }
    pthread_mutex_unlock(&v->mu);
    if (fp != NULL) {
        raster__gdal_enter();
        VSIFCloseL(fp);
        raster__gdal_leave();
    }
}

raster_status_t
raster__tiff_vsi_open(struct raster__tiff *t, uint64_t *nbytes_out)
{
    struct raster__tiff_vsi *v = calloc(1, sizeof *v);
    RASTER_CHECK(v != NULL, RASTER_E_NOMEM, "%s: out of memory", t->path);
    pthread_mutex_init(&v->mu, NULL);
    v->pid = getpid();
    t->vsi = v;
    VSILFILE *fp = handle_open(t);
    if (fp == NULL)
        return RASTER_E_IO;
    /* /vsicurl/ knows the size from its HEAD (cached since GDAL's open). */
    raster__gdal_enter();
    const int ok = VSIFSeekL(fp, 0, SEEK_END) == 0;
    const vsi_l_offset size = ok ? VSIFTellL(fp) : 0;
    raster__gdal_leave();
    handle_release(t, fp);
    RASTER_CHECK(ok && size > 0, RASTER_E_IO, "%s: GDAL's VSI reports no size for it", t->path);
    *nbytes_out = (uint64_t)size;
    return RASTER_OK;
}

void
raster__tiff_vsi_close(struct raster__tiff *t)
{
    struct raster__tiff_vsi *v = t->vsi;
    if (v == NULL)
        return;
    if (v->pid == getpid() && v->idle_count > 0) {
        raster__gdal_enter();
        for (int i = 0; i < v->idle_count; i++)
            VSIFCloseL(v->idle[i]);
        raster__gdal_leave();
    }
    free(v->idle);
    pthread_mutex_destroy(&v->mu);
    free(v);
    t->vsi = NULL;
}

/* ------------------------------ libtiff over VSI ----------------------- */

/* libtiff's client procedures over one VSI handle; the handle goes back to
 * the dataset's stack at TIFFClose(). */
typedef struct tiff_client {
    const struct raster__tiff *t;
    VSILFILE *fp;
} tiff_client_t;

static tmsize_t
client_read(thandle_t h, void *buf, tmsize_t n)
{
    const tiff_client_t *c = (const tiff_client_t *)h;
    if (n <= 0)
        return 0;
    raster__gdal_enter();
    const size_t got = VSIFReadL(buf, 1, (size_t)n, c->fp);
    raster__gdal_leave();
    return (tmsize_t)got;
}

static tmsize_t
client_write(thandle_t h, void *buf, tmsize_t n)
{
    (void)h, (void)buf, (void)n;
    return 0;
}

static toff_t
client_seek(thandle_t h, toff_t off, int whence)
{
    const tiff_client_t *c = (const tiff_client_t *)h;
    raster__gdal_enter();
    const int ok = VSIFSeekL(c->fp, (vsi_l_offset)off, whence) == 0;
    const toff_t pos = ok ? (toff_t)VSIFTellL(c->fp) : (toff_t)-1;
    raster__gdal_leave();
    return pos;
}

static toff_t
client_size(thandle_t h)
{
    const tiff_client_t *c = (const tiff_client_t *)h;
    return (toff_t)c->t->file_nbytes;
}

static int
client_close(thandle_t h)
{
    tiff_client_t *c = (tiff_client_t *)h;
    handle_release(c->t, c->fp);
    free(c);
    return 0;
}

static int
client_map(thandle_t h, void **base, toff_t *size)
{
    (void)h, (void)base, (void)size;
    return 0;
}

static void
client_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h, (void)base, (void)size;
}

TIFF *
raster__tiff_vsi_tiff_open(const struct raster__tiff *t, TIFFOpenOptions *opts)
{
    tiff_client_t *c = malloc(sizeof *c);
    if (c == NULL)
        return NULL;
    c->t = t;
    if ((c->fp = handle_acquire(t)) == NULL || client_seek((thandle_t)c, 0, SEEK_SET) != 0) {
        if (c->fp != NULL)
            handle_release(t, c->fp);
        free(c);
        return NULL;
    }
    /* On failure libtiff calls the close procedure itself. */
    return TIFFClientOpenExt(t->path, "rm", (thandle_t)c, client_read, client_write, client_seek,
                             client_close, client_size, client_map, client_unmap, opts);
}

/* ------------------------------ reads ---------------------------------- */

/* Read one range with VSIFReadL (GDAL retries it as configured); inside
 * capture_begin()/capture_end(). */
static raster_status_t
read_one(const struct raster__tiff *t, VSILFILE *fp, void *buf, size_t nbytes, uint64_t off,
         const char *what)
{
    raster__gdal_enter();
    const int ok = VSIFSeekL(fp, (vsi_l_offset)off, SEEK_SET) == 0 &&
                   VSIFReadL(buf, 1, nbytes, fp) == nbytes;
    raster__gdal_leave();
    if (ok)
        return RASTER_OK;
    return raster__fail(RASTER_E_IO, "%s: %s: reading %zu bytes at offset %llu over the network "
                        "failed: %s", t->path, what, nbytes, (unsigned long long)off,
                        capture_detail());
}

static int
multi_range(int n, void **bufs, const uint64_t *offs, const size_t *sizes, VSILFILE *fp)
{
    raster__gdal_enter();
    const int r = VSIFReadMultiRangeL(n, bufs, (const vsi_l_offset *)offs, sizes, fp);
    raster__gdal_leave();
    return r;
}

raster_status_t
raster__tiff_vsi_read_ranges(const struct raster__tiff *t, int n, void **bufs, const uint64_t *offs,
                             const size_t *sizes, const char *what)
{
    _Static_assert(sizeof(vsi_l_offset) == sizeof(uint64_t), "vsi_l_offset is 64-bit");
    if (n <= 0)
        return RASTER_OK;
    VSILFILE *fp = handle_acquire(t);
    if (fp == NULL)
        return RASTER_E_IO;
    raster_status_t st = RASTER_OK;
    capture_begin();
    if (n == 1) {
        st = read_one(t, fp, bufs[0], sizes[0], offs[0], what);
    } else if (multi_range(n, bufs, offs, sizes, fp) != 0) {
        /* GDAL's parallel multi-range read does not retry: read each range
         * again on its own, which retries, and which names the range. */
        for (int i = 0; i < n && st == RASTER_OK; i++)
            st = read_one(t, fp, bufs[i], sizes[i], offs[i], what);
    }
    capture_end();
    handle_release(t, fp);
    return st;
}

raster_status_t
raster__tiff_vsi_read(const struct raster__tiff *t, void *buf, size_t nbytes, uint64_t off,
                      const char *what)
{
    void *b[1] = {buf};
    const uint64_t o[1] = {off};
    const size_t s[1] = {nbytes};
    return raster__tiff_vsi_read_ranges(t, 1, b, o, s, what);
}
