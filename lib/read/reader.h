/*
 * reader.h - private to the read folder (lib/README.md): the dataset
 * struct, the resolved requests and the two readers and the mask rules
 * behind dataset.c.  The folders above see datasets only through read.h.
 * Dependencies inside the folder point down: dataset.c joins the readers
 * (gdal_reader.c, the native TIFF reader of tiff_layout.c and tiff_read.c)
 * and mask.c; the readers never call dataset.c.  Never installed.
 */
#ifndef RASTERLOADER_READER_H
#define RASTERLOADER_READER_H

#include "read.h"
#include "cache/cache.h"

struct raster__gdal;    /* gdal_reader.c: per-thread GDAL handles */

struct raster__tiff;    /* tiff.h: native layout, descriptor, segment tables */

typedef struct raster__band {
    raster_band_info_t info;
    char color_interp[16];
} raster__band_t;

struct raster_dataset {
    atomic_int refcount;          /* raster_open's + retains + reads in flight */
    atomic_int closed;            /* set by raster_close() */
    char *path;                   /* owned: the GDAL path (URLs mapped: raster__gdal_path_of) */
    raster_info_t info;           /* strings point into the owned fields below */
    char *driver, *compression, *interleave, *crs_wkt;   /* owned */
    raster__band_t *bands;        /* owned, info.band_count entries */
    int *all_bands;               /* owned: 1..band_count, the default band list */
    struct raster__gdal *gdal;    /* owned: GDAL handle pool (also for masks) */
    struct raster__tiff *tiff;    /* owned: NULL unless the native reader serves */
    struct raster__warp *warp;    /* owned: NULL unless made by raster_open_warped() */
    /* How 'warp' is freed, set by whoever made it (warped_vrt.c): a callback,
     * so that dataset.c, below api/, never calls up into it. */
    void (*warp_free)(struct raster__warp *w);
};

/* A resolved read request: the window already clipped to the raster, the
 * destination sub-view for it, and the band list resolved (never NULL). */
typedef struct raster__request {
    raster_window_t win;          /* inside the raster, width/height >= 1 */
    raster_view_t dst;            /* exactly win.height x win.width x band_count */
    const int *bands;             /* 1-based, band_count entries */
    int band_count;
    const double *scale, *offset; /* per output channel or NULL */
    int divide;                   /* scale/offset are std/mean: see raster__place_opts_t */
} raster__request_t;

/* GDAL reader (gdal_reader.c). */
RASTER_HIDDEN raster_status_t raster__gdal_open(raster_dataset_t *ds);
/* A dataset whose GDAL handles are made by 'open' (called inside the gate,
 * with GDAL's errors captured; on failure it sets the message and returns
 * the status) instead of GDALOpenEx(ds->path): warped VRTs (warped_vrt.c).
 * 'ctx' must outlive the dataset's handles. */
RASTER_HIDDEN raster_status_t raster__gdal_open_with(raster_dataset_t *ds, raster__dataset_opener_fn open,
                                                     void *ctx);
/* A new GDAL handle of 'ds' (GDALDatasetH; owned by the caller, never put on
 * the idle stack), made as the reader makes its own.  Inside the gate only. */
RASTER_HIDDEN raster_status_t raster__gdal_handle_new(raster_dataset_t *ds, void **handle_out);
RASTER_HIDDEN void raster__gdal_close(struct raster__gdal *g);
RASTER_HIDDEN raster_status_t raster__gdal_read(raster_dataset_t *ds, const raster__request_t *rq);
/* A checked raster_read_resampled_into() request. */
typedef struct raster__resample_request {
    raster_window_f_t win;
    raster_resampling_t alg;
    raster_view_t dst;
    const int *bands;
    int band_count;
    const double *scale, *offset;
    int divide;                   /* as raster__request_t */
} raster__resample_request_t;
RASTER_HIDDEN raster_status_t raster__gdal_read_resampled(raster_dataset_t *ds,
                                                          const raster__resample_request_t *rr);
/* rasterio's boundless read of a float window with a size change or
 * resampling (DatasetReaderBase.read, boundless=True): GDAL reads a VRT of
 * the dataset whose grid is the window's (rasterio.vrt._boundless_vrt_doc,
 * built here with the same numbers) over (0, 0, width, height) of the window
 * into dst's size.  'has_nodata'/'nodata': the VRT's nodata (rasterio's
 * fill_value, else the last band's clipped nodata, else band 1's own);
 * outside the raster is that value, or 0 without one. */
typedef struct raster__boundless_vrt {
    raster_window_f_t win;
    raster_resampling_t alg;
    int has_nodata;
    double nodata;
    int masks_of_blank;         /* masks: read_masks()'s rule for all-valid bands (see gdal_reader.c) */
} raster__boundless_vrt_t;
RASTER_HIDDEN raster_status_t raster__gdal_read_boundless(raster_dataset_t *ds, const raster__boundless_vrt_t *bv,
                                                          const raster__resample_request_t *rr);
/* The masks of that read, one channel per band of 'bands' into dst (0
 * invalid, 255 valid), as rasterio's read(masked=True, boundless=True)
 * computes them: every band all-valid: the same VRT with every source pixel
 * 255 (nonzero is valid, the outside is the nodata value), written 0 or
 * 255 (with masks_of_blank, read_masks()'s: a VRT of a blank 3x3 raster of
 * 255 over the dataset); otherwise the GDAL masks of the VRT's bands, GDAL's values (an alpha
 * band's, resampled masks' in-between values) as rasterio returns them. */
RASTER_HIDDEN raster_status_t raster__gdal_read_boundless_masks(raster_dataset_t *ds,
                                                                const raster__boundless_vrt_t *bv,
                                                                const int *bands, int band_count,
                                                                const raster_view_t *dst);
/* raster__gdal_crs_same() is 1 when two WKT strings name the same CRS
 * (equal strings, or OSRIsSame on both parsed), 0 otherwise; "" is only the
 * same as "". */
RASTER_HIDDEN int raster__gdal_crs_same(const char *wkt_a, const char *wkt_b);
/* band 0 = dataset mask; dst is U8 with one channel. */
RASTER_HIDDEN raster_status_t raster__gdal_read_mask(raster_dataset_t *ds, raster_window_t win,
                                                     int band, const raster_view_t *dst);
/* The same resampled: GDAL resamples band's mask over 'win' to dst's size. */
RASTER_HIDDEN raster_status_t raster__gdal_read_mask_resampled(raster_dataset_t *ds, raster_window_f_t win,
                                                               raster_resampling_t alg, int band,
                                                               const raster_view_t *dst);

/* A frame (runtime.h) for a call on one of the dataset's GDAL handles,
 * f->handle (GDALDatasetH): RASTER_OK, or RASTER_E_IO with the frame left
 * and the message set when none can be had.  End it with
 * raster__gdal_frame_leave(f, st): a handle whose call failed is closed,
 * not reused, and GDAL's caches of a remote path are dropped. */
RASTER_HIDDEN raster_status_t raster__gdal_frame_of(raster_dataset_t *ds, raster__gdal_frame_t *f);
/* Closes the dataset's idle GDAL handles and opens none (dataset.c: a local
 * file the native reader serves keeps one descriptor, not two). */
RASTER_HIDDEN void raster__gdal_close_idle(raster_dataset_t *ds);

/* Native TIFF reader (tiff/).  raster__tiff_open() runs after
 * raster__gdal_open() for every dataset: for a TIFF it corrects the metadata
 * only libtiff knows (tiled, predictor, ...), and it sets ds->tiff when the
 * native reader can serve the file; RASTER_OK with ds->tiff == NULL means
 * the GDAL reader takes it.  A TIFF that libtiff rejects but GDAL opened is
 * not an error here: GDAL serves it. */
RASTER_HIDDEN raster_status_t raster__tiff_open(raster_dataset_t *ds);
RASTER_HIDDEN void raster__tiff_close(struct raster__tiff *t);
RASTER_HIDDEN raster_status_t raster__tiff_read(raster_dataset_t *ds, const raster__request_t *rq);

/* Mask dispatch (mask.c): band 0 = the dataset mask.  The resampled form
 * resamples every band mask it uses over 'win' to dst's size, as rasterio's
 * read_masks(out_shape=...) and dataset_mask(out_shape=...) do. */
RASTER_HIDDEN raster_status_t raster__mask_read(raster_dataset_t *ds, raster_window_t win,
                                                int band, const raster_view_t *dst);
RASTER_HIDDEN raster_status_t raster__mask_read_resampled(raster_dataset_t *ds, raster_window_f_t win,
                                                          raster_resampling_t alg, int band,
                                                          const raster_view_t *dst);

/* rasterio's dataset_mask(boundless=True) of a resampled window: the rule
 * above over the band masks of the boundless VRT (raster__gdal_read_boundless_masks). */
RASTER_HIDDEN raster_status_t raster__mask_read_boundless(raster_dataset_t *ds, const raster__boundless_vrt_t *bv,
                                                          const raster_view_t *dst);

/* A checked raster_read_masks_into() / raster_read_masks_resampled_into()
 * request (dataset.c checks, mask.c applies rasterio's rules). */
typedef struct raster__masks_request {
    int rule;                       /* raster_mask_rule_t */
    const int *bands;               /* resolved, never NULL */
    int band_count;
    int boundless;
    int has_nodata;
    double nodata;
    raster_view_t dst;              /* the whole window; the outside already 0 */
    int inside;                     /* 0: nothing of the window is inside the raster */
    raster_window_t inner;          /* the part inside, and its views: */
    raster_view_t inner_dst;
    const raster_view_t *pixels_inner;  /* the read's pixels of 'inner', or NULL */
    int resampled;                  /* 1: each mask resampled over resample_win to dst's size */
    raster_window_f_t resample_win;
    raster_resampling_t resampling;
} raster__masks_request_t;
RASTER_HIDDEN raster_status_t raster__masks_read(raster_dataset_t *ds, const raster__masks_request_t *rq,
                                                 int *no_mask_out);


#endif /* RASTERLOADER_READER_H */
