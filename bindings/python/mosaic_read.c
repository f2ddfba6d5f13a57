/*
 * mosaic_read.c - _core.mosaic_read(items): one mosaic query's source reads
 * (raster_mosaic_read_source) in one call with the GIL released once.
 *
 * Each item is (dataset, band, (col_off, row_off, width, height), out,
 * resampling, composite, nodata, src_nodata or None), where out is the
 * source's 2-D channel slice of the destination (a strided numpy view or any
 * DLPack producer; never copied).  rasterloader.Mosaic computes the items
 * (merge's windows and rectangles); the items run in order, so "first"
 * compositing sees the earlier sources' pixels.
 */
#include "binding.h"

typedef struct {
    DatasetObject *ds;          /* borrowed from the items list (kept alive by it) */
    raster_dataset_t *cds;      /* retained for the GIL-free part */
    int band, alg, composite, has_src_nodata;
    raster_window_f_t win;
    double nodata, src_nodata;
    out_target_t out;
    int has_out;
} source_read_t;

static void
reads_free(source_read_t *r, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (r[i].has_out)
            out_target_release(&r[i].out);
        raster_dataset_release(r[i].cds);
    }
    PyMem_Free(r);
}

static int
item_parse(PyObject *item, source_read_t *r)
{
    PyObject *ds, *out, *snd;
    if (!PyArg_ParseTuple(item, "O!i(dddd)OiidO:mosaic_read item", Dataset_Type, &ds, &r->band,
                          &r->win.col_off, &r->win.row_off, &r->win.width, &r->win.height, &out,
                          &r->alg, &r->composite, &r->nodata, &snd))
        return -1;
    r->ds = (DatasetObject *)ds;
    if (r->ds->ds == NULL) {
        rl_raise_status(RASTER_E_CLOSED, "%U: dataset is closed", r->ds->path);
        return -1;
    }
    r->has_src_nodata = snd != Py_None;
    if (r->has_src_nodata && (r->src_nodata = PyFloat_AsDouble(snd)) == -1.0 && PyErr_Occurred())
        return -1;
    /* The slice's own shape is the rectangle; only its layout is checked. */
    if (!PyObject_HasAttrString(out, "shape")) {
        PyErr_SetString(PyExc_TypeError, "mosaic_read: out must be a 2-D array or tensor");
        return -1;
    }
    PyObject *shape = PyObject_GetAttrString(out, "shape");
    long long h = -1, w = -1;
    if (shape != NULL && PyTuple_Check(shape) && PyTuple_GET_SIZE(shape) == 2) {
        h = PyLong_AsLongLong(PyTuple_GET_ITEM(shape, 0));
        w = PyLong_AsLongLong(PyTuple_GET_ITEM(shape, 1));
    }
    Py_XDECREF(shape);
    if (h < 0 || w < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "mosaic_read: out must be 2-D");
        return -1;
    }
    if (out_target_acquire(out, LAYOUT_HW, h, w, 1, -1, &r->out) < 0)
        return -1;
    r->has_out = 1;
    r->cds = raster_dataset_retain(r->ds->ds);
    return 0;
}

PyObject *
mod_mosaic_read(PyObject *mod, PyObject *arg)
{
    (void)mod;
    PyObject *seq = PySequence_Fast(arg, "mosaic_read() takes a list of items");
    if (seq == NULL)
        return NULL;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    source_read_t *r = PyMem_Calloc(n ? (size_t)n : 1, sizeof *r);
    if (r == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    Py_ssize_t parsed = 0;
    for (; parsed < n; parsed++)
        if (item_parse(PySequence_Fast_GET_ITEM(seq, parsed), &r[parsed]) < 0) {
            reads_free(r, parsed + 1);
            Py_DECREF(seq);
            return NULL;
        }
    raster_status_t st = RASTER_OK;
    Py_ssize_t failed = -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && st == RASTER_OK; i++) {
        st = raster_mosaic_read_source(r[i].cds, r[i].band, r[i].win,
                                       (raster_resampling_t)r[i].alg,
                                       (raster_composite_t)r[i].composite, r[i].nodata,
                                       r[i].has_src_nodata, r[i].src_nodata, &r[i].out.view);
        if (st != RASTER_OK)
            failed = i;
    }
    Py_END_ALLOW_THREADS
    (void)failed;
    PyObject *res = st == RASTER_OK ? Py_NewRef(Py_None) : rl_raise(st);
    reads_free(r, n);
    Py_DECREF(seq);
    return res;
}

/* pool_tile(pool, dtype, h, w, c, timeout_ms) -> an unwritten pooled Tile:
 * Mosaic.read_hwc() acquires it, then mosaic_read() writes every pixel of
 * it (each source into its channel slice, nodata where none covers). */
PyObject *
mod_pool_tile(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *pool_obj;
    raster_dtype_t dtype;
    long long h, w, c;
    int timeout_ms;
    if (!PyArg_ParseTuple(args, "O!O&LLLi:pool_tile", Pool_Type, &pool_obj, dtype_converter, &dtype,
                          &h, &w, &c, &timeout_ms))
        return NULL;
    if (h < 1 || w < 1 || c < 1)
        return rl_raise_status(RASTER_E_INVALID_ARG, "pool_tile: shape (%lld, %lld, %lld) must be "
                               ">= 1 each", h, w, c);
    PoolObject *po = (PoolObject *)pool_obj;
    raster_pool_t *pool = pool_enter(po);
    if (pool == NULL)
        return NULL;
    raster_buffer_t *buf = NULL;
    raster_status_t st;
    Py_BEGIN_ALLOW_THREADS
    st = raster_pool_acquire(pool, dtype, 1, h, w, c, timeout_ms, &buf);
    Py_END_ALLOW_THREADS
    pool_leave(po);
    if (st != RASTER_OK)
        return rl_raise(st);
    return tile_new(buf, dtype, h, w, c);
}
