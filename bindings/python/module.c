/*
 * module.c - rasterloader._core: module init, dtype names, constants.
 *
 * Each type file has an int xxx_type_init(PyObject *m); every return value
 * is checked, so a half-built module never imports.
 */
#include "binding.h"

#include <limits.h>
#include <string.h>

int
dtype_from_name(const char *name, raster_dtype_t *out)
{
    for (int i = 0; i < RASTER_DTYPE_COUNT; i++)
        if (strcmp(name, raster_dtype_name((raster_dtype_t)i)) == 0) {
            *out = (raster_dtype_t)i;
            return 1;
        }
    return 0;
}

int
dtype_converter(PyObject *o, void *out)
{
    const char *s = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
    if (s == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "dtype must be a str such as 'float32', not %R", o);
        return 0;
    }
    if (!dtype_from_name(s, (raster_dtype_t *)out)) {
        rl_raise_status(RASTER_E_INVALID_ARG,
                        "dtype %.100R is not one of uint8, int8, uint16, int16, uint32, int32, "
                        "float16, float32, float64", o);
        return 0;
    }
    return 1;
}

static PyObject *
mod_status_name(PyObject *mod, PyObject *arg)
{
    const long st = PyLong_AsLong(arg);
    if (st == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(raster_status_str((raster_status_t)st));
}

static PyObject *
mod_library_version(PyObject *mod, PyObject *unused)
{
    const unsigned v = raster_version_number();
    return Py_BuildValue("(III)", v / 10000u, v / 100u % 100u, v % 100u);
}

static PyObject *
mod_set_threads(PyObject *mod, PyObject *arg)
{
    const long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    raster_set_threads(n < -1 ? -1 : n > 1024 ? 1024 : (int)n);
    Py_RETURN_NONE;
}

static PyObject *
mod_get_threads(PyObject *mod, PyObject *unused)
{
    return PyLong_FromLong(raster_get_threads());
}

static PyObject *
mod_set_tile_cache_budget(PyObject *mod, PyObject *arg)
{
    const unsigned long long n = PyLong_AsUnsignedLongLong(arg);
    if (n == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    raster_tile_cache_set_budget(n > SIZE_MAX ? SIZE_MAX : (size_t)n);
    Py_RETURN_NONE;
}

static PyObject *
mod_tile_cache_stats(PyObject *mod, PyObject *unused)
{
    raster_tile_cache_stats_t s;
    raster_tile_cache_get_stats(&s);
    static const char *const modes[] = {"off", "private", "shared"};
    const char *mode = s.mode >= 0 && s.mode <= 2 ? modes[s.mode] : "?";
    return Py_BuildValue("{s:n,s:n,s:L,s:K,s:K,s:K,s:K,s:K,s:s,s:i,s:n,s:K,s:K,s:L,s:s,s:s}", "budget_bytes",
                         (Py_ssize_t)s.budget_bytes, "bytes_used", (Py_ssize_t)s.bytes_used, "entries",
                         (long long)s.entries, "hits", (unsigned long long)s.hits, "misses",
                         (unsigned long long)s.misses, "inserts", (unsigned long long)s.inserts, "evictions",
                         (unsigned long long)s.evictions, "block_mallocs", (unsigned long long)s.block_mallocs,
                         "mode", mode, "attached_processes", s.attached_processes, "capacity_bytes",
                         (Py_ssize_t)s.capacity_bytes, "repairs", (unsigned long long)s.repairs,
                         "reclaimed_pins", (unsigned long long)s.reclaimed_pins, "gdal_cache_bytes",
                         (long long)s.gdal_cache_bytes, "name", s.name, "reason", s.reason);
}

static PyObject *
mod_tile_cache_detach(PyObject *mod, PyObject *unused)
{
    Py_BEGIN_ALLOW_THREADS
    raster_tile_cache_detach();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* pool_block_nbytes(n): the bytes a pool charges for a request of n bytes. */
static PyObject *
mod_pool_block_nbytes(PyObject *mod, PyObject *arg)
{
    const unsigned long long n = PyLong_AsUnsignedLongLong(arg);
    if (n == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromSize_t(raster_pool_block_nbytes(n > SIZE_MAX ? SIZE_MAX : (size_t)n));
}

static PyMethodDef module_methods[] = {
    {"check_label_grid", (PyCFunction)(void (*)(void))mod_check_label_grid,
     METH_VARARGS | METH_KEYWORDS,
     "check_label_grid(image, label, *, label_resample=False, label_fill=0.0, label_dtype=None)\n\n"
     "The batch read's check that a label Dataset lies on its image's grid (or, with\n"
     "label_resample, shares its CRS); ValueError naming both files and grids."},
    {"read_batch", (PyCFunction)(void (*)(void))mod_read_batch, METH_VARARGS | METH_KEYWORDS,
     "read_batch(items, *, dtype=None, pool=None, out=None, mask_out=None, layout='bhwc',\n"
     "           bands=None, scale=None, offset=None, boundless=False, fill_value=0.0,\n"
     "           masks=False, threads=0, timeout_ms=-1, mean=None, std=None,\n"
     "           label_fill=0.0, label_dtype=None, validity=False, validity_out=None,\n"
     "           label_resample=False, out_hw=None, resampling=0) -> (image, mask, validity)\n\n"
     "Read items = [(Dataset, (col_off, row_off, width, height), label Dataset or None,\n"
     "label_band)] in parallel with the GIL released.  With pool=: a [B,H,W,C] Tile of\n"
     "dtype and, with masks=True, a [B,H,W] uint8 Tile (else None).  With out=: into that\n"
     "array/tensor ([B,H,W,C] or, layout='bchw', [B,C,H,W]) and mask_out ([B,H,W] uint8\n"
     "or None) and validity_out; returns (out, mask_out, validity_out).  A failing sample\n"
     "raises with .index set."},
    {"open_warped", (PyCFunction)(void (*)(void))mod_open_warped, METH_VARARGS | METH_KEYWORDS,
     "open_warped(src, *, crs, src_crs, resampling, tolerance, transform, ...) -> Dataset:\n"
     "GDAL's warper over src with rasterio's WarpedVRT options (raster_open_warped)"},
    {"warp_info", mod_warp_info, METH_O,
     "warp_info(ds) -> dict of what open_warped resolved (src_nodata, nodata, init_dest, alpha)"},
    {"mosaic_read", (PyCFunction)(void (*)(void))mod_mosaic_read, METH_VARARGS | METH_KEYWORDS,
     "mosaic_read(items, threads=0, lanes=None, validity=None): a Mosaic query's source reads,\n"
     "the GIL released once (raster_mosaic_read_sources: a lane's items in order, lanes in\n"
     "parallel); with lanes=[(plane, nodata, None or (divide, scale, offset))] and\n"
     "validity=[(dst, first_lane, lane_count)], raster_mosaic_read: the fill, validity masks\n"
     "and normalisation too."},
    {"pool_tile", mod_pool_tile, METH_VARARGS,
     "pool_tile(pool, dtype, h, w, c, timeout_ms) -> an unwritten pooled Tile (Mosaic.read_hwc)"},
    {"set_threads", mod_set_threads, METH_O,
     "set_threads(n) sets how many threads one read may use to decode its tiles\n"
     "(process-wide; n <= 0: the number of cores)"},
    {"get_threads", mod_get_threads, METH_NOARGS, "get_threads() -> the effective thread count"},
    {"set_tile_cache_budget", mod_set_tile_cache_budget, METH_O,
     "set_tile_cache_budget(nbytes) sets the budget of the cache of decoded tiles (native\n"
     "reader, compressed files), on by default: machine-wide in the shared arena (every\n"
     "attached process sees it, capped to the arena's capacity), per process in a private\n"
     "cache; 0 turns it off.  A hit is copied from the cache into the destination instead\n"
     "of being read and decoded."},
    {"tile_cache_stats", mod_tile_cache_stats, METH_NOARGS,
     "tile_cache_stats() -> dict of budget_bytes, bytes_used, entries, hits, misses,\n"
     "inserts, evictions, block_mallocs, mode ('shared', 'private', 'off'),\n"
     "attached_processes, capacity_bytes, repairs, reclaimed_pins, gdal_cache_bytes,\n"
     "name (the shm arena) and reason (why private or off, or why the budget was capped)"},
    {"_tile_cache_detach", mod_tile_cache_detach, METH_NOARGS,
     "_tile_cache_detach() leaves the shared tile-cache arena (unlinked if this was the\n"
     "last process attached); rasterloader._tile_cache calls it when a multiprocessing\n"
     "child ends, as those end with os._exit()"},
    {"pool_block_nbytes", mod_pool_block_nbytes, METH_O,
     "pool_block_nbytes(n) -> bytes a pool charges for a buffer of n bytes (its size class)"},
    {"status_name", mod_status_name, METH_O, "status_name(status) -> 'RASTER_E_...'"},
    {"library_version", mod_library_version, METH_NOARGS,
     "library_version() -> (major, minor, patch) of the linked C library"},
    {"dlpack_layout", dlpack_layout, METH_NOARGS,
     "dlpack_layout() -> sizes and offsets of the exported DLPack structs"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rasterloader._core",
    .m_doc = "C extension under the rasterloader package; use rasterloader.open().",
    .m_size = -1,
    .m_methods = module_methods,
};

/* STATUS = {"RASTER_OK": 0, "RASTER_E_INVALID_ARG": 1, ...} from the C
 * library's own names (raster_status_str), so rasterloader/errors.py never
 * repeats them; statuses are numbered densely from 0 and the first unknown
 * one ends the table. */
static int
status_table_init(PyObject *m)
{
    PyObject *table = PyDict_New();
    if (table == NULL)
        return -1;
    for (int st = RASTER_OK; st < 256; st++) {
        const char *name = raster_status_str((raster_status_t)st);
        if (strcmp(name, "RASTER_E_UNKNOWN") == 0)
            break;
        PyObject *v = PyLong_FromLong(st);
        const int rc = v != NULL ? PyDict_SetItemString(table, name, v) : -1;
        Py_XDECREF(v);
        if (rc < 0) {
            Py_DECREF(table);
            return -1;
        }
    }
    if (PyModule_AddObject(m, "STATUS", table) < 0) {
        Py_DECREF(table);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__core(void);

/* lib/dataset.c (internal.h): the module runs on rasterio's GDAL, whose
 * block cache the library must not shrink. */
void raster__gdal_cache_leave_alone(void);

PyMODINIT_FUNC
PyInit__core(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    /* After Python's own atexit handlers, among them multiprocessing's, which
     * SIGTERMs and joins daemonic children (DataLoader workers still running
     * when the program ends, or whose shutdown timed out: torch's SIGTERM
     * handler _exit()s them, so they never detach): leave the tile-cache arena,
     * and remove it if this process never attached and no live one is left. */
    raster__gdal_cache_leave_alone();
    static int at_exit_registered;
    if (!at_exit_registered)
        at_exit_registered = Py_AtExit(raster_tile_cache_detach) == 0;
    PyObject *dtypes = PyTuple_New(RASTER_DTYPE_COUNT);
    if (dtypes == NULL)
        goto fail;
    for (int i = 0; i < RASTER_DTYPE_COUNT; i++) {
        PyObject *s = PyUnicode_FromString(raster_dtype_name((raster_dtype_t)i));
        if (s == NULL) {
            Py_DECREF(dtypes);
            goto fail;
        }
        PyTuple_SET_ITEM(dtypes, i, s);
    }
    if (PyModule_AddObject(m, "DTYPES", dtypes) < 0) {
        Py_DECREF(dtypes);
        goto fail;
    }
    if (status_table_init(m) < 0 || dataset_type_init(m) < 0 || pool_type_init(m) < 0 ||
        tile_type_init(m) < 0 || dataset_meta_init(m) < 0 ||
        PyModule_AddStringConstant(m, "__version__", RASTER_VERSION_STRING) < 0 ||
        PyModule_AddIntConstant(m, "OK", RASTER_OK) < 0 ||
        PyModule_AddIntConstant(m, "E_INVALID_ARG", RASTER_E_INVALID_ARG) < 0 ||
        PyModule_AddIntConstant(m, "E_IO", RASTER_E_IO) < 0 ||
        PyModule_AddIntConstant(m, "E_FORMAT", RASTER_E_FORMAT) < 0 ||
        PyModule_AddIntConstant(m, "E_CORRUPT", RASTER_E_CORRUPT) < 0 ||
        PyModule_AddIntConstant(m, "E_UNSUPPORTED", RASTER_E_UNSUPPORTED) < 0 ||
        PyModule_AddIntConstant(m, "E_NOMEM", RASTER_E_NOMEM) < 0 ||
        PyModule_AddIntConstant(m, "E_BOUNDS", RASTER_E_BOUNDS) < 0 ||
        PyModule_AddIntConstant(m, "E_TIMEOUT", RASTER_E_TIMEOUT) < 0 ||
        PyModule_AddIntConstant(m, "E_CLOSED", RASTER_E_CLOSED) < 0 ||
        PyModule_AddIntConstant(m, "MASKS_BANDS", RASTER_MASKS_BANDS) < 0 ||
        PyModule_AddIntConstant(m, "MASKS_READ", RASTER_MASKS_READ) < 0 ||
        PyModule_AddIntConstant(m, "MASKS_DATASET", RASTER_MASKS_DATASET) < 0 ||
        PyModule_AddIntConstant(m, "READER_GDAL", RASTER_READER_GDAL) < 0 ||
        PyModule_AddIntConstant(m, "READER_NATIVE_TIFF", RASTER_READER_NATIVE_TIFF) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
