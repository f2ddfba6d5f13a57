/* Placeholder until the native reader lands (issue 5): every dataset is served by GDAL. */
#include "internal.h"

raster_status_t
raster__tiff_open(raster_dataset_t *ds)
{
    ds->tiff = NULL;
    return RASTER_OK;
}

void
raster__tiff_close(struct raster__tiff *t)
{
    (void)t;
}

raster_status_t
raster__tiff_read(raster_dataset_t *ds, const raster__request_t *rq)
{
    (void)rq;
    return raster__fail(RASTER_E_UNSUPPORTED, "%s: native reader not built", ds->path);
}
