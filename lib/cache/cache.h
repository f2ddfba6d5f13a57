/*
 * cache.h - the cache folder of lib/ (lib/README.md): the decoded-segment
 * cache (tile_cache.c) and the shared-memory arena behind it (shm_arena.c,
 * shm_arena.h: tile_cache.c is its only user).  Uses common/ only: the
 * readers above call into it, it never calls a reader.  Private; never
 * installed.
 */
#ifndef RASTERLOADER_CACHE_H
#define RASTERLOADER_CACHE_H

#include "common/common.h"

/* ------------------------------ tile cache ----------------------------- */

/* The decoded-segment cache (tile_cache.c; public switch and stats in
 * rasterloader.h).  An entry is keyed by the file, not by the open dataset,
 * so re-opening a file (a new dataset per worker, or one per sample) finds
 * the entries decoded before:
 *   file[]  the file's identity when it was opened: local files dev, inode,
 *           size, mtime and ctime in ns (raster__tile_key_file_local());
 *           remote ones two hashes of the URL, the size and the
 *           Last-Modified time GDAL reports (raster__tile_key_file_remote()),
 *           so a file rewritten in place (new size or times) misses;
 *   ifd     the directory (0: full resolution; overviews would be 1..n);
 *   seg     the segment (tile or strip) index in that directory.
 * A reader uses it like this:
 *
 *   const raster__tile_entry_t *e = raster__tile_cache_get(&key, needed);
 *   if (e == NULL) {                          // miss (or cache off)
 *       raster__tile_entry_t *n = raster__tile_cache_reserve(seg_nbytes + margin);
 *       // n == NULL: off, or no room: decode into scratch
 *       decode rows [0, y1) into raster__tile_entry_data(n), undo the
 *       predictor and byte order on all of them (every column), then
 *       raster__tile_cache_put(n, &key, y1 * row_nbytes);  e = n;
 *   }
 *   place from raster__tile_entry_data(e);  raster__tile_cache_release(e);
 *
 * (The native TIFF reader decodes a pixel-interleaved segment into scratch
 * and stores it as one plane per sample, tiff_read.c entries_planar(); the
 * valid bytes are still whole rows, row_nbytes each.)
 *
 * get() returns an entry holding at least 'min_valid' decoded bytes (a
 * prefix of the segment), referenced (pinned) for the caller, or NULL.
 * reserve() returns an unpublished entry with room for 'capacity' bytes,
 * referenced, or NULL when the cache is off, the entry is larger than the
 * budget, or everything else is in use; its bytes count against the budget
 * at once.  put() publishes it (a longer prefix of the same segment wins;
 * the caller keeps its reference either way).  release() drops one
 * reference; an evicted or replaced entry is freed by its last release.
 * The memory of an entry is read and written without any lock held.  All
 * thread-safe; in the shared arena (shm_arena.c) also across processes. */
typedef struct raster__tile_key {
    uint64_t file[5];
    uint64_t ifd;
    int64_t seg;
} raster__tile_key_t;

typedef struct raster__tile_entry raster__tile_entry_t;
RASTER_HIDDEN int raster__tile_cache_enabled(void);
RASTER_HIDDEN const raster__tile_entry_t *raster__tile_cache_get(const raster__tile_key_t *k,
                                                                 size_t min_valid);
RASTER_HIDDEN raster__tile_entry_t *raster__tile_cache_reserve(size_t capacity);
RASTER_HIDDEN void raster__tile_cache_put(raster__tile_entry_t *e, const raster__tile_key_t *k,
                                          size_t valid);
RASTER_HIDDEN void raster__tile_cache_release(const raster__tile_entry_t *e);
/* get() of n keys into out[0..n), and release() of n entries (NULL skipped),
 * each under one acquisition of the cache's lock: a window's segments are
 * looked up and let go together (in the shared arena a lock and an unlock
 * are two system calls). */
RASTER_HIDDEN void raster__tile_cache_get_many(const raster__tile_key_t *keys, const size_t *min_valid,
                                               int64_t n, const raster__tile_entry_t **out);
RASTER_HIDDEN void raster__tile_cache_release_many(const raster__tile_entry_t *const *es, int64_t n);
/* The entry's first decoded byte (64-byte aligned) and how many are good. */
RASTER_HIDDEN void *raster__tile_entry_data(const raster__tile_entry_t *e);
RASTER_HIDDEN size_t raster__tile_entry_valid(const raster__tile_entry_t *e);

/* The default budget: RASTER_TILE_CACHE_DEFAULT_PERCENT of the memory this
 * process may use: physical memory, or the memory limit of its cgroup when
 * that is lower (tmpfs pages, so the arena's, are charged to the cgroup of
 * the process that touches them: a budget of a share of the host's RAM
 * would get a container's reader OOM-killed).
 * raster__tile_cache_budget_for() is that share of min(RAM, limit).
 * raster__cgroup_memory_limit() is the lowest memory limit of this process's
 * cgroups, UINT64_MAX for none: for each line of 'root'/proc/self/cgroup,
 * v2 ("0::path") memory.max under 'root'/sys/fs/cgroup, v1 (a line naming
 * the memory controller) memory.limit_in_bytes under 'root'/sys/fs/cgroup/
 * memory, of the cgroup and of every parent up to the mount point; "max",
 * missing or unreadable files are no limit.  'root' is "" (tests pass a
 * directory holding a fake tree). */
RASTER_HIDDEN size_t raster__tile_cache_default_budget(void);
RASTER_HIDDEN uint64_t raster__tile_cache_budget_for(uint64_t ram_nbytes, uint64_t cgroup_limit);
RASTER_HIDDEN uint64_t raster__cgroup_memory_limit(const char *root);

/* GDAL's block cache in rasterloader's processes (dataset.c): unless the
 * user set GDAL_CACHEMAX, the first open sets it to RASTER__GDAL_CACHE_BYTES
 * and tells the tile cache GDAL's limit with raster__tile_cache_note_gdal(),
 * which reports it in raster_tile_cache_stats() (-1 before any open): both
 * are decoded pixels the library keeps, and the tile cache, below every
 * reader, must not call up into dataset.c to learn it. */
#define RASTER__GDAL_CACHE_BYTES ((int64_t)32 << 20)
RASTER_HIDDEN void raster__tile_cache_note_gdal(int64_t gdal_cache_bytes);
/* Never set GDAL's cache (the Python package: its GDAL is rasterio's, whose
 * block cache belongs to rasterio and the user); call before the first open. */
RASTER_HIDDEN void raster__gdal_cache_leave_alone(void);

/* File identities for keys (see above). */
struct stat;
RASTER_HIDDEN void raster__tile_key_file_local(const struct stat *sb, uint64_t file_out[5]);
RASTER_HIDDEN void raster__tile_key_file_remote(const char *url, uint64_t nbytes, int64_t mtime_s,
                                                uint64_t file_out[5]);

static inline uint64_t
raster__tile_key_hash(const raster__tile_key_t *k)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    const uint64_t w[7] = {k->file[0], k->file[1], k->file[2], k->file[3], k->file[4], k->ifd, (uint64_t)k->seg};
    for (int i = 0; i < 7; i++) {
        h ^= w[i];
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
    }
    return h;
}

static inline int
raster__tile_key_equal(const raster__tile_key_t *a, const raster__tile_key_t *b)
{
    return a->seg == b->seg && a->ifd == b->ifd && a->file[0] == b->file[0] && a->file[1] == b->file[1] &&
           a->file[2] == b->file[2] && a->file[3] == b->file[3] && a->file[4] == b->file[4];
}


/* Fork hooks of the TILE_CACHE and SHM_ARENA slots (common.h's raster__fork_hooks). */
RASTER_HIDDEN void raster__tile_cache_fork_prepare(void);
RASTER_HIDDEN void raster__tile_cache_fork_parent(void);
RASTER_HIDDEN void raster__tile_cache_fork_child(void);
RASTER_HIDDEN void raster__shm_arena_fork_child(void);

#endif /* RASTERLOADER_CACHE_H */
