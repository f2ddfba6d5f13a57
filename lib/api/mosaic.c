/*
 * mosaic.c - one source's part of a mosaic read (rasterloader.Mosaic), as
 * rasterio.merge.merge's default method "first" composes it.
 *
 * merge reads every source into a fresh masked array and copies it into the
 * destination where the destination still holds nodata.  Here a source is
 * written straight into its channel slice of the destination (any strides),
 * which is exact whenever nothing was written there before: the first source
 * of a rectangle, and every source whose rectangle no earlier one overlaps.
 * Only a source that overlaps an earlier one needs the per-pixel "is the
 * destination still nodata" test; it is read into per-thread scratch in the
 * destination's dtype and placed from there, so those pixels are written
 * twice.  That is the price of "first": which pixels a later scene may fill
 * is known only after the earlier scenes' values are in place.
 *
 * The geometry (which source window, which destination rectangle, merge's
 * win_align rounding) is computed by the caller; this file only reads and
 * places, so the bytes equal merge's for the same windows.
 */
#include "api.h"

#include <math.h>
#include <string.h>

/* Read 'band' of 'win' into 'dst' through the one window read
 * (raster_read_window_into): a plain read when the window is whole pixels of
 * dst's size (the native fast path), else GDAL's resampled read with merge's
 * float window. */
static raster_status_t
read_source(raster_dataset_t *ds, int band, raster_window_f_t win, raster_resampling_t rs,
            const raster_view_t *dst)
{
    raster_read_options_t opt;
    raster_read_options_init(&opt);
    opt.bands = &band;
    opt.band_count = 1;
    return raster_read_window_into(ds, win, rs, &opt, dst);
}

/* copy_first for one element type: dst = src where dst is still nodata and
 * src is valid.  'sv' is compact (row stride w elements). */
#define COMPOSITE_FIRST(T, IS_EMPTY)                                                      \
    do {                                                                                  \
        const T nd = (T)nodata, snd = (T)src_nodata;                                      \
        const T *s = sv;                                                                  \
        for (int64_t y = 0; y < dst->height; y++) {                                       \
            char *row = (char *)dst->data + y * dst->row_stride;                          \
            for (int64_t x = 0; x < dst->width; x++, s++) {                               \
                T *d = (T *)(row + x * dst->col_stride);                                  \
                if (IS_EMPTY(*d, nd) && !(has_src_nodata && *s == snd))                   \
                    *d = *s;                                                              \
            }                                                                             \
        }                                                                                 \
    } while (0)
#define EQ(a, b) ((a) == (b))
#define EQ_OR_NAN(a, b) ((b) != (b) ? (a) != (a) : (a) == (b))

static void
place_first(const void *sv, double nodata, int has_src_nodata, double src_nodata,
            const raster_view_t *dst)
{
    switch (dst->dtype) {
    case RASTER_U8: COMPOSITE_FIRST(uint8_t, EQ); break;
    case RASTER_I8: COMPOSITE_FIRST(int8_t, EQ); break;
    case RASTER_U16: COMPOSITE_FIRST(uint16_t, EQ); break;
    case RASTER_I16: COMPOSITE_FIRST(int16_t, EQ); break;
    case RASTER_U32: COMPOSITE_FIRST(uint32_t, EQ); break;
    case RASTER_I32: COMPOSITE_FIRST(int32_t, EQ); break;
    case RASTER_F32: COMPOSITE_FIRST(float, EQ_OR_NAN); break;
    case RASTER_F64: COMPOSITE_FIRST(double, EQ_OR_NAN); break;
    default: break;   /* F16: refused by the caller */
    }
}

raster_status_t
raster_mosaic_read_source(raster_dataset_t *ds, int band, raster_window_f_t win,
                          raster_resampling_t resampling, raster_composite_t composite,
                          double nodata, int has_src_nodata, double src_nodata,
                          const raster_view_t *dst)
{
    RASTER_CHECK(ds != NULL && dst != NULL && dst->data != NULL, RASTER_E_INVALID_ARG,
                 "mosaic source read: NULL argument");
    RASTER_CHECK(dst->channels == 1, RASTER_E_INVALID_ARG,
                 "%s: a mosaic source writes one channel, not %lld", raster__dataset_path(ds),
                 (long long)dst->channels);
    RASTER_CHECK(composite == RASTER_COMPOSITE_DIRECT || composite == RASTER_COMPOSITE_FIRST,
                 RASTER_E_INVALID_ARG, "%s: unknown composite mode %d", raster__dataset_path(ds),
                 (int)composite);
    if (dst->height <= 0 || dst->width <= 0)
        return RASTER_OK;
    if (composite == RASTER_COMPOSITE_DIRECT)
        return read_source(ds, band, win, resampling, dst);
    RASTER_CHECK(dst->dtype != RASTER_F16, RASTER_E_UNSUPPORTED,
                 "%s: mosaic compositing of float16 is not supported", raster__dataset_path(ds));
    const size_t isz = raster_dtype_size(dst->dtype);
    void *sv = raster__scratch(RASTER_SCRATCH_MOSAIC, (size_t)(dst->height * dst->width) * isz);
    if (sv == NULL)
        return RASTER_E_NOMEM;
    const raster_view_t tmp = {sv, dst->dtype, dst->height, dst->width, 1,
                               dst->width * (int64_t)isz, (int64_t)isz, (int64_t)isz};
    RASTER_TRY(read_source(ds, band, win, resampling, &tmp));
    place_first(sv, nodata, has_src_nodata, src_nodata, dst);
    return RASTER_OK;
}

/* ------------------------------ a whole query --------------------------- */

typedef struct {
    const raster_mosaic_source_t *items;
    int64_t n;
} query_t;

/* Task 'lane': the lane-th run of equal lanes, in order.  Scanning for its
 * start costs n steps per task, nothing next to one read, and needs no
 * allocation. */
static raster_status_t
lane_run(void *ctx, int64_t lane)
{
    const query_t *q = ctx;
    int64_t i = 0;
    for (int64_t k = 0; i < q->n && k < lane;) {
        i++;
        if (i < q->n && q->items[i].lane != q->items[i - 1].lane)
            k++;
    }
    for (int64_t j = i; j < q->n && q->items[j].lane == q->items[i].lane; j++) {
        const raster_mosaic_source_t *it = &q->items[j];
        RASTER_TRY(raster_mosaic_read_source(it->ds, it->band, it->win, it->resampling,
                                             it->composite, it->nodata, it->has_src_nodata,
                                             it->src_nodata, &it->dst));
    }
    return RASTER_OK;
}

raster_status_t
raster_mosaic_read_sources(const raster_mosaic_source_t *items, int64_t n, int max_threads)
{
    RASTER_CHECK(n == 0 || items != NULL, RASTER_E_INVALID_ARG, "mosaic read: NULL items");
    int64_t lanes = n > 0;
    for (int64_t i = 1; i < n; i++)
        lanes += items[i].lane != items[i - 1].lane;
    if (max_threads <= 0)
        max_threads = raster_get_threads();
    const query_t q = {items, n};
    return raster__parallel_for(lanes, max_threads, lane_run, (void *)&q);
}

/* ------------------------------ a query, fill to normalisation --------- */

typedef struct {
    const raster_mosaic_source_t *items;
    int64_t n;
    const raster_mosaic_lane_t *lanes;
    const raster_mosaic_validity_t *validity;
} mosaic_query_t;

/* Where 'v' starts in 'plane' (*r, *c), or 0 when it is not a sub-view of it. */
static int
sub_view_origin(const raster_view_t *plane, const raster_view_t *v, int64_t *r, int64_t *c)
{
    if (v->dtype != plane->dtype || v->row_stride != plane->row_stride ||
        v->col_stride != plane->col_stride || plane->row_stride <= 0 || plane->col_stride <= 0)
        return 0;
    const ptrdiff_t off = (const char *)v->data - (const char *)plane->data;
    if (off < 0 || off % plane->row_stride % plane->col_stride != 0)
        return 0;
    *r = off / plane->row_stride;
    *c = off % plane->row_stride / plane->col_stride;
    return *r + v->height <= plane->height && *c + v->width <= plane->width;
}

/* The items of lane 'lane': [*first, *first + *count) (contiguous). */
static void
lane_items(const mosaic_query_t *q, int64_t lane, int64_t *first, int64_t *count)
{
    int64_t i = 0;
    while (i < q->n && q->items[i].lane != lane)
        i++;
    int64_t j = i;
    while (j < q->n && q->items[j].lane == lane)
        j++;
    *first = i;
    *count = j - i;
}

/* Fill row y of 'ln' with its nodata except the columns a DIRECT item
 * covers: jump over the rectangle under x, else fill up to the next one. */
static void
fill_row_except_direct(const raster_mosaic_lane_t *ln, const raster_mosaic_source_t *its, int64_t n,
                       int64_t y)
{
    const raster_view_t *pl = &ln->plane;
    int64_t x = 0;
    while (x < pl->width) {
        int64_t next = pl->width, skip_to = -1;
        for (int64_t i = 0; i < n && skip_to < 0; i++) {
            int64_t r0, c0;
            const raster_view_t *d = &its[i].dst;
            if (its[i].composite != RASTER_COMPOSITE_DIRECT || d->height <= 0 || d->width <= 0 ||
                !sub_view_origin(pl, d, &r0, &c0) || y < r0 || y >= r0 + d->height)
                continue;
            if (c0 <= x && x < c0 + d->width)
                skip_to = c0 + d->width;
            else if (c0 > x && c0 < next)
                next = c0;
        }
        if (skip_to >= 0) {
            x = skip_to;
            continue;
        }
        const raster_view_t gap = raster__view_sub(pl, y, x, 1, next - x);
        raster__fill(&gap, ln->nodata);
        x = next;
    }
}

/* Step 1 of a lane: the fill, then its sources in order. */
static raster_status_t
lane_fill_and_read(void *ctx, int64_t lane)
{
    const mosaic_query_t *q = ctx;
    const raster_mosaic_lane_t *ln = &q->lanes[lane];
    int64_t first, count;
    lane_items(q, lane, &first, &count);
    const raster_mosaic_source_t *its = q->items + first;
    int any_direct = 0;
    for (int64_t i = 0; i < count; i++)
        any_direct |= its[i].composite == RASTER_COMPOSITE_DIRECT;
    if (!any_direct)
        raster__fill(&ln->plane, ln->nodata);
    else
        for (int64_t y = 0; y < ln->plane.height; y++)
            fill_row_except_direct(ln, its, count, y);
    for (int64_t i = 0; i < count; i++)
        RASTER_TRY(raster_mosaic_read_source(its[i].ds, its[i].band, its[i].win, its[i].resampling,
                                             its[i].composite, its[i].nodata, its[i].has_src_nodata,
                                             its[i].src_nodata, &its[i].dst));
    return RASTER_OK;
}

/* A one-row float64 view of per-thread scratch, 'width' wide (NULL data: no memory). */
static raster_view_t
row_f64(int64_t width, size_t extra_nbytes)
{
    void *buf = raster__scratch(RASTER_SCRATCH_MOSAIC, (size_t)width * 8 + extra_nbytes);
    return (raster_view_t){buf, RASTER_F64, 1, width, 1, width * 8, 8, 8};
}

/* Step 2: one validity view, row by row (each lane's row in double, then
 * the uint8 row converted to the view's dtype). */
static raster_status_t
validity_run(void *ctx, int64_t k)
{
    const mosaic_query_t *q = ctx;
    const raster_mosaic_validity_t *vd = &q->validity[k];
    const int64_t w = vd->dst.width;
    const raster_view_t vals = row_f64(w, (size_t)w);
    if (vals.data == NULL)
        return RASTER_E_NOMEM;
    uint8_t *const valid = (uint8_t *)vals.data + w * 8;
    const raster_view_t vrow = {valid, RASTER_U8, 1, w, 1, w, 1, 1};
    const double *const x = vals.data;
    for (int64_t y = 0; y < vd->dst.height; y++) {
        memset(valid, 0, (size_t)w);
        for (int l = vd->first_lane; l < vd->first_lane + vd->lane_count; l++) {
            const raster_mosaic_lane_t *ln = &q->lanes[l];
            const raster_view_t src = raster__view_sub(&ln->plane, y, 0, 1, w);
            raster__place(&src, &vals, NULL);
            const double nd = ln->nodata;
            for (int64_t i = 0; i < w; i++)
                if (nd != nd ? x[i] == x[i] : x[i] != nd)
                    valid[i] = 255;
        }
        const raster_view_t dst = raster__view_sub(&vd->dst, y, 0, 1, w);
        raster__place(&vrow, &dst, NULL);
    }
    return RASTER_OK;
}

/* Step 3: one lane normalised in place, row by row through double. */
static raster_status_t
lane_normalise(void *ctx, int64_t lane)
{
    const mosaic_query_t *q = ctx;
    const raster_mosaic_lane_t *ln = &q->lanes[lane];
    if (!ln->normalise)
        return RASTER_OK;
    const raster_view_t vals = row_f64(ln->plane.width, 0);
    if (vals.data == NULL)
        return RASTER_E_NOMEM;
    const raster__place_opts_t po = {NULL, &ln->scale, &ln->offset, ln->divide};
    for (int64_t y = 0; y < ln->plane.height; y++) {
        const raster_view_t row = raster__view_sub(&ln->plane, y, 0, 1, ln->plane.width);
        raster__place(&row, &vals, NULL);
        raster__place(&vals, &row, &po);
    }
    return RASTER_OK;
}

static raster_status_t
query_check(const mosaic_query_t *q, int nlanes, int nvalidity)
{
    for (int l = 0; l < nlanes; l++) {
        const raster_mosaic_lane_t *ln = &q->lanes[l];
        RASTER_TRY(raster__view_check(&ln->plane, "mosaic lane plane"));
        RASTER_CHECK(ln->plane.channels == 1, RASTER_E_INVALID_ARG,
                     "mosaic read: lane %d's plane has %lld channels, not 1", l, (long long)ln->plane.channels);
        RASTER_CHECK(!(ln->normalise && ln->divide && ln->scale == 0.0), RASTER_E_INVALID_ARG,
                     "mosaic read: lane %d: std is 0", l);
    }
    for (int64_t i = 0; i < q->n; i++) {
        const raster_mosaic_source_t *it = &q->items[i];
        RASTER_CHECK(it->lane >= 0 && it->lane < nlanes, RASTER_E_INVALID_ARG,
                     "mosaic read: item %lld's lane %d is not one of the %d lanes", (long long)i, it->lane,
                     nlanes);
        RASTER_CHECK(i == 0 || it->lane >= q->items[i - 1].lane, RASTER_E_INVALID_ARG,
                     "mosaic read: the items of a lane must be contiguous, in lane order (item %lld)",
                     (long long)i);
        int64_t r, c;
        RASTER_CHECK(it->dst.height <= 0 || it->dst.width <= 0 ||
                         sub_view_origin(&q->lanes[it->lane].plane, &it->dst, &r, &c),
                     RASTER_E_INVALID_ARG, "mosaic read: item %lld does not write inside lane %d's plane",
                     (long long)i, it->lane);
    }
    for (int k = 0; k < nvalidity; k++) {
        const raster_mosaic_validity_t *vd = &q->validity[k];
        RASTER_TRY(raster__view_check(&vd->dst, "mosaic validity"));
        RASTER_CHECK(vd->dst.channels == 1 && vd->lane_count >= 1 && vd->first_lane >= 0 &&
                         vd->first_lane + vd->lane_count <= nlanes,
                     RASTER_E_INVALID_ARG, "mosaic read: validity %d: one channel over lanes in [0, %d)", k,
                     nlanes);
        for (int l = vd->first_lane; l < vd->first_lane + vd->lane_count; l++)
            RASTER_CHECK(q->lanes[l].plane.height == vd->dst.height && q->lanes[l].plane.width == vd->dst.width,
                         RASTER_E_INVALID_ARG, "mosaic read: validity %d is %lldx%lld, lane %d %lldx%lld", k,
                         (long long)vd->dst.height, (long long)vd->dst.width, l,
                         (long long)q->lanes[l].plane.height, (long long)q->lanes[l].plane.width);
    }
    return RASTER_OK;
}

raster_status_t
raster_mosaic_read(const raster_mosaic_source_t *items, int64_t n, const raster_mosaic_lane_t *lanes, int nlanes,
                   const raster_mosaic_validity_t *validity, int nvalidity, int max_threads)
{
    RASTER_CHECK((n == 0 || items != NULL) && (nlanes == 0 || lanes != NULL) &&
                     (nvalidity == 0 || validity != NULL) && n >= 0 && nlanes >= 0 && nvalidity >= 0,
                 RASTER_E_INVALID_ARG, "mosaic read: NULL or negative arguments");
    const mosaic_query_t q = {items, n, lanes, validity};
    RASTER_TRY(query_check(&q, nlanes, nvalidity));
    if (max_threads <= 0)
        max_threads = raster_get_threads();
    RASTER_TRY(raster__parallel_for(nlanes, max_threads, lane_fill_and_read, (void *)&q));
    RASTER_TRY(raster__parallel_for(nvalidity, max_threads, validity_run, (void *)&q));
    return raster__parallel_for(nlanes, max_threads, lane_normalise, (void *)&q);
}
