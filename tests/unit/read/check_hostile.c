/*
 * check_hostile.c - files built to hurt: each class of damage yields its
 * own status and message, through both readers, never a crash, a hang, a
 * write outside the destination or unbounded memory.
 *
 * Every file is made here, deterministically, from a valid one: libtiff
 * writes a small tiled or stripped TIFF (64x48, 3 bands of uint16, 16x16
 * tiles or 8-row strips, DEFLATE or ZSTD with predictor 2), whose pixels
 * are known, and the test then patches the bytes of its directory or its
 * segments (a small IFD editor below), or changes the file on disk while a
 * dataset has it open.  The truncation cases also cut a real fixture.
 *
 * Each case is checked with the default reader (native when it serves the
 * file) and with RASTER_READER_GDAL: the status, a word of the message that
 * names the cause, the file name in the message, and guard bytes around
 * every destination.  Where the damage only touches some segments, the
 * others must still read correctly, and a failed read leaves the dataset
 * usable: the next read of a good window is right.
 */
#include "test_util.h"

#include <tiffio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define W 64
#define H 48
#define NB 3
#define TS 16                 /* tile side */
#define RPS 8                 /* rows per strip */

static char tmpdir[256];

/* No TIFFSetErrorHandler() here: GDAL's GTiff driver installs its own
 * process-wide libtiff handlers to collect the messages it reports, and a
 * test that replaced them would change every later GDAL message (with
 * CK_FORK=no all tests share one process).  The base files are valid. */
static void
setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_hostile.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* HOSTILE_KEEP=1 keeps the files (named in the output) for a debugger. */
static void
teardown(void)
{
    if (getenv("HOSTILE_KEEP") != NULL) {
        fprintf(stderr, "check_hostile: files kept in %s\n", tmpdir);
        return;
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* A path in this test's directory (four buffers, used in turn). */
static const char *
tmp_path(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

/* ------------------------------ the valid base file -------------------- */

/* Known pixels, with a hashed low byte so that large files do not
 * compress to nothing (GDAL would then hold them whole in its buffers). */
static uint16_t
pixel(int64_t r, int64_t c, int b)
{
    const uint32_t h = (uint32_t)(r * 2654435761u) ^ (uint32_t)(c * 40503u) ^ (uint32_t)(b * 97u);
    return (uint16_t)(r * 1000 + c * 7 + b * 20000 + ((h >> 11) & 255));
}

/* Write a w x h base file, tiled (TS x TS) or stripped (RPS rows), chunky,
 * with 'predictor' when compressed. */
static void
make_base_ex(const char *path, uint16_t compression, int predictor, int tiled, int w, int h)
{
    TIFF *t = TIFFOpen(path, "wl");
    ck_assert_ptr_nonnull(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)NB);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)16);
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, (uint16_t)SAMPLEFORMAT_UINT);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, (uint16_t)PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, (uint16_t)PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
    if (compression != COMPRESSION_NONE)
        TIFFSetField(t, TIFFTAG_PREDICTOR, (uint16_t)predictor);
    const int sw = tiled ? TS : w, sh = tiled ? TS : RPS;
    if (tiled) {
        TIFFSetField(t, TIFFTAG_TILEWIDTH, (uint32_t)TS);
        TIFFSetField(t, TIFFTAG_TILELENGTH, (uint32_t)TS);
    } else {
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)RPS);
    }
    uint16_t *seg = malloc((size_t)sw * sh * NB * 2);
    int k = 0;
    for (int y0 = 0; y0 < h; y0 += sh)
        for (int x0 = 0; x0 < w; x0 += sw, k++) {
            for (int y = 0; y < sh; y++)
                for (int x = 0; x < sw; x++)
                    for (int b = 0; b < NB; b++)
                        seg[((size_t)y * sw + x) * NB + b] = pixel(y0 + y, x0 + x, b);
            const tmsize_t n = (tmsize_t)sw * sh * NB * 2;
            ck_assert_int_eq(tiled ? TIFFWriteEncodedTile(t, (uint32_t)k, seg, n)
                                   : TIFFWriteEncodedStrip(t, (uint32_t)k, seg, n),
                             n);
        }
    free(seg);
    TIFFClose(t);
}

/* The usual base: W x H, predictor 2. */
static void
make_base(const char *path, uint16_t compression, int tiled)
{
    make_base_ex(path, compression, 2, tiled, W, H);
}

/* ------------------------------ a tiny IFD editor ---------------------- */

/* A classic little-endian TIFF in memory (what make_base writes). */
typedef struct tfile {
    uint8_t *b;
    size_t n;
} tfile_t;

static tfile_t
tf_load(const char *path)
{
    tfile_t f = {NULL, 0};
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    f.n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f.b = malloc(f.n + 1);
    ck_assert_int_eq(fread(f.b, 1, f.n, fp), f.n);
    fclose(fp);
    ck_assert(f.n > 8 && f.b[0] == 'I' && f.b[1] == 'I' && f.b[2] == 42);
    return f;
}

static void
tf_save(const tfile_t *f, const char *path)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fwrite(f->b, 1, f->n, fp), f->n);
    fclose(fp);
}

static uint32_t rd16(const tfile_t *f, size_t o) { return f->b[o] | f->b[o + 1] << 8; }
static uint32_t
rd32(const tfile_t *f, size_t o)
{
    return (uint32_t)f->b[o] | (uint32_t)f->b[o + 1] << 8 | (uint32_t)f->b[o + 2] << 16 |
           (uint32_t)f->b[o + 3] << 24;
}
static void wr16(tfile_t *f, size_t o, uint32_t v) { f->b[o] = (uint8_t)v; f->b[o + 1] = (uint8_t)(v >> 8); }
static void
wr32(tfile_t *f, size_t o, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        f->b[o + i] = (uint8_t)(v >> (8 * i));
}

/* Offset of the 12-byte entry of 'tag' in the first IFD. */
static size_t
tf_entry(const tfile_t *f, uint16_t tag)
{
    const size_t ifd = rd32(f, 4);
    const uint32_t n = rd16(f, ifd);
    for (uint32_t i = 0; i < n; i++) {
        const size_t e = ifd + 2 + 12 * (size_t)i;
        if (rd16(f, e) == tag)
            return e;
    }
    ck_abort_msg("tag %u not in the IFD", tag);
    return 0;
}

static uint32_t tf_count(const tfile_t *f, uint16_t tag) { return rd32(f, tf_entry(f, tag) + 4); }

/* Where value i of a SHORT or LONG entry lives. */
static size_t
tf_value_at(const tfile_t *f, uint16_t tag, uint32_t i)
{
    const size_t e = tf_entry(f, tag);
    const uint32_t type = rd16(f, e + 2), count = rd32(f, e + 4);
    const size_t size = type == TIFF_SHORT ? 2 : 4;
    ck_assert(type == TIFF_SHORT || type == TIFF_LONG);
    ck_assert_uint_lt(i, count);
    return (size * count <= 4 ? e + 8 : rd32(f, e + 8)) + size * i;
}

static uint32_t
tf_get(const tfile_t *f, uint16_t tag, uint32_t i)
{
    const size_t o = tf_value_at(f, tag, i);
    return rd16(f, tf_entry(f, tag) + 2) == TIFF_SHORT ? rd16(f, o) : rd32(f, o);
}

static void
tf_set(tfile_t *f, uint16_t tag, uint32_t i, uint32_t v)
{
    const size_t o = tf_value_at(f, tag, i);
    if (rd16(f, tf_entry(f, tag) + 2) == TIFF_SHORT)
        wr16(f, o, v);
    else
        wr32(f, o, v);
}

/* Make a one-value entry a LONG holding 'v' (room for values up to 2^32-1). */
static void
tf_set_long(tfile_t *f, uint16_t tag, uint32_t v)
{
    const size_t e = tf_entry(f, tag);
    wr16(f, e + 2, TIFF_LONG);
    wr32(f, e + 4, 1);
    wr32(f, e + 8, v);
}

/* Append 'n' bytes at the end of the file; returns their offset. */
static uint32_t
tf_append(tfile_t *f, const void *p, size_t n)
{
    const size_t at = (f->n + 1) & ~(size_t)1;
    f->b = realloc(f->b, at + n);
    memset(f->b + f->n, 0, at - f->n);
    memcpy(f->b + at, p, n);
    f->n = at + n;
    return (uint32_t)at;
}

/* ------------------------------ reading and checking ------------------- */

#define READERS 2
static const int reader_of[READERS] = {-1, RASTER_READER_GDAL};
static const char *const reader_name[READERS] = {"default", "gdal"};

static raster_status_t
open_with(const char *path, int r, raster_dataset_t **ds)
{
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = reader_of[r];
    *ds = NULL;
    return raster_open_ex(path, &oo, ds);
}

/* Read 'win' of every band as uint16 into a guarded buffer; on RASTER_OK
 * compare with the base file's pixels when 'check' is set. */
static raster_status_t
read_win(raster_dataset_t *ds, raster_window_t win, int check)
{
    raster_info_t in;
    ck_assert_int_eq(raster_dataset_info(ds, &in), RASTER_OK);
    guarded_t g = guarded_alloc((size_t)(win.width * win.height * in.band_count) * 2);
    memset(g.data, 0x5a, g.nbytes);
    raster_view_t v = raster_view_hwc(g.data, RASTER_U16, win.height, win.width, in.band_count);
    const raster_status_t st = raster_read_into(ds, win, NULL, &v);
    ck_assert_msg(guarded_intact(&g), "a read wrote outside its destination");
    if (st == RASTER_OK && check) {
        const uint16_t *px = (const uint16_t *)g.data;
        for (int64_t r = 0; r < win.height; r++)
            for (int64_t c = 0; c < win.width; c++)
                for (int b = 0; b < in.band_count; b++) {
                    const uint16_t want = pixel(win.row_off + r, win.col_off + c, b);
                    const uint16_t got = px[(r * win.width + c) * in.band_count + b];
                    if (got != want)
                        ck_abort_msg("pixel (%lld,%lld) band %d is %u, not %u",
                                     (long long)(win.row_off + r), (long long)(win.col_off + c),
                                     b + 1, got, want);
                }
    }
    guarded_free(&g);
    return st;
}

static void
expect_msg(const char *path, const char *needle, int r)
{
    const char *m = raster_last_error();
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (getenv("HOSTILE_VERBOSE") != NULL)
        fprintf(stderr, "[%s reader] %s\n", reader_name[r], m);
    ck_assert_msg(strstr(m, base) != NULL, "%s reader: message lacks the file: %s", reader_name[r], m);
    if (needle != NULL)
        ck_assert_msg(strstr(m, needle) != NULL, "%s reader: message lacks \"%s\": %s",
                      reader_name[r], needle, m);
}

/* Which reader serves 'ds': 0 native, 1 GDAL (the default reader falls
 * back to GDAL for what the native one does not read).  Messages differ
 * by the reader that served, not by the one asked for. */
static int
served(const raster_dataset_t *ds)
{
    raster_info_t in;
    ck_assert_int_eq(raster_dataset_info(ds, &in), RASTER_OK);
    return in.reader == RASTER_READER_NATIVE_TIFF ? 0 : 1;
}

#define EXPECT_ST(got, want, r)                                                            \
    ck_assert_msg((got) == (want), "%s reader: got %s, want %s: %s", reader_name[r],     \
                  raster_status_str(got), raster_status_str(want), raster_last_error())

/* The good tiles of a damaged file still read right; the damaged one fails
 * with 'st' and a message holding 'needle' (per serving reader: native,
 * GDAL), and afterwards a good window reads right again. */
static void
check_damaged_segment(const char *path, raster_window_t bad, raster_window_t good, raster_status_t st,
                      const char *const needle[READERS])
{
    for (int r = 0; r < READERS; r++) {
        raster_dataset_t *ds = NULL;
        ck_assert_msg(open_with(path, r, &ds) == RASTER_OK, "%s: %s", reader_name[r],
                      raster_last_error());
        ck_assert_int_eq(read_win(ds, good, 1), RASTER_OK);
        const raster_status_t got = read_win(ds, bad, 1);
        EXPECT_ST(got, st, r);
        if (st != RASTER_OK)
            expect_msg(path, needle[served(ds)], r);
        ck_assert_msg(read_win(ds, good, 1) == RASTER_OK, "%s reader: dataset unusable after a failed read: %s",
                      reader_name[r], raster_last_error());
        raster_close(ds);
    }
}

static const raster_window_t tile0 = {0, 0, TS, TS};        /* tile 0 */
static const raster_window_t tile5 = {TS, TS, TS, TS};      /* tile 5 (row 1, col 1) */
static const raster_window_t all = {0, 0, W, H};

/* ------------------------------ segment tables ------------------------- */

START_TEST(segment_offset_past_eof)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ADOBE_DEFLATE, 1);
    tfile_t f = tf_load(base);
    tf_set(&f, TIFFTAG_TILEOFFSETS, 5, (uint32_t)f.n + 4096);
    const char *path = tmp_path("offset_past_eof.tif");
    tf_save(&f, path);
    free(f.b);
    check_damaged_segment(path, tile5, tile0, RASTER_E_CORRUPT,
                          (const char *const[]){"past the end of the file", "tile 5"});
}
END_TEST

START_TEST(segment_bytecount_past_eof)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ZSTD, 1);
    tfile_t f = tf_load(base);
    const uint32_t off = tf_get(&f, TIFFTAG_TILEOFFSETS, 5);
    tf_set(&f, TIFFTAG_TILEBYTECOUNTS, 5, (uint32_t)f.n - off + 100);
    const char *path = tmp_path("bytecount_past_eof.tif");
    tf_save(&f, path);
    free(f.b);
    check_damaged_segment(path, tile5, tile0, RASTER_E_CORRUPT,
                          (const char *const[]){"past the end of the file", "tile 5"});
}
END_TEST

/* An offset so large that offset + count wraps around 64 bits is as
 * invalid as one just past the end (BigTIFF offsets are 64-bit). */
START_TEST(segment_offset_wraps)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ADOBE_DEFLATE, 0);
    tfile_t f = tf_load(base);
    tf_set(&f, TIFFTAG_STRIPOFFSETS, 1, 0xFFFFFFF0u);
    tf_set(&f, TIFFTAG_STRIPBYTECOUNTS, 1, 0x7FFFFFFFu);
    const char *path = tmp_path("offset_wraps.tif");
    tf_save(&f, path);
    free(f.b);
    check_damaged_segment(path, (raster_window_t){0, RPS, W, RPS}, (raster_window_t){0, 0, W, RPS},
                          RASTER_E_CORRUPT, (const char *const[]){"strip 1", NULL});
}
END_TEST

/* Fewer TileOffsets / TileByteCounts than the image has tiles: the tiles
 * listed read, the others fail (GDAL serves such a file: libtiff reports
 * the missing entries instead of reading them as empty tiles). */
START_TEST(fewer_segment_offsets_than_tiles)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ADOBE_DEFLATE, 1);
    tfile_t f = tf_load(base);
    const uint32_t n = tf_count(&f, TIFFTAG_TILEOFFSETS);
    ck_assert_uint_eq(n, (W / TS) * (H / TS));
    wr32(&f, tf_entry(&f, TIFFTAG_TILEOFFSETS) + 4, n - 3);
    wr32(&f, tf_entry(&f, TIFFTAG_TILEBYTECOUNTS) + 4, n - 3);
    const char *path = tmp_path("fewer_offsets.tif");
    tf_save(&f, path);
    free(f.b);
    /* Tile 10 (row 2, col 2) is one of the three the tables leave out. */
    check_damaged_segment(path, (raster_window_t){2 * TS, 2 * TS, TS, TS}, tile5, RASTER_E_CORRUPT,
                          (const char *const[]){"IReadBlock failed", "IReadBlock failed"});
}
END_TEST

/* ------------------------------ sizes ---------------------------------- */

static void
expect_open_fails(const char *path, raster_status_t st, const char *needle)
{
    for (int r = 0; r < READERS; r++) {
        raster_dataset_t *ds = NULL;
        const raster_status_t got = open_with(path, r, &ds);
        EXPECT_ST(got, st, r);
        ck_assert_ptr_null(ds);
        expect_msg(path, needle, r);
    }
}

/* Peak RSS grows by less than 'mib' while fn runs (it runs in a child, so
 * earlier tests' peaks do not count). */
static long
maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Width * height * samples * bytes overflows 64 bits: 2^32-1 squared. */
START_TEST(size_product_overflows)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ADOBE_DEFLATE, 1);
    tfile_t f = tf_load(base);
    tf_set_long(&f, TIFFTAG_IMAGEWIDTH, 0xFFFFFFFFu);
    tf_set_long(&f, TIFFTAG_IMAGELENGTH, 0xFFFFFFFFu);
    tf_set_long(&f, TIFFTAG_TILEWIDTH, 0xFFFFFFF0u);
    tf_set_long(&f, TIFFTAG_TILELENGTH, 0xFFFFFFF0u);
    const char *path = tmp_path("size_overflow.tif");
    tf_save(&f, path);
    free(f.b);
    const long before = maxrss_kib();
    expect_open_fails(path, RASTER_E_FORMAT, "Cannot handle zero number of tiles");
    ck_assert_int_lt(maxrss_kib() - before, 256 * 1024);
}
END_TEST

/* A tile of 2^31-16 x 2^31-16 pixels in a 64x48 image: one segment of 2^64
 * bytes claimed by a file of a few kilobytes. */
START_TEST(segment_size_overflows)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ZSTD, 1);
    tfile_t f = tf_load(base);
    tf_set_long(&f, TIFFTAG_TILEWIDTH, 0x7FFFFFF0u);
    tf_set_long(&f, TIFFTAG_TILELENGTH, 0x7FFFFFF0u);
    const char *path = tmp_path("tile_overflow.tif");
    tf_save(&f, path);
    free(f.b);
    const long before = maxrss_kib();
    expect_open_fails(path, RASTER_E_FORMAT, "Integer overflow");
    ck_assert_int_lt(maxrss_kib() - before, 256 * 1024);
}
END_TEST

/* 2^31 x 2^31 pixels declared, a few kilobytes of file. */
START_TEST(absurd_dimensions)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ADOBE_DEFLATE, 1);
    tfile_t f = tf_load(base);
    tf_set_long(&f, TIFFTAG_IMAGEWIDTH, 0x80000000u);
    tf_set_long(&f, TIFFTAG_IMAGELENGTH, 0x80000000u);
    const char *path = tmp_path("absurd_dims.tif");
    tf_save(&f, path);
    free(f.b);
    const long before = maxrss_kib();
    expect_open_fails(path, RASTER_E_FORMAT, "Integer overflow");
    ck_assert_int_lt(maxrss_kib() - before, 256 * 1024);
}
END_TEST

/* 2^31-1 x 2^31-1 pixels in one-row strips fits GDAL's int sizes, but one
 * strip holds 12 GiB: neither reader may allocate it.  The native reader
 * leaves the file to GDAL (a segment over 2 GiB); the GDAL reader refuses
 * blocks over 2 GiB instead of caching one per read. */
START_TEST(absurd_dimensions_int_max)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ADOBE_DEFLATE, 0);
    tfile_t f = tf_load(base);
    tf_set_long(&f, TIFFTAG_IMAGEWIDTH, 0x7FFFFFFFu);
    tf_set_long(&f, TIFFTAG_IMAGELENGTH, 0x7FFFFFFFu);
    tf_set_long(&f, TIFFTAG_ROWSPERSTRIP, 1);
    const char *path = tmp_path("absurd_dims_intmax.tif");
    tf_save(&f, path);
    free(f.b);
    const long before = maxrss_kib();
    for (int r = 0; r < READERS; r++) {
        raster_dataset_t *ds = NULL;
        ck_assert_int_eq(open_with(path, r, &ds), RASTER_OK);
        raster_info_t in;
        raster_dataset_info(ds, &in);
        ck_assert_int_eq(in.width, 0x7FFFFFFF);
        ck_assert_int_eq(in.reader, RASTER_READER_GDAL);
        EXPECT_ST(read_win(ds, (raster_window_t){0x7FFFFF00, 0x7FFFFF00, 16, 16}, 0),
                  RASTER_E_UNSUPPORTED, r);
        expect_msg(path, "more than the 2 GiB one read may use", r);
        EXPECT_ST(read_win(ds, tile0, 0), RASTER_E_UNSUPPORTED, r);
        raster_close(ds);
    }
    ck_assert_int_lt(maxrss_kib() - before, 256 * 1024);
}
END_TEST

/* ------------------------------ decompression bombs -------------------- */

/* Tile 5 replaced by a stream that inflates to 'bomb_nbytes' (a 16x16x3
 * uint16 tile is 1536 bytes) and then is poisoned (test_util.h, bomb_zlib):
 * reads stop at one tile, so they never meet the poison and succeed (a
 * reader that inflated the whole stream, even throwing it away, would fail
 * there: the bound on the work, with no clock), the tile reads as the
 * stream's first 1536 bytes, as libtiff reads it, and memory stays flat. */
static void
check_bomb(uint16_t compression, const void *stream, size_t n)
{
    const char *base = tmp_path("base.tif");
    make_base(base, compression, 1);
    tfile_t f = tf_load(base);
    const uint32_t at = tf_append(&f, stream, n);
    tf_set(&f, TIFFTAG_TILEOFFSETS, 5, at);
    tf_set(&f, TIFFTAG_TILEBYTECOUNTS, 5, (uint32_t)n);
    const char *path = tmp_path("bomb.tif");
    tf_save(&f, path);
    free(f.b);
    const long before = maxrss_kib();
    uint16_t out[READERS][TS * TS * NB];
    for (int r = 0; r < READERS; r++) {
        raster_dataset_t *ds = NULL;
        ck_assert_int_eq(open_with(path, r, &ds), RASTER_OK);
        raster_view_t v = raster_view_hwc(out[r], RASTER_U16, TS, TS, NB);
        for (int k = 0; k < 20; k++)
            EXPECT_ST(raster_read_into(ds, tile5, NULL, &v), RASTER_OK, r);
        ck_assert_int_eq(read_win(ds, tile0, 1), RASTER_OK);
        raster_close(ds);
    }
    ck_assert_msg(memcmp(out[0], out[1], sizeof out[0]) == 0, "the readers disagree on a bomb tile");
    for (size_t i = 0; i < sizeof out[0] / sizeof out[0][0]; i++)
        ck_assert_msg(out[0][i] == 0, "a bomb tile of zeros reads %u at %zu", out[0][i], i);
    ck_assert_int_lt(maxrss_kib() - before, 128 * 1024);
}

/* 64 MiB: 40000 times a tile.  RASTER_STRESS_SCALE > 1 (valgrind) makes it
 * 4 MiB, still 2700 times a tile. */
static size_t
bomb_nbytes(void)
{
    const char *s = getenv("RASTER_STRESS_SCALE");
    return s != NULL && atoi(s) > 1 ? (size_t)4 << 20 : (size_t)64 << 20;
}
#define BOMB_NBYTES bomb_nbytes()

START_TEST(deflate_bomb)
{
    /* Zeros compress ~1000:1 with DEFLATE: 64 MiB become ~64 KiB. */
    uint8_t *zeros = calloc(1, BOMB_NBYTES);
    size_t n = 0;
    uint8_t *z = bomb_zlib(zeros, BOMB_NBYTES, &n);
    free(zeros);
    check_bomb(COMPRESSION_ADOBE_DEFLATE, z, n);
    free(z);
}
END_TEST

START_TEST(zstd_bomb)
{
    uint8_t *zeros = calloc(1, BOMB_NBYTES);
    size_t n = 0;
    uint8_t *z = bomb_zstd(zeros, BOMB_NBYTES, &n);
    free(zeros);
    check_bomb(COMPRESSION_ZSTD, z, n);
    free(z);
}
END_TEST

/* ------------------------------ what the directory says ---------------- */

START_TEST(unknown_compression)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ADOBE_DEFLATE, 1);
    tfile_t f = tf_load(base);
    tf_set(&f, TIFFTAG_COMPRESSION, 0, 34999);
    const char *path = tmp_path("unknown_compression.tif");
    tf_save(&f, path);
    free(f.b);
    expect_open_fails(path, RASTER_E_UNSUPPORTED, "codec");
}
END_TEST

/* BitsPerSample 16, 16, 8: libtiff refuses samples of different sizes. */
START_TEST(bits_per_sample_differ_per_sample)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ADOBE_DEFLATE, 1);
    tfile_t f = tf_load(base);
    ck_assert_uint_eq(tf_count(&f, TIFFTAG_BITSPERSAMPLE), NB);
    tf_set(&f, TIFFTAG_BITSPERSAMPLE, 2, 8);
    const char *path = tmp_path("bps_mixed.tif");
    tf_save(&f, path);
    free(f.b);
    expect_open_fails(path, RASTER_E_UNSUPPORTED, "BitsPerSample");
}
END_TEST

/* BitsPerSample 12 on a file of 16-bit samples: the native reader does not
 * read 12-bit samples, so GDAL serves it.  libtiff has no 12-bit
 * horizontal predictor: a clear UNSUPPORTED, from both readers. */
START_TEST(bits_per_sample_12_with_predictor)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ADOBE_DEFLATE, 1);
    tfile_t f = tf_load(base);
    for (uint32_t i = 0; i < NB; i++)
        tf_set(&f, TIFFTAG_BITSPERSAMPLE, i, 12);
    const char *path = tmp_path("bps12_pred2.tif");
    tf_save(&f, path);
    free(f.b);
    for (int r = 0; r < READERS; r++) {
        raster_dataset_t *ds = NULL;
        ck_assert_int_eq(open_with(path, r, &ds), RASTER_OK);
        raster_info_t in;
        raster_dataset_info(ds, &in);
        ck_assert_int_eq(in.reader, RASTER_READER_GDAL);
        EXPECT_ST(read_win(ds, all, 0), RASTER_E_UNSUPPORTED, r);
        expect_msg(path, "not supported with 12-bit samples", r);
        raster_close(ds);
    }
}
END_TEST

/* Without a predictor, GDAL unpacks the 16-bit stream as 12-bit samples:
 * values below 4096, the same from both readers, and no more data than
 * the stream holds (a 12-bit tile is smaller than the 16-bit one). */
START_TEST(bits_per_sample_12)
{
    const char *base = tmp_path("base.tif");
    make_base_ex(base, COMPRESSION_ADOBE_DEFLATE, 1, 1, W, H);
    tfile_t f = tf_load(base);
    for (uint32_t i = 0; i < NB; i++)
        tf_set(&f, TIFFTAG_BITSPERSAMPLE, i, 12);
    const char *path = tmp_path("bps12.tif");
    tf_save(&f, path);
    free(f.b);
    static uint16_t out[READERS][W * H * NB];
    for (int r = 0; r < READERS; r++) {
        raster_dataset_t *ds = NULL;
        ck_assert_int_eq(open_with(path, r, &ds), RASTER_OK);
        raster_info_t in;
        raster_dataset_info(ds, &in);
        ck_assert_int_eq(in.reader, RASTER_READER_GDAL);
        ck_assert_int_eq(in.dtype, RASTER_U16);
        raster_view_t v = raster_view_hwc(out[r], RASTER_U16, H, W, NB);
        EXPECT_ST(raster_read_into(ds, all, NULL, &v), RASTER_OK, r);
        for (size_t i = 0; i < W * H * NB; i++)
            ck_assert_uint_lt(out[r][i], 4096);
        raster_close(ds);
    }
    ck_assert(memcmp(out[0], out[1], sizeof out[0]) == 0);
}
END_TEST

/* ------------------------------ truncated files ------------------------ */

static void
write_prefix(const char *src, const char *dst, size_t n)
{
    tfile_t f = tf_load(src);
    ck_assert_uint_le(n, f.n);
    f.n = n;
    tf_save(&f, dst);
    free(f.b);
}

/* Cut inside the header, inside the IFD, inside the segment data. */
START_TEST(truncated_files)
{
    const char *base = tmp_path("base.tif");
    make_base(base, COMPRESSION_ADOBE_DEFLATE, 1);
    tfile_t f = tf_load(base);
    const size_t ifd = rd32(&f, 4);
    const uint32_t off5 = tf_get(&f, TIFFTAG_TILEOFFSETS, 5);
    const size_t data_end = off5 + tf_get(&f, TIFFTAG_TILEBYTECOUNTS, 5);
    free(f.b);
    /* libtiff writes segment data before the IFD: cut the IFD itself. */
    ck_assert_uint_gt(ifd, data_end);
    const char *cut_header = tmp_path("cut_header.tif");
    write_prefix(base, cut_header, 5);
    expect_open_fails(cut_header, RASTER_E_FORMAT, NULL);
    const char *cut_ifd = tmp_path("cut_ifd.tif");
    write_prefix(base, cut_ifd, ifd + 20);
    expect_open_fails(cut_ifd, RASTER_E_FORMAT, NULL);
}
END_TEST

/* A real fixture (GDAL-written, IFD first) cut in the middle of its tiles:
 * the tiles before the cut read, the first one after fails with the end
 * of the file named. */
START_TEST(truncated_fixture)
{
    const char *src = fixture_path("u16_zstd_pred2_tile256_pixel_1b_3x1000.tif");
    if (access(src, R_OK) != 0)
        return;     /* the fixture matrix changed: the generated cases still run */
    tfile_t f = tf_load(src);
    const uint32_t n = tf_count(&f, TIFFTAG_TILEOFFSETS);
    ck_assert_uint_ge(n, 3);
    const uint32_t cut = tf_get(&f, TIFFTAG_TILEOFFSETS, 2) + tf_get(&f, TIFFTAG_TILEBYTECOUNTS, 2) / 2;
    free(f.b);
    const char *path = tmp_path("truncated_fixture.tif");
    write_prefix(src, path, cut);
    for (int r = 0; r < READERS; r++) {
        raster_dataset_t *ds = NULL;
        ck_assert_int_eq(open_with(path, r, &ds), RASTER_OK);
        uint16_t buf[3 * 256];
        raster_view_t v = raster_view_hwc(buf, RASTER_U16, 256, 3, 1);
        EXPECT_ST(raster_read_into(ds, (raster_window_t){0, 256, 3, 256}, NULL, &v), RASTER_OK, r);
        const raster_status_t st = raster_read_into(ds, (raster_window_t){0, 512, 3, 256}, NULL, &v);
        EXPECT_ST(st, RASTER_E_CORRUPT, r);
        expect_msg(path, served(ds) == 0 ? "past the end of the file" : "IReadBlock failed", r);
        raster_close(ds);
    }
}
END_TEST

/* ------------------------------ changed on disk while open ------------- */

/* Large enough that GDAL cannot have the file in its read buffers: a read
 * after the change really goes to the disk. */
#define LW 512
#define LH 384
#define LIVE_TILE ((LW / TS) * (LH / TS) / 2 + 3)
static const raster_window_t live_win = {(LIVE_TILE % (LW / TS)) * TS, (LIVE_TILE / (LW / TS)) * TS, TS, TS};

/* Truncated after open: the size checked at open no longer holds, and the
 * read finds the end of the file; restored, the same dataset reads right. */
START_TEST(truncated_while_open)
{
    const char *path = tmp_path("live.tif");
    for (int r = 0; r < READERS; r++) {
        make_base_ex(path, COMPRESSION_ADOBE_DEFLATE, 2, 1, LW, LH);
        tfile_t f = tf_load(path);
        const uint32_t off = tf_get(&f, TIFFTAG_TILEOFFSETS, 0);
        raster_dataset_t *ds = NULL;
        ck_assert_int_eq(open_with(path, r, &ds), RASTER_OK);
        ck_assert_int_eq(truncate(path, off + 2), 0);
        const raster_status_t st = read_win(ds, live_win, 1);
        EXPECT_ST(st, RASTER_E_CORRUPT, r);
        expect_msg(path, served(ds) == 0 ? "the file ends" : "IReadBlock failed", r);
        /* Put the bytes back (same inode): the dataset reads again. */
        const int fd = open(path, O_WRONLY);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pwrite(fd, f.b, f.n, 0), (ssize_t)f.n);
        close(fd);
        ck_assert_msg(read_win(ds, live_win, 1) == RASTER_OK, "%s reader: %s", reader_name[r],
                      raster_last_error());
        raster_close(ds);
        free(f.b);
    }
}
END_TEST

/* Overwritten in place (same inode, same size) with garbage segments. */
START_TEST(overwritten_while_open)
{
    const char *path = tmp_path("live.tif");
    for (int r = 0; r < READERS; r++) {
        make_base_ex(path, COMPRESSION_ADOBE_DEFLATE, 2, 1, LW, LH);
        tfile_t f = tf_load(path);
        raster_dataset_t *ds = NULL;
        ck_assert_int_eq(open_with(path, r, &ds), RASTER_OK);
        const uint32_t off = tf_get(&f, TIFFTAG_TILEOFFSETS, LIVE_TILE);
        const uint32_t n = tf_get(&f, TIFFTAG_TILEBYTECOUNTS, LIVE_TILE);
        uint8_t *junk = malloc(n);
        for (uint32_t i = 0; i < n; i++)
            junk[i] = (uint8_t)(0xff - i * 13);
        const int fd = open(path, O_WRONLY);
        ck_assert_int_eq(pwrite(fd, junk, n, off), (ssize_t)n);
        const raster_status_t st = read_win(ds, live_win, 0);
        EXPECT_ST(st, RASTER_E_CORRUPT, r);
        expect_msg(path, served(ds) == 0 ? "deflate stream is corrupt" : "ZIPDecode", r);
        ck_assert_int_eq(pwrite(fd, f.b + off, n, off), (ssize_t)n);
        close(fd);
        ck_assert_msg(read_win(ds, live_win, 1) == RASTER_OK, "%s reader: %s", reader_name[r],
                      raster_last_error());
        raster_close(ds);
        free(junk);
        free(f.b);
    }
}
END_TEST

/* Replaced by another file (rename over it): an open dataset keeps reading
 * the file it opened (the native reader's descriptor and GDAL's open
 * handle both point at it); a forked child, which must open the path
 * again, notices the replacement and fails rather than read another
 * file's bytes. */
START_TEST(replaced_while_open)
{
    const char *path = tmp_path("live.tif");
    const char *other = tmp_path("other.tif");
    for (int r = 0; r < READERS; r++) {
        make_base_ex(path, COMPRESSION_ADOBE_DEFLATE, 2, 1, LW, LH);
        make_base(other, COMPRESSION_ZSTD, 0);
        raster_dataset_t *ds = NULL;
        ck_assert_int_eq(open_with(path, r, &ds), RASTER_OK);
        ck_assert_int_eq(read_win(ds, tile0, 1), RASTER_OK);
        ck_assert_int_eq(rename(other, path), 0);
        ck_assert_msg(read_win(ds, live_win, 1) == RASTER_OK, "%s reader: %s", reader_name[r],
                      raster_last_error());
        const pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            const raster_status_t st = read_win(ds, live_win, 1);
            if (st != RASTER_E_IO || strstr(raster_last_error(), "replaced") == NULL) {
                fprintf(stderr, "%s reader, child: %s: %s\n", reader_name[r], raster_status_str(st),
                        raster_last_error());
                _exit(1);
            }
            _exit(0);
        }
        int ws = 0;
        ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
        ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "%s reader: the child read a replaced file",
                      reader_name[r]);
        raster_close(ds);
    }
}
END_TEST

static Suite *
hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("segments");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, segment_offset_past_eof);
    tcase_add_test(tc, segment_bytecount_past_eof);
    tcase_add_test(tc, segment_offset_wraps);
    tcase_add_test(tc, fewer_segment_offsets_than_tiles);
    suite_add_tcase(s, tc);
    tc = tcase_create("sizes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, size_product_overflows);
    tcase_add_test(tc, segment_size_overflows);
    tcase_add_test(tc, absurd_dimensions);
    tcase_add_test(tc, absurd_dimensions_int_max);
    suite_add_tcase(s, tc);
    tc = tcase_create("bombs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, deflate_bomb);
    tcase_add_test(tc, zstd_bomb);
    suite_add_tcase(s, tc);
    tc = tcase_create("directory");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, unknown_compression);
    tcase_add_test(tc, bits_per_sample_differ_per_sample);
    tcase_add_test(tc, bits_per_sample_12_with_predictor);
    tcase_add_test(tc, bits_per_sample_12);
    suite_add_tcase(s, tc);
    tc = tcase_create("truncated");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, truncated_files);
    tcase_add_test(tc, truncated_fixture);
    suite_add_tcase(s, tc);
    tc = tcase_create("changed_on_disk");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, truncated_while_open);
    tcase_add_test(tc, overwritten_while_open);
    tcase_add_test(tc, replaced_while_open);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(hostile_suite)
