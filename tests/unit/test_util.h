/*
 * test_util.h - helpers shared by the Check suites: one executable per suite
 * file, fixture lookup, guarded destination buffers and the GDAL oracle.
 */
#ifndef RASTER_TEST_UTIL_H
#define RASTER_TEST_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "rasterloader.h"

#include <gdal.h>

/* RASTER_SUITE_MAIN(fn) defines main() running the Suite that fn() builds,
 * in CK_FORK mode so a crash fails only its own test.  The suite gets a
 * tile-cache arena of its own (test_cache_isolate()), so test runs never
 * share state with each other or with a user's arena. */
void test_cache_isolate(void);
#define RASTER_SUITE_MAIN(fn)                                          \
    int main(void)                                                     \
    {                                                                  \
        test_cache_isolate();                                          \
        SRunner *sr = srunner_create(fn());                            \
        srunner_run_all(sr, CK_NORMAL);                                \
        const int failed = srunner_ntests_failed(sr);                  \
        srunner_free(sr);                                              \
        return failed == 0 ? 0 : 1;                                    \
    }

/* fixture_path() joins $RASTER_FIXTURES (default data/fixtures) and 'name';
 * the result is a static buffer per thread. */
const char *fixture_path(const char *name);

/* One row of data/fixtures/manifest.tsv (written by `make fixtures`). */
typedef struct fixture {
    char name[160];
    int native_expected;      /* the native reader should serve it */
    int malformed;            /* a hostile file: reading it must fail cleanly */
} fixture_t;

/* fixtures_load() reads the manifest; returns the count, *out malloc'd. */
int fixtures_load(fixture_t **out);

/* A destination buffer with guard bytes on both sides, to prove that a read
 * never writes outside its view. */
typedef struct guarded {
    uint8_t *base;            /* malloc'd: guard + payload + guard */
    uint8_t *data;            /* the payload */
    size_t nbytes;
} guarded_t;
#define GUARD_NBYTES 64
#define GUARD_BYTE 0xA5
guarded_t guarded_alloc(size_t nbytes);
/* Byte equality of one element of 'n' bytes, inlined: per-element memcmp()
 * calls (intercepted under ASan) were most of the matrix suites' time. */
static inline int
elem_bytes_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    switch (n) {
    case 1: return *a == *b;
    case 2: { uint16_t x, y; __builtin_memcpy(&x, a, 2); __builtin_memcpy(&y, b, 2); return x == y; }
    case 4: { uint32_t x, y; __builtin_memcpy(&x, a, 4); __builtin_memcpy(&y, b, 4); return x == y; }
    case 8: { uint64_t x, y; __builtin_memcpy(&x, a, 8); __builtin_memcpy(&y, b, 8); return x == y; }
    default: return __builtin_memcmp(a, b, n) == 0;
    }
}
int guarded_intact(const guarded_t *g);   /* 1 when both guards are untouched */
void guarded_free(guarded_t *g);

/* gdal_oracle_read() reads 'win' of 'bands' (1-based) of 'path' with GDAL's
 * band-wise GDALRasterIO, in the file's own data type, into a malloc'd CHW
 * buffer (*out, caller frees); the window must lie inside the raster.
 * Returns 0 on success. *dt_out is the rasterloader dtype of the band data. */
int gdal_oracle_read(const char *path, raster_window_t win, const int *bands, int band_count,
                     void **out, raster_dtype_t *dt_out);

/* gdal_oracle_mask() reads GDAL's mask band of 'band' (0 = the dataset mask
 * rasterio computes: per-dataset mask, alpha, any-band-valid for nodata, or
 * all valid) for 'win' into a malloc'd uint8 buffer. Returns 0 on success. */
int gdal_oracle_mask(const char *path, raster_window_t win, int band, uint8_t **out);

/* open_with_reader() opens 'path' with 'reader' (RASTER_READER_*) or fails
 * the test with the library's message. */
raster_dataset_t *open_with_reader(const char *path, int reader);

/* dlpack_delete() calls the deleter of an exported tensor of either kind
 * (raster_DLManagedTensorVersioned when 'versioned'). */
void dlpack_delete(void *managed, int versioned);

/* Decompression bombs that bound a read's work with no clock: 'plain'
 * compressed into a stream that is not ended, followed by what no decoder
 * accepts once it reaches it (DEFLATE's and zstd's reserved block type 3;
 * for PackBits, a literal run with no bytes after it).  A reader that stops
 * once it has a tile's bytes never meets the poison; one that goes on
 * through the whole stream, even throwing the output away, fails the read.
 * Each checks that a decoder running to the end does fail (so the test
 * can), streaming into a small buffer so the check adds no resident
 * memory.  malloc'd; the size in *n_out.  PackBits: append
 * BOMB_PACKBITS_POISON to the runs. */
uint8_t *bomb_zlib(const uint8_t *plain, size_t plain_n, size_t *n_out);
uint8_t *bomb_zstd(const uint8_t *plain, size_t plain_n, size_t *n_out);
#define BOMB_PACKBITS_POISON 0x7f       /* copy the next 128 bytes: there are none */

/* The GDAL data type of a raster dtype (the oracle's GDALCopyWords);
 * GDT_Unknown where GDAL 3.6 has none. */
GDALDataType test_gdal_type(raster_dtype_t dt);

#endif
