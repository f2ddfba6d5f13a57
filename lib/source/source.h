/*
 * source.h - the source folder of lib/ (lib/README.md): where the native
 * TIFF reader's file bytes come from.  Uses runtime/ (GDAL VSI, the fork
 * gate) and cache/ (file identities for tile keys).
 *
 * One small interface with two implementations, chosen once, at open
 * (tiff_layout.c): a local file read with pread/preadv through one
 * descriptor (tiff_io.c), or a remote one read through GDAL's virtual file
 * system (tiff_vsi.c).  Every read of file bytes goes through it: libtiff's
 * directory parse at open (tiff_source.c), the LZW sniff (tiff_layout.c),
 * segment and row reads (tiff_read.c).  Nothing in lib/read/ knows
 * which kind of file it reads; where the two kinds want different read
 * patterns, the source says so with a property (batch_reads), and the
 * planner follows the property, not the kind.
 *
 * Any number of threads may call prepare() and read at once (prepare()
 * is idempotent, reads keep no position); a source may keep state of its
 * own behind its lock (the remote one, a stack of idle handles), so reads
 * take it non-const.  close() runs alone, after the last read.
 */
#ifndef RASTER_TIFF_SOURCE_H
#define RASTER_TIFF_SOURCE_H

#include "cache/cache.h"
#include "runtime/runtime.h"

#include <stddef.h>
#include <stdint.h>
#include <tiffio.h>

typedef struct raster__tiff_source raster__tiff_source_t;

typedef struct raster__tiff_source_ops {
    /* Make the source readable from this process; called once per read,
     * before that read's first byte.  The local source opens its file
     * again after fork() (and checks it is the same file: RASTER_E_IO if it
     * was replaced), so the reads after it cost no getpid(). */
    raster_status_t (*prepare)(raster__tiff_source_t *src);
    /* Read 'n' byte ranges exactly: sizes[i] bytes at offs[i] into bufs[i].
     * A file that ends before a range does is RASTER_E_CORRUPT, an OS or
     * network failure RASTER_E_IO; the message names the file and 'what'. */
    raster_status_t (*read_ranges)(raster__tiff_source_t *src, int n, void **bufs,
                                   const uint64_t *offs, const size_t *sizes, const char *what);
    /* Read 'nrows' consecutive rows of 'row_nbytes' at 'offset' into rows
     * 'dst_stride' bytes apart at 'dst' (uncompressed rows straight into
     * the destination: one preadv per 512 rows for a local file). */
    raster_status_t (*read_rows)(raster__tiff_source_t *src, uint8_t *dst, int64_t dst_stride,
                                 size_t row_nbytes, uint64_t offset, int64_t nrows, const char *what);
    /* Release everything; 'src' is freed.  Runs in whichever process
     * closes the dataset. */
    void (*close)(raster__tiff_source_t *src);
} raster__tiff_source_ops_t;

/* The part every source shares; each implementation embeds it first. */
struct raster__tiff_source {
    const raster__tiff_source_ops_t *ops;  /* static, per implementation */
    const char *path;                      /* view of ds->path: messages, re-opens */
    uint64_t nbytes;                       /* the file's size at open */
    /* 1: every call costs a round trip (a network request), so callers
     * batch: a read fetches all its ranges with one read_ranges() before
     * decoding, and libtiff loads the offset tables whole at open.  0:
     * calls are cheap (pread): groups are read on the decode threads, one
     * call each, uncompressed rows straight into the destination, and
     * libtiff loads offsets on demand. */
    int batch_reads;
    uint64_t file_id[5];                   /* the file's identity in tile-cache keys */
};

/* The two implementations.  Each returns RASTER_OK with *out NULL when it
 * cannot serve 'path' (not a regular file, not reachable through VSI):
 * not an error, the GDAL reader serves the file.  'path' is retained: it
 * must outlive the source (it is ds->path). */
RASTER_HIDDEN raster_status_t raster__tiff_source_open_local(const char *path,
                                                             raster__tiff_source_t **out);
RASTER_HIDDEN raster_status_t raster__tiff_source_open_vsi(const char *path,
                                                           raster__tiff_source_t **out);

/* One range, exactly (see read_ranges). */
static inline raster_status_t
raster__tiff_source_read(raster__tiff_source_t *src, void *buf, size_t nbytes, uint64_t off,
                         const char *what)
{
    void *bufs[1] = {buf};
    return src->ops->read_ranges(src, 1, bufs, &off, &nbytes, what);
}

/* NULL is fine. */
static inline void
raster__tiff_source_close(raster__tiff_source_t *src)
{
    if (src != NULL)
        src->ops->close(src);
}

/* libtiff over a source: raster__tiff_source_tiff_open() opens libtiff
 * (mode "rm", plus "O", offsets loaded on demand, unless src->batch_reads)
 * with 'opts' over 'src', reading through read_ranges, so the fault hook
 * below sees the directory parse too.  'c' (caller-owned, e.g. on the
 * stack) holds the client's position and the status of the first source
 * read that failed; it and 'src' must outlive the TIFF (TIFFClose()).
 * NULL if libtiff refuses the file (its handler has the reason); a source
 * failure, then or later (offsets load on demand), leaves c->st set and
 * raster_last_error() saying why. */
typedef struct raster__tiff_client {
    raster__tiff_source_t *src;
    uint64_t pos;                 /* libtiff's file position */
    raster_status_t st;           /* first failed source read, or RASTER_OK */
} raster__tiff_client_t;
RASTER_HIDDEN TIFF *raster__tiff_source_tiff_open(raster__tiff_client_t *c, raster__tiff_source_t *src,
                                                  TIFFOpenOptions *opts);

/* Test hook (tests/unit/source/check_faults.c): when set, fn(ctx, path, offset,
 * &nbytes) runs before every pread/preadv of a local file, whatever it
 * reads (directory, segments, rows).  It returns 0 to let the read happen
 * (after lowering nbytes, if it wants a short read; 0 bytes reads as the
 * end of the file) or an errno value that the read then fails with (EINTR
 * is retried like a real one).  NULL turns it off; unset, it costs one
 * atomic load per read.  Remote reads have no system call to fault: the
 * HTTP suites (check_remote, test_http_errors.py) fail them at the server. */
typedef int (*raster__io_fault_fn)(void *ctx, const char *path, uint64_t offset, size_t *nbytes);
RASTER_HIDDEN void raster__io_set_fault_hook(raster__io_fault_fn fn, void *ctx);

#endif /* RASTER_TIFF_SOURCE_H */
