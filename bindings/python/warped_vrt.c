/*
 * warped_vrt.c - rasterloader._core.open_warped() and warp_info(): the
 * binding of raster_open_warped().  The result is an ordinary
 * rasterloader._core.Dataset (every read method works on it); the
 * rasterio-style class is rasterloader.vrt.WarpedVRT.  Arguments arrive
 * already translated by rasterloader/vrt.py (CRS as text, transforms in GDAL
 * order, nodata as a mode and a value); the rules are the C library's.
 */
#include "binding.h"

#include <string.h>

static int
gt_parse(PyObject *o, const char *what, int *has, double gt[6])
{
    *has = 0;
    if (o == Py_None)
        return 0;
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 6) {
        PyErr_Format(PyExc_TypeError, "%s must be a 6-tuple in GDAL order or None, not %R", what, o);
        return -1;
    }
    for (int i = 0; i < 6; i++) {
        gt[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(o, i));
        if (gt[i] == -1.0 && PyErr_Occurred())
            return -1;
    }
    *has = 1;
    return 0;
}

/* A list of "KEY=VALUE" str -> NULL-terminated array of UTF-8 views kept
 * alive by the list (the caller holds it for the call). */
static int
extras_parse(PyObject *o, const char ***out)
{
    *out = NULL;
    if (o == Py_None)
        return 0;
    if (!PyList_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "warp_extras must be a list of 'KEY=VALUE' str");
        return -1;
    }
    const Py_ssize_t n = PyList_GET_SIZE(o);
    const char **v = PyMem_Calloc((size_t)n + 1, sizeof *v);
    if (v == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        v[i] = PyUnicode_AsUTF8(PyList_GET_ITEM(o, i));
        if (v[i] == NULL) {
            PyMem_Free(v);
            return -1;
        }
    }
    *out = v;
    return 0;
}

PyObject *
mod_open_warped(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    (void)mod;
    static char *kwlist[] = {"src", "crs", "src_crs", "resampling", "tolerance", "transform",
                             "src_transform", "width", "height", "src_nodata_mode", "src_nodata",
                             "nodata_mode", "nodata", "add_alpha", "src_alpha", "dst_alpha",
                             "init_dest_nodata", "warp_mem_limit", "working_dtype", "warp_extras",
                             NULL};
    PyObject *src, *transform = Py_None, *src_transform = Py_None, *extras = Py_None;
    const char *crs = NULL, *src_crs = NULL;
    raster_warp_options_t o;
    raster_warp_options_init(&o);
    long long width = 0, height = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!|zzidOOLLididpiipiiO:open_warped", kwlist,
                                     Dataset_Type, &src, &crs, &src_crs, &o.resampling,
                                     &o.tolerance, &transform, &src_transform, &width, &height,
                                     &o.src_nodata_mode, &o.src_nodata, &o.nodata_mode, &o.nodata,
                                     &o.add_alpha, &o.src_alpha, &o.dst_alpha, &o.init_dest_nodata,
                                     &o.warp_mem_limit_mb, &o.working_dtype, &extras))
        return NULL;
    DatasetObject *s = (DatasetObject *)src;
    if (s->ds == NULL)
        return rl_raise_status(RASTER_E_CLOSED, "%U: dataset is closed", s->path);
    o.crs = crs, o.src_crs = src_crs, o.width = width, o.height = height;
    const char **ex = NULL;
    if (gt_parse(transform, "transform", &o.has_transform, o.transform) < 0 ||
        gt_parse(src_transform, "src_transform", &o.has_src_transform, o.src_transform) < 0 ||
        extras_parse(extras, &ex) < 0)
        return NULL;
    o.warp_extras = ex;
    DatasetObject *self = (DatasetObject *)Dataset_Type->tp_alloc(Dataset_Type, 0);
    if (self == NULL) {
        PyMem_Free(ex);
        return NULL;
    }
    raster_dataset_t *src_ds = raster_dataset_retain(s->ds), *ds = NULL;
    raster_status_t st;
    Py_BEGIN_ALLOW_THREADS
    st = raster_open_warped(src_ds, &o, &ds);
    if (st == RASTER_OK)
        st = raster_dataset_info(ds, &self->info);
    Py_END_ALLOW_THREADS
    raster_dataset_release(src_ds);
    PyMem_Free(ex);
    if (st != RASTER_OK) {
        rl_raise(st);
        raster_close(ds);
        Py_DECREF(self);
        return NULL;
    }
    self->ds = ds;
    self->path = PyUnicode_FromFormat("WarpedVRT(%U)", s->path);
    if (self->path == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *
nodata_obj(int has, double v)
{
    if (!has)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(v);
}

PyObject *
mod_warp_info(PyObject *mod, PyObject *arg)
{
    (void)mod;
    if (!PyObject_TypeCheck(arg, Dataset_Type))
        return PyErr_Format(PyExc_TypeError, "warp_info() takes a Dataset, not %.100s",
                            Py_TYPE(arg)->tp_name);
    DatasetObject *d = (DatasetObject *)arg;
    if (d->ds == NULL)
        return rl_raise_status(RASTER_E_CLOSED, "%U: dataset is closed", d->path);
    raster_warp_info_t in;
    const raster_status_t st = raster_warp_info(d->ds, &in);
    if (st != RASTER_OK)
        return rl_raise(st);
    PyObject *src_nd = nodata_obj(in.has_src_nodata, in.src_nodata);
    PyObject *nd = nodata_obj(in.has_nodata, in.nodata);
    PyObject *r = NULL;
    if (src_nd && nd)
        r = Py_BuildValue("{s:O,s:O,s:z,s:i,s:i,s:s}", "src_nodata", src_nd, "nodata", nd,
                          "init_dest", in.init_dest, "src_alpha_band", in.src_alpha_band,
                          "dst_alpha_band", in.dst_alpha_band, "src_crs_wkt", in.src_crs_wkt);
    Py_XDECREF(src_nd);
    Py_XDECREF(nd);
    return r;
}
