/*
 * dataset_type.c - rasterloader._core.Dataset: an open raster and its reads.
 *
 * The low-level reader under rasterloader.Dataset (the rasterio-style class
 * in rasterloader/_dataset.py).  Windows arrive resolved once by Python, as
 * float (col_off, row_off, width, height); every read writes into memory pinned
 * beforehand (a caller's array or tensor, or a pool buffer) with the GIL
 * released, holding its own C reference on the dataset so that close() on
 * another thread cannot free it mid-read.
 */
#include "binding.h"

#include <structmember.h>

#include <math.h>
#include <string.h>

PyTypeObject *Dataset_Type;

/* ------------------------------ helpers -------------------------------- */

static raster_dataset_t *
open_or_raise(DatasetObject *self)
{
    if (self->ds == NULL)
        rl_raise_status(RASTER_E_CLOSED, "%U: dataset is closed", self->path);
    return self->ds;
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

/* Every read takes the window as Python resolved it, once, as floats
 * (col_off, row_off, width, height) and the output size out_hw; the library
 * decides whether that is a plain or a resampled read
 * (raster_read_window_into).  Each method pins its destination, releases
 * the GIL and holds its own C reference on the dataset for the call. */

/* An out_hw argument: (height, width), or None for the window's own size
 * (the rounded lengths, as the library rounds them for a plain read). */
static int
out_hw_parse(PyObject *o, raster_window_f_t win, long long *h, long long *w)
{
    if (o == Py_None) {
        *h = (long long)floor(win.height + 0.5);
        *w = (long long)floor(win.width + 0.5);
        return 0;
    }
    return PyArg_ParseTuple(o, "LL;out_hw must be (height, width)", h, w) ? 0 : -1;
}

/* A read's fill_value: a number, or None for no fill value (0 outside; see
 * raster_read_options_t.fill_none).  Sets a->opt after rl_read_args_parse. */
static int
fill_parse(PyObject *o, double *fill, int *none)
{
    *none = o == Py_None;
    *fill = *none ? 0.0 : PyFloat_AsDouble(o);
    return *fill == -1.0 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *
Dataset_read_into(DatasetObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "out", "out_hw", "layout", "bands", "boundless", "fill_value",
                             "resampling", "scale", "offset", "mean", "std", NULL};
    raster_window_f_t win;
    PyObject *out, *out_hw = Py_None, *bands = Py_None, *scale = Py_None, *offset = Py_None;
    PyObject *mean = Py_None, *std = Py_None;
    out_layout_t layout = LAYOUT_HWC;
    PyObject *fill_obj = Py_None;
    int boundless = 0, alg = RASTER_RESAMPLE_NEAREST;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O|OO&OpOiOOOO:read_into", kwlist,
                                     rl_window_f_converter, &win, &out, &out_hw, layout_converter,
                                     &layout, &bands, &boundless, &fill_obj, &alg, &scale, &offset, &mean,
                                     &std))
        return NULL;
    double fill;
    int fill_none;
    if (fill_parse(fill_obj, &fill, &fill_none) < 0)
        return NULL;
    long long oh, ow;
    if (out_hw_parse(out_hw, win, &oh, &ow) < 0 || open_or_raise(self) == NULL)
        return NULL;
    rl_read_args_t a;
    if (rl_read_args_parse(bands, self->info.band_count, boundless, fill, scale, offset, mean, std,
                           "read", &a) < 0)
        return NULL;
    a.opt.fill_none = fill_none;
    if (layout == LAYOUT_HW && a.channels != 1) {
        rl_read_args_free(&a);
        return rl_raise_status(RASTER_E_INVALID_ARG, "a 2-D out needs exactly one band, not %d",
                               a.channels);
    }
    out_target_t t;
    if (out_target_acquire(out, layout, oh, ow, a.channels, -1, &t) < 0) {
        rl_prefix_path(self->path);
        rl_read_args_free(&a);
        return NULL;
    }
    raster_dataset_t *ds = raster_dataset_retain(self->ds);
    raster_status_t st;
    Py_BEGIN_ALLOW_THREADS
    st = raster_read_window_into(ds, win, (raster_resampling_t)alg, &a.opt, &t.view);
    Py_END_ALLOW_THREADS
    PyObject *result = st == RASTER_OK ? Py_NewRef(out) : rl_raise(st);
    raster_dataset_release(ds);
    out_target_release(&t);
    rl_read_args_free(&a);
    return result;
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
    static char *kwlist[] = {"window", "out", "out_hw", "layout", "rule", "bands", "boundless", "nodata",
                             "pixels", "pixels_layout", "resampling", NULL};
    raster_window_f_t win;
    PyObject *out, *out_hw = Py_None, *bands = Py_None, *nodata = Py_None, *pixels = Py_None;
    out_layout_t layout = LAYOUT_CHW, pixels_layout = LAYOUT_CHW;
    int rule = RASTER_MASKS_BANDS, boundless = 0, alg = RASTER_RESAMPLE_NEAREST;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O|OO&iOpOOO&i:read_masks_into", kwlist,
                                     rl_window_f_converter, &win, &out, &out_hw, layout_converter,
                                     &layout, &rule, &bands, &boundless, &nodata, &pixels,
                                     layout_converter, &pixels_layout, &alg))
        return NULL;
    long long oh, ow;
    if (out_hw_parse(out_hw, win, &oh, &ow) < 0 || open_or_raise(self) == NULL)
        return NULL;
    raster_masks_options_t o;
    int *band_list;
    if (masks_options_init(bands, rule, boundless, nodata, &o, &band_list) < 0)
        return NULL;
    const int pixel_channels = o.bands ? o.band_count : self->info.band_count;
    out_target_t t, pt;
    int have_pixels = 0;
    if (out_target_acquire(out, layout, oh, ow, masks_channels(self, &o), RASTER_U8, &t) < 0) {
        rl_prefix_path(self->path);
        PyMem_Free(band_list);
        return NULL;
    }
    if (pixels != Py_None) {
        if (out_target_acquire(pixels, pixels_layout, oh, ow, pixel_channels, -1, &pt) < 0) {
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
    st = raster_read_masks_window_into(ds, win, (raster_resampling_t)alg, &o, have_pixels ? &pt.view : NULL,
                                       &t.view, &no_mask);
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
Dataset_read_tile(DatasetObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"window", "pool", "dtype", "bands", "boundless", "fill_value",
                             "scale", "offset", "timeout_ms", "mean", "std", "out_hw", "resampling",
                             NULL};
    raster_window_f_t win;
    PyObject *pool_obj, *bands = Py_None, *scale = Py_None, *offset = Py_None;
    PyObject *mean = Py_None, *std = Py_None, *out_hw = Py_None;
    raster_dtype_t dtype;
    PyObject *fill_obj = Py_None;
    int boundless = 0, timeout_ms = -1, alg = RASTER_RESAMPLE_NEAREST, fill_none;
    double fill;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O!O&|OpOOOiOOOi:read_tile", kwlist,
                                     rl_window_f_converter, &win, Pool_Type, &pool_obj,
                                     dtype_converter, &dtype, &bands, &boundless, &fill_obj, &scale,
                                     &offset, &timeout_ms, &mean, &std, &out_hw, &alg) ||
        fill_parse(fill_obj, &fill, &fill_none) < 0)
        return NULL;
    long long oh, ow;
    if (out_hw_parse(out_hw, win, &oh, &ow) < 0 || open_or_raise(self) == NULL)
        return NULL;
    /* A pooled Tile is never empty: refuse what would be one before waiting for the pool. */
    if (!(win.width >= 1 && win.height >= 1)) {
        char text[160];     /* PyUnicode_FromFormat has no %g */
        PyOS_snprintf(text, sizeof text, "(col %g, row %g, %gx%g)", win.col_off, win.row_off, win.width,
                      win.height);
        return rl_raise_status(RASTER_E_INVALID_ARG, "%U: window %s must have width and height >= 1",
                               self->path, text);
    }
    if (oh < 1 || ow < 1)
        return rl_raise_status(RASTER_E_INVALID_ARG, "%U: out_hw (%lld, %lld) must be >= 1 each",
                               self->path, oh, ow);
    rl_read_args_t a;
    if (rl_read_args_parse(bands, self->info.band_count, boundless, fill, scale, offset, mean, std,
                           "read", &a) < 0)
        return NULL;
    a.opt.fill_none = fill_none;
    PoolObject *po = (PoolObject *)pool_obj;
    raster_pool_t *pool = pool_enter(po);
    if (pool == NULL) {
        rl_read_args_free(&a);
        return NULL;
    }
    raster_dataset_t *ds = raster_dataset_retain(self->ds);
    raster_buffer_t *buf = NULL;
    raster_status_t st;
    /* Waiting for the pool (back-pressure) and reading both happen without
     * the GIL, so other threads run while this one is blocked. */
    Py_BEGIN_ALLOW_THREADS
    st = raster_pool_acquire(pool, dtype, 1, oh, ow, a.channels, timeout_ms, &buf);
    if (st == RASTER_OK) {
        raster_view_t v;
        st = raster_buffer_view(buf, 0, &v);
        if (st == RASTER_OK)
            st = raster_read_window_into(ds, win, (raster_resampling_t)alg, &a.opt, &v);
    }
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (st != RASTER_OK) {
        rl_raise(st);
        raster_buffer_release(buf);
    } else {
        result = tile_new(buf, dtype, oh, ow, a.channels);
    }
    raster_dataset_release(ds);
    pool_leave(po);
    rl_read_args_free(&a);
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
    {"read_into", (PyCFunction)(void (*)(void))Dataset_read_into, METH_VARARGS | METH_KEYWORDS,
     "read_into(window, out, out_hw=None, layout='hwc', bands=None, boundless=False,\n"
     "          fill_value=None, resampling=0, scale=None, offset=None, mean=None, std=None) -> out\n\n"
     "Read window=(col_off, row_off, width, height) (floats; rasterio's window, resolved)\n"
     "into 'out' in place (numpy array or DLPack tensor; layout 'hwc', 'chw' or 'hw') of\n"
     "out_hw=(height, width) pixels (None: the window's), converting to out's dtype.  The\n"
     "library reads it plain or resampled with 'resampling' (raster_read_window_into)."},
    {"read_masks_into", (PyCFunction)(void (*)(void))Dataset_read_masks_into, METH_VARARGS | METH_KEYWORDS,
     "read_masks_into(window, out, out_hw=None, layout='chw', rule=MASKS_BANDS, bands=None,\n"
     "                boundless=False, nodata=None, pixels=None, pixels_layout='chw',\n"
     "                resampling=0) -> no_mask\n\n"
     "A whole read's uint8 masks with rasterio's rules in one call\n"
     "(raster_read_masks_window_into): rule MASKS_BANDS (read_masks), MASKS_READ\n"
     "(read(masked=True); pixels: the read's image, used where a rule compares pixels with\n"
     "nodata) or MASKS_DATASET (one channel); plain or resampled as read_into decides.\n"
     "Returns True when rasterio would give no mask at all (numpy.ma.nomask)."},
    {"read_tile", (PyCFunction)(void (*)(void))Dataset_read_tile, METH_VARARGS | METH_KEYWORDS,
     "read_tile(window, pool, dtype, bands=None, boundless=False, fill_value=None,\n"
     "          scale=None, offset=None, timeout_ms=-1, mean=None, std=None, out_hw=None,\n"
     "          resampling=0) -> Tile (read_into's read, into a pooled buffer)"},
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
