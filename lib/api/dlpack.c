/*
 * dlpack.c - DLManagedTensor / DLManagedTensorVersioned exports of pooled
 * buffers, without a copy.
 *
 * Decisions (DLPACK.md gives the reasons; consumers are numpy and torch):
 * - Our own structs in the public header, checked here against the DLPack
 *   1.x layout, so nobody needs dlpack.h.  Version stamped {1, 0}.
 * - 'data' is the address of the first exported element and byte_offset is
 *   0: torch ignores byte_offset.  'strides' are always filled (elements,
 *   never negative), even for compact tensors; DLPack 1.2 requires it.
 * - A zero-size export points at the buffer's base, never NULL: torch < 2.3
 *   never calls the deleter of a tensor whose data is NULL.
 * - A read-only request is only possible on the versioned layout (it is a
 *   flag there); the legacy layout cannot say it, so asking for it is
 *   RASTER_E_INVALID_ARG rather than a silently writable tensor.
 * - One record per export holds the managed struct, shape and strides.
 *   Records come from a per-pool free list (pool.c), so a steady export loop
 *   does not call malloc (stats.export_mallocs stays flat).
 * - The export holds a buffer reference, and the buffer holds the pool, so
 *   the deleter is valid from any thread, with or without the GIL, and after
 *   raster_pool_destroy().  It is pure C: no Python API, no locks besides
 *   the pool mutex.  The two layouts get separate deleters (the deleter sits
 *   at offset 56 in one and 16 in the other).  Calling a deleter twice
 *   aborts with a message while the record is still unused; once recycled
 *   for a new export that can no longer be told apart.
 */
#include "api.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

/* Layouts of DLPack 1.0/1.1 (dlpack.h), identical on LP64 and LLP64. */
_Static_assert(sizeof(raster_DLPackVersion) == 8, "DLPackVersion");
_Static_assert(sizeof(raster_DLDevice) == 8, "DLDevice");
_Static_assert(sizeof(raster_DLDataType) == 4, "DLDataType");
_Static_assert(sizeof(raster_DLTensor) == 48, "DLTensor size");
_Static_assert(offsetof(raster_DLTensor, data) == 0, "DLTensor.data");
_Static_assert(offsetof(raster_DLTensor, device) == 8, "DLTensor.device");
_Static_assert(offsetof(raster_DLTensor, ndim) == 16, "DLTensor.ndim");
_Static_assert(offsetof(raster_DLTensor, dtype) == 20, "DLTensor.dtype");
_Static_assert(offsetof(raster_DLTensor, shape) == 24, "DLTensor.shape");
_Static_assert(offsetof(raster_DLTensor, strides) == 32, "DLTensor.strides");
_Static_assert(offsetof(raster_DLTensor, byte_offset) == 40, "DLTensor.byte_offset");
_Static_assert(sizeof(raster_DLManagedTensor) == 64, "DLManagedTensor size");
_Static_assert(offsetof(raster_DLManagedTensor, manager_ctx) == 48, "DLManagedTensor.manager_ctx");
_Static_assert(offsetof(raster_DLManagedTensor, deleter) == 56, "DLManagedTensor.deleter");
_Static_assert(sizeof(raster_DLManagedTensorVersioned) == 80, "DLManagedTensorVersioned size");
_Static_assert(offsetof(raster_DLManagedTensorVersioned, version) == 0, "Versioned.version");
_Static_assert(offsetof(raster_DLManagedTensorVersioned, manager_ctx) == 8, "Versioned.manager_ctx");
_Static_assert(offsetof(raster_DLManagedTensorVersioned, deleter) == 16, "Versioned.deleter");
_Static_assert(offsetof(raster_DLManagedTensorVersioned, flags) == 24, "Versioned.flags");
_Static_assert(offsetof(raster_DLManagedTensorVersioned, dl_tensor) == 32, "Versioned.dl_tensor");

enum { DL_INT = 0, DL_UINT = 1, DL_FLOAT = 2 };            /* kDLInt, kDLUInt, kDLFloat */
enum { DL_CPU = 1 };                                       /* kDLCPU */
enum { EXPORT_LIVE = 0x444c4956u, EXPORT_DEAD = 0x444c4445u };

/* One export: what the consumer sees comes first, so the record is the
 * address handed out. */
typedef struct export_rec {
    union {
        raster_DLManagedTensor legacy;
        raster_DLManagedTensorVersioned versioned;
    } t;
    int64_t shape[4];             /* dl_tensor.shape points here */
    int64_t strides[4];           /* dl_tensor.strides points here */
    raster_buffer_t *buf;         /* the reference this export holds */
    atomic_uint state;            /* EXPORT_LIVE until the deleter runs */
} export_rec_t;
_Static_assert(sizeof(export_rec_t) <= RASTER__POOL_RECORD_NBYTES, "export record too big");

static raster_DLDataType
dl_dtype(raster_dtype_t dt)
{
    static const raster_DLDataType map[RASTER_DTYPE_COUNT] = {
        [RASTER_U8] = {DL_UINT, 8, 1},   [RASTER_I8] = {DL_INT, 8, 1},
        [RASTER_U16] = {DL_UINT, 16, 1}, [RASTER_I16] = {DL_INT, 16, 1},
        [RASTER_U32] = {DL_UINT, 32, 1}, [RASTER_I32] = {DL_INT, 32, 1},
        [RASTER_F16] = {DL_FLOAT, 16, 1}, [RASTER_F32] = {DL_FLOAT, 32, 1},
        [RASTER_F64] = {DL_FLOAT, 64, 1},
    };
    return map[dt];
}

void
raster_dlpack_request_init(raster_dlpack_request_t *req)
{
    if (req == NULL)
        return;
    memset(req, 0, sizeof *req);
    req->struct_size = sizeof *req;
    req->index = -1;
    req->height = req->width = -1;
    req->channels = -1;
}

/* Resolves one crop axis: 'off' >= 0, '*len' -1 (to the end) or >= 0, and
 * off + len within 'full'. */
static raster_status_t
crop_axis(const char *name, int64_t off, int64_t *len, int64_t full)
{
    RASTER_CHECK(off >= 0 && *len >= -1, RASTER_E_INVALID_ARG,
                 "raster_buffer_to_dlpack: negative %s crop (offset %" PRId64 ", length %" PRId64 ")",
                 name, off, *len);
    RASTER_CHECK(off <= full && (*len == -1 || *len <= full - off), RASTER_E_BOUNDS,
                 "raster_buffer_to_dlpack: %s crop %" PRId64 "+%" PRId64 " is outside 0..%" PRId64,
                 name, off, *len, full);
    if (*len == -1)
        *len = full - off;
    return RASTER_OK;
}

static void
export_finish(export_rec_t *rec)
{
    unsigned live = EXPORT_LIVE;
    if (!atomic_compare_exchange_strong(&rec->state, &live, EXPORT_DEAD))
        raster__abort("DLPack deleter(%p): tensor already deleted (deleter called twice?)",
                      (void *)rec);
    raster_buffer_t *const buf = rec->buf;
    /* Record first: our buffer reference is what keeps the pool alive. */
    raster__pool_record_put(raster__buffer_pool(buf), rec);
    raster_buffer_release(buf);
}

/* The deleters receive the address they were exported at, which is the
 * record (union first); manager_ctx says the same thing for consumers that
 * look. */
static void
delete_legacy(raster_DLManagedTensor *self)
{
    if (self != NULL)
        export_finish(self->manager_ctx);
}

static void
delete_versioned(raster_DLManagedTensorVersioned *self)
{
    if (self != NULL)
        export_finish(self->manager_ctx);
}

raster_status_t
raster_buffer_to_dlpack(raster_buffer_t *buf, const raster_dlpack_request_t *req,
                        void **managed_out)
{
    RASTER_CHECK(managed_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_buffer_to_dlpack: managed_out is NULL");
    *managed_out = NULL;
    RASTER_CHECK(buf != NULL, RASTER_E_INVALID_ARG, "raster_buffer_to_dlpack: buf is NULL");
    raster_dlpack_request_t r;
    raster_dlpack_request_init(&r);
    RASTER_TRY(raster__options_take(&r, sizeof r, req, RASTER__FIELD_END(raster_dlpack_request_t, index),
                                    "raster_dlpack_request", "raster_buffer_to_dlpack"));
    RASTER_CHECK(!r.read_only || r.versioned, RASTER_E_INVALID_ARG,
                 "raster_buffer_to_dlpack: read_only needs the versioned layout "
                 "(legacy DLManagedTensor has no read-only flag)");

    raster_dtype_t dt;
    int64_t shape[4];
    raster_buffer_shape(buf, &dt, shape);
    const int64_t b = shape[0], h = shape[1], w = shape[2], c = shape[3];
    RASTER_CHECK(r.index >= -1 && r.index < b, RASTER_E_BOUNDS,
                 "raster_buffer_to_dlpack: sample %" PRId64 " of a batch of %" PRId64, r.index, b);
    RASTER_TRY(crop_axis("row", r.row_off, &r.height, h));
    RASTER_TRY(crop_axis("column", r.col_off, &r.width, w));
    RASTER_TRY(crop_axis("channel", r.chan_off, &r.channels, c));
    RASTER_CHECK(!r.squeeze_channels || r.channels == 1, RASTER_E_INVALID_ARG,
                 "raster_buffer_to_dlpack: squeeze_channels needs one channel, not %" PRId64,
                 r.channels);

    export_rec_t *const rec = raster__pool_record_get(raster__buffer_pool(buf));
    if (rec == NULL)
        return RASTER_E_NOMEM;
    raster_buffer_retain(buf);
    rec->buf = buf;
    atomic_init(&rec->state, EXPORT_LIVE);

    /* Element strides of the compact [b,h,w,c] buffer; offsets cannot
     * overflow since the buffer's byte count did not. */
    const int64_t s_batch = h * w * c, s_row = w * c, s_col = c;
    const int64_t esize = (int64_t)raster_dtype_size(dt);
    int64_t first = r.row_off * s_row + r.col_off * s_col + r.chan_off;
    int ndim = 0;
    if (r.index < 0) {
        rec->shape[ndim] = b;
        rec->strides[ndim++] = s_batch;
    } else {
        first += r.index * s_batch;
    }
    rec->shape[ndim] = r.height;
    rec->strides[ndim++] = s_row;
    rec->shape[ndim] = r.width;
    rec->strides[ndim++] = s_col;
    if (!r.squeeze_channels) {
        rec->shape[ndim] = r.channels;
        rec->strides[ndim++] = 1;
    }
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= rec->shape[i];

    raster_DLTensor t;
    /* Zero elements: the base, always a valid non-NULL address. */
    t.data = (unsigned char *)raster_buffer_data(buf) + (numel > 0 ? first * esize : 0);
    t.device.device_type = DL_CPU;
    t.device.device_id = 0;
    t.ndim = ndim;
    t.dtype = dl_dtype(dt);
    t.shape = rec->shape;
    t.strides = rec->strides;
    t.byte_offset = 0;

    if (r.versioned) {
        raster_DLManagedTensorVersioned *const m = &rec->t.versioned;
        m->version.major = RASTER_DLPACK_MAJOR;
        m->version.minor = RASTER_DLPACK_MINOR;
        m->manager_ctx = rec;
        m->deleter = delete_versioned;
        m->flags = r.read_only ? RASTER_DLPACK_FLAG_READ_ONLY : 0;
        m->dl_tensor = t;
        *managed_out = m;
    } else {
        raster_DLManagedTensor *const m = &rec->t.legacy;
        m->dl_tensor = t;
        m->manager_ctx = rec;
        m->deleter = delete_legacy;
        *managed_out = m;
    }
    return RASTER_OK;
}
