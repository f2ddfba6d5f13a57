/*
 * tiff_source.c - libtiff over a byte source (source.h), for the
 * directory parse at open.
 *
 * libtiff reads through client procedures (TIFFClientOpenExt) that go to
 * the source's read_ranges, local file or remote alike, so that the
 * directory's bytes take the same path as the pixels': the fault hook of
 * the local source sees them, and a remote one is served from GDAL's
 * /vsicurl/ cache (GDAL has just opened the same URL).  libtiff reads at a
 * position it moves with seek; the position lives in the caller's client
 * record, so the source itself stays position-free and thread-safe.
 *
 * A read is cut at the file's size at open, as read(2) would cut it: a
 * directory that points past the end gets a short read and libtiff's own
 * verdict.  A read that fails inside the file (EIO, a file truncated since
 * open, the network) is remembered in the client record: libtiff only sees
 * a short read, the caller sees the source's status and message.
 */
#include "source.h"

#include <stdio.h>

static tmsize_t
client_read(thandle_t h, void *buf, tmsize_t n)
{
    raster__tiff_client_t *c = (raster__tiff_client_t *)h;
    const uint64_t size = c->src->nbytes;
    if (n <= 0 || c->pos >= size)
        return 0;
    const size_t want = (uint64_t)n < size - c->pos ? (size_t)n : (size_t)(size - c->pos);
    const raster_status_t st = raster__tiff_source_read(c->src, buf, want, c->pos, "the TIFF directory");
    if (st != RASTER_OK) {
        if (c->st == RASTER_OK)
            c->st = st;
        return -1;
    }
    c->pos += want;
    return (tmsize_t)want;
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
    raster__tiff_client_t *c = (raster__tiff_client_t *)h;
    uint64_t base = 0;
    if (whence == SEEK_CUR)
        base = c->pos;
    else if (whence == SEEK_END)
        base = c->src->nbytes;
    else if (whence != SEEK_SET)
        return (toff_t)-1;
    /* As lseek(2), which libtiff's own descriptor client calls: a position
     * that would be negative (libtiff passes negative offsets as their
     * two's complement) fails and leaves the position as it was; one past
     * the end is fine, and reads there return nothing. */
    const uint64_t pos = base + (uint64_t)off;
    if (pos > (uint64_t)INT64_MAX)
        return (toff_t)-1;
    c->pos = pos;
    return (toff_t)c->pos;
}

static toff_t
client_size(thandle_t h)
{
    const raster__tiff_client_t *c = (const raster__tiff_client_t *)h;
    return (toff_t)c->src->nbytes;
}

static int
client_close(thandle_t h)
{
    (void)h;                    /* the source and the record are the caller's */
    return 0;
}

static int
client_map(thandle_t h, void **base, toff_t *size)
{
    (void)h, (void)base, (void)size;
    return 0;                   /* no mapping: the TIFF is closed before open returns */
}

static void
client_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h, (void)base, (void)size;
}

TIFF *
raster__tiff_source_tiff_open(raster__tiff_client_t *c, raster__tiff_source_t *src,
                              TIFFOpenOptions *opts)
{
    *c = (raster__tiff_client_t){src, 0, RASTER_OK};
    /* "m": no memory mapping.  "O": offsets and byte counts loaded on
     * demand, as GDAL opens TIFFs, so an entry missing from a short table
     * is an error (tables_read then leaves the file to GDAL) instead of a
     * zero, i.e. an empty tile; a source whose every call is a request
     * gets the tables read whole instead, one call each. */
    return TIFFClientOpenExt(src->path, src->batch_reads ? "rm" : "rmO", (thandle_t)c, client_read,
                             client_write, client_seek, client_close, client_size, client_map,
                             client_unmap, opts);
}
