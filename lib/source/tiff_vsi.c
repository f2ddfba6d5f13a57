/*
 * tiff_vsi.c - the byte source of a remote file (source.h; /vsicurl/,
 * /vsis3/, ...), next to tiff_io.c's pread.
 *
 * The directory is parsed once, at open, by libtiff reading through this
 * source (tiff_source.c).  The source says it batches (batch_reads), so a
 * read fetches every byte range of its plan at once, and tiff_read.c has
 * already joined neighbours separated by small gaps (a COG's tile leaders
 * and trailers), so a window costs about one request per row of touched
 * tiles and waits for one round trip, not one per tile.
 *
 * Two ways to the bytes, chosen at open:
 *   - http(s) URLs (/vsicurl/http...): tiff_http.c's transfers, with GDAL's
 *     HTTP options but libcurl's multi interface driven here, so that the
 *     wait on the network happens outside the fork gate (fork() never
 *     waits for a stalled server) and a transient failure is retried and
 *     never cached (tiff_http.c has the rule).  GDAL opened the URL for the
 *     metadata just before, so the size, the Last-Modified time and the
 *     directory's bytes (libtiff's many small reads at open) are in GDAL's
 *     /vsicurl/ cache: those come through GDAL's VSI, without a request,
 *     and only the pixel reads (after the first prepare()) are transfers.
 *   - every other network path (/vsis3/, /vsigs/, /vsiaz/, chained ones),
 *     whose requests GDAL signs: GDAL's VSI, one VSIFReadMultiRangeL per
 *     read (parallel requests; GDAL_HTTP_MULTIRANGE), then range by range
 *     with VSIFReadL, which retries as GDAL_HTTP_MAX_RETRY and
 *     GDAL_HTTP_RETRY_DELAY say, when that fails (GDAL's own TIFF reader
 *     falls back the same way).  Those calls are GDAL calls inside the fork
 *     gate, so a fork() waits for them (at most GDAL_HTTP_TIMEOUT).  A failed
 *     read clears GDAL's /vsicurl/ cache of the path
 *     (VSICurlPartialClearCache): GDAL 3.6 keeps the bytes of a body cut
 *     short as a region of the file, and would serve that short region to
 *     every later read of the range.
 *
 * Handles are not thread-safe and are cheap to open once GDAL knows the
 * file (no request), so each dataset keeps a stack of idle ones (gdal_env.c's
 * raster__handle_stack_t): a read pops one (opening a new one when all are
 * busy) and pushes it back.  After fork() the parent's handles are
 * forgotten, not closed (their connections belong to the parent), and the
 * child opens its own.
 *
 * Every failure here is the network's (the plan has checked the ranges
 * against the file size): RASTER_E_IO naming the URL, the ranges and the
 * cause (the HTTP status or the transport's error).
 *
 * Layer: lib/source/ over tiff_http.c and gdal_env.c; it never calls
 * gdal_reader.c or dataset.c.
 */
#include "http.h"
#include "source.h"

#include <cpl_error.h>
#include <cpl_vsi.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vsi_source {
    raster__tiff_source_t base;     /* first: the interface */
    raster__handle_stack_t handles; /* idle vsi_handle_t *, closed by vsi_close */
    const char *url;                /* http(s): the URL tiff_http.c fetches (a view
                                     * of base.path); NULL: GDAL's VSI reads */
    atomic_int pixel_reads;         /* a read has prepared: the open is over */
} vsi_source_t;

/* One reader's GDAL VSI handle, opened when a read first needs it (http
 * reads after the open need none: tiff_http.c keeps connections per thread). */
typedef struct vsi_handle {
    VSILFILE *fp;
} vsi_handle_t;

/* ------------------------------ handles -------------------------------- */

static void
fp_close(VSILFILE *fp)
{
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    VSIFCloseL(fp);
    raster__gdal_frame_leave(&f, RASTER_OK);
}

/* The stack's close: called outside the gate (pushes and the destroy here
 * run outside it), so it opens a frame itself. */
static void
vsi_close(void *p)
{
    vsi_handle_t *vh = p;
    if (vh->fp != NULL)
        fp_close(vh->fp);
    free(vh);
}

static VSILFILE *
vsi_open(const char *path)
{
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    VSILFILE *fp = VSIFOpenExL(path, "rb", TRUE);
    raster__gdal_frame_leave(&f, RASTER_OK);
    if (fp == NULL)
        raster__fail(raster__gdal_capture_status(path, RASTER__GDAL_CALL_VSI, RASTER_E_IO),
                     "%s: cannot open it through GDAL's VSI: %s", path, raster__gdal_capture_detail());
    return fp;
}

static vsi_handle_t *
handle_acquire(vsi_source_t *v)
{
    vsi_handle_t *vh = raster__handle_stack_pop(&v->handles);
    if (vh == NULL && (vh = calloc(1, sizeof *vh)) == NULL)
        raster__fail(RASTER_E_NOMEM, "%s: out of memory", v->base.path);
    return vh;
}

/* Opens the VSI handle of 'vh' if it is not open yet. */
static raster_status_t
handle_ready(const vsi_source_t *v, vsi_handle_t *vh)
{
    if (vh->fp == NULL && (vh->fp = vsi_open(v->base.path)) == NULL)
        return RASTER_E_IO;     /* the message is set */
    return RASTER_OK;
}

static void
handle_release(vsi_source_t *v, vsi_handle_t *vh)
{
    raster__handle_stack_push(&v->handles, vh);
}

/* ------------------------------ reads ---------------------------------- */

/* Read one range with VSIFReadL (GDAL retries it as configured), inside a
 * read's capture (its frame captures into it). */
static raster_status_t
read_one(const vsi_source_t *v, VSILFILE *fp, void *buf, size_t nbytes, uint64_t off, const char *what)
{
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    const int ok = VSIFSeekL(fp, (vsi_l_offset)off, SEEK_SET) == 0 &&
                   VSIFReadL(buf, 1, nbytes, fp) == nbytes;
    raster__gdal_frame_leave(&f, RASTER_OK);
    if (ok)
        return RASTER_OK;
    return raster__fail(RASTER_E_IO, "%s: %s: reading %zu bytes at offset %llu over the network "
                        "failed: %s", v->base.path, what, nbytes, (unsigned long long)off,
                        raster__gdal_capture_detail());
}

static int
multi_range(int n, void **bufs, const uint64_t *offs, const size_t *sizes, VSILFILE *fp)
{
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    const int r = VSIFReadMultiRangeL(n, bufs, (const vsi_l_offset *)offs, sizes, fp);
    raster__gdal_frame_leave(&f, RASTER_OK);
    return r;
}

/* A failed read leaves nothing behind in GDAL's /vsicurl/ caches of the
 * path (regions, the file's properties): the next read asks the server. */
static void
forget_failure(const vsi_source_t *v)
{
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    raster__gdal_forget(v->base.path);
    raster__gdal_frame_leave(&f, RASTER_OK);
}

/* GDAL's VSI: all 'n' ranges with one VSIFReadMultiRangeL, then range by
 * range (with GDAL's retries) if that fails. */
static raster_status_t
gdal_read_ranges(const vsi_source_t *v, VSILFILE *fp, int n, void **bufs, const uint64_t *offs,
                 const size_t *sizes, const char *what)
{
    raster_status_t st = RASTER_OK;
    raster__gdal_capture_begin_read(v->base.path);
    if (n == 1) {
        st = read_one(v, fp, bufs[0], sizes[0], offs[0], what);
    } else if (multi_range(n, bufs, offs, sizes, fp) != 0) {
        /* GDAL's parallel multi-range read does not retry: read each range
         * again on its own, which retries, and which names the range. */
        for (int i = 0; i < n && st == RASTER_OK; i++)
            st = read_one(v, fp, bufs[i], sizes[i], offs[i], what);
    }
    raster__gdal_capture_end();
    if (st != RASTER_OK)
        forget_failure(v);
    return st;
}

/* All 'n' ranges; RASTER_E_IO naming the URL, the range and the cause when
 * a range cannot be read. */
static raster_status_t
vsi_read_ranges(raster__tiff_source_t *src, int n, void **bufs, const uint64_t *offs, const size_t *sizes,
                const char *what)
{
    _Static_assert(sizeof(vsi_l_offset) == sizeof(uint64_t), "vsi_l_offset is 64-bit");
    vsi_source_t *v = (vsi_source_t *)src;
    if (n <= 0)
        return RASTER_OK;
    /* The directory, parsed at open by libtiff in many small reads, is
     * in GDAL's /vsicurl/ cache since GDAL's open: GDAL serves it, without
     * a request.  Pixel reads (after the first prepare()) fetch their own. */
    if (v->url != NULL && atomic_load_explicit(&v->pixel_reads, memory_order_relaxed))
        return raster__http_read_ranges(v->url, v->base.path, v->base.nbytes, n, bufs, offs, sizes, what);
    vsi_handle_t *vh = handle_acquire(v);
    if (vh == NULL)
        return RASTER_E_NOMEM;
    raster_status_t st = handle_ready(v, vh);
    if (st == RASTER_OK)
        st = gdal_read_ranges(v, vh->fp, n, bufs, offs, sizes, what);
    handle_release(v, vh);
    return st;
}

/* Rows: one range per row, which GDAL sends as one request (the ranges
 * are consecutive).  The planner fetches a batching source's rows through
 * prefetch() instead, so this is the interface's completeness, not a hot
 * path. */
static raster_status_t
vsi_read_rows(raster__tiff_source_t *src, uint8_t *dst, int64_t dst_stride, size_t row_nbytes,
              uint64_t offset, int64_t nrows, const char *what)
{
    if ((size_t)dst_stride == row_nbytes)
        return raster__tiff_source_read(src, dst, row_nbytes * (size_t)nrows, offset, what);
    enum { ROWS_PER_CALL = 512 };
    void *bufs[ROWS_PER_CALL];
    uint64_t offs[ROWS_PER_CALL];
    size_t sizes[ROWS_PER_CALL];
    for (int64_t r0 = 0; r0 < nrows; r0 += ROWS_PER_CALL) {
        const int n = nrows - r0 < ROWS_PER_CALL ? (int)(nrows - r0) : ROWS_PER_CALL;
        for (int r = 0; r < n; r++) {
            bufs[r] = dst + (r0 + r) * dst_stride;
            offs[r] = offset + (uint64_t)(r0 + r) * row_nbytes;
            sizes[r] = row_nbytes;
        }
        RASTER_TRY(vsi_read_ranges(src, n, bufs, offs, sizes, what));
    }
    return RASTER_OK;
}

/* ------------------------------ the source ----------------------------- */

/* Handles follow fork's rule by themselves (the handle stack).  The first
 * prepare() marks the end of the open: pixel reads follow. */
static raster_status_t
vsi_prepare(raster__tiff_source_t *src)
{
    vsi_source_t *v = (vsi_source_t *)src;
    atomic_store_explicit(&v->pixel_reads, 1, memory_order_relaxed);
    return RASTER_OK;
}

static void
vsi_source_close(raster__tiff_source_t *src)
{
    vsi_source_t *v = (vsi_source_t *)src;
    raster__handle_stack_destroy(&v->handles);
    free(v);
}

static const raster__tiff_source_ops_t vsi_ops = {
    vsi_prepare, vsi_read_ranges, vsi_read_rows, vsi_source_close,
};

raster_status_t
raster__tiff_source_open_vsi(const char *path, raster__tiff_source_t **out)
{
    *out = NULL;
    vsi_source_t *v = calloc(1, sizeof *v);
    RASTER_CHECK(v != NULL, RASTER_E_NOMEM, "%s: out of memory", path);
    v->base = (raster__tiff_source_t){&vsi_ops, path, 0, 1, {0}};
    raster__handle_stack_init(&v->handles, vsi_close);
    v->url = raster__http_url_of(path);
    VSILFILE *fp = vsi_open(path);
    if (fp == NULL) {
        vsi_source_close(&v->base);
        return RASTER_OK;       /* GDAL opened it, VSI does not: GDAL serves it */
    }
    /* /vsicurl/ knows the size from its HEAD (cached since GDAL's open). */
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    const int ok = VSIFSeekL(fp, 0, SEEK_END) == 0;
    const vsi_l_offset size = ok ? VSIFTellL(fp) : 0;
    raster__gdal_frame_leave(&f, RASTER_OK);
    /* The first handle: the directory's reads follow at once. */
    vsi_handle_t *vh = calloc(1, sizeof *vh);
    if (vh != NULL) {
        vh->fp = fp;
        handle_release(v, vh);
    } else {
        fp_close(fp);
    }
    if (!ok || size == 0) {
        vsi_source_close(&v->base);
        return RASTER_OK;       /* no size: GDAL serves it */
    }
    v->base.nbytes = (uint64_t)size;
    /* The tile cache's file identity: URL, size and the Last-Modified time
     * that GDAL parsed from the HEAD of its open (cached: no request). */
    VSIStatBufL vst;
    int64_t mtime_s = 0;
    raster__gdal_frame_enter(&f);
    if (VSIStatL(path, &vst) == 0)
        mtime_s = (int64_t)vst.st_mtime;
    raster__gdal_frame_leave(&f, RASTER_OK);
    raster__tile_key_file_remote(path, v->base.nbytes, mtime_s, v->base.file_id);
    *out = &v->base;
    return RASTER_OK;
}
