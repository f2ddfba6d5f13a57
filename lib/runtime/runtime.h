/*
 * runtime.h - the runtime folder of lib/ (lib/README.md): what the process
 * runs reads with, and nothing about rasters: worker threads
 * (threads.c), buffer pools (pool.c), GDAL options scoped to a call
 * (gdal_config.c), and the GDAL environment every user of GDAL needs before
 * it calls GDAL (gdal_env.c):
 *
 *   - the fork gate every GDAL and VSI call runs in;
 *   - per-thread capture of GDAL's messages, and the status a failure is;
 *   - a stack of idle handles (GDAL datasets, VSI files) with fork's rule;
 *   - the URL mapping of raster_open() and the remote-path test.
 *
 * Uses common/ only.  Private; never installed.
 */
#ifndef RASTERLOADER_RUNTIME_H
#define RASTERLOADER_RUNTIME_H

#include "common/common.h"

/* ------------------------------ fork gate ------------------------------ */

/* Every GDAL or VSI call of the library runs between raster__gdal_enter()
 * and raster__gdal_leave(), so that fork() (which closes the gate first)
 * never copies a GDAL mutex held by another thread into the child.  The
 * first enter also registers GDAL's drivers.  Not recursive: never enter
 * twice on one thread.  libcurl calls of lib/source/tiff_http.c run inside
 * it too; its waits on the network run outside (it pauses its frame).
 * Callers outside gdal_env.c enter through a call frame (below), which
 * also captures GDAL's messages; the one exception is a thread-exit
 * destructor of tiff_http.c (it says why). */
RASTER_HIDDEN void raster__gdal_enter(void);
RASTER_HIDDEN void raster__gdal_leave(void);

/* The gate's fork hooks: prepare closes the gate and waits until no thread
 * is inside (it returns holding the gate's mutex); parent reopens it; child
 * starts a fresh, open gate. */
RASTER_HIDDEN void raster__gdal_fork_prepare(void);
RASTER_HIDDEN void raster__gdal_fork_parent(void);
RASTER_HIDDEN void raster__gdal_fork_child(void);

/* ------------------------------ dtypes --------------------------------- */

/* The one table between raster dtypes and GDAL's data types (gdal_env.c);
 * GDALDataType values travel as int so that this header needs no GDAL
 * header.  GDAL before 3.7 has no Int8: a signed-byte band is a Byte band
 * with IMAGE_STRUCTURE PIXELTYPE=SIGNEDBYTE, whose bytes are the int8
 * values.  float16 has no GDAL type here.
 *
 * raster__gdal_type() is the GDAL type whose values are dt's, or
 * GDT_Unknown (0) where the running GDAL has none (float16; int8 before 3.7): what
 * GDAL computes in (a warp's working type) or converts into (a resampled
 * read straight into the destination) must be this one.
 * raster__gdal_carrier() is the buffer type that carries the bytes of a
 * band of dtype dt unchanged (a RasterIO with no conversion): the type
 * above, or Byte for int8 before 3.7.
 * raster__dtype_of_gdal() is the dtype of a band of GDAL type 'gdt' whose
 * PIXELTYPE item is 'pixeltype' (NULL: none): 1 and *out, or 0 when the
 * library has no dtype for it. */
RASTER_HIDDEN int raster__gdal_type(raster_dtype_t dt);
RASTER_HIDDEN int raster__gdal_carrier(raster_dtype_t dt);
RASTER_HIDDEN int raster__dtype_of_gdal(int gdt, const char *pixeltype, raster_dtype_t *out);

/* ------------------------------ paths ---------------------------------- */

/* raster__gdal_path_of() is the path GDAL opens for 'path_or_url'
 * (borrowed): GDAL's virtual file systems (/vsicurl/, /vsis3/, ...) as they
 * are; http(s):// mapped to /vsicurl/ and s3://, gs://, az:// to /vsis3/,
 * /vsigs/, /vsiaz/, as rasterio does.  Owned by the caller (free()); NULL
 * on OOM. */
RASTER_HIDDEN char *raster__gdal_path_of(const char *path_or_url);

/* raster__path_is_remote() is 1 when 'path' (a GDAL path, after the URL
 * mapping above) reads over the network: /vsicurl/, /vsis3/, /vsigs/,
 * /vsiaz/ and the other cloud file systems, also chained ones. */
RASTER_HIDDEN int raster__path_is_remote(const char *path);

/* ------------------------------ error capture -------------------------- */

/*
 * raster__gdal_capture_begin() sends this thread's GDAL messages into a
 * per-thread record instead of stderr, until raster__gdal_capture_end(): the
 * first failure, the last failure, each failure's class and number, and the
 * retries GDAL spent (GDAL_HTTP_MAX_RETRY).  A begin resets the record (an
 * inner begin/end pair leaves the inner call's record).  Call inside or
 * outside the gate, as the GDAL call it wraps; pairs nest like
 * CPLPushErrorHandler.  lib/ begins captures through the call frame below;
 * a read's own capture (raster__gdal_capture_begin_read(): its status is
 * the read's alone) nests inside a frame, or holds frames that join it.
 */
RASTER_HIDDEN void raster__gdal_capture_begin(void);
RASTER_HIDDEN void raster__gdal_capture_end(void);

/* raster__gdal_capture_begin(), and for a remote 'path' (borrowed) GDAL's
 * debug output too, until the matching end: GDAL 3.6's /vsicurl/ names the
 * HTTP status or curl's error of a failed range read only there (a failed
 * read is otherwise libtiff's "Read error"), and the detail then says it.
 * Sets CPL_DEBUG for this thread (restored at the end); its messages go into
 * the record like the others, never to stderr. */
RASTER_HIDDEN void raster__gdal_capture_begin_read(const char *path);

/* What GDAL said, for a message (valid until the next capture on this
 * thread): the first failure, then the last when it differs, the retries
 * spent, and a hint when a server ignored HTTP Range requests. */
RASTER_HIDDEN const char *raster__gdal_capture_detail(void);

/* The words of GDAL's table (gdal_env.c) that a capture heard: the one
 * place where lib/ reads GDAL's text, for what GDAL gives no number. */
typedef enum raster__gdal_said {
    RASTER__GDAL_SAID_UNSUPPORTED = 0,  /* libtiff/GTiff: a feature it does not implement */
    RASTER__GDAL_SAID_RETRY = 1,        /* /vsicurl/ retried (GDAL_HTTP_MAX_RETRY) */
    RASTER__GDAL_SAID_NO_RANGE = 2,     /* a server answered a Range request with the whole file */
    RASTER__GDAL_SAID_NO_VALID_PIXELS = 3, /* statistics: every sampled pixel is nodata */
    RASTER__GDAL_SAID_HTTP = 4          /* /vsicurl/'s debug output named a response (remote reads) */
} raster__gdal_said_t;

/* 1 when a message of the capture matched 'what' in the table, else 0. */
RASTER_HIDDEN int raster__gdal_capture_said(raster__gdal_said_t what);

/* What the failed call was: a status depends on it as much as on GDAL's
 * error number. */
typedef enum raster__gdal_call {
    RASTER__GDAL_CALL_OPEN,       /* GDALOpenEx of the dataset's path gave NULL */
    RASTER__GDAL_CALL_READ,       /* RasterIO of pixels or masks failed */
    RASTER__GDAL_CALL_VSI         /* a VSI open or read of the file's bytes failed */
} raster__gdal_call_t;

/* raster__gdal_capture_status() is the status of a failed 'call' on 'path'
 * (borrowed; a GDAL path) from what was captured since the begin: GDAL's
 * error classes and numbers, whether the path is remote, and what the call
 * was (the table in gdal_env.c).  'otherwise' is returned when nothing
 * captured says more (a read's RASTER_E_CORRUPT, say).  Call before the
 * capture's end or after it, before the next begin. */
RASTER_HIDDEN raster_status_t raster__gdal_capture_status(const char *path, raster__gdal_call_t call,
                                                          raster_status_t otherwise);

/* ------------------------------ idle handles --------------------------- */

/*
 * A stack of idle handles of one object that are not safe to share between
 * threads (GDAL datasets, VSI files): a user pops one (opening a new one
 * when the stack is empty) and pushes it back.  After fork() the parent's
 * handles are forgotten, never closed (their file offsets, caches and
 * connections belong to the parent): the first pop in the child starts
 * over.  The stack's mutex is never held while 'close' runs, and the stack
 * never enters the gate: push and destroy call 'close' in the caller's gate
 * state, so a user either calls them inside the gate (gdal_reader.c) or
 * gives a 'close' that enters the gate itself (tiff_vsi.c).
 */
typedef void (*raster__handle_close_fn)(void *handle);

typedef struct raster__handle_stack {
    pthread_mutex_t mu;
    pid_t pid;                      /* process the idle handles belong to */
    void **idle;                    /* owned: handles not in use */
    int idle_count, idle_cap;
    raster__handle_close_fn close;  /* closes one handle */
} raster__handle_stack_t;

RASTER_HIDDEN void raster__handle_stack_init(raster__handle_stack_t *s, raster__handle_close_fn close);
/* An idle handle (now the caller's), or NULL when none is idle. */
RASTER_HIDDEN void *raster__handle_stack_pop(raster__handle_stack_t *s);
/* Gives 'h' back; closes it instead when the stack cannot keep it (no memory
 * to grow, or it was taken before a fork). */
RASTER_HIDDEN void raster__handle_stack_push(raster__handle_stack_t *s, void *h);
/* Closes the idle handles (only in the process that opened them) and frees
 * the stack's memory; no handle may be out. */
RASTER_HIDDEN void raster__handle_stack_destroy(raster__handle_stack_t *s);

/* ------------------------------ call frame ----------------------------- */

/*
 * The one way lib/ calls GDAL, VSI or libcurl: a frame.  Entering one
 * captures this thread's GDAL messages (raster__gdal_capture_begin(); a
 * frame opened while a capture is already open on this thread, such as a
 * remote read's, captures into that one) and enters the fork gate; leaving
 * it leaves the gate and ends the capture, so the capture's answers
 * (raster__gdal_capture_status(), _detail(), _said()) hold until the next
 * begin.  Frames do not nest on one thread (the gate is not recursive).
 *
 * raster__gdal_frame_take() is a frame for a call on one of an object's
 * idle handles (a GDAL dataset's): it pops one from 'stack', or makes one
 * with open(ctx) inside the frame; if that fails, the frame is left and
 * open's status returned (its message set).  Once it has the handle the
 * capture starts afresh, so what the call captures is the call's alone.
 * raster__gdal_frame_leave() gives the handle back when 'st' is RASTER_OK
 * and closes it otherwise (GDAL and libtiff keep state from a failed call:
 * the next call starts from the file as it is), and for a failed call on a
 * remote 'forget' path (NULL: none) clears GDAL's /vsicurl/ caches of it
 * (raster__gdal_forget()).  It returns 'st', so a call ends with
 * `return raster__gdal_frame_leave(&f, st);`.
 *
 * raster__gdal_frame_pause() / _resume() leave and re-enter the gate in the
 * middle of a frame, keeping its capture and handle: for waits that hold no
 * GDAL or libcurl state (the network wait of tiff_http.c, a retry's sleep).
 */
typedef raster_status_t (*raster__handle_open_fn)(void *ctx, void **handle_out);
typedef struct raster__gdal_frame {
    raster__handle_stack_t *stack;  /* the handle's stack; NULL: no handle */
    void *handle;                   /* the call's handle, between take and leave */
    const char *forget;             /* a remote path a failed call forgets; NULL: none */
    int captured;                   /* 1: this frame began the capture */
} raster__gdal_frame_t;
RASTER_HIDDEN void raster__gdal_frame_enter(raster__gdal_frame_t *f);
RASTER_HIDDEN raster_status_t raster__gdal_frame_take(raster__gdal_frame_t *f, raster__handle_stack_t *stack,
                                                      raster__handle_open_fn open, void *ctx,
                                                      const char *forget);
RASTER_HIDDEN raster_status_t raster__gdal_frame_leave(raster__gdal_frame_t *f, raster_status_t st);
RASTER_HIDDEN void raster__gdal_frame_pause(raster__gdal_frame_t *f);
RASTER_HIDDEN void raster__gdal_frame_resume(raster__gdal_frame_t *f);

/* Clears GDAL's /vsicurl/ caches of 'path' (regions, the file's properties)
 * when it is remote, so that the next read after a failure asks the server.
 * Inside a frame. */
RASTER_HIDDEN void raster__gdal_forget(const char *path);

/* ----------------------------- GDAL config ----------------------------- */

/* The frames of raster_gdal_config_push() (gdal_config.c).  A worker thread
 * running items of another thread's raster__parallel_for() adopts that
 * thread's current frames for the duration (the caller's stack outlives its
 * parallel_for), so its GDAL calls see the caller's options. */
typedef struct raster__gdal_config raster__gdal_config_t;
RASTER_HIDDEN const raster__gdal_config_t *raster__gdal_config_current(void);
/* Sets cfg's options (NULL: none) as this thread's thread-local config and
 * returns the frames it saw before, for raster__gdal_config_drop(). */
RASTER_HIDDEN const raster__gdal_config_t *raster__gdal_config_adopt(const raster__gdal_config_t *cfg);
RASTER_HIDDEN void raster__gdal_config_drop(const raster__gdal_config_t *cfg,
                                            const raster__gdal_config_t *prev);


/* ------------------------------ threads -------------------------------- */

/* raster__parallel_for() runs fn(ctx, i) for every i in [0, n) on the
 * calling thread plus up to max_threads-1 workers of the library's pool
 * (threads.c), and returns when all have finished.  Items are taken in
 * increasing order from a shared counter, so any split gives the same
 * result when items write disjoint memory.  After the first failure the
 * items not yet started are skipped; of the items that failed, the one with
 * the lowest index is returned and its message re-raised on the calling
 * thread.  n <= 1 or
 * max_threads <= 1 runs inline with no hand-off.  Never allocates once the
 * pool has its workers. */
typedef raster_status_t (*raster__task_fn)(void *ctx, int64_t index);
RASTER_HIDDEN raster_status_t raster__parallel_for(int64_t n, int max_threads, raster__task_fn fn,
                                                   void *ctx);

/* Allocation counter of threads.c (pool and worker start-up), for tests. */
RASTER_HIDDEN uint64_t raster__thread_allocations(void);


/* ------------------------------ pools -------------------------------- */

/* The contract between pool.c and its users inside lib/ (dlpack.c,
 * batch.c); the structs stay private to pool.c. */

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

/* Test hook (the tests/unit/ suites link the static library): the next 'n'
 * block or record allocations, in any pool, fail as if the allocator had
 * returned NULL, to test the out-of-memory paths. */
RASTER_HIDDEN void raster__pool_fail_allocs(int n);


/* Fork hooks of the THREADS and POOLS slots (common.h's raster__fork_hooks). */
RASTER_HIDDEN void raster__threads_fork_prepare(void);
RASTER_HIDDEN void raster__threads_fork_parent(void);
RASTER_HIDDEN void raster__threads_fork_child(void);
RASTER_HIDDEN void raster__pool_fork_prepare(void);
RASTER_HIDDEN void raster__pool_fork_parent(void);
RASTER_HIDDEN void raster__pool_fork_child(void);

#endif /* RASTERLOADER_RUNTIME_H */
