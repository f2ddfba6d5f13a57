/*
 * mask.c - which mask a read gets, with rasterio's rules.
 *
 * One band asked for: that band's GDAL mask (rasterio's read_masks).  No band
 * or several: the dataset mask (rasterio's dataset_mask), in this order:
 *   1. band 1's mask is per-dataset (internal mask, .msk, RGBA alpha): use it;
 *   2. four bands with band 1 red (RGBA with a shadowing nodata): band 4's mask;
 *   3. otherwise 255 where any band's mask is nonzero, else 0.
 * Band masks come from GDAL for every dataset: masks are a small share of
 * the bytes, and GDAL's nodata/alpha/.msk logic is the reference.
 *
 * raster__masks_read() is the whole of a read's masks (raster_read_masks_into):
 * which mask each output channel gets, inside and outside the raster, by the
 * rules rasterio 1.4 applies through its boundless VRT (rasterio/vrt.py,
 * _boundless_vrt_doc), so that the Python layer only translates arguments.
 * The one rule that depends on pixel values (a boundless masked read with a
 * nodata value) compares the pixels the read already wrote, in the band's
 * own dtype, instead of reading them again.
 */
#include "reader.h"

#include <gdal.h>

#include <math.h>
#include <string.h>

/* Where a mask read's pixels come from: 'win' at full resolution, or
 * (resampled) GDAL resampling 'wf' with 'alg' to the destination's size,
 * or (bv not NULL) rasterio's boundless VRT, which has 0 outside. */
typedef struct mask_src {
    raster_window_t win;
    int resampled;
    raster_window_f_t wf;
    raster_resampling_t alg;
    const raster__boundless_vrt_t *bv;
} mask_src_t;

static raster_status_t
band_mask(raster_dataset_t *ds, const mask_src_t *src, int band, const raster_view_t *dst)
{
    if (src->bv != NULL)
        return raster__gdal_read_boundless_masks(ds, src->bv, &band, 1, dst);
    /* GDAL's all-valid mask is a constant 255 (resampled too): skip the I/O. */
    if (ds->bands[band - 1].info.mask_flags == GMF_ALL_VALID) {
        raster__fill(dst, 255.0);
        return RASTER_OK;
    }
    if (src->resampled)
        return raster__gdal_read_mask_resampled(ds, src->wf, src->alg, band, dst);
    return raster__gdal_read_mask(ds, src->win, band, dst);
}

/* 1 when every band of the dataset has 'flag' in its GDAL mask flags (as
 * rasterio tests them: "MaskFlags.all_valid in flags"). */
static int
every_band_has(const raster_dataset_t *ds, int flag)
{
    for (int b = 0; b < ds->info.band_count; b++)
        if (!(ds->bands[b].info.mask_flags & flag))
            return 0;
    return 1;
}

static raster_status_t
any_band_valid(raster_dataset_t *ds, const mask_src_t *src, const raster_view_t *dst)
{
    int all_valid = 1;
    for (int b = 0; b < ds->info.band_count; b++)
        all_valid &= ds->bands[b].info.mask_flags == GMF_ALL_VALID;
    if (all_valid && src->bv == NULL) {
        raster__fill(dst, 255.0);
        return RASTER_OK;
    }
    RASTER_TRY(band_mask(ds, src, 1, dst));
    const int64_t h = dst->height, w = dst->width;
    uint8_t *acc = dst->data;
    if (ds->info.band_count > 1) {
        uint8_t *m = raster__scratch(RASTER_SCRATCH_MASK, (size_t)(w * h));
        if (m == NULL)
            return RASTER_E_NOMEM;
        const raster_view_t mv = raster_view_hwc(m, RASTER_U8, h, w, 1);
        for (int b = 2; b <= ds->info.band_count; b++) {
            RASTER_TRY(band_mask(ds, src, b, &mv));
            for (int64_t r = 0; r < h; r++)
                for (int64_t c = 0; c < w; c++)
                    acc[r * dst->row_stride + c * dst->col_stride] |= m[r * w + c];
        }
    }
    for (int64_t r = 0; r < h; r++)
        for (int64_t c = 0; c < w; c++) {
            uint8_t *p = &acc[r * dst->row_stride + c * dst->col_stride];
            *p = *p ? 255 : 0;
        }
    return RASTER_OK;
}

static raster_status_t
mask_read(raster_dataset_t *ds, const mask_src_t *src, int band, const raster_view_t *dst)
{
    if (band > 0)
        return band_mask(ds, src, band, dst);
    if (ds->bands[0].info.mask_flags & GMF_PER_DATASET)
        return band_mask(ds, src, 1, dst);
    if (ds->info.band_count == 4 && strcmp(ds->bands[0].color_interp, "red") == 0)
        return band_mask(ds, src, 4, dst);
    return any_band_valid(ds, src, dst);
}

raster_status_t
raster__mask_read(raster_dataset_t *ds, raster_window_t win, int band, const raster_view_t *dst)
{
    const mask_src_t src = {win, 0, {0, 0, 0, 0}, RASTER_RESAMPLE_NEAREST, NULL};
    return mask_read(ds, &src, band, dst);
}

raster_status_t
raster__mask_read_resampled(raster_dataset_t *ds, raster_window_f_t win, raster_resampling_t alg, int band,
                            const raster_view_t *dst)
{
    const mask_src_t src = {{0, 0, 0, 0}, 1, win, alg, NULL};
    return mask_read(ds, &src, band, dst);
}

raster_status_t
raster__mask_read_boundless(raster_dataset_t *ds, const raster__boundless_vrt_t *bv, const raster_view_t *dst)
{
    const mask_src_t src = {{0, 0, 0, 0}, 1, bv->win, bv->alg, bv};
    return mask_read(ds, &src, 0, dst);
}

/* ------------------------------ a read's masks ------------------------- */

/* What one output channel of a read's masks holds. */
typedef enum {
    CH_VALID,       /* 255 everywhere, outside too */
    CH_BAND,        /* the band's mask inside, 0 outside */
    CH_VALUE,       /* 0 where the pixel equals the nodata value, 255 else; 0 outside */
    CH_INSIDE       /* 255 inside, 0 outside */
} channel_rule_t;

/* rasterio's boundless VRT gives a band no mask at all when the band has
 * none of its own, the dataset has masks, band 1 no nodata and not every
 * band a per-dataset mask (RGBA): such a band reads valid outside too. */
static int
vrt_has_no_mask(const raster_dataset_t *ds, int band)
{
    return !every_band_has(ds, GMF_ALL_VALID) && !ds->bands[0].info.has_nodata &&
           !every_band_has(ds, GMF_PER_DATASET) && (ds->bands[band - 1].info.mask_flags & GMF_ALL_VALID);
}

/* The byte GDAL writes for 'v' in the mask VRT that scales pixels to 255
 * (rasterio's boundless read of a dataset without masks). */
static int
as_byte(double v)
{
    if (v != v)
        return 0;
    const double r = floor(v + 0.5);
    return r < 0 ? 0 : r > 255 ? 255 : (int)r;
}

static channel_rule_t
channel_rule(const raster_dataset_t *ds, const raster__masks_request_t *rq, int band)
{
    if (!rq->boundless)
        return CH_BAND;
    if (rq->rule == RASTER_MASKS_BANDS)
        return vrt_has_no_mask(ds, band) ? CH_VALID : CH_BAND;
    if (every_band_has(ds, GMF_ALL_VALID)) {
        if (!rq->has_nodata)
            return CH_INSIDE;
        return as_byte(rq->nodata) != 0 ? CH_VALID : CH_VALUE;
    }
    if (every_band_has(ds, GMF_PER_DATASET))
        return CH_BAND;
    if (rq->has_nodata)
        return CH_VALUE;
    return ds->bands[band - 1].info.mask_flags & GMF_ALL_VALID ? CH_VALID : CH_BAND;
}

static raster_view_t
view_channel(const raster_view_t *v, int64_t k)
{
    raster_view_t c = *v;
    c.data = (char *)v->data + k * v->chan_stride;
    c.channels = 1;
    return c;
}

/* The value at (r, c) of a one-channel view, exactly, as a double. */
static double
load_f64(const raster_view_t *v, int64_t r, int64_t c)
{
    const char *p = (const char *)v->data + r * v->row_stride + c * v->col_stride;
    switch (v->dtype) {
    case RASTER_U8: return *(const uint8_t *)p;
    case RASTER_I8: return *(const int8_t *)p;
    case RASTER_U16: return *(const uint16_t *)p;
    case RASTER_I16: return *(const int16_t *)p;
    case RASTER_U32: return *(const uint32_t *)p;
    case RASTER_I32: return *(const int32_t *)p;
    case RASTER_F16: return raster__f64_from_f16(*(const uint16_t *)p);
    case RASTER_F32: return *(const float *)p;
    case RASTER_F64: return *(const double *)p;
    }
    return 0.0;
}

/* 1 when converting every value of 'from' to 'to' is exact, so a pixel of
 * 'to' tells its source value of 'from' (out_dtype widening, or the same). */
static int
holds_exactly(raster_dtype_t from, raster_dtype_t to)
{
    if (from == to)
        return 1;
    switch (from) {
    case RASTER_U8: return to != RASTER_I8;
    case RASTER_I8: return to == RASTER_I16 || to == RASTER_I32 || to == RASTER_F16 || to == RASTER_F32 ||
                           to == RASTER_F64;
    case RASTER_U16: return to == RASTER_U32 || to == RASTER_I32 || to == RASTER_F32 || to == RASTER_F64;
    case RASTER_I16: return to == RASTER_I32 || to == RASTER_F32 || to == RASTER_F64;
    case RASTER_U32: case RASTER_I32: case RASTER_F32: return to == RASTER_F64;
    case RASTER_F16: return to == RASTER_F32 || to == RASTER_F64;
    case RASTER_F64: return 0;
    }
    return 0;
}

/* "Pixel equals the nodata value" in the band's dtype, as GDAL's nodata
 * mask (and rasterio's VRT) decides it. */
typedef struct {
    int never;      /* an integer band and a value it cannot hold */
    int nan;        /* a float band and NaN: equal means NaN */
    double v;       /* else: the value rounded to the band's dtype */
} nodata_match_t;

static nodata_match_t
nodata_match(double value, raster_dtype_t dt)
{
    nodata_match_t m = {0, 0, value};
    static const double lo[] = {0, -128, 0, -32768, 0, -2147483648.0};
    static const double hi[] = {255, 127, 65535, 32767, 4294967295.0, 2147483647};
    switch (dt) {
    case RASTER_F16: case RASTER_F32: case RASTER_F64:
        if (value != value)
            m.nan = 1;
        else if (dt == RASTER_F32)
            m.v = (double)(float)value;
        else if (dt == RASTER_F16)
            m.v = raster__f64_from_f16(raster__f16_from_f64(value));
        return m;
    default:
        m.never = !isfinite(value) || value != floor(value) || value < lo[dt] || value > hi[dt];
        return m;
    }
}

/* dst (one channel, inner part) = 0 where src equals the value, else 255. */
static void
value_mask(const raster_view_t *src, nodata_match_t m, const raster_view_t *dst)
{
    for (int64_t r = 0; r < dst->height; r++)
        for (int64_t c = 0; c < dst->width; c++) {
            const double d = load_f64(src, r, c);
            const int eq = m.nan ? d != d : !m.never && d == m.v;
            ((uint8_t *)dst->data)[r * dst->row_stride + c * dst->col_stride] = eq ? 0 : 255;
        }
}

/* The band's pixels of the inside part, in its own dtype: the read's own
 * pixels when they hold them exactly, else read into scratch. */
static raster_status_t
band_pixels(raster_dataset_t *ds, const raster__masks_request_t *rq, int64_t k, int band,
            raster_view_t *out)
{
    const raster_dtype_t dt = ds->bands[band - 1].info.dtype;
    if (rq->pixels_inner != NULL && holds_exactly(dt, rq->pixels_inner->dtype)) {
        *out = view_channel(rq->pixels_inner, k);
        return RASTER_OK;
    }
    const raster_window_t w = rq->inner;
    void *buf = raster__scratch(RASTER_SCRATCH_MASK, raster_view_nbytes(dt, w.height, w.width, 1));
    if (buf == NULL)
        return RASTER_E_NOMEM;
    *out = raster_view_hwc(buf, dt, w.height, w.width, 1);
    const raster__request_t px = {w, *out, &band, 1, NULL, NULL, 0};
    return ds->tiff ? raster__tiff_read(ds, &px) : raster__gdal_read(ds, &px);
}

static raster_status_t
channel_masks(raster_dataset_t *ds, const raster__masks_request_t *rq, int64_t k, int band)
{
    const raster_view_t all = view_channel(&rq->dst, k);
    const channel_rule_t rule = channel_rule(ds, rq, band);
    if (rule == CH_VALID) {
        raster__fill(&all, 255.0);
        return RASTER_OK;
    }
    if (!rq->inside)                      /* the outside is 0 already */
        return RASTER_OK;
    const raster_view_t in = view_channel(&rq->inner_dst, k);
    if (rule == CH_INSIDE) {
        raster__fill(&in, 255.0);
        return RASTER_OK;
    }
    if (rule == CH_BAND) {
        const mask_src_t src = {rq->inner, rq->resampled, rq->resample_win, rq->resampling, NULL};
        return band_mask(ds, &src, band, &in);
    }
    raster_view_t px;
    RASTER_TRY(band_pixels(ds, rq, k, band, &px));
    value_mask(&px, nodata_match(rq->nodata, ds->bands[band - 1].info.dtype), &in);
    return RASTER_OK;
}

raster_status_t
raster__masks_read(raster_dataset_t *ds, const raster__masks_request_t *rq, int *no_mask_out)
{
    if (no_mask_out != NULL)   /* rasterio's nomask: every band valid, nothing outside */
        *no_mask_out = rq->rule == RASTER_MASKS_READ && !rq->boundless && every_band_has(ds, GMF_ALL_VALID);
    if (rq->rule == RASTER_MASKS_DATASET) {
        if (!rq->inside)
            return RASTER_OK;
        const mask_src_t src = {rq->inner, rq->resampled, rq->resample_win, rq->resampling, NULL};
        return mask_read(ds, &src, 0, &rq->inner_dst);
    }
    for (int k = 0; k < rq->band_count; k++)
        RASTER_TRY(channel_masks(ds, rq, k, rq->bands[k]));
    return RASTER_OK;
}
