/*
 * check_dlpack.c - DLPack exports of pooled buffers: struct layout, dtype
 * codes for every dtype, shape/strides/data for the whole batch, one sample,
 * crops and channel subsets, flags and version, lifetime (deleter from
 * another thread and after raster_pool_destroy()), zero-size exports,
 * recycling of the tensor records, and errors.
 */
#include "test_util.h"
#include "runtime/runtime.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static raster_pool_t *
make_pool(size_t budget)
{
    raster_pool_t *p = NULL;
    ck_assert_int_eq(raster_pool_create(budget, &p), RASTER_OK);
    return p;
}

static raster_pool_stats_t
stats_of(const raster_pool_t *p)
{
    raster_pool_stats_t s;
    raster_pool_get_stats(p, &s);
    return s;
}

static raster_buffer_t *
acquire(raster_pool_t *p, raster_dtype_t dt, int64_t b, int64_t h, int64_t w, int64_t c)
{
    raster_buffer_t *buf = NULL;
    ck_assert_int_eq(raster_pool_acquire(p, dt, b, h, w, c, 0, &buf), RASTER_OK);
    return buf;
}

/* The tensor inside either layout, and its deleter call. */
static raster_DLTensor *
tensor_of(void *managed, int versioned)
{
    return versioned ? &((raster_DLManagedTensorVersioned *)managed)->dl_tensor
                     : &((raster_DLManagedTensor *)managed)->dl_tensor;
}

static void *
export(raster_buffer_t *buf, const raster_dlpack_request_t *req)
{
    void *m = NULL;
    ck_assert_int_eq(raster_buffer_to_dlpack(buf, req, &m), RASTER_OK);
    ck_assert_ptr_nonnull(m);
    return m;
}

/* Fills buf with a byte pattern that depends on the byte offset. */
static void
fill_pattern(raster_buffer_t *buf)
{
    raster_view_t v;
    ck_assert_int_eq(raster_buffer_view(buf, -1, &v), RASTER_OK);
    unsigned char *d = v.data;
    const size_t n = (size_t)(v.height * v.row_stride);
    for (size_t i = 0; i < n; i++)
        d[i] = (unsigned char)(i * 131 + (i >> 8) * 7 + 1);
}

/* Walks every element of 't' through its strides and checks that it is the
 * element the request names: [b][row_off + r][col_off + q][chan_off + k]. */
static void
check_elements(const raster_DLTensor *t, raster_buffer_t *buf, int64_t index, int64_t row_off,
               int64_t col_off, int64_t chan_off)
{
    raster_dtype_t dt;
    int64_t sh[4];
    raster_buffer_shape(buf, &dt, sh);
    const size_t es = raster_dtype_size(dt);
    const unsigned char *base = raster_buffer_data(buf);
    const int four = t->ndim == 4;
    const int64_t nb = four ? t->shape[0] : 1;
    const int64_t *shp = t->shape + four, *str = t->strides + four;
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t r = 0; r < shp[0]; r++)
            for (int64_t q = 0; q < shp[1]; q++)
                for (int64_t k = 0; k < shp[2]; k++) {
                    const int64_t e = (four ? bi * t->strides[0] : 0) + r * str[0] + q * str[1] + k * str[2];
                    const unsigned char *got = (const unsigned char *)t->data + e * (int64_t)es;
                    const int64_t sample = four ? bi : index;
                    const int64_t want_e = (((sample * sh[1] + row_off + r) * sh[2] + col_off + q) * sh[3]) +
                                           chan_off + k;
                    const unsigned char *want = base + want_e * (int64_t)es;
                    ck_assert_msg(got == want, "element [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                                  "] at %p, expected %p", bi, r, q, k, (const void *)got, (const void *)want);
                }
}

/* ------------------------------ layout -------------------------------- */

START_TEST(struct_layouts)
{
    ck_assert_uint_eq(sizeof(raster_DLTensor), 48);
    ck_assert_uint_eq(offsetof(raster_DLTensor, ndim), 16);
    ck_assert_uint_eq(offsetof(raster_DLTensor, dtype), 20);
    ck_assert_uint_eq(offsetof(raster_DLTensor, shape), 24);
    ck_assert_uint_eq(offsetof(raster_DLTensor, strides), 32);
    ck_assert_uint_eq(offsetof(raster_DLTensor, byte_offset), 40);
    ck_assert_uint_eq(sizeof(raster_DLManagedTensor), 64);
    ck_assert_uint_eq(offsetof(raster_DLManagedTensor, manager_ctx), 48);
    ck_assert_uint_eq(offsetof(raster_DLManagedTensor, deleter), 56);
    ck_assert_uint_eq(sizeof(raster_DLManagedTensorVersioned), 80);
    ck_assert_uint_eq(offsetof(raster_DLManagedTensorVersioned, manager_ctx), 8);
    ck_assert_uint_eq(offsetof(raster_DLManagedTensorVersioned, deleter), 16);
    ck_assert_uint_eq(offsetof(raster_DLManagedTensorVersioned, flags), 24);
    ck_assert_uint_eq(offsetof(raster_DLManagedTensorVersioned, dl_tensor), 32);
}
END_TEST

START_TEST(request_defaults)
{
    raster_dlpack_request_t r;
    memset(&r, 0x7f, sizeof r);
    raster_dlpack_request_init(&r);
    ck_assert_uint_eq(r.struct_size, sizeof r);
    ck_assert_int_eq(r.index, -1);
    ck_assert_int_eq(r.versioned, 0);
    ck_assert_int_eq(r.read_only, 0);
    ck_assert_int_eq(r.row_off, 0);
    ck_assert_int_eq(r.col_off, 0);
    ck_assert_int_eq(r.height, -1);
    ck_assert_int_eq(r.width, -1);
    ck_assert_int_eq(r.chan_off, 0);
    ck_assert_int_eq(r.channels, -1);
    raster_dlpack_request_init(NULL);
}
END_TEST

/* ------------------------------ contents ------------------------------- */

START_TEST(every_dtype_both_layouts)
{
    static const struct { raster_dtype_t dt; uint8_t code, bits; } want[] = {
        {RASTER_U8, 1, 8},   {RASTER_I8, 0, 8},   {RASTER_U16, 1, 16}, {RASTER_I16, 0, 16},
        {RASTER_U32, 1, 32}, {RASTER_I32, 0, 32}, {RASTER_F16, 2, 16}, {RASTER_F32, 2, 32},
        {RASTER_F64, 2, 64},
    };
    ck_assert_int_eq((int)(sizeof want / sizeof want[0]), RASTER_DTYPE_COUNT);
    raster_pool_t *p = make_pool(1 << 20);
    for (int i = 0; i < RASTER_DTYPE_COUNT; i++)
        for (int versioned = 0; versioned < 2; versioned++) {
            raster_buffer_t *buf = acquire(p, want[i].dt, 2, 3, 4, 5);
            raster_dlpack_request_t req;
            raster_dlpack_request_init(&req);
            req.versioned = versioned;
            void *m = export(buf, &req);
            const raster_DLTensor *t = tensor_of(m, versioned);
            ck_assert_ptr_eq(t->data, raster_buffer_data(buf));
            ck_assert_int_eq(t->device.device_type, 1);
            ck_assert_int_eq(t->device.device_id, 0);
            ck_assert_int_eq(t->ndim, 4);
            ck_assert_uint_eq(t->dtype.code, want[i].code);
            ck_assert_uint_eq(t->dtype.bits, want[i].bits);
            ck_assert_uint_eq(t->dtype.lanes, 1);
            ck_assert_uint_eq(t->dtype.bits / 8, raster_dtype_size(want[i].dt));
            const int64_t shape[4] = {2, 3, 4, 5}, strides[4] = {60, 20, 5, 1};
            ck_assert_ptr_nonnull(t->shape);
            ck_assert_ptr_nonnull(t->strides);
            for (int d = 0; d < 4; d++) {
                ck_assert_int_eq(t->shape[d], shape[d]);
                ck_assert_int_eq(t->strides[d], strides[d]);
            }
            ck_assert_uint_eq(t->byte_offset, 0);
            if (versioned) {
                const raster_DLManagedTensorVersioned *mv = m;
                ck_assert_uint_eq(mv->version.major, 1);
                ck_assert_uint_eq(mv->version.minor, 0);
                ck_assert_uint_eq(mv->flags, 0);
                ck_assert_ptr_nonnull(mv->deleter);
                ck_assert_ptr_nonnull(mv->manager_ctx);
            } else {
                const raster_DLManagedTensor *ml = m;
                ck_assert_ptr_nonnull(ml->deleter);
                ck_assert_ptr_nonnull(ml->manager_ctx);
            }
            ck_assert_int_eq(stats_of(p).exports_outstanding, 1);
            dlpack_delete(m, versioned);
            ck_assert_int_eq(stats_of(p).exports_outstanding, 0);
            raster_buffer_release(buf);
        }
    ck_assert_int_eq(stats_of(p).buffers_outstanding, 0);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(null_request_is_whole_legacy)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *buf = acquire(p, RASTER_U16, 3, 2, 2, 1);
    raster_DLManagedTensor *m = export(buf, NULL);
    ck_assert_int_eq(m->dl_tensor.ndim, 4);
    ck_assert_int_eq(m->dl_tensor.shape[0], 3);
    m->deleter(m);
    raster_buffer_release(buf);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(sample_crop_and_channels)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *buf = acquire(p, RASTER_I16, 3, 10, 12, 4);
    fill_pattern(buf);
    const int64_t base_shape[4] = {3, 10, 12, 4};
    /* {index, row_off, col_off, height, width, chan_off, channels} */
    static const int64_t cases[][7] = {
        {-1, 0, 0, -1, -1, 0, -1},      /* whole batch */
        {0, 0, 0, -1, -1, 0, -1},       /* first sample */
        {2, 0, 0, -1, -1, 0, -1},       /* last sample */
        {1, 2, 3, 5, 4, 0, -1},         /* crop */
        {1, 2, 3, -1, -1, 0, -1},       /* crop to the end */
        {2, 9, 11, 1, 1, 3, 1},         /* last element only */
        {-1, 1, 2, 3, 6, 1, 2},         /* batch crop with a channel subset */
        {0, 0, 0, -1, -1, 2, -1},       /* channels 2.. */
        {1, 4, 0, 2, -1, 1, 2},         /* rows, all columns, channels 1..2 */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int versioned = 0; versioned < 2; versioned++) {
            const int64_t *cs = cases[ci];
            raster_dlpack_request_t req;
            raster_dlpack_request_init(&req);
            req.versioned = versioned;
            req.index = cs[0];
            req.row_off = cs[1];
            req.col_off = cs[2];
            req.height = cs[3];
            req.width = cs[4];
            req.chan_off = cs[5];
            req.channels = cs[6];
            void *m = export(buf, &req);
            const raster_DLTensor *t = tensor_of(m, versioned);
            const int64_t h = cs[3] < 0 ? 10 - cs[1] : cs[3], w = cs[4] < 0 ? 12 - cs[2] : cs[4];
            const int64_t c = cs[6] < 0 ? 4 - cs[5] : cs[6];
            const int four = cs[0] < 0;
            ck_assert_int_eq(t->ndim, four ? 4 : 3);
            if (four) {
                ck_assert_int_eq(t->shape[0], base_shape[0]);
                ck_assert_int_eq(t->strides[0], 10 * 12 * 4);
            }
            ck_assert_int_eq(t->shape[four + 0], h);
            ck_assert_int_eq(t->shape[four + 1], w);
            ck_assert_int_eq(t->shape[four + 2], c);
            ck_assert_int_eq(t->strides[four + 0], 12 * 4);
            ck_assert_int_eq(t->strides[four + 1], 4);
            ck_assert_int_eq(t->strides[four + 2], 1);
            ck_assert_uint_eq(t->byte_offset, 0);
            const int64_t first = ((cs[0] < 0 ? 0 : cs[0]) * 10 * 12 + cs[1] * 12 + cs[2]) * 4 + cs[5];
            ck_assert_ptr_eq(t->data, (unsigned char *)raster_buffer_data(buf) + first * 2);
            check_elements(t, buf, cs[0], cs[1], cs[2], cs[5]);
            dlpack_delete(m, versioned);
        }
    raster_buffer_release(buf);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(read_only_flag)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *buf = acquire(p, RASTER_F32, 1, 2, 2, 1);
    raster_dlpack_request_t req;
    raster_dlpack_request_init(&req);
    req.versioned = 1;
    req.read_only = 1;
    raster_DLManagedTensorVersioned *m = export(buf, &req);
    ck_assert_uint_eq(m->flags, RASTER_DLPACK_FLAG_READ_ONLY);
    m->deleter(m);
    /* The legacy layout cannot carry the flag: refuse rather than hand out a
     * writable tensor. */
    req.versioned = 0;
    void *legacy = (void *)buf;
    ck_assert_int_eq(raster_buffer_to_dlpack(buf, &req, &legacy), RASTER_E_INVALID_ARG);
    ck_assert_ptr_null(legacy);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "read_only needs the versioned layout"));
    ck_assert_int_eq(stats_of(p).exports_outstanding, 0);
    raster_buffer_release(buf);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(request_errors)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *buf = acquire(p, RASTER_U8, 2, 4, 6, 3);
    raster_dlpack_request_t req;
    void *m = NULL;
#define EXPECT(st, text)                                                                 \
    do {                                                                                 \
        m = (void *)buf;                                                                 \
        ck_assert_int_eq(raster_buffer_to_dlpack(buf, &req, &m), (st));                  \
        ck_assert_ptr_null(m);                                                           \
        ck_assert_msg(strstr(raster_last_error(), (text)), "message: %s", raster_last_error()); \
        raster_dlpack_request_init(&req);                                                \
    } while (0)
    raster_dlpack_request_init(&req);
    req.index = 2;
    EXPECT(RASTER_E_BOUNDS, "sample 2 of a batch of 2");
    req.index = -2;
    EXPECT(RASTER_E_BOUNDS, "sample -2");
    req.row_off = 3;
    req.height = 2;
    EXPECT(RASTER_E_BOUNDS, "row crop 3+2 is outside 0..4");
    req.col_off = 7;
    EXPECT(RASTER_E_BOUNDS, "column crop 7+-1");
    req.chan_off = 1;
    req.channels = 3;
    EXPECT(RASTER_E_BOUNDS, "channel crop 1+3");
    req.row_off = -1;
    EXPECT(RASTER_E_INVALID_ARG, "negative row crop");
    req.width = -2;
    EXPECT(RASTER_E_INVALID_ARG, "negative column crop");
    req.struct_size = 0;
    EXPECT(RASTER_E_INVALID_ARG, "raster_dlpack_request_init");
    req.struct_size = sizeof req + 8;
    EXPECT(RASTER_E_INVALID_ARG, "struct_size");
#undef EXPECT
    ck_assert_int_eq(raster_buffer_to_dlpack(NULL, NULL, &m), RASTER_E_INVALID_ARG);
    ck_assert_int_eq(raster_buffer_to_dlpack(buf, NULL, NULL), RASTER_E_INVALID_ARG);
    /* A request from an older caller (shorter struct) keeps the defaults for
     * the fields it does not have. */
    raster_dlpack_request_init(&req);
    req.index = 1;
    req.versioned = 1;
    req.struct_size = offsetof(raster_dlpack_request_t, versioned);
    raster_DLManagedTensor *old = export(buf, &req);
    ck_assert_int_eq(old->dl_tensor.ndim, 3);               /* index was read */
    ck_assert_ptr_eq(old->manager_ctx, (void *)old);         /* legacy: versioned was not */
    old->deleter(old);
    raster_pool_stats_t s = stats_of(p);
    ck_assert_int_eq(s.exports_outstanding, 0);
    raster_buffer_release(buf);
    s = stats_of(p);
    ck_assert_int_eq(s.buffers_outstanding, 0);              /* no failed export kept a reference */
    raster_pool_destroy(p);
}
END_TEST

/* ------------------------------ lifetime ------------------------------- */

START_TEST(export_retains_buffer)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *buf = acquire(p, RASTER_U8, 1, 8, 8, 1);
    fill_pattern(buf);
    raster_dlpack_request_t req;
    raster_dlpack_request_init(&req);
    raster_DLManagedTensor *a = export(buf, &req);
    req.versioned = 1;
    raster_DLManagedTensorVersioned *b = export(buf, &req);
    raster_buffer_release(buf);                 /* the exports keep it */
    raster_pool_stats_t s = stats_of(p);
    ck_assert_int_eq(s.buffers_outstanding, 1);
    ck_assert_int_eq(s.exports_outstanding, 2);
    ck_assert_uint_eq(((unsigned char *)a->dl_tensor.data)[9], (unsigned char)(9 * 131 + 1));
    b->deleter(b);
    s = stats_of(p);
    ck_assert_int_eq(s.buffers_outstanding, 1);
    ck_assert_int_eq(s.exports_outstanding, 1);
    a->deleter(a);
    s = stats_of(p);
    ck_assert_int_eq(s.buffers_outstanding, 0);
    ck_assert_int_eq(s.exports_outstanding, 0);
    ck_assert_uint_eq(s.bytes_in_use, 0);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(deleter_after_pool_destroy)
{
    for (int versioned = 0; versioned < 2; versioned++) {
        raster_pool_t *p = make_pool(1 << 20);
        raster_buffer_t *buf = acquire(p, RASTER_F64, 2, 16, 16, 3);
        fill_pattern(buf);
        raster_dlpack_request_t req;
        raster_dlpack_request_init(&req);
        req.versioned = versioned;
        req.index = 1;
        void *m1 = export(buf, &req);
        void *m2 = export(buf, &req);
        raster_buffer_release(buf);
        raster_buffer_t *spare_buf = acquire(p, RASTER_U8, 1, 1, 1, 1);
        void *spare = export(spare_buf, NULL);
        raster_buffer_release(spare_buf);
        dlpack_delete(spare, 0);                 /* record and block go to the free lists */
        raster_pool_destroy(p);                  /* frees the cached record and block */
        const raster_DLTensor *t = tensor_of(m1, versioned);
        const unsigned char *d = t->data;
        const size_t off = 16 * 16 * 3 * 8;
        ck_assert_uint_eq(d[5], (unsigned char)((off + 5) * 131 + ((off + 5) >> 8) * 7 + 1));
        dlpack_delete(m1, versioned);
        dlpack_delete(m2, versioned);            /* last owner: pool memory goes (ASan / valgrind) */
    }
}
END_TEST

static void *
delete_on_thread(void *arg)
{
    raster_DLManagedTensorVersioned *m = arg;
    m->deleter(m);
    return NULL;
}

START_TEST(deleter_from_another_thread)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *buf = acquire(p, RASTER_U16, 1, 32, 32, 2);
    raster_dlpack_request_t req;
    raster_dlpack_request_init(&req);
    req.versioned = 1;
    raster_DLManagedTensorVersioned *m = export(buf, &req);
    raster_pool_destroy(p);
    /* A buffer that outlived its pool still exports (a fresh record). */
    raster_DLManagedTensorVersioned *late = export(buf, &req);
    ck_assert_int_eq(stats_of(p).exports_outstanding, 2);
    late->deleter(late);
    raster_buffer_release(buf);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, delete_on_thread, m), 0);
    pthread_join(th, NULL);
}
END_TEST

START_TEST(zero_size_exports)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *empty = acquire(p, RASTER_F32, 0, 4, 4, 3);
    raster_buffer_t *buf = acquire(p, RASTER_U8, 2, 4, 4, 3);
    for (int versioned = 0; versioned < 2; versioned++) {
        raster_dlpack_request_t req;
        raster_dlpack_request_init(&req);
        req.versioned = versioned;
        void *m = export(empty, &req);                  /* [0, 4, 4, 3] */
        const raster_DLTensor *t = tensor_of(m, versioned);
        ck_assert_ptr_nonnull(t->data);
        ck_assert_int_eq(t->ndim, 4);
        ck_assert_int_eq(t->shape[0], 0);
        ck_assert_ptr_nonnull(t->strides);
        dlpack_delete(m, versioned);
        /* Empty crops of a real buffer: rows, columns, channels. */
        const int64_t crops[][6] = {{4, 0, 0, -1, 0, -1}, {0, 4, 0, 1, -1, -1}, {0, 0, 3, -1, -1, -1}};
        for (int i = 0; i < 3; i++) {
            req.index = 1;
            req.row_off = crops[i][0];
            req.col_off = crops[i][1];
            req.chan_off = crops[i][2];
            req.height = crops[i][3];
            req.width = crops[i][4];
            req.channels = crops[i][5];
            m = export(buf, &req);
            t = tensor_of(m, versioned);
            ck_assert_ptr_eq(t->data, raster_buffer_data(buf));
            ck_assert_int_eq(t->shape[0] * t->shape[1] * t->shape[2], 0);
            dlpack_delete(m, versioned);
        }
    }
    raster_buffer_release(empty);
    raster_buffer_release(buf);
    ck_assert_int_eq(stats_of(p).buffers_outstanding, 0);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(steady_export_loop_does_not_allocate)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *buf = acquire(p, RASTER_F32, 4, 8, 8, 3);
    raster_dlpack_request_t req;
    raster_dlpack_request_init(&req);
    for (int i = 0; i < 3; i++) {            /* warm-up: three exports alive at once */
        void *m[3];
        for (int k = 0; k < 3; k++)
            m[k] = export(buf, &req);
        for (int k = 0; k < 3; k++)
            dlpack_delete(m[k], 0);
    }
    const raster_pool_stats_t warm = stats_of(p);
    ck_assert_uint_eq(warm.export_mallocs, 3);
    for (int i = 0; i < 10000; i++) {
        req.versioned = i & 1;
        req.index = i % 5 - 1;
        void *a = export(buf, &req), *b = export(buf, &req);
        dlpack_delete(b, req.versioned);
        dlpack_delete(a, req.versioned);
    }
    const raster_pool_stats_t s = stats_of(p);
    ck_assert_uint_eq(s.export_mallocs, warm.export_mallocs);
    ck_assert_uint_eq(s.block_mallocs, warm.block_mallocs);
    ck_assert_int_eq(s.exports_outstanding, 0);
    raster_buffer_release(buf);
    raster_pool_destroy(p);
}
END_TEST

START_TEST(record_allocation_failure)
{
    raster_pool_t *p = make_pool(1 << 20);
    raster_buffer_t *buf = acquire(p, RASTER_U8, 1, 2, 2, 1);
    void *m = NULL;
    raster__pool_fail_allocs(1);
    ck_assert_int_eq(raster_buffer_to_dlpack(buf, NULL, &m), RASTER_E_NOMEM);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "tensor record"));
    ck_assert_int_eq(stats_of(p).exports_outstanding, 0);
    raster_buffer_release(buf);
    ck_assert_int_eq(stats_of(p).buffers_outstanding, 0);   /* no stray reference */
    raster_pool_destroy(p);
}
END_TEST

static void
double_delete_body(void)
{
    raster_pool_t *p = make_pool(1 << 16);
    raster_buffer_t *buf = acquire(p, RASTER_U8, 1, 2, 2, 1);
    raster_DLManagedTensor *a = export(buf, NULL), *b = export(buf, NULL);
    a->deleter(a);
    a->deleter(a);                       /* aborts: b keeps the buffer, a's record is cached */
    b->deleter(b);
}

START_TEST(double_delete_aborts)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        double_delete_body();
        _exit(0);
    }
    close(fds[1]);
    char msg[1024];
    size_t n = 0;
    ssize_t got;
    while (n + 1 < sizeof msg && (got = read(fds[0], msg + n, sizeof msg - 1 - n)) > 0)
        n += (size_t)got;
    msg[n] = '\0';
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %d", status);
    ck_assert_msg(strstr(msg, "deleter called twice"), "message: %s", msg);
}
END_TEST

static Suite *
dlpack_suite(void)
{
    Suite *s = suite_create("dlpack");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, struct_layouts);
    tcase_add_test(tc, request_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("contents");
    tcase_add_test(tc, every_dtype_both_layouts);
    tcase_add_test(tc, null_request_is_whole_legacy);
    tcase_add_test(tc, sample_crop_and_channels);
    tcase_add_test(tc, read_only_flag);
    tcase_add_test(tc, request_errors);
    tcase_add_test(tc, zero_size_exports);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_add_test(tc, export_retains_buffer);
    tcase_add_test(tc, deleter_after_pool_destroy);
    tcase_add_test(tc, deleter_from_another_thread);
    tcase_add_test(tc, steady_export_loop_does_not_allocate);
    tcase_add_test(tc, record_allocation_failure);
    tcase_add_test(tc, double_delete_aborts);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(dlpack_suite)
