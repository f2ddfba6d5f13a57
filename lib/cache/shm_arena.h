/*
 * shm_arena.h - the machine-wide (per user) shared-memory arena of decoded
 * segments behind the tile cache (shm_arena.c).  tile_cache.c is its only
 * user: it attaches once per process, sends every operation here while the
 * arena is in use, and falls back to its private LRU when attaching fails.
 *
 * Entries handed out are pointers into this process's mapping of the arena
 * (raster__shm_owns() tells them from private ones).  Every function is
 * thread-safe and safe against other processes dying at any moment.
 */
#ifndef RASTER_SHM_ARENA_H
#define RASTER_SHM_ARENA_H

#include "cache.h"

/* raster__shm_attach() opens (or creates, with 'capacity' bytes of entry
 * memory, sized down by raster__shm_capacity_for()) this user's arena and takes a
 * process slot in it.  Returns 1, or 0 with the reason in 'why' (the caller
 * then uses a private cache).  'budget' > 0 also sets the arena's budget
 * (capped to its capacity); 0 keeps the budget it has.  Call once.
 * Attached without a process slot (all held by live processes) is
 * attached: every operation misses until a slot frees, the stats say so. */
RASTER_HIDDEN int raster__shm_attach(size_t capacity, size_t budget, char *why, size_t why_nbytes);

/* raster__shm_capacity_for() is the room rule of create(): the bytes of
 * entry memory an arena made now gets for a budget of 'want' bytes, with
 * /dev/shm 'shm_total' bytes large and 'shm_free' bytes free: at most a
 * quarter of shm_total and half of shm_free, tables included (torch's
 * worker batches live there too).  Returns 0, with the reason in 'why',
 * when that room is under 32 MiB: the caller then uses a private cache. */
RASTER_HIDDEN uint64_t raster__shm_capacity_for(uint64_t want, uint64_t shm_total, uint64_t shm_free, char *why,
                                                size_t why_nbytes);

/* The reader API of cache.h, against the arena. */
RASTER_HIDDEN size_t raster__shm_budget(void);
RASTER_HIDDEN const raster__tile_entry_t *raster__shm_get(const raster__tile_key_t *k, size_t min_valid);
RASTER_HIDDEN raster__tile_entry_t *raster__shm_reserve(size_t capacity);
RASTER_HIDDEN void raster__shm_put(raster__tile_entry_t *e, const raster__tile_key_t *k, size_t valid);
RASTER_HIDDEN void raster__shm_release(const raster__tile_entry_t *e);
/* get() of n keys and release() of n entries (NULL, and entries of a
 * private cache, skipped), each under one acquisition of the arena's lock. */
RASTER_HIDDEN void raster__shm_get_many(const raster__tile_key_t *keys, const size_t *min_valid, int64_t n,
                                        const raster__tile_entry_t **out);
RASTER_HIDDEN void raster__shm_release_many(const raster__tile_entry_t *const *es, int64_t n);
RASTER_HIDDEN void *raster__shm_entry_data(const raster__tile_entry_t *e);
RASTER_HIDDEN size_t raster__shm_entry_valid(const raster__tile_entry_t *e);
RASTER_HIDDEN int raster__shm_owns(const void *e);

/* Sets the machine-wide budget (capped to the capacity; lowering it evicts
 * at once, 0 empties the arena of every entry not in use).  Returns the
 * budget in force. */
RASTER_HIDDEN size_t raster__shm_set_budget(size_t budget);

/* Fills the counters of 'out' that the arena keeps (machine-wide). */
RASTER_HIDDEN void raster__shm_stats(raster_tile_cache_stats_t *out);

/* Tests: raster__shm_test_sleep() sets this process's sleep inside critical
 * sections (as RASTERLOADER_TILE_CACHE_TEST_SLEEP_US does at attach);
 * raster__shm_check() verifies every invariant of the arena under its lock
 * (bitmap and bytes in use = the live entries' units, refs = the live
 * processes' pins, hash and LRU hold exactly the published entries) and
 * returns 1, or 0 with what is wrong in 'why'. */
RASTER_HIDDEN void raster__shm_test_sleep(unsigned us);
RASTER_HIDDEN int raster__shm_check(char *why, size_t why_nbytes);

/* Tests of distrust: raster__shm_test_tables() is the tables' region (from
 * the process slots to the entry memory) for a fuzzer to overwrite;
 * raster__shm_test_reattach() attaches again as a new process would (the
 * tables checked whole, rebuilt if inconsistent) while the old slot stays
 * held until it returns; raster__shm_test_corrupt() makes one hand-made
 * corruption ("hash-cycle", "lru-cycle", "index-out-of-range",
 * "units-out-of-range", "pin-bad-entry", "free-list-in-use"; the arena
 * needs two published entries) and returns 1 if it could. */
RASTER_HIDDEN void *raster__shm_test_tables(size_t *nbytes);
RASTER_HIDDEN int raster__shm_test_reattach(char *why, size_t why_nbytes);
RASTER_HIDDEN int raster__shm_test_corrupt(const char *what);

/* This process leaves the arena: its pins dropped, its slot freed, and the
 * object unlinked if no live process is attached any more.  Idempotent; a
 * later use takes a slot again. */
RASTER_HIDDEN void raster__shm_detach(void);

/* In a process that never attached (the parent of DataLoader workers that
 * did all the reading): removes the arena if no live process is attached
 * to it any more.  Workers SIGTERMed by their parent (torch's handler then
 * _exit()s, so they never detach) leave it otherwise.  No-op in a process
 * that attached (raster__shm_detach() decides there) or when there is no
 * arena. */
RASTER_HIDDEN void raster__shm_reap(void);

/* The arena's name for this user (for messages and tests). */
RASTER_HIDDEN const char *raster__shm_name(void);

#endif /* RASTER_SHM_ARENA_H */
