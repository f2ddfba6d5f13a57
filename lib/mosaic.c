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
#include "internal.h"

#include <math.h>
#include <string.h>

/* Read 'band' of 'win' into 'dst': a plain read when the window is whole
 * pixels of dst's size (no resampling to do: the native fast path), else
 * GDAL's resampled read with merge's float window. */
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
                 "%s: a mosaic source writes one channel, not %lld", ds->path,
                 (long long)dst->channels);
    RASTER_CHECK(composite == RASTER_COMPOSITE_DIRECT || composite == RASTER_COMPOSITE_FIRST,
                 RASTER_E_INVALID_ARG, "%s: unknown composite mode %d", ds->path,
                 (int)composite);
    if (dst->height <= 0 || dst->width <= 0)
        return RASTER_OK;
    if (composite == RASTER_COMPOSITE_DIRECT)
        return read_source(ds, band, win, resampling, dst);
    RASTER_CHECK(dst->dtype != RASTER_F16, RASTER_E_UNSUPPORTED,
                 "%s: mosaic compositing of float16 is not supported", ds->path);
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
