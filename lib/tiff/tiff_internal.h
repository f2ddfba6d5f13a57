/*
 * tiff_internal.h - the private contract between the files of lib/tiff/.
 *
 *   tiff_layout.c  chooses the byte source, walks the first IFD once at
 *                  open (through libtiff over that source) and fills
 *                  struct raster__tiff; it never decodes.
 *   tiff_source.h  the byte-source interface every read of file bytes
 *                  goes through; tiff_source.c runs libtiff over it.
 *   tiff_io.c      the local source: one descriptor per dataset, pread
 *                  and preadv, the fault-injection hook.
 *   tiff_vsi.c     the remote source (/vsicurl/, /vsis3/, ...): GDAL VSI
 *                  handles and multi-range reads.
 *   tiff_codec.c   codecs, predictors and byte swapping on plain buffers;
 *                  it knows nothing about TIFF files, windows or views.
 *   tiff_read.c    joins them: plan -> fetch -> decode -> place.
 * After open, libtiff is not used again: every read works from the tables
 * below, so reads need no libtiff handle and no lock.
 */
#ifndef RASTER_TIFF_INTERNAL_H
#define RASTER_TIFF_INTERNAL_H

#include "../internal.h"
#include "tiff_source.h"

#include <stddef.h>
#include <stdint.h>
#include <tiffio.h>

typedef enum raster__codec {
    RASTER__CODEC_NONE = 0,
    RASTER__CODEC_DEFLATE = 1,    /* zlib-wrapped, TIFF tags 8 and 32946 */
    RASTER__CODEC_ZSTD = 2,
    RASTER__CODEC_LZW = 3,        /* TIFF 6 LZW (MSB-first, early change) */
    RASTER__CODEC_PACKBITS = 4
} raster__codec_t;

/* Everything a read needs, fixed at open.  Untrusted values from the file
 * have been bound-checked before they got here (tiff_layout.c). */
struct raster__tiff {
    const char *path;             /* view of ds->path */
    raster__tiff_source_t *src;   /* owned: where the file's bytes come from */
    uint64_t file_nbytes;         /* size at open; segments must end inside */
    int64_t width, height;        /* pixels */
    int spp;                      /* samples per pixel = bands */
    int planar;                   /* 1: one plane per band (PlanarConfig 2) */
    int seg_samples;              /* samples per pixel inside a segment */
    raster_dtype_t dtype;         /* of every sample */
    int sample_nbytes;
    int tiled;
    int64_t seg_w, seg_h;         /* tile size, or (width, rows per strip) */
    int64_t segs_across, segs_down, segs_per_plane;
    int64_t nsegs;
    raster__codec_t codec;
    int predictor;                /* 1, 2 or 3 */
    int swap;                     /* file byte order is not the host's */
    size_t seg_row_nbytes;        /* one decoded row of a segment */
    size_t seg_nbytes;            /* one whole decoded segment (tile or full strip) */
    uint64_t *offsets, *counts;   /* owned, nsegs each */
    uint64_t max_count;           /* largest byte count, capped (see layout) */
    uint8_t fill[8 * 64];         /* per band, for sparse segments (bytecount 0) */
    uint8_t *fill_bands;          /* owned when spp > 64, else fill */
    uint64_t file_id[5];          /* the file's identity in tile-cache keys */
};

/* ------------------------------ codecs --------------------------------- */

/* Extra room libdeflate needs past the bytes we want (see tiff_codec.c). */
#define RASTER__DEFLATE_MARGIN ((size_t)65536 + 512)

/* raster__decode_avail() is how much room raster__decode() needs to
 * guarantee the first 'needed' bytes of a stream that decodes to 'full'
 * bytes: 'needed' for every codec but DEFLATE, which needs the margin, and
 * room for the whole segment to judge a damaged stream as libtiff does. */
RASTER_HIDDEN size_t raster__decode_avail(raster__codec_t codec, size_t needed, size_t full);

/* raster__decode() decodes 'in' (in_nbytes) until at least the first
 * 'needed' bytes of its output are in 'out' and returns NULL, or returns a
 * static reason ("deflate stream is corrupt", ...).  'out' has room for
 * 'avail' >= needed bytes and nothing past them is ever written, so a
 * stream that inflates beyond its segment (a decompression bomb) costs at
 * most that much work.  With avail < raster__decode_avail() a DEFLATE
 * decode may end without a guaranteed prefix: it then returns
 * raster__decode_retry and the caller decodes again with enough room.  A
 * stream that ends before 'needed' bytes is corrupt.  'full' is the size
 * the whole stream should decode to as libtiff counts it (a whole tile, a
 * strip's rows inside the image).  'asked' (needed <= asked <= full) is
 * what GDAL asks libtiff to decode for the segment (raster__gdal_asked_rows times the row size):
 * a stream damaged within the first 'asked' bytes fails for GDAL, and the
 * verdict here is libtiff's on those bytes, except that damage between
 * 'needed' and 'asked' may go unseen (the rows past 'needed' are not
 * decoded, which is the point).  Uses this thread's decoder contexts, made
 * on first use ("out of memory" and *nomem_out set if that fails). */
RASTER_HIDDEN const char *raster__decode(raster__codec_t codec, const uint8_t *in, size_t in_nbytes,
                                         uint8_t *out, size_t needed, size_t avail, size_t full,
                                         size_t asked, int *nomem_out);

/* How many of a segment's rows GDAL asks libtiff to decode: all of them but
 * in the last row of blocks of a raster 'height' rows high in blocks of
 * 'block_rows', where GDAL asks block_rows - ((block_row + 1) * block_rows)
 * % height (its IReadBlock; the rows inside the image unless the padding
 * is as tall as the image).  libtiff then clamps the request to the
 * segment. */
static inline int64_t
raster__gdal_asked_rows(int64_t block_row, int64_t block_rows, int64_t height)
{
    if (block_row * block_rows <= height - block_rows)
        return block_rows;
    return block_rows - (int64_t)(((uint64_t)(block_row + 1) * (uint64_t)block_rows) % (uint64_t)height);
}
RASTER_HIDDEN extern const char raster__decode_retry[];

/* How many decodes took a damaged DEFLATE segment as libtiff does, leaving
 * bytes that GDAL leaves as its buffer held (zeros here): pixels a
 * differential test cannot compare. */
RASTER_HIDDEN uint64_t raster__decode_unwritten_tails(void);

/* raster__unpredict_h() undoes horizontal differencing (predictor 2) on the
 * first 'ncols' pixels of one row of 'nsamp' interleaved samples of
 * 'sample_nbytes' (1, 2, 4 or 8) bytes, in host byte order. */
RASTER_HIDDEN void raster__unpredict_h(uint8_t *row, int64_t ncols, int nsamp, int sample_nbytes);

/* raster__unpredict_fp() undoes the floating-point predictor (3) on one
 * whole row of 'ncols' pixels: byte-wise differencing, then the byte planes
 * (most significant first) are put back together in host order.  'tmp' has
 * room for one row. */
RASTER_HIDDEN void raster__unpredict_fp(uint8_t *row, uint8_t *tmp, int64_t ncols, int nsamp,
                                        int sample_nbytes);

/* raster__byteswap() reverses the bytes of 'n' elements of 'size' bytes. */
RASTER_HIDDEN void raster__byteswap(uint8_t *p, size_t n, int size);

#endif /* RASTER_TIFF_INTERNAL_H */
