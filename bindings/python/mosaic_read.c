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
 * With lanes= (each output channel's whole plane, nodata and normalisation)
 * and validity= it is raster_mosaic_read(): the fill before the sources,
 * the validity masks and the normalisation after them, all in C.
 */
#include "binding.h"

#include <string.h>

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

/* A 2-D array or tensor pinned as a one-channel view of its own shape (only
 * its layout is checked: a slice's shape is the rectangle it stands for). */
static int
plane_acquire(PyObject *obj, out_target_t *t)
{
    if (!PyObject_HasAttrString(obj, "shape")) {
        PyErr_SetString(PyExc_TypeError, "mosaic_read: out must be a 2-D array or tensor");
        return -1;
    }
    PyObject *shape = PyObject_GetAttrString(obj, "shape");
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
    return out_target_acquire(obj, LAYOUT_HW, h, w, 1, -1, t);
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
    if (plane_acquire(out, &r->out) < 0)
        return -1;
    r->has_out = 1;
    r->cds = raster_dataset_retain(r->ds->ds);
    return 0;
}

/* Everything a mosaic_read() call pinned and parsed; query_free() lets go
 * of what was parsed so far. */
typedef struct {
    source_read_t *r;
    raster_mosaic_source_t *items;
    Py_ssize_t n, nitems;
    out_target_t *lane_t;
    raster_mosaic_lane_t *lanes;
    Py_ssize_t nlanes, lanes_pinned;
    out_target_t *val_t;
    raster_mosaic_validity_t *val;
    Py_ssize_t nval, val_pinned;
} query_args_t;

static void
query_free(query_args_t *q)
{
    if (q->r != NULL)
        reads_free(q->r, q->nitems);
    for (Py_ssize_t i = 0; i < q->lanes_pinned; i++)
        out_target_release(&q->lane_t[i]);
    for (Py_ssize_t i = 0; i < q->val_pinned; i++)
        out_target_release(&q->val_t[i]);
    PyMem_Free(q->items);
    PyMem_Free(q->lane_t);
    PyMem_Free(q->lanes);
    PyMem_Free(q->val_t);
    PyMem_Free(q->val);
}

static int
items_parse(PyObject *seq, query_args_t *q)
{
    q->n = PySequence_Fast_GET_SIZE(seq);
    q->r = PyMem_Calloc(q->n ? (size_t)q->n : 1, sizeof *q->r);
    q->items = PyMem_Calloc(q->n ? (size_t)q->n : 1, sizeof *q->items);
    if (q->r == NULL || q->items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < q->n; i++) {
        source_read_t *r = &q->r[i];
        q->nitems = i + 1;
        if (item_parse(PySequence_Fast_GET_ITEM(seq, i), r) < 0)
            return -1;
        if (i > 0 && r->lane != q->r[i - 1].lane)
            for (Py_ssize_t j = 0; j < i; j++)
                if (q->r[j].lane == r->lane) {
                    PyErr_Format(PyExc_ValueError, "mosaic_read: the items of lane %d are not contiguous",
                                 r->lane);
                    return -1;
                }
        q->items[i] = (raster_mosaic_source_t){
            .ds = r->cds, .band = r->band, .lane = r->lane, .win = r->win,
            .resampling = (raster_resampling_t)r->alg,
            .composite = (raster_composite_t)r->composite, .nodata = r->nodata,
            .has_src_nodata = r->has_src_nodata, .src_nodata = r->src_nodata,
            .dst = r->out.view};
    }
    return 0;
}

/* lanes: [(plane, nodata, None or (divide, scale, offset)), ...], lane l at index l. */
static int
lanes_parse(PyObject *list, query_args_t *q)
{
    PyObject *seq = PySequence_Fast(list, "mosaic_read: lanes must be a list");
    if (seq == NULL)
        return -1;
    q->nlanes = PySequence_Fast_GET_SIZE(seq);
    q->lane_t = PyMem_Calloc(q->nlanes ? (size_t)q->nlanes : 1, sizeof *q->lane_t);
    q->lanes = PyMem_Calloc(q->nlanes ? (size_t)q->nlanes : 1, sizeof *q->lanes);
    int rc = q->lane_t != NULL && q->lanes != NULL ? 0 : (PyErr_NoMemory(), -1);
    for (Py_ssize_t l = 0; rc == 0 && l < q->nlanes; l++) {
        PyObject *plane, *norm;
        raster_mosaic_lane_t *ln = &q->lanes[l];
        rc = -1;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, l), "OdO:mosaic_read lane", &plane, &ln->nodata,
                              &norm))
            break;
        if (norm != Py_None) {
            if (!PyArg_ParseTuple(norm, "pdd:mosaic_read lane normalisation", &ln->divide, &ln->scale,
                                  &ln->offset))
                break;
            ln->normalise = 1;
        }
        if (plane_acquire(plane, &q->lane_t[l]) < 0)
            break;
        q->lanes_pinned = l + 1;
        ln->plane = q->lane_t[l].view;
        rc = 0;
    }
    Py_DECREF(seq);
    return rc;
}

/* validity: [(dst, first_lane, lane_count), ...]. */
static int
validity_parse(PyObject *list, query_args_t *q)
{
    PyObject *seq = PySequence_Fast(list, "mosaic_read: validity must be a list");
    if (seq == NULL)
        return -1;
    q->nval = PySequence_Fast_GET_SIZE(seq);
    q->val_t = PyMem_Calloc(q->nval ? (size_t)q->nval : 1, sizeof *q->val_t);
    q->val = PyMem_Calloc(q->nval ? (size_t)q->nval : 1, sizeof *q->val);
    int rc = q->val_t != NULL && q->val != NULL ? 0 : (PyErr_NoMemory(), -1);
    for (Py_ssize_t k = 0; rc == 0 && k < q->nval; k++) {
        PyObject *dst;
        raster_mosaic_validity_t *v = &q->val[k];
        rc = -1;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "Oii:mosaic_read validity", &dst,
                              &v->first_lane, &v->lane_count) ||
            plane_acquire(dst, &q->val_t[k]) < 0)
            break;
        q->val_pinned = k + 1;
        v->dst = q->val_t[k].view;
        rc = 0;
    }
    Py_DECREF(seq);
    return rc;
}

PyObject *
mod_mosaic_read(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    (void)mod;
    static char *kwlist[] = {"items", "threads", "lanes", "validity", NULL};
    PyObject *list, *lanes = Py_None, *validity = Py_None;
    int threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|iOO:mosaic_read", kwlist, &list, &threads, &lanes,
                                     &validity))
        return NULL;
    PyObject *seq = PySequence_Fast(list, "mosaic_read() takes a list of items");
    if (seq == NULL)
        return NULL;
    query_args_t q;
    memset(&q, 0, sizeof q);
    int rc = items_parse(seq, &q);
    if (rc == 0 && lanes != Py_None)
        rc = lanes_parse(lanes, &q);
    if (rc == 0 && validity != Py_None) {
        if (lanes == Py_None)
            rc = (PyErr_SetString(PyExc_TypeError, "mosaic_read: validity= needs lanes="), -1);
        else
            rc = validity_parse(validity, &q);
    }
    PyObject *res = NULL;
    if (rc == 0) {
        raster_status_t st;
        Py_BEGIN_ALLOW_THREADS
        st = lanes == Py_None
                 ? raster_mosaic_read_sources(q.items, q.n, threads)
                 : raster_mosaic_read(q.items, q.n, q.lanes, (int)q.nlanes, q.val, (int)q.nval, threads);
        Py_END_ALLOW_THREADS
        res = st == RASTER_OK ? Py_NewRef(Py_None) : rl_raise(st);
    }
    query_free(&q);
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
