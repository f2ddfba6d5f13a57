/*
 * fuzz_shm_tables.h - the body of the libFuzzer harness of the shared
 * tile-cache arena's tables (fuzz_shm_tables.c), also run by
 * check_shm_arena on a few fixed inputs, so that `make test` replays it
 * without libFuzzer.
 *
 *   fuzz_shm_tables_one(data, size)
 *       Makes a fresh arena (the name and RASTERLOADER_TILE_CACHE_TEST_NPROCS
 *       are the caller's: a private name and a few slots, so that an input
 *       reaches every table), publishes a few entries and keeps two pinned,
 *       then overwrites its tables (process slots, descriptors, hash heads,
 *       bitmap; the header is left valid) with the input: byte 0 even, the
 *       input repeated over the whole region; odd, bytes 5.. written at the
 *       offset bytes 1-4 give (a few fields broken in sane tables).  Then it
 *       attaches again as a new process would, and the tables must check
 *       out (raster__shm_check): rebuilt if they did not make sense.  Then
 *       gets, reserves, puts, releases (keys and sizes from the input), a
 *       budget change, the stats, and the check again.  A crash, a hang or
 *       a failed check is a bug (abort).
 */
#ifndef RASTER_FUZZ_SHM_TABLES_H
#define RASTER_FUZZ_SHM_TABLES_H

#include "cache/shm_arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_SHM_CAPACITY ((size_t)4 << 20)

static inline void
fuzz_shm_must(int ok, const char *what, const char *why)
{
    if (!ok) {
        fprintf(stderr, "fuzz_shm_tables: %s: %s\n", what, why);
        abort();
    }
}

static inline raster__tile_key_t
fuzz_shm_key(uint64_t v)
{
    raster__tile_key_t k;
    memset(&k, 0, sizeof k);
    k.file[0] = 77 + (v & 7);
    k.seg = (int64_t)(v >> 3 & 15);
    return k;
}

/* Publishes 'n' entries of keys 0..n-1 (8 KiB to 24 KiB). */
static inline void
fuzz_shm_fill(int n)
{
    for (int i = 0; i < n; i++) {
        raster__tile_entry_t *e = raster__shm_reserve((size_t)8192 * (size_t)(1 + i % 3));
        if (e == NULL)
            continue;
        memset(raster__shm_entry_data(e), i, 8192);
        const raster__tile_key_t k = fuzz_shm_key((uint64_t)i);
        raster__shm_put(e, &k, 8192);
        raster__shm_release(e);
    }
}

static inline void
fuzz_shm_overwrite(const uint8_t *data, size_t size)
{
    size_t n = 0;
    uint8_t *t = raster__shm_test_tables(&n);
    if (t == NULL || n == 0 || size < 2)
        return;
    if ((data[0] & 1) == 0) {
        for (size_t i = 0; i < n; i++)
            t[i] = data[1 + i % (size - 1)];
        return;
    }
    if (size < 6)
        return;
    const size_t at = ((size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 | (size_t)data[4] << 24) % n;
    const size_t len = size - 5 < n - at ? size - 5 : n - at;
    memcpy(t + at, data + 5, len);
}

/* Operations from the input's bytes, on the (rebuilt) arena. */
static inline void
fuzz_shm_ops(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < 12; i++) {
        const uint8_t b = size > 0 ? data[i % size] : (uint8_t)i;
        const raster__tile_key_t k = fuzz_shm_key(b);
        const raster__tile_entry_t *hit = raster__shm_get(&k, (size_t)(b & 3) * 4096);
        if (hit != NULL) {
            const volatile uint8_t *p = raster__shm_entry_data(hit);
            const size_t valid = raster__shm_entry_valid(hit);
            uint8_t sum = 0;
            for (size_t j = 0; j < valid; j += 4096)
                sum += p[j];            /* touched: inside the mapping */
            (void)sum;
            raster__shm_release(hit);
        }
        raster__tile_entry_t *e = raster__shm_reserve((size_t)4096 * (size_t)(1 + (b >> 4)));
        if (e != NULL) {
            memset(raster__shm_entry_data(e), b, 4096);
            raster__shm_put(e, &k, 4096 + (size_t)(b & 1) * 100);
            raster__shm_release(e);
        }
    }
    raster__shm_set_budget(size > 3 && data[3] < 16 ? (size_t)data[3] * 65536 : FUZZ_SHM_CAPACITY);
    raster_tile_cache_stats_t s;
    memset(&s, 0, sizeof s);
    raster__shm_stats(&s);
}

static inline int
fuzz_shm_tables_one(const uint8_t *data, size_t size)
{
    char why[256] = "";
    raster__shm_detach();                       /* the last one: unlinked */
    if (!raster__shm_test_reattach(why, sizeof why))
        return 0;                               /* no room in /dev/shm: not this harness's business */
    raster__shm_set_budget(FUZZ_SHM_CAPACITY);
    fuzz_shm_fill(6);
    const raster__tile_key_t k0 = fuzz_shm_key(0);
    (void)raster__shm_get(&k0, 1);              /* pinned: the old mapping goes with them */
    (void)raster__shm_reserve(4096);
    fuzz_shm_overwrite(data, size);
    fuzz_shm_must(raster__shm_test_reattach(why, sizeof why), "attach after the overwrite", why);
    fuzz_shm_must(raster__shm_check(why, sizeof why), "check after attach", why);
    fuzz_shm_ops(data, size);
    fuzz_shm_must(raster__shm_check(why, sizeof why), "check after the operations", why);
    raster__shm_detach();
    return 0;
}

#endif /* RASTER_FUZZ_SHM_TABLES_H */
