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
 *                  handles and multi-range reads, or (http(s) pixel reads)
 *   tiff_http.c    HTTP range transfers with libcurl, waiting on the
 *                  network outside the fork gate, with the retry rule.
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

/* What a decode can come to.  Only RASTER__DECODE_OK leaves the first
 * 'needed' bytes of 'out' exact; raster__decode_reason() names the others
 * for messages.  The caller decides what each means for its read (the
 * native reader: NOMEM is RASTER_E_NOMEM, every other failure
 * RASTER_E_CORRUPT). */
typedef enum raster__decode_status {
    RASTER__DECODE_OK = 0,
    RASTER__DECODE_NEED_ROOM = 1,   /* DEFLATE only: 'available' was too small to be
                                       sure of the prefix; decode again into
                                       raster__decode_room() bytes */
    RASTER__DECODE_TRUNCATED = 2,   /* the stream ends before 'needed' bytes are out */
    RASTER__DECODE_CORRUPT = 3,     /* the stream is malformed (LZW: a code refers to
                                       a table entry not yet defined) */
    RASTER__DECODE_TABLE_FULL = 4,  /* LZW: the table grows past its limit without
                                       a Clear code */
    RASTER__DECODE_UNSUPPORTED = 5, /* a flavour we do not decode (old-style LZW),
                                       or an unknown codec */
    RASTER__DECODE_NOMEM = 6        /* this thread's decoder could not be made */
} raster__decode_status_t;

/* raster__decode_reason() is the static text of 'st' for a stream of
 * 'codec' ("deflate stream is corrupt", "zstd frame ends before the segment
 * does", ...); the caller adds the file and the segment. */
RASTER_HIDDEN const char *raster__decode_reason(raster__codec_t codec, raster__decode_status_t st);

/* How the reference decoder (libtiff) would decode a stream, which decides
 * the verdict on a damaged one.  The caller works it out once per segment
 * (tiff_read.c's read plan, from what GDAL asks libtiff for); the codecs
 * only follow it.  NULL stands for {needed, 0}: the stream is judged on
 * the bytes the caller needs alone. */
typedef struct raster__decode_ref {
    size_t out_nbytes;          /* the output libtiff is asked for (>= needed):
                                   damage within these bytes fails the decode
                                   as it fails libtiff, except that damage past
                                   'needed' may go unseen (those bytes are not
                                   decoded, which is the point); ZSTD frames
                                   that state a size up to it are taken
                                   whatever window they ask for */
    int one_shot;               /* 'out_nbytes' is the stream's whole decoded size,
                                   which libtiff decodes in one call: DEFLATE with
                                   libdeflate and exactly that room, taking a stream
                                   that holds more as good; otherwise libtiff
                                   streams (zlib) and stops once the bytes are out */
} raster__decode_ref_t;

/* raster__decode_room() is how much room raster__decode() needs in 'out'
 * to be sure of the first 'needed' bytes of a stream judged by 'ref' (NULL
 * as above): 'needed' for every codec but DEFLATE, which needs the margin,
 * and for a one-shot judge room for its whole output. */
RASTER_HIDDEN size_t raster__decode_room(raster__codec_t codec, size_t needed,
                                         const raster__decode_ref_t *ref);

/* raster__decode() decodes 'in' (in_nbytes) until at least the first
 * 'needed' bytes of its output are in 'out' and returns RASTER__DECODE_OK,
 * or says why not.  'out' has room for 'available' >= needed bytes and
 * nothing past them is ever written, so a stream that inflates beyond its
 * segment (a decompression bomb) costs at most that much work.  With
 * available < raster__decode_room() a DEFLATE decode may end without a
 * guaranteed prefix: it then returns RASTER__DECODE_NEED_ROOM and the
 * caller decodes again with enough room.  A stream that ends before
 * 'needed' bytes is RASTER__DECODE_TRUNCATED.  'ref' (borrowed; NULL as
 * above) is how libtiff would decode the stream: the verdict on a damaged
 * one is libtiff's.  Uses this thread's decoder contexts, made on first use
 * (RASTER__DECODE_NOMEM if that fails). */
RASTER_HIDDEN raster__decode_status_t raster__decode(raster__codec_t codec, const uint8_t *in,
                                                     size_t in_nbytes, uint8_t *out, size_t needed,
                                                     size_t available, const raster__decode_ref_t *ref);

/* How many decodes took a damaged DEFLATE stream in one shot as libtiff
 * does (a stream that holds more than its output: libtiff leaves the item
 * that does not fit unwritten, its buffer's old bytes, where we write zeros
 * and then the stream's true prefix): pixels a differential test cannot
 * compare. */
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
