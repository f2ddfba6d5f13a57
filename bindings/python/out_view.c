/*
 * out_view.c - a caller's array or tensor as the raster_view_t a read writes.
 *
 * NumPy arrays (and anything with the buffer protocol) are pinned with a
 * writable, strided Py_buffer.  Torch tensors have no buffer protocol, so
 * any object with __dlpack__ is imported as a DLPack consumer would: ask for
 * a versioned capsule (falling back to legacy on TypeError), rename it
 * "used_...", and call its deleter when the read is done.  Either way the
 * memory stays pinned while the GIL is released, and nothing is ever copied:
 * a wrong shape, dtype, device, negative stride or a read-only target raises.
 */
#include "binding.h"

#include <string.h>

int
layout_converter(PyObject *o, void *out)
{
    const char *s = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
    if (s == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "layout must be 'hwc', 'chw' or 'hw'");
        return 0;
    }
    if (strcmp(s, "hwc") == 0)
        *(out_layout_t *)out = LAYOUT_HWC;
    else if (strcmp(s, "chw") == 0)
        *(out_layout_t *)out = LAYOUT_CHW;
    else if (strcmp(s, "hw") == 0)
        *(out_layout_t *)out = LAYOUT_HW;
    else {
        PyErr_Format(PyExc_ValueError, "layout must be 'hwc', 'chw' or 'hw', not %R", o);
        return 0;
    }
    return 1;
}

/* struct-module format of a Py_buffer -> dtype; only native byte order. */
static int
dtype_from_format(const char *fmt, Py_ssize_t itemsize, raster_dtype_t *out)
{
    if (fmt == NULL)
        fmt = "B";
    if (*fmt == '@' || *fmt == '=' || *fmt == '<')
        fmt++;
    if (fmt[0] == '\0' || fmt[1] != '\0')
        return 0;
    raster_dtype_t dt;
    switch (fmt[0]) {
    case 'B': dt = RASTER_U8; break;
    case 'b': dt = RASTER_I8; break;
    case 'H': dt = RASTER_U16; break;
    case 'h': dt = RASTER_I16; break;
    case 'I': dt = RASTER_U32; break;
    case 'i': dt = RASTER_I32; break;
    case 'e': dt = RASTER_F16; break;
    case 'f': dt = RASTER_F32; break;
    case 'd': dt = RASTER_F64; break;
    default: return 0;
    }
    if ((size_t)itemsize != raster_dtype_size(dt))
        return 0;
    *out = dt;
    return 1;
}

static int
dtype_from_dl(raster_DLDataType t, raster_dtype_t *out)
{
    if (t.lanes != 1)
        return 0;
    switch (t.code * 1000 + t.bits) {
    case 1008: *out = RASTER_U8; return 1;
    case 8: *out = RASTER_I8; return 1;
    case 1016: *out = RASTER_U16; return 1;
    case 16: *out = RASTER_I16; return 1;
    case 1032: *out = RASTER_U32; return 1;
    case 32: *out = RASTER_I32; return 1;
    case 2016: *out = RASTER_F16; return 1;
    case 2032: *out = RASTER_F32; return 1;
    case 2064: *out = RASTER_F64; return 1;
    }
    return 0;
}

static const char *
layout_name(out_layout_t l)
{
    static const char *const names[] = {"HWC", "CHW", "HW", "BHWC", "BCHW", "BHW"};
    return names[l];
}

/* Check the target's shape and map its strides (bytes) onto the view of
 * one sample (the first, for batch layouts; t->batch_stride steps on). */
static int
view_from_shape(out_target_t *t, out_layout_t layout, int64_t b, int64_t h, int64_t w, int64_t c,
                int ndim, const int64_t *shape, const int64_t *strides, void *data,
                raster_dtype_t dt, int want_dtype)
{
    int64_t want[4];
    int want_ndim;
    const int batched = layout >= LAYOUT_BHWC;
    const out_layout_t sample = batched ? (out_layout_t)(layout - LAYOUT_BHWC) : layout;
    int64_t *const ws = want + batched;
    want[0] = b;
    if (sample == LAYOUT_HWC)
        ws[0] = h, ws[1] = w, ws[2] = c, want_ndim = 3;
    else if (sample == LAYOUT_CHW)
        ws[0] = c, ws[1] = h, ws[2] = w, want_ndim = 3;
    else
        ws[0] = h, ws[1] = w, want_ndim = 2;
    want_ndim += batched;
    int ok = ndim == want_ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = shape[i] == want[i];
    if (!ok) {
        char got[128] = "", exp[128] = "";
        for (int i = 0; i < ndim && i < 8; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)shape[i]);
        for (int i = 0; i < want_ndim; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", i ? ", " : "",
                     (long long)want[i]);
        PyErr_Format(PyExc_ValueError, "out has shape (%s) but this read needs (%s) (%s)", got,
                     exp, layout_name(layout));
        return -1;
    }
    if (want_dtype >= 0 && (raster_dtype_t)want_dtype != dt) {
        PyErr_Format(PyExc_ValueError, "out has dtype %s but this read needs %s",
                     raster_dtype_name(dt), raster_dtype_name((raster_dtype_t)want_dtype));
        return -1;
    }
    for (int i = 0; i < ndim; i++)
        if (strides[i] < 0) {
            PyErr_SetString(PyExc_ValueError,
                            "out has a negative stride; pass an array with non-negative strides");
            return -1;
        }
    t->batch_stride = batched ? strides[0] : 0;
    strides += batched;
    layout = sample;
    raster_view_t *v = &t->view;
    v->data = data;
    v->dtype = dt;
    v->height = h;
    v->width = w;
    v->channels = c;
    if (layout == LAYOUT_HWC)
        v->row_stride = strides[0], v->col_stride = strides[1], v->chan_stride = strides[2];
    else if (layout == LAYOUT_CHW)
        v->chan_stride = strides[0], v->row_stride = strides[1], v->col_stride = strides[2];
    else
        v->row_stride = strides[0], v->col_stride = strides[1],
        v->chan_stride = (int64_t)raster_dtype_size(dt);
    return 0;
}

static int
acquire_buffer(PyObject *obj, out_layout_t layout, int64_t bn, int64_t h, int64_t w, int64_t c,
               int want_dtype, out_target_t *t)
{
    if (PyObject_GetBuffer(obj, &t->pybuf, PyBUF_RECORDS) < 0) {
        /* numpy reports a read-only array as ValueError ("buffer source
         * array is read-only"), other exporters as BufferError. */
        if (PyErr_ExceptionMatches(PyExc_BufferError) || PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            PyErr_Format(PyExc_ValueError, "out (%.100s) is not writable: %S",
                         Py_TYPE(obj)->tp_name, value ? value : Py_None);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
        }
        return -1;
    }
    t->has_pybuf = 1;
    const Py_buffer *b = &t->pybuf;
    raster_dtype_t dt;
    if (!dtype_from_format(b->format, b->itemsize, &dt)) {
        PyErr_Format(PyExc_ValueError,
                     "out has element format '%s' (itemsize %zd), which rasterloader does not "
                     "write (native-endian uint8..float64 only)",
                     b->format ? b->format : "B", b->itemsize);
        return -1;
    }
    int64_t shape[8], strides[8];
    const int ndim = b->ndim < 8 ? b->ndim : 8;
    for (int i = 0; i < ndim; i++) {
        shape[i] = b->shape[i];
        strides[i] = b->strides ? b->strides[i] : 0;
    }
    if (b->strides == NULL && ndim > 0) {     /* C-contiguous */
        int64_t s = b->itemsize;
        for (int i = ndim - 1; i >= 0; i--)
            strides[i] = s, s *= shape[i];
    }
    return view_from_shape(t, layout, bn, h, w, c, b->ndim, shape, strides, b->buf, dt,
                           want_dtype);
}

/* Call obj.__dlpack__(max_version=(1, 0)); on TypeError, obj.__dlpack__(). */
static PyObject *
call_dlpack(PyObject *obj)
{
    PyObject *meth = PyObject_GetAttrString(obj, "__dlpack__");
    if (meth == NULL)
        return NULL;
    PyObject *kw = Py_BuildValue("{s:(ii)}", "max_version", 1, 0);
    PyObject *args = PyTuple_New(0);
    PyObject *cap = (kw && args) ? PyObject_Call(meth, args, kw) : NULL;
    if (cap == NULL && PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        cap = PyObject_CallNoArgs(meth);
    }
    Py_XDECREF(kw);
    Py_XDECREF(args);
    Py_DECREF(meth);
    return cap;
}

static void
dl_delete(void *managed, int versioned)
{
    if (managed == NULL)
        return;
    if (versioned) {
        raster_DLManagedTensorVersioned *m = managed;
        if (m->deleter)
            m->deleter(m);
    } else {
        raster_DLManagedTensor *m = managed;
        if (m->deleter)
            m->deleter(m);
    }
}

static int
acquire_dlpack(PyObject *obj, out_layout_t layout, int64_t b, int64_t h, int64_t w, int64_t c,
               int want_dtype, out_target_t *t)
{
    PyObject *cap = call_dlpack(obj);
    if (cap == NULL)
        return -1;
    const int versioned = PyCapsule_IsValid(cap, "dltensor_versioned");
    if (!versioned && !PyCapsule_IsValid(cap, "dltensor")) {
        Py_DECREF(cap);
        PyErr_Format(PyExc_TypeError, "out.__dlpack__() of %.100s did not return a DLPack capsule",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    void *managed = PyCapsule_GetPointer(cap, versioned ? "dltensor_versioned" : "dltensor");
    /* From here the tensor is ours: rename so the producer's capsule
     * destructor leaves it alone, and call its deleter in release. */
    if (managed == NULL ||
        PyCapsule_SetName(cap, versioned ? "used_dltensor_versioned" : "used_dltensor") < 0) {
        Py_DECREF(cap);
        return -1;
    }
    Py_DECREF(cap);
    t->dl_managed = managed;
    t->dl_versioned = versioned;
    const raster_DLTensor *dl;
    if (versioned) {
        const raster_DLManagedTensorVersioned *m = managed;
        if (m->version.major != RASTER_DLPACK_MAJOR) {
            PyErr_Format(PyExc_BufferError, "out exports DLPack %u.%u; rasterloader reads 1.x",
                         m->version.major, m->version.minor);
            return -1;
        }
        if (m->flags & RASTER_DLPACK_FLAG_READ_ONLY) {
            PyErr_Format(PyExc_ValueError, "out (%.100s) is read-only", Py_TYPE(obj)->tp_name);
            return -1;
        }
        dl = &m->dl_tensor;
    } else {
        dl = &((const raster_DLManagedTensor *)managed)->dl_tensor;
    }
    if (dl->device.device_type != 1) {
        PyErr_Format(PyExc_ValueError,
                     "out is on DLPack device (%d, %d); rasterloader writes CPU memory only",
                     dl->device.device_type, dl->device.device_id);
        return -1;
    }
    raster_dtype_t dt;
    if (!dtype_from_dl(dl->dtype, &dt)) {
        PyErr_Format(PyExc_ValueError,
                     "out has DLPack dtype (code %u, bits %u, lanes %u), which rasterloader "
                     "does not write",
                     dl->dtype.code, dl->dtype.bits, dl->dtype.lanes);
        return -1;
    }
    if (dl->ndim < 0 || dl->ndim > 8) {
        PyErr_Format(PyExc_ValueError, "out has %d dimensions", dl->ndim);
        return -1;
    }
    const int64_t isz = (int64_t)raster_dtype_size(dt);
    int64_t strides[8];
    int64_t s = isz;
    for (int i = dl->ndim - 1; i >= 0; i--) {
        strides[i] = dl->strides ? dl->strides[i] * isz : s;
        s *= dl->shape[i];
    }
    return view_from_shape(t, layout, b, h, w, c, dl->ndim, dl->shape, strides,
                           (char *)dl->data + dl->byte_offset, dt, want_dtype);
}

int
out_target_acquire(PyObject *obj, out_layout_t layout, int64_t h, int64_t w, int64_t c,
                   int want_dtype, out_target_t *t)
{
    return out_target_acquire_batch(obj, layout, 1, h, w, c, want_dtype, t);
}

int
out_target_acquire_batch(PyObject *obj, out_layout_t layout, int64_t b, int64_t h, int64_t w,
                         int64_t c, int want_dtype, out_target_t *t)
{
    memset(t, 0, sizeof *t);
    int rc;
    if (PyObject_CheckBuffer(obj))
        rc = acquire_buffer(obj, layout, b, h, w, c, want_dtype, t);
    else if (PyObject_HasAttrString(obj, "__dlpack__"))
        rc = acquire_dlpack(obj, layout, b, h, w, c, want_dtype, t);
    else {
        PyErr_Format(PyExc_TypeError,
                     "out must be a writable numpy array or torch tensor (buffer protocol or "
                     "__dlpack__), not %.100s",
                     Py_TYPE(obj)->tp_name);
        rc = -1;
    }
    if (rc < 0)
        out_target_release(t);
    return rc;
}

void
out_target_release(out_target_t *t)
{
    if (t->has_pybuf) {
        PyBuffer_Release(&t->pybuf);
        t->has_pybuf = 0;
    }
    dl_delete(t->dl_managed, t->dl_versioned);
    t->dl_managed = NULL;
}
