/*
 * fuzz_codec.c - libFuzzer harness: every segment codec (none, DEFLATE,
 * ZSTD, LZW, PackBits) on raw segment bytes, then the predictors and byte
 * swapping, with the prefix-decode property checked (see fuzz_targets.h).
 */
#include "fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_codec_one(data, size);
}
