/*
 * errors.c - C statuses to Python exceptions.
 *
 * The classes live in rasterloader/errors.py (multiple inheritance from
 * FileNotFoundError, ValueError, OSError, ... is plain Python there), with
 * their table {status: class}; this file looks them up once, at the first
 * raise, and picks the class by status and by raster_last_error_cause()
 * (never by the message's words).  The message is raster_last_error(),
 * which is thread-local in C, so it must be read on the thread that failed,
 * before its next rasterloader call.
 */
#include "binding.h"

#include <stdarg.h>

/* Looked up on the first raise, not at import: rasterloader/errors.py builds
 * its table of statuses from this module (_core.STATUS), so it imports us. */
static PyObject *by_status;       /* owned: errors._CLASS_BY_STATUS, {status: class} */
static PyObject *file_not_found;  /* owned */
static PyObject *band_index_error;/* owned */
static PyObject *base_error;      /* owned */

/* 1 when the classes are known (GIL held); 0 with no exception pending. */
static int
classes_ready(void)
{
    if (base_error != NULL)
        return 1;
    PyObject *mod = PyImport_ImportModule("rasterloader.errors");
    if (mod != NULL) {
        by_status = PyObject_GetAttrString(mod, "_CLASS_BY_STATUS");
        file_not_found = PyObject_GetAttrString(mod, "RasterFileNotFoundError");
        band_index_error = PyObject_GetAttrString(mod, "BandIndexError");
        base_error = PyObject_GetAttrString(mod, "RasterError");
        Py_DECREF(mod);
    }
    if (by_status == NULL || !PyDict_Check(by_status) || file_not_found == NULL ||
        band_index_error == NULL || base_error == NULL) {
        Py_CLEAR(by_status);
        Py_CLEAR(file_not_found);
        Py_CLEAR(band_index_error);
        Py_CLEAR(base_error);
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* The class for 'st' (borrowed): the C cause picks the built-in-compatible
 * subclass (FileNotFoundError, IndexError as rasterio raises), else the
 * status's own class. */
static PyObject *
class_for(raster_status_t st, raster_cause_t cause)
{
    if (st == RASTER_E_IO && cause == RASTER_CAUSE_NOT_FOUND)
        return file_not_found;
    if (st == RASTER_E_BOUNDS && cause == RASTER_CAUSE_BAND_INDEX)
        return band_index_error;
    PyObject *key = PyLong_FromLong((long)st);
    PyObject *cls = key != NULL ? PyDict_GetItemWithError(by_status, key) : NULL;
    Py_XDECREF(key);
    PyErr_Clear();
    return cls != NULL ? cls : base_error;
}

/* exc = cls(message); exc.status = st; exc.status_name = "RASTER_E_..."
 * 'msg' is a str (borrowed). */
static PyObject *
raise_with(raster_status_t st, raster_cause_t cause, PyObject *msg)
{
    if (!classes_ready()) {   /* rasterloader.errors did not import: still report something */
        PyErr_Format(PyExc_RuntimeError, "%s: %U", raster_status_str(st), msg);
        return NULL;
    }
    PyObject *cls = class_for(st, cause);
    PyObject *exc = PyObject_CallFunction(cls, "Oi", msg, (int)st);
    if (exc == NULL)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

PyObject *
rl_raise(raster_status_t st)
{
    const char *text = raster_last_error();
    /* C's message is bytes of unknown encoding (a path, GDAL's words):
     * decoded as file names are, so no byte is lost or refused. */
    PyObject *msg = PyUnicode_DecodeFSDefault((text != NULL && text[0]) ? text : raster_status_str(st));
    if (msg == NULL)
        return NULL;
    raise_with(st, raster_last_error_cause(), msg);
    Py_DECREF(msg);
    return NULL;
}

/* Python's own formatter (PyUnicode_FromFormatV), so the binding's messages
 * take objects (%U, %R, %S, %A) as well as C values: the one formatting path
 * of every rl_raise_status() call. */
PyObject *
rl_raise_status(raster_status_t st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (msg == NULL)
        return NULL;
    raise_with(st, RASTER_CAUSE_NONE, msg);
    Py_DECREF(msg);
    return NULL;
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
