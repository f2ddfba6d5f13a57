/*
 * errors.c - C statuses to Python exceptions.
 *
 * The classes live in rasterloader/errors.py (multiple inheritance from
 * FileNotFoundError, ValueError, OSError, ... is plain Python there); this
 * file looks them up once at import and maps each status to one class.  The
 * message is raster_last_error(), which is thread-local in C, so it must be
 * read on the thread that failed, before its next rasterloader call.
 */
#include "binding.h"

#include <stdarg.h>
#include <string.h>

/* Indexed by raster_status_t; one more slot for a missing file. */
static PyObject *classes[RASTER_E_CLOSED + 1];   /* owned */
static PyObject *file_not_found;                 /* owned */
static PyObject *band_index_error;               /* owned */
static PyObject *base_error;                     /* owned */

static const char *const class_names[RASTER_E_CLOSED + 1] = {
    [RASTER_OK] = "RasterError",
    [RASTER_E_INVALID_ARG] = "InvalidArgumentError",  /* ValueError */
    [RASTER_E_IO] = "RasterIOError",                  /* OSError */
    [RASTER_E_FORMAT] = "FormatError",                /* OSError */
    [RASTER_E_CORRUPT] = "CorruptError",              /* OSError */
    [RASTER_E_UNSUPPORTED] = "UnsupportedError",      /* NotImplementedError */
    [RASTER_E_NOMEM] = "RasterMemoryError",           /* MemoryError */
    [RASTER_E_BOUNDS] = "WindowError",                /* ValueError */
    [RASTER_E_TIMEOUT] = "PoolTimeoutError",          /* TimeoutError */
    [RASTER_E_CLOSED] = "ClosedError",                /* ValueError */
};

int
errors_init(PyObject *m)
{
    PyObject *mod = PyImport_ImportModule("rasterloader.errors");
    if (mod == NULL)
        return -1;
    int rc = 0;
    for (int i = 0; i <= RASTER_E_CLOSED && rc == 0; i++) {
        Py_XSETREF(classes[i], PyObject_GetAttrString(mod, class_names[i]));
        if (classes[i] == NULL)
            rc = -1;
    }
    if (rc == 0) {
        Py_XSETREF(file_not_found, PyObject_GetAttrString(mod, "RasterFileNotFoundError"));
        Py_XSETREF(band_index_error, PyObject_GetAttrString(mod, "BandIndexError"));
        Py_XSETREF(base_error, Py_XNewRef(classes[RASTER_OK]));
        if (file_not_found == NULL || band_index_error == NULL)
            rc = -1;
    }
    Py_DECREF(mod);
    return rc;
}

static PyObject *
class_for(raster_status_t st, const char *msg)
{
    if (st == RASTER_E_IO && msg != NULL && strstr(msg, "no such file") != NULL)
        return file_not_found;
    /* RASTER_E_BOUNDS covers windows and bands; a band that does not exist
     * (named by dataset.c's message) is an IndexError, as in rasterio. */
    if (st == RASTER_E_BOUNDS && msg != NULL && strstr(msg, "does not exist (the file has") != NULL &&
        band_index_error != NULL)
        return band_index_error;
    if ((int)st > RASTER_OK && (int)st <= RASTER_E_CLOSED)
        return classes[st];
    return base_error;
}

/* exc = cls(message); exc.status = st; exc.status_name = "RASTER_E_..." */
static PyObject *
raise_with(raster_status_t st, const char *msg)
{
    PyObject *cls = class_for(st, msg);
    if (cls == NULL) {   /* errors_init() failed: still report something */
        PyErr_Format(PyExc_RuntimeError, "%s: %s", raster_status_str(st), msg);
        return NULL;
    }
    PyObject *exc = PyObject_CallFunction(cls, "si", msg, (int)st);
    if (exc == NULL)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

PyObject *
rl_raise(raster_status_t st)
{
    const char *msg = raster_last_error();
    return raise_with(st, (msg != NULL && msg[0]) ? msg : raster_status_str(st));
}

PyObject *
rl_raise_status(raster_status_t st, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    PyOS_vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return raise_with(st, buf);
}

void
rl_prefix_path(PyObject *path)
{
    if (path == NULL || !PyErr_Occurred())
        return;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    /* Only the plain ValueError/TypeError of argument checks: rasterloader's
     * own classes carry C's message, which names the file already. */
    if (value != NULL && (type == PyExc_ValueError || type == PyExc_TypeError)) {
        PyObject *text = PyObject_Str(value);
        if (text != NULL && PyUnicode_Tailmatch(text, path, 0, PyUnicode_GET_LENGTH(path), -1) != 1) {
            PyErr_Format(type, "%U: %U", path, text);
            Py_DECREF(text);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            return;
        }
        Py_XDECREF(text);
        PyErr_Clear();
    }
    PyErr_Restore(type, value, tb);
}
