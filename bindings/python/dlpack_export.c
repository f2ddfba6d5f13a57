/*
 * dlpack_export.c - Tile.__dlpack__: argument negotiation and capsules.
 *
 * The tensor records come from raster_buffer_to_dlpack(), which retains the
 * buffer and gives a pure-C deleter (any thread, no GIL, valid after the pool
 * is destroyed).  This file adds the array-API protocol on top (DLPACK.md §2,
 * §3): which capsule to make, the errors consumers expect (BufferError for
 * "cannot export", TypeError only for malformed arguments, because numpy and
 * torch retry without arguments on TypeError), and the capsule destructor
 * that frees an export nobody consumed.  copy=True makes one self-contained
 * malloc'd block (header, shape, strides, pixels) outside the pool.
 */
#include "binding.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(raster_DLTensor) == 48, "DLTensor is 48 bytes");
_Static_assert(offsetof(raster_DLTensor, byte_offset) == 40, "DLTensor.byte_offset at 40");
_Static_assert(sizeof(raster_DLManagedTensor) == 64, "DLManagedTensor is 64 bytes");
_Static_assert(offsetof(raster_DLManagedTensor, deleter) == 56, "legacy deleter at 56");
_Static_assert(sizeof(raster_DLManagedTensorVersioned) == 80, "DLManagedTensorVersioned is 80 bytes");
_Static_assert(offsetof(raster_DLManagedTensorVersioned, deleter) == 16, "versioned deleter at 16");
_Static_assert(offsetof(raster_DLManagedTensorVersioned, flags) == 24, "flags at 24");
_Static_assert(offsetof(raster_DLManagedTensorVersioned, dl_tensor) == 32, "tensor at 32");

static const char CAP_LEGACY[] = "dltensor";
static const char CAP_VERSIONED[] = "dltensor_versioned";
static const char CAP_LEGACY_USED[] = "used_dltensor";
static const char CAP_VERSIONED_USED[] = "used_dltensor_versioned";

/* A consumer renames the capsule when it takes the tensor; after that the
 * deleter call is theirs.  Otherwise nobody took it: free it here.  The
 * deleters are C refcounts only, safe with the GIL held or not. */
static void
capsule_destructor_legacy(PyObject *cap)
{
    if (PyCapsule_IsValid(cap, CAP_LEGACY_USED))
        return;
    raster_DLManagedTensor *m = PyCapsule_GetPointer(cap, CAP_LEGACY);
    if (m == NULL) {
        PyErr_WriteUnraisable(cap);
        return;
    }
    if (m->deleter != NULL)
        m->deleter(m);
}

static void
capsule_destructor_versioned(PyObject *cap)
{
    if (PyCapsule_IsValid(cap, CAP_VERSIONED_USED))
        return;
    raster_DLManagedTensorVersioned *m = PyCapsule_GetPointer(cap, CAP_VERSIONED);
    if (m == NULL) {
        PyErr_WriteUnraisable(cap);
        return;
    }
    if (m->deleter != NULL)
        m->deleter(m);
}

/* ------------------------------ copy=True ------------------------------ */

/* One block: managed struct, shape[4], strides[4], then the pixels at a
 * 64-byte boundary.  The deleter is free(): no pool, no Python. */
typedef struct {
    union {
        raster_DLManagedTensor legacy;
        raster_DLManagedTensorVersioned versioned;
    } m;
    int64_t shape[4], strides[4];
} copy_header_t;

#define COPY_DATA_OFFSET ((sizeof(copy_header_t) + 63) & ~(size_t)63)

static void
copy_delete_legacy(raster_DLManagedTensor *m)
{
    free(m);
}

static void
copy_delete_versioned(raster_DLManagedTensorVersioned *m)
{
    free(m);
}

static const raster_DLDataType dl_dtypes[RASTER_DTYPE_COUNT] = {
    {1, 8, 1}, {0, 8, 1}, {1, 16, 1}, {0, 16, 1}, {1, 32, 1},
    {0, 32, 1}, {2, 16, 1}, {2, 32, 1}, {2, 64, 1}};

static void *
export_copy(TileObject *t, int versioned)
{
    void *block = NULL;
    if (posix_memalign(&block, 64, COPY_DATA_OFFSET + (size_t)t->nbytes) != 0)
        return PyErr_NoMemory();
    copy_header_t *hdr = block;
    memset(hdr, 0, sizeof *hdr);
    uint8_t *data = (uint8_t *)block + COPY_DATA_OFFSET;
    memcpy(data, raster_buffer_data(t->buf), (size_t)t->nbytes);
    for (int i = 0; i < t->ndim; i++) {
        hdr->shape[i] = t->shape[i];
        hdr->strides[i] = t->strides[i] / (Py_ssize_t)raster_dtype_size(t->dtype);
    }
    const raster_DLTensor dl = {data, {1, 0}, t->ndim, dl_dtypes[t->dtype],
                                hdr->shape, hdr->strides, 0};
    if (versioned) {
        hdr->m.versioned.version.major = RASTER_DLPACK_MAJOR;
        hdr->m.versioned.version.minor = RASTER_DLPACK_MINOR;
        hdr->m.versioned.manager_ctx = NULL;
        hdr->m.versioned.deleter = copy_delete_versioned;
        hdr->m.versioned.flags = RASTER_DLPACK_FLAG_IS_COPIED;
        hdr->m.versioned.dl_tensor = dl;
    } else {
        hdr->m.legacy.dl_tensor = dl;
        hdr->m.legacy.manager_ctx = NULL;
        hdr->m.legacy.deleter = copy_delete_legacy;
    }
    return block;
}

/* ------------------------------ negotiation ---------------------------- */

/* max_version: None -> legacy; (major, minor) -> versioned iff major >= 1. */
static int
parse_max_version(PyObject *o, int *versioned)
{
    *versioned = 0;
    if (o == Py_None)
        return 0;
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 2 || !PyLong_Check(PyTuple_GET_ITEM(o, 0)) ||
        !PyLong_Check(PyTuple_GET_ITEM(o, 1))) {
        PyErr_Format(PyExc_TypeError, "max_version must be None or a (major, minor) tuple of ints, "
                                      "not %R", o);
        return -1;
    }
    const long major = PyLong_AsLong(PyTuple_GET_ITEM(o, 0));
    if (major == -1 && PyErr_Occurred())
        return -1;
    *versioned = major >= 1;
    return 0;
}

static int
check_device(PyObject *o)
{
    if (o == Py_None)
        return 0;
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 2) {
        PyErr_Format(PyExc_TypeError, "dl_device must be None or a (device_type, device_id) "
                                      "tuple, not %R", o);
        return -1;
    }
    const long type = PyLong_AsLong(PyTuple_GET_ITEM(o, 0));
    const long id = PyLong_AsLong(PyTuple_GET_ITEM(o, 1));
    if (PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "dl_device must hold two ints, not %R", o);
        return -1;
    }
    if (type != 1 || id != 0) {
        PyErr_Format(PyExc_BufferError,
                     "Tile lives on the CPU (1, 0) and cannot be exported to device (%ld, %ld)",
                     type, id);
        return -1;
    }
    return 0;
}

PyObject *
tile_dlpack(TileObject *t, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"stream", "max_version", "dl_device", "copy", NULL};
    PyObject *stream = Py_None, *max_version = Py_None, *dl_device = Py_None, *copy = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OOOO:__dlpack__", kwlist, &stream,
                                     &max_version, &dl_device, &copy))
        return NULL;
    int versioned;
    if (parse_max_version(max_version, &versioned) < 0 || check_device(dl_device) < 0)
        return NULL;
    if (stream != Py_None) {
        PyErr_Format(PyExc_ValueError, "stream must be None for a CPU tensor, not %R", stream);
        return NULL;
    }
    if (copy != Py_None && !PyBool_Check(copy)) {
        PyErr_Format(PyExc_TypeError, "copy must be None, True or False, not %R", copy);
        return NULL;
    }
    const int want_copy = copy == Py_True;
    if (t->buf == NULL) {
        PyErr_SetString(PyExc_BufferError, "Tile was released; it cannot be exported");
        return NULL;
    }
    if (t->read_only && !versioned && !want_copy) {
        PyErr_SetString(PyExc_BufferError,
                        "Tile is read-only and a legacy DLPack capsule cannot say so; ask for "
                        "max_version=(1, 0) or copy=True");
        return NULL;
    }
    void *managed = NULL;
    if (want_copy) {
        if ((managed = export_copy(t, versioned)) == NULL)
            return NULL;
    } else {
        raster_dlpack_request_t req;
        raster_dlpack_request_init(&req);
        req.index = t->index;
        req.squeeze_channels = t->squeeze;
        req.versioned = versioned;
        req.read_only = t->read_only;
        const raster_status_t st = raster_buffer_to_dlpack(t->buf, &req, &managed);
        if (st != RASTER_OK) {
            /* Nothing the caller could fix by retrying without arguments. */
            const char *msg = raster_last_error();
            PyErr_Format(PyExc_BufferError, "Tile cannot be exported: %s",
                         (msg && msg[0]) ? msg : raster_status_str(st));
            return NULL;
        }
    }
    PyObject *cap = PyCapsule_New(managed, versioned ? CAP_VERSIONED : CAP_LEGACY,
                                  versioned ? capsule_destructor_versioned
                                            : capsule_destructor_legacy);
    if (cap == NULL) {
        if (versioned)
            ((raster_DLManagedTensorVersioned *)managed)
                ->deleter((raster_DLManagedTensorVersioned *)managed);
        else
            ((raster_DLManagedTensor *)managed)->deleter((raster_DLManagedTensor *)managed);
        return NULL;
    }
    return cap;
}

PyObject *
dlpack_layout(PyObject *mod, PyObject *unused)
{
    return Py_BuildValue(
        "{s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:(ii)}", "tensor_size", (Py_ssize_t)sizeof(raster_DLTensor),
        "managed_size", (Py_ssize_t)sizeof(raster_DLManagedTensor), "managed_deleter",
        (Py_ssize_t)offsetof(raster_DLManagedTensor, deleter), "versioned_size",
        (Py_ssize_t)sizeof(raster_DLManagedTensorVersioned), "versioned_deleter",
        (Py_ssize_t)offsetof(raster_DLManagedTensorVersioned, deleter), "versioned_flags",
        (Py_ssize_t)offsetof(raster_DLManagedTensorVersioned, flags), "versioned_tensor",
        (Py_ssize_t)offsetof(raster_DLManagedTensorVersioned, dl_tensor), "version",
        RASTER_DLPACK_MAJOR, RASTER_DLPACK_MINOR);
}
