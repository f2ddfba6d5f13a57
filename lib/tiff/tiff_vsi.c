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
 * the file (no request), so each dataset keeps a stack of idle handles
 * (gdal_env.c's raster__handle_stack_t): a read pops one (opening a new one
 * when all are busy) and pushes it back.  After fork() the parent's handles
 * are forgotten, not closed (their connections belong to the parent), and
 * the child opens its own.
 *
 * Every VSI call runs inside gdal_env.c's fork gate (raster__gdal_enter /
 * raster__gdal_leave), one call at a time, never nested, so that fork()
 * never copies a GDAL or curl lock held by another thread into the child.
 *
 * Every failure here is the network's (the plan has checked the ranges
 * against the file size): RASTER_E_IO naming the URL, the ranges and GDAL's
 * first message (the HTTP status or curl's error), which GDAL reports through
 * CPLError and gdal_env.c's capture keeps instead of printing.
 *
 * Layer: lib/tiff/ over gdal_env.c; it never calls gdal_reader.c or
 * dataset.c.
 */
#include "tiff_internal.h"

#include <cpl_error.h>
#include <cpl_vsi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct raster__tiff_vsi {
    raster__handle_stack_t handles; /* idle VSILFILE *, closed by vsi_close */
};


/* ------------------------------ handles -------------------------------- */

static VSILFILE *
handle_open(const struct raster__tiff *t)
{
    raster__gdal_capture_begin();
    raster__gdal_enter();
    VSILFILE *fp = VSIFOpenExL(t->path, "rb", TRUE);
    raster__gdal_leave();
    raster__gdal_capture_end();
    if (fp == NULL)
        raster__fail(raster__gdal_capture_status(t->path, RASTER__GDAL_CALL_VSI, RASTER_E_IO),
                     "%s: cannot open it through GDAL's VSI: %s", t->path, raster__gdal_capture_detail());
    return fp;
}

static VSILFILE *
handle_acquire(const struct raster__tiff *t)
{
    VSILFILE *fp = raster__handle_stack_pop(&t->vsi->handles);
    return fp != NULL ? fp : handle_open(t);
}

/* The stack's close: called outside the gate (pushes and the destroy here
 * run outside it), so it enters the gate itself. */
static void
vsi_close(void *fp)
{
    raster__gdal_enter();
    VSIFCloseL((VSILFILE *)fp);
    raster__gdal_leave();
}

static void
handle_release(const struct raster__tiff *t, VSILFILE *fp)
{
    raster__handle_stack_push(&t->vsi->handles, fp);
}

raster_status_t
raster__tiff_vsi_open(struct raster__tiff *t, uint64_t *nbytes_out)
{
    struct raster__tiff_vsi *v = calloc(1, sizeof *v);
    RASTER_CHECK(v != NULL, RASTER_E_NOMEM, "%s: out of memory", t->path);
    raster__handle_stack_init(&v->handles, vsi_close);
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
    raster__handle_stack_destroy(&v->handles);
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
 * raster__gdal_capture_begin()/raster__gdal_capture_end(). */
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
                        raster__gdal_capture_detail());
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
    raster__gdal_capture_begin();
    if (n == 1) {
        st = read_one(t, fp, bufs[0], sizes[0], offs[0], what);
    } else if (multi_range(n, bufs, offs, sizes, fp) != 0) {
        /* GDAL's parallel multi-range read does not retry: read each range
         * again on its own, which retries, and which names the range. */
        for (int i = 0; i < n && st == RASTER_OK; i++)
            st = read_one(t, fp, bufs[i], sizes[i], offs[i], what);
    }
    raster__gdal_capture_end();
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
