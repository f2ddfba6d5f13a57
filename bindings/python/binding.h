/*
 * binding.h - shared structs and helpers of the rasterloader._core extension.
 *
 * One .c file per Python type (dataset_type.c, pool_type.c, tile_type.c),
 * plus errors.c (status -> exception), out_view.c (caller arrays and tensors
 * as raster_view_t), dlpack_export.c (capsules for Tile.__dlpack__) and
 * module.c.  The pure-Python package rasterloader/ builds the rasterio-style
 * API on top; this layer only binds the C API, releases the GIL around every
 * call that may touch a file or wait, and turns statuses into exceptions.
 *
 * Lifetimes are C refcounts wherever memory crosses a thread or a consumer:
 * a read retains its dataset while the GIL is released, a Py_buffer and a
 * DLPack export each retain the pool buffer, so Python refcounts never need
 * to be touched without the GIL.
 */
#ifndef RASTERLOADER_BINDING_H
#define RASTERLOADER_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <rasterloader.h>

/* ------------------------------ Dataset -------------------------------- */

typedef struct {
    PyObject_HEAD
    raster_dataset_t *ds;     /* owned (raster_open's reference); NULL once closed */
    PyObject *path;           /* owned: the str the dataset was opened with */
    raster_info_t info;       /* copied at open; its strings are views into 'ds',
                                 copied to Python objects before close */
    PyObject *weakreflist;    /* owned by the type machinery */
} DatasetObject;

/* ------------------------------ BufferPool ----------------------------- */

typedef struct {
    PyObject_HEAD
    raster_pool_t *pool;      /* owned; NULL once destroyed */
    size_t budget_bytes;
    Py_ssize_t users;         /* calls in flight with the GIL released */
    int closing;              /* close() asked while users > 0: last user destroys */
    PyObject *weakreflist;
} PoolObject;

/* pool_enter() returns the C pool for a call that will release the GIL
 * (raising ClosedError if closed); pool_leave() must follow with the GIL
 * held.  Together they keep raster_pool_destroy() from running under a
 * waiting acquire on another thread. */
raster_pool_t *pool_enter(PoolObject *p);
void pool_leave(PoolObject *p);

/* ------------------------------ Tile ----------------------------------- */

typedef struct {
    PyObject_HEAD
    raster_buffer_t *buf;     /* owned reference; NULL after release() */
    raster_dtype_t dtype;
    int ndim;                 /* 3: one sample [h, w, c]; 4: a batch [b, h, w, c];
                                 one less with squeeze ([b, h, w] masks) */
    int64_t index;            /* DLPack request: 0 (one sample) or -1 (the batch) */
    int squeeze;              /* DLPack request: leave out the channel axis */
    Py_ssize_t shape[4];      /* the exported shape */
    Py_ssize_t strides[4];    /* bytes, compact; Py_buffer views point here */
    Py_ssize_t nbytes;
    int read_only;            /* exports are read-only (flag or BufferError) */
    PyObject *weakreflist;
} TileObject;

/* tile_new() wraps 'buf' (the caller's reference is stolen, also on failure)
 * holding an h x w x c sample 0. */
PyObject *tile_new(raster_buffer_t *buf, raster_dtype_t dt, int64_t h, int64_t w, int64_t c);
/* tile_new_batch() wraps a whole [b, h, w, c] batch buffer (reference stolen):
 * exported 4-d, or 3-d [b, h, w] with 'squeeze' (c must be 1). */
PyObject *tile_new_batch(raster_buffer_t *buf, int squeeze);

/* ------------------------------ DLPack --------------------------------- */

/* tile_dlpack() implements Tile.__dlpack__(*, stream, max_version,
 * dl_device, copy) with the negotiation rules of DLPACK.md §3. */
PyObject *tile_dlpack(TileObject *t, PyObject *args, PyObject *kwargs);
/* dlpack_layout() reports sizeof/offsetof of the header's DLPack structs. */
PyObject *dlpack_layout(PyObject *mod, PyObject *unused);

/* ------------------------------ out= targets ---------------------------- */

/* Batch layouts are the sample layouts with a leading batch axis, in the
 * same order (LAYOUT_BHWC - LAYOUT_BHWC == LAYOUT_HWC, ...). */
typedef enum {
    LAYOUT_HWC = 0, LAYOUT_CHW = 1, LAYOUT_HW = 2,
    LAYOUT_BHWC = 3, LAYOUT_BCHW = 4, LAYOUT_BHW = 5
} out_layout_t;

/* A caller array or tensor pinned for a write with the GIL released. */
typedef struct {
    raster_view_t view;       /* element (r, c, k) of the window's output (of
                                 sample 0 for batch layouts) */
    int64_t batch_stride;     /* bytes from one sample to the next (batch layouts) */
    Py_buffer pybuf;          /* pinned through the buffer protocol, or */
    int has_pybuf;
    void *dl_managed;         /* an imported DLPack tensor (we are its consumer) */
    int dl_versioned;
} out_target_t;

/* out_target_acquire() pins 'obj' (a writable buffer-protocol object such as
 * a numpy array, or any CPU DLPack producer such as a torch tensor) and
 * checks its shape against h x w x c in 'layout' and, when want_dtype >= 0,
 * its dtype.  Never copies: a mismatch raises ValueError/TypeError. */
int out_target_acquire(PyObject *obj, out_layout_t layout, int64_t h, int64_t w, int64_t c,
                       int want_dtype, out_target_t *t);
/* out_target_acquire_batch() is the same for a batch layout of b samples. */
int out_target_acquire_batch(PyObject *obj, out_layout_t layout, int64_t b, int64_t h, int64_t w,
                             int64_t c, int want_dtype, out_target_t *t);
void out_target_release(out_target_t *t);
int layout_converter(PyObject *o, void *out);

/* ------------------------------ batches -------------------------------- */

/* read_batch(items, *, dtype, pool | out, ...) (batch_read.c). */
PyObject *mod_read_batch(PyObject *mod, PyObject *args, PyObject *kwargs);
PyObject *mod_check_label_grid(PyObject *mod, PyObject *args, PyObject *kwargs);

/* open_warped(src, ...) and warp_info(ds) (warped_vrt.c). */
PyObject *mod_open_warped(PyObject *mod, PyObject *args, PyObject *kwargs);
PyObject *mod_warp_info(PyObject *mod, PyObject *arg);

/* mosaic_read(items): one Mosaic query's source reads (mosaic_read.c). */
PyObject *mod_mosaic_read(PyObject *mod, PyObject *args, PyObject *kwargs);
PyObject *mod_pool_tile(PyObject *mod, PyObject *args);

/* ------------------------------ errors --------------------------------- */

/* rl_raise() sets the exception for 'st' from raster_last_error(); call it
 * right after the failing call, before any other rasterloader call on this
 * thread.  Returns NULL for 'return rl_raise(st);'. */
PyObject *rl_raise(raster_status_t st);
/* rl_raise_status() raises the class for 'st' with a message of our own,
 * formatted by PyUnicode_FromFormat: objects with %U/%R/%S, C values with
 * its subset of printf (%s %d %ld %lld %zd %c %p %x; no %g or %f). */
PyObject *rl_raise_status(raster_status_t st, const char *fmt, ...);
/* rl_prefix_path() puts "<path>: " in front of a pending plain ValueError or
 * TypeError (argument checks that do not know the file); others unchanged. */
void rl_prefix_path(PyObject *path);

/* ------------------------------ arguments ------------------------------ */

/* rl_bands_parse(): a band list -> a PyMem array of *n ints (caller frees);
 * None -> NULL, 0.  rl_doubles_parse(): exactly 'n' floats for argument
 * 'what' of a read or batch ('reader', for the message) -> a PyMem array;
 * None -> NULL.  Both return -1 with the exception set. */
int rl_bands_parse(PyObject *o, int **out, int *n);
int rl_doubles_parse(PyObject *o, int64_t n, const char *what, const char *reader, double **out);

/* The read options of every read entry (Dataset reads and read_batch),
 * parsed from their keyword arguments in one place: the band list, the
 * per-channel normalisation (exactly one value per output channel),
 * boundless and its fill, into 'opt' (pointing into the PyMem arrays).
 * 'all_bands' is the dataset's band count (the channels when bands is
 * None); 'reader' names the call in messages.  -1 with the exception set
 * (and nothing left to free) on failure; else free with rl_read_args_free(),
 * which also takes a zeroed or already freed struct. */
typedef struct {
    int *bands;                   /* PyMem or NULL: every band */
    int band_count;
    double *scale, *offset;       /* PyMem or NULL */
    double *mean, *std;           /* PyMem or NULL */
    int channels;                 /* output channels */
    raster_read_options_t opt;
} rl_read_args_t;

int rl_read_args_parse(PyObject *bands, int all_bands, int boundless, double fill, PyObject *scale,
                       PyObject *offset, PyObject *mean, PyObject *std, const char *reader,
                       rl_read_args_t *a);
void rl_read_args_free(rl_read_args_t *a);

/* rl_window_f_converter(): a (col_off, row_off, width, height) tuple of
 * numbers -> raster_window_f_t (the float window every Dataset read takes;
 * whole-pixel windows are the same numbers). */
int rl_window_f_converter(PyObject *o, void *out);

/* ------------------------------ dtypes --------------------------------- */

int dtype_from_name(const char *name, raster_dtype_t *out);
int dtype_converter(PyObject *o, void *out);   /* str -> raster_dtype_t */

/* ------------------------------ types ---------------------------------- */

extern PyTypeObject *Dataset_Type;
extern PyTypeObject *Pool_Type;
extern PyTypeObject *Tile_Type;

int dataset_type_init(PyObject *m);
int pool_type_init(PyObject *m);
int tile_type_init(PyObject *m);
/* dataset_meta.c: the metadata functions (tags, colormap, gcps, ...). */
int dataset_meta_init(PyObject *m);

#endif /* RASTERLOADER_BINDING_H */
