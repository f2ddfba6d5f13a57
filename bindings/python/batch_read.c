/*
 * batch_read.c - rasterloader._core.read_batch(): B windows (across any
 * number of files) read in one call, with the GIL released, in parallel on
 * the library's threads, into pooled [B,H,W,C] + [B,H,W] Tiles or into a
 * caller's arrays or tensors.
 *
 * This is the C batch read (raster_batch_read / raster_batch_read_into) and
 * nothing more: item parsing, one C reference per dataset taken before the
 * GIL goes (so close() on another thread is safe), and the failing sample's
 * index attached to the exception as .index.  Batching policy (shuffling,
 * prefetch, sharding) is Python's, in rasterloader/_loader.py.
 */
#include "binding.h"

#include <string.h>

/* Everything parsed from the arguments; freed by batch_args_free(). */
typedef struct {
    raster_batch_item_t *items;   /* PyMem; datasets retained (C references) */
    Py_ssize_t count;
    rl_read_args_t read;          /* bands, normalisation, boundless: the read options */
    int64_t h, w, c;              /* the batch's sample shape */
} batch_args_t;

static void
batch_args_free(batch_args_t *a)
{
    for (Py_ssize_t i = 0; a->items != NULL && i < a->count; i++) {
        raster_dataset_release(a->items[i].image);
        raster_dataset_release(a->items[i].label);
    }
    PyMem_Free(a->items);
    rl_read_args_free(&a->read);
    memset(a, 0, sizeof *a);
}

static raster_dataset_t *
live_dataset(PyObject *o, Py_ssize_t i, const char *what)
{
    if (!PyObject_TypeCheck(o, Dataset_Type)) {
        PyErr_Format(PyExc_TypeError, "batch sample %zd: %s must be a rasterloader._core.Dataset, "
                                      "not %.100s", i, what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    DatasetObject *d = (DatasetObject *)o;
    if (d->ds == NULL) {
        rl_raise_status(RASTER_E_CLOSED, "batch sample %zd: %s %U is closed", i, what, d->path);
        return NULL;
    }
    return raster_dataset_retain(d->ds);
}

/* One item: (Dataset, (col_off, row_off, width, height), label Dataset or
 * None, label_band). */
static int
item_parse(PyObject *o, Py_ssize_t i, raster_batch_item_t *it)
{
    memset(it, 0, sizeof *it);
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 4) {
        PyErr_Format(PyExc_TypeError, "batch sample %zd must be a (dataset, (col_off, row_off, "
                                      "width, height), label or None, label_band) tuple", i);
        return -1;
    }
    PyObject *win = PyTuple_GET_ITEM(o, 1), *label = PyTuple_GET_ITEM(o, 2);
    long long v[4];
    if (!PyTuple_Check(win) || PyTuple_GET_SIZE(win) != 4) {
        PyErr_Format(PyExc_TypeError, "batch sample %zd: window must be a (col_off, row_off, "
                                      "width, height) tuple, not %R", i, win);
        return -1;
    }
    for (int k = 0; k < 4; k++) {
        v[k] = PyLong_AsLongLong(PyTuple_GET_ITEM(win, k));
        if (v[k] == -1 && PyErr_Occurred())
            return -1;
    }
    const long band = PyLong_AsLong(PyTuple_GET_ITEM(o, 3));
    if (band == -1 && PyErr_Occurred())
        return -1;
    if (band < 0 || band > 65536) {
        rl_raise_status(RASTER_E_INVALID_ARG, "batch sample %zd: label_band %ld out of range", i,
                        band);
        return -1;
    }
    it->window = (raster_window_t){v[0], v[1], v[2], v[3]};
    it->label_band = (int)band;
    if ((it->image = live_dataset(PyTuple_GET_ITEM(o, 0), i, "image")) == NULL)
        return -1;
    if (label != Py_None && (it->label = live_dataset(label, i, "label")) == NULL)
        return -1;
    return 0;
}

static int
batch_args_parse(PyObject *items, PyObject *bands, PyObject *scale, PyObject *offset,
                 PyObject *mean, PyObject *std, int boundless, double fill, batch_args_t *a)
{
    memset(a, 0, sizeof *a);
    PyObject *seq = PySequence_Fast(items, "items must be a sequence of tuples");
    if (seq == NULL)
        return -1;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1) {
        Py_DECREF(seq);
        rl_raise_status(RASTER_E_INVALID_ARG, "a batch needs at least one item");
        return -1;
    }
    if ((a->items = PyMem_New(raster_batch_item_t, (size_t)n)) == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    memset(a->items, 0, (size_t)n * sizeof *a->items);
    a->count = n;
    for (Py_ssize_t i = 0; i < n; i++)
        if (item_parse(PySequence_Fast_GET_ITEM(seq, i), i, &a->items[i]) < 0) {
            Py_DECREF(seq);
            return -1;
        }
    Py_DECREF(seq);
    raster_info_t in;
    if (raster_dataset_info(a->items[0].image, &in) != RASTER_OK) {
        rl_raise(RASTER_E_CLOSED);
        return -1;
    }
    if (rl_read_args_parse(bands, in.band_count, boundless, fill, scale, offset, mean, std, "batch",
                           &a->read) < 0)
        return -1;
    a->h = a->items[0].window.height;
    a->w = a->items[0].window.width;
    a->c = a->read.channels;
    return 0;
}

/* Raises for 'st' (message from raster_last_error()) with .index set to the
 * failing sample, or None. */
static PyObject *
raise_batch(raster_status_t st, int64_t failed)
{
    rl_raise(st);
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL) {
        PyObject *idx = failed >= 0 ? PyLong_FromLongLong(failed) : Py_NewRef(Py_None);
        if (idx == NULL || PyObject_SetAttrString(value, "index", idx) < 0)
            PyErr_Clear();
        Py_XDECREF(idx);
    }
    PyErr_Restore(type, value, tb);
    return NULL;
}

/* The b samples of a pinned target as views.  Samples must not overlap (a
 * zero or short batch stride, as from torch's expand(), would have threads
 * write the same bytes), so the batch axis must be the outermost. */
static int
sample_views(const out_target_t *t, int64_t b, raster_view_t **out)
{
    const raster_view_t *v = &t->view;
    const int64_t esz = (int64_t)raster_dtype_size(v->dtype);
    /* Bytes one sample spans: its largest offset plus one element. */
    const int64_t span = (v->height - 1) * v->row_stride + (v->width - 1) * v->col_stride +
                         (v->channels - 1) * v->chan_stride + esz;
    if (b > 1 && t->batch_stride < span) {
        PyErr_Format(PyExc_ValueError, "out: the batch axis must be outermost in memory and "
                                       "samples may not overlap (batch stride %lld bytes, a "
                                       "sample spans %lld)",
                     (long long)t->batch_stride, (long long)span);
        return -1;
    }
    raster_view_t *views = PyMem_New(raster_view_t, (size_t)b);
    if (views == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (int64_t i = 0; i < b; i++) {
        views[i] = *v;
        views[i].data = (char *)v->data + i * t->batch_stride;
    }
    *out = views;
    return 0;
}

/* The output size of a batch: the options' when set, else the window's. */
static void
out_size(const batch_args_t *a, const raster_batch_options_t *bo, int64_t *h, int64_t *w)
{
    *h = bo->out_height ? bo->out_height : a->h;
    *w = bo->out_width ? bo->out_width : a->w;
}

static PyObject *
read_into_targets(batch_args_t *a, raster_batch_options_t *bo, PyObject *out, out_layout_t layout,
                  PyObject *mask_out, PyObject *validity_out)
{
    out_target_t ti, tm, tv;
    memset(&tm, 0, sizeof tm);
    memset(&tv, 0, sizeof tv);
    raster_view_t *iv = NULL, *mv = NULL, *vv = NULL;
    PyObject *result = NULL;
    int64_t h, w;
    out_size(a, bo, &h, &w);
    if (out_target_acquire_batch(out, layout, a->count, h, w, a->c, -1, &ti) < 0)
        return NULL;
    /* Masks hold labels of any dtype (label_fill is checked against it in C). */
    if (mask_out != Py_None &&
        out_target_acquire_batch(mask_out, LAYOUT_BHW, a->count, h, w, 1, -1, &tm) < 0)
        goto done;
    if (validity_out != Py_None &&
        out_target_acquire_batch(validity_out, LAYOUT_BHW, a->count, h, w, 1, RASTER_U8, &tv) < 0)
        goto done;
    if (sample_views(&ti, a->count, &iv) < 0 ||
        (mask_out != Py_None && sample_views(&tm, a->count, &mv) < 0) ||
        (validity_out != Py_None && sample_views(&tv, a->count, &vv) < 0))
        goto done;
    raster_status_t st;
    int64_t failed = -1;
    const raster_batch_views_t views = {iv, mv, vv};
    Py_BEGIN_ALLOW_THREADS
    st = raster_batch_read_into_ex(a->items, a->count, bo, &views, &failed);
    Py_END_ALLOW_THREADS
    if (st != RASTER_OK)
        raise_batch(st, failed);
    else
        result = Py_BuildValue("(OOO)", out, mask_out, validity_out);
done:
    PyMem_Free(iv);
    PyMem_Free(mv);
    PyMem_Free(vv);
    out_target_release(&tv);
    out_target_release(&tm);
    out_target_release(&ti);
    return result;
}

static PyObject *
read_into_pool(batch_args_t *a, raster_batch_options_t *bo, PoolObject *po)
{
    raster_pool_t *pool = pool_enter(po);
    if (pool == NULL)
        return NULL;
    raster_batch_buffers_t bufs;
    raster_status_t st;
    int64_t failed = -1;
    /* The pool wait (back-pressure) and the reads both run without the GIL. */
    Py_BEGIN_ALLOW_THREADS
    st = raster_batch_read_ex(pool, a->items, a->count, bo, &bufs, &failed);
    Py_END_ALLOW_THREADS
    pool_leave(po);
    if (st != RASTER_OK)
        return raise_batch(st, failed);
    /* Each Tile takes over its buffer's reference (tile_new_batch releases
     * it on failure); the ones not reached yet are released here. */
    PyObject *it = tile_new_batch(bufs.image, 0);
    PyObject *mt = it == NULL ? NULL : bufs.mask ? tile_new_batch(bufs.mask, 1) : Py_NewRef(Py_None);
    if (it == NULL)
        raster_buffer_release(bufs.mask);
    PyObject *vt = mt == NULL ? NULL : bufs.validity ? tile_new_batch(bufs.validity, 1) : Py_NewRef(Py_None);
    if (mt == NULL)
        raster_buffer_release(bufs.validity);
    if (vt == NULL) {
        Py_XDECREF(it);
        Py_XDECREF(mt);
        return NULL;
    }
    return Py_BuildValue("(NNN)", it, mt, vt);
}

/* check_label_grid(image, label or None, *, label_resample=False,
 * label_fill=0.0, label_dtype=None): the batch read's checks of one
 * (image, label) pair with masks, without reading; ValueError naming both
 * files and grids, or the label_fill that label_dtype cannot hold. */
PyObject *
mod_check_label_grid(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"image", "label", "label_resample", "label_fill", "label_dtype", NULL};
    PyObject *image, *label, *label_dtype = Py_None;
    int label_resample = 0;
    double label_fill = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|$pdO:check_label_grid", kwlist, &image,
                                     &label, &label_resample, &label_fill, &label_dtype))
        return NULL;
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.masks = 1;
    bo.label_resample = label_resample;
    bo.label_fill = label_fill;
    if (label_dtype != Py_None && !dtype_converter(label_dtype, &bo.label_dtype))
        return NULL;
    raster_batch_item_t it;
    memset(&it, 0, sizeof it);
    if ((it.image = live_dataset(image, 0, "image")) == NULL)
        return NULL;
    if (label != Py_None && (it.label = live_dataset(label, 0, "label")) == NULL) {
        raster_dataset_release(it.image);
        return NULL;
    }
    raster_status_t st;
    Py_BEGIN_ALLOW_THREADS
    st = raster_batch_item_check(&it, &bo);
    Py_END_ALLOW_THREADS
    raster_dataset_release(it.image);
    raster_dataset_release(it.label);
    if (st != RASTER_OK)
        return rl_raise(st);
    Py_RETURN_NONE;
}

PyObject *
mod_read_batch(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"items", "dtype", "pool", "out", "mask_out", "layout", "bands",
                             "scale", "offset", "boundless", "fill_value", "masks", "threads",
                             "timeout_ms", "mean", "std", "label_fill", "label_dtype", "validity",
                             "validity_out", "label_resample", "out_hw", "resampling", NULL};
    PyObject *items, *dtype_obj = Py_None, *pool = Py_None, *out = Py_None, *mask_out = Py_None;
    PyObject *bands = Py_None, *scale = Py_None, *offset = Py_None, *mean = Py_None, *std = Py_None;
    PyObject *label_dtype = Py_None, *validity_out = Py_None, *out_hw = Py_None;
    const char *layout_name = "bhwc";
    int boundless = 0, masks = 0, threads = 0, timeout_ms = -1, validity = 0, label_resample = 0;
    int resampling = 0;
    double fill = 0.0, label_fill = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$OOOOsOOOpdpiiOOdOpOpOi:read_batch", kwlist,
                                     &items, &dtype_obj, &pool, &out, &mask_out, &layout_name,
                                     &bands, &scale, &offset, &boundless, &fill, &masks, &threads,
                                     &timeout_ms, &mean, &std, &label_fill, &label_dtype,
                                     &validity, &validity_out, &label_resample, &out_hw,
                                     &resampling))
        return NULL;
    out_layout_t layout;
    if (strcmp(layout_name, "bhwc") == 0)
        layout = LAYOUT_BHWC;
    else if (strcmp(layout_name, "bchw") == 0)
        layout = LAYOUT_BCHW;
    else
        return PyErr_Format(PyExc_ValueError, "layout must be 'bhwc' or 'bchw', not '%s'",
                            layout_name);
    if ((out == Py_None) == (pool == Py_None))
        return PyErr_Format(PyExc_TypeError, "read_batch needs exactly one of pool= or out=");
    if (pool != Py_None && !PyObject_TypeCheck(pool, Pool_Type))
        return PyErr_Format(PyExc_TypeError, "pool must be a BufferPool, not %.100s",
                            Py_TYPE(pool)->tp_name);
    if (out == Py_None && (mask_out != Py_None || validity_out != Py_None))
        return PyErr_Format(PyExc_TypeError, "mask_out= and validity_out= go with out=");
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    if (pool != Py_None) {
        if (dtype_obj == Py_None)
            return PyErr_Format(PyExc_TypeError, "read_batch(pool=...) needs dtype=");
        if (!dtype_converter(dtype_obj, &bo.dtype))
            return NULL;
    }
    if (label_dtype != Py_None && !dtype_converter(label_dtype, &bo.label_dtype))
        return NULL;
    if (out_hw != Py_None && !PyArg_ParseTuple(out_hw, "LL;out_hw must be (height, width)",
                                               &bo.out_height, &bo.out_width))
        return NULL;
    bo.masks = masks;
    bo.threads = threads;
    bo.timeout_ms = timeout_ms;
    bo.label_fill = label_fill;
    bo.validity = validity;
    bo.label_resample = label_resample;
    bo.resampling = (raster_resampling_t)resampling;
    batch_args_t a;
    if (batch_args_parse(items, bands, scale, offset, mean, std, boundless, fill, &a) < 0) {
        batch_args_free(&a);
        return NULL;
    }
    bo.read = &a.read.opt;
    PyObject *result = pool != Py_None ? read_into_pool(&a, &bo, (PoolObject *)pool)
                                       : read_into_targets(&a, &bo, out, layout, mask_out,
                                                           validity_out);
    batch_args_free(&a);
    return result;
}
