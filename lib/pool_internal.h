/*
 * pool_internal.h - private contract between pool.c and its users inside
 * lib/ (dlpack.c, batch.c, the Python binding's C helpers).  Never installed.
 *
 * The structs stay private to pool.c; other files go through these calls.
 */
#ifndef RASTERLOADER_POOL_INTERNAL_H
#define RASTERLOADER_POOL_INTERNAL_H

#include "internal.h"

/*
 * raster__pool_acquire_at() is raster_pool_acquire() with the call site given
 * explicitly.  raster_pool_acquire() passes its own return address; a lib
 * file that acquires on behalf of its caller (batch.c) should pass
 * RASTER__CALLER so the RASTERLOADER_DEBUG=1 leak report names the user's
 * code, not the library's.  'site' is only printed (resolved with dladdr()
 * when the report is written), never dereferenced; NULL is fine.
 */
RASTER_HIDDEN raster_status_t raster__pool_acquire_at(raster_pool_t *pool, raster_dtype_t dt,
                                                      int64_t b, int64_t h, int64_t w, int64_t c,
                                                      int timeout_ms, const void *site,
                                                      raster_buffer_t **buf_out);

/* The return address of the function that uses it (its caller's call site);
 * use it in a function marked RASTER__NOINLINE, or the address is that of
 * the function it was inlined into. */
#define RASTER__CALLER __builtin_extract_return_addr(__builtin_return_address(0))
#define RASTER__NOINLINE __attribute__((noinline))

/* The pool that 'buf' came from (the buffer keeps it alive). */
RASTER_HIDDEN raster_pool_t *raster__buffer_pool(const raster_buffer_t *buf);

/*
 * Small fixed-size records for DLPack exports (managed tensor + shape +
 * strides), recycled through a per-pool free list so that exporting in a
 * steady loop does not call malloc.  raster__pool_record_get() returns a
 * record of RASTER__POOL_RECORD_NBYTES bytes (contents undefined, 16-byte
 * aligned) and counts one more export outstanding, or NULL with the error
 * set.  raster__pool_record_put() gives it back and counts one export fewer;
 * it must be called while the caller still holds a buffer reference (that
 * reference is what keeps the pool alive).  Safe from any thread.
 */
#define RASTER__POOL_RECORD_NBYTES 256
RASTER_HIDDEN void *raster__pool_record_get(raster_pool_t *pool);
RASTER_HIDDEN void raster__pool_record_put(raster_pool_t *pool, void *rec);

/* raster__abort() prints "rasterloader: <message>" to stderr and aborts:
 * for misuse that would otherwise corrupt memory (a buffer released twice,
 * a DLPack deleter called twice, a pool destroyed twice). */
RASTER_HIDDEN _Noreturn void raster__abort(const char *fmt, ...) RASTER_PRINTF(1, 2);

/* Test hook (tests/unit/check_*.c link the static library): the next 'n'
 * block or record allocations, in any pool, fail as if the allocator had
 * returned NULL, to test the out-of-memory paths. */
RASTER_HIDDEN void raster__pool_fail_allocs(int n);

#endif /* RASTERLOADER_POOL_INTERNAL_H */
