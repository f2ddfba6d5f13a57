/*
 * internal.h - private structs and raster__ helpers shared between lib/ files.
 * Never installed.  Dependencies point down: dataset.c joins the readers;
 * gdal_reader.c and lib/tiff/ sit on the GDAL environment layer (gdal_env.h,
 * included below: fork gate, GDAL error capture, idle handles, paths);
 * place.c knows views and dtypes but not files; the codecs know nothing of
 * TIFF.
 */
#ifndef RASTERLOADER_INTERNAL_H
#define RASTERLOADER_INTERNAL_H

#include "rasterloader.h"

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#define RASTER_HIDDEN __attribute__((visibility("hidden")))
#define RASTER_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ------------------------------ errors --------------------------------- */

/* raster__fail() records a message for raster_last_error() and returns 'st',
 * so a failure is reported and returned in one statement.  Never allocates. */
RASTER_HIDDEN raster_status_t raster__fail(raster_status_t st, const char *fmt, ...)
    RASTER_PRINTF(2, 3);

/* raster__fail_cause() is raster__fail() with a machine-readable cause for
 * raster_last_error_cause(); raster__fail() records RASTER_CAUSE_NONE.
 * raster__fail_again() re-words the last failure (prefixing a batch sample,
 * moving it across threads) and keeps its cause. */
RASTER_HIDDEN raster_status_t raster__fail_cause(raster_status_t st, raster_cause_t cause, const char *fmt, ...)
    RASTER_PRINTF(3, 4);
RASTER_HIDDEN raster_status_t raster__fail_again(raster_status_t st, const char *fmt, ...)
    RASTER_PRINTF(2, 3);

/* raster__fail_open() reports that opening 'path' failed with errno 'err'
 * as RASTER_E_IO: "<path>: <doing>: <strerror>".  For the descriptor
 * limits (raster__errno_is_fd_limit: EMFILE, ENFILE) the message names the
 * limit instead, this process's RLIMIT_NOFILE and how to raise it, so that
 * running out of descriptors is never taken for a bad file.  'doing' says
 * which open it was ("cannot open", "cannot re-open after fork"). */
RASTER_HIDDEN raster_status_t raster__fail_open(const char *path, int err, const char *doing);
RASTER_HIDDEN int raster__errno_is_fd_limit(int err);

#define RASTER_CHECK(cond, st, ...) \
    do { if (!(cond)) return raster__fail((st), __VA_ARGS__); } while (0)
#define RASTER_CHECK_CAUSE(cond, st, cause, ...) \
    do { if (!(cond)) return raster__fail_cause((st), (cause), __VA_ARGS__); } while (0)
#define RASTER_TRY(e) \
    do { const raster_status_t st_ = (e); if (st_ != RASTER_OK) return st_; } while (0)

/* The GDAL environment layer (gdal_env.c): fork gate, GDAL error capture,
 * idle-handle stacks, URL mapping and the remote-path test. */
#include "gdal_env.h"

/* ------------------------------ options -------------------------------- */

/* raster__options_take() applies the struct_size rule of rasterloader.h to
 * one options struct (options.c): 'dst' (dst_nbytes, our sizeof) already
 * holds the defaults of its _init(); 'src' is the caller's struct (NULL:
 * keep the defaults), whose first field is its struct_size.  It must cover
 * at least 'min_nbytes' (RASTER__FIELD_END of the first field) and at most
 * dst_nbytes; then its bytes replace the defaults they cover and
 * dst->struct_size becomes dst_nbytes.  Otherwise RASTER_E_INVALID_ARG,
 * "<who>: <type_name>_t.struct_size is N, ..." with the size it needed (and,
 * too small, "fill it with <type_name>_init()"); dst keeps its defaults. */
RASTER_HIDDEN raster_status_t raster__options_take(void *dst, size_t dst_nbytes, const void *src,
                                                   size_t min_nbytes, const char *type_name,
                                                   const char *who);
#define RASTER__FIELD_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Read options are taken by dataset.c and peeked at by batch.c: one call. */
static inline raster_status_t
raster__read_options_take(raster_read_options_t *dst, const raster_read_options_t *src, const char *who)
{
    raster_read_options_init(dst);
    return raster__options_take(dst, sizeof *dst, src, RASTER__FIELD_END(raster_read_options_t, bands),
                                "raster_read_options", who);
}

/* ------------------------------ fork ----------------------------------- */

/* The one fork handler (fork.c).  A layer whose state must survive fork()
 * hands its hooks to raster__fork_hooks() once, before it makes that state;
 * fork() runs every prepare in slot order and every parent or child hook in
 * the reverse order (fork.c says why this order).  Any hook may be NULL;
 * 'h' must live for the whole process. */
typedef enum raster__fork_slot {
    RASTER__FORK_GDAL = 0,        /* the GDAL fork gate (raster__gdal_fork_*) */
    RASTER__FORK_THREADS = 1,     /* the worker pool (threads.c) */
    RASTER__FORK_TILE_CACHE = 2,  /* the private tile cache (tile_cache.c) */
    RASTER__FORK_SHM_ARENA = 3,   /* the shared arena's process slot (shm_arena.c) */
    RASTER__FORK_POOLS = 4,       /* every buffer pool (pool.c) */
    RASTER__FORK_SLOTS = 5
} raster__fork_slot_t;
typedef struct raster__fork_hooks {
    void (*prepare)(void);
    void (*parent)(void);
    void (*child)(void);
} raster__fork_hooks_t;
RASTER_HIDDEN void raster__fork_hooks(raster__fork_slot_t slot, const raster__fork_hooks_t *h);
/* The hooks, one set per slot above. */
RASTER_HIDDEN void raster__gdal_fork_prepare(void);
RASTER_HIDDEN void raster__gdal_fork_parent(void);
RASTER_HIDDEN void raster__gdal_fork_child(void);
RASTER_HIDDEN void raster__threads_fork_prepare(void);
RASTER_HIDDEN void raster__threads_fork_parent(void);
RASTER_HIDDEN void raster__threads_fork_child(void);
RASTER_HIDDEN void raster__tile_cache_fork_prepare(void);
RASTER_HIDDEN void raster__tile_cache_fork_parent(void);
RASTER_HIDDEN void raster__tile_cache_fork_child(void);
RASTER_HIDDEN void raster__shm_arena_fork_child(void);
RASTER_HIDDEN void raster__pool_fork_prepare(void);
RASTER_HIDDEN void raster__pool_fork_parent(void);
RASTER_HIDDEN void raster__pool_fork_child(void);

/* ------------------------------ views ---------------------------------- */

/* raster__view_check() validates a caller's view: non-NULL data (unless
 * empty), known dtype, non-negative extents and strides, elements that do
 * not overlap.  'what' names the view in the message. */
RASTER_HIDDEN raster_status_t raster__view_check(const raster_view_t *v, const char *what);

/* raster__view_sub() is the view of rows [r0, r0+h), cols [c0, c0+w) of 'v'
 * (no checks: callers pass in-range values). */
RASTER_HIDDEN raster_view_t raster__view_sub(const raster_view_t *v, int64_t r0, int64_t c0,
                                             int64_t h, int64_t w);

/* ------------------------------ place ---------------------------------- */

/* How source channels map to destination channels while placing.  The
 * per-channel pair (scale, offset) is either an affine map, out = in*scale +
 * offset, or, with 'divide', a normalisation written the way users write it,
 * out = (in - offset) / scale (offset holds the mean, scale the std), so that
 * in == mean gives exactly 0.  One pair of pointers for both keeps every
 * reader's per-channel slicing (scale + k, offset + k) the same. */
typedef struct raster__place_opts {
    const int *chan_map;     /* dst channel k reads src channel chan_map[k]; NULL = identity */
    const double *scale;     /* per dst channel; NULL = 1 (the std with 'divide') */
    const double *offset;    /* per dst channel; NULL = 0 (the mean with 'divide') */
    int divide;              /* 1: (in - offset) / scale; 0: in*scale + offset */
} raster__place_opts_t;

/* raster__place() copies 'src' (height x width of any channels) into 'dst'
 * (same height x width, dst->channels channels) converting dtype with GDAL's
 * rules and applying scale/offset (or mean/std), in double, in one pass.
 * src->data is read-only. */
RASTER_HIDDEN void raster__place(const raster_view_t *src, const raster_view_t *dst,
                                 const raster__place_opts_t *opts);

/* raster__fill() writes 'value' converted to dst->dtype into every element. */
RASTER_HIDDEN void raster__fill(const raster_view_t *dst, double value);

/* raster__convert_scalar() converts one double to 'dt' at 'out' with the
 * same rules as raster__place(). */
RASTER_HIDDEN void raster__convert_scalar(double v, raster_dtype_t dt, void *out);

/* raster__f16_from_f64() / raster__f64_from_f16(): IEEE half <-> double,
 * round to nearest even straight from double (no double rounding), NaN and
 * inf kept. */
RASTER_HIDDEN uint16_t raster__f16_from_f64(double d);
RASTER_HIDDEN double raster__f64_from_f16(uint16_t h);

/* GDAL's double -> integer rule: NaN 0, saturate, round half away from zero. */
#define RASTER__D2INT(name, T, lo, hi)                                   \
    static inline T name(double v)                                      \
    {                                                                   \
        if (v != v) return 0;                                           \
        if (v >= (double)(hi)) return (T)(hi);                          \
        if (v <= (double)(lo)) return (T)(lo);                          \
        return (T)(v >= 0 ? v + 0.5 : v - 0.5);                         \
    }
RASTER__D2INT(raster__d2u8, uint8_t, 0, 255)
RASTER__D2INT(raster__d2i8, int8_t, -128, 127)
RASTER__D2INT(raster__d2u16, uint16_t, 0, 65535)
RASTER__D2INT(raster__d2i16, int16_t, -32768, 32767)
RASTER__D2INT(raster__d2u32, uint32_t, 0, 4294967295.0)
RASTER__D2INT(raster__d2i32, int32_t, -2147483648.0, 2147483647)

/* ------------------------------ scratch -------------------------------- */

/* Per-thread scratch buffers, one per slot, 64-byte aligned, grown to the
 * largest size asked for and reused, freed at thread exit: after warm-up a
 * read allocates nothing.  Returns NULL (with the error set) on OOM.  The
 * memory is valid until the same thread asks for the same slot again. */
enum {
    RASTER_SCRATCH_GDAL = 0,      /* gdal_reader.c: native-dtype staging */
    RASTER_SCRATCH_MASK = 1,      /* mask.c: one band mask for OR-ing */
    RASTER_SCRATCH_RAW = 2,       /* tiff/: compressed segment bytes */
    RASTER_SCRATCH_DECODE = 3,    /* tiff/: decoded segment */
    RASTER_SCRATCH_BATCH = 7,     /* batch.c: a label's source pixels, a mask to convert */
    RASTER_SCRATCH_MOSAIC = 8,    /* mosaic.c: a later source before "first" compositing */
    RASTER_SCRATCH_SLOTS = 9
};
RASTER_HIDDEN void *raster__scratch(int slot, size_t nbytes);
RASTER_HIDDEN uint64_t raster__scratch_allocations(void);  /* process-wide count, for tests */

/* Test hook (tests/unit/check_faults.c): of the scratch allocations that
 * follow, on any thread, the next 'skip' succeed and the 'n' after them
 * fail as if the allocator had returned NULL.  (0, 0) turns it off. */
RASTER_HIDDEN void raster__scratch_fail_allocs(int skip, int n);

/* ------------------------------ datasets ------------------------------- */

struct raster__gdal;    /* gdal_reader.c: per-thread GDAL handles */

struct raster__tiff;    /* tiff/: native layout, descriptor, segment tables */

typedef struct raster__band {
    raster_band_info_t info;
    char color_interp[16];
} raster__band_t;

struct raster_dataset {
    atomic_int refcount;          /* raster_open's + retains + reads in flight */
    atomic_int closed;            /* set by raster_close() */
    char *path;                   /* owned: the GDAL path (URLs mapped: raster__gdal_path_of) */
    raster_info_t info;           /* strings point into the owned fields below */
    char *driver, *compression, *interleave, *crs_wkt;   /* owned */
    raster__band_t *bands;        /* owned, info.band_count entries */
    int *all_bands;               /* owned: 1..band_count, the default band list */
    struct raster__gdal *gdal;    /* owned: GDAL handle pool (also for masks) */
    struct raster__tiff *tiff;    /* owned: NULL unless the native reader serves */
    struct raster__warp *warp;    /* owned: NULL unless made by raster_open_warped() */
    /* How 'warp' is freed, set by whoever made it (warped_vrt.c): a callback,
     * so that dataset.c, below the entries layer, never calls up into it. */
    void (*warp_free)(struct raster__warp *w);
};

/* A resolved read request: the window already clipped to the raster, the
 * destination sub-view for it, and the band list resolved (never NULL). */
typedef struct raster__request {
    raster_window_t win;          /* inside the raster, width/height >= 1 */
    raster_view_t dst;            /* exactly win.height x win.width x band_count */
    const int *bands;             /* 1-based, band_count entries */
    int band_count;
    const double *scale, *offset; /* per output channel or NULL */
    int divide;                   /* scale/offset are std/mean: see raster__place_opts_t */
} raster__request_t;

/* GDAL reader (gdal_reader.c). */
RASTER_HIDDEN raster_status_t raster__gdal_open(raster_dataset_t *ds);
/* A dataset whose GDAL handles are made by 'open' (called inside the gate,
 * with GDAL's errors captured; on failure it sets the message and returns
 * the status) instead of GDALOpenEx(ds->path): warped VRTs (warped_vrt.c).
 * 'ctx' must outlive the dataset's handles. */
typedef raster_status_t (*raster__gdal_opener_fn)(void *ctx, void **handle_out);
RASTER_HIDDEN raster_status_t raster__gdal_open_with(raster_dataset_t *ds, raster__gdal_opener_fn open,
                                                     void *ctx);
/* A new GDAL handle of 'ds' (GDALDatasetH; owned by the caller, never put on
 * the idle stack), made as the reader makes its own.  Inside the gate only. */
RASTER_HIDDEN raster_status_t raster__gdal_handle_new(raster_dataset_t *ds, void **handle_out);
RASTER_HIDDEN void raster__gdal_close(struct raster__gdal *g);
RASTER_HIDDEN raster_status_t raster__gdal_read(raster_dataset_t *ds, const raster__request_t *rq);
/* A checked raster_read_resampled_into() request. */
typedef struct raster__resample_request {
    raster_window_f_t win;
    raster_resampling_t alg;
    raster_view_t dst;
    const int *bands;
    int band_count;
    const double *scale, *offset;
    int divide;                   /* as raster__request_t */
} raster__resample_request_t;
RASTER_HIDDEN raster_status_t raster__gdal_read_resampled(raster_dataset_t *ds,
                                                          const raster__resample_request_t *rr);
/* raster__gdal_crs_same() is 1 when two WKT strings name the same CRS
 * (equal strings, or OSRIsSame on both parsed), 0 otherwise; "" is only the
 * same as "". */
RASTER_HIDDEN int raster__gdal_crs_same(const char *wkt_a, const char *wkt_b);
/* band 0 = dataset mask; dst is U8 with one channel. */
RASTER_HIDDEN raster_status_t raster__gdal_read_mask(raster_dataset_t *ds, raster_window_t win,
                                                     int band, const raster_view_t *dst);
/* The same resampled: GDAL resamples band's mask over 'win' to dst's size. */
RASTER_HIDDEN raster_status_t raster__gdal_read_mask_resampled(raster_dataset_t *ds, raster_window_f_t win,
                                                               raster_resampling_t alg, int band,
                                                               const raster_view_t *dst);

/* One of the dataset's GDAL handles for a call on it (metadata.c, and the
 * reads of gdal_reader.c): take enters the fork gate and pops an idle
 * handle (or opens one); NULL, with the gate left and the error set, when
 * none can be opened.  Give puts it back and leaves the gate; 'st' is the
 * call's result: a handle whose call failed is closed, not reused.  Between
 * the two the caller is inside the gate: it must not enter again. */
RASTER_HIDDEN void *raster__gdal_handle_take(raster_dataset_t *ds);
RASTER_HIDDEN void raster__gdal_handle_give(raster_dataset_t *ds, void *h, raster_status_t st);
/* Closes the dataset's idle GDAL handles and opens none (dataset.c: a local
 * file the native reader serves keeps one descriptor, not two). */
RASTER_HIDDEN void raster__gdal_close_idle(raster_dataset_t *ds);

/* Native TIFF reader (tiff/).  raster__tiff_open() runs after
 * raster__gdal_open() for every dataset: for a TIFF it corrects the metadata
 * only libtiff knows (tiled, predictor, ...), and it sets ds->tiff when the
 * native reader can serve the file; RASTER_OK with ds->tiff == NULL means
 * the GDAL reader takes it.  A TIFF that libtiff rejects but GDAL opened is
 * not an error here: GDAL serves it. */
RASTER_HIDDEN raster_status_t raster__tiff_open(raster_dataset_t *ds);
RASTER_HIDDEN void raster__tiff_close(struct raster__tiff *t);
RASTER_HIDDEN raster_status_t raster__tiff_read(raster_dataset_t *ds, const raster__request_t *rq);

/* Mask dispatch (mask.c): band 0 = the dataset mask.  The resampled form
 * resamples every band mask it uses over 'win' to dst's size, as rasterio's
 * read_masks(out_shape=...) and dataset_mask(out_shape=...) do. */
RASTER_HIDDEN raster_status_t raster__mask_read(raster_dataset_t *ds, raster_window_t win,
                                                int band, const raster_view_t *dst);
RASTER_HIDDEN raster_status_t raster__mask_read_resampled(raster_dataset_t *ds, raster_window_f_t win,
                                                          raster_resampling_t alg, int band,
                                                          const raster_view_t *dst);

/* A checked raster_read_masks_into() / raster_read_masks_resampled_into()
 * request (dataset.c checks, mask.c applies rasterio's rules). */
typedef struct raster__masks_request {
    int rule;                       /* raster_mask_rule_t */
    const int *bands;               /* resolved, never NULL */
    int band_count;
    int boundless;
    int has_nodata;
    double nodata;
    raster_view_t dst;              /* the whole window; the outside already 0 */
    int inside;                     /* 0: nothing of the window is inside the raster */
    raster_window_t inner;          /* the part inside, and its views: */
    raster_view_t inner_dst;
    const raster_view_t *pixels_inner;  /* the read's pixels of 'inner', or NULL */
    int resampled;                  /* 1: each mask resampled over resample_win to dst's size */
    raster_window_f_t resample_win;
    raster_resampling_t resampling;
} raster__masks_request_t;
RASTER_HIDDEN raster_status_t raster__masks_read(raster_dataset_t *ds, const raster__masks_request_t *rq,
                                                 int *no_mask_out);

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

/* ------------------------------ native TIFF ---------------------------- */

/* Scratch slots used by lib/tiff/ beyond RAW and DECODE. */
enum {
    RASTER_SCRATCH_TIFF_PLAN = 4, /* tiff_read.c: the segment plan of one read */
    RASTER_SCRATCH_TIFF_ROW = 5,  /* tiff_codec.c: one row for the float predictor */
    RASTER_SCRATCH_TIFF_FETCH = 6 /* tiff_read.c: a remote read's fetched bytes */
};

/* Allocation counter of lib/tiff/ (per-thread decoder contexts), for tests:
 * with raster__scratch_allocations() it must stay flat in steady state. */
RASTER_HIDDEN uint64_t raster__tiff_allocations(void);

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

#endif /* RASTERLOADER_INTERNAL_H */
