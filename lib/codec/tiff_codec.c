/*
 * tiff_codec.c - segment codecs, predictors and byte swapping on plain
 * buffers.  Nothing here knows about TIFF files, windows or views; the
 * caller (tiff_read.c) says how many output bytes it needs, and every codec
 * stops as soon as it has them, because decode is where a read's time goes
 * and a window rarely needs the bottom of the tiles it touches.
 *
 *   DEFLATE   libdeflate, one decompressor per thread.  libdeflate has no
 *             streaming mode, but given an output buffer shorter than the
 *             stream it returns LIBDEFLATE_INSUFFICIENT_SPACE after writing
 *             every byte before the first item that does not fit, in time
 *             proportional to what it wrote.  The longest item is a stored
 *             block (65535 bytes; a match is at most 258), so asking for
 *             RASTER__DEFLATE_MARGIN bytes more than needed guarantees the
 *             needed prefix is complete (one extra row, as first planned,
 *             is not enough: the equivalence tests fail with it).  The same
 *             holds for a whole segment whose stream holds more than the
 *             segment: libtiff accepts it and keeps whatever the last
 *             partial item left in its buffer; we decode again with the
 *             margin, so the result is the stream's true prefix.
 *   ZSTD      one ZSTD_DCtx per thread, reused.  A whole segment whose
 *             frame states its size goes through the one-shot
 *             ZSTD_decompressDCtx (no internal buffering); a prefix through
 *             ZSTD_decompressStream, which stops exactly when the output is
 *             full.  Which frames are accepted follows libtiff's streaming
 *             loop exactly (see zstd_decode), so a prefix decodes whenever
 *             the whole segment does.
 *   LZW       our own decoder (libtiff has no buffer-to-buffer API): table
 *             entries point at earlier output instead of chaining prefix
 *             codes, so emitting a code is one short forward copy.  It
 *             accepts what libtiff accepts (a table that grows past 4096
 *             entries without a Clear code, up to libtiff's own limit).
 *   PACKBITS  a few lines, libtiff's rules for runs that overflow.
 * Outcomes are a small status enum, named for messages by
 * raster__decode_reason(); tiff_read.c adds the file, segment and window.
 * How a damaged stream is judged follows libtiff, as the caller describes
 * it (raster__decode_ref_t: how many bytes libtiff is asked for, and
 * whether in one shot); the arithmetic that says so is the caller's.
 * Output is never written past the buffer the caller sized with
 * raster__decode_room(), so a segment that inflates beyond its decoded size
 * (a decompression bomb) costs at most that much work.
 *
 * Predictors and byte swapping run in place on the decoded rows the window
 * needs, in libtiff's order: swap then accumulate for predictor 2; the
 * floating-point predictor (3) works on bytes and yields host order itself.
 */
#include "codec.h"

#include <libdeflate.h>
#include <pthread.h>
#include <stdatomic.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <stdlib.h>
#include <string.h>

/* ------------------------------ per-thread state ------------------------ */

#define LZW_TABLE 5120          /* libtiff's CSIZE: 4096 codes + slack for late Clears */

typedef struct lzw_entry {
    uint32_t off;               /* the string is out[off, off + len) */
    uint32_t len;
} lzw_entry_t;

typedef struct codec_ctx {
    struct libdeflate_decompressor *inflate;
    ZSTD_DCtx *zstd;
    lzw_entry_t *lzw;
} codec_ctx_t;

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static _Thread_local codec_ctx_t *tl_ctx;
static atomic_uint_fast64_t allocations;

static void
ctx_free(void *p)
{
    codec_ctx_t *c = p;
    if (c == NULL)
        return;
    if (c->inflate)
        libdeflate_free_decompressor(c->inflate);
    ZSTD_freeDCtx(c->zstd);
    free(c->lzw);
    free(c);
}

static void
ctx_key_create(void)
{
    pthread_key_create(&ctx_key, ctx_free);
}

uint64_t
raster__tiff_allocations(void)
{
    return atomic_load(&allocations);
}

static atomic_uint_least64_t unwritten_tails;

uint64_t
raster__decode_unwritten_tails(void)
{
    return atomic_load(&unwritten_tails);
}

/* This thread's context with the decoder for 'codec' made; NULL on OOM. */
static codec_ctx_t *
ctx_get(raster__codec_t codec)
{
    codec_ctx_t *c = tl_ctx;
    if (c == NULL) {
        pthread_once(&ctx_once, ctx_key_create);
        c = calloc(1, sizeof *c);
        if (c == NULL)
            return NULL;
        if (pthread_setspecific(ctx_key, c) != 0) {
            free(c);
            return NULL;
        }
        atomic_fetch_add(&allocations, 1);
        tl_ctx = c;
    }
    switch (codec) {
    case RASTER__CODEC_DEFLATE:
        if (c->inflate == NULL) {
            if ((c->inflate = libdeflate_alloc_decompressor()) == NULL)
                return NULL;
            atomic_fetch_add(&allocations, 1);
        }
        break;
    case RASTER__CODEC_ZSTD:
        if (c->zstd == NULL) {
            if ((c->zstd = ZSTD_createDCtx()) == NULL)
                return NULL;
            atomic_fetch_add(&allocations, 1);
        }
        break;
    case RASTER__CODEC_LZW:
        if (c->lzw == NULL) {
            if ((c->lzw = malloc(LZW_TABLE * sizeof *c->lzw)) == NULL)
                return NULL;
            atomic_fetch_add(&allocations, 1);
        }
        break;
    case RASTER__CODEC_NONE:
    case RASTER__CODEC_PACKBITS:
        break;
    }
    return c;
}

/* ------------------------------ codecs --------------------------------- */

typedef raster__decode_status_t status_t;

const char *
raster__decode_reason(raster__codec_t codec, raster__decode_status_t st)
{
    switch (st) {
    case RASTER__DECODE_OK:
        return "no error";
    case RASTER__DECODE_NEED_ROOM:
        return "deflate needs more output room to guarantee the prefix";
    case RASTER__DECODE_NOMEM:
        return "out of memory for a decoder";
    case RASTER__DECODE_TABLE_FULL:
        return "LZW table overflows (no Clear code)";
    case RASTER__DECODE_TRUNCATED:
        switch (codec) {
        case RASTER__CODEC_NONE: return "segment is shorter than its pixels";
        case RASTER__CODEC_DEFLATE: return "deflate stream ends before the segment does";
        case RASTER__CODEC_ZSTD: return "zstd frame ends before the segment does";
        case RASTER__CODEC_LZW: return "LZW stream ends before the segment does";
        case RASTER__CODEC_PACKBITS: return "PackBits stream ends before the segment does";
        }
        return "stream ends before the segment does";
    case RASTER__DECODE_CORRUPT:
        switch (codec) {
        case RASTER__CODEC_DEFLATE: return "deflate stream is corrupt";
        case RASTER__CODEC_ZSTD: return "zstd frame is corrupt";
        case RASTER__CODEC_LZW: return "LZW code refers to a table entry not yet defined";
        case RASTER__CODEC_NONE:
        case RASTER__CODEC_PACKBITS:
            break;
        }
        return "stream is corrupt";
    case RASTER__DECODE_UNSUPPORTED:
        return codec == RASTER__CODEC_LZW ? "old-style (pre-TIFF 6) LZW is not supported" : "unknown codec";
    }
    return "unknown decode status";
}

size_t
raster__decode_room(raster__codec_t codec, size_t needed, const raster__decode_ref_t *ref)
{
    if (codec != RASTER__CODEC_DEFLATE)
        return needed;
    /* The margin, and a one-shot judge's whole output, which it decodes
     * into 'out' exactly as libtiff would. */
    const size_t whole = ref != NULL && ref->one_shot ? ref->out_nbytes : 0;
    return needed + RASTER__DEFLATE_MARGIN > whole ? needed + RASTER__DEFLATE_MARGIN : whole;
}

/* libtiff's own loop (tif_zip.c): zlib inflates until 'needed' bytes are
 * out and never looks further, so a damaged stream or a bad Adler-32 after
 * them does not matter, as for libtiff asked for less than a whole segment
 * (under GDAL: a bottom-edge tile's rows inside the image; its padding rows
 * are never decoded).  Used only when libdeflate, which checks the whole
 * stream, said no. */
static status_t
deflate_decode_zlib(const uint8_t *in, size_t in_nbytes, uint8_t *out, size_t needed)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK)
        return RASTER__DECODE_CORRUPT;
    z.next_in = (Bytef *)in;
    size_t in_left = in_nbytes, out_left = needed;
    uint8_t *op = out;
    status_t st = RASTER__DECODE_OK;
    while (out_left > 0) {
        z.avail_in = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
        z.avail_out = out_left > UINT32_MAX ? UINT32_MAX : (uInt)out_left;
        z.next_out = op;
        const uInt ain = z.avail_in, aout = z.avail_out;
        const int zst = inflate(&z, Z_PARTIAL_FLUSH);
        in_left -= ain - z.avail_in;
        out_left -= aout - z.avail_out;
        op += aout - z.avail_out;
        if (zst == Z_STREAM_END)
            break;
        if (zst != Z_OK) {
            st = RASTER__DECODE_CORRUPT;
            break;
        }
    }
    inflateEnd(&z);
    if (st == RASTER__DECODE_OK && out_left > 0)
        st = RASTER__DECODE_TRUNCATED;
    return st;
}

static status_t
deflate_decode(codec_ctx_t *c, const uint8_t *in, size_t in_nbytes, uint8_t *out, size_t needed,
               size_t avail, const raster__decode_ref_t *ref)
{
    /* Room past 'needed' lets libdeflate stop anywhere and still leave the
     * prefix complete; more than the margin would only decode more. */
    const size_t room = avail - needed > RASTER__DEFLATE_MARGIN ? needed + RASTER__DEFLATE_MARGIN : avail;
    size_t got = 0;
    switch (libdeflate_zlib_decompress(c->inflate, in, in_nbytes, out, room, &got)) {
    case LIBDEFLATE_SUCCESS:
        return got >= needed ? RASTER__DECODE_OK : RASTER__DECODE_TRUNCATED;
    case LIBDEFLATE_INSUFFICIENT_SPACE:
        /* Everything before the item that did not fit is written, and no
         * item is longer than 65535 bytes (a stored block). */
        return room - needed >= RASTER__DEFLATE_MARGIN - 512 ? RASTER__DECODE_OK : RASTER__DECODE_NEED_ROOM;
    case LIBDEFLATE_SHORT_OUTPUT:
    case LIBDEFLATE_BAD_DATA:
    default:
        break;
    }
    /* libdeflate decoded past 'needed' (into the margin) and checked the
     * Adler-32, which libtiff may not.  How libtiff decodes depends on what
     * it is asked for (found by the differential fuzzer):
     *   - the whole segment (ref->one_shot): libdeflate with exactly its
     *     size and no room to spare, taking "insufficient space" (the
     *     stream holds more) as success whatever the stream holds after the
     *     item that did not fit, and leaving that item's bytes as they were
     *     in its caller's buffer: here zeros, then zlib writes what it can
     *     of the true prefix over them;
     *   - less: zlib, which stops when the bytes are out and never sees the
     *     rest. */
    if (ref->one_shot) {
        const size_t whole = ref->out_nbytes;
        if (avail < whole)
            return RASTER__DECODE_NEED_ROOM;
        memset(out, 0, whole);
        const enum libdeflate_result r =
            libdeflate_zlib_decompress(c->inflate, in, in_nbytes, out, whole, NULL);
        if (r == LIBDEFLATE_SHORT_OUTPUT)
            return RASTER__DECODE_TRUNCATED;
        if (r != LIBDEFLATE_SUCCESS && r != LIBDEFLATE_INSUFFICIENT_SPACE)
            return RASTER__DECODE_CORRUPT;
        if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
            (void)deflate_decode_zlib(in, in_nbytes, out, needed);
            atomic_fetch_add_explicit(&unwritten_tails, 1, memory_order_relaxed);
        }
        return RASTER__DECODE_OK;
    }
    return deflate_decode_zlib(in, in_nbytes, out, needed);
}

/* Stream until 'needed' bytes are out, as libtiff's ZSTDDecode loops. */
static size_t
zstd_stream(ZSTD_DCtx *z, const uint8_t *in, size_t in_nbytes, uint8_t *out, size_t needed, size_t *got)
{
    ZSTD_DCtx_reset(z, ZSTD_reset_session_only);
    ZSTD_inBuffer ib = {in, in_nbytes, 0};
    ZSTD_outBuffer ob = {out, needed, 0};
    size_t r;
    do {
        r = ZSTD_decompressStream(z, &ob, &ib);
        if (ZSTD_isError(r))
            break;
    } while (r != 0 && ib.pos < ib.size && ob.pos < ob.size);
    *got = ob.pos;
    return r;
}

/* The window a frame asks for (RFC 8878, Window_Descriptor), or 0 when its
 * header does not say (single-segment frames, other magic numbers). */
static uint64_t
zstd_window(const uint8_t *in, size_t n)
{
    if (n < 6 || in[0] != 0x28 || in[1] != 0xb5 || in[2] != 0x2f || in[3] != 0xfd || (in[4] & 0x20))
        return 0;
    const uint64_t base = (uint64_t)1 << (10 + (in[5] >> 3));
    return base + (base / 8) * (in[5] & 7);
}

/* libtiff decodes a whole segment with ZSTD_decompressStream, which takes a
 * one-shot shortcut when the frame states its size and the output holds
 * it, and otherwise refuses windows over 128 MiB and stops at the end of
 * the first frame.  Here a whole segment goes one-shot (no internal
 * buffering: most frames libtiff writes do not state their size) whenever
 * streaming would accept the frame, over the first frame only, so the
 * outcomes are libtiff's; a prefix streams, and if the window is refused
 * for a frame libtiff would have taken one-shot, streams again with the
 * limit lifted (zstd then buffers at most the frame's stated size, which is
 * at most the segment's).  So a prefix decodes whenever the whole does. */
static status_t
zstd_decode(codec_ctx_t *c, const uint8_t *in, size_t in_nbytes, uint8_t *out, size_t needed,
            const raster__decode_ref_t *ref)
{
    const size_t full = ref->out_nbytes;    /* libtiff's output size */
    const unsigned long long content = ZSTD_getFrameContentSize(in, in_nbytes);
    const int sized = content != ZSTD_CONTENTSIZE_UNKNOWN && content != ZSTD_CONTENTSIZE_ERROR &&
                      content <= (unsigned long long)full;
    const uint64_t window = zstd_window(in, in_nbytes);
    if (needed == full && (sized || (window != 0 && window <= ((uint64_t)1 << 27) + 1))) {
        const size_t csize = ZSTD_findFrameCompressedSize(in, in_nbytes);
        if (!ZSTD_isError(csize)) {
            const size_t r = ZSTD_decompressDCtx(c->zstd, out, full, in, csize);
            if (!ZSTD_isError(r))
                return r == full ? RASTER__DECODE_OK : RASTER__DECODE_TRUNCATED;
            if (sized || ZSTD_getErrorCode(r) != ZSTD_error_dstSize_tooSmall)
                return RASTER__DECODE_CORRUPT;
            /* A frame longer than the segment: streaming fills it, as libtiff's. */
        }
    }
    size_t got = 0;
    size_t r = zstd_stream(c->zstd, in, in_nbytes, out, needed, &got);
    if (ZSTD_isError(r) && ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge && sized) {
        ZSTD_DCtx_setParameter(c->zstd, ZSTD_d_windowLogMax, 31);     /* the format's maximum */
        r = zstd_stream(c->zstd, in, in_nbytes, out, needed, &got);
        ZSTD_DCtx_setParameter(c->zstd, ZSTD_d_windowLogMax, 0);      /* back to the default */
    }
    if (ZSTD_isError(r))
        return RASTER__DECODE_CORRUPT;
    return got < needed ? RASTER__DECODE_TRUNCATED : RASTER__DECODE_OK;
}

/* LZW, TIFF 6 flavour: codes MSB-first, 9 to 12 bits, 256 Clear, 257 End,
 * the code width grows one code early ("early change").  Every table entry
 * is a string already written to 'out' (the previous code's string plus one
 * byte), so emitting a code is a forward copy from earlier output: one or
 * two 8-byte moves for the short strings that dominate, memcpy otherwise. */
static status_t
lzw_decode(codec_ctx_t *c, const uint8_t *in, size_t in_nbytes, uint8_t *out, size_t needed)
{
    lzw_entry_t *const tab = c->lzw;
    uint64_t bitbuf = 0;
    unsigned bits = 0, nbits = 9;
    uint32_t mask = 511, next = 258;
    size_t ip = 0, op = 0;
    int have_prev = 0;
    uint32_t prev_off = 0, prev_len = 0;
    if (in_nbytes >= 2 && in[0] == 0 && (in[1] & 1))
        return RASTER__DECODE_UNSUPPORTED;
    while (op < needed) {
        if (bits < nbits) {
            if (in_nbytes - ip >= 8) {
                /* Top up to at least 56 bits with one big-endian load. */
                uint64_t v;
                memcpy(&v, in + ip, 8);
                v = __builtin_bswap64(v);
                const unsigned k = (63 - bits) >> 3;        /* 6 or 7 bytes */
                bitbuf = (bitbuf << (8 * k)) | (v >> (64 - 8 * k));
                ip += k;
                bits += 8 * k;
            } else {
                while (bits < nbits) {
                    if (ip >= in_nbytes)
                        return RASTER__DECODE_TRUNCATED;
                    bitbuf = (bitbuf << 8) | in[ip++];
                    bits += 8;
                }
            }
        }
        const uint32_t code = (uint32_t)(bitbuf >> (bits - nbits)) & mask;
        bits -= nbits;
        if (code == 256) {
            nbits = 9;
            mask = 511;
            next = 258;
            have_prev = 0;
            continue;
        }
        if (code == 257)
            return RASTER__DECODE_TRUNCATED;
        uint8_t *dst = out + op;
        const size_t room = needed - op;
        uint32_t len;
        if (code < 256) {
            *dst = (uint8_t)code;
            len = 1;
        } else if (code < next) {
            /* The entry's string ends at or before dst. */
            const lzw_entry_t e = tab[code];
            const uint8_t *src = out + e.off;
            len = e.len;
            if (len <= 16 && room >= 16) {
                /* Load before store: the bytes past len are scratch that
                 * later strings overwrite; the first len are exact. */
                uint64_t a, b;
                memcpy(&a, src, 8);
                memcpy(&b, src + 8, 8);
                memcpy(dst, &a, 8);
                memcpy(dst + 8, &b, 8);
            } else {
                memcpy(dst, src, len < room ? len : room);
            }
        } else if (code == next && have_prev) {
            /* KwKwK: the previous string (just before dst) plus its first byte. */
            len = prev_len + 1;
            const uint8_t *src = out + prev_off;
            if (len <= room) {
                memcpy(dst, src, prev_len);
                dst[prev_len] = src[0];
            } else {
                memcpy(dst, src, room);
            }
        } else {
            return RASTER__DECODE_CORRUPT;
        }
        if (have_prev) {
            if (next >= LZW_TABLE)
                return RASTER__DECODE_TABLE_FULL;
            tab[next].off = prev_off;
            tab[next].len = prev_len + 1;
            next++;
            if (next == mask && nbits < 12) {
                nbits++;
                mask = (mask << 1) | 1;
            }
        }
        have_prev = 1;
        prev_off = (uint32_t)op;
        prev_len = len;
        op += len;
    }
    return RASTER__DECODE_OK;
}

static status_t
packbits_decode(const uint8_t *in, size_t in_nbytes, uint8_t *out, size_t needed)
{
    size_t ip = 0, op = 0;
    while (op < needed) {
        if (ip >= in_nbytes)
            return RASTER__DECODE_TRUNCATED;
        const int n = (int8_t)in[ip++];
        const size_t room = needed - op;
        if (n >= 0) {
            size_t cnt = (size_t)n + 1;
            if (cnt > room)
                cnt = room;         /* libtiff discards the overflow */
            if (cnt > in_nbytes - ip)
                return RASTER__DECODE_TRUNCATED;
            memcpy(out + op, in + ip, cnt);
            ip += (size_t)n + 1 < in_nbytes - ip ? (size_t)n + 1 : in_nbytes - ip;
            op += cnt;
        } else if (n != -128) {
            if (ip >= in_nbytes)
                return RASTER__DECODE_TRUNCATED;
            size_t cnt = (size_t)(1 - n);
            if (cnt > room)
                cnt = room;
            memset(out + op, in[ip++], cnt);
            op += cnt;
        }
    }
    return RASTER__DECODE_OK;
}

raster__decode_status_t
raster__decode(raster__codec_t codec, const uint8_t *in, size_t in_nbytes, uint8_t *out,
               size_t needed, size_t available, const raster__decode_ref_t *ref)
{
    if (needed == 0)
        return RASTER__DECODE_OK;
    const raster__decode_ref_t own = {needed, 0};
    if (ref == NULL)
        ref = &own;
    codec_ctx_t *c = ctx_get(codec);
    if (c == NULL)
        return RASTER__DECODE_NOMEM;
    switch (codec) {
    case RASTER__CODEC_NONE:
        if (in_nbytes < needed)
            return RASTER__DECODE_TRUNCATED;
        memcpy(out, in, needed);
        return RASTER__DECODE_OK;
    case RASTER__CODEC_DEFLATE:
        return deflate_decode(c, in, in_nbytes, out, needed, available, ref);
    case RASTER__CODEC_ZSTD:
        return zstd_decode(c, in, in_nbytes, out, needed, ref);
    case RASTER__CODEC_LZW:
        return lzw_decode(c, in, in_nbytes, out, needed);
    case RASTER__CODEC_PACKBITS:
        return packbits_decode(in, in_nbytes, out, needed);
    }
    return RASTER__DECODE_UNSUPPORTED;
}

/* ------------------------------ predictors ----------------------------- */

#define HACC(T)                                                                  \
    static void hacc_##T(uint8_t *row, int64_t n, int stride)                    \
    {                                                                            \
        for (int64_t i = stride; i < n; i++) {                                   \
            T a, b;                                                              \
            memcpy(&a, row + (size_t)(i - stride) * sizeof(T), sizeof(T));       \
            memcpy(&b, row + (size_t)i * sizeof(T), sizeof(T));                  \
            b = (T)(a + b);                                                      \
            memcpy(row + (size_t)i * sizeof(T), &b, sizeof(T));                  \
        }                                                                        \
    }
HACC(uint8_t)
HACC(uint16_t)
HACC(uint32_t)
HACC(uint64_t)

#ifdef __SSE2__
#include <emmintrin.h>

/* Prefix sums of 16-byte blocks whose pixels are 'STRIDE' bytes of samples
 * 'ADD' wide: log-step shifts inside the block, plus the carry of the last
 * pixel of the block before.  Four pixels of u16x2, two of u16x4, ... per
 * step instead of one dependent add per sample. */
#define HACC_SIMD(name, STRIDE, ADD, BCAST)                                      \
    static int64_t name(uint8_t *row, int64_t nbytes)                            \
    {                                                                            \
        __m128i carry = _mm_setzero_si128();                                     \
        int64_t i = 0;                                                           \
        for (; i + 16 <= nbytes; i += 16) {                                      \
            __m128i v = _mm_loadu_si128((const __m128i *)(row + i));             \
            if (STRIDE <= 1) v = ADD(v, _mm_slli_si128(v, 1));                   \
            if (STRIDE <= 2) v = ADD(v, _mm_slli_si128(v, 2));                   \
            if (STRIDE <= 4) v = ADD(v, _mm_slli_si128(v, 4));                   \
            v = ADD(v, _mm_slli_si128(v, 8));                                    \
            v = ADD(v, carry);                                                   \
            _mm_storeu_si128((__m128i *)(row + i), v);                           \
            carry = BCAST(v);                                                    \
        }                                                                        \
        return i;                                                                \
    }
static inline __m128i bcast8(__m128i v) { return _mm_unpackhi_epi64(v, v); }
static inline __m128i bcast4(__m128i v) { return _mm_shuffle_epi32(v, 0xff); }
static inline __m128i bcast2(__m128i v) { v = _mm_shufflehi_epi16(v, 0xff); return _mm_unpackhi_epi64(v, v); }
static inline __m128i bcast1(__m128i v) { return _mm_set1_epi8((char)(_mm_extract_epi16(v, 7) >> 8)); }
HACC_SIMD(hacc_s8_a16, 8, _mm_add_epi16, bcast8)   /* u16 x 4 */
HACC_SIMD(hacc_s4_a16, 4, _mm_add_epi16, bcast4)   /* u16 x 2 */
HACC_SIMD(hacc_s2_a16, 2, _mm_add_epi16, bcast2)   /* u16 x 1 */
HACC_SIMD(hacc_s8_a8, 8, _mm_add_epi8, bcast8)     /* u8 x 8 */
HACC_SIMD(hacc_s4_a8, 4, _mm_add_epi8, bcast4)     /* u8 x 4 */
HACC_SIMD(hacc_s2_a8, 2, _mm_add_epi8, bcast2)     /* u8 x 2 */
HACC_SIMD(hacc_s1_a8, 1, _mm_add_epi8, bcast1)     /* u8 x 1 */
HACC_SIMD(hacc_s8_a32, 8, _mm_add_epi32, bcast8)   /* u32 x 2 */
HACC_SIMD(hacc_s4_a32, 4, _mm_add_epi32, bcast4)   /* u32 x 1 */
HACC_SIMD(hacc_s8_a64, 8, _mm_add_epi64, bcast8)   /* u64 x 1 */

/* The SIMD part of a row for pixel sizes of 1, 2, 4 or 8 bytes; returns
 * how many bytes it did (whole blocks from the row start). */
static int64_t
hacc_simd(uint8_t *row, int64_t nbytes, int nsamp, int size)
{
    switch (nsamp * size) {
    case 1: return hacc_s1_a8(row, nbytes);
    case 2: return size == 1 ? hacc_s2_a8(row, nbytes) : hacc_s2_a16(row, nbytes);
    case 4: return size == 1 ? hacc_s4_a8(row, nbytes) : size == 2 ? hacc_s4_a16(row, nbytes)
                                                                   : hacc_s4_a32(row, nbytes);
    case 8: return size == 1 ? hacc_s8_a8(row, nbytes) : size == 2 ? hacc_s8_a16(row, nbytes)
                 : size == 4 ? hacc_s8_a32(row, nbytes) : hacc_s8_a64(row, nbytes);
    default: return 0;
    }
}
#endif

void
raster__unpredict_h(uint8_t *row, int64_t ncols, int nsamp, int sample_nbytes)
{
    int64_t n = ncols * nsamp;
#ifdef __SSE2__
    /* Whole 16-byte blocks in SIMD; the scalar loop below finishes the row
     * from the last pixel of the last block. */
    const int64_t px = (int64_t)nsamp * sample_nbytes;
    const int64_t done = hacc_simd(row, n * sample_nbytes, nsamp, sample_nbytes);
    if (done > 0) {
        row += done - px;
        n -= (done - px) / sample_nbytes;
    }
#endif
    switch (sample_nbytes) {
    case 1: hacc_uint8_t(row, n, nsamp); break;
    case 2: hacc_uint16_t(row, n, nsamp); break;
    case 4: hacc_uint32_t(row, n, nsamp); break;
    default: hacc_uint64_t(row, n, nsamp); break;
    }
}

void
raster__unpredict_fp(uint8_t *row, uint8_t *tmp, int64_t ncols, int nsamp, int sample_nbytes)
{
    const size_t wc = (size_t)ncols * (size_t)nsamp;      /* samples in the row */
    const size_t nbytes = wc * (size_t)sample_nbytes;
    for (size_t i = (size_t)nsamp; i < nbytes; i++)
        row[i] = (uint8_t)(row[i] + row[i - (size_t)nsamp]);
    memcpy(tmp, row, nbytes);
    /* Byte plane k holds byte k counted from the most significant one. */
    const int bps = sample_nbytes;
    for (size_t s = 0; s < wc; s++)
        for (int b = 0; b < bps; b++) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            row[s * (size_t)bps + (size_t)b] = tmp[(size_t)b * wc + s];
#else
            row[s * (size_t)bps + (size_t)b] = tmp[(size_t)(bps - b - 1) * wc + s];
#endif
        }
}

/* One width: load, swap, store (memcpy, as rows need not be aligned). */
#define BYTESWAP_EACH(T, bswap)                                                  \
    for (size_t i = 0; i < n; i++) {                                             \
        T v;                                                                     \
        memcpy(&v, p + sizeof v * i, sizeof v);                                  \
        v = bswap(v);                                                            \
        memcpy(p + sizeof v * i, &v, sizeof v);                                  \
    }

void
raster__byteswap(uint8_t *p, size_t n, int size)
{
    switch (size) {
    case 2:
        BYTESWAP_EACH(uint16_t, __builtin_bswap16);
        break;
    case 4:
        BYTESWAP_EACH(uint32_t, __builtin_bswap32);
        break;
    case 8:
        BYTESWAP_EACH(uint64_t, __builtin_bswap64);
        break;
    default:
        break;
    }
}
