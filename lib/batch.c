/*
 * batch.c - many (dataset, window) requests read in parallel into one
 * [B, H, W, C] buffer and its [B, H, W, 1] uint8 mask.
 *
 * A batch is what a training step consumes, so it is the unit that owns
 * memory: one pooled buffer for the images and one for the masks, each a
 * compact block that DLPack exports as a single tensor.  Every pixel is
 * written once, by the reader, into its sample's sub-view; there is no
 * per-sample staging buffer and no stacking copy.
 *
 * Parallelism is across samples: image and mask of every sample are
 * separate work items of raster__parallel_for (image of sample i is item
 * 2i, its mask 2i+1), taken in order from a shared counter by the calling
 * thread and the library's workers.  A sample read may itself ask for
 * parallel tile decoding (tiff_read.c); that nested job is listed in the
 * same worker pool, whose busy workers do not join it, so while the batch
 * has samples left each read runs on its own thread, and at the tail of the
 * batch idle workers help the last reads with their tiles.  The result does
 * not depend on the thread count: items write disjoint sub-views.
 *
 * Lifetimes: every dataset is retained for the call (a raster_close() on
 * another thread cannot free it mid-read); on any failure the buffers the
 * call acquired go back to the pool before it returns.  Arguments are
 * checked up front, on the calling thread, so a batch that cannot succeed
 * (mixed window sizes, missing datasets) never acquires memory at all.
 *
 * Errors name the sample: "batch sample I of N (FILE, window (...)): cause",
 * where the cause is the reader's own message; the lowest failing index
 * is also returned as a number for callers that map it back to their
 * sample list.
 */
#include "pool_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct batch {
    const raster_batch_item_t *items;
    int64_t count;
    int per_sample;                   /* work items per sample: 1, or 2 with masks */
    const raster_read_options_t *dflt;
    /* Destinations: caller views, or the pooled buffers' samples. */
    const raster_view_t *images, *masks;
    raster_buffer_t *image_buf, *mask_buf;
    atomic_int_fast64_t failed;       /* lowest failing sample, or count */
} batch_t;

void
raster_batch_options_init(raster_batch_options_t *opt)
{
    if (opt == NULL)
        return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->dtype = RASTER_F32;
    opt->timeout_ms = -1;
}

/* ------------------------------ checks --------------------------------- */

static raster_status_t
options_resolve(const raster_batch_options_t *opt, raster_batch_options_t *out)
{
    raster_batch_options_init(out);
    if (opt == NULL)
        return RASTER_OK;
    RASTER_CHECK(opt->struct_size >= offsetof(raster_batch_options_t, dtype) + sizeof opt->dtype,
                 RASTER_E_INVALID_ARG,
                 "batch: raster_batch_options_t.struct_size is %zu; call raster_batch_options_init()",
                 opt->struct_size);
    const size_t n = opt->struct_size < sizeof *out ? opt->struct_size : sizeof *out;
    memcpy(out, opt, n);
    out->struct_size = sizeof *out;
    RASTER_CHECK((unsigned)out->dtype < RASTER_DTYPE_COUNT, RASTER_E_INVALID_ARG,
                 "batch: unknown dtype %d", (int)out->dtype);
    return RASTER_OK;
}

static const raster_read_options_t *
item_options(const batch_t *b, const raster_batch_item_t *it)
{
    return it->opt != NULL ? it->opt : b->dflt;
}

/* Channels a sample's read produces: its band list, else every band. */
static int64_t
item_channels(const raster_batch_item_t *it, const raster_read_options_t *opt)
{
    if (opt != NULL && opt->struct_size >= offsetof(raster_read_options_t, band_count) + sizeof(int) &&
        opt->bands != NULL)
        return opt->band_count;
    return it->image->info.band_count;
}

static void
note_failure(batch_t *b, int64_t i)
{
    int_fast64_t cur = atomic_load(&b->failed);
    while (i < cur && !atomic_compare_exchange_weak(&b->failed, &cur, i))
        ;
}

/* Checks every item and finds the common shape; retains nothing. */
static raster_status_t
items_check(batch_t *b, int64_t *h_out, int64_t *w_out, int64_t *c_out)
{
    const raster_batch_item_t *items = b->items;
    RASTER_CHECK(items != NULL, RASTER_E_INVALID_ARG, "batch: items is NULL");
    RASTER_CHECK(b->count >= 1, RASTER_E_INVALID_ARG, "batch: %" PRId64 " items (need >= 1)",
                 b->count);
    for (int64_t i = 0; i < b->count; i++) {
        const raster_batch_item_t *it = &items[i];
        if (it->image == NULL || it->label_band < 0) {
            note_failure(b, i);
            return raster__fail(RASTER_E_INVALID_ARG, "batch sample %" PRId64 " of %" PRId64 ": %s",
                                i, b->count, it->image == NULL ? "image dataset is NULL"
                                                               : "label_band must be >= 0");
        }
        const raster_window_t w = it->window;
        const int64_t c = item_channels(it, item_options(b, it));
        if (i == 0) {
            *h_out = w.height, *w_out = w.width, *c_out = c;
            continue;
        }
        if (w.height != *h_out || w.width != *w_out || c != *c_out) {
            note_failure(b, i);
            return raster__fail(RASTER_E_INVALID_ARG,
                                "batch sample %" PRId64 " of %" PRId64 " (%s, window (col %" PRId64
                                ", row %" PRId64 ", %" PRId64 "x%" PRId64 ")) has %" PRId64
                                " channel(s) of %" PRId64 "x%" PRId64 " but sample 0 has %" PRId64
                                " of %" PRId64 "x%" PRId64 ": a batch holds one shape",
                                i, b->count, it->image->path, w.col_off, w.row_off, w.width,
                                w.height, c, w.width, w.height, *c_out, *w_out, *h_out);
        }
    }
    RASTER_CHECK(*h_out >= 1 && *w_out >= 1, RASTER_E_INVALID_ARG,
                 "batch: windows must have width and height >= 1, not %" PRId64 "x%" PRId64,
                 *w_out, *h_out);
    return RASTER_OK;
}

static void
items_retain(const raster_batch_item_t *items, int64_t count)
{
    for (int64_t i = 0; i < count; i++) {
        raster_dataset_retain(items[i].image);
        raster_dataset_retain(items[i].label);
    }
}

static void
items_release(const raster_batch_item_t *items, int64_t count)
{
    for (int64_t i = 0; i < count; i++) {
        raster_dataset_release(items[i].image);
        raster_dataset_release(items[i].label);
    }
}

/* ------------------------------ work items ----------------------------- */

/* The reader's message, prefixed with the sample: which one and where. */
static raster_status_t
sample_fail(batch_t *b, int64_t i, int part, raster_status_t st)
{
    char cause[1024];
    snprintf(cause, sizeof cause, "%s", raster_last_error());
    const raster_batch_item_t *it = &b->items[i];
    const raster_window_t w = it->window;
    char source[96] = "";
    if (part == 1 && it->label != NULL)
        snprintf(source, sizeof source, "; label band %d of %.40s", it->label_band ? it->label_band : 1,
                 it->label->path);
    else if (part == 1)
        snprintf(source, sizeof source, "; validity mask");
    note_failure(b, i);
    return raster__fail(st, "batch sample %" PRId64 " of %" PRId64 " (%s, window (col %" PRId64
                        ", row %" PRId64 ", %" PRId64 "x%" PRId64 ")%s): %s",
                        i, b->count, it->image->path, w.col_off, w.row_off, w.width, w.height,
                        source, cause);
}

static raster_status_t
image_run(batch_t *b, int64_t i)
{
    const raster_batch_item_t *it = &b->items[i];
    raster_view_t v;
    if (b->images != NULL)
        v = b->images[i];
    else
        RASTER_TRY(raster_buffer_view(b->image_buf, i, &v));
    return raster_read_into(it->image, it->window, item_options(b, it), &v);
}

static raster_status_t
mask_run(batch_t *b, int64_t i)
{
    const raster_batch_item_t *it = &b->items[i];
    const raster_read_options_t *src = item_options(b, it);
    raster_view_t v;
    if (b->masks != NULL)
        v = b->masks[i];
    else
        RASTER_TRY(raster_buffer_view(b->mask_buf, i, &v));
    /* Only the sample's boundless flag carries over: a label has its own
     * band, and the validity mask is the dataset's, whatever bands the
     * image reads. */
    raster_read_options_t mo;
    raster_read_options_init(&mo);
    if (src != NULL && src->struct_size >= offsetof(raster_read_options_t, boundless) + sizeof(int))
        mo.boundless = src->boundless;
    if (it->label == NULL)
        return raster_read_mask_into(it->image, it->window, &mo, &v);
    const int band = it->label_band ? it->label_band : 1;
    mo.bands = &band;
    mo.band_count = 1;
    mo.fill_value = 0.0;
    return raster_read_into(it->label, it->window, &mo, &v);
}

static raster_status_t
item_run(void *ctx, int64_t k)
{
    batch_t *b = ctx;
    const int64_t i = k / b->per_sample;
    const int part = (int)(k % b->per_sample);
    const raster_status_t st = part == 0 ? image_run(b, i) : mask_run(b, i);
    return st == RASTER_OK ? RASTER_OK : sample_fail(b, i, part, st);
}

static raster_status_t
batch_run(batch_t *b, int threads)
{
    if (threads <= 0)
        threads = raster_get_threads();
    return raster__parallel_for(b->count * b->per_sample, threads, item_run, b);
}

static void
failed_report(const batch_t *b, int64_t *failed_index_out)
{
    if (failed_index_out != NULL) {
        const int64_t f = (int64_t)atomic_load(&b->failed);
        *failed_index_out = f < b->count ? f : -1;
    }
}

/* ------------------------------ entry points --------------------------- */

static int
remaining_ms(int timeout_ms, const struct timespec *t0)
{
    if (timeout_ms <= 0)
        return timeout_ms;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const int64_t spent = (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
    return spent >= timeout_ms ? 0 : timeout_ms - (int)spent;
}

RASTER__NOINLINE raster_status_t
raster_batch_read(raster_pool_t *pool, const raster_batch_item_t *items, int64_t count,
                  const raster_batch_options_t *opt, raster_buffer_t **image_out,
                  raster_buffer_t **mask_out, int64_t *failed_index_out)
{
    /* The leak report should name the caller's line, not ours. */
    const void *const site = RASTER__CALLER;
    if (failed_index_out != NULL)
        *failed_index_out = -1;
    RASTER_CHECK(image_out != NULL && mask_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_batch_read: image_out or mask_out is NULL");
    *image_out = *mask_out = NULL;
    RASTER_CHECK(pool != NULL, RASTER_E_INVALID_ARG, "raster_batch_read: pool is NULL");
    raster_batch_options_t o;
    RASTER_TRY(options_resolve(opt, &o));
    batch_t b = {.items = items, .count = count, .per_sample = o.masks ? 2 : 1, .dflt = o.read};
    atomic_init(&b.failed, count);
    int64_t h = 0, w = 0, c = 0;
    raster_status_t st = items_check(&b, &h, &w, &c);
    if (st != RASTER_OK) {
        failed_report(&b, failed_index_out);
        return st;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = raster__pool_acquire_at(pool, o.dtype, count, h, w, c, o.timeout_ms, site, &b.image_buf);
    if (st == RASTER_OK && o.masks)
        st = raster__pool_acquire_at(pool, RASTER_U8, count, h, w, 1, remaining_ms(o.timeout_ms, &t0),
                                     site, &b.mask_buf);
    if (st == RASTER_OK) {
        items_retain(items, count);
        st = batch_run(&b, o.threads);
        items_release(items, count);
    }
    failed_report(&b, failed_index_out);
    if (st != RASTER_OK) {
        raster_buffer_release(b.image_buf);
        raster_buffer_release(b.mask_buf);
        return st;
    }
    *image_out = b.image_buf;
    *mask_out = b.mask_buf;
    return RASTER_OK;
}

raster_status_t
raster_batch_read_into(const raster_batch_item_t *items, int64_t count,
                       const raster_batch_options_t *opt, const raster_view_t *images,
                       const raster_view_t *masks, int64_t *failed_index_out)
{
    if (failed_index_out != NULL)
        *failed_index_out = -1;
    RASTER_CHECK(images != NULL, RASTER_E_INVALID_ARG, "raster_batch_read_into: images is NULL");
    raster_batch_options_t o;
    RASTER_TRY(options_resolve(opt, &o));
    batch_t b = {.items = items, .count = count, .per_sample = masks ? 2 : 1, .dflt = o.read,
                 .images = images, .masks = masks};
    atomic_init(&b.failed, count);
    int64_t h = 0, w = 0, c = 0;
    raster_status_t st = items_check(&b, &h, &w, &c);
    for (int64_t i = 0; st == RASTER_OK && masks != NULL && i < count; i++)
        if (masks[i].dtype != RASTER_U8 || masks[i].channels != 1) {
            note_failure(&b, i);
            st = raster__fail(RASTER_E_INVALID_ARG,
                              "batch sample %" PRId64 " of %" PRId64 ": a mask view must be "
                              "uint8 with one channel, not %s with %" PRId64,
                              i, count, raster_dtype_name(masks[i].dtype), masks[i].channels);
        }
    if (st == RASTER_OK) {
        items_retain(items, count);
        st = batch_run(&b, o.threads);
        items_release(items, count);
    }
    failed_report(&b, failed_index_out);
    return st;
}
