/*
 * gdal_reader.c - the reader for everything the native TIFF path does not
 * serve, and the metadata source for every dataset.
 *
 * Layer: above gdal_env.c (fork gate, GDAL error capture, idle-handle
 * stack), beside the native TIFF reader; dataset.c and mask.c call into it
 * (lib/api/ goes through dataset.c).  It never calls the native reader or dataset.c.
 *
 * GDAL dataset handles are not safe to share between threads, so each
 * dataset keeps a stack of idle handles (gdal_env.c's): a call takes one
 * (opening a new one only when all are busy), uses it, and gives it back;
 * the one sequence for that, with the gate and GDAL's error capture around
 * it, is gdal_env.c's call frame (raster__gdal_frame_of() here).  After fork() the parent's
 * handles are forgotten (their file offsets and caches belong to the parent)
 * and the child opens its own.
 *
 * When the destination dtype is the band's own and nothing is scaled, GDAL
 * writes straight into the caller's view through GDALDatasetRasterIOEx with
 * pixel/line/band spacing: one write per output byte.  Otherwise it reads
 * the file's dtype into per-thread scratch, a band of rows at a time, and
 * place.c converts; GDAL's own conversion is not used, so both readers share
 * one set of rounding rules (see dtype.c).
 *
 * A failure's status comes from gdal_env.c (GDAL's error numbers and what
 * this file knows: the call, the path), never from GDAL's words.
 */
#include "reader.h"

#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

struct raster__gdal {
    raster__handle_stack_t handles; /* idle GDALDatasetH, closed inside the gate */
    const char *path;           /* view of ds->path */
    int have_id;                /* a local file: dev/ino of what was opened */
    uint64_t dev, ino;
    int huge_block_band;        /* 1-based band whose blocks are too large, or 0 */
    double huge_block_nbytes;
    raster__dataset_opener_fn opener;  /* NULL: GDALOpenEx(path); else makes each handle */
    void *opener_ctx;
};

static GDALDatasetH
handle_open(const char *path)
{
    return GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR, NULL, NULL, NULL);
}

/* The stack's close: inside the gate (every push and the destroy here run
 * inside it), quietly, without touching the capture record a failed call
 * has just filled. */
static void
handle_close(void *h)
{
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALClose((GDALDatasetH)h);
    CPLPopErrorHandler();
}

/* A new handle (the dataset's opener, or the path again) into *h_out; on
 * failure NULL and the status with its message.  GDAL's errors are captured
 * by the caller. */
static raster_status_t
handle_new(struct raster__gdal *g, GDALDatasetH *h_out)
{
    void *vh = NULL;
    *h_out = NULL;
    if (g->opener != NULL) {
        const raster_status_t st = g->opener(g->opener_ctx, &vh);
        *h_out = st == RASTER_OK ? (GDALDatasetH)vh : NULL;
        return st;
    }
    GDALDatasetH h = handle_open(g->path);
    if (h == NULL)
        return raster__fail(RASTER_E_IO, "%s: GDAL could not re-open the file: %s", g->path,
                            raster__gdal_capture_detail());
    /* A new handle opens the path again (another thread's read, a forked
     * child): it must be the file opened at open, not one renamed over it,
     * or the read would return another file's pixels. */
    struct stat sb;
    if (g->have_id &&
        (stat(g->path, &sb) != 0 || (uint64_t)sb.st_dev != g->dev || (uint64_t)sb.st_ino != g->ino)) {
        GDALClose(h);
        return raster__fail(RASTER_E_IO, "%s: the file was replaced since it was opened", g->path);
    }
    *h_out = h;
    return RASTER_OK;
}

/* handle_new() as the frame's opener (raster__handle_open_fn). */
static raster_status_t
handle_new_fn(void *g, void **h_out)
{
    return handle_new(g, (GDALDatasetH *)h_out);
}

raster_status_t
raster__gdal_handle_new(raster_dataset_t *ds, void **handle_out)
{
    return handle_new_fn(ds->gdal, handle_out);
}

/* Inside the gate. */
static void
handle_release(struct raster__gdal *g, GDALDatasetH h)
{
    raster__handle_stack_push(&g->handles, h);
}

void
raster__gdal_close(struct raster__gdal *g)
{
    if (g == NULL)
        return;
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    raster__handle_stack_destroy(&g->handles);
    raster__gdal_frame_leave(&f, RASTER_OK);
    free(g);
}

/* ------------------------------ metadata ------------------------------- */

/* The band's dtype by the one table (gdal_env.c); 0 when there is none. */
static int
dtype_from_gdal(GDALRasterBandH b, raster_dtype_t *out)
{
    return raster__dtype_of_gdal(GDALGetRasterDataType(b),
                                 GDALGetMetadataItem(b, "PIXELTYPE", "IMAGE_STRUCTURE"), out);
}

static char *
dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static raster_status_t
band_info_fill(raster_dataset_t *ds, GDALDatasetH h, int i)
{
    GDALRasterBandH b = GDALGetRasterBand(h, i + 1);
    raster__band_t *rb = &ds->bands[i];
    RASTER_CHECK(dtype_from_gdal(b, &rb->info.dtype), RASTER_E_UNSUPPORTED,
                 "%s: band %d has data type %s, which rasterloader does not read", ds->path, i + 1,
                 GDALGetDataTypeName(GDALGetRasterDataType(b)));
    int bw = 0, bh = 0;
    GDALGetBlockSize(b, &bw, &bh);
    rb->info.block_width = bw;
    rb->info.block_height = bh;
    rb->info.nodata = GDALGetRasterNoDataValue(b, &rb->info.has_nodata);
    rb->info.mask_flags = GDALGetMaskFlags(b);
    const char *ci = GDALGetColorInterpretationName(GDALGetRasterColorInterpretation(b));
    size_t n = 0;
    for (; ci && ci[n] && n + 1 < sizeof rb->color_interp; n++)
        rb->color_interp[n] = (char)tolower((unsigned char)ci[n]);
    rb->color_interp[n] = '\0';
    rb->info.color_interp = rb->color_interp;
    return RASTER_OK;
}

static raster_status_t
info_fill(raster_dataset_t *ds, GDALDatasetH h)
{
    raster_info_t *in = &ds->info;
    in->width = GDALGetRasterXSize(h);
    in->height = GDALGetRasterYSize(h);
    in->band_count = GDALGetRasterCount(h);
    RASTER_CHECK(in->band_count >= 1, RASTER_E_FORMAT, "%s: GDAL opened it but it has no bands",
                 ds->path);
    ds->bands = calloc((size_t)in->band_count, sizeof *ds->bands);
    ds->all_bands = malloc((size_t)in->band_count * sizeof *ds->all_bands);
    RASTER_CHECK(ds->bands && ds->all_bands, RASTER_E_NOMEM, "%s: out of memory", ds->path);
    for (int i = 0; i < in->band_count; i++) {
        ds->all_bands[i] = i + 1;
        RASTER_TRY(band_info_fill(ds, h, i));
    }
    const raster_band_info_t *b1 = &ds->bands[0].info;
    in->dtype = b1->dtype;
    in->block_width = b1->block_width;
    in->block_height = b1->block_height;
    in->has_nodata = b1->has_nodata;
    in->nodata = b1->nodata;
    in->overview_count = GDALGetOverviewCount(GDALGetRasterBand(h, 1));
    in->has_geotransform = GDALGetGeoTransform(h, in->geotransform) == CE_None;
    if (!in->has_geotransform)
        memcpy(in->geotransform, (double[6]){0, 1, 0, 0, 0, 1}, sizeof in->geotransform);
    const char *comp = GDALGetMetadataItem(h, "COMPRESSION", "IMAGE_STRUCTURE");
    const char *pred = GDALGetMetadataItem(h, "PREDICTOR", "IMAGE_STRUCTURE");
    in->predictor = pred ? atoi(pred) : 1;
    ds->driver = dup_or_empty(GDALGetDriverShortName(GDALGetDatasetDriver(h)));
    ds->compression = dup_or_empty(comp ? comp : "NONE");
    ds->interleave = dup_or_empty(GDALGetMetadataItem(h, "INTERLEAVE", "IMAGE_STRUCTURE"));
    ds->crs_wkt = dup_or_empty(GDALGetProjectionRef(h));
    RASTER_CHECK(ds->driver && ds->compression && ds->interleave && ds->crs_wkt, RASTER_E_NOMEM,
                 "%s: out of memory", ds->path);
    in->driver = ds->driver;
    in->compression = ds->compression;
    in->interleave = ds->interleave;
    in->crs_wkt = ds->crs_wkt;
    /* GDAL reports no tiling flag; the TIFF layout step corrects this from
     * the file itself. */
    in->tiled = in->block_height > 1 && in->block_width < in->width;
    in->reader = RASTER_READER_GDAL;
    return RASTER_OK;
}

/* GDAL reads whole blocks into its cache, so a file that declares blocks of
 * many gigabytes (a one-row strip of a 2^31-pixel-wide image) would cost
 * that much memory per read, whatever the window.  Blocks larger than the
 * native reader's segment limit are refused (found at open, reported at
 * every read): memory per read stays bounded. */
#define GDAL_MAX_BLOCK_NBYTES ((double)((uint64_t)1 << 31))

static void
blocks_measure(raster_dataset_t *ds)
{
    struct raster__gdal *g = ds->gdal;
    const int pixel = strcmp(ds->info.interleave, "PIXEL") == 0;
    for (int b = 0; b < ds->info.band_count; b++) {
        const raster_band_info_t *bi = &ds->bands[b].info;
        const double n = (double)bi->block_width * (double)bi->block_height *
                         (double)raster_dtype_size(bi->dtype) * (pixel ? ds->info.band_count : 1);
        if (n > GDAL_MAX_BLOCK_NBYTES) {
            g->huge_block_band = b + 1;
            g->huge_block_nbytes = n;
            return;
        }
    }
}

/* After a failed call on a remote path, GDAL's /vsicurl/ caches of it
 * (file properties, downloaded regions) are dropped (raster__gdal_forget(),
 * which a handle's frame calls itself), so the next call asks the server
 * again.  GDAL 3.6 keeps what a failure left there: a body cut short is
 * cached as a short region of the file (every later read of a tile under
 * its 16 KiB chunk then fails without a request: test_http_errors.py's
 * small-tile test), and a HEAD that failed is cached as "the file does not
 * exist".  A transient fault must not outlive its request. */

/* Why GDALOpenEx gave NULL: the status from gdal_env.c, the message
 * worded for it. */
static raster_status_t
open_failure_reported(const raster_dataset_t *ds)
{
    const raster_status_t st = raster__gdal_capture_status(ds->path, RASTER__GDAL_CALL_OPEN, RASTER_E_FORMAT);
    const char *msg = raster__gdal_capture_detail();
    switch (st) {
    case RASTER_E_IO:
        if (raster__path_is_remote(ds->path))
            return raster__fail(st, "%s: cannot read it over the network: %s", ds->path, msg);
        VSIStatBufL sb;
        if (VSIStatL(ds->path, &sb) != 0)
            return raster__fail_cause(st, RASTER_CAUSE_NOT_FOUND, "%s: no such file: %s", ds->path, msg);
        return raster__fail(st, "%s: GDAL could not open it: %s", ds->path, msg);
    case RASTER_E_FORMAT:
        return raster__fail(st, "%s: not a raster GDAL can open: %s", ds->path, msg);
    case RASTER_E_UNSUPPORTED:
        return raster__fail(st, "%s: GDAL cannot decode it: %s", ds->path, msg);
    default:
        return raster__fail(st, "%s: GDAL could not open it: %s", ds->path, msg);
    }
}

/* The status and message of a failed open (asked before GDAL's caches of
 * the path are dropped: its stat must not be a new request). */
static raster_status_t
open_failure(const raster_dataset_t *ds)
{
    const raster_status_t st = open_failure_reported(ds);
    raster__gdal_forget(ds->path);
    return st;
}

static raster_status_t
gdal_open_gated(raster_dataset_t *ds, raster__dataset_opener_fn opener, void *opener_ctx)
{
    struct raster__gdal *g = calloc(1, sizeof *g);
    RASTER_CHECK(g != NULL, RASTER_E_NOMEM, "%s: out of memory", ds->path);
    raster__handle_stack_init(&g->handles, handle_close);
    g->path = ds->path;
    g->opener = opener;
    g->opener_ctx = opener_ctx;
    ds->gdal = g;

    GDALDatasetH h = NULL;
    raster_status_t st = RASTER_OK;
    if (opener != NULL) {
        void *vh = NULL;
        st = opener(opener_ctx, &vh);
        h = vh;
    } else if ((h = handle_open(ds->path)) == NULL) {
        st = open_failure(ds);
    }
    if (st != RASTER_OK)
        return st;
    /* Remember which file a local path named, for handles opened later. */
    struct stat sb;
    if (opener == NULL && stat(ds->path, &sb) == 0 && S_ISREG(sb.st_mode)) {
        g->have_id = 1;
        g->dev = (uint64_t)sb.st_dev;
        g->ino = (uint64_t)sb.st_ino;
    }
    /* Metadata calls parse lazily (GeoKeys, masks, overviews) and report
     * damage through CPLError: keep them off stderr too. */
    st = info_fill(ds, h);
    if (st == RASTER_OK)
        blocks_measure(ds);
    handle_release(g, h);
    return st;
}

raster_status_t
raster__gdal_open(raster_dataset_t *ds)
{
    return raster__gdal_open_with(ds, NULL, NULL);
}

raster_status_t
raster__gdal_open_with(raster_dataset_t *ds, raster__dataset_opener_fn open, void *ctx)
{
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    return raster__gdal_frame_leave(&f, gdal_open_gated(ds, open, ctx));
}

/* ------------------------------ reads ---------------------------------- */

/* Read 'nbands' bands of 'win' with one RasterIOEx into a view of matching
 * dtype (bit-identical to the file: no GDAL conversion happens). */
static raster_status_t
rasterio_into(raster_dataset_t *ds, GDALDatasetH h, raster_window_t win, const int *bands,
              int nbands, const raster_view_t *v)
{
    GDALRasterIOExtraArg extra;
    INIT_RASTERIO_EXTRA_ARG(extra);
    raster__gdal_capture_begin_read(ds->path);
    const CPLErr err = GDALDatasetRasterIOEx(h, GF_Read, (int)win.col_off, (int)win.row_off,
                                             (int)win.width, (int)win.height, v->data,
                                             (int)win.width, (int)win.height,
                                             (GDALDataType)raster__gdal_carrier(v->dtype),
                                             nbands, (int *)bands, v->col_stride, v->row_stride,
                                             v->chan_stride, &extra);
    raster_status_t st = RASTER_OK;
    if (err != CE_None)
        st = raster__fail(raster__gdal_capture_status(ds->path, RASTER__GDAL_CALL_READ, RASTER_E_CORRUPT),
                          "%s: GDAL failed to read window (col %lld, row %lld, %lldx%lld): %s",
                          ds->path, (long long)win.col_off, (long long)win.row_off,
                          (long long)win.width, (long long)win.height, raster__gdal_capture_detail());
    raster__gdal_capture_end();
    return st;
}

/* Bands of one dtype, converted or scaled: stage a band of rows in the
 * file's dtype in scratch (sized to stay cache-friendly), then place. */
static raster_status_t
read_staged(raster_dataset_t *ds, GDALDatasetH h, const raster__request_t *rq, const int *bands,
            const int *dst_chans, int nbands, raster_dtype_t src_dt)
{
    const size_t row_nbytes = raster_view_nbytes(src_dt, 1, rq->win.width, nbands);
    int64_t chunk_rows = (int64_t)((1u << 20) / (row_nbytes ? row_nbytes : 1));
    if (chunk_rows < 1)
        chunk_rows = 1;
    if (chunk_rows > rq->win.height)
        chunk_rows = rq->win.height;
    void *stage = raster__scratch(RASTER_SCRATCH_GDAL, row_nbytes * (size_t)chunk_rows);
    if (stage == NULL)
        return RASTER_E_NOMEM;
    double scale[1], offset[1];
    for (int64_t r = 0; r < rq->win.height; r += chunk_rows) {
        const int64_t n = rq->win.height - r < chunk_rows ? rq->win.height - r : chunk_rows;
        raster_view_t sv = raster_view_hwc(stage, src_dt, n, rq->win.width, nbands);
        const raster_window_t w = {rq->win.col_off, rq->win.row_off + r, rq->win.width, n};
        RASTER_TRY(rasterio_into(ds, h, w, bands, nbands, &sv));
        raster_view_t dv = raster__view_sub(&rq->dst, r, 0, n, rq->win.width);
        if (dst_chans == NULL) {
            raster__place_opts_t po = {NULL, rq->scale, rq->offset, rq->divide};
            raster__place(&sv, &dv, &po);
        } else {
            /* One band into one destination channel. */
            const int k = dst_chans[0];
            dv.data = (uint8_t *)dv.data + k * dv.chan_stride;
            dv.channels = 1;
            scale[0] = rq->scale ? rq->scale[k] : 1.0;
            offset[0] = rq->offset ? rq->offset[k] : 0.0;
            raster__place_opts_t po = {NULL, rq->scale ? scale : NULL, rq->offset ? offset : NULL,
                                        rq->divide};
            raster__place(&sv, &dv, &po);
        }
    }
    return RASTER_OK;
}

static raster_status_t
read_with_handle(raster_dataset_t *ds, GDALDatasetH h, const raster__request_t *rq)
{
    const raster_dtype_t dt0 = ds->bands[rq->bands[0] - 1].info.dtype;
    int same = 1;
    for (int i = 1; i < rq->band_count; i++)
        same &= ds->bands[rq->bands[i] - 1].info.dtype == dt0;
    const int scaled = rq->scale != NULL || rq->offset != NULL;
    if (same && !scaled && rq->dst.dtype == dt0)
        return rasterio_into(ds, h, rq->win, rq->bands, rq->band_count, &rq->dst);
    if (same)
        return read_staged(ds, h, rq, rq->bands, NULL, rq->band_count, dt0);
    /* Bands of different dtypes (VRTs can do this): one band at a time. */
    for (int k = 0; k < rq->band_count; k++)
        RASTER_TRY(read_staged(ds, h, rq, &rq->bands[k], &k, 1,
                               ds->bands[rq->bands[k] - 1].info.dtype));
    return RASTER_OK;
}

static raster_status_t
blocks_check(const raster_dataset_t *ds)
{
    const struct raster__gdal *g = ds->gdal;
    if (g->huge_block_band == 0)
        return RASTER_OK;
    const raster_band_info_t *bi = &ds->bands[g->huge_block_band - 1].info;
    return raster__fail(RASTER_E_UNSUPPORTED,
                        "%s: band %d has blocks of %lldx%lld pixels (%.1f GiB each), more than the "
                        "2 GiB one read may use",
                        ds->path, g->huge_block_band, (long long)bi->block_width,
                        (long long)bi->block_height, g->huge_block_nbytes / (1 << 30));
}

/* ------------------------------ one call on a handle -------------------- */

/* A call on one of the dataset's GDAL handles (f->handle) in one frame of
 * gdal_env.c: its idle stack, a new handle made as handle_new() makes them,
 * and GDAL's /vsicurl/ caches of a remote path dropped after a failed call.
 * A handle whose call failed is closed instead of going back to the idle
 * stack: libtiff and GDAL keep state from a failed decode (a raw tile
 * buffer, read-ahead bytes of a file that has changed since), and the next
 * call must start from the file as it is.  RASTER_E_IO when no handle can
 * be had (the message names the file and GDAL's cause). */
raster_status_t
raster__gdal_frame_of(raster_dataset_t *ds, raster__gdal_frame_t *f)
{
    const raster_status_t st = raster__gdal_frame_take(f, &ds->gdal->handles, handle_new_fn, ds->gdal, ds->path);
    return st == RASTER_OK ? RASTER_OK : RASTER_E_IO;
}

/* Closes the dataset's idle handles, opening none: a later call that needs
 * GDAL opens one again, as a second thread would. */
void
raster__gdal_close_idle(raster_dataset_t *ds)
{
    if (ds->gdal == NULL)
        return;
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    for (void *h; (h = raster__handle_stack_pop(&ds->gdal->handles)) != NULL;)
        handle_close(h);
    raster__gdal_frame_leave(&f, RASTER_OK);
}

/* A read's frame: the block check, then one of the dataset's handles. */
static raster_status_t
read_frame(raster_dataset_t *ds, raster__gdal_frame_t *f)
{
    RASTER_TRY(blocks_check(ds));
    return raster__gdal_frame_of(ds, f);
}

raster_status_t
raster__gdal_read(raster_dataset_t *ds, const raster__request_t *rq)
{
    raster__gdal_frame_t f;
    RASTER_TRY(read_frame(ds, &f));
    return raster__gdal_frame_leave(&f, read_with_handle(ds, f.handle, rq));
}

/* ------------------------------ resampled ------------------------------ */

/* GDAL's integer length of a float window: its truncation, but at least 1.
 * GDAL 3.6 skips a read whose integer window is empty (leaving the buffer as
 * it was) where 3.10, which rasterio bundles, reads the sliver (0 < length
 * < 1) from the float window; at least one pixel gives 3.10's pixels. */
static int
int_len(double len)
{
    return len < 1 ? 1 : (int)len;
}

/* The extra arguments rasterio's io_multi_band/io_multi_mask pass: the
 * float window and the resampling; GDAL's integer window is its truncation. */
static void
resampling_extra(GDALRasterIOExtraArg *extra, raster_window_f_t w, raster_resampling_t alg)
{
    extra->eResampleAlg = (GDALRIOResampleAlg)alg;
    extra->bFloatingPointWindowValidity = TRUE;
    extra->dfXOff = w.col_off;
    extra->dfYOff = w.row_off;
    extra->dfXSize = w.width;
    extra->dfYSize = w.height;
}

/* rasterio's io_multi_band: the output size as the buffer's. */
static raster_status_t
resampled_into(raster_dataset_t *ds, GDALDatasetH h, const raster__resample_request_t *rr,
               const raster_view_t *v)
{
    const raster_window_f_t w = rr->win;
    GDALRasterIOExtraArg extra;
    INIT_RASTERIO_EXTRA_ARG(extra);
    resampling_extra(&extra, w, rr->alg);
    raster__gdal_capture_begin_read(ds->path);
    const CPLErr err = GDALDatasetRasterIOEx(h, GF_Read, (int)w.col_off, (int)w.row_off, int_len(w.width),
                                             int_len(w.height), v->data, (int)v->width, (int)v->height,
                                             (GDALDataType)raster__gdal_carrier(v->dtype), rr->band_count, (int *)rr->bands,
                                             v->col_stride, v->row_stride, v->chan_stride, &extra);
    raster_status_t st = RASTER_OK;
    if (err != CE_None)
        st = raster__fail(raster__gdal_capture_status(ds->path, RASTER__GDAL_CALL_READ, RASTER_E_CORRUPT),
                          "%s: GDAL failed a resampled read of window (col %g, row %g, %gx%g) into "
                          "%lldx%lld: %s",
                          ds->path, w.col_off, w.row_off, w.width, w.height, (long long)v->height,
                          (long long)v->width, raster__gdal_capture_detail());
    raster__gdal_capture_end();
    return st;
}

/* GDAL before 3.7 has no Int8: an int8 band is a Byte band (SIGNEDBYTE) and
 * GDAL resamples its bytes as unsigned values.  Nearest only picks pixels,
 * so what it writes into a Byte buffer (the carrier, gdal_env.c's table) are
 * the int8 values; every other method mixes 0..255 where the pixels are
 * -128..127, so those are refused rather than read wrong.  Returns the
 * dtype to resample in: RASTER_I8 for int8 bands carried as bytes, else
 * RASTER_F64 (GDAL's own arithmetic, our conversion after). */
static raster_status_t
resample_stage_dtype(const raster_dataset_t *ds, const raster__resample_request_t *rr, raster_dtype_t *out)
{
    *out = RASTER_F64;
    if (raster__gdal_type(RASTER_I8) != GDT_Unknown)
        return RASTER_OK;
    int n_i8 = 0;
    for (int i = 0; i < rr->band_count; i++)
        n_i8 += ds->bands[rr->bands[i] - 1].info.dtype == RASTER_I8;
    if (n_i8 == 0)
        return RASTER_OK;
    RASTER_CHECK(rr->alg == RASTER_RESAMPLE_NEAREST && n_i8 == rr->band_count, RASTER_E_UNSUPPORTED,
                 "%s: GDAL %s resamples int8 bands as unsigned bytes (it has no Int8 before 3.7): "
                 "only nearest resampling of int8 bands alone reads them right",
                 ds->path, GDALVersionInfo("RELEASE_NAME"));
    *out = RASTER_I8;
    return RASTER_OK;
}

static raster_status_t
resampled_with_handle(raster_dataset_t *ds, GDALDatasetH h, const raster__resample_request_t *rr)
{
    const raster_view_t *d = &rr->dst;
    raster_dtype_t stage_dt;
    RASTER_TRY(resample_stage_dtype(ds, rr, &stage_dt));
    /* GDAL writes the destination's dtype itself when it has it (a GDAL type
     * of the same values: not float16, nor int8 before GDAL 3.7), as for
     * rasterio's out_dtype; otherwise, or with scale/offset, resample into
     * the stage dtype and convert by our rules. */
    const int unscaled = rr->scale == NULL && rr->offset == NULL;
    if (unscaled && (stage_dt == RASTER_I8 ? d->dtype == RASTER_I8 : raster__gdal_type(d->dtype) != GDT_Unknown))
        return resampled_into(ds, h, rr, d);
    const size_t n = raster_view_nbytes(stage_dt, d->height, d->width, d->channels);
    void *stage = malloc(n ? n : 1);
    RASTER_CHECK(stage != NULL, RASTER_E_NOMEM, "%s: out of memory for a %zu-byte resampling stage",
                 ds->path, n);
    raster_view_t sv = raster_view_hwc(stage, stage_dt, d->height, d->width, d->channels);
    const raster_status_t st = resampled_into(ds, h, rr, &sv);
    if (st == RASTER_OK) {
        const raster__place_opts_t po = {NULL, rr->scale, rr->offset, rr->divide};
        raster__place(&sv, d, &po);
    }
    free(stage);
    return st;
}

raster_status_t
raster__gdal_read_resampled(raster_dataset_t *ds, const raster__resample_request_t *rr)
{
    raster__gdal_frame_t f;
    RASTER_TRY(read_frame(ds, &f));
    return raster__gdal_frame_leave(&f, resampled_with_handle(ds, f.handle, rr));
}

/* A mask read: one band's GDAL mask for window 'win' (GDAL's integer
 * window is its truncation) into dst's height x width; 'resampled': with
 * the float window and 'alg' as rasterio's io_multi_mask passes them. */
typedef struct mask_request {
    raster_window_f_t win;
    int resampled;
    raster_resampling_t alg;
    int band;
    const raster_view_t *dst;
} mask_request_t;

/* GDALRasterIOEx of a mask band into dst.  GDAL 3.10's nodata mask band
 * (GDALNoDataMaskBand::IRasterIO) fills only the first row of a Byte buffer
 * whose rows are not packed (nLineSpace > nBufXSize, or a pixel space other
 * than 1): measured on 3.10.3, right on 3.6.  The Python package runs on
 * whichever GDAL rasterio loaded, so such a destination (a boundless read's
 * inside part, an HWC view) is read packed into a buffer of its own first. */
static CPLErr
mask_rasterio(GDALRasterBandH mb, const raster_window_f_t *w, const raster_view_t *dst,
              GDALRasterIOExtraArg *extra)
{
    const int packed = dst->col_stride == 1 && dst->row_stride == dst->width;
    unsigned char *buf = packed ? dst->data : malloc((size_t)dst->width * (size_t)dst->height);
    if (buf == NULL) {
        CPLError(CE_Failure, CPLE_OutOfMemory, "out of memory for a %lldx%lld mask",
                 (long long)dst->width, (long long)dst->height);
        return CE_Failure;
    }
    const CPLErr err = GDALRasterIOEx(mb, GF_Read, (int)w->col_off, (int)w->row_off, int_len(w->width),
                                      int_len(w->height), buf, (int)dst->width, (int)dst->height, GDT_Byte,
                                      1, (GSpacing)dst->width, extra);
    if (!packed) {
        for (int64_t r = 0; err == CE_None && r < dst->height; r++)
            for (int64_t c = 0; c < dst->width; c++)
                ((unsigned char *)dst->data)[r * dst->row_stride + c * dst->col_stride] = buf[r * dst->width + c];
        free(buf);
    }
    return err;
}

static raster_status_t
mask_with_handle(raster_dataset_t *ds, GDALDatasetH h, const mask_request_t *mr)
{
    const raster_window_f_t w = mr->win;
    const raster_view_t *dst = mr->dst;
    raster__gdal_capture_begin_read(ds->path);
    GDALRasterBandH mb = GDALGetMaskBand(GDALGetRasterBand(h, mr->band));
    GDALRasterIOExtraArg extra;
    INIT_RASTERIO_EXTRA_ARG(extra);
    if (mr->resampled)
        resampling_extra(&extra, w, mr->alg);
    const CPLErr err = mb == NULL ? CE_Failure : mask_rasterio(mb, &w, dst, &extra);
    raster_status_t st = RASTER_OK;
    if (err != CE_None)
        st = raster__fail(raster__gdal_capture_status(ds->path, RASTER__GDAL_CALL_READ, RASTER_E_CORRUPT),
                          "%s: GDAL failed to read the mask of band %d, window (col %.10g, row %.10g, "
                          "%.10gx%.10g): %s",
                          ds->path, mr->band, w.col_off, w.row_off, w.width, w.height, raster__gdal_capture_detail());
    raster__gdal_capture_end();
    return st;
}

static raster_status_t
mask_read(raster_dataset_t *ds, const mask_request_t *mr)
{
    raster__gdal_frame_t f;
    RASTER_TRY(read_frame(ds, &f));
    return raster__gdal_frame_leave(&f, mask_with_handle(ds, f.handle, mr));
}

raster_status_t
raster__gdal_read_mask(raster_dataset_t *ds, raster_window_t win, int band, const raster_view_t *dst)
{
    const mask_request_t mr = {{(double)win.col_off, (double)win.row_off, (double)win.width,
                                (double)win.height},
                               0, RASTER_RESAMPLE_NEAREST, band, dst};
    return mask_read(ds, &mr);
}

raster_status_t
raster__gdal_read_mask_resampled(raster_dataset_t *ds, raster_window_f_t win, raster_resampling_t alg,
                                 int band, const raster_view_t *dst)
{
    const mask_request_t mr = {win, 1, alg, band, dst};
    return mask_read(ds, &mr);
}

/* ------------------------------ boundless resampled ------------------- */

/* rasterio writes numbers with Python's str(); GDAL parses them back with
 * strtod, so any round-trip form gives the same doubles ("nan", "inf" as
 * Python spells them). */
static void
vrt_number(FILE *f, double v)
{
    if (v != v)
        fputs("nan", f);
    else if (isinf(v))
        fputs(v > 0 ? "inf" : "-inf", f);
    else
        fprintf(f, "%.17g", v);
}

static void
vrt_text(FILE *f, const char *s)
{
    char *e = CPLEscapeString(s, -1, CPLES_XML);
    fputs(e, f);
    CPLFree(e);
}

/* rasterio's ColorInterp name, capitalised (ci.name.capitalize()). */
static const char *
vrt_color_name(GDALColorInterp ci)
{
    switch (ci) {
    case GCI_YCbCr_YBand: return "Y";
    case GCI_YCbCr_CbBand: return "Cb";
    case GCI_YCbCr_CrBand: return "Cr";
    default: return GDALGetColorInterpretationName(ci);
    }
}

/* The VRT's grid: rasterio's window_transform(window) (rasterio.windows.
 * transform: affine's products and sums in its order) and the size
 * max(dataset, window) + 1, truncated as GDAL reads rasterXSize. */
typedef struct vrt_grid {
    double gt[6];                   /* GDAL order: c, a, b, f, d, e */
    long long width, height;
} vrt_grid_t;

/* The dataset's geotransform as rasterio has it: GDAL's, else the identity. */
static void
geotransform_of(GDALDatasetH h, double gt[6])
{
    if (GDALGetGeoTransform(h, gt) != CE_None) {
        const double identity[6] = {0, 1, 0, 0, 0, 1};
        memcpy(gt, identity, sizeof identity);
    }
}

static vrt_grid_t
vrt_grid(const raster_dataset_t *ds, const double *src_gt, raster_window_f_t w)
{
    const double c = src_gt[0], a = src_gt[1], b = src_gt[2], f = src_gt[3], d = src_gt[4], e = src_gt[5];
    const double col = w.col_off, row = w.row_off;
    const double x = col * a + row * b + c, y = col * d + row * e + f;
    const double tx = x - c, ty = y - f;
    vrt_grid_t g = {{1 * c + 0 * f + tx, 1 * a + 0 * d, 1 * b + 0 * e, 0 * c + 1 * f + ty, 0 * a + 1 * d,
                     0 * b + 1 * e},
                    0, 0};
    const double W = (double)ds->info.width, H = (double)ds->info.height;
    g.width = (long long)((W > w.width ? W : w.width) + 1);
    g.height = (long long)((H > w.height ? H : w.height) + 1);
    return g;
}

static void
vrt_source_head(FILE *f, const char *kind, const char *resampling, GDALDatasetH src, const char *band,
                const vrt_grid_t *g, const char *dtype, int bw, int bh)
{
    fprintf(f, "<%s", kind);
    if (resampling != NULL)
        fprintf(f, " resampling=\"%s\"", resampling);
    fputs("><SourceFilename relativeToVRT=\"0\" shared=\"0\">", f);
    vrt_text(f, GDALGetDescription(src));
    fprintf(f, "</SourceFilename><SourceBand>%s</SourceBand>"
               "<SourceProperties RasterXSize=\"%lld\" RasterYSize=\"%lld\" dataType=\"%s\" "
               "BlockYSize=\"%d\" BlockXSize=\"%d\"/>"
               "<SrcRect xOff=\"0\" yOff=\"0\" xSize=\"%d\" ySize=\"%d\"/>",
            band, g->width, g->height, dtype, bh, bw, GDALGetRasterXSize(src), GDALGetRasterYSize(src));
}

static void
vrt_rect(FILE *f, double x, double y, double w, double h)
{
    fputs("<DstRect xOff=\"", f);
    vrt_number(f, x);
    fputs("\" yOff=\"", f);
    vrt_number(f, y);
    fputs("\" xSize=\"", f);
    vrt_number(f, w);
    fputs("\" ySize=\"", f);
    vrt_number(f, h);
    fputs("\"/>", f);
}

static const char *
vrt_resampling_name(raster_resampling_t alg)
{
    static const char *const names[] = {"nearest", "bilinear", "cubic", "cubicspline",
                                        "lanczos", "average", "mode", "gauss"};
    return alg == RASTER_RESAMPLE_RMS ? "rms" : names[alg];
}

/* rasterio.vrt._boundless_vrt_doc(src, nodata, background=nodata, width,
 * height, transform, masked, resampling) on the grid 'g', written from the
 * source handle's own properties; NULL when out of memory.  'masked': every
 * source pixel 255 (ScaleRatio 0, ScaleOffset 255). */
static char *
boundless_vrt_xml(GDALDatasetH src, const vrt_grid_t *g, const raster__boundless_vrt_t *bv, int masked)
{
    double sgt[6];
    geotransform_of(src, sgt);
    char *xml = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&xml, &len);
    if (f == NULL)
        return NULL;
    fprintf(f, "<VRTDataset rasterYSize=\"%lld\" rasterXSize=\"%lld\"><SRS>", g->height, g->width);
    vrt_text(f, GDALGetProjectionRef(src));
    fputs("</SRS><GeoTransform>", f);
    for (int i = 0; i < 6; i++) {
        if (i)
            fputc(',', f);
        vrt_number(f, g->gt[i]);
    }
    fputs("</GeoTransform>", f);
    /* The source in the VRT's pixels: rasterio's DstRect. */
    const double W = GDALGetRasterXSize(src), H = GDALGetRasterYSize(src);
    const double dx = (sgt[0] - g->gt[0]) / g->gt[1], dy = (sgt[3] - g->gt[3]) / g->gt[5];
    int all_per_dataset = 1, bw = 0, bh = 0;
    for (int i = 1; i <= GDALGetRasterCount(src); i++) {
        GDALRasterBandH b = GDALGetRasterBand(src, i);
        const char *dtype = GDALGetDataTypeName(GDALGetRasterDataType(b));
        GDALGetBlockSize(b, &bw, &bh);
        all_per_dataset &= (GDALGetMaskFlags(b) & GMF_PER_DATASET) != 0;
        fprintf(f, "<VRTRasterBand dataType=\"%s\" band=\"%d\">", dtype, i);
        if (bv->has_nodata) {
            fputs("<NoDataValue>", f);
            vrt_number(f, bv->nodata);
            fputs("</NoDataValue>", f);
        }
        fprintf(f, "<ColorInterp>%s</ColorInterp>", vrt_color_name(GDALGetRasterColorInterpretation(b)));
        char band[16];
        snprintf(band, sizeof band, "%d", i);
        vrt_source_head(f, "ComplexSource", vrt_resampling_name(bv->alg), src, band, g, dtype, bw, bh);
        vrt_rect(f, dx, dy, W * sgt[1] / g->gt[1], H * sgt[5] / g->gt[5]);
        if (bv->has_nodata) {
            fputs("<NODATA>", f);
            vrt_number(f, bv->nodata);
            fputs("</NODATA>", f);
        }
        if (masked)
            fputs("<ScaleRatio>0</ScaleRatio><ScaleOffset>255</ScaleOffset>", f);
        fputs("</ComplexSource></VRTRasterBand>", f);
    }
    /* rasterio's per-dataset mask: unscaled, with the last band's block size. */
    if (all_per_dataset) {
        fputs("<MaskBand><VRTRasterBand dataType=\"Byte\">", f);
        vrt_source_head(f, "SimpleSource", NULL, src, "mask,1", g, "Byte", bw, bh);
        vrt_rect(f, dx, dy, W, H);
        fputs("</SimpleSource></VRTRasterBand></MaskBand>", f);
    }
    fputs("</VRTDataset>", f);
    if (fclose(f) != 0) {
        free(xml);
        return NULL;
    }
    return xml;
}

/* The boundless VRT of 'src' on the grid of the window over 'grid_of' (the
 * dataset; 'src' is the dataset too, or rasterio's blank stand-in of it)
 * opened (driver VRT only, as rasterio opens it), inside the caller's frame;
 * *vrt_out NULL and the status set on failure. */
static raster_status_t
boundless_vrt_open(raster_dataset_t *ds, GDALDatasetH grid_of, GDALDatasetH src, const raster__boundless_vrt_t *bv,
                   int masked, GDALDatasetH *vrt_out)
{
    *vrt_out = NULL;
    RASTER_CHECK(ds->gdal->opener == NULL, RASTER_E_UNSUPPORTED,
                 "%s: a boundless resampled read needs a dataset opened from a path (rasterio has no "
                 "boundless reads of a WarpedVRT either)", ds->path);
    double gt[6];
    geotransform_of(grid_of, gt);
    const vrt_grid_t g = vrt_grid(ds, gt, bv->win);
    char *xml = boundless_vrt_xml(src, &g, bv, masked);
    RASTER_CHECK(xml != NULL, RASTER_E_NOMEM, "%s: out of memory for a boundless read's VRT", ds->path);
    static const char *const vrt_only[] = {"VRT", NULL};
    raster__gdal_capture_begin_read(ds->path);
    *vrt_out = GDALOpenEx(xml, GDAL_OF_RASTER | GDAL_OF_READONLY, vrt_only, NULL, NULL);
    raster_status_t st = RASTER_OK;
    if (*vrt_out == NULL)
        st = raster__fail(raster__gdal_capture_status(ds->path, RASTER__GDAL_CALL_READ, RASTER_E_IO),
                          "%s: GDAL could not open the VRT of a boundless read of window (col %g, row %g, "
                          "%gx%g): %s",
                          ds->path, bv->win.col_off, bv->win.row_off, bv->win.width, bv->win.height,
                          raster__gdal_capture_detail());
    raster__gdal_capture_end();
    free(xml);
    return st;
}

/* rasterio reads the VRT with vrt._read(indexes, out, Window(0, 0, width,
 * height)): the float window at the VRT's origin, nearest (the VRT's sources
 * resample with their own method). */
static raster_window_f_t
vrt_window(const raster__boundless_vrt_t *bv)
{
    return (raster_window_f_t){0.0, 0.0, bv->win.width, bv->win.height};
}

static raster_status_t
boundless_with_handle(raster_dataset_t *ds, GDALDatasetH h, const raster__boundless_vrt_t *bv,
                      const raster__resample_request_t *rr)
{
    GDALDatasetH vrt;
    RASTER_TRY(boundless_vrt_open(ds, h, h, bv, 0, &vrt));
    raster__resample_request_t on_vrt = *rr;
    on_vrt.win = vrt_window(bv);
    on_vrt.alg = RASTER_RESAMPLE_NEAREST;
    const raster_status_t st = resampled_with_handle(ds, vrt, &on_vrt);
    GDALClose(vrt);
    return st;
}

raster_status_t
raster__gdal_read_boundless(raster_dataset_t *ds, const raster__boundless_vrt_t *bv,
                            const raster__resample_request_t *rr)
{
    raster__gdal_frame_t f;
    RASTER_TRY(read_frame(ds, &f));
    return raster__gdal_frame_leave(&f, boundless_with_handle(ds, f.handle, bv, rr));
}

/* 255 where 'v' (uint8) is nonzero, else 0. */
static void
nonzero_is_valid(const raster_view_t *v)
{
    for (int64_t k = 0; k < v->channels; k++)
        for (int64_t r = 0; r < v->height; r++)
            for (int64_t c = 0; c < v->width; c++) {
                uint8_t *p = (uint8_t *)v->data + k * v->chan_stride + r * v->row_stride + c * v->col_stride;
                *p = *p ? 255 : 0;
            }
}

/* rasterio's read_masks(boundless=True) of a dataset whose bands are all
 * valid reads no pixel of it: it writes a 3x3 GTiff of 255 in /vsimem
 * covering the dataset (its transform scaled by width/3 and height/3 in
 * affine's order, its CRS, as many bands) and reads the boundless VRT of
 * that with nodata 0.  The same here: the blank opened in *blank_out, its
 * name in 'name' (the caller closes and unlinks it). */
static raster_status_t
blank_open(raster_dataset_t *ds, GDALDatasetH src, char *name, size_t name_size, GDALDatasetH *blank_out)
{
    static atomic_ulong serial;
    snprintf(name, name_size, "/vsimem/rasterloader-blank-%ld-%lu.tif", (long)getpid(),
             atomic_fetch_add(&serial, 1));
    double t[6];
    geotransform_of(src, t);
    const double c = t[0], a = t[1], b = t[2], f = t[3], d = t[4], e = t[5];
    const double sx = (double)ds->info.width / 3, sy = (double)ds->info.height / 3;
    /* translation(-c, -f) * T, then scale(sx, sy) * that, then translation(c, f) * that */
    const double t1a = 1 * a + 0 * d, t1b = 1 * b + 0 * e, t1c = 1 * c + 0 * f + -c;
    const double t1d = 0 * a + 1 * d, t1e = 0 * b + 1 * e, t1f = 0 * c + 1 * f + -f;
    const double ma = sx * t1a + 0 * t1d, mb = sx * t1b + 0 * t1e, mc = sx * t1c + 0 * t1f + 0;
    const double md = 0 * t1a + sy * t1d, me = 0 * t1b + sy * t1e, mf = 0 * t1c + sy * t1f + 0;
    double gt[6] = {1 * mc + 0 * mf + c, 1 * ma + 0 * md, 1 * mb + 0 * me,
                    0 * mc + 1 * mf + f, 0 * ma + 1 * md, 0 * mb + 1 * me};
    const int n = ds->info.band_count;
    unsigned char *ones = malloc((size_t)9 * n);
    RASTER_CHECK(ones != NULL, RASTER_E_NOMEM, "%s: out of memory for a blank raster", ds->path);
    memset(ones, 255, (size_t)9 * n);
    raster__gdal_capture_begin();
    GDALDatasetH w = GDALCreate(GDALGetDriverByName("GTiff"), name, 3, 3, n, GDT_Byte, NULL);
    CPLErr err = CE_Failure;
    if (w != NULL) {
        GDALSetGeoTransform(w, gt);
        if (*GDALGetProjectionRef(src))
            GDALSetProjection(w, GDALGetProjectionRef(src));
        err = GDALDatasetRasterIO(w, GF_Write, 0, 0, 3, 3, ones, 3, 3, GDT_Byte, n, NULL, 0, 0, 0);
        GDALClose(w);
    }
    free(ones);
    *blank_out = err == CE_None ? GDALOpenEx(name, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL) : NULL;
    raster_status_t st = RASTER_OK;
    if (*blank_out == NULL) {
        VSIUnlink(name);
        st = raster__fail(RASTER_E_IO, "%s: GDAL could not write the blank raster of a boundless mask read: %s",
                          ds->path, raster__gdal_capture_detail());
    }
    raster__gdal_capture_end();
    return st;
}

/* read_masks(): the blank's boundless VRT (nodata 0) read as pixels. */
static raster_status_t
blank_masks(raster_dataset_t *ds, GDALDatasetH h, const raster__boundless_vrt_t *bv, const int *bands,
            int band_count, const raster_view_t *dst)
{
    char name[96];
    GDALDatasetH blank;
    RASTER_TRY(blank_open(ds, h, name, sizeof name, &blank));
    raster__boundless_vrt_t on_blank = *bv;
    on_blank.has_nodata = 1;
    on_blank.nodata = 0;
    GDALDatasetH vrt;
    raster_status_t st = boundless_vrt_open(ds, h, blank, &on_blank, 0, &vrt);
    if (st == RASTER_OK) {
        const raster__resample_request_t rr = {vrt_window(bv), RASTER_RESAMPLE_NEAREST, *dst, bands, band_count,
                                               NULL, NULL, 0};
        st = resampled_into(ds, vrt, &rr, dst);
        GDALClose(vrt);
    }
    GDALClose(blank);
    VSIUnlink(name);
    if (st == RASTER_OK)
        nonzero_is_valid(dst);
    return st;
}

static raster_status_t
boundless_masks_with_handle(raster_dataset_t *ds, GDALDatasetH h, const raster__boundless_vrt_t *bv,
                            const int *bands, int band_count, const raster_view_t *dst)
{
    int all_valid = 1;
    for (int i = 1; i <= ds->info.band_count; i++)
        all_valid &= (GDALGetMaskFlags(GDALGetRasterBand(h, i)) & GMF_ALL_VALID) != 0;
    if (all_valid && bv->masks_of_blank)
        return blank_masks(ds, h, bv, bands, band_count, dst);
    GDALDatasetH vrt;
    RASTER_TRY(boundless_vrt_open(ds, h, h, bv, all_valid, &vrt));
    raster_status_t st = RASTER_OK;
    if (all_valid) {
        /* The masked VRT's values as uint8 (what rasterio reads them into). */
        const raster__resample_request_t rr = {vrt_window(bv), RASTER_RESAMPLE_NEAREST, *dst, bands, band_count,
                                               NULL, NULL, 0};
        st = resampled_into(ds, vrt, &rr, dst);
        if (st == RASTER_OK)
            nonzero_is_valid(dst);
    }
    for (int k = 0; !all_valid && k < band_count && st == RASTER_OK; k++) {
        raster_view_t ch = *dst;
        ch.data = (char *)dst->data + k * dst->chan_stride;
        ch.channels = 1;
        const mask_request_t mr = {vrt_window(bv), 1, RASTER_RESAMPLE_NEAREST, bands[k], &ch};
        st = mask_with_handle(ds, vrt, &mr);      /* GDAL's values, as rasterio returns them */
    }
    GDALClose(vrt);
    return st;
}

raster_status_t
raster__gdal_read_boundless_masks(raster_dataset_t *ds, const raster__boundless_vrt_t *bv, const int *bands,
                                  int band_count, const raster_view_t *dst)
{
    raster__gdal_frame_t f;
    RASTER_TRY(read_frame(ds, &f));
    return raster__gdal_frame_leave(&f, boundless_masks_with_handle(ds, f.handle, bv, bands, band_count, dst));
}

/* ------------------------------ CRS ------------------------------------ */

int
raster__gdal_crs_same(const char *wkt_a, const char *wkt_b)
{
    if (strcmp(wkt_a, wkt_b) == 0)
        return 1;
    if (wkt_a[0] == '\0' || wkt_b[0] == '\0')
        return 0;
    /* Two spellings of one CRS (an EPSG code and its WKT, other axis
     * wording): ask OSR, as rasterio's CRS equality does. */
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    OGRSpatialReferenceH a = OSRNewSpatialReference(wkt_a), b = OSRNewSpatialReference(wkt_b);
    const int same = a != NULL && b != NULL && OSRIsSame(a, b);
    OSRDestroySpatialReference(a);
    OSRDestroySpatialReference(b);
    raster__gdal_frame_leave(&f, RASTER_OK);
    return same;
}
