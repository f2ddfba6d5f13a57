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
 */
#include "internal.h"

#include <gdal.h>

#include <string.h>

/* Where a mask read's pixels come from: 'win' at full resolution, or
 * (resampled) GDAL resampling 'wf' with 'alg' to the destination's size. */
typedef struct mask_src {
    raster_window_t win;
    int resampled;
    raster_window_f_t wf;
    raster_resampling_t alg;
} mask_src_t;

static raster_status_t
band_mask(raster_dataset_t *ds, const mask_src_t *src, int band, const raster_view_t *dst)
{
    /* GDAL's all-valid mask is a constant 255 (resampled too): skip the I/O. */
    if (ds->bands[band - 1].info.mask_flags == GMF_ALL_VALID) {
        raster__fill(dst, 255.0);
        return RASTER_OK;
    }
    if (src->resampled)
        return raster__gdal_read_mask_resampled(ds, src->wf, src->alg, band, dst);
    return raster__gdal_read_mask(ds, src->win, band, dst);
}

static raster_status_t
any_band_valid(raster_dataset_t *ds, const mask_src_t *src, const raster_view_t *dst)
{
    int all_valid = 1;
    for (int b = 0; b < ds->info.band_count; b++)
        all_valid &= ds->bands[b].info.mask_flags == GMF_ALL_VALID;
    if (all_valid) {
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
    const mask_src_t src = {win, 0, {0, 0, 0, 0}, RASTER_RESAMPLE_NEAREST};
    return mask_read(ds, &src, band, dst);
}

raster_status_t
raster__mask_read_resampled(raster_dataset_t *ds, raster_window_f_t win, raster_resampling_t alg, int band,
                            const raster_view_t *dst)
{
    const mask_src_t src = {{0, 0, 0, 0}, 1, win, alg};
    return mask_read(ds, &src, band, dst);
}
