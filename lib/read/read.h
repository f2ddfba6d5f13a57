/*
 * read.h - the read folder of lib/ (lib/README.md) as the folders above it
 * (api/) see it: datasets through accessors and the dataset layer's calls
 * (dataset.c), never the struct or a reader.  struct raster_dataset and the
 * readers are private to the folder (reader.h).  Never installed.
 */
#ifndef RASTERLOADER_READ_H
#define RASTERLOADER_READ_H

#include "runtime/runtime.h"

/* Read options are taken by dataset.c and peeked at by batch.c: one call,
 * raster__options_take() over raster_read_options_init()'s defaults. */
RASTER_HIDDEN raster_status_t raster__read_options_take(raster_read_options_t *dst,
                                                        const raster_read_options_t *src, const char *who);

/* Accessors.  The path is the GDAL path (URLs mapped), for messages; the
 * info's strings live as long as the dataset; band is 1-based and in range. */
RASTER_HIDDEN const char *raster__dataset_path(const raster_dataset_t *ds);
RASTER_HIDDEN const raster_info_t *raster__dataset_info(const raster_dataset_t *ds);
RASTER_HIDDEN int raster__dataset_closed(const raster_dataset_t *ds);
RASTER_HIDDEN const raster_band_info_t *raster__dataset_band(const raster_dataset_t *ds, int band);
/* GDAL's colour interpretation of the band, lower case ("alpha", "red", ...). */
RASTER_HIDDEN const char *raster__dataset_color_interp(const raster_dataset_t *ds, int band);

/* 1 when the two datasets' CRSs are the same CRS (equal WKT, or OSRIsSame
 * on both), 0 otherwise; no CRS is only the same as no CRS. */
RASTER_HIDDEN int raster__dataset_crs_same(const raster_dataset_t *a, const raster_dataset_t *b);

/* A call frame (runtime.h) on one of the dataset's GDAL handles,
 * f->handle (GDALDatasetH), for a call on it (metadata.c): RASTER_OK, or
 * RASTER_E_IO with the frame left and the message set when none can be
 * had.  End it with raster__gdal_frame_leave(f, st): a handle whose call
 * failed is closed, not reused. */
RASTER_HIDDEN raster_status_t raster__dataset_gdal_frame(raster_dataset_t *ds, raster__gdal_frame_t *f);
/* A new GDAL handle of 'ds' (owned by the caller, never put on the idle
 * stack), made as the reader makes its own.  Inside the gate only. */
RASTER_HIDDEN raster_status_t raster__dataset_gdal_handle_new(raster_dataset_t *ds, void **handle_out);

/* Datasets that are not a file (warped VRTs, warped_vrt.c).  'open' makes
 * each GDAL handle (called inside the gate, with GDAL's errors captured; on
 * failure it sets the message and returns the status); 'ctx' must outlive
 * the dataset's handles.  The dataset, named 'name' (copied), owns 'warp'
 * from the call on (also when it fails): its last release calls
 * warp_free(warp).  The GDAL reader serves it. */
struct raster__warp;
typedef raster_status_t (*raster__dataset_opener_fn)(void *ctx, void **handle_out);
RASTER_HIDDEN raster_status_t raster__dataset_open_custom(const char *name, raster__dataset_opener_fn open,
                                                          void *ctx, struct raster__warp *warp,
                                                          void (*warp_free)(struct raster__warp *w),
                                                          raster_dataset_t **ds_out);
/* The dataset's warp, NULL unless made by raster__dataset_open_custom(). */
RASTER_HIDDEN struct raster__warp *raster__dataset_warp(const raster_dataset_t *ds);

#endif /* RASTERLOADER_READ_H */
