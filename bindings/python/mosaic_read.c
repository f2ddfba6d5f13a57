/*
 * mosaic_read.c - _core.mosaic_read(items): one mosaic query's source reads
 * (raster_mosaic_read_source) in one call with the GIL released once.
 *
 * Each item is (dataset, band, (col_off, row_off, width, height), out,
 * resampling, composite, nodata, src_nodata or None, lane), where out is the
 * source's 2-D channel slice of the destination (a strided numpy view or any
 * DLPack producer; never copied) and lane its output channel.
 * rasterloader.Mosaic computes the items (merge's windows and rectangles);
 * raster_mosaic_read_sources() runs the items of a lane in order (so "first"
 * compositing sees the earlier sources' pixels) and the lanes in parallel.
 */
#include "binding.h"

typedef struct {
    DatasetObject *ds;          /* borrowed from the items list (kept alive by it) */
    raster_dataset_t *cds;      /* retained for the GIL-free part */
    int band, alg, composite, has_src_nodata, lane;
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
    if (!PyArg_ParseTuple(item, "O!i(dddd)OiidOi:mosaic_read item", Dataset_Type, &ds, &r->band,
                          &r->win.col_off, &r->win.row_off, &r->win.width, &r->win.height, &out,
                          &r->alg, &r->composite, &r->nodata, &snd, &r->lane))
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
mod_mosaic_read(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *list;
    int threads = 0;
    if (!PyArg_ParseTuple(args, "O|i:mosaic_read", &list, &threads))
        return NULL;
    PyObject *seq = PySequence_Fast(list, "mosaic_read() takes a list of items");
    if (seq == NULL)
        return NULL;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    source_read_t *r = PyMem_Calloc(n ? (size_t)n : 1, sizeof *r);
    raster_mosaic_source_t *items = PyMem_Calloc(n ? (size_t)n : 1, sizeof *items);
    if (r == NULL || items == NULL) {
        PyMem_Free(r);
        PyMem_Free(items);
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (item_parse(PySequence_Fast_GET_ITEM(seq, i), &r[i]) < 0) {
            reads_free(r, i + 1);
            PyMem_Free(items);
            Py_DECREF(seq);
            return NULL;
        }
        if (i > 0 && r[i].lane != r[i - 1].lane) {
            for (Py_ssize_t j = 0; j < i; j++)
                if (r[j].lane == r[i].lane) {
                    reads_free(r, i + 1);
                    PyMem_Free(items);
                    Py_DECREF(seq);
                    return PyErr_Format(PyExc_ValueError,
                                        "mosaic_read: the items of lane %d are not contiguous",
                                        r[i].lane);
                }
        }
        items[i] = (raster_mosaic_source_t){
            .ds = r[i].cds, .band = r[i].band, .lane = r[i].lane, .win = r[i].win,
            .resampling = (raster_resampling_t)r[i].alg,
            .composite = (raster_composite_t)r[i].composite, .nodata = r[i].nodata,
            .has_src_nodata = r[i].has_src_nodata, .src_nodata = r[i].src_nodata,
            .dst = r[i].out.view};
    }
    raster_status_t st;
    Py_BEGIN_ALLOW_THREADS
    st = raster_mosaic_read_sources(items, n, threads);
    Py_END_ALLOW_THREADS
    PyObject *res = st == RASTER_OK ? Py_NewRef(Py_None) : rl_raise(st);
    reads_free(r, n);
    PyMem_Free(items);
    Py_DECREF(seq);
    return res;
}

/* pool_tile(pool, dtype, h, w, c, timeout_ms, batch=0, squeeze=0) -> an
 * unwritten pooled Tile: [h, w, c], or [batch, h, w, c] ([batch, h, w] with
 * squeeze, for masks) when batch > 0.  Mosaic.read_hwc() and the loaders'
 * mosaic batches acquire it, then mosaic_read() writes every pixel of it
 * (each source into its channel slice, nodata where none covers). */
PyObject *
mod_pool_tile(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *pool_obj;
    raster_dtype_t dtype;
    long long h, w, c, b = 0;
    int timeout_ms, squeeze = 0;
    if (!PyArg_ParseTuple(args, "O!O&LLLi|Lp:pool_tile", Pool_Type, &pool_obj, dtype_converter,
                          &dtype, &h, &w, &c, &timeout_ms, &b, &squeeze))
        return NULL;
    if (h < 1 || w < 1 || c < 1 || b < 0 || (squeeze && c != 1))
        return rl_raise_status(RASTER_E_INVALID_ARG, "pool_tile: shape (%lld, %lld, %lld, %lld) "
                               "must be >= 1 each (channels 1 with squeeze)", b, h, w, c);
    PoolObject *po = (PoolObject *)pool_obj;
    raster_pool_t *pool = pool_enter(po);
    if (pool == NULL)
        return NULL;
    raster_buffer_t *buf = NULL;
    raster_status_t st;
    Py_BEGIN_ALLOW_THREADS
    st = raster_pool_acquire(pool, dtype, b > 0 ? b : 1, h, w, c, timeout_ms, &buf);
    Py_END_ALLOW_THREADS
    pool_leave(po);
    if (st != RASTER_OK)
        return rl_raise(st);
    return b > 0 ? tile_new_batch(buf, squeeze) : tile_new(buf, dtype, h, w, c);
}
