/*
 * check_tiff_corrupt.c - damaged files fail cleanly in the native reader.
 *
 * The malformed fixtures (a truncated file, a garbage tile, a byte count
 * past the end of the file) must give RASTER_E_CORRUPT (or RASTER_E_IO)
 * with a message naming the file and the tile, write nothing outside the
 * destination, and fail on exactly the tiles GDAL fails on while the good
 * tiles still read as GDAL reads them.  Copies of valid fixtures are then
 * damaged here (garbage, cut streams, bit flips, for every codec, tiles and
 * strips, chunky and planar) and every segment is read: the status must be
 * OK or CORRUPT, never a crash or a write out of bounds (ASan and valgrind
 * run this suite).  Decompression bombs (a tile whose stream inflates to
 * far more than the tile) must cost no more than one tile and read as GDAL
 * reads them.
 */
#include "check_tiff_common.h"

#include <libdeflate.h>
#include <tiffio.h>
#include <zstd.h>

#include <time.h>
#include <unistd.h>

static fixture_t *fixtures;
static int fixture_count;
static char tmpdir[256];

static void
setup(void)
{
    TIFFSetErrorHandler(NULL);
    TIFFSetWarningHandler(NULL);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_tiff_corrupt.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* Read 'win' (all bands, file dtype, HWC) into a guarded buffer; the
 * status is returned and the guards checked.  *out keeps the buffer. */
static raster_status_t
read_guarded(raster_dataset_t *ds, raster_window_t win, dst_buf_t *out)
{
    raster_info_t in;
    raster_dataset_info(ds, &in);
    *out = dst_make(in.dtype, win.height, win.width, in.band_count, DST_HWC);
    const raster_status_t st = raster_read_into(ds, win, NULL, &out->v);
    ck_assert_msg(guarded_intact(&out->g), "read of (%lld,%lld %lldx%lld) wrote outside its buffer",
                  (long long)win.col_off, (long long)win.row_off, (long long)win.width,
                  (long long)win.height);
    return st;
}

/* ------------------------------ malformed fixtures --------------------- */

static void
check_malformed(const char *name)
{
    const char *path = fixture_path(name);
    raster_dataset_t *nat = open_with_reader(path, -1), *gd = open_with_reader(path, RASTER_READER_GDAL);
    raster_info_t in;
    raster_dataset_info(nat, &in);
    ck_assert_msg(in.reader == RASTER_READER_NATIVE_TIFF, "%s: not served natively", name);

    dst_buf_t d;
    const raster_status_t st = read_guarded(nat, (raster_window_t){0, 0, in.width, in.height}, &d);
    ck_assert_msg(st == RASTER_E_CORRUPT || st == RASTER_E_IO, "%s: full read gave %s", name,
                  raster_status_str(st));
    const char *msg = raster_last_error();
    ck_assert_msg(strstr(msg, name) != NULL && strstr(msg, "tile") != NULL && strstr(msg, "window") != NULL,
                  "%s: message does not name file, tile and window: %s", name, msg);
    dst_free(&d);

    /* Tile by tile: fail where GDAL fails, equal where it succeeds. */
    int failed = 0;
    for (int64_t r = 0; r < in.height; r += in.block_height)
        for (int64_t c = 0; c < in.width; c += in.block_width) {
            const raster_window_t w = {c, r, in.width - c < in.block_width ? in.width - c : in.block_width,
                                       in.height - r < in.block_height ? in.height - r : in.block_height};
            dst_buf_t a, b;
            const raster_status_t sa = read_guarded(nat, w, &a);
            char nat_msg[1024];
            snprintf(nat_msg, sizeof nat_msg, "%s", raster_last_error());
            const raster_status_t sb = read_guarded(gd, w, &b);
            ck_assert_msg((sa == RASTER_OK) == (sb == RASTER_OK),
                          "%s tile at (%lld,%lld): native %s (%s), GDAL %s", name, (long long)c,
                          (long long)r, raster_status_str(sa), nat_msg, raster_status_str(sb));
            if (sa == RASTER_OK)
                ck_assert_msg(memcmp(a.g.data, b.g.data, a.g.nbytes) == 0, "%s tile at (%lld,%lld) differs",
                              name, (long long)c, (long long)r);
            else {
                ck_assert_msg(sa == RASTER_E_CORRUPT || sa == RASTER_E_IO, "%s: %s", name, raster_status_str(sa));
                ck_assert_msg(strstr(nat_msg, "tile ") != NULL, "%s: %s", name, nat_msg);
                failed++;
            }
            dst_free(&a);
            dst_free(&b);
        }
    ck_assert_msg(failed > 0, "%s: no tile failed", name);
    raster_close(nat);
    raster_close(gd);
}

START_TEST(truncated_file_is_corrupt) { check_malformed("truncated.tif"); }
END_TEST
START_TEST(garbage_tile_is_corrupt) { check_malformed("corrupt_tile.tif"); }
END_TEST
START_TEST(bytecount_past_eof_is_corrupt) { check_malformed("bad_bytecount.tif"); }
END_TEST

START_TEST(not_a_tiff_fails_to_open)
{
    const char *names[] = {"not_a_tiff.tif", "zero_length.tif"};
    for (int i = 0; i < 2; i++) {
        raster_dataset_t *ds = (raster_dataset_t *)1;
        const raster_status_t st = raster_open(fixture_path(names[i]), &ds);
        ck_assert_msg(st == RASTER_E_FORMAT || st == RASTER_E_IO, "%s: %s", names[i], raster_status_str(st));
        ck_assert_ptr_null(ds);
    }
}
END_TEST

/* ------------------------------ damaged copies ------------------------- */

static void copy_file(const char *from, const char *to);

/* A file cut short after it was opened: the read finds out at pread time. */
START_TEST(file_truncated_after_open_is_corrupt)
{
    const char *names[] = {"u16_deflate_pred2_tile256_pixel_3b_700x531.tif", "u8_none_tile256_pixel_3b_700x531.tif",
                           "u16_lzw_pred1_strip16_pixel_1b_1000x777.tif"};
    for (int i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/cut_%s", tmpdir, names[i]);
        copy_file(fixture_path(names[i]), path);
        raster_dataset_t *ds = open_with_reader(path, -1);
        raster_info_t in;
        raster_dataset_info(ds, &in);
        FILE *f = fopen(path, "rb");
        fseek(f, 0, SEEK_END);
        const long size = ftell(f);
        fclose(f);
        ck_assert_int_eq(truncate(path, size / 2), 0);
        dst_buf_t d;
        const raster_status_t st = read_guarded(ds, (raster_window_t){0, 0, in.width, in.height}, &d);
        ck_assert_msg(st == RASTER_E_CORRUPT, "%s: %s", names[i], raster_status_str(st));
        const char *msg = raster_last_error();
        ck_assert_msg(strstr(msg, path) && (strstr(msg, "tile ") || strstr(msg, "strip ")) && strstr(msg, "window"),
                      "%s", msg);
        dst_free(&d);
        raster_close(ds);
    }
}
END_TEST


static void
copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ck_assert(a != NULL && b != NULL);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, b), n);
    fclose(a);
    fclose(b);
}

typedef struct segs {
    uint64_t off[4096], count[4096];
    int n;
} segs_t;

static void
segments_of(const char *path, segs_t *s)
{
    TIFF *t = TIFFOpen(path, "r");
    ck_assert_ptr_nonnull(t);
    const uint32_t n = TIFFIsTiled(t) ? TIFFNumberOfTiles(t) : TIFFNumberOfStrips(t);
    s->n = n < 4096 ? (int)n : 4096;
    for (int i = 0; i < s->n; i++) {
        s->off[i] = TIFFGetStrileOffset(t, (uint32_t)i);
        s->count[i] = TIFFGetStrileByteCount(t, (uint32_t)i);
    }
    TIFFClose(t);
}

typedef enum { DAMAGE_GARBAGE, DAMAGE_CUT, DAMAGE_FLIPS, DAMAGE_KINDS } damage_t;

/* Damage segment 'i' of 'path' in place. */
static void
damage(const char *path, const segs_t *s, int i, damage_t how, uint64_t *rng)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    const uint64_t n = s->count[i];
    uint8_t *buf = malloc(n ? n : 1);
    ck_assert_int_eq(fseek(f, (long)s->off[i], SEEK_SET), 0);
    ck_assert_uint_eq(fread(buf, 1, n, f), n);
    switch (how) {
    case DAMAGE_GARBAGE:
        for (uint64_t k = 0; k < n; k++)
            buf[k] = (uint8_t)tiff_rand(rng);
        break;
    case DAMAGE_CUT:   /* the stream stops in the middle: zeros after */
        memset(buf + n / 3, 0, n - n / 3);
        break;
    default:
        for (int k = 0; k < 8 && n > 0; k++)
            buf[tiff_rand(rng) % n] ^= (uint8_t)(1u << (tiff_rand(rng) % 8));
        break;
    }
    ck_assert_int_eq(fseek(f, (long)s->off[i], SEEK_SET), 0);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    free(buf);
    fclose(f);
}

/* Every block of a damaged copy reads as OK or CORRUPT, inside its buffer. */
START_TEST(damaged_segments_fail_cleanly)
{
    const fixture_t *fx = &fixtures[_i];
    if (!fx->native_expected || fx->malformed || strstr(fx->name, "_none_") != NULL)
        return;
    /* One fixture per (codec, tiled, planar) is plenty; hash to pick a third. */
    if ((_i * 7) % 3 != 0 && tiff_matrix_scale() > 1)
        return;
    uint64_t rng = 0xdeadbeefULL + (uint64_t)_i;
    segs_t s;
    segments_of(fixture_path(fx->name), &s);
    for (int how = 0; how < DAMAGE_KINDS; how++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%d_%s", tmpdir, how, fx->name);
        copy_file(fixture_path(fx->name), path);
        for (int i = 0; i < s.n; i += 1 + s.n / 5)
            if (s.count[i] > 0)
                damage(path, &s, i, (damage_t)how, &rng);
        raster_dataset_t *ds = open_with_reader(path, -1);
        raster_info_t in;
        raster_dataset_info(ds, &in);
        ck_assert_int_eq(in.reader, RASTER_READER_NATIVE_TIFF);
        for (int64_t r = 0; r < in.height; r += in.block_height)
            for (int64_t c = 0; c < in.width; c += in.block_width) {
                const raster_window_t w = {c, r,
                                           in.width - c < in.block_width ? in.width - c : in.block_width,
                                           in.height - r < in.block_height ? in.height - r : in.block_height};
                dst_buf_t d;
                const raster_status_t st = read_guarded(ds, w, &d);
                ck_assert_msg(st == RASTER_OK || st == RASTER_E_CORRUPT, "%s: %s: %s", path,
                              raster_status_str(st), raster_last_error());
                if (st == RASTER_E_CORRUPT)
                    ck_assert_msg(strstr(raster_last_error(), path) != NULL &&
                                      (strstr(raster_last_error(), "tile ") || strstr(raster_last_error(), "strip ")),
                                  "%s", raster_last_error());
                dst_free(&d);
            }
        raster_close(ds);
    }
}
END_TEST

/* ------------------------------ bombs ---------------------------------- */

/* A 2x1-tile 256x256 u8 TIFF whose first tile holds 'bomb' (a stream that
 * inflates to far more than one tile) and whose second is a normal tile. */
static void
write_bomb_tiff(const char *path, uint16_t compression, const uint8_t *bomb, size_t bomb_n,
                const uint8_t *good, size_t good_n)
{
    TIFF *t = TIFFOpen(path, "w");
    ck_assert_ptr_nonnull(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 512);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 256);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_TILEWIDTH, 256);
    TIFFSetField(t, TIFFTAG_TILELENGTH, 256);
    TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
    ck_assert(TIFFWriteRawTile(t, 0, (void *)bomb, (tmsize_t)bomb_n) == (tmsize_t)bomb_n);
    ck_assert(TIFFWriteRawTile(t, 1, (void *)good, (tmsize_t)good_n) == (tmsize_t)good_n);
    TIFFClose(t);
}

/* 'tile0' is the first 64 KiB the bomb inflates to, 'tile1' the good tile:
 * the native read must give exactly those (libtiff, and so GDAL, may leave
 * the last partial DEFLATE item of tile 0 unwritten, so GDAL is only asked
 * to agree on success) and cost no more than a tile: the bomb ends in a
 * poison (test_util.h), which a reader decoding past tile 0's bytes, even
 * throwing them away, would meet and fail on.  No clock decides it. */
static void
check_bomb(const char *path, const uint8_t *tile0, const uint8_t *tile1)
{
    raster_dataset_t *nat = open_with_reader(path, -1), *gd = open_with_reader(path, RASTER_READER_GDAL);
    raster_info_t in;
    raster_dataset_info(nat, &in);
    ck_assert_int_eq(in.reader, RASTER_READER_NATIVE_TIFF);
    const raster_window_t wins[] = {{0, 0, 512, 256}, {10, 20, 30, 40}, {200, 100, 100, 50}};
    for (int i = 0; i < 3; i++) {
        dst_buf_t a, b;
        const raster_status_t sa = read_guarded(nat, wins[i], &a);
        const raster_status_t sb = read_guarded(gd, wins[i], &b);
        ck_assert_msg(sa == RASTER_OK && sb == RASTER_OK, "%s: native %s, GDAL %s", path,
                      raster_status_str(sa), raster_status_str(sb));
        const raster_window_t w = wins[i];
        for (int64_t y = 0; y < w.height; y++)
            for (int64_t x = 0; x < w.width; x++) {
                const int64_t c = w.col_off + x, r = w.row_off + y;
                const uint8_t want = c < 256 ? tile0[r * 256 + c] : tile1[r * 256 + c - 256];
                const uint8_t got = ((const uint8_t *)a.v.data)[y * a.v.row_stride + x];
                ck_assert_msg(got == want, "%s: pixel (%lld,%lld) is %d, want %d", path, (long long)c,
                              (long long)r, got, want);
            }
        dst_free(&a);
        dst_free(&b);
    }
    raster_close(nat);
    raster_close(gd);
}

/* 64 MiB (scaled down under sanitizers) of a pattern: far more than a tile. */
static uint8_t *
bomb_plain(size_t *big_out)
{
    const size_t big = ((size_t)64 << 20) / (size_t)tiff_matrix_scale();
    uint8_t *plain = calloc(1, big);
    for (size_t i = 0; i < big; i += 4093)
        plain[i] = (uint8_t)(i >> 12);
    *big_out = big;
    return plain;
}

START_TEST(deflate_bomb_is_bounded)
{
    const size_t tile = 256 * 256;
    size_t big, bomb_n;
    uint8_t *plain = bomb_plain(&big);
    uint8_t *bomb = bomb_zlib(plain, big, &bomb_n);
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    uint8_t *good = malloc(libdeflate_zlib_compress_bound(c, tile));
    const size_t good_n = libdeflate_zlib_compress(c, plain, tile, good, libdeflate_zlib_compress_bound(c, tile));
    ck_assert(good_n > 0);
    char path[512];
    snprintf(path, sizeof path, "%s/deflate_bomb.tif", tmpdir);
    write_bomb_tiff(path, COMPRESSION_ADOBE_DEFLATE, bomb, bomb_n, good, good_n);
    check_bomb(path, plain, plain);
    libdeflate_free_compressor(c);
    free(plain);
    free(bomb);
    free(good);
}
END_TEST

START_TEST(zstd_bomb_is_bounded)
{
    const size_t tile = 256 * 256;
    size_t big, bomb_n;
    uint8_t *plain = bomb_plain(&big);
    uint8_t *bomb = bomb_zstd(plain, big, &bomb_n);
    uint8_t *good = malloc(ZSTD_compressBound(tile));
    const size_t good_n = ZSTD_compress(good, ZSTD_compressBound(tile), plain, tile, 3);
    ck_assert(!ZSTD_isError(good_n));
    char path[512];
    snprintf(path, sizeof path, "%s/zstd_bomb.tif", tmpdir);
    write_bomb_tiff(path, COMPRESSION_ZSTD, bomb, bomb_n, good, good_n);
    check_bomb(path, plain, plain);
    free(plain);
    free(bomb);
    free(good);
}
END_TEST

START_TEST(packbits_bomb_is_bounded)
{
    /* 2 bytes per 128 output bytes: 64 MiB (scaled down under sanitizers),
     * then the poison: a literal run whose bytes are missing.  One run
     * short of 1 MiB in all, so the byte count is not cut (tiff_layout.c
     * cuts counts above 1 MiB, as libtiff does), and the poison is read. */
    const size_t runs = ((size_t)64 << 20) / 128 / (size_t)tiff_matrix_scale() - 1;
    uint8_t *bomb = malloc(2 * runs + 1);
    for (size_t i = 0; i < runs; i++) {
        bomb[2 * i] = (uint8_t)(int8_t)-127;
        bomb[2 * i + 1] = (uint8_t)i;
    }
    bomb[2 * runs] = BOMB_PACKBITS_POISON;
    uint8_t good[2 * 512];
    static uint8_t tile0[65536], tile1[65536];
    for (int i = 0; i < 512; i++) {
        good[2 * i] = (uint8_t)(int8_t)-127;
        good[2 * i + 1] = (uint8_t)(3 * i);
        memset(tile0 + 128 * i, (uint8_t)i, 128);
        memset(tile1 + 128 * i, (uint8_t)(3 * i), 128);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/packbits_bomb.tif", tmpdir);
    write_bomb_tiff(path, COMPRESSION_PACKBITS, bomb, 2 * runs + 1, good, sizeof good);
    check_bomb(path, tile0, tile1);
    free(bomb);
}
END_TEST

static Suite *
tiff_corrupt_suite(void)
{
    Suite *s = suite_create("tiff_corrupt");
    TCase *tc = tcase_create("malformed");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, truncated_file_is_corrupt);
    tcase_add_test(tc, garbage_tile_is_corrupt);
    tcase_add_test(tc, bytecount_past_eof_is_corrupt);
    tcase_add_test(tc, not_a_tiff_fails_to_open);
    tcase_add_test(tc, file_truncated_after_open_is_corrupt);
    suite_add_tcase(s, tc);
    tc = tcase_create("damaged");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    fixture_count = fixtures_load(&fixtures);
    tcase_add_loop_test(tc, damaged_segments_fail_cleanly, 0, fixture_count);
    suite_add_tcase(s, tc);
    tc = tcase_create("bombs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, deflate_bomb_is_bounded);
    tcase_add_test(tc, zstd_bomb_is_bounded);
    tcase_add_test(tc, packbits_bomb_is_bounded);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(tiff_corrupt_suite)
