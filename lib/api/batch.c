/*
 * batch.c - many (dataset, window) requests read in parallel into one
 * [B, H, W, C] buffer, its [B, H, W, 1] mask (labels or validity) and,
 * optionally, a [B, H, W, 1] validity mask beside the labels.
 *
 * A batch is what a training step consumes, so it is the unit that owns
 * memory: one pooled buffer for the images, one for the masks, one for the
 * validity masks, each a compact block that DLPack exports as a single
 * tensor.  Every pixel is written once, by the reader, into its sample's
 * sub-view; there is no per-sample staging buffer and no stacking copy
 * (two exceptions, both per-thread scratch that stays warm: a label that is
 * resampled, whose source pixels are read once and then picked, and a
 * validity mask going into a mask buffer that is not uint8).
 *
 * Parallelism is across samples: image, mask and validity of every sample
 * are separate work items of raster__parallel_for (sample i's parts are
 * items i*per_sample + part), taken in order from a shared counter by the
 * calling thread and the library's workers.  A sample read may itself ask
 * for parallel tile decoding (tiff_read.c); that nested job is listed in
 * the same worker pool, whose busy workers do not join it, so while the
 * batch has samples left each read runs on its own thread, and at the tail
 * of the batch idle workers help the last reads with their tiles.  The
 * result does not depend on the thread count: items write disjoint
 * sub-views.
 *
 * Labels are data about the image's pixels, so a label raster must lie on
 * the image's grid (size, geotransform, CRS): a label at another
 * resolution or offset silently pairs the wrong pixels.  That is checked
 * for every sample before anything is acquired; with label_resample a
 * label of the same CRS is instead picked nearest under each output
 * pixel's centre (GDAL's nearest rule, reproduced here so that the part of
 * a window outside the label raster can be label_fill, which GDAL's
 * resampled RasterIO cannot do).
 *
 * Lifetimes: every dataset is retained for the call (a raster_close() on
 * another thread cannot free it mid-read); on any failure the buffers the
 * call acquired go back to the pool before it returns.  Arguments are
 * checked up front, on the calling thread, so a batch that cannot succeed
 * (mixed window sizes, missing datasets, labels off the grid) never
 * acquires memory at all.
 *
 * Errors name the sample: "batch sample I of N (FILE, window (...)): cause",
 * where the cause is the reader's own message; the lowest failing index
 * is also returned as a number for callers that map it back to their
 * sample list.
 */
#include "api.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PART_IMAGE = 0, PART_MASK = 1, PART_VALIDITY = 2 };

typedef struct batch {
    const raster_batch_item_t *items;
    int64_t count;
    const raster_batch_options_t *o;  /* resolved options */
    int per_sample;                   /* work items per sample: image [+ mask] [+ validity] */
    int masks, validity;
    int64_t out_h, out_w;             /* output size */
    int resampled;                    /* output size differs from the window's */
    /* Destinations: caller views, or the pooled buffers' samples. */
    const raster_view_t *images, *masks_v, *validity_v;
    raster_buffer_t *image_buf, *mask_buf, *validity_buf;
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
    opt->label_dtype = RASTER_U8;
    opt->resampling = RASTER_RESAMPLE_NEAREST;
}

/* ------------------------------ checks --------------------------------- */

/* Whether 'v' survives conversion to 'dt': an ignore value that comes out
 * as another number (-1 as uint8 is 0, a class) would be a silent label. */
static int
fill_fits(double v, raster_dtype_t dt)
{
    if (dt == RASTER_F16 || dt == RASTER_F32 || dt == RASTER_F64)
        return 1;
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; } x;
    raster__convert_scalar(v, dt, &x);
    const double back = dt == RASTER_U8 ? x.u8 : dt == RASTER_I8 ? x.i8 : dt == RASTER_U16 ? x.u16
                      : dt == RASTER_I16 ? x.i16 : dt == RASTER_U32 ? (double)x.u32 : (double)x.i32;
    return back == v;
}

static raster_status_t
fill_check(double v, raster_dtype_t dt)
{
    RASTER_CHECK(fill_fits(v, dt), RASTER_E_INVALID_ARG,
                 "batch: label_fill %g is not a %s value (it would read as another label); choose a "
                 "label dtype that holds it, e.g. int16 for -1",
                 v, raster_dtype_name(dt));
    return RASTER_OK;
}

static raster_status_t
options_resolve(const raster_batch_options_t *opt, raster_batch_options_t *out)
{
    raster_batch_options_init(out);
    RASTER_TRY(raster__options_take(out, sizeof *out, opt, RASTER__FIELD_END(raster_batch_options_t, dtype),
                                    "raster_batch_options", "batch"));
    RASTER_CHECK((unsigned)out->dtype < RASTER_DTYPE_COUNT, RASTER_E_INVALID_ARG,
                 "batch: unknown dtype %d", (int)out->dtype);
    RASTER_CHECK((unsigned)out->label_dtype < RASTER_DTYPE_COUNT, RASTER_E_INVALID_ARG,
                 "batch: unknown label dtype %d", (int)out->label_dtype);
    RASTER_CHECK((out->out_height == 0 && out->out_width == 0) ||
                     (out->out_height >= 1 && out->out_width >= 1 && out->out_height <= INT32_MAX &&
                      out->out_width <= INT32_MAX),
                 RASTER_E_INVALID_ARG,
                 "batch: output size %" PRId64 "x%" PRId64 " must be 0x0 (the window's) or from 1 to 2^31-1",
                 out->out_width, out->out_height);
    return RASTER_OK;
}

static const raster_read_options_t *
item_options(const batch_t *b, const raster_batch_item_t *it)
{
    return it->opt != NULL ? it->opt : b->o->read;
}

/* A sample's read options as its read will take them (the struct_size
 * rule), for what the batch must know before reading: the channel count
 * and the boundless flag.  items_check() reports a bad struct first. */
static raster_status_t
item_read_options(const batch_t *b, const raster_batch_item_t *it, raster_read_options_t *out)
{
    return raster__read_options_take(out, item_options(b, it), raster__dataset_path(it->image));
}

/* Channels a sample's read produces: its band list, else every band. */
static int64_t
item_channels(const raster_batch_item_t *it, const raster_read_options_t *o)
{
    return o->bands != NULL ? o->band_count : raster__dataset_info(it->image)->band_count;
}

static void
note_failure(batch_t *b, int64_t i)
{
    int_fast64_t cur = atomic_load(&b->failed);
    while (i < cur && !atomic_compare_exchange_weak(&b->failed, &cur, i))
        ;
}

/* ------------------------------ label grids ---------------------------- */

/* "NAME (EPSG:CODE)" of a WKT1 string, short enough for a message: the
 * root's name and, in WKT1, the root's AUTHORITY, which comes last. */
static void
crs_label(const char *wkt, char *buf, size_t n)
{
    if (wkt[0] == '\0') {
        snprintf(buf, n, "none");
        return;
    }
    const char *q = strchr(wkt, '"');
    const char *e = q ? strchr(q + 1, '"') : NULL;
    const int name_len = q && e ? (int)(e - q - 1) : 0;
    const char *auth = NULL;
    for (const char *p = strstr(wkt, "AUTHORITY[\"EPSG\",\""); p; p = strstr(p + 1, "AUTHORITY[\"EPSG\",\""))
        auth = p;
    int code = 0;
    if (auth != NULL)
        code = atoi(auth + strlen("AUTHORITY[\"EPSG\",\""));
    if (code > 0)
        snprintf(buf, n, "%.*s (EPSG:%d)", name_len > 60 ? 60 : name_len, q + 1, code);
    else
        snprintf(buf, n, "%.*s", name_len > 60 ? 60 : name_len, q ? q + 1 : wkt);
}

static void
grid_text(const raster_dataset_t *ds, char *buf, size_t n)
{
    char crs[96];
    crs_label(raster__dataset_info(ds)->crs_wkt, crs, sizeof crs);
    const double *g = raster__dataset_info(ds)->geotransform;
    /* In rasterio's Affine order (a, b, c, d, e, f), which its users know. */
    if (raster__dataset_info(ds)->has_geotransform)
        snprintf(buf, n, "%" PRId64 "x%" PRId64 ", transform (%.10g, %.10g, %.10g, %.10g, %.10g, %.10g), CRS %s",
                 raster__dataset_info(ds)->width, raster__dataset_info(ds)->height, g[1], g[2], g[0], g[4], g[5], g[3], crs);
    else
        snprintf(buf, n, "%" PRId64 "x%" PRId64 ", no transform, CRS %s", raster__dataset_info(ds)->width, raster__dataset_info(ds)->height, crs);
}

static int
near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)) + 1e-12;
}

static int
same_transform(const raster_info_t *a, const raster_info_t *b)
{
    if (a->has_geotransform != b->has_geotransform)
        return 0;
    for (int k = 0; a->has_geotransform && k < 6; k++)
        if (!near(a->geotransform[k], b->geotransform[k]))
            return 0;
    return 1;
}

static int
north_up(const raster_info_t *in)
{
    const double *g = in->geotransform;
    return in->has_geotransform && g[1] > 0 && g[5] < 0 && g[2] == 0 && g[4] == 0;
}

/* Where a sample's label comes from: the image window itself (same grid),
 * or a fractional window of the label's pixel grid to resample. */
typedef struct label_src {
    int same_grid;
    raster_window_f_t win;
} label_src_t;

static raster_status_t
label_grid_fail(const raster_dataset_t *image, const raster_dataset_t *label, const char *why)
{
    char gi[256], gl[256];
    grid_text(image, gi, sizeof gi);
    grid_text(label, gl, sizeof gl);
    return raster__fail(RASTER_E_INVALID_ARG, "label %s is on another grid than its image %s (image: %s; "
                        "label: %s): %s",
                        raster__dataset_path(label), raster__dataset_path(image), gi, gl, why);
}

/* The grid check of one item, and where its label window lies. */
static raster_status_t
label_source(const raster_batch_item_t *it, int label_resample, label_src_t *out)
{
    const raster_dataset_t *im = it->image, *lb = it->label;
    const raster_window_t w = it->window;
    out->same_grid = 1;
    out->win = (raster_window_f_t){(double)w.col_off, (double)w.row_off, (double)w.width, (double)w.height};
    const int crs_same = raster__dataset_crs_same(im, lb);
    if (crs_same && raster__dataset_info(im)->width == raster__dataset_info(lb)->width && raster__dataset_info(im)->height == raster__dataset_info(lb)->height &&
        same_transform(raster__dataset_info(im), raster__dataset_info(lb)))
        return RASTER_OK;
    if (!crs_same)
        return label_grid_fail(im, lb, "the CRSs differ (reproject the label onto the image grid first, "
                                       "e.g. with gdalwarp)");
    if (!label_resample)
        return label_grid_fail(im, lb, "pass label_resample to read the label resampled (nearest) onto "
                                       "the image grid");
    if (!north_up(raster__dataset_info(im)) || !north_up(raster__dataset_info(lb)))
        return label_grid_fail(im, lb, "label_resample needs both rasters north-up (no rotation, no flip)");
    /* The image window's bounds in the label's pixels. */
    const double *gi = raster__dataset_info(im)->geotransform, *gl = raster__dataset_info(lb)->geotransform;
    out->same_grid = 0;
    out->win.col_off = (gi[0] + (double)w.col_off * gi[1] - gl[0]) / gl[1];
    out->win.row_off = (gi[3] + (double)w.row_off * gi[5] - gl[3]) / gl[5];
    out->win.width = (double)w.width * gi[1] / gl[1];
    out->win.height = (double)w.height * gi[5] / gl[5];
    return RASTER_OK;
}

static raster_status_t
item_label_check(const raster_batch_item_t *it, int label_resample)
{
    label_src_t ls;
    return label_source(it, label_resample, &ls);
}

raster_status_t
raster_batch_item_check(const raster_batch_item_t *item, const raster_batch_options_t *opt)
{
    RASTER_CHECK(item != NULL && item->image != NULL, RASTER_E_INVALID_ARG,
                 "raster_batch_item_check: item or its image is NULL");
    raster_batch_options_t o;
    RASTER_TRY(options_resolve(opt, &o));
    RASTER_CHECK(!raster__dataset_closed(item->image), RASTER_E_CLOSED, "%s: dataset is closed",
                 raster__dataset_path(item->image));
    if (o.masks)
        RASTER_TRY(fill_check(o.label_fill, o.label_dtype));
    if (item->label == NULL)
        return RASTER_OK;
    RASTER_CHECK(!raster__dataset_closed(item->label), RASTER_E_CLOSED, "%s: dataset is closed",
                 raster__dataset_path(item->label));
    return item_label_check(item, o.label_resample);
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
        raster_read_options_t ro;
        if (item_read_options(b, it, &ro) != RASTER_OK) {
            note_failure(b, i);
            char cause[1024];
            snprintf(cause, sizeof cause, "%s", raster_last_error());
            return raster__fail(RASTER_E_INVALID_ARG, "batch sample %" PRId64 " of %" PRId64 ": %s", i,
                                b->count, cause);
        }
        const raster_window_t w = it->window;
        const int64_t c = item_channels(it, &ro);
        if (i == 0) {
            *h_out = w.height, *w_out = w.width, *c_out = c;
        } else if (w.height != *h_out || w.width != *w_out || c != *c_out) {
            note_failure(b, i);
            return raster__fail(RASTER_E_INVALID_ARG,
                                "batch sample %" PRId64 " of %" PRId64 " (%s, window (col %" PRId64
                                ", row %" PRId64 ", %" PRId64 "x%" PRId64 ")) has %" PRId64
                                " channel(s) of %" PRId64 "x%" PRId64 " but sample 0 has %" PRId64
                                " of %" PRId64 "x%" PRId64 ": a batch holds one shape",
                                i, b->count, raster__dataset_path(it->image), w.col_off, w.row_off, w.width,
                                w.height, c, w.width, w.height, *c_out, *w_out, *h_out);
        }
        if (b->masks && it->label != NULL && item_label_check(it, b->o->label_resample) != RASTER_OK) {
            note_failure(b, i);
            char cause[1024];
            snprintf(cause, sizeof cause, "%s", raster_last_error());
            return raster__fail_again(RASTER_E_INVALID_ARG, "batch sample %" PRId64 " of %" PRId64 ": %s", i,
                                b->count, cause);
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

static int
part_kind(const batch_t *b, int part)
{
    if (part == 0)
        return PART_IMAGE;
    return part == 1 && b->masks ? PART_MASK : PART_VALIDITY;
}

/* The reader's message, prefixed with the sample: which one and where. */
static raster_status_t
sample_fail(batch_t *b, int64_t i, int kind, raster_status_t st)
{
    char cause[1024];
    snprintf(cause, sizeof cause, "%s", raster_last_error());
    const raster_batch_item_t *it = &b->items[i];
    const raster_window_t w = it->window;
    char source[96] = "";
    if (kind == PART_MASK && it->label != NULL)
        snprintf(source, sizeof source, "; label band %d of %.40s", it->label_band ? it->label_band : 1,
                 raster__dataset_path(it->label));
    else if (kind != PART_IMAGE)
        snprintf(source, sizeof source, "; validity mask");
    note_failure(b, i);
    return raster__fail_again(st, "batch sample %" PRId64 " of %" PRId64 " (%s, window (col %" PRId64
                        ", row %" PRId64 ", %" PRId64 "x%" PRId64 ")%s): %s",
                        i, b->count, raster__dataset_path(it->image), w.col_off, w.row_off, w.width, w.height,
                        source, cause);
}

static raster_window_f_t
window_f(raster_window_t w)
{
    return (raster_window_f_t){(double)w.col_off, (double)w.row_off, (double)w.width, (double)w.height};
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
    if (b->resampled)
        return raster_read_resampled_into(it->image, window_f(it->window), b->o->resampling,
                                          item_options(b, it), &v);
    return raster_read_into(it->image, it->window, item_options(b, it), &v);
}

/* The image's validity mask (rasterio's dataset_mask()) into a one-channel
 * view of any dtype: a uint8 view directly, another through scratch. */
static raster_status_t
validity_read(const batch_t *b, const raster_batch_item_t *it, const raster_view_t *v)
{
    raster_view_t mv = *v;
    if (v->dtype != RASTER_U8) {
        uint8_t *m = raster__scratch(RASTER_SCRATCH_BATCH, (size_t)(v->height * v->width));
        if (m == NULL)
            return RASTER_E_NOMEM;
        mv = raster_view_hwc(m, RASTER_U8, v->height, v->width, 1);
    }
    /* Only the sample's boundless flag carries over: the validity mask is
     * the dataset's, whatever bands the image reads. */
    raster_read_options_t mo, ro;
    raster_read_options_init(&mo);
    mo.boundless = item_read_options(b, it, &ro) == RASTER_OK && ro.boundless;  /* checked by items_check() */
    const raster_status_t st =
        b->resampled ? raster_read_mask_resampled_into(it->image, window_f(it->window), b->o->resampling, &mo, &mv)
                     : raster_read_mask_into(it->image, it->window, &mo, &mv);
    if (st == RASTER_OK && v->dtype != RASTER_U8)
        raster__place(&mv, v, NULL);
    return st;
}

/* GDAL's nearest source index for output pixel 0 and the step: the centre
 * plus GDAL's 1e-10 (gcore/rasterio.cpp). */
#define NEAREST_EPS 1e-10

/* A label resampled nearest onto the output grid: read once, at full
 * resolution and boundless (label_fill outside), the label pixels the
 * output centres fall on, then pick.  Positions follow GDAL's loop: rows
 * (r + 0.5) * step + off + eps, columns accumulated from 0.5 * step + off +
 * eps by adding the step, each truncated; where GDAL clamps to the raster
 * this reads label_fill. */
static raster_status_t
label_pick(const raster_batch_item_t *it, raster_window_f_t lw, const raster_read_options_t *lo,
           const raster_view_t *v)
{
    const int64_t oh = v->height, ow = v->width;
    const double sx = lw.width / (double)ow, sy = lw.height / (double)oh;
    const double x0 = 0.5 * sx + lw.col_off + NEAREST_EPS;
    double xl = x0;
    for (int64_t c = 1; c < ow; c++)
        xl += sx;
    const int64_t c0 = (int64_t)floor(x0), c1 = (int64_t)floor(xl);
    const int64_t r0 = (int64_t)floor(0.5 * sy + lw.row_off + NEAREST_EPS);
    const int64_t r1 = (int64_t)floor(((double)(oh - 1) + 0.5) * sy + lw.row_off + NEAREST_EPS);
    const raster_window_t src = {c0, r0, c1 - c0 + 1, r1 - r0 + 1};
    const size_t esz = raster_dtype_size(v->dtype);
    const size_t n = raster_view_nbytes(v->dtype, src.height, src.width, 1);
    RASTER_CHECK(n != 0, RASTER_E_INVALID_ARG, "%s: label window of %" PRId64 "x%" PRId64 " pixels is too large",
                 raster__dataset_path(it->label), src.width, src.height);
    uint8_t *px = raster__scratch(RASTER_SCRATCH_BATCH, n);
    if (px == NULL)
        return RASTER_E_NOMEM;
    const raster_view_t sv = raster_view_hwc(px, v->dtype, src.height, src.width, 1);
    RASTER_TRY(raster_read_into(it->label, src, lo, &sv));
    uint8_t *d0 = v->data;
    for (int64_t r = 0; r < oh; r++) {
        const int64_t sr = (int64_t)floor(((double)r + 0.5) * sy + lw.row_off + NEAREST_EPS) - r0;
        const uint8_t *srow = px + (size_t)sr * (size_t)src.width * esz;
        uint8_t *drow = d0 + r * v->row_stride;
        double x = x0;
        for (int64_t c = 0; c < ow; c++, x += sx)
            memcpy(drow + c * v->col_stride, srow + (size_t)((int64_t)floor(x) - c0) * esz, esz);
    }
    return RASTER_OK;
}

static raster_status_t
label_read(const batch_t *b, const raster_batch_item_t *it, const raster_view_t *v)
{
    label_src_t ls;
    RASTER_TRY(label_source(it, b->o->label_resample, &ls));
    const int band = it->label_band ? it->label_band : 1;
    /* Boundless always: wherever the window leaves the label raster the
     * label is the ignore value, not a class. */
    raster_read_options_t lo;
    raster_read_options_init(&lo);
    lo.bands = &band;
    lo.band_count = 1;
    lo.boundless = 1;
    lo.fill_value = b->o->label_fill;
    if (ls.same_grid && !b->resampled)
        return raster_read_into(it->label, it->window, &lo, v);
    return label_pick(it, ls.win, &lo, v);
}

static raster_status_t
sample_view(const raster_view_t *views, raster_buffer_t *buf, int64_t i, raster_view_t *v)
{
    if (views != NULL) {
        *v = views[i];
        return RASTER_OK;
    }
    return raster_buffer_view(buf, i, v);
}

static raster_status_t
item_run(void *ctx, int64_t k)
{
    batch_t *b = ctx;
    const int64_t i = k / b->per_sample;
    const int kind = part_kind(b, (int)(k % b->per_sample));
    const raster_batch_item_t *it = &b->items[i];
    raster_view_t v;
    raster_status_t st;
    if (kind == PART_IMAGE) {
        st = image_run(b, i);
    } else if (kind == PART_MASK) {
        st = sample_view(b->masks_v, b->mask_buf, i, &v);
        if (st == RASTER_OK)
            st = it->label != NULL ? label_read(b, it, &v) : validity_read(b, it, &v);
    } else {
        st = sample_view(b->validity_v, b->validity_buf, i, &v);
        if (st == RASTER_OK)
            st = validity_read(b, it, &v);
    }
    return st == RASTER_OK ? RASTER_OK : sample_fail(b, i, kind, st);
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

/* The common set-up of both entry points: options, shape, output size. */
static raster_status_t
batch_setup(batch_t *b, const raster_batch_options_t *o, const raster_batch_item_t *items, int64_t count,
            int masks, int validity, int64_t *c_out)
{
    *b = (batch_t){.items = items, .count = count, .o = o, .masks = masks, .validity = validity,
                   .per_sample = 1 + (masks != 0) + (validity != 0)};
    atomic_init(&b->failed, count);
    int64_t h = 0, w = 0;
    RASTER_TRY(items_check(b, &h, &w, c_out));
    b->out_h = o->out_height ? o->out_height : h;
    b->out_w = o->out_width ? o->out_width : w;
    b->resampled = b->out_h != h || b->out_w != w;
    /* A boundless resampled read exists for one window (rasterio's VRT), but
     * a batch's validity masks and labels have no boundless resampled rule:
     * refused before anything is read, as before that read existed. */
    for (int64_t i = 0; b->resampled && i < count; i++) {
        raster_read_options_t ro;
        RASTER_CHECK(!(item_read_options(b, &items[i], &ro) == RASTER_OK && ro.boundless), RASTER_E_UNSUPPORTED,
                     "%s: sample %lld is boundless and resampled (%lldx%lld to %lldx%lld): a batch's resampled "
                     "samples cannot be boundless",
                     raster__dataset_path(items[i].image), (long long)i, (long long)h, (long long)w,
                     (long long)b->out_h, (long long)b->out_w);
    }
    return RASTER_OK;
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

static raster_status_t
batch_read_at(raster_pool_t *pool, const raster_batch_item_t *items, int64_t count,
              const raster_batch_options_t *opt, raster_batch_buffers_t *out, int64_t *failed_index_out,
              const void *site)
{
    if (failed_index_out != NULL)
        *failed_index_out = -1;
    RASTER_CHECK(out != NULL, RASTER_E_INVALID_ARG, "raster_batch_read: an output is NULL");
    *out = (raster_batch_buffers_t){NULL, NULL, NULL};
    RASTER_CHECK(pool != NULL, RASTER_E_INVALID_ARG, "raster_batch_read: pool is NULL");
    raster_batch_options_t o;
    RASTER_TRY(options_resolve(opt, &o));
    if (o.masks)
        RASTER_TRY(fill_check(o.label_fill, o.label_dtype));
    batch_t b;
    int64_t c = 0;
    raster_status_t st = batch_setup(&b, &o, items, count, o.masks, o.validity, &c);
    if (st != RASTER_OK) {
        failed_report(&b, failed_index_out);
        return st;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = raster__pool_acquire_at(pool, o.dtype, count, b.out_h, b.out_w, c, o.timeout_ms, site, &b.image_buf);
    if (st == RASTER_OK && o.masks)
        st = raster__pool_acquire_at(pool, o.label_dtype, count, b.out_h, b.out_w, 1,
                                     remaining_ms(o.timeout_ms, &t0), site, &b.mask_buf);
    if (st == RASTER_OK && o.validity)
        st = raster__pool_acquire_at(pool, RASTER_U8, count, b.out_h, b.out_w, 1,
                                     remaining_ms(o.timeout_ms, &t0), site, &b.validity_buf);
    if (st == RASTER_OK) {
        items_retain(items, count);
        st = batch_run(&b, o.threads);
        items_release(items, count);
    }
    failed_report(&b, failed_index_out);
    if (st != RASTER_OK) {
        raster_buffer_release(b.image_buf);
        raster_buffer_release(b.mask_buf);
        raster_buffer_release(b.validity_buf);
        return st;
    }
    *out = (raster_batch_buffers_t){b.image_buf, b.mask_buf, b.validity_buf};
    return RASTER_OK;
}

RASTER__NOINLINE raster_status_t
raster_batch_read_ex(raster_pool_t *pool, const raster_batch_item_t *items, int64_t count,
                     const raster_batch_options_t *opt, raster_batch_buffers_t *out,
                     int64_t *failed_index_out)
{
    /* The leak report should name the caller's line, not ours. */
    return batch_read_at(pool, items, count, opt, out, failed_index_out, RASTER__CALLER);
}

RASTER__NOINLINE raster_status_t
raster_batch_read(raster_pool_t *pool, const raster_batch_item_t *items, int64_t count,
                  const raster_batch_options_t *opt, raster_buffer_t **image_out,
                  raster_buffer_t **mask_out, int64_t *failed_index_out)
{
    const void *const site = RASTER__CALLER;
    if (failed_index_out != NULL)
        *failed_index_out = -1;
    RASTER_CHECK(image_out != NULL && mask_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_batch_read: image_out or mask_out is NULL");
    *image_out = *mask_out = NULL;
    raster_batch_options_t o;
    RASTER_TRY(options_resolve(opt, &o));
    RASTER_CHECK(!o.validity, RASTER_E_INVALID_ARG,
                 "raster_batch_read: validity masks need raster_batch_read_ex(), which has their buffer");
    raster_batch_buffers_t bufs;
    RASTER_TRY(batch_read_at(pool, items, count, &o, &bufs, failed_index_out, site));
    *image_out = bufs.image;
    *mask_out = bufs.mask;
    return RASTER_OK;
}

/* Caller views: one per sample, of the output size; masks of one channel
 * whose dtype holds label_fill, validity uint8. */
static raster_status_t
views_check(batch_t *b, const raster_batch_views_t *v, int64_t c)
{
    for (int64_t i = 0; i < b->count; i++) {
        const raster_view_t *im = &v->images[i], *m = v->masks ? &v->masks[i] : NULL,
                            *va = v->validity ? &v->validity[i] : NULL;
        const char *bad = NULL;
        if (im->height != b->out_h || im->width != b->out_w || im->channels != c)
            bad = "image view";
        else if (m && (m->height != b->out_h || m->width != b->out_w || m->channels != 1))
            bad = "mask view (one channel)";
        else if (va && (va->height != b->out_h || va->width != b->out_w || va->channels != 1 ||
                        va->dtype != RASTER_U8))
            bad = "validity view (uint8, one channel)";
        if (bad == NULL && m && !fill_fits(b->o->label_fill, m->dtype)) {
            note_failure(b, i);
            return fill_check(b->o->label_fill, m->dtype);
        }
        if (bad != NULL) {
            note_failure(b, i);
            return raster__fail(RASTER_E_INVALID_ARG,
                                "batch sample %" PRId64 " of %" PRId64 ": the %s must be %" PRId64 "x%" PRId64
                                " (HxW)",
                                i, b->count, bad, b->out_h, b->out_w);
        }
    }
    return RASTER_OK;
}

raster_status_t
raster_batch_read_into_ex(const raster_batch_item_t *items, int64_t count, const raster_batch_options_t *opt,
                          const raster_batch_views_t *views, int64_t *failed_index_out)
{
    if (failed_index_out != NULL)
        *failed_index_out = -1;
    RASTER_CHECK(views != NULL && views->images != NULL, RASTER_E_INVALID_ARG,
                 "raster_batch_read_into: images is NULL");
    raster_batch_options_t o;
    RASTER_TRY(options_resolve(opt, &o));
    batch_t b;
    int64_t c = 0;
    raster_status_t st = batch_setup(&b, &o, items, count, views->masks != NULL, views->validity != NULL, &c);
    b.images = views->images;
    b.masks_v = views->masks;
    b.validity_v = views->validity;
    if (st == RASTER_OK)
        st = views_check(&b, views, c);
    if (st == RASTER_OK) {
        items_retain(items, count);
        st = batch_run(&b, o.threads);
        items_release(items, count);
    }
    failed_report(&b, failed_index_out);
    return st;
}

raster_status_t
raster_batch_read_into(const raster_batch_item_t *items, int64_t count, const raster_batch_options_t *opt,
                       const raster_view_t *images, const raster_view_t *masks, int64_t *failed_index_out)
{
    const raster_batch_views_t v = {images, masks, NULL};
    return raster_batch_read_into_ex(items, count, opt, &v, failed_index_out);
}
