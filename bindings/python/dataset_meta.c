/*
 * dataset_meta.c - rasterloader._core's metadata functions: the C library's
 * Metadata (GDAL) section (lib/api/metadata.c) bound one function each.
 *
 * Each takes a _core.Dataset first and returns plain Python values (str,
 * lists, tuples); rasterloader/_dataset_meta.py turns them into rasterio's
 * types (dicts, CRS, GroundControlPoint, Statistics).  Every call may touch
 * the file, so it runs with the GIL released, holding its own C reference
 * on the dataset so a close() on another thread cannot free it meanwhile.
 */
#include "binding.h"

#include <string.h>

/* The open C dataset of 'o', retained for a call with the GIL released (the
 * caller releases it); NULL with the exception set. */
static raster_dataset_t *
dataset_of(PyObject *o)
{
    if (!PyObject_TypeCheck(o, Dataset_Type)) {
        PyErr_Format(PyExc_TypeError, "expected a rasterloader._core.Dataset, not %.100s",
                     Py_TYPE(o)->tp_name);
        return NULL;
    }
    DatasetObject *d = (DatasetObject *)o;
    if (d->ds == NULL) {
        rl_raise_status(RASTER_E_CLOSED, "%U: dataset is closed", d->path);
        return NULL;
    }
    return raster_dataset_retain(d->ds);
}

/* A NULL-terminated list from the library as a list of str (freed here). */
static PyObject *
strings_to_list(char **items)
{
    PyObject *out = PyList_New(0);
    for (char **p = items; out != NULL && p != NULL && *p != NULL; p++) {
        PyObject *s = PyUnicode_DecodeUTF8(*p, (Py_ssize_t)strlen(*p), "surrogateescape");
        if (s == NULL || PyList_Append(out, s) < 0)
            Py_CLEAR(out);
        Py_XDECREF(s);
    }
    raster_free(items);
    return out;
}

static PyObject *
string_or_none(char *s)
{
    PyObject *out = s == NULL ? Py_NewRef(Py_None)
                              : PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
    raster_free(s);
    return out;
}

/* Run 'call' with the GIL released on a retained dataset. */
#define META_CALL(ds, st, call)      \
    do {                             \
        Py_BEGIN_ALLOW_THREADS       \
        st = (call);                 \
        Py_END_ALLOW_THREADS         \
        if (st != RASTER_OK)         \
            rl_raise(st);            \
        raster_dataset_release(ds);  \
    } while (0)

static PyObject *
meta_metadata(PyObject *mod, PyObject *args)
{
    PyObject *o;
    int band;
    const char *domain = NULL;
    if (!PyArg_ParseTuple(args, "Oi|z:metadata", &o, &band, &domain))
        return NULL;
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    char **items = NULL;
    raster_status_t st;
    META_CALL(ds, st, raster_metadata(ds, band, domain, &items));
    return st == RASTER_OK ? strings_to_list(items) : NULL;
}

static PyObject *
meta_metadata_item(PyObject *mod, PyObject *args)
{
    PyObject *o;
    int band, overview;
    const char *key, *domain = NULL;
    if (!PyArg_ParseTuple(args, "Oiis|z:metadata_item", &o, &band, &overview, &key, &domain))
        return NULL;
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    char *value = NULL;
    raster_status_t st;
    META_CALL(ds, st, raster_metadata_item(ds, band, overview, key, domain, &value));
    return st == RASTER_OK ? string_or_none(value) : NULL;
}

static PyObject *
meta_metadata_domains(PyObject *mod, PyObject *args)
{
    PyObject *o;
    int band;
    if (!PyArg_ParseTuple(args, "Oi:metadata_domains", &o, &band))
        return NULL;
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    char **items = NULL;
    raster_status_t st;
    META_CALL(ds, st, raster_metadata_domains(ds, band, &items));
    return st == RASTER_OK ? strings_to_list(items) : NULL;
}

static PyObject *
meta_file_list(PyObject *mod, PyObject *o)
{
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    char **items = NULL;
    raster_status_t st;
    META_CALL(ds, st, raster_file_list(ds, &items));
    return st == RASTER_OK ? strings_to_list(items) : NULL;
}

static PyObject *
meta_band_text(PyObject *mod, PyObject *args)
{
    PyObject *o;
    int band, which;
    if (!PyArg_ParseTuple(args, "Oii:band_text", &o, &band, &which))
        return NULL;
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    char *text = NULL;
    raster_status_t st;
    META_CALL(ds, st, raster_band_text(ds, band, (raster_band_text_t)which, &text));
    return st == RASTER_OK ? string_or_none(text) : NULL;
}

static PyObject *
meta_band_scale_offset(PyObject *mod, PyObject *args)
{
    PyObject *o;
    int band;
    if (!PyArg_ParseTuple(args, "Oi:band_scale_offset", &o, &band))
        return NULL;
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    double scale = 1.0, offset = 0.0;
    raster_status_t st;
    META_CALL(ds, st, raster_band_scale_offset(ds, band, &scale, &offset));
    return st == RASTER_OK ? Py_BuildValue("(dd)", scale, offset) : NULL;
}

static PyObject *
meta_band_colormap(PyObject *mod, PyObject *args)
{
    PyObject *o;
    int band;
    if (!PyArg_ParseTuple(args, "Oi:band_colormap", &o, &band))
        return NULL;
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    int16_t *e = NULL;
    int n = -1;
    raster_status_t st;
    META_CALL(ds, st, raster_band_colormap(ds, band, &e, &n));
    if (st != RASTER_OK)
        return NULL;
    if (n < 0)
        Py_RETURN_NONE;
    PyObject *out = PyList_New(n);
    for (int i = 0; out != NULL && i < n; i++) {
        PyObject *t = Py_BuildValue("(hhhh)", e[4 * i], e[4 * i + 1], e[4 * i + 2], e[4 * i + 3]);
        if (t == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, t);
    }
    raster_free(e);
    return out;
}

static PyObject *
meta_band_overviews(PyObject *mod, PyObject *args)
{
    PyObject *o;
    int band;
    if (!PyArg_ParseTuple(args, "Oi:band_overviews", &o, &band))
        return NULL;
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    int *f = NULL, n = 0;
    raster_status_t st;
    META_CALL(ds, st, raster_band_overviews(ds, band, &f, &n));
    if (st != RASTER_OK)
        return NULL;
    PyObject *out = PyList_New(n);
    for (int i = 0; out != NULL && i < n; i++) {
        PyObject *v = PyLong_FromLong(f[i]);
        if (v == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, v);
    }
    raster_free(f);
    return out;
}

static PyObject *
meta_gcps(PyObject *mod, PyObject *o)
{
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    raster_gcp_t *g = NULL;
    int n = 0;
    char *wkt = NULL;
    raster_status_t st;
    META_CALL(ds, st, raster_gcps(ds, &g, &n, &wkt));
    if (st != RASTER_OK)
        return NULL;
    PyObject *list = PyList_New(n);
    for (int i = 0; list != NULL && i < n; i++) {
        PyObject *t = Py_BuildValue("(ssddddd)", g[i].id, g[i].info, g[i].col, g[i].row, g[i].x,
                                    g[i].y, g[i].z);
        if (t == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, t);
    }
    raster_free(g);
    PyObject *w = string_or_none(wkt);
    if (list == NULL || w == NULL) {
        Py_XDECREF(list);
        Py_XDECREF(w);
        return NULL;
    }
    return Py_BuildValue("(NN)", list, w);
}

static PyObject *
meta_band_checksum(PyObject *mod, PyObject *args)
{
    PyObject *o;
    int band;
    long long c, r, w, h;
    if (!PyArg_ParseTuple(args, "Oi(LLLL):band_checksum", &o, &band, &c, &r, &w, &h))
        return NULL;
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    const raster_window_t win = {c, r, w, h};
    int sum = 0;
    raster_status_t st;
    META_CALL(ds, st, raster_band_checksum(ds, band, win, &sum));
    return st == RASTER_OK ? PyLong_FromLong(sum) : NULL;
}

static PyObject *
meta_band_statistics(PyObject *mod, PyObject *args)
{
    PyObject *o;
    int band, flags;
    if (!PyArg_ParseTuple(args, "Oii:band_statistics", &o, &band, &flags))
        return NULL;
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    raster_stats_t s = {0};
    raster_status_t st;
    META_CALL(ds, st, raster_band_statistics(ds, band, flags, &s));
    return st == RASTER_OK ? Py_BuildValue("(dddd)", s.min, s.max, s.mean, s.std) : NULL;
}

static PyObject *
meta_to_lnglat(PyObject *mod, PyObject *args)
{
    PyObject *o;
    double x, y, lng = 0, lat = 0;
    if (!PyArg_ParseTuple(args, "Odd:to_lnglat", &o, &x, &y))
        return NULL;
    raster_dataset_t *ds = dataset_of(o);
    if (ds == NULL)
        return NULL;
    raster_status_t st;
    META_CALL(ds, st, raster_to_lnglat(ds, x, y, &lng, &lat));
    return st == RASTER_OK ? Py_BuildValue("(dd)", lng, lat) : NULL;
}

static PyMethodDef meta_functions[] = {
    {"metadata", meta_metadata, METH_VARARGS,
     "metadata(ds, band, domain=None) -> ['KEY=VALUE', ...] (band 0: the dataset)"},
    {"metadata_item", meta_metadata_item, METH_VARARGS,
     "metadata_item(ds, band, overview, key, domain=None) -> str or None (overview -1: the band)"},
    {"metadata_domains", meta_metadata_domains, METH_VARARGS,
     "metadata_domains(ds, band) -> [domain, ...] (band 0: the dataset)"},
    {"file_list", meta_file_list, METH_O, "file_list(ds) -> [path, ...] (GDALGetFileList)"},
    {"band_text", meta_band_text, METH_VARARGS,
     "band_text(ds, band, which) -> str (which 0: description, 1: units; '' when none)"},
    {"band_scale_offset", meta_band_scale_offset, METH_VARARGS,
     "band_scale_offset(ds, band) -> (scale, offset)"},
    {"band_colormap", meta_band_colormap, METH_VARARGS,
     "band_colormap(ds, band) -> [(c1, c2, c3, c4), ...] or None without a color table"},
    {"band_overviews", meta_band_overviews, METH_VARARGS,
     "band_overviews(ds, band) -> [factor, ...]"},
    {"gcps", meta_gcps, METH_O,
     "gcps(ds) -> ([(id, info, col, row, x, y, z), ...], crs_wkt)"},
    {"band_checksum", meta_band_checksum, METH_VARARGS,
     "band_checksum(ds, band, (col_off, row_off, width, height)) -> int (GDALChecksumImage)"},
    {"band_statistics", meta_band_statistics, METH_VARARGS,
     "band_statistics(ds, band, flags) -> (min, max, mean, std); flags: 1 approx, 2 compute, 4 clear"},
    {"to_lnglat", meta_to_lnglat, METH_VARARGS,
     "to_lnglat(ds, x, y) -> (longitude, latitude) in WGS 84"},
    {NULL, NULL, 0, NULL},
};

int
dataset_meta_init(PyObject *m)
{
    return PyModule_AddFunctions(m, meta_functions);
}
