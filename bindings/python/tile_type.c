/*
 * tile_type.c - rasterloader.Tile: one pooled HWC buffer (a sample from
 * Dataset.read_hwc(), or a whole [B,H,W,C] batch or [B,H,W] mask from a
 * batch read), shared without copies through DLPack and the buffer protocol.
 *
 * The Tile owns one reference to a raster_buffer_t.  Every DLPack export and
 * every Py_buffer takes its own reference, so the Tile, the consumers and
 * release() may go in any order: the memory returns to the pool when the
 * last of them lets go (pool stats show it).  After release() the Tile
 * refuses new exports; tensors already made keep working.
 */
#include "binding.h"

#include <structmember.h>

#include <stdio.h>
#include <string.h>

PyTypeObject *Tile_Type;

static const char *const buffer_formats[RASTER_DTYPE_COUNT] = {
    "B", "b", "H", "h", "I", "i", "e", "f", "d"};

static PyObject *
tile_make(raster_buffer_t *buf, raster_dtype_t dt, int ndim, const int64_t *shape, int64_t index,
          int squeeze)
{
    TileObject *t = PyObject_GC_New(TileObject, Tile_Type);
    if (t == NULL) {
        raster_buffer_release(buf);
        return NULL;
    }
    const Py_ssize_t isz = (Py_ssize_t)raster_dtype_size(dt);
    t->buf = buf;
    t->dtype = dt;
    t->ndim = ndim;
    t->index = index;
    t->squeeze = squeeze;
    Py_ssize_t stride = isz;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = (Py_ssize_t)shape[i];
        t->strides[i] = stride;
        stride *= t->shape[i];
    }
    t->nbytes = stride;
    t->read_only = 0;
    t->weakreflist = NULL;
    PyObject_GC_Track(t);
    return (PyObject *)t;
}

PyObject *
tile_new(raster_buffer_t *buf, raster_dtype_t dt, int64_t h, int64_t w, int64_t c)
{
    const int64_t shape[3] = {h, w, c};
    return tile_make(buf, dt, 3, shape, 0, 0);
}

PyObject *
tile_new_batch(raster_buffer_t *buf, int squeeze)
{
    raster_dtype_t dt;
    int64_t shape[4];
    raster_buffer_shape(buf, &dt, shape);
    return tile_make(buf, dt, squeeze ? 3 : 4, shape, -1, squeeze);
}

static void
Tile_dealloc(TileObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    raster_buffer_release(self->buf);   /* C only: any thread, NULL fine */
    self->buf = NULL;
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int
Tile_traverse(TileObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static PyObject *
Tile_new_denied(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyErr_SetString(PyExc_TypeError,
                    "Tile objects come from Dataset.read_hwc(); they cannot be created directly");
    return NULL;
}

/* ---------------------------- buffer protocol --------------------------- */

static int
Tile_getbuffer(TileObject *self, Py_buffer *view, int flags)
{
    if (self->buf == NULL) {
        PyErr_SetString(PyExc_BufferError, "Tile was released");
        return -1;
    }
    if ((flags & PyBUF_WRITABLE) && self->read_only) {
        PyErr_SetString(PyExc_BufferError, "Tile is read-only");
        return -1;
    }
    /* The tile is compact C-order, so every contiguity request is met. */
    view->buf = raster_buffer_data(self->buf);
    view->obj = Py_NewRef(self);
    view->len = self->nbytes;
    view->readonly = self->read_only;
    view->itemsize = (Py_ssize_t)raster_dtype_size(self->dtype);
    view->format = (flags & PyBUF_FORMAT) ? (char *)buffer_formats[self->dtype] : NULL;
    view->ndim = self->ndim;
    view->shape = (flags & PyBUF_ND) ? self->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? self->strides : NULL;
    view->suboffsets = NULL;
    /* The view holds its own buffer reference: Tile.release() does not pull
     * the memory from under a live memoryview or numpy array. */
    view->internal = raster_buffer_retain(self->buf);
    return 0;
}

static void
Tile_releasebuffer(TileObject *self, Py_buffer *view)
{
    raster_buffer_release((raster_buffer_t *)view->internal);
    view->internal = NULL;
}

/* ------------------------------ methods -------------------------------- */

static PyObject *
Tile_dlpack_device(TileObject *self, PyObject *unused)
{
    return Py_BuildValue("(ii)", 1, 0);   /* kDLCPU, device 0 */
}

static PyObject *
Tile_dlpack_method(TileObject *self, PyObject *args, PyObject *kwargs)
{
    return tile_dlpack(self, args, kwargs);
}

static PyObject *
Tile_numpy(TileObject *self, PyObject *unused)
{
    if (self->buf == NULL) {
        PyErr_SetString(PyExc_BufferError, "Tile was released");
        return NULL;
    }
    PyObject *np = PyImport_ImportModule("numpy");
    if (np == NULL)
        return NULL;
    PyObject *arr = PyObject_CallMethod(np, "from_dlpack", "O", (PyObject *)self);
    Py_DECREF(np);
    return arr;
}

static PyObject *
Tile_release(TileObject *self, PyObject *unused)
{
    raster_buffer_t *b = self->buf;
    self->buf = NULL;
    raster_buffer_release(b);
    Py_RETURN_NONE;
}

static PyObject *
Tile_enter(TileObject *self, PyObject *unused)
{
    return Py_NewRef(self);
}

static PyObject *
Tile_exit(TileObject *self, PyObject *args)
{
    return Tile_release(self, NULL);
}

static PyObject *
Tile_set_read_only(TileObject *self, PyObject *unused)
{
    self->read_only = 1;
    Py_RETURN_NONE;
}

static PyObject *
Tile_get_shape(TileObject *self, void *closure)
{
    PyObject *shape = PyTuple_New(self->ndim);
    if (shape == NULL)
        return NULL;
    for (int i = 0; i < self->ndim; i++) {
        PyObject *n = PyLong_FromSsize_t(self->shape[i]);
        if (n == NULL) {
            Py_DECREF(shape);
            return NULL;
        }
        PyTuple_SET_ITEM(shape, i, n);
    }
    return shape;
}

static PyObject *
Tile_get_dtype(TileObject *self, void *closure)
{
    return PyUnicode_FromString(raster_dtype_name(self->dtype));
}

static PyObject *
Tile_get_nbytes(TileObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->nbytes);
}

static PyObject *
Tile_get_released(TileObject *self, void *closure)
{
    return PyBool_FromLong(self->buf == NULL);
}

static PyObject *
Tile_get_read_only(TileObject *self, void *closure)
{
    return PyBool_FromLong(self->read_only);
}

static PyObject *
Tile_get_data_ptr(TileObject *self, void *closure)
{
    if (self->buf == NULL) {
        PyErr_SetString(PyExc_BufferError, "Tile was released");
        return NULL;
    }
    return PyLong_FromVoidPtr(raster_buffer_data(self->buf));
}

static PyObject *
Tile_repr(TileObject *self)
{
    char dims[96] = "";
    for (int i = 0; i < self->ndim; i++)
        snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%zd", i ? "x" : "",
                 self->shape[i]);
    return PyUnicode_FromFormat("<rasterloader.Tile %s %s%s%s>", dims, raster_dtype_name(self->dtype),
                                self->read_only ? " read-only" : "",
                                self->buf == NULL ? " released" : "");
}

static PyMethodDef Tile_methods[] = {
    {"__dlpack__", (PyCFunction)(void (*)(void))Tile_dlpack_method, METH_VARARGS | METH_KEYWORDS,
     "__dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None)\n--\n\n"
     "Export as a DLPack capsule: 'dltensor_versioned' when max_version asks for 1.x,\n"
     "else the legacy 'dltensor'.  Zero-copy unless copy=True."},
    {"__dlpack_device__", (PyCFunction)Tile_dlpack_device, METH_NOARGS,
     "__dlpack_device__() -> (1, 0): CPU memory"},
    {"numpy", (PyCFunction)Tile_numpy, METH_NOARGS,
     "numpy() -> a zero-copy numpy.ndarray view (numpy.from_dlpack(tile)); it keeps the\n"
     "buffer alive on its own, after release() too."},
    {"release", (PyCFunction)Tile_release, METH_NOARGS,
     "release() drops the Tile's reference; the memory returns to the pool once every\n"
     "array and tensor made from it is gone too.  Idempotent."},
    {"set_read_only", (PyCFunction)Tile_set_read_only, METH_NOARGS,
     "set_read_only() marks later exports read-only (versioned DLPack flag; legacy\n"
     "DLPack and writable buffer requests then raise BufferError).  One-way."},
    {"__enter__", (PyCFunction)Tile_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Tile_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Tile_getset[] = {
    {"shape", (getter)Tile_get_shape, NULL,
     "(height, width, channels); a batch: (batch, height, width, channels), or\n"
     "(batch, height, width) for a mask", NULL},
    {"dtype", (getter)Tile_get_dtype, NULL, "numpy-style dtype name", NULL},
    {"nbytes", (getter)Tile_get_nbytes, NULL, "bytes of pixel data", NULL},
    {"released", (getter)Tile_get_released, NULL, "True after release()", NULL},
    {"read_only", (getter)Tile_get_read_only, NULL, "exports are read-only", NULL},
    {"data_ptr", (getter)Tile_get_data_ptr, NULL, "address of the first element", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Tile_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TileObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Tile_slots[] = {
    {Py_tp_new, Tile_new_denied},
    {Py_tp_dealloc, Tile_dealloc},
    {Py_tp_traverse, Tile_traverse},
    {Py_tp_repr, Tile_repr},
    {Py_tp_methods, Tile_methods},
    {Py_tp_getset, Tile_getset},
    {Py_tp_members, Tile_members},
    {Py_bf_getbuffer, Tile_getbuffer},
    {Py_bf_releasebuffer, Tile_releasebuffer},
    {Py_tp_doc, (void *)"A pooled HWC pixel buffer from Dataset.read_hwc().\n\n"
                        "Share it without copies: torch.from_dlpack(tile), numpy.from_dlpack(tile),\n"
                        "memoryview(tile), tile.numpy().  Its memory returns to the pool when the\n"
                        "tile and every array or tensor made from it are gone."},
    {0, NULL},
};

static PyType_Spec Tile_spec = {
    .name = "rasterloader._core.Tile",
    .basicsize = sizeof(TileObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Tile_slots,
};

int
tile_type_init(PyObject *m)
{
    Tile_Type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Tile_spec, NULL);
    if (Tile_Type == NULL)
        return -1;
    return PyModule_AddObjectRef(m, "Tile", (PyObject *)Tile_Type);
}
