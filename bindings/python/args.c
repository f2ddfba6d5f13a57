/*
 * args.c - the read arguments every entry point parses the same way: a band
 * list and per-channel scale/offset sequences, into PyMem arrays the caller
 * frees with PyMem_Free (NULL when the argument is None).
 */
#include "binding.h"

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
