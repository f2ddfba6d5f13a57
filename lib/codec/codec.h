/*
 * codec.h - the codec folder of lib/ (lib/README.md): the segment codecs
 * (DEFLATE, ZSTD, LZW, PackBits), the TIFF predictors and byte swapping, on
 * plain buffers (tiff_codec.c).  It knows bytes only: no window, view,
 * dataset or TIFF file, and it includes no other lib/ header and not
 * <tiffio.h>, so it can be fuzzed and benchmarked alone.  Its functions are
 * hidden by the object library's default visibility (CMakeLists.txt), not
 * by RASTER_HIDDEN, which lives in common.h.  Private; never installed.
 */
#ifndef RASTERLOADER_CODEC_H
#define RASTERLOADER_CODEC_H

#include <stddef.h>
#include <stdint.h>

typedef enum raster__codec {
    RASTER__CODEC_NONE = 0,
    RASTER__CODEC_DEFLATE = 1,    /* zlib-wrapped, TIFF tags 8 and 32946 */
    RASTER__CODEC_ZSTD = 2,
    RASTER__CODEC_LZW = 3,        /* TIFF 6 LZW (MSB-first, early change) */
    RASTER__CODEC_PACKBITS = 4
} raster__codec_t;

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
const char *raster__decode_reason(raster__codec_t codec, raster__decode_status_t st);

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
size_t raster__decode_room(raster__codec_t codec, size_t needed,
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
raster__decode_status_t raster__decode(raster__codec_t codec, const uint8_t *in,
                                       size_t in_nbytes, uint8_t *out, size_t needed,
                                                     size_t available, const raster__decode_ref_t *ref);

/* How many decodes took a damaged DEFLATE stream in one shot as libtiff
 * does (a stream that holds more than its output: libtiff leaves the item
 * that does not fit unwritten, its buffer's old bytes, where we write zeros
 * and then the stream's true prefix): pixels a differential test cannot
 * compare. */
uint64_t raster__decode_unwritten_tails(void);

/* raster__unpredict_h() undoes horizontal differencing (predictor 2) on the
 * first 'ncols' pixels of one row of 'nsamp' interleaved samples of
 * 'sample_nbytes' (1, 2, 4 or 8) bytes, in host byte order. */
void raster__unpredict_h(uint8_t *row, int64_t ncols, int nsamp, int sample_nbytes);

/* raster__unpredict_fp() undoes the floating-point predictor (3) on one
 * whole row of 'ncols' pixels: byte-wise differencing, then the byte planes
 * (most significant first) are put back together in host order.  'tmp' has
 * room for one row. */
void raster__unpredict_fp(uint8_t *row, uint8_t *tmp, int64_t ncols, int nsamp,
                          int sample_nbytes);

/* raster__byteswap() reverses the bytes of 'n' elements of 'size' bytes. */
void raster__byteswap(uint8_t *p, size_t n, int size);

/* Allocation counter of the codecs (per-thread decoder contexts), for tests:
 * with raster__scratch_allocations() it must stay flat in steady state. */
uint64_t raster__tiff_allocations(void);

#endif /* RASTERLOADER_CODEC_H */
