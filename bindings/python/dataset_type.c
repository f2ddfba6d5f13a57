/*
 * dataset_type.c - rasterloader._core.Dataset: an open raster and its reads.
 *
 * The low-level reader under rasterloader.Dataset (the rasterio-style class
 * in rasterloader/_dataset.py).  Windows arrive already resolved to integer
 * (col_off, row_off, width, height); every read writes into memory pinned
 * beforehand (a caller's array or tensor, or a pool buffer) with the GIL
 * released, holding its own C reference on the dataset so that close() on
 * another thread cannot free it mid-read.
 */
#include "binding.h"

#include <structmember.h>

#include <string.h>

PyTypeObject *Dataset_Type;

/* ------------------------------ helpers -------------------------------- */

static int
window_converter(PyObject *o, void *out)
{
    raster_window_t *w = out;
    long long v[4];
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 4) {
        PyErr_Format(PyExc_TypeError, "window must be a (col_off, row_off, width, height) tuple, "
                                      "not %R", o);
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        v[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(o, i));
        if (v[i] == -1 && PyErr_Occurred())
            return 0;
    }
    w->col_off = v[0], w->row_off = v[1], w->width = v[2], w->height = v[3];
    return 1;
}

static raster_dataset_t *
open_or_raise(DatasetObject *self)
{
    if (self->ds == NULL)
        rl_raise_status(RASTER_E_CLOSED, "%U: dataset is closed", self->path);
    return self->ds;
}

/* Everything a read needs besides the window and the destination. */
typedef struct {
    int *bands;
    int band_count;
    double *scale, *offset;
    double *mean, *std;             /* the other normalisation: (x - mean) / std */
    raster_read_options_t opt;
} read_args_t;

static void read_args_free(read_args_t *a);

static int
read_args_init(DatasetObject *self, PyObject *bands, int boundless, double fill,
               PyObject *scale, PyObject *offset, read_args_t *a)
{
    memset(a, 0, sizeof *a);
    if (rl_bands_parse(bands, &a->bands, &a->band_count) < 0)
        return -1;
    const int channels = a->bands ? a->band_count : self->info.band_count;
    if (rl_doubles_parse(scale, channels, "scale", "read", &a->scale) < 0 ||
        rl_doubles_parse(offset, channels, "offset", "read", &a->offset) < 0) {
        read_args_free(a);
        return -1;
    }
    raster_read_options_init(&a->opt);
    a->opt.bands = a->bands;
    a->opt.band_count = a->band_count;
    a->opt.boundless = boundless;
    a->opt.fill_value = fill;
    a->opt.scale = a->scale;
    a->opt.offset = a->offset;
    return 0;
}

/* mean=/std= of a read (None: not given); frees 'a' on failure. */
static int
read_args_norm(DatasetObject *self, PyObject *mean, PyObject *std, read_args_t *a)
{
    const int channels = a->bands ? a->band_count : self->info.band_count;
    if (rl_doubles_parse(mean, channels, "mean", "read", &a->mean) < 0 ||
        rl_doubles_parse(std, channels, "std", "read", &a->std) < 0) {
        read_args_free(a);
        return -1;
    }
    a->opt.mean = a->mean;
    a->opt.std = a->std;
    return 0;
}

static void
read_args_free(read_args_t *a)
{
    PyMem_Free(a->bands);
    PyMem_Free(a->scale);
    PyMem_Free(a->offset);
    PyMem_Free(a->mean);
    PyMem_Free(a->std);
    memset(a, 0, sizeof *a);
}

static int
read_args_channels(const DatasetObject *self, const read_args_t *a)
{
    return a->bands ? a->band_count : self->info.band_count;
}

/* ------------------------------ type slots ----------------------------- */

static PyObject *
Dataset_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"path", "reader", NULL};
    PyObject *path_bytes = NULL;
    int reader = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|i:Dataset", kwlist, PyUnicode_FSConverter,
                                     &path_bytes, &reader))
        return NULL;
    DatasetObject *self = (DatasetObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(path_bytes);
        return NULL;
    }
    self->path = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(path_bytes));
    if (self->path == NULL) {
        Py_DECREF(path_bytes);
        Py_DECREF(self);
        return NULL;
    }
    raster_open_options_t opt;
    raster_open_options_init(&opt);
    opt.reader = reader;
    raster_status_t st;
    raster_dataset_t *ds = NULL;
    const char *path = PyBytes_AS_STRING(path_bytes);
    Py_BEGIN_ALLOW_THREADS
    st = raster_open_ex(path, &opt, &ds);
    if (st == RASTER_OK)
        st = raster_dataset_info(ds, &self->info);
    Py_END_ALLOW_THREADS
    if (st != RASTER_OK) {
        rl_raise(st);
        raster_close(ds);
        Py_DECREF(path_bytes);
        Py_DECREF(self);
        return NULL;
    }
    Py_DECREF(path_bytes);
    self->ds = ds;
    return (PyObject *)self;
}

static void
Dataset_dealloc(DatasetObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    raster_close(self->ds);
    self->ds = NULL;
    Py_CLEAR(self->path);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int
Dataset_traverse(DatasetObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

/* ------------------------------ metadata ------------------------------- */

static PyObject *
Dataset_close(DatasetObject *self, PyObject *unused)
{
    raster_dataset_t *ds = self->ds;
    self->ds = NULL;
    raster_close(ds);   /* reads in flight hold their own references */
    Py_RETURN_NONE;
}

static PyObject *
Dataset_info(DatasetObject *self, PyObject *unused)
{
    if (open_or_raise(self) == NULL)
        return NULL;
    const raster_info_t *in = &self->info;
    PyObject *gt = in->has_geotransform
                       ? Py_BuildValue("(dddddd)", in->geotransform[0], in->geotransform[1],
                                       in->geotransform[2], in->geotransform[3],
                                       in->geotransform[4], in->geotransform[5])
                       : Py_NewRef(Py_None);
    PyObject *nodata = in->has_nodata ? PyFloat_FromDouble(in->nodata) : Py_NewRef(Py_None);
    if (gt == NULL || nodata == NULL) {
        Py_XDECREF(gt);
        Py_XDECREF(nodata);
        return NULL;
    }
    return Py_BuildValue(
        "{s:L,s:L,s:i,s:s,s:L,s:L,s:s,s:s,s:s,s:i,s:O,s:N,s:N,s:s,s:i,s:s}", "width",
        (long long)in->width, "height", (long long)in->height, "count", in->band_count, "dtype",
        raster_dtype_name(in->dtype), "block_width", (long long)in->block_width, "block_height",
        (long long)in->block_height, "driver", in->driver, "compression", in->compression,
        "interleave", in->interleave, "predictor", in->predictor, "tiled",
        in->tiled ? Py_True : Py_False, "nodata", nodata, "geotransform", gt, "crs_wkt",
        in->crs_wkt, "overview_count", in->overview_count, "reader",
        in->reader == RASTER_READER_NATIVE_TIFF ? "native" : "gdal");
}

static PyObject *
Dataset_band_info(DatasetObject *self, PyObject *arg)
{
    const int band = (int)PyLong_AsLong(arg);
    if (band == -1 && PyErr_Occurred())
        return NULL;
    raster_dataset_t *ds = open_or_raise(self);
    if (ds == NULL)
        return NULL;
    raster_band_info_t bi;
    const raster_status_t st = raster_band_info(ds, band, &bi);
    if (st != RASTER_OK)
        return rl_raise(st);
    PyObject *nodata = bi.has_nodata ? PyFloat_FromDouble(bi.nodata) : Py_NewRef(Py_None);
    if (nodata == NULL)
        return NULL;
    return Py_BuildValue("{s:s,s:L,s:L,s:N,s:i,s:s}", "dtype", raster_dtype_name(bi.dtype),
                         "block_width", (long long)bi.block_width, "block_height",
                         (long long)bi.block_height, "nodata", nodata, "mask_flags",
                         bi.mask_flags, "color_interp", bi.color_interp);
}

static PyObject *
Dataset_get_closed(DatasetObject *self, void *closure)
{
    return PyBool_FromLong(self->ds == NULL);
}

static PyObject *
Dataset_get_path(DatasetObject *self, void *closure)
{
    return Py_NewRef(self->path);
}

/* ------------------------------ reads ---------------------------------- */

/* One C read: which call, and its window. */
typedef struct read_call {
    raster_status_t (*run)(raster_dataset_t *ds, const struct read_call *c,
                           const raster_read_options_t *opt, const raster_view_t *dst);
    raster_window_t win;            /* image and mask reads */
    raster_window_f_t winf;         /* resampled reads */
    raster_resampling_t alg;
} read_call_t;

static raster_status_t
run_image(raster_dataset_t *ds, const read_call_t *c, const raster_read_options_t *o, const raster_view_t *d)
{
    return raster_read_into(ds, c->win, o, d);
}

static raster_status_t
run_mask(raster_dataset_t *ds, const read_call_t *c, const raster_read_options_t *o, const raster_view_t *d)
{
    return raster_read_mask_into(ds, c->win, o, d);
}

static raster_status_t
run_resampled(raster_dataset_t *ds, const read_call_t *c, const raster_read_options_t *o,
              const raster_view_t *d)
{
    return raster_read_resampled_into(ds, c->winf, c->alg, o, d);
}

static raster_status_t
run_mask_resampled(raster_dataset_t *ds, const read_call_t *c, const raster_read_options_t *o,
                   const raster_view_t *d)
{
    return raster_read_mask_resampled_into(ds, c->winf, c->alg, o, d);
}

/* Runs 'c' straight into the caller's array 'out' of h x w pixels (pinned
 * for the read, GIL released) and frees 'a'.  A new reference to 'out', or
 * NULL with the exception set. */
static PyObject *
read_into_out(DatasetObject *self, const read_call_t *c, read_args_t *a, PyObject *out,
              out_layout_t layout, int64_t h, int64_t w, int channels, int dtype)
{
    out_target_t t;
    if (out_target_acquire(out, layout, h, w, channels, dtype, &t) < 0) {
        rl_prefix_path(self->path);
        read_args_free(a);
        return NULL;
    }
    raster_dataset_t *ds = raster_dataset_retain(self->ds);
    raster_status_t st;
    Py_BEGIN_ALLOW_THREADS
    st = c->run(ds, c, &a->opt, &t.view);
    Py_END_ALLOW_THREADS
    PyObject *result = st == RASTER_OK ? Py_NewRef(out) : rl_raise(st);
    raster_dataset_release(ds);
    out_target_release(&t);
    read_args_free(a);
    return result;
}

static PyObject *
Dataset_read_into(DatasetObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "out", "layout", "bands", "boundless", "fill_value",
                             "scale", "offset", "mean", "std", NULL};
    raster_window_t win;
    PyObject *out, *bands = Py_None, *scale = Py_None, *offset = Py_None;
    PyObject *mean = Py_None, *std = Py_None;
    out_layout_t layout = LAYOUT_HWC;
    int boundless = 0;
    double fill = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O|O&OpdOOOO:read_into", kwlist,
                                     window_converter, &win, &out, layout_converter, &layout,
                                     &bands, &boundless, &fill, &scale, &offset, &mean, &std))
        return NULL;
    if (open_or_raise(self) == NULL)
        return NULL;
    read_args_t a;
    if (read_args_init(self, bands, boundless, fill, scale, offset, &a) < 0 ||
        read_args_norm(self, mean, std, &a) < 0)
        return NULL;
    const int channels = read_args_channels(self, &a);
    if (layout == LAYOUT_HW && channels != 1) {
        read_args_free(&a);
        return rl_raise_status(RASTER_E_INVALID_ARG, "a 2-D out needs exactly one band, not %d",
                               channels);
    }
    const read_call_t c = {run_image, win, {0}, 0};
    return read_into_out(self, &c, &a, out, layout, win.height, win.width, channels, -1);
}

static PyObject *
Dataset_read_resampled_into(DatasetObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "out", "out_hw", "layout", "bands", "resampling", "scale",
                             "offset", "mean", "std", NULL};
    read_call_t c = {run_resampled, {0}, {0}, RASTER_RESAMPLE_NEAREST};
    long long oh, ow;
    int alg = 0;
    PyObject *out, *bands = Py_None, *scale = Py_None, *offset = Py_None;
    PyObject *mean = Py_None, *std = Py_None;
    out_layout_t layout = LAYOUT_HWC;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "(dddd)O(LL)|O&OiOOOO:read_resampled_into", kwlist,
                                     &c.winf.col_off, &c.winf.row_off, &c.winf.width, &c.winf.height,
                                     &out, &oh, &ow, layout_converter, &layout, &bands, &alg, &scale,
                                     &offset, &mean, &std))
        return NULL;
    c.alg = (raster_resampling_t)alg;
    if (open_or_raise(self) == NULL)
        return NULL;
    read_args_t a;
    if (read_args_init(self, bands, 0, 0.0, scale, offset, &a) < 0 ||
        read_args_norm(self, mean, std, &a) < 0)
        return NULL;
    const int channels = read_args_channels(self, &a);
    if (layout == LAYOUT_HW && channels != 1) {
        read_args_free(&a);
        return rl_raise_status(RASTER_E_INVALID_ARG, "a 2-D out needs exactly one band, not %d",
                               channels);
    }
    return read_into_out(self, &c, &a, out, layout, oh, ow, channels, -1);
}

static PyObject *
Dataset_read_mask_resampled_into(DatasetObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "out", "out_hw", "layout", "bands", "resampling", NULL};
    read_call_t c = {run_mask_resampled, {0}, {0}, RASTER_RESAMPLE_NEAREST};
    long long oh, ow;
    int alg = 0;
    PyObject *out, *bands = Py_None;
    out_layout_t layout = LAYOUT_HW;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "(dddd)O(LL)|O&Oi:read_mask_resampled_into", kwlist,
                                     &c.winf.col_off, &c.winf.row_off, &c.winf.width, &c.winf.height,
                                     &out, &oh, &ow, layout_converter, &layout, &bands, &alg))
        return NULL;
    c.alg = (raster_resampling_t)alg;
    if (open_or_raise(self) == NULL)
        return NULL;
    read_args_t a;
    if (read_args_init(self, bands, 0, 0.0, NULL, NULL, &a) < 0)
        return NULL;
    return read_into_out(self, &c, &a, out, layout, oh, ow, 1, RASTER_U8);
}

static PyObject *
Dataset_read_mask_into(DatasetObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "out", "layout", "bands", "boundless", NULL};
    raster_window_t win;
    PyObject *out, *bands = Py_None;
    out_layout_t layout = LAYOUT_HW;
    int boundless = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O|O&Op:read_mask_into", kwlist,
                                     window_converter, &win, &out, layout_converter, &layout,
                                     &bands, &boundless))
        return NULL;
    if (open_or_raise(self) == NULL)
        return NULL;
    read_args_t a;
    if (read_args_init(self, bands, boundless, 0.0, NULL, NULL, &a) < 0)
        return NULL;
    const read_call_t c = {run_mask, win, {0}, 0};
    return read_into_out(self, &c, &a, out, layout, win.height, win.width, 1, RASTER_U8);
}

/* The masks options of a read: rule, bands (a PyMem array in *bands_out,
 * caller frees), boundless, the nodata value to compare (None: none). */
static int
masks_options_init(PyObject *bands, int rule, int boundless, PyObject *nodata, raster_masks_options_t *o,
                   int **bands_out)
{
    raster_masks_options_init(o);
    *bands_out = NULL;
    if (rl_bands_parse(bands, bands_out, &o->band_count) < 0)
        return -1;
    o->bands = *bands_out;
    o->rule = rule;
    o->boundless = boundless;
    if (nodata != Py_None) {
        o->nodata = PyFloat_AsDouble(nodata);
        if (o->nodata == -1.0 && PyErr_Occurred()) {
            PyMem_Free(*bands_out);
            *bands_out = NULL;
            return -1;
        }
        o->has_nodata = 1;
    }
    return 0;
}

static int
masks_channels(const DatasetObject *self, const raster_masks_options_t *o)
{
    return o->rule == RASTER_MASKS_DATASET ? 1 : o->bands ? o->band_count : self->info.band_count;
}

static PyObject *
Dataset_read_masks_into(DatasetObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "out", "layout", "rule", "bands", "boundless", "nodata", "pixels",
                             "pixels_layout", NULL};
    raster_window_t win;
    PyObject *out, *bands = Py_None, *nodata = Py_None, *pixels = Py_None;
    out_layout_t layout = LAYOUT_CHW, pixels_layout = LAYOUT_CHW;
    int rule = RASTER_MASKS_BANDS, boundless = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O|O&iOpOOO&:read_masks_into", kwlist, window_converter,
                                     &win, &out, layout_converter, &layout, &rule, &bands, &boundless, &nodata,
                                     &pixels, layout_converter, &pixels_layout))
        return NULL;
    if (open_or_raise(self) == NULL)
        return NULL;
    raster_masks_options_t o;
    int *band_list;
    if (masks_options_init(bands, rule, boundless, nodata, &o, &band_list) < 0)
        return NULL;
    const int channels = masks_channels(self, &o);
    const int pixel_channels = o.bands ? o.band_count : self->info.band_count;
    out_target_t t, pt;
    int have_pixels = 0;
    if (out_target_acquire(out, layout, win.height, win.width, channels, RASTER_U8, &t) < 0) {
        rl_prefix_path(self->path);
        PyMem_Free(band_list);
        return NULL;
    }
    if (pixels != Py_None) {
        if (out_target_acquire(pixels, pixels_layout, win.height, win.width, pixel_channels, -1, &pt) < 0) {
            rl_prefix_path(self->path);
            out_target_release(&t);
            PyMem_Free(band_list);
            return NULL;
        }
        have_pixels = 1;
    }
    raster_dataset_t *ds = raster_dataset_retain(self->ds);
    raster_status_t st;
    int no_mask = 0;
    Py_BEGIN_ALLOW_THREADS
    st = raster_read_masks_into(ds, win, &o, have_pixels ? &pt.view : NULL, &t.view, &no_mask);
    Py_END_ALLOW_THREADS
    PyObject *result = st == RASTER_OK ? PyBool_FromLong(no_mask) : rl_raise(st);
    raster_dataset_release(ds);
    if (have_pixels)
        out_target_release(&pt);
    out_target_release(&t);
    PyMem_Free(band_list);
    return result;
}

static PyObject *
Dataset_read_masks_resampled_into(DatasetObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "out", "out_hw", "layout", "rule", "bands", "resampling", NULL};
    raster_window_f_t winf;
    long long oh, ow;
    int alg = 0, rule = RASTER_MASKS_BANDS;
    PyObject *out, *bands = Py_None;
    out_layout_t layout = LAYOUT_CHW;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "(dddd)O(LL)|O&iOi:read_masks_resampled_into", kwlist,
                                     &winf.col_off, &winf.row_off, &winf.width, &winf.height, &out, &oh, &ow,
                                     layout_converter, &layout, &rule, &bands, &alg))
        return NULL;
    if (open_or_raise(self) == NULL)
        return NULL;
    raster_masks_options_t o;
    int *band_list;
    if (masks_options_init(bands, rule, 0, Py_None, &o, &band_list) < 0)
        return NULL;
    out_target_t t;
    if (out_target_acquire(out, layout, oh, ow, masks_channels(self, &o), RASTER_U8, &t) < 0) {
        rl_prefix_path(self->path);
        PyMem_Free(band_list);
        return NULL;
    }
    raster_dataset_t *ds = raster_dataset_retain(self->ds);
    raster_status_t st;
    int no_mask = 0;
    Py_BEGIN_ALLOW_THREADS
    st = raster_read_masks_resampled_into(ds, winf, (raster_resampling_t)alg, &o, &t.view, &no_mask);
    Py_END_ALLOW_THREADS
    PyObject *result = st == RASTER_OK ? PyBool_FromLong(no_mask) : rl_raise(st);
    raster_dataset_release(ds);
    out_target_release(&t);
    PyMem_Free(band_list);
    return result;
}

static PyObject *
Dataset_read_tile(DatasetObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "pool", "dtype", "bands", "boundless", "fill_value",
                             "scale", "offset", "timeout_ms", "mean", "std", "out_hw", "resampling",
                             NULL};
    raster_window_t win;
    PyObject *pool_obj, *bands = Py_None, *scale = Py_None, *offset = Py_None;
    PyObject *mean = Py_None, *std = Py_None, *out_hw = Py_None;
    raster_dtype_t dtype;
    int boundless = 0, timeout_ms = -1, alg = 0;
    double fill = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O!O&|OpdOOiOOOi:read_tile", kwlist,
                                     window_converter, &win, Pool_Type, &pool_obj,
                                     dtype_converter, &dtype, &bands, &boundless, &fill, &scale,
                                     &offset, &timeout_ms, &mean, &std, &out_hw, &alg))
        return NULL;
    /* out_hw: a resampled read of the window to that size (rasterio's out_shape). */
    long long oh = win.height, ow = win.width;
    if (out_hw != Py_None && !PyArg_ParseTuple(out_hw, "LL;out_hw must be (height, width)", &oh, &ow))
        return NULL;
    const int resampled = oh != win.height || ow != win.width;
    if (open_or_raise(self) == NULL)
        return NULL;
    if (win.width < 1 || win.height < 1)
        return rl_raise_status(RASTER_E_INVALID_ARG,
                               "%U: window (col %lld, row %lld, %lldx%lld) must have width and "
                               "height >= 1",
                               self->path, (long long)win.col_off, (long long)win.row_off,
                               (long long)win.width, (long long)win.height);
    if (oh < 1 || ow < 1)
        return rl_raise_status(RASTER_E_INVALID_ARG, "%U: out_hw (%lld, %lld) must be >= 1 each",
                               self->path, oh, ow);
    read_args_t a;
    if (read_args_init(self, bands, boundless, fill, scale, offset, &a) < 0 ||
        read_args_norm(self, mean, std, &a) < 0)
        return NULL;
    const int channels = read_args_channels(self, &a);
    const raster_window_f_t winf = {(double)win.col_off, (double)win.row_off, (double)win.width,
                                    (double)win.height};
    PoolObject *po = (PoolObject *)pool_obj;
    raster_pool_t *pool = pool_enter(po);
    if (pool == NULL) {
        read_args_free(&a);
        return NULL;
    }
    raster_dataset_t *ds = raster_dataset_retain(self->ds);
    raster_buffer_t *buf = NULL;
    raster_status_t st;
    /* Waiting for the pool (back-pressure) and reading both happen without
     * the GIL, so other threads run while this one is blocked. */
    Py_BEGIN_ALLOW_THREADS
    st = raster_pool_acquire(pool, dtype, 1, oh, ow, channels, timeout_ms, &buf);
    if (st == RASTER_OK) {
        raster_view_t v;
        st = raster_buffer_view(buf, 0, &v);
        if (st == RASTER_OK)
            st = resampled ? raster_read_resampled_into(ds, winf, (raster_resampling_t)alg, &a.opt, &v)
                           : raster_read_into(ds, win, &a.opt, &v);
    }
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (st != RASTER_OK) {
        rl_raise(st);
        raster_buffer_release(buf);
    } else {
        result = tile_new(buf, dtype, oh, ow, channels);
    }
    raster_dataset_release(ds);
    pool_leave(po);
    read_args_free(&a);
    return result;
}

static PyObject *
Dataset_enter(DatasetObject *self, PyObject *unused)
{
    return Py_NewRef(self);
}

static PyObject *
Dataset_exit(DatasetObject *self, PyObject *args)
{
    return Dataset_close(self, NULL);
}

static PyObject *
Dataset_repr(DatasetObject *self)
{
    return PyUnicode_FromFormat("<rasterloader._core.Dataset %R%s>", self->path,
                                self->ds == NULL ? " closed" : "");
}

static PyMethodDef Dataset_methods[] = {
    {"close", (PyCFunction)Dataset_close, METH_NOARGS, "close() releases the file; idempotent."},
    {"info", (PyCFunction)Dataset_info, METH_NOARGS, "info() -> dict of dataset metadata"},
    {"band_info", (PyCFunction)Dataset_band_info, METH_O, "band_info(band) -> dict (1-based)"},
    {"read_resampled_into", (PyCFunction)(void (*)(void))Dataset_read_resampled_into,
     METH_VARARGS | METH_KEYWORDS,
     "read_resampled_into(window, out, out_hw, layout='hwc', bands=None, resampling=0,\n"
     "                    scale=None, offset=None, mean=None, std=None) -> out\n\n"
     "rasterio's read(out_shape=...): window=(col_off, row_off, width, height) as floats,\n"
     "resampled by GDAL into 'out' of out_hw=(height, width) pixels; resampling is a\n"
     "rasterio Resampling value."},
    {"read_mask_resampled_into", (PyCFunction)(void (*)(void))Dataset_read_mask_resampled_into,
     METH_VARARGS | METH_KEYWORDS,
     "read_mask_resampled_into(window, out, out_hw, layout='hw', bands=None, resampling=0) -> out\n\n"
     "rasterio's read_masks/dataset_mask(out_shape=...): the uint8 mask (of one band, or\n"
     "the dataset's) resampled by GDAL from the float window to out_hw=(height, width)."},
    {"read_into", (PyCFunction)(void (*)(void))Dataset_read_into, METH_VARARGS | METH_KEYWORDS,
     "read_into(window, out, layout='hwc', bands=None, boundless=False, fill_value=0.0,\n"
     "          scale=None, offset=None, mean=None, std=None) -> out\n\n"
     "Read window=(col_off, row_off, width, height) into 'out' in place (numpy array or\n"
     "DLPack tensor; layout 'hwc', 'chw' or 'hw'), converting to out's dtype."},
    {"read_mask_into", (PyCFunction)(void (*)(void))Dataset_read_mask_into,
     METH_VARARGS | METH_KEYWORDS,
     "read_mask_into(window, out, layout='hw', bands=None, boundless=False) -> out\n\n"
     "uint8 validity mask: one band -> that band's mask; None -> the dataset mask."},
    {"read_masks_into", (PyCFunction)(void (*)(void))Dataset_read_masks_into, METH_VARARGS | METH_KEYWORDS,
     "read_masks_into(window, out, layout='chw', rule=MASKS_BANDS, bands=None, boundless=False,\n"
     "                nodata=None, pixels=None, pixels_layout='chw') -> no_mask\n\n"
     "A whole read's uint8 masks with rasterio's rules in one call (raster_read_masks_into):\n"
     "rule MASKS_BANDS (read_masks), MASKS_READ (read(masked=True); pixels: the read's\n"
     "image, used where a rule compares pixels with nodata) or MASKS_DATASET (one channel).\n"
     "Returns True when rasterio would give no mask at all (numpy.ma.nomask)."},
    {"read_masks_resampled_into", (PyCFunction)(void (*)(void))Dataset_read_masks_resampled_into,
     METH_VARARGS | METH_KEYWORDS,
     "read_masks_resampled_into(window, out, out_hw, layout='chw', rule=MASKS_BANDS, bands=None,\n"
     "                          resampling=0) -> no_mask\n\n"
     "read_masks_into() for a resampled read: window as floats, masks resampled by GDAL to\n"
     "out_hw (raster_read_masks_resampled_into)."},
    {"read_tile", (PyCFunction)(void (*)(void))Dataset_read_tile, METH_VARARGS | METH_KEYWORDS,
     "read_tile(window, pool, dtype, bands=None, boundless=False, fill_value=0.0,\n"
     "          scale=None, offset=None, timeout_ms=-1, mean=None, std=None, out_hw=None,\n"
     "          resampling=0) -> Tile (out_hw: resampled to that size)"},
    {"__enter__", (PyCFunction)Dataset_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Dataset_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Dataset_getset[] = {
    {"closed", (getter)Dataset_get_closed, NULL, "True after close()", NULL},
    {"path", (getter)Dataset_get_path, NULL, "the path it was opened with", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Dataset_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(DatasetObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Dataset_slots[] = {
    {Py_tp_new, Dataset_new},
    {Py_tp_dealloc, Dataset_dealloc},
    {Py_tp_traverse, Dataset_traverse},
    {Py_tp_repr, Dataset_repr},
    {Py_tp_methods, Dataset_methods},
    {Py_tp_getset, Dataset_getset},
    {Py_tp_members, Dataset_members},
    {Py_tp_doc, (void *)"Dataset(path, reader=-1): the C reader under rasterloader.open()."},
    {0, NULL},
};

static PyType_Spec Dataset_spec = {
    .name = "rasterloader._core.Dataset",
    .basicsize = sizeof(DatasetObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Dataset_slots,
};

int
dataset_type_init(PyObject *m)
{
    Dataset_Type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Dataset_spec, NULL);
    if (Dataset_Type == NULL)
        return -1;
    return PyModule_AddObjectRef(m, "Dataset", (PyObject *)Dataset_Type);
}
