/*
 * pool_type.c - rasterloader.BufferPool: a bounded pool of pixel buffers.
 *
 * Wraps raster_pool_t.  Tiles and their DLPack exports hold C references to
 * their buffers (which hold the pool), so dropping or closing the Python
 * object while tensors are alive is legal: the memory goes when the last
 * tensor does.  Calls that wait on the pool with the GIL released are
 * counted in 'users' so that close() from another thread cannot destroy the
 * pool under them; the last one out destroys it.
 */
#include "binding.h"

#include <structmember.h>

PyTypeObject *Pool_Type;

raster_pool_t *
pool_enter(PoolObject *p)
{
    if (p->pool == NULL || p->closing) {
        rl_raise_status(RASTER_E_CLOSED, "BufferPool is closed");
        return NULL;
    }
    p->users++;
    return p->pool;
}

static void
pool_destroy_now(PoolObject *p)
{
    raster_pool_t *pool = p->pool;
    p->pool = NULL;
    raster_pool_destroy(pool);   /* only marks it closing while buffers are out */
}

void
pool_leave(PoolObject *p)
{
    if (--p->users == 0 && p->closing)
        pool_destroy_now(p);
}

static PyObject *
Pool_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"budget_bytes", NULL};
    PyObject *o;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:BufferPool", kwlist, &o))
        return NULL;
    /* "K" would wrap -1 to 2^64-1 and 2^70 to 0: check the int itself. */
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "BufferPool budget_bytes must be an int, not %.100s",
                     Py_TYPE(o)->tp_name);
        return NULL;
    }
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    if (overflow < 0 || (overflow == 0 && v <= 0))
        return rl_raise_status(RASTER_E_INVALID_ARG, "BufferPool budget_bytes must be > 0, not %s",
                               overflow < 0 ? "a huge negative number" : (v == 0 ? "0" : "negative"));
    if (overflow > 0 || (unsigned long long)v > (unsigned long long)SIZE_MAX)
        return rl_raise_status(RASTER_E_INVALID_ARG,
                               "BufferPool budget_bytes is larger than the address space");
    const unsigned long long budget = (unsigned long long)v;
    PoolObject *self = (PoolObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    const raster_status_t st = raster_pool_create((size_t)budget, &self->pool);
    if (st != RASTER_OK) {
        rl_raise(st);
        Py_DECREF(self);
        return NULL;
    }
    self->budget_bytes = (size_t)budget;
    return (PyObject *)self;
}

static void
Pool_dealloc(PoolObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->pool != NULL)      /* users == 0 here: they held references */
        pool_destroy_now(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int
Pool_traverse(PoolObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static PyObject *
Pool_close(PoolObject *self, PyObject *unused)
{
    if (self->pool != NULL) {
        self->closing = 1;
        if (self->users == 0)
            pool_destroy_now(self);
    }
    Py_RETURN_NONE;
}

static PyObject *
Pool_stats(PoolObject *self, PyObject *unused)
{
    if (self->pool == NULL || self->closing)
        return rl_raise_status(RASTER_E_CLOSED, "BufferPool is closed");
    raster_pool_stats_t s;
    raster_pool_get_stats(self->pool, &s);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:L,s:L,s:K}",
                         "budget_bytes", (unsigned long long)s.budget_bytes,
                         "bytes_in_use", (unsigned long long)s.bytes_in_use,
                         "bytes_reserved", (unsigned long long)s.bytes_reserved,
                         "peak_bytes_in_use", (unsigned long long)s.peak_bytes_in_use,
                         "acquires", (unsigned long long)s.acquires,
                         "waits", (unsigned long long)s.waits,
                         "timeouts", (unsigned long long)s.timeouts,
                         "block_mallocs", (unsigned long long)s.block_mallocs,
                         "buffers_outstanding", (long long)s.buffers_outstanding,
                         "exports_outstanding", (long long)s.exports_outstanding,
                         "export_mallocs", (unsigned long long)s.export_mallocs);
}

static PyObject *
Pool_enter(PoolObject *self, PyObject *unused)
{
    return Py_NewRef(self);
}

static PyObject *
Pool_exit(PoolObject *self, PyObject *args)
{
    return Pool_close(self, NULL);
}

static PyObject *
Pool_get_closed(PoolObject *self, void *closure)
{
    return PyBool_FromLong(self->pool == NULL || self->closing);
}

static PyObject *
Pool_get_budget(PoolObject *self, void *closure)
{
    return PyLong_FromSize_t(self->budget_bytes);
}

static PyObject *
Pool_repr(PoolObject *self)
{
    if (self->pool == NULL || self->closing)
        return PyUnicode_FromFormat("<rasterloader.BufferPool closed, budget %zu bytes>",
                                    self->budget_bytes);
    raster_pool_stats_t s;
    raster_pool_get_stats(self->pool, &s);
    return PyUnicode_FromFormat("<rasterloader.BufferPool budget %zu bytes, %zu in use, "
                                "%lld buffer(s) out>",
                                self->budget_bytes, s.bytes_in_use,
                                (long long)s.buffers_outstanding);
}

static PyMethodDef Pool_methods[] = {
    {"stats", (PyCFunction)Pool_stats, METH_NOARGS,
     "stats() -> dict of the pool's counters: budget_bytes, bytes_in_use, bytes_reserved,\n"
     "peak_bytes_in_use, acquires, waits, timeouts, block_mallocs, buffers_outstanding,\n"
     "exports_outstanding, export_mallocs.  bytes_in_use counts whole size-class blocks."},
    {"close", (PyCFunction)Pool_close, METH_NOARGS,
     "close() destroys the pool; tiles and tensors still out stay valid and return\n"
     "their memory when they are released."},
    {"__enter__", (PyCFunction)Pool_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Pool_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Pool_getset[] = {
    {"closed", (getter)Pool_get_closed, NULL, "True after close()", NULL},
    {"budget_bytes", (getter)Pool_get_budget, NULL, "the byte budget", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Pool_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(PoolObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Pool_slots[] = {
    {Py_tp_new, Pool_new},
    {Py_tp_dealloc, Pool_dealloc},
    {Py_tp_traverse, Pool_traverse},
    {Py_tp_repr, Pool_repr},
    {Py_tp_methods, Pool_methods},
    {Py_tp_getset, Pool_getset},
    {Py_tp_members, Pool_members},
    {Py_tp_doc, (void *)"BufferPool(budget_bytes)\n--\n\n"
                        "A pool of pixel buffers that never holds more than budget_bytes. Reads\n"
                        "that need a buffer while the budget is spent wait (back-pressure) and\n"
                        "raise PoolTimeoutError after their timeout."},
    {0, NULL},
};

static PyType_Spec Pool_spec = {
    .name = "rasterloader._core.BufferPool",
    .basicsize = sizeof(PoolObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = Pool_slots,
};

int
pool_type_init(PyObject *m)
{
    Pool_Type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &Pool_spec, NULL);
    if (Pool_Type == NULL)
        return -1;
    return PyModule_AddObjectRef(m, "BufferPool", (PyObject *)Pool_Type);
}
