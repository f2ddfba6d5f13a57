/*
 * common.h - the bottom folder of lib/ (lib/README.md): errors, the
 * struct_size rule of options structs, the one fork handler, dtypes and
 * views, placing pixels with conversion, per-thread scratch.  Every other
 * folder's header includes it; it includes only the public header and the
 * C library.  Never installed.
 */
#ifndef RASTERLOADER_COMMON_H
#define RASTERLOADER_COMMON_H

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
/* Each slot's hooks are declared in the header of the folder that owns it. */

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

/* GDAL's float32 -> integer rules (GDALCopyWords in GDAL 3.6, the one the
 * library links; lib/common/dtype.c lists them and where GDAL 3.10 differs).  The
 * +-0.5f is added in float, as GDAL does, so it rounds where the sum is not
 * a float: 0.49999997f gives 1, an odd integer in [2^23, 2^24) goes one
 * further from zero.  Written as selects: convert.c vectorises these same
 * functions, place.c's scalar path calls them. */
static inline float raster__f_half_away(float x) { return x >= 0.0f ? x + 0.5f : x - 0.5f; }
#define RASTER__F2SMALL(name, T, lo, hi)                                  \
    static inline T name(float x)                                       \
    {                                                                   \
        float v = raster__f_half_away(x == x ? x : 0.0f);               \
        v = v > (float)(lo) ? v : (float)(lo);                          \
        v = v < (float)(hi) ? v : (float)(hi);                          \
        return (T)(int32_t)v;                                           \
    }
RASTER__F2SMALL(raster__f2u8, uint8_t, 0, 255)
RASTER__F2SMALL(raster__f2i8, int8_t, -128, 127)
RASTER__F2SMALL(raster__f2u16, uint16_t, 0, 65535)
/* int16 is GDAL's SSE2 rule (8-value chunks, which is nearly every value of
 * a read): clamp first (NaN gives -32768), then +0.5f from 0.5 up, else
 * -0.5f (so 0.49999997f gives 0). */
static inline int16_t raster__f2i16(float x)
{
    float c = x > -32768.0f ? x : -32768.0f;
    c = c < 32767.0f ? c : 32767.0f;
    return (int16_t)(int32_t)(c >= 0.5f ? c + 0.5f : c - 0.5f);
}
/* int32: 2^31 and up INT32_MAX; NaN, -2^31 and below INT32_MIN (what x86's
 * truncation gives GDAL 3.6 for NaN). */
static inline int32_t raster__f2i32(float x)
{
    const float v = raster__f_half_away(x);
    const float c = v > -2147483648.0f ? v : -2147483648.0f;
    const int32_t t = (int32_t)(c < 2147483648.0f ? c : 0.0f);
    return c < 2147483648.0f ? t : INT32_MAX;
}
/* float32 NaN into int32 is 0 from GDAL 3.7 on (INT32_MIN above is 3.6's):
 * the GDAL the process runs on decides (the C library links Debian's 3.6;
 * the Python package runs on rasterio's GDAL, 3.10 in its wheel).  The
 * runtime layer, which knows that GDAL, sets the rule once
 * (raster__convert_nan_i32_zero); the kernels are picked by it per call, so
 * the per-value code stays a select. */
static inline int32_t raster__f2i32_nan0(float x) { return raster__f2i32(x == x ? x : 0.0f); }
RASTER_HIDDEN void raster__convert_nan_i32_zero(int zero);
RASTER_HIDDEN int raster__convert_nan_i32_is_zero(void);

/* uint32: 2^32 and up UINT32_MAX; NaN and up to 0 give 0; else x + 0.5f
 * truncated, through int32 in two halves (what SIMD has). */
static inline uint32_t raster__f2u32(float x)
{
    float c = x > 0.0f ? x + 0.5f : 0.0f;
    const int sat = c >= 4294967296.0f;
    c = sat ? 0.0f : c;
    const int high = c >= 2147483648.0f;
    const uint32_t t = (uint32_t)(int32_t)(high ? c - 2147483648.0f : c) + (high ? 0x80000000u : 0u);
    return sat ? UINT32_MAX : t;
}

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
    RASTER_SCRATCH_TIFF_PLAN = 4, /* tiff_read.c: the segment plan of one read */
    RASTER_SCRATCH_TIFF_ROW = 5,  /* tiff_read.c: one row for the float predictor */
    RASTER_SCRATCH_TIFF_FETCH = 6,/* tiff_read.c: a remote read's fetched bytes */
    RASTER_SCRATCH_BATCH = 7,     /* batch.c: a label's source pixels, a mask to convert */
    RASTER_SCRATCH_MOSAIC = 8,    /* mosaic.c: a later source before "first" compositing */
    RASTER_SCRATCH_SLOTS = 9
};
RASTER_HIDDEN void *raster__scratch(int slot, size_t nbytes);
RASTER_HIDDEN uint64_t raster__scratch_allocations(void);  /* process-wide count, for tests */

/* Test hook (tests/unit/source/check_faults.c): of the scratch allocations that
 * follow, on any thread, the next 'skip' succeed and the 'n' after them
 * fail as if the allocator had returned NULL.  (0, 0) turns it off. */
RASTER_HIDDEN void raster__scratch_fail_allocs(int skip, int n);

#endif /* RASTERLOADER_COMMON_H */
