/*
 * args.c - the read arguments every entry point parses the same way, in one
 * place: a band list and per-channel scale/offset/mean/std sequences, into
 * PyMem arrays the caller frees with PyMem_Free (NULL when the argument is
 * None); the read options built from them (rl_read_args_parse, for the
 * Dataset reads and read_batch alike); the float window of a read.
 */
#include "binding.h"

#include <string.h>

int
rl_bands_parse(PyObject *o, int **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (o == NULL || o == Py_None)
        return 0;
    PyObject *seq = PySequence_Fast(o, "bands must be a sequence of ints");
    if (seq == NULL)
        return -1;
    const Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    if (len < 1 || len > 65536) {
        Py_DECREF(seq);
        rl_raise_status(RASTER_E_INVALID_ARG, "bands must list 1 to 65536 band numbers, not %zd",
                        len);
        return -1;
    }
    int *b = PyMem_New(int, (size_t)len);
    if (b == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        const long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (v == -1 && PyErr_Occurred()) {
            PyMem_Free(b);
            Py_DECREF(seq);
            return -1;
        }
        /* The library names a bad band; one past int is bad as -1 is. */
        b[i] = (v < -0x7fffffffL || v > 0x7fffffffL) ? -1 : (int)v;
    }
    Py_DECREF(seq);
    *out = b;
    *n = (int)len;
    return 0;
}

int
rl_doubles_parse(PyObject *o, int64_t n, const char *what, const char *reader, double **out)
{
    *out = NULL;
    if (o == NULL || o == Py_None)
        return 0;
    PyObject *seq = PySequence_Fast(o, "scale and offset must be sequences of floats");
    if (seq == NULL)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        rl_raise_status(RASTER_E_INVALID_ARG, "%s has %zd values but the %s has %lld channel(s)",
                        what, PySequence_Fast_GET_SIZE(seq), reader, (long long)n);
        Py_DECREF(seq);
        return -1;
    }
    double *d = PyMem_New(double, (size_t)n);
    if (d == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        d[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (d[i] == -1.0 && PyErr_Occurred()) {
            PyMem_Free(d);
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    *out = d;
    return 0;
}

void
rl_read_args_free(rl_read_args_t *a)
{
    PyMem_Free(a->bands);
    PyMem_Free(a->scale);
    PyMem_Free(a->offset);
    PyMem_Free(a->mean);
    PyMem_Free(a->std);
    memset(a, 0, sizeof *a);
}

int
rl_read_args_parse(PyObject *bands, int all_bands, int boundless, double fill, PyObject *scale,
                   PyObject *offset, PyObject *mean, PyObject *std, const char *reader,
                   rl_read_args_t *a)
{
    memset(a, 0, sizeof *a);
    if (rl_bands_parse(bands, &a->bands, &a->band_count) < 0)
        return -1;
    a->channels = a->bands ? a->band_count : all_bands;
    if (rl_doubles_parse(scale, a->channels, "scale", reader, &a->scale) < 0 ||
        rl_doubles_parse(offset, a->channels, "offset", reader, &a->offset) < 0 ||
        rl_doubles_parse(mean, a->channels, "mean", reader, &a->mean) < 0 ||
        rl_doubles_parse(std, a->channels, "std", reader, &a->std) < 0) {
        rl_read_args_free(a);
        return -1;
    }
    raster_read_options_init(&a->opt);
    a->opt.bands = a->bands;
    a->opt.band_count = a->band_count;
    a->opt.boundless = boundless;
    a->opt.fill_value = fill;
    a->opt.scale = a->scale;
    a->opt.offset = a->offset;
    a->opt.mean = a->mean;
    a->opt.std = a->std;
    return 0;
}

int
rl_window_f_converter(PyObject *o, void *out)
{
    raster_window_f_t *w = out;
    double v[4];
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 4) {
        PyErr_Format(PyExc_TypeError, "window must be a (col_off, row_off, width, height) tuple, "
                                      "not %R", o);
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        v[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(o, i));
        if (v[i] == -1.0 && PyErr_Occurred())
            return 0;
    }
    *w = (raster_window_f_t){v[0], v[1], v[2], v[3]};
    return 1;
}
