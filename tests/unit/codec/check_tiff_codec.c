/*
 * check_tiff_codec.c - the segment codecs and predictors of lib/codec on
 * plain buffers, against independent encoders.
 *
 * Every codec must give the exact first 'needed' bytes for any 'needed',
 * because the reader asks for prefixes: DEFLATE streams from libdeflate at
 * levels 0 (stored blocks, the case that needs the margin) to 12, ZSTD
 * frames of many blocks, LZW and PackBits strips written by libtiff itself
 * (tables that fill up and restart, long runs for the KwKwK case).  Random
 * garbage must never crash a decoder or make it write past its buffer
 * (ASan/valgrind).  Predictors are checked against plain re-statements of
 * the TIFF rules.
 */
#include "check_tiff_common.h"

#include "codec/codec.h"

#include <libdeflate.h>
#include <tiffio.h>
#include <zstd.h>

#include <unistd.h>

/* Data with runs, ramps and noise, so every codec sees matches and literals. */
static uint8_t *
sample_data(size_t n, uint64_t seed)
{
    uint8_t *d = malloc(n);
    uint64_t s = seed;
    size_t i = 0;
    while (i < n) {
        const unsigned kind = (unsigned)(tiff_rand(&s) % 4);
        size_t len = 1 + tiff_rand(&s) % 3000;
        if (len > n - i)
            len = n - i;
        const uint8_t b = (uint8_t)tiff_rand(&s);
        for (size_t k = 0; k < len; k++)
            d[i + k] = kind == 0 ? b : kind == 1 ? (uint8_t)(b + k) : kind == 2 ? (uint8_t)tiff_rand(&s)
                                                                               : (uint8_t)(b ^ (k >> 4));
        i += len;
    }
    return d;
}

/* Prefix lengths worth trying for a stream of n bytes. */
static int
prefixes(size_t n, size_t *out, uint64_t seed)
{
    int k = 0;
    const size_t fixed[] = {1, 2, 255, 4096, 65535, 65536, 65537, 131072, 200000};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (fixed[i] <= n)
            out[k++] = fixed[i];
    out[k++] = n - 1;
    out[k++] = n;
    uint64_t s = seed;
    for (int i = 0; i < 6; i++)
        out[k++] = 1 + tiff_rand(&s) % n;
    return k;
}

static void
check_prefixes(raster__codec_t codec, const uint8_t *in, size_t in_n, const uint8_t *plain, size_t n,
               const char *what)
{
    size_t pre[32];
    const int np = prefixes(n, pre, n);
    /* Judged as libtiff judges a whole segment of n bytes. */
    const raster__decode_ref_t whole = {n, 1};
    for (int i = 0; i < np; i++) {
        const size_t needed = pre[i];
        /* Exactly the room raster__decode_room() promises, in its own block
         * so ASan sees a write past it. */
        const size_t avail = raster__decode_room(codec, needed, &whole);
        ck_assert_uint_ge(avail, needed);
        uint8_t *buf = malloc(avail);
        raster__decode_status_t st = raster__decode(codec, in, in_n, buf, needed, avail, &whole);
        ck_assert_msg(st == RASTER__DECODE_OK, "%s: prefix %zu of %zu: %s", what, needed, n,
                      raster__decode_reason(codec, st));
        ck_assert_msg(memcmp(buf, plain, needed) == 0, "%s: prefix %zu of %zu differs", what, needed, n);
        free(buf);
        /* With no room to spare (a direct decode): either exact, or DEFLATE
         * asks to be called again with room. */
        buf = malloc(needed);
        st = raster__decode(codec, in, in_n, buf, needed, needed, &whole);
        ck_assert_msg(st == RASTER__DECODE_OK || st == RASTER__DECODE_NEED_ROOM,
                      "%s: exact room, prefix %zu: %s", what, needed, raster__decode_reason(codec, st));
        ck_assert_msg(st != RASTER__DECODE_OK || memcmp(buf, plain, needed) == 0,
                      "%s: exact room, prefix %zu differs", what, needed);
        ck_assert(st == RASTER__DECODE_OK || codec == RASTER__CODEC_DEFLATE);
        free(buf);
    }
}

START_TEST(deflate_prefixes_are_exact)
{
    const size_t sizes[] = {1000, 300000, 2u << 20};
    for (size_t si = 0; si < 3; si++) {
        const size_t n = sizes[si] / (size_t)(si == 2 ? tiff_matrix_scale() : 1);
        uint8_t *plain = sample_data(n, 11 + si);
        const int levels[] = {0, 1, 6, 12};
        for (int li = 0; li < 4; li++) {
            struct libdeflate_compressor *c = libdeflate_alloc_compressor(levels[li]);
            const size_t cap = libdeflate_zlib_compress_bound(c, n);
            uint8_t *z = malloc(cap);
            const size_t zn = libdeflate_zlib_compress(c, plain, n, z, cap);
            ck_assert_uint_gt(zn, 0);
            char what[64];
            snprintf(what, sizeof what, "deflate level %d, %zu bytes", levels[li], n);
            check_prefixes(RASTER__CODEC_DEFLATE, z, zn, plain, n, what);
            /* A stream cut short must fail for the whole segment. */
            const raster__decode_ref_t whole = {n, 1};
            uint8_t *buf = malloc(n + RASTER__DEFLATE_MARGIN);
            const raster__decode_status_t st = raster__decode(RASTER__CODEC_DEFLATE, z, zn / 2, buf, n,
                                                              n + RASTER__DEFLATE_MARGIN, &whole);
            ck_assert(st != RASTER__DECODE_OK && st != RASTER__DECODE_NEED_ROOM);
            free(buf);
            free(z);
            libdeflate_free_compressor(c);
        }
        free(plain);
    }
}
END_TEST

/* The verdict on a damaged stream is the reference's, as the caller
 * describes it: a DEFLATE stream whose Adler-32 is wrong fails when libtiff
 * would decode it whole in one shot (libdeflate checks the trailer), and
 * gives its exact prefix when libtiff would stream just that prefix (zlib
 * stops before the trailer), as without a reference. */
START_TEST(damaged_deflate_judged_as_asked)
{
    const size_t n = 1000, needed = n / 2;
    uint8_t *plain = sample_data(n, 21);
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    const size_t cap = libdeflate_zlib_compress_bound(c, n);
    uint8_t *z = malloc(cap);
    const size_t zn = libdeflate_zlib_compress(c, plain, n, z, cap);
    ck_assert_uint_gt(zn, 4);
    z[zn - 1] ^= 0x5a;                      /* the Adler-32's last byte */
    const raster__decode_ref_t one_shot = {n, 1}, streamed = {n, 0};
    const raster__decode_ref_t *refs[] = {&one_shot, &streamed, NULL};
    const raster__decode_status_t want[] = {RASTER__DECODE_CORRUPT, RASTER__DECODE_OK, RASTER__DECODE_OK};
    for (int i = 0; i < 3; i++) {
        const size_t room = raster__decode_room(RASTER__CODEC_DEFLATE, needed, refs[i]);
        uint8_t *buf = malloc(room);
        const raster__decode_status_t st =
            raster__decode(RASTER__CODEC_DEFLATE, z, zn, buf, needed, room, refs[i]);
        ck_assert_msg(st == want[i], "judge %d: %s", i, raster__decode_reason(RASTER__CODEC_DEFLATE, st));
        ck_assert(st != RASTER__DECODE_OK || memcmp(buf, plain, needed) == 0);
        free(buf);
    }
    free(z);
    libdeflate_free_compressor(c);
    free(plain);
}
END_TEST

/* Every failure of every codec has a reason of its own for messages. */
START_TEST(every_outcome_has_a_reason)
{
    const raster__codec_t codecs[] = {RASTER__CODEC_NONE, RASTER__CODEC_DEFLATE, RASTER__CODEC_ZSTD,
                                      RASTER__CODEC_LZW, RASTER__CODEC_PACKBITS};
    for (int c = 0; c < 5; c++)
        for (int st = RASTER__DECODE_NEED_ROOM; st <= RASTER__DECODE_NOMEM; st++) {
            const char *why = raster__decode_reason(codecs[c], (raster__decode_status_t)st);
            ck_assert_ptr_nonnull(why);
            ck_assert_uint_gt(strlen(why), 8);
            ck_assert_str_ne(why, raster__decode_reason(codecs[c], RASTER__DECODE_OK));
            for (int o = RASTER__DECODE_NEED_ROOM; o < st; o++)
                ck_assert_str_ne(why, raster__decode_reason(codecs[c], (raster__decode_status_t)o));
        }
    ck_assert_str_eq(raster__decode_reason(RASTER__CODEC_DEFLATE, RASTER__DECODE_CORRUPT),
                     "deflate stream is corrupt");
}
END_TEST

START_TEST(zstd_prefixes_are_exact)
{
    const size_t n = ((size_t)3 << 20) / (size_t)tiff_matrix_scale() + 77;
    uint8_t *plain = sample_data(n, 5);
    const int levels[] = {1, 3, 19};
    for (int li = 0; li < 3; li++) {
        const size_t cap = ZSTD_compressBound(n);
        uint8_t *z = malloc(cap + 16);
        const size_t zn = ZSTD_compress(z, cap, plain, n, levels[li]);
        ck_assert(!ZSTD_isError(zn));
        char what[64];
        snprintf(what, sizeof what, "zstd level %d", levels[li]);
        check_prefixes(RASTER__CODEC_ZSTD, z, zn, plain, n, what);
        /* Trailing bytes after the frame are ignored, as libtiff does. */
        memset(z + zn, 0xab, 16);
        check_prefixes(RASTER__CODEC_ZSTD, z, zn + 16, plain, n, "zstd with trailing bytes");
        const raster__decode_ref_t whole = {n, 1};
        uint8_t *buf = malloc(n);
        ck_assert_int_ne(raster__decode(RASTER__CODEC_ZSTD, z, zn / 2, buf, n, n, &whole), RASTER__DECODE_OK);
        free(buf);
        free(z);
    }
    free(plain);
}
END_TEST

/* One strip of 'n' bytes written by libtiff with 'compression'; the raw
 * (encoded) strip is returned. */
static uint8_t *
libtiff_encode(const uint8_t *plain, size_t n, uint16_t compression, size_t *raw_n)
{
    char path[] = "/tmp/check_tiff_codec.XXXXXX";
    const int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    TIFF *t = TIFFOpen(path, "w");
    ck_assert_ptr_nonnull(t);
    const uint32_t width = 1000, rows = (uint32_t)(n / width);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, width);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, rows);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, rows);
    TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
    ck_assert(TIFFWriteEncodedStrip(t, 0, (void *)plain, (tmsize_t)width * rows) >= 0);
    TIFFClose(t);
    t = TIFFOpen(path, "r");
    ck_assert_ptr_nonnull(t);
    *raw_n = (size_t)TIFFGetStrileByteCount(t, 0);
    uint8_t *raw = malloc(*raw_n);
    ck_assert(TIFFReadRawStrip(t, 0, raw, (tmsize_t)*raw_n) == (tmsize_t)*raw_n);
    TIFFClose(t);
    unlink(path);
    return raw;
}

static void
check_libtiff_codec(uint16_t compression, raster__codec_t codec, const char *name)
{
    const size_t n = 1000 * (size_t)(1200 / tiff_matrix_scale() + 3);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        uint8_t *plain = sample_data(n, seed * 31);
        if (seed == 3)
            memset(plain, 'k', n / 2);       /* long runs: KwKwK and RLE repeats */
        size_t raw_n;
        uint8_t *raw = libtiff_encode(plain, n, compression, &raw_n);
        check_prefixes(codec, raw, raw_n, plain, n, name);
        const raster__decode_ref_t whole = {n, 1};
        uint8_t *buf = malloc(n);
        ck_assert_int_ne(raster__decode(codec, raw, raw_n / 3, buf, n, n, &whole), RASTER__DECODE_OK);
        free(buf);
        free(raw);
        free(plain);
    }
}

START_TEST(lzw_matches_libtiff) { check_libtiff_codec(COMPRESSION_LZW, RASTER__CODEC_LZW, "lzw"); }
END_TEST
START_TEST(packbits_matches_libtiff)
{
    check_libtiff_codec(COMPRESSION_PACKBITS, RASTER__CODEC_PACKBITS, "packbits");
}
END_TEST

START_TEST(garbage_never_overruns)
{
    const raster__codec_t codecs[] = {RASTER__CODEC_NONE, RASTER__CODEC_DEFLATE, RASTER__CODEC_ZSTD,
                                      RASTER__CODEC_LZW, RASTER__CODEC_PACKBITS};
    uint64_t s = 99;
    const int rounds = 300 / tiff_matrix_scale() + 5;
    for (int r = 0; r < rounds; r++) {
        const size_t in_n = 1 + tiff_rand(&s) % 5000, full = 1 + tiff_rand(&s) % 70000;
        const size_t needed = 1 + tiff_rand(&s) % full;
        uint8_t *in = malloc(in_n);
        for (size_t i = 0; i < in_n; i++)
            in[i] = (uint8_t)tiff_rand(&s);
        if (r % 3 == 0 && in_n >= 2) {      /* plausible headers */
            in[0] = 0x78;
            in[1] = 0x9c;
        }
        for (int c = 0; c < 5; c++) {
            const raster__decode_ref_t whole = {full, 1};
            const size_t avail = raster__decode_room(codecs[c], needed, &whole);
            uint8_t *out = malloc(avail);
            const raster__decode_status_t st =
                raster__decode(codecs[c], in, in_n, out, needed, avail, &whole);
            ck_assert_int_ne(st, RASTER__DECODE_NOMEM);
            ck_assert_int_ne(st, RASTER__DECODE_NEED_ROOM);   /* avail is what the codec asked for */
            free(out);
        }
        free(in);
    }
}
END_TEST

/* ------------------------------ predictors ----------------------------- */

static uint64_t
load_n(const uint8_t *p, int size)
{
    uint64_t v = 0;
    memcpy(&v, p, (size_t)size);    /* little-endian host */
    return v;
}

static void
store_n(uint8_t *p, uint64_t v, int size)
{
    memcpy(p, &v, (size_t)size);
}

START_TEST(horizontal_predictor_matches_rule)
{
    uint64_t s = 3;
    const int sizes[] = {1, 2, 4, 8};
    for (int si = 0; si < 4; si++)
        for (int nsamp = 1; nsamp <= 8; nsamp++)
            for (int rep = 0; rep < 20; rep++) {
                const int size = sizes[si];
                const int64_t ncols = 1 + (int64_t)(tiff_rand(&s) % 600);
                const int64_t used = 1 + (int64_t)(tiff_rand(&s) % (uint64_t)ncols);
                const size_t nb = (size_t)(ncols * nsamp * size);
                uint8_t *row = malloc(nb), *want = malloc(nb);
                for (size_t i = 0; i < nb; i++)
                    row[i] = (uint8_t)tiff_rand(&s);
                memcpy(want, row, nb);
                /* The rule: sample i of pixel x adds sample i of pixel x-1, mod 2^bits. */
                const uint64_t mask = size == 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
                for (int64_t x = 1; x < used; x++)
                    for (int k = 0; k < nsamp; k++) {
                        uint8_t *cur = want + ((size_t)(x * nsamp + k)) * (size_t)size;
                        const uint64_t v = (load_n(cur, size) + load_n(cur - nsamp * size, size)) & mask;
                        store_n(cur, v, size);
                    }
                raster__unpredict_h(row, used, nsamp, size);
                ck_assert_msg(memcmp(row, want, nb) == 0, "size %d nsamp %d ncols %lld used %lld", size,
                              nsamp, (long long)ncols, (long long)used);
                free(row);
                free(want);
            }
}
END_TEST

START_TEST(float_predictor_matches_rule)
{
    uint64_t s = 4;
    for (int size = 4; size <= 8; size += 4)
        for (int nsamp = 1; nsamp <= 4; nsamp++)
            for (int rep = 0; rep < 10; rep++) {
                const int64_t ncols = 1 + (int64_t)(tiff_rand(&s) % 300);
                const size_t wc = (size_t)(ncols * nsamp), nb = wc * (size_t)size;
                /* Encode by the rule: byte planes, most significant first,
                 * then byte-wise differences 'nsamp' apart. */
                uint8_t *vals = malloc(nb), *enc = malloc(nb), *tmp = malloc(nb);
                for (size_t i = 0; i < nb; i++)
                    vals[i] = (uint8_t)tiff_rand(&s);
                for (size_t i = 0; i < wc; i++)
                    for (int b = 0; b < size; b++)
                        enc[(size_t)b * wc + i] = vals[i * (size_t)size + (size_t)(size - 1 - b)];
                for (size_t i = nb - 1; i >= (size_t)nsamp; i--)
                    enc[i] = (uint8_t)(enc[i] - enc[i - (size_t)nsamp]);
                raster__unpredict_fp(enc, tmp, ncols, nsamp, size);
                ck_assert_msg(memcmp(enc, vals, nb) == 0, "size %d nsamp %d ncols %lld", size, nsamp,
                              (long long)ncols);
                free(vals);
                free(enc);
                free(tmp);
            }
}
END_TEST

START_TEST(byteswap_reverses)
{
    uint8_t b[24];
    for (int i = 0; i < 24; i++)
        b[i] = (uint8_t)i;
    raster__byteswap(b, 3, 8);
    ck_assert_int_eq(b[0], 7);
    ck_assert_int_eq(b[8], 15);
    raster__byteswap(b, 6, 4);
    ck_assert_int_eq(b[0], 4);
    raster__byteswap(b, 12, 2);
    ck_assert_int_eq(b[0], 5);
}
END_TEST

static Suite *
tiff_codec_suite(void)
{
    TIFFSetWarningHandler(NULL);
    Suite *s = suite_create("tiff_codec");
    TCase *tc = tcase_create("codecs");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, deflate_prefixes_are_exact);
    tcase_add_test(tc, damaged_deflate_judged_as_asked);
    tcase_add_test(tc, zstd_prefixes_are_exact);
    tcase_add_test(tc, lzw_matches_libtiff);
    tcase_add_test(tc, packbits_matches_libtiff);
    tcase_add_test(tc, garbage_never_overruns);
    tcase_add_test(tc, every_outcome_has_a_reason);
    suite_add_tcase(s, tc);
    tc = tcase_create("predictors");
    tcase_add_test(tc, horizontal_predictor_matches_rule);
    tcase_add_test(tc, float_predictor_matches_rule);
    tcase_add_test(tc, byteswap_reverses);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(tiff_codec_suite)
