/*
 * fuzz_tiff.c - libFuzzer harness: a TIFF from bytes, opened and read
 * through the public API (see fuzz_targets.h).  Built twice: fuzz_tiff_native
 * (FUZZ_READER -1, the default reader: native TIFF when it serves the file),
 * fuzz_tiff_gdal (FUZZ_READER 0, RASTER_READER_GDAL) and fuzz_tiff_diff
 * (FUZZ_DIFF: both readers must agree on the pixels and on failing).
 */
#include "fuzz_targets.h"

#ifndef FUZZ_READER
#  define FUZZ_READER -1
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    /* One decode thread: libFuzzer's coverage and crash reports are
     * per-process, and the worker pool is exercised by the TSan suites. */
    raster_set_threads(1);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
#ifdef FUZZ_DIFF
    return fuzz_tiff_diff_one(data, size);
#else
    return fuzz_tiff_one(data, size, FUZZ_READER);
#endif
}
