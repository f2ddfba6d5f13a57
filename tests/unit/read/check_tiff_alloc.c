/*
 * check_tiff_alloc.c - steady-state native reads call the allocator zero
 * times, counted at the allocator itself.
 *
 * check_tiff_threads counts the library's own allocation counters; this
 * suite goes further and replaces malloc and friends in the test binary
 * (forwarding to glibc's __libc_* functions), so an allocation hidden in
 * libc (qsort's merge buffer, stdio), libdeflate, libzstd or the thread
 * pool is caught too, on every thread.  Under ASan/TSan, whose runtimes own
 * malloc, the replacement is left out and the suite only checks the
 * counters.
 */
#include "check_tiff_common.h"

#include "codec/codec.h"
#include "runtime/runtime.h"

#include <errno.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNT_MALLOC 0
#else
#define COUNT_MALLOC 1
#endif

static atomic_int counting;
static atomic_long mallocs;

#if COUNT_MALLOC
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static inline void
counted(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add(&mallocs, 1);
}

void *
malloc(size_t n)
{
    counted();
    return __libc_malloc(n);
}

void *
calloc(size_t a, size_t b)
{
    counted();
    return __libc_calloc(a, b);
}

void *
realloc(void *p, size_t n)
{
    counted();
    return __libc_realloc(p, n);
}

void
free(void *p)
{
    __libc_free(p);
}

int
posix_memalign(void **out, size_t align, size_t n)
{
    counted();
    void *p = __libc_memalign(align, n);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

void *
aligned_alloc(size_t align, size_t n)
{
    counted();
    return __libc_memalign(align, n);
}

void *
memalign(size_t align, size_t n)
{
    counted();
    return __libc_memalign(align, n);
}
#endif

static const char *const files[] = {
    "u16_zstd_pred2_tile512_pixel_4b_1024x768.tif",       /* zstd, big tiles */
    "cog_u16_deflate_pred2_tile256_pixel_3b_1024x1024.tif", /* deflate, COG */
    "u16_lzw_pred1_strip16_pixel_1b_1000x777.tif",        /* lzw strips */
    "i8_lzw_pred2_strip7_band_4b_257x513.tif",            /* planar, many strips */
    "f32_zstd_pred3_strip16_band_4b_700x531_be.tif",      /* float predictor, big-endian */
    "u16_packbits_tile256_pixel_4b_700x531.tif",
    "u8_none_tile256_pixel_3b_700x531.tif",
    "u16_deflate_pred2_tile256_pixel_1b_1000x777_sparse.tif",
};
#define NFILES (sizeof files / sizeof files[0])

/* The same reads every round: random windows in several dtypes, band lists
 * and layouts, plus the whole raster (parallel, and a plan of many
 * segments: more than qsort's 1 KiB alloca limit).  Returns the number of
 * failed reads: no ck_assert in here, Check allocates on every assertion. */
static int
rounds(raster_dataset_t **ds, void **bufs, int n)
{
    int failed = 0;
    for (int round = 0; round < n; round++)
        for (size_t d = 0; d < NFILES; d++) {
            raster_info_t in;
            raster_dataset_info(ds[d], &in);
            uint64_t rng = 7 + d;
            for (int i = 0; i < 16; i++) {
                const int64_t w = tiff_rand_range(&rng, 1, in.width < 400 ? in.width : 400);
                const int64_t h = tiff_rand_range(&rng, 1, in.height < 400 ? in.height : 400);
                const raster_window_t win = {tiff_rand_range(&rng, 0, in.width - w),
                                             tiff_rand_range(&rng, 0, in.height - h), w, h};
                const int bands[3] = {in.band_count, 1, in.band_count};
                raster_read_options_t o;
                raster_read_options_init(&o);
                const double scale[3] = {2, 3, 4}, offset[3] = {1, 1, 1};
                raster_dtype_t dt = in.dtype;
                int c = in.band_count;
                if (i % 3 == 1) {
                    o.bands = bands;
                    o.band_count = c = 3;
                    o.scale = scale;
                    o.offset = offset;
                    dt = RASTER_F32;
                }
                const raster_view_t v = raster_view_hwc(bufs[d], dt, h, w, c);
                failed += raster_read_into(ds[d], win, &o, &v) != RASTER_OK;
            }
            const raster_view_t v = raster_view_hwc(bufs[d], in.dtype, in.height, in.width, in.band_count);
            failed += raster_read_into(ds[d], (raster_window_t){0, 0, in.width, in.height}, NULL, &v) !=
                      RASTER_OK;
        }
    return failed;
}

static void
check_steady(int threads)
{
#if COUNT_MALLOC
    /* The replacement really is the allocator everybody calls. */
    atomic_store(&mallocs, 0);
    atomic_store(&counting, 1);
    void *volatile probe = malloc(16);
    atomic_store(&counting, 0);
    free(probe);
    ck_assert_int_eq(atomic_load(&mallocs), 1);
#endif
    raster_set_threads(threads);
    raster_dataset_t *ds[NFILES];
    void *bufs[NFILES];
    for (size_t d = 0; d < NFILES; d++) {
        ck_assert_msg(raster_open(fixture_path(files[d]), &ds[d]) == RASTER_OK, "%s: %s", files[d],
                      raster_last_error());
        raster_info_t in;
        raster_dataset_info(ds[d], &in);
        ck_assert_msg(in.reader == RASTER_READER_NATIVE_TIFF, "%s is not native", files[d]);
        bufs[d] = malloc(raster_view_nbytes(RASTER_F64, in.height, in.width, in.band_count < 3 ? 3 : in.band_count));
    }
    /* Warm-up: every thread meets every size. */
    ck_assert_int_eq(rounds(ds, bufs, raster_get_threads() > 1 ? 4 : 1), 0);
    const uint64_t lib_before = raster__scratch_allocations() + raster__tiff_allocations() +
                                raster__thread_allocations();
    atomic_store(&mallocs, 0);
    atomic_store(&counting, 1);
    const int failed = rounds(ds, bufs, 2);
    atomic_store(&counting, 0);
    ck_assert_int_eq(failed, 0);
    const uint64_t lib_after = raster__scratch_allocations() + raster__tiff_allocations() +
                               raster__thread_allocations();
    ck_assert_msg(lib_after == lib_before, "%d thread(s): the library counted %llu allocations", threads,
                  (unsigned long long)(lib_after - lib_before));
    ck_assert_msg(atomic_load(&mallocs) == 0, "%d thread(s): %ld calls to the allocator in steady state",
                  threads, atomic_load(&mallocs));
    for (size_t d = 0; d < NFILES; d++) {
        raster_close(ds[d]);
        free(bufs[d]);
    }
    raster_set_threads(0);
}

START_TEST(steady_reads_never_call_malloc_one_thread) { check_steady(1); }
END_TEST
START_TEST(steady_reads_never_call_malloc_two_threads) { check_steady(2); }
END_TEST
START_TEST(steady_reads_never_call_malloc_default_threads) { check_steady(0); }
END_TEST

static Suite *
tiff_alloc_suite(void)
{
    Suite *s = suite_create("tiff_alloc");
    TCase *tc = tcase_create("allocations");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, steady_reads_never_call_malloc_one_thread);
    tcase_add_test(tc, steady_reads_never_call_malloc_two_threads);
    tcase_add_test(tc, steady_reads_never_call_malloc_default_threads);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(tiff_alloc_suite)
