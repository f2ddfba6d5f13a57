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

static raster_status_t
band_mask(raster_dataset_t *ds, raster_window_t win, int band, const raster_view_t *dst)
{
    /* GDAL's all-valid mask is a constant 255: skip the I/O. */
    if (ds->bands[band - 1].info.mask_flags == GMF_ALL_VALID) {
        raster__fill(dst, 255.0);
        return RASTER_OK;
    }
    return raster__gdal_read_mask(ds, win, band, dst);
}

static raster_status_t
any_band_valid(raster_dataset_t *ds, raster_window_t win, const raster_view_t *dst)
{
    int all_valid = 1;
    for (int b = 0; b < ds->info.band_count; b++)
        all_valid &= ds->bands[b].info.mask_flags == GMF_ALL_VALID;
    if (all_valid) {
        raster__fill(dst, 255.0);
        return RASTER_OK;
    }
    RASTER_TRY(band_mask(ds, win, 1, dst));
    uint8_t *acc = dst->data;
    if (ds->info.band_count > 1) {
        uint8_t *m = raster__scratch(RASTER_SCRATCH_MASK, (size_t)(win.width * win.height));
        if (m == NULL)
            return RASTER_E_NOMEM;
        const raster_view_t mv = raster_view_hwc(m, RASTER_U8, win.height, win.width, 1);
        for (int b = 2; b <= ds->info.band_count; b++) {
            RASTER_TRY(band_mask(ds, win, b, &mv));
            for (int64_t r = 0; r < win.height; r++)
                for (int64_t c = 0; c < win.width; c++)
                    acc[r * dst->row_stride + c * dst->col_stride] |= m[r * win.width + c];
        }
    }
    for (int64_t r = 0; r < win.height; r++)
        for (int64_t c = 0; c < win.width; c++) {
            uint8_t *p = &acc[r * dst->row_stride + c * dst->col_stride];
            *p = *p ? 255 : 0;
        }
    return RASTER_OK;
}

raster_status_t
raster__mask_read(raster_dataset_t *ds, raster_window_t win, int band, const raster_view_t *dst)
{
    if (band > 0)
        return band_mask(ds, win, band, dst);
    if (ds->bands[0].info.mask_flags & GMF_PER_DATASET)
        return band_mask(ds, win, 1, dst);
    if (ds->info.band_count == 4 && strcmp(ds->bands[0].color_interp, "red") == 0)
        return band_mask(ds, win, 4, dst);
    return any_band_valid(ds, win, dst);
}
