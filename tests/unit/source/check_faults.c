/*
 * check_faults.c - injected failures surface as errors, the dataset or pool
 * stays usable, nothing leaks.
 *
 * Every allocation a read makes from per-thread scratch is failed in turn
 * (raster__scratch_fail_allocs(skip, 1), skip = 0, 1, ... until the read no
 * longer allocates), on a fresh thread each time so that the scratch really
 * is allocated: the read must fail with RASTER_E_NOMEM and say so, and the
 * next read on the same thread must succeed and equal the reference.  The
 * same for the pool's block and DLPack-record allocations
 * (raster__pool_fail_allocs) under single acquires, exports and batch
 * reads: RASTER_E_NOMEM, then the pool's bytes in use and buffers
 * outstanding are back to zero and the next call works.  The I/O layer's
 * fault hook (raster__io_set_fault_hook) fails every segment read of a read
 * in turn, with EIO (RASTER_E_IO) and with a premature end of file
 * (RASTER_E_CORRUPT), each followed by a right read; EINTR and short reads
 * must be retried into a right result; an I/O error inside a batch leaves
 * the pool as it was.  The same hook sees every read of an open (libtiff's
 * directory parse, the LZW sniff): each failed in turn fails the open
 * cleanly.  ASan and valgrind run this suite: a leak on any
 * failure path fails it.
 */
#include "test_util.h"

#include "read/tiff.h"

#include <errno.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fixture_t *fixtures;
static int fixture_count;

/* One decode thread, so that a read's scratch is its own thread's. */
static void
one_thread(void)
{
    raster_set_threads(1);
}

/* The first usable fixture whose name holds every word of 'words'. */
static const char *
find_fixture(const char *const *words, int n)
{
    for (int i = 0; i < fixture_count; i++) {
        if (fixtures[i].malformed)
            continue;
        int ok = 1;
        for (int k = 0; k < n && ok; k++)
            ok = strstr(fixtures[i].name, words[k]) != NULL;
        if (ok)
            return fixture_path(fixtures[i].name);
    }
    return NULL;
}

#define FIND(...) find_fixture((const char *const[]){__VA_ARGS__}, \
                               (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)))

static int
is_native(const raster_dataset_t *ds)
{
    raster_info_t in;
    ck_assert_int_eq(raster_dataset_info(ds, &in), RASTER_OK);
    return in.reader == RASTER_READER_NATIVE_TIFF;
}

/* ------------------------------ one read, described -------------------- */

typedef enum { READ_IMAGE, READ_MASK } read_kind_t;

typedef struct read_case {
    raster_dataset_t *ds;
    read_kind_t kind;
    raster_window_t win;
    raster_dtype_t dtype;         /* image: destination dtype (conversion uses scratch) */
    int channels;
    size_t nbytes;
    uint8_t *reference;           /* what a read without faults gives */
} read_case_t;

static raster_status_t
do_read(const read_case_t *c, uint8_t *out)
{
    raster_view_t v = raster_view_hwc(out, c->dtype, c->win.height, c->win.width, c->channels);
    return c->kind == READ_MASK ? raster_read_mask_into(c->ds, c->win, NULL, &v)
                                : raster_read_into(c->ds, c->win, NULL, &v);
}

static read_case_t
case_make(raster_dataset_t *ds, read_kind_t kind, raster_window_t win, raster_dtype_t dt)
{
    raster_info_t in;
    ck_assert_int_eq(raster_dataset_info(ds, &in), RASTER_OK);
    read_case_t c = {ds, kind, win, kind == READ_MASK ? RASTER_U8 : dt,
                     kind == READ_MASK ? 1 : in.band_count, 0, NULL};
    c.nbytes = raster_view_nbytes(c.dtype, win.height, win.width, c.channels);
    c.reference = malloc(c.nbytes);
    ck_assert_msg(do_read(&c, c.reference) == RASTER_OK, "%s", raster_last_error());
    return c;
}

/* ------------------------------ scratch -------------------------------- */

typedef struct attempt {
    const read_case_t *c;
    int skip;                     /* allocations that succeed before the failure */
    uint64_t allocs;              /* out: scratch allocations of a clean read */
    raster_status_t first, second;
    char msg[512];
    int second_right;
} attempt_t;

static void *
attempt_thread(void *p)
{
    attempt_t *a = p;
    uint8_t *out = malloc(a->c->nbytes);
    if (a->skip < 0) {
        /* Measure: how many scratch allocations a first read makes. */
        const uint64_t before = raster__scratch_allocations();
        a->first = do_read(a->c, out);
        a->allocs = raster__scratch_allocations() - before;
    } else {
        raster__scratch_fail_allocs(a->skip, 1);
        a->first = do_read(a->c, out);
        snprintf(a->msg, sizeof a->msg, "%s", raster_last_error());
        raster__scratch_fail_allocs(0, 0);
        memset(out, 0x77, a->c->nbytes);
        a->second = do_read(a->c, out);
        a->second_right = a->second == RASTER_OK && memcmp(out, a->c->reference, a->c->nbytes) == 0;
    }
    free(out);
    return NULL;
}

static void
run_attempt(attempt_t *a)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, attempt_thread, a), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/* Fail each scratch allocation of a first read in turn. */
static void
check_scratch_faults(const read_case_t *c, const char *what)
{
    attempt_t m = {c, -1, 0, RASTER_OK, RASTER_OK, "", 0};
    run_attempt(&m);
    ck_assert_int_eq(m.first, RASTER_OK);
    ck_assert_msg(m.allocs >= 1, "%s: a first read on a new thread allocated no scratch", what);
    for (int skip = 0; skip < (int)m.allocs; skip++) {
        attempt_t a = {c, skip, 0, RASTER_OK, RASTER_OK, "", 0};
        run_attempt(&a);
        ck_assert_msg(a.first == RASTER_E_NOMEM, "%s: scratch allocation %d of %llu failed, the read gave %s",
                      what, skip + 1, (unsigned long long)m.allocs, raster_status_str(a.first));
        ck_assert_msg(strstr(a.msg, "out of memory") != NULL, "%s: message: %s", what, a.msg);
        ck_assert_msg(a.second_right, "%s: the read after the failure gave %s or wrong pixels", what,
                      raster_status_str(a.second));
    }
}

START_TEST(scratch_failures_native_compressed)
{
    const char *p = FIND("deflate", "tile256", "pixel", "3b");
    ck_assert_ptr_nonnull(p);
    one_thread();
    raster_dataset_t *ds = open_with_reader(p, -1);
    if (!is_native(ds)) {       /* a build without the native reader */
        raster_close(ds);
        return;
    }
    /* Same dtype (decode into scratch, place) and a converting read. */
    read_case_t c1 = case_make(ds, READ_IMAGE, (raster_window_t){100, 90, 300, 200}, RASTER_U16);
    read_case_t c2 = case_make(ds, READ_IMAGE, (raster_window_t){3, 250, 64, 40}, RASTER_F32);
    check_scratch_faults(&c1, "native deflate");
    check_scratch_faults(&c2, "native deflate, to float32");
    free(c1.reference);
    free(c2.reference);
    raster_close(ds);
}
END_TEST

START_TEST(scratch_failures_native_uncompressed)
{
    const char *p = FIND("none", "strip16");
    ck_assert_ptr_nonnull(p);
    one_thread();
    raster_dataset_t *ds = open_with_reader(p, -1);
    if (!is_native(ds)) {
        raster_close(ds);
        return;
    }
    read_case_t c = case_make(ds, READ_IMAGE, (raster_window_t){5, 7, 90, 50}, RASTER_F64);
    check_scratch_faults(&c, "native uncompressed");
    free(c.reference);
    raster_close(ds);
}
END_TEST

START_TEST(scratch_failures_gdal)
{
    const char *p = FIND("lzw", "3b");
    ck_assert_ptr_nonnull(p);
    raster_dataset_t *ds = open_with_reader(p, RASTER_READER_GDAL);
    read_case_t c = case_make(ds, READ_IMAGE, (raster_window_t){10, 20, 120, 80}, RASTER_F32);
    check_scratch_faults(&c, "GDAL reader, converting");
    free(c.reference);
    raster_close(ds);
}
END_TEST

/* A dataset mask of several nodata bands ORs band masks through scratch. */
START_TEST(scratch_failures_mask)
{
    const char *p = FIND("3b", "nodata");
    ck_assert_ptr_nonnull(p);
    for (int reader = -1; reader <= RASTER_READER_GDAL; reader++) {
        raster_dataset_t *ds = open_with_reader(p, reader);
        read_case_t c = case_make(ds, READ_MASK, (raster_window_t){0, 0, 200, 100}, RASTER_U8);
        check_scratch_faults(&c, "dataset mask");
        free(c.reference);
        raster_close(ds);
    }
}
END_TEST

static void
assert_pool_idle(raster_pool_t *pool)
{
    raster_pool_stats_t st;
    raster_pool_get_stats(pool, &st);
    ck_assert_uint_eq(st.bytes_in_use, 0);
    ck_assert_int_eq(st.buffers_outstanding, 0);
    ck_assert_int_eq(st.exports_outstanding, 0);
}

/* ------------------------------ I/O ------------------------------------ */

/* What the I/O hook does to the segment reads of the native reader. */
typedef enum { IO_COUNT, IO_ERROR_AT, IO_EOF_AT, IO_EINTR_EVERY_OTHER, IO_SHORT_ALWAYS } io_mode_t;

typedef struct io_fault {
    io_mode_t mode;
    int at;                       /* the call that fails (ERROR_AT, EOF_AT) */
    int err;                      /* its errno */
    atomic_int calls;             /* segment reads seen */
    atomic_int injected;          /* faults injected */
} io_fault_t;

static int
io_hook(void *ctx, const char *path, uint64_t offset, size_t *nbytes)
{
    (void)path;
    (void)offset;
    io_fault_t *f = ctx;
    const int k = atomic_fetch_add(&f->calls, 1);
    switch (f->mode) {
    case IO_COUNT:
        return 0;
    case IO_ERROR_AT:
        if (k != f->at)
            return 0;
        atomic_fetch_add(&f->injected, 1);
        return f->err;
    case IO_EOF_AT:
        if (k == f->at) {
            atomic_fetch_add(&f->injected, 1);
            *nbytes = 0;
        }
        return 0;
    case IO_EINTR_EVERY_OTHER:
        if (k % 2 != 0)
            return 0;
        atomic_fetch_add(&f->injected, 1);
        return EINTR;
    case IO_SHORT_ALWAYS:
        if (*nbytes > 1) {
            atomic_fetch_add(&f->injected, 1);
            *nbytes = *nbytes / 2 + (*nbytes > 4096 ? 17 : 0);   /* odd sizes, never 0 */
        }
        return 0;
    }
    return 0;
}

static raster_status_t
read_with_hook(const read_case_t *c, io_fault_t *f, uint8_t *out)
{
    atomic_store(&f->calls, 0);
    atomic_store(&f->injected, 0);
    raster__io_set_fault_hook(io_hook, f);
    const raster_status_t st = do_read(c, out);
    raster__io_set_fault_hook(NULL, NULL);
    return st;
}

/* Fail every segment read of a read in turn, with an OS error and with a
 * premature end of file; retried interruptions and short reads succeed. */
static void
check_io_faults(const read_case_t *c, const char *what)
{
    uint8_t *out = malloc(c->nbytes);
    io_fault_t f = {.mode = IO_COUNT};
    ck_assert_int_eq(read_with_hook(c, &f, out), RASTER_OK);
    const int n = atomic_load(&f.calls);
    ck_assert_msg(n >= 1, "%s: the read made no segment read", what);
    for (int k = 0; k < n; k++) {
        for (int m = 0; m < 2; m++) {
            f = (io_fault_t){.mode = m == 0 ? IO_ERROR_AT : IO_EOF_AT, .at = k, .err = EIO};
            const raster_status_t st = read_with_hook(c, &f, out);
            ck_assert_int_eq(atomic_load(&f.injected), 1);
            const raster_status_t want = m == 0 ? RASTER_E_IO : RASTER_E_CORRUPT;
            ck_assert_msg(st == want, "%s: fault %d (%s) at read %d of %d gave %s: %s", what, m,
                          m == 0 ? "EIO" : "EOF", k + 1, n, raster_status_str(st), raster_last_error());
            const char *msg = raster_last_error();
            ck_assert_msg(strstr(msg, m == 0 ? strerror(EIO) : "the file ends") != NULL &&
                              (strstr(msg, "tile") != NULL || strstr(msg, "strip") != NULL),
                          "%s: message: %s", what, msg);
            /* The dataset is still usable: the next read is right. */
            memset(out, 0x3c, c->nbytes);
            ck_assert_int_eq(do_read(c, out), RASTER_OK);
            ck_assert_msg(memcmp(out, c->reference, c->nbytes) == 0, "%s: wrong pixels after a fault", what);
        }
    }
    f = (io_fault_t){.mode = IO_EINTR_EVERY_OTHER};
    memset(out, 0x3c, c->nbytes);
    ck_assert_int_eq(read_with_hook(c, &f, out), RASTER_OK);
    ck_assert_int_ge(atomic_load(&f.injected), 1);
    ck_assert_msg(memcmp(out, c->reference, c->nbytes) == 0, "%s: wrong pixels after EINTR", what);
    f = (io_fault_t){.mode = IO_SHORT_ALWAYS};
    memset(out, 0x3c, c->nbytes);
    ck_assert_int_eq(read_with_hook(c, &f, out), RASTER_OK);
    ck_assert_int_ge(atomic_load(&f.injected), 1);
    ck_assert_msg(memcmp(out, c->reference, c->nbytes) == 0, "%s: wrong pixels after short reads", what);
    free(out);
}

static void
io_faults_on(const char *const *words, int nwords, raster_window_t win, raster_dtype_t dt, int threads)
{
    const char *p = find_fixture(words, nwords);
    ck_assert_ptr_nonnull(p);
    raster_set_threads(threads);
    raster_dataset_t *ds = open_with_reader(p, -1);
    ck_assert_msg(is_native(ds), "%s is not read natively", p);
    read_case_t c = case_make(ds, READ_IMAGE, win, dt);
    char what[256];
    snprintf(what, sizeof what, "%s, %d thread(s)", p, threads);
    check_io_faults(&c, what);
    free(c.reference);
    raster_close(ds);
}

START_TEST(io_faults_compressed_tiles)
{
    /* Two tile rows of two tiles: coalesced reads, and segments read alone. */
    io_faults_on((const char *const[]){"zstd", "tile256", "pixel"}, 3, (raster_window_t){200, 180, 150, 120},
                 RASTER_U16, 1);
    io_faults_on((const char *const[]){"deflate", "tile256", "band", "3b"}, 4,
                 (raster_window_t){200, 250, 57, 20}, RASTER_F32, 2);
}
END_TEST

START_TEST(io_faults_uncompressed)
{
    /* Rows straight into the destination (preadv) and through scratch. */
    io_faults_on((const char *const[]){"none", "strip16"}, 2, (raster_window_t){0, 30, 700, 40}, RASTER_U8, 1);
    io_faults_on((const char *const[]){"none", "tile256", "pixel"}, 3, (raster_window_t){250, 3, 20, 300},
                 RASTER_F64, 1);
}
END_TEST

/* A batch whose sample hits an I/O error: the batch fails naming the
 * sample, its buffers go back to the pool, the next batch is right. */
START_TEST(io_fault_in_a_batch)
{
    const char *p = FIND("deflate", "tile256", "pixel");
    ck_assert_ptr_nonnull(p);
    raster_set_threads(2);
    raster_dataset_t *ds = open_with_reader(p, -1);
    raster_info_t in;
    raster_dataset_info(ds, &in);
    enum { B = 6, S = 64 };
    raster_batch_item_t items[B];
    memset(items, 0, sizeof items);
    for (int i = 0; i < B; i++) {
        items[i].image = ds;
        items[i].window = (raster_window_t){90 * i, 60 * i, S, S};
    }
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.masks = 1;
    bo.threads = 2;
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
    for (int at = 0; at < B; at += 2) {
        io_fault_t f = {.mode = IO_ERROR_AT, .at = at, .err = EIO};
        raster__io_set_fault_hook(io_hook, &f);
        raster_buffer_t *img = NULL, *msk = NULL;
        int64_t failed = -7;
        const raster_status_t st = raster_batch_read(pool, items, B, &bo, &img, &msk, &failed);
        raster__io_set_fault_hook(NULL, NULL);
        ck_assert_msg(st == RASTER_E_IO, "%s: %s", raster_status_str(st), raster_last_error());
        ck_assert_ptr_null(img);
        ck_assert_ptr_null(msk);
        ck_assert(failed >= 0 && failed < B);
        ck_assert_ptr_nonnull(strstr(raster_last_error(), "batch sample"));
        assert_pool_idle(pool);
        ck_assert_int_eq(raster_batch_read(pool, items, B, &bo, &img, &msk, NULL), RASTER_OK);
        raster_buffer_release(img);
        raster_buffer_release(msk);
        assert_pool_idle(pool);
    }
    raster_pool_destroy(pool);
    raster_close(ds);
}
END_TEST

/* ------------------------------ I/O at open ---------------------------- */

/* Where the first IFD starts: the header's pointer (classic or BigTIFF,
 * either byte order). */
static uint64_t
ifd_offset(const char *path)
{
    uint8_t h[16];
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(h, 1, sizeof h, f), sizeof h);
    fclose(f);
    const int le = h[0] == 'I';
    const int big = (le ? h[2] | h[3] << 8 : h[3] | h[2] << 8) == 43;
    const int at = big ? 8 : 4, n = big ? 8 : 4;
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)h[at + i] << (8 * (le ? i : n - 1 - i));
    return v;
}

/* The open's reads, seen through io_hook: which one first covers the IFD,
 * and the last one (the LZW sniff of an LZW file). */
typedef struct open_watch {
    io_fault_t f;
    uint64_t ifd_off;
    int ifd_call;                 /* -1: no read held the IFD's first byte */
    uint64_t last_off;
    size_t last_nbytes;
} open_watch_t;

static int
open_hook(void *ctx, const char *path, uint64_t offset, size_t *nbytes)
{
    open_watch_t *w = ctx;
    if (w->ifd_call < 0 && offset <= w->ifd_off && w->ifd_off < offset + *nbytes)
        w->ifd_call = atomic_load(&w->f.calls);
    w->last_off = offset;
    w->last_nbytes = *nbytes;
    return io_hook(&w->f, path, offset, nbytes);
}

static raster_status_t
open_with_hook(const char *path, open_watch_t *w, raster_dataset_t **ds)
{
    atomic_store(&w->f.calls, 0);
    atomic_store(&w->f.injected, 0);
    w->ifd_call = -1;
    w->last_off = 0;
    w->last_nbytes = 0;
    raster__io_set_fault_hook(open_hook, w);
    const raster_status_t st = raster_open(path, ds);
    raster__io_set_fault_hook(NULL, NULL);
    return st;
}

/* Every read of an open goes through the I/O layer: libtiff's directory
 * parse (the IFD among them) and, for LZW, the sniff of the first
 * segment's two bytes.  Each of them failed in turn fails the open with
 * RASTER_E_IO (EIO) or RASTER_E_CORRUPT (the file ends) naming the file,
 * leaves nothing behind, and the next open reads right. */
static void
open_faults_on(const char *const *words, int nwords, int lzw)
{
    const char *found = find_fixture(words, nwords);
    ck_assert_ptr_nonnull(found);
    char path[4096];
    snprintf(path, sizeof path, "%s", found);
    one_thread();
    open_watch_t w = {.f = {.mode = IO_COUNT}, .ifd_off = ifd_offset(path)};
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(open_with_hook(path, &w, &ds), RASTER_OK);
    ck_assert_msg(is_native(ds), "%s is not read natively", path);
    const int n = atomic_load(&w.f.calls);
    ck_assert_msg(n >= 2 && w.ifd_call >= 0, "%s: %d read(s) at open, IFD at %llu read by call %d", path, n,
                  (unsigned long long)w.ifd_off, w.ifd_call);
    if (lzw) {
        /* The sniff reads last: two bytes at the first stored segment. */
        const struct raster__tiff *t = ds->tiff;
        int64_t i = 0;
        while (i < t->nsegs && t->counts[i] < 2)
            i++;
        ck_assert_int_lt(i, t->nsegs);
        ck_assert_uint_eq(w.last_nbytes, 2);
        ck_assert_uint_eq(w.last_off, t->offsets[i]);
    }
    read_case_t c = case_make(ds, READ_IMAGE, (raster_window_t){3, 5, 60, 40}, RASTER_F32);
    raster_close(ds);
    uint8_t *out = malloc(c.nbytes);
    for (int k = 0; k < n; k++) {
        for (int m = 0; m < 2; m++) {
            w.f = (io_fault_t){.mode = m == 0 ? IO_ERROR_AT : IO_EOF_AT, .at = k, .err = EIO};
            ds = NULL;
            const raster_status_t st = open_with_hook(path, &w, &ds);
            ck_assert_int_eq(atomic_load(&w.f.injected), 1);
            const raster_status_t want = m == 0 ? RASTER_E_IO : RASTER_E_CORRUPT;
            ck_assert_msg(st == want && ds == NULL, "%s: fault %s at read %d of %d at open gave %s: %s", path,
                          m == 0 ? "EIO" : "EOF", k + 1, n, raster_status_str(st), raster_last_error());
            const char *msg = raster_last_error();
            ck_assert_msg(strstr(msg, path) != NULL &&
                              strstr(msg, m == 0 ? strerror(EIO) : "the file ends") != NULL,
                          "%s: message: %s", path, msg);
        }
    }
    /* Nothing left over: the next open is native and reads right. */
    ds = open_with_reader(path, -1);
    ck_assert(is_native(ds));
    c.ds = ds;
    memset(out, 0x3c, c.nbytes);
    ck_assert_int_eq(do_read(&c, out), RASTER_OK);
    ck_assert_msg(memcmp(out, c.reference, c.nbytes) == 0, "%s: wrong pixels after faults at open", path);
    raster_close(ds);
    free(out);
    free(c.reference);
}

START_TEST(io_faults_at_open)
{
    open_faults_on((const char *const[]){"deflate", "tile256", "pixel", "3b"}, 4, 0);
    open_faults_on((const char *const[]){"bigtiff", "zstd"}, 2, 0);
    open_faults_on((const char *const[]){"u8", "lzw", "strip16", "pixel"}, 4, 1);
}
END_TEST

/* ------------------------------ pool ----------------------------------- */

START_TEST(pool_block_failure)
{
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
    raster_buffer_t *b = NULL;
    raster__pool_fail_allocs(1);
    ck_assert_int_eq(raster_pool_acquire(pool, RASTER_F32, 1, 64, 64, 3, 0, &b), RASTER_E_NOMEM);
    ck_assert_ptr_null(b);
    ck_assert_ptr_nonnull(strstr(raster_last_error(), "out of memory"));
    assert_pool_idle(pool);
    ck_assert_int_eq(raster_pool_acquire(pool, RASTER_F32, 1, 64, 64, 3, 0, &b), RASTER_OK);
    raster_buffer_release(b);
    assert_pool_idle(pool);
    raster_pool_destroy(pool);
}
END_TEST

START_TEST(pool_export_record_failure)
{
    raster_pool_t *pool = NULL;
    ck_assert_int_eq(raster_pool_create(8 << 20, &pool), RASTER_OK);
    raster_buffer_t *b = NULL;
    ck_assert_int_eq(raster_pool_acquire(pool, RASTER_U8, 1, 16, 16, 1, 0, &b), RASTER_OK);
    void *t = NULL;
    raster__pool_fail_allocs(1);
    ck_assert_int_eq(raster_buffer_to_dlpack(b, NULL, &t), RASTER_E_NOMEM);
    ck_assert_ptr_null(t);
    raster_pool_stats_t st;
    raster_pool_get_stats(pool, &st);
    ck_assert_int_eq(st.exports_outstanding, 0);
    ck_assert_int_eq(st.buffers_outstanding, 1);
    ck_assert_int_eq(raster_buffer_to_dlpack(b, NULL, &t), RASTER_OK);
    raster_buffer_release(b);
    raster_DLManagedTensor *mt = t;
    mt->deleter(mt);
    assert_pool_idle(pool);
    raster_pool_destroy(pool);
}
END_TEST

/* A batch whose image or mask buffer cannot be allocated fails with nothing
 * acquired, and the next batch is right. */
START_TEST(batch_buffer_failures)
{
    const char *p = FIND("zstd", "tile256", "pixel");
    ck_assert_ptr_nonnull(p);
    raster_dataset_t *ds = open_with_reader(p, -1);
    raster_info_t in;
    raster_dataset_info(ds, &in);
    enum { B = 4, S = 48 };
    raster_batch_item_t items[B];
    memset(items, 0, sizeof items);
    for (int i = 0; i < B; i++) {
        items[i].image = ds;
        items[i].window = (raster_window_t){11 * i, 7 * i, S, S};
    }
    raster_batch_options_t bo;
    raster_batch_options_init(&bo);
    bo.masks = 1;
    bo.timeout_ms = 0;
    for (int fail_at = 0; fail_at < 2; fail_at++) {
        /* A new pool allocates both buffers; with the image's size class
         * already filled, the mask's block is the one that fails. */
        raster_pool_t *pool = NULL;
        ck_assert_int_eq(raster_pool_create(64 << 20, &pool), RASTER_OK);
        raster_buffer_t *img = NULL, *msk = NULL;
        if (fail_at == 1) {
            raster_buffer_t *tmp = NULL;
            ck_assert_int_eq(raster_pool_acquire(pool, bo.dtype, B, S, S, in.band_count, 0, &tmp), RASTER_OK);
            raster_buffer_release(tmp);
        }
        raster__pool_fail_allocs(1);
        int64_t failed = 7;
        const raster_status_t st = raster_batch_read(pool, items, B, &bo, &img, &msk, &failed);
        raster__pool_fail_allocs(0);
        ck_assert_msg(st == RASTER_E_NOMEM, "allocation %d: %s: %s", fail_at, raster_status_str(st),
                      raster_last_error());
        ck_assert_ptr_null(img);
        ck_assert_ptr_null(msk);
        ck_assert_int_eq(failed, -1);
        assert_pool_idle(pool);
        ck_assert_int_eq(raster_batch_read(pool, items, B, &bo, &img, &msk, NULL), RASTER_OK);
        /* Sample 2 equals a single read. */
        raster_view_t v;
        ck_assert_int_eq(raster_buffer_view(img, 2, &v), RASTER_OK);
        float *one = malloc((size_t)S * S * (size_t)in.band_count * sizeof *one);
        raster_view_t ov = raster_view_hwc(one, RASTER_F32, S, S, in.band_count);
        ck_assert_int_eq(raster_read_into(ds, items[2].window, NULL, &ov), RASTER_OK);
        ck_assert(memcmp(one, v.data, (size_t)S * S * (size_t)in.band_count * sizeof *one) == 0);
        free(one);
        raster_buffer_release(img);
        raster_buffer_release(msk);
        assert_pool_idle(pool);
        raster_pool_destroy(pool);
    }
    raster_close(ds);
}
END_TEST

static Suite *
faults_suite(void)
{
    /* Faults are injected into the reads and scratch allocations of
     * decodes; a tile-cache hit does neither, so the cache is off here
     * (tests/unit/cache/check_tile_cache_reads.c covers reads with it on). */
    setenv("RASTERLOADER_TILE_CACHE_BYTES", "0", 1);
    fixture_count = fixtures_load(&fixtures);
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("scratch");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, scratch_failures_native_compressed);
    tcase_add_test(tc, scratch_failures_native_uncompressed);
    tcase_add_test(tc, scratch_failures_gdal);
    tcase_add_test(tc, scratch_failures_mask);
    suite_add_tcase(s, tc);
    tc = tcase_create("io");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, io_faults_compressed_tiles);
    tcase_add_test(tc, io_faults_uncompressed);
    tcase_add_test(tc, io_fault_in_a_batch);
    tcase_add_test(tc, io_faults_at_open);
    suite_add_tcase(s, tc);
    tc = tcase_create("pool");
    tcase_add_test(tc, pool_block_failure);
    tcase_add_test(tc, pool_export_record_failure);
    tcase_add_test(tc, batch_buffer_failures);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(faults_suite)
