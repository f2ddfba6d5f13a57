/*
 * fuzz_shm_tables.c - libFuzzer harness: the shared tile-cache arena's
 * tables overwritten with the input (fuzz_shm_tables.h says how), in an
 * arena of this process's own (a private name, 4 process slots).
 */
#include "fuzz_shm_tables.h"

#include <stdlib.h>
#include <unistd.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char tag[32];
    snprintf(tag, sizeof tag, "fz%d", (int)getpid());
    setenv("RASTERLOADER_TILE_CACHE_NAME", tag, 1);
    setenv("RASTERLOADER_TILE_CACHE_TEST_NPROCS", "4", 1);
    unsetenv("RASTERLOADER_TILE_CACHE_TEST_SLEEP_US");
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_shm_tables_one(data, size);
}
