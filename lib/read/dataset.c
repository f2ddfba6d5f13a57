/*
 * dataset.c - open/close, metadata, and the common front half of every read:
 * argument checks, boundless clipping and fill, then the reader chosen at
 * open (native TIFF or GDAL).
 *
 * A dataset is reference-counted: raster_open() gives the caller one
 * reference, each read in flight holds another, so raster_close() on one
 * thread never frees memory a read on another thread is using; a holder of
 * a retained reference that reads after the close gets RASTER_E_CLOSED.
 *
 * URLs: a dataset's path, and every message, is the GDAL path that names
 * the URL (raster__gdal_path_of() of gdal_env.c: http(s):// becomes
 * /vsicurl/, s3://, gs://, az:// become /vsis3/, /vsigs/, /vsiaz/, as
 * rasterio does).
 *
 * Layer: the top; it joins the GDAL reader (gdal_reader.c) and the native
 * TIFF reader (tiff_layout.c, tiff_read.c), both of which sit on gdal_env.c.
 */
#include "reader.h"

#include <cpl_conv.h>
#include <gdal.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void
dataset_free(raster_dataset_t *ds)
{
    raster__tiff_close(ds->tiff);
    raster__gdal_close(ds->gdal);
    if (ds->warp_free != NULL)
        ds->warp_free(ds->warp);      /* after the handles it built */
    free(ds->bands);
    free(ds->all_bands);
    free(ds->driver);
    free(ds->compression);
    free(ds->interleave);
    free(ds->crs_wkt);
    free(ds->path);
    free(ds);
}

raster_dataset_t *
raster_dataset_retain(raster_dataset_t *ds)
{
    if (ds != NULL)
        atomic_fetch_add(&ds->refcount, 1);
    return ds;
}

void
raster_dataset_release(raster_dataset_t *ds)
{
    if (ds != NULL && atomic_fetch_sub(&ds->refcount, 1) == 1)
        dataset_free(ds);
}

void
raster_close(raster_dataset_t *ds)
{
    if (ds == NULL)
        return;
    atomic_store(&ds->closed, 1);
    raster_dataset_release(ds);
}

void
raster_open_options_init(raster_open_options_t *opt)
{
    if (opt == NULL)
        return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->reader = -1;
}

/* GDAL's block cache, for C users (the library's own GDAL): masks, and the
 * formats the native reader does not serve, still go through GDAL, whose
 * default is 5 % of RAM per process (per DataLoader worker, per rank).
 * Decoded tiles of the native reader live in the tile cache, so unless the
 * user set GDAL_CACHEMAX (environment or config option), the first open
 * gives GDAL a small, stated budget.  Not in the Python package
 * (raster__gdal_cache_leave_alone): there GDAL is rasterio's, and so is its
 * cache. */
static pthread_once_t gdal_cache_once = PTHREAD_ONCE_INIT;

/* Set by the Python package, which runs on the GDAL rasterio loaded: that
 * GDAL's block cache is rasterio's and the user's, never shrunk here. */
static _Atomic int gdal_cache_shared;

void
raster__gdal_cache_leave_alone(void)
{
    gdal_cache_shared = 1;
}

static void
gdal_cache_budget(void)
{
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    if (!gdal_cache_shared && CPLGetConfigOption("GDAL_CACHEMAX", NULL) == NULL)
        GDALSetCacheMax64(RASTER__GDAL_CACHE_BYTES);
    raster__tile_cache_note_gdal((int64_t)GDALGetCacheMax64());
    raster__gdal_frame_leave(&f, RASTER_OK);
}

/* GDALOpenEx reports a process out of descriptors as a file it cannot
 * open ("not a raster GDAL can open: ... Too many open files", a format
 * error; some drivers only say "File open of ... failed").  GDAL's open
 * may hold a few descriptors at once (the file, a second handle some
 * drivers take, a sidecar), so when GDAL failed on a local path, the
 * probe asks for OPEN_PROBE_FDS of them: the path once, then duplicates.
 * If one fails with EMFILE or ENFILE, the limit is the reason: an I/O
 * error that names it (raster__fail_open); a file that is really not a
 * raster, opened within OPEN_PROBE_FDS of the limit, is reported as the
 * limit too, which raising it then tells apart.  Only on the failure path:
 * a successful open never pays for the probe.  Otherwise GDAL's status and
 * message stand. */
enum { OPEN_PROBE_FDS = 4 };

static raster_status_t
open_failure_reason(const char *path, raster_status_t st)
{
    if (raster__path_is_remote(path) || strncmp(path, "/vsi", 4) == 0)
        return st;
    int fds[OPEN_PROBE_FDS], n = 0, err = 0;
    for (; n < OPEN_PROBE_FDS; n++) {
        /* O_NONBLOCK: a FIFO's open must not wait for a writer. */
        fds[n] = n == 0 ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : fcntl(fds[0], F_DUPFD_CLOEXEC, 0);
        if (fds[n] < 0) {
            err = errno;
            break;
        }
    }
    while (n > 0)
        close(fds[--n]);
    return raster__errno_is_fd_limit(err) ? raster__fail_open(path, err, "cannot open") : st;
}

/* A local file the native reader serves reads its pixels through the
 * reader's own descriptor (tiff_io.c); the GDAL handle that read the
 * metadata would hold a second descriptor for the dataset's whole life
 * (two per dataset: half of rasterio's datasets under one RLIMIT_NOFILE).
 * It is closed here.  What still needs GDAL on such a dataset (masks of
 * bands with nodata or alpha, resampled reads, metadata calls) opens a
 * handle on first use, as a second thread does (gdal_reader.c, which
 * checks it is the same file), and keeps it idle from then on: one GDAL
 * open more in the dataset's life, measured within noise of an
 * open+read+read_masks+close (README, "File descriptors").  URLs keep
 * theirs: no local file behind it, and a re-open would cost a request. */
static void
gdal_handle_drop_if_native(raster_dataset_t *ds)
{
    if (ds->tiff != NULL && !raster__path_is_remote(ds->path))
        raster__gdal_close_idle(ds);
}

raster_status_t
raster_open(const char *path_or_url, raster_dataset_t **ds_out)
{
    return raster_open_ex(path_or_url, NULL, ds_out);
}

raster_status_t
raster_open_ex(const char *path_or_url, const raster_open_options_t *opt, raster_dataset_t **ds_out)
{
    RASTER_CHECK(ds_out != NULL && path_or_url != NULL, RASTER_E_INVALID_ARG,
                 "raster_open: NULL argument");
    *ds_out = NULL;
    RASTER_CHECK(path_or_url[0] != '\0', RASTER_E_INVALID_ARG, "raster_open: empty path");
    raster_open_options_t o;
    raster_open_options_init(&o);
    RASTER_TRY(raster__options_take(&o, sizeof o, opt, RASTER__FIELD_END(raster_open_options_t, reader),
                                    "raster_open_options", path_or_url));
    RASTER_CHECK(o.reader == -1 || o.reader == RASTER_READER_GDAL ||
                     o.reader == RASTER_READER_NATIVE_TIFF,
                 RASTER_E_INVALID_ARG, "%s: unknown reader %d", path_or_url, o.reader);
    pthread_once(&gdal_cache_once, gdal_cache_budget);
    raster_dataset_t *ds = calloc(1, sizeof *ds);
    RASTER_CHECK(ds != NULL, RASTER_E_NOMEM, "%s: out of memory", path_or_url);
    atomic_init(&ds->refcount, 1);
    atomic_init(&ds->closed, 0);
    raster_status_t st;
    if ((ds->path = raster__gdal_path_of(path_or_url)) == NULL) {
        st = raster__fail(RASTER_E_NOMEM, "%s: out of memory", path_or_url);
        goto fail;
    }
    /* GDAL fills the metadata for every format; the native reader then
     * claims the TIFFs it can serve and adds what only libtiff knows. */
    if ((st = raster__gdal_open(ds)) != RASTER_OK) {
        st = open_failure_reason(ds->path, st);
        goto fail;
    }
    if ((st = raster__tiff_open(ds)) != RASTER_OK)
        goto fail;
    if (o.reader == RASTER_READER_GDAL && ds->tiff != NULL) {
        raster__tiff_close(ds->tiff);
        ds->tiff = NULL;
    }
    gdal_handle_drop_if_native(ds);
    if (o.reader == RASTER_READER_NATIVE_TIFF && ds->tiff == NULL) {
        st = raster__fail(RASTER_E_UNSUPPORTED, "%s: the native TIFF reader cannot serve this file",
                          ds->path);
        goto fail;
    }
    ds->info.reader = ds->tiff ? RASTER_READER_NATIVE_TIFF : RASTER_READER_GDAL;
    *ds_out = ds;
    return RASTER_OK;
fail:
    dataset_free(ds);
    return st;
}

raster_status_t
raster_dataset_info(const raster_dataset_t *ds, raster_info_t *info_out)
{
    RASTER_CHECK(ds != NULL && info_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_dataset_info: NULL argument");
    RASTER_CHECK(!atomic_load(&ds->closed), RASTER_E_CLOSED, "%s: dataset is closed", ds->path);
    *info_out = ds->info;
    return RASTER_OK;
}

raster_status_t
raster_band_info(const raster_dataset_t *ds, int band, raster_band_info_t *info_out)
{
    RASTER_CHECK(ds != NULL && info_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_band_info: NULL argument");
    RASTER_CHECK(!atomic_load(&ds->closed), RASTER_E_CLOSED, "%s: dataset is closed", ds->path);
    RASTER_CHECK_CAUSE(band >= 1 && band <= ds->info.band_count, RASTER_E_BOUNDS, RASTER_CAUSE_BAND_INDEX,
                 "%s: band %d does not exist (the file has %d)", ds->path, band,
                 ds->info.band_count);
    *info_out = ds->bands[band - 1].info;
    return RASTER_OK;
}

void
raster_read_options_init(raster_read_options_t *opt)
{
    if (opt == NULL)
        return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
}

raster_status_t
raster__read_options_take(raster_read_options_t *dst, const raster_read_options_t *src, const char *who)
{
    raster_read_options_init(dst);
    return raster__options_take(dst, sizeof *dst, src, RASTER__FIELD_END(raster_read_options_t, bands),
                                "raster_read_options", who);
}

/* ------------------------------ for api/ ------------------------------- */

/* The folders above see a dataset through these calls only (read.h): the
 * struct and the readers stay inside lib/read/. */

const char *
raster__dataset_path(const raster_dataset_t *ds)
{
    return ds->path;
}

const raster_info_t *
raster__dataset_info(const raster_dataset_t *ds)
{
    return &ds->info;
}

int
raster__dataset_closed(const raster_dataset_t *ds)
{
    return atomic_load(&ds->closed);
}

const raster_band_info_t *
raster__dataset_band(const raster_dataset_t *ds, int band)
{
    return &ds->bands[band - 1].info;
}

const char *
raster__dataset_color_interp(const raster_dataset_t *ds, int band)
{
    return ds->bands[band - 1].color_interp;
}

int
raster__dataset_crs_same(const raster_dataset_t *a, const raster_dataset_t *b)
{
    return raster__gdal_crs_same(a->info.crs_wkt, b->info.crs_wkt);
}

raster_status_t
raster__dataset_gdal_frame(raster_dataset_t *ds, raster__gdal_frame_t *f)
{
    return raster__gdal_frame_of(ds, f);
}

raster_status_t
raster__dataset_gdal_handle_new(raster_dataset_t *ds, void **handle_out)
{
    return raster__gdal_handle_new(ds, handle_out);
}

struct raster__warp *
raster__dataset_warp(const raster_dataset_t *ds)
{
    return ds->warp;
}

raster_status_t
raster__dataset_open_custom(const char *name, raster__dataset_opener_fn open, void *ctx,
                            struct raster__warp *warp, void (*warp_free)(struct raster__warp *w),
                            raster_dataset_t **ds_out)
{
    *ds_out = NULL;
    raster_dataset_t *ds = calloc(1, sizeof *ds);
    if (ds == NULL) {
        warp_free(warp);
        return raster__fail(RASTER_E_NOMEM, "%s: out of memory", name);
    }
    atomic_init(&ds->refcount, 1);
    atomic_init(&ds->closed, 0);
    ds->warp = warp;
    ds->warp_free = warp_free;
    raster_status_t st = RASTER_E_NOMEM;
    if ((ds->path = strdup(name)) == NULL) {
        raster__fail(st, "%s: out of memory", name);
        goto fail;
    }
    if ((st = raster__gdal_open_with(ds, open, ctx)) != RASTER_OK)
        goto fail;
    ds->info.reader = RASTER_READER_GDAL;
    *ds_out = ds;
    return RASTER_OK;
fail:
    raster_dataset_release(ds);    /* frees the half-built dataset, and the warp */
    return st;
}

/* ------------------------------ reads ---------------------------------- */

/* The caller's options over the defaults (the struct_size rule), then
 * the band list resolved and the normalisation checked. */
static raster_status_t
options_resolve(const raster_dataset_t *ds, const raster_read_options_t *opt,
                raster_read_options_t *out)
{
    RASTER_TRY(raster__read_options_take(out, opt, ds->path));
    if (out->bands == NULL) {
        out->bands = ds->all_bands;
        out->band_count = ds->info.band_count;
    }
    RASTER_CHECK(out->band_count >= 1, RASTER_E_INVALID_ARG, "%s: band_count %d must be >= 1",
                 ds->path, out->band_count);
    for (int i = 0; i < out->band_count; i++)
        RASTER_CHECK_CAUSE(out->bands[i] >= 1 && out->bands[i] <= ds->info.band_count, RASTER_E_BOUNDS,
                           RASTER_CAUSE_BAND_INDEX, "%s: band %d does not exist (the file has %d)", ds->path,
                           out->bands[i], ds->info.band_count);
    RASTER_CHECK((out->mean == NULL && out->std == NULL) || (out->scale == NULL && out->offset == NULL),
                 RASTER_E_INVALID_ARG, "%s: give scale/offset or mean/std, not both", ds->path);
    for (int i = 0; out->std != NULL && i < out->band_count; i++)
        RASTER_CHECK(out->std[i] != 0.0, RASTER_E_INVALID_ARG, "%s: std of channel %d is 0", ds->path, i);
    return RASTER_OK;
}

/* The readers carry one per-channel pair: mean/std travel as (offset,
 * scale) with 'divide' set (see raster__place_opts_t). */
static void
normalisation_take(const raster_read_options_t *o, const double **scale, const double **offset,
                   int *divide)
{
    if (o->mean == NULL && o->std == NULL)
        return;
    *scale = o->std;
    *offset = o->mean;
    *divide = 1;
}

static raster_status_t
window_check(const raster_dataset_t *ds, raster_window_t w, int boundless)
{
    RASTER_CHECK(w.width >= 1 && w.height >= 1, RASTER_E_INVALID_ARG,
                 "%s: window (col %lld, row %lld, %lldx%lld) must have width and height >= 1",
                 ds->path, (long long)w.col_off, (long long)w.row_off, (long long)w.width,
                 (long long)w.height);
    /* Bound coordinates so that every sum below fits in int64. */
    const int64_t lim = (int64_t)1 << 40;
    RASTER_CHECK(w.width < lim && w.height < lim && w.col_off > -lim && w.col_off < lim &&
                     w.row_off > -lim && w.row_off < lim,
                 RASTER_E_BOUNDS, "%s: window (col %lld, row %lld, %lldx%lld) is absurdly large",
                 ds->path, (long long)w.col_off, (long long)w.row_off, (long long)w.width,
                 (long long)w.height);
    if (!boundless)
        RASTER_CHECK(w.col_off >= 0 && w.row_off >= 0 && w.col_off + w.width <= ds->info.width &&
                         w.row_off + w.height <= ds->info.height,
                     RASTER_E_BOUNDS,
                     "%s: window (col %lld, row %lld, %lldx%lld) is outside the %lldx%lld raster "
                     "(pass boundless to read outside it)",
                     ds->path, (long long)w.col_off, (long long)w.row_off, (long long)w.width,
                     (long long)w.height, (long long)ds->info.width, (long long)ds->info.height);
    return RASTER_OK;
}

static raster_status_t
dst_check(const raster_dataset_t *ds, raster_window_t w, int64_t channels,
          const raster_view_t *dst)
{
    RASTER_TRY(raster__view_check(dst, ds->path));
    RASTER_CHECK(dst->height == w.height && dst->width == w.width && dst->channels == channels,
                 RASTER_E_INVALID_ARG,
                 "%s: destination is %lldx%lldx%lld (HxWxC) but window (col %lld, row %lld) "
                 "with %lld band(s) needs %lldx%lldx%lld",
                 ds->path, (long long)dst->height, (long long)dst->width,
                 (long long)dst->channels, (long long)w.col_off, (long long)w.row_off,
                 (long long)channels, (long long)w.height, (long long)w.width,
                 (long long)channels);
    return RASTER_OK;
}

/* Split a boundless window into the part inside the raster (*inner, and the
 * matching sub-view *inner_dst) and fill the rest of 'dst' with 'fill'.
 * Returns 0 when nothing of the window is inside. */
static int
clip_and_fill(const raster_dataset_t *ds, raster_window_t w, const raster_view_t *dst,
              double fill, raster_window_t *inner, raster_view_t *inner_dst)
{
    const int64_t c0 = w.col_off < 0 ? 0 : w.col_off;
    const int64_t r0 = w.row_off < 0 ? 0 : w.row_off;
    const int64_t c1 = w.col_off + w.width > ds->info.width ? ds->info.width : w.col_off + w.width;
    const int64_t r1 = w.row_off + w.height > ds->info.height ? ds->info.height : w.row_off + w.height;
    if (c0 >= c1 || r0 >= r1) {
        raster__fill(dst, fill);
        return 0;
    }
    /* In destination coordinates: rows [top, bottom) and cols [left, right) are inside. */
    const int64_t top = r0 - w.row_off, bottom = r1 - w.row_off;
    const int64_t left = c0 - w.col_off, right = c1 - w.col_off;
    raster_view_t v;
    if (top > 0)
        v = raster__view_sub(dst, 0, 0, top, w.width), raster__fill(&v, fill);
    if (bottom < w.height)
        v = raster__view_sub(dst, bottom, 0, w.height - bottom, w.width), raster__fill(&v, fill);
    if (left > 0)
        v = raster__view_sub(dst, top, 0, bottom - top, left), raster__fill(&v, fill);
    if (right < w.width)
        v = raster__view_sub(dst, top, right, bottom - top, w.width - right), raster__fill(&v, fill);
    *inner = (raster_window_t){c0, r0, c1 - c0, r1 - r0};
    *inner_dst = raster__view_sub(dst, top, left, bottom - top, right - left);
    return 1;
}

/* The arguments of the public reads, one struct so that one entry wrapper
 * serves them all: 'win' for the pixel-aligned reads, 'win_f' and 'alg' for
 * the resampled ones; the masks reads take 'mopt', 'pixels' and
 * 'no_mask_out' instead of 'opt'. */
typedef struct read_args {
    raster_window_t win;
    raster_window_f_t win_f;
    raster_resampling_t alg;
    const raster_read_options_t *opt;
    const raster_view_t *dst;
    const raster_masks_options_t *mopt;
    const raster_view_t *pixels;
    int *no_mask_out;
} read_args_t;

typedef raster_status_t (*read_body_fn)(raster_dataset_t *ds, const read_args_t *a);

/* Every public read: a dataset that is there and open, held by a reference
 * of its own for the whole read, so a concurrent raster_close() never frees
 * it under the reader. */
static raster_status_t
read_entry(raster_dataset_t *ds, const char *fn, read_body_fn body, const read_args_t *a)
{
    RASTER_CHECK(ds != NULL, RASTER_E_INVALID_ARG, "%s: NULL dataset", fn);
    raster_dataset_retain(ds);
    const raster_status_t st = atomic_load(&ds->closed)
                                   ? raster__fail(RASTER_E_CLOSED, "%s: dataset is closed", ds->path)
                                   : body(ds, a);
    raster_dataset_release(ds);
    return st;
}

static raster_status_t
read_image(raster_dataset_t *ds, const read_args_t *a)
{
    const raster_window_t win = a->win;
    const raster_view_t *const dst = a->dst;
    raster_read_options_t o;
    RASTER_TRY(options_resolve(ds, a->opt, &o));
    RASTER_TRY(window_check(ds, win, o.boundless));
    RASTER_TRY(dst_check(ds, win, o.band_count, dst));
    raster__request_t rq = {win, *dst, o.bands, o.band_count, o.scale, o.offset, 0};
    normalisation_take(&o, &rq.scale, &rq.offset, &rq.divide);
    if (o.boundless && !clip_and_fill(ds, win, dst, o.fill_none ? 0.0 : o.fill_value, &rq.win, &rq.dst))
        return RASTER_OK;
    return ds->tiff ? raster__tiff_read(ds, &rq) : raster__gdal_read(ds, &rq);
}

raster_status_t
raster_read_into(raster_dataset_t *ds, raster_window_t win, const raster_read_options_t *opt,
                 const raster_view_t *dst)
{
    return read_entry(ds, "raster_read_into", read_image, &(read_args_t){.win = win, .opt = opt, .dst = dst});
}

/* A mask read's destination is uint8; one band asked for reads its own mask
 * (read_masks), otherwise the dataset mask (band 0). */
static raster_status_t
mask_dst_and_band(const raster_dataset_t *ds, const raster_read_options_t *opt,
                  const raster_read_options_t *o, const raster_view_t *dst, int *band_out)
{
    RASTER_CHECK(dst->dtype == RASTER_U8, RASTER_E_INVALID_ARG,
                 "%s: a mask destination must be uint8, not %s", ds->path,
                 raster_dtype_name(dst->dtype));
    *band_out = (opt != NULL && opt->bands != NULL && o->band_count == 1) ? o->bands[0] : 0;
    return RASTER_OK;
}

static raster_status_t
read_mask(raster_dataset_t *ds, const read_args_t *a)
{
    const raster_window_t win = a->win;
    const raster_read_options_t *const opt = a->opt;
    const raster_view_t *const dst = a->dst;
    raster_read_options_t o;
    RASTER_TRY(options_resolve(ds, opt, &o));
    RASTER_TRY(window_check(ds, win, o.boundless));
    RASTER_TRY(dst_check(ds, win, 1, dst));
    int band = 0;
    RASTER_TRY(mask_dst_and_band(ds, opt, &o, dst, &band));
    raster_window_t inner = win;
    raster_view_t inner_dst = *dst;
    if (o.boundless && !clip_and_fill(ds, win, dst, 0.0, &inner, &inner_dst))
        return RASTER_OK;
    return raster__mask_read(ds, inner, band, &inner_dst);
}

raster_status_t
raster_read_mask_into(raster_dataset_t *ds, raster_window_t win, const raster_read_options_t *opt,
                      const raster_view_t *dst)
{
    return read_entry(ds, "raster_read_mask_into", read_mask, &(read_args_t){.win = win, .opt = opt, .dst = dst});
}

/* ------------------------------ a read's masks ------------------------- */

void
raster_masks_options_init(raster_masks_options_t *opt)
{
    if (opt == NULL)
        return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->rule = RASTER_MASKS_BANDS;
}

/* The checks of a masks read, into the request mask.c takes (no views yet):
 * the fields the caller was built with, the bands resolved as for an image
 * read, a known rule. */
static raster_status_t
masks_request_begin(const raster_dataset_t *ds, const raster_masks_options_t *opt,
                    raster__masks_request_t *rq)
{
    raster_masks_options_t o;
    raster_masks_options_init(&o);
    RASTER_TRY(raster__options_take(&o, sizeof o, opt, RASTER__FIELD_END(raster_masks_options_t, rule),
                                    "raster_masks_options", ds->path));
    RASTER_CHECK(o.rule >= RASTER_MASKS_BANDS && o.rule <= RASTER_MASKS_DATASET, RASTER_E_INVALID_ARG,
                 "%s: mask rule %d is not RASTER_MASKS_BANDS, _READ or _DATASET", ds->path, o.rule);
    raster_read_options_t ro, bo;      /* the band list, checked as an image read's */
    raster_read_options_init(&ro);
    ro.bands = o.bands;
    ro.band_count = o.band_count;
    RASTER_TRY(options_resolve(ds, &ro, &bo));
    memset(rq, 0, sizeof *rq);
    rq->rule = o.rule;
    rq->bands = bo.bands;
    rq->band_count = bo.band_count;
    rq->boundless = o.boundless;
    rq->has_nodata = o.has_nodata;
    rq->nodata = o.nodata;
    return RASTER_OK;
}

static raster_status_t
masks_dst_check(const raster_dataset_t *ds, const raster_view_t *dst)
{
    RASTER_CHECK(dst != NULL, RASTER_E_INVALID_ARG, "%s: NULL mask destination", ds->path);
    RASTER_CHECK(dst->dtype == RASTER_U8, RASTER_E_INVALID_ARG,
                 "%s: a mask destination must be uint8, not %s", ds->path, raster_dtype_name(dst->dtype));
    return RASTER_OK;
}

static raster_status_t
read_masks(raster_dataset_t *ds, const read_args_t *a)
{
    const raster_window_t win = a->win;
    const raster_masks_options_t *const opt = a->mopt;
    const raster_view_t *const pixels = a->pixels, *const dst = a->dst;
    int *const no_mask_out = a->no_mask_out;
    raster__masks_request_t rq;
    RASTER_TRY(masks_request_begin(ds, opt, &rq));
    if ((win.width == 0 && win.height >= 0) || (win.height == 0 && win.width >= 0))
        return raster__masks_read(ds, &rq, no_mask_out);    /* nothing to write: see the header */
    RASTER_TRY(window_check(ds, win, rq.boundless));
    RASTER_TRY(masks_dst_check(ds, dst));
    RASTER_TRY(dst_check(ds, win, rq.rule == RASTER_MASKS_DATASET ? 1 : rq.band_count, dst));
    if (pixels != NULL)
        RASTER_TRY(dst_check(ds, win, rq.band_count, pixels));
    rq.dst = *dst;
    rq.inner = win;
    rq.inner_dst = *dst;
    rq.inside = !rq.boundless || clip_and_fill(ds, win, dst, 0.0, &rq.inner, &rq.inner_dst);
    raster_view_t pixels_inner;
    if (pixels != NULL && rq.inside) {
        pixels_inner = raster__view_sub(pixels, rq.inner.row_off - win.row_off, rq.inner.col_off - win.col_off,
                                        rq.inner.height, rq.inner.width);
        rq.pixels_inner = &pixels_inner;
    }
    return raster__masks_read(ds, &rq, no_mask_out);
}

raster_status_t
raster_read_masks_into(raster_dataset_t *ds, raster_window_t win, const raster_masks_options_t *opt,
                       const raster_view_t *pixels, const raster_view_t *dst, int *no_mask_out)
{
    return read_entry(ds, "raster_read_masks_into", read_masks,
                      &(read_args_t){.win = win, .mopt = opt, .pixels = pixels, .dst = dst,
                                     .no_mask_out = no_mask_out});
}

/* ------------------------------ resampled ------------------------------ */

static int
resampling_known(raster_resampling_t alg)
{
    return (alg >= RASTER_RESAMPLE_NEAREST && alg <= RASTER_RESAMPLE_GAUSS) || alg == RASTER_RESAMPLE_RMS;
}

/* The checks every resampled read makes: a method a read can use, a finite
 * window of positive size, inside the raster unless boundless (GDAL checks
 * its truncation, rasterio's int(x)), dst of 'channels' and any size. */
static raster_status_t
resampled_check(const raster_dataset_t *ds, raster_window_f_t w, raster_resampling_t alg,
                const raster_read_options_t *o, int channels, const raster_view_t *dst)
{
    RASTER_CHECK(resampling_known(alg), RASTER_E_INVALID_ARG,
                 "%s: resampling %d is not one a read can use (nearest, bilinear, cubic, cubic_spline, "
                 "lanczos, average, mode, gauss, rms)",
                 ds->path, (int)alg);
    const double W = (double)ds->info.width, H = (double)ds->info.height, eps = 1e-9;
    /* A sliver (0 < length < 1: rasterio.merge meets them at file edges) is
     * read as rasterio's GDAL call reads it: GDAL takes the float window. */
    RASTER_CHECK(isfinite(w.col_off) && isfinite(w.row_off) && isfinite(w.width) && isfinite(w.height) &&
                     w.width > 0 && w.height > 0,
                 RASTER_E_INVALID_ARG,
                 "%s: window (col %g, row %g, %gx%g) must be finite and of positive width and height",
                 ds->path, w.col_off, w.row_off, w.width, w.height);
    /* Boundless: bounded so that the VRT's size (window + 1) fits GDAL's int. */
    const double lim = (double)INT32_MAX / 2;
    RASTER_CHECK(!o->boundless || (fabs(w.col_off) < lim && fabs(w.row_off) < lim && w.width < lim &&
                                   w.height < lim),
                 RASTER_E_BOUNDS, "%s: window (col %g, row %g, %gx%g) is absurdly large", ds->path, w.col_off,
                 w.row_off, w.width, w.height);
    RASTER_CHECK(o->boundless || (w.col_off >= 0 && w.row_off >= 0 && w.col_off + w.width <= W + eps &&
                                  w.row_off + w.height <= H + eps),
                 RASTER_E_BOUNDS, "%s: window (col %g, row %g, %gx%g) is outside the %lldx%lld raster",
                 ds->path, w.col_off, w.row_off, w.width, w.height, (long long)ds->info.width,
                 (long long)ds->info.height);
    RASTER_TRY(raster__view_check(dst, ds->path));
    RASTER_CHECK(dst->channels == channels && dst->height >= 1 && dst->width >= 1 &&
                     dst->height <= INT32_MAX && dst->width <= INT32_MAX,
                 RASTER_E_INVALID_ARG,
                 "%s: destination is %lldx%lldx%lld (HxWxC); a resampled read of %d channel(s) needs %d "
                 "channel(s) and any height and width from 1 to 2^31-1",
                 ds->path, (long long)dst->height, (long long)dst->width, (long long)dst->channels,
                 channels, channels);
    return RASTER_OK;
}

/* The VRT of a boundless resampled read (rasterio's _boundless_vrt_doc
 * arguments): its nodata is the caller's value, else band 1's own. */
static raster__boundless_vrt_t
boundless_vrt_of(const raster_dataset_t *ds, raster_window_f_t w, raster_resampling_t alg, int has_value,
                 double value)
{
    raster__boundless_vrt_t bv = {w, alg, has_value, value, 0};
    if (!has_value && ds->bands[0].info.has_nodata) {
        bv.has_nodata = 1;
        bv.nodata = ds->bands[0].info.nodata;
    }
    return bv;
}

static raster_status_t
read_resampled(raster_dataset_t *ds, const read_args_t *a)
{
    raster_read_options_t o;
    RASTER_TRY(options_resolve(ds, a->opt, &o));
    RASTER_TRY(resampled_check(ds, a->win_f, a->alg, &o, o.band_count, a->dst));
    raster__resample_request_t rr = {a->win_f, a->alg, *a->dst, o.bands, o.band_count, o.scale, o.offset, 0};
    normalisation_take(&o, &rr.scale, &rr.offset, &rr.divide);
    if (o.boundless) {
        const raster__boundless_vrt_t bv = boundless_vrt_of(ds, a->win_f, a->alg, !o.fill_none, o.fill_value);
        return raster__gdal_read_boundless(ds, &bv, &rr);
    }
    return raster__gdal_read_resampled(ds, &rr);
}

static raster_status_t
read_mask_resampled(raster_dataset_t *ds, const read_args_t *a)
{
    raster_read_options_t o;
    RASTER_TRY(options_resolve(ds, a->opt, &o));
    RASTER_CHECK(!o.boundless, RASTER_E_UNSUPPORTED,
                 "%s: raster_read_mask_resampled_into() cannot be boundless (raster_read_masks_window_into() "
                 "reads boundless resampled masks)", ds->path);
    RASTER_TRY(resampled_check(ds, a->win_f, a->alg, &o, 1, a->dst));
    int band = 0;
    RASTER_TRY(mask_dst_and_band(ds, a->opt, &o, a->dst, &band));
    return raster__mask_read_resampled(ds, a->win_f, a->alg, band, a->dst);
}

raster_status_t
raster_read_mask_resampled_into(raster_dataset_t *ds, raster_window_f_t win, raster_resampling_t resampling,
                                const raster_read_options_t *opt, const raster_view_t *dst)
{
    return read_entry(ds, "raster_read_mask_resampled_into", read_mask_resampled,
                      &(read_args_t){.win_f = win, .alg = resampling, .opt = opt, .dst = dst});
}

static raster_status_t
read_masks_resampled(raster_dataset_t *ds, const read_args_t *a)
{
    const raster_window_f_t w = a->win_f;
    const raster_resampling_t alg = a->alg;
    const raster_masks_options_t *const opt = a->mopt;
    const raster_view_t *const dst = a->dst;
    int *const no_mask_out = a->no_mask_out;
    raster__masks_request_t rq;
    RASTER_TRY(masks_request_begin(ds, opt, &rq));
    RASTER_TRY(masks_dst_check(ds, dst));
    if (dst->height == 0 || dst->width == 0)
        return raster__masks_read(ds, &rq, no_mask_out);    /* nothing to write: see the header */
    raster_read_options_t o;
    raster_read_options_init(&o);
    o.boundless = rq.boundless;
    RASTER_TRY(resampled_check(ds, w, alg, &o, rq.rule == RASTER_MASKS_DATASET ? 1 : rq.band_count, dst));
    if (rq.boundless) {
        /* read_masks() has no value: the VRT takes band 1's nodata, as rasterio's. */
        const int has_value = rq.rule == RASTER_MASKS_READ && rq.has_nodata;
        raster__boundless_vrt_t bv = boundless_vrt_of(ds, w, alg, has_value, rq.nodata);
        bv.masks_of_blank = rq.rule != RASTER_MASKS_READ;
        if (no_mask_out != NULL)
            *no_mask_out = 0;
        if (rq.rule == RASTER_MASKS_DATASET)
            return raster__mask_read_boundless(ds, &bv, dst);
        return raster__gdal_read_boundless_masks(ds, &bv, rq.bands, rq.band_count, dst);
    }
    rq.dst = rq.inner_dst = *dst;
    rq.inside = 1;
    rq.resampled = 1;
    rq.resample_win = w;
    rq.resampling = alg;
    return raster__masks_read(ds, &rq, no_mask_out);
}

raster_status_t
raster_read_masks_resampled_into(raster_dataset_t *ds, raster_window_f_t win, raster_resampling_t resampling,
                                 const raster_masks_options_t *opt, const raster_view_t *dst, int *no_mask_out)
{
    return read_entry(ds, "raster_read_masks_resampled_into", read_masks_resampled,
                      &(read_args_t){.win_f = win, .alg = resampling, .mopt = opt, .dst = dst,
                                     .no_mask_out = no_mask_out});
}

raster_status_t
raster_read_resampled_into(raster_dataset_t *ds, raster_window_f_t win, raster_resampling_t resampling,
                           const raster_read_options_t *opt, const raster_view_t *dst)
{
    return read_entry(ds, "raster_read_resampled_into", read_resampled,
                      &(read_args_t){.win_f = win, .alg = resampling, .opt = opt, .dst = dst});
}

/* ------------------------------ the one window read -------------------- */

/* Whole within the tolerance Python's window arithmetic leaves (a float
 * window from bounds is 256.00000000003 wide where 256 was meant). */
static int
whole_length(double v)
{
    return fabs(v - floor(v + 0.5)) <= 1e-9;
}

/* 1 and the whole-pixel window in *plain when 'w' read at dst's size is a
 * plain read (the rule in rasterloader.h), 0 when it is resampled.  A
 * boundless window with fractional offsets is resampled with nearest too:
 * rasterio reads it through its VRT, whose grid is offset by the fraction
 * (GDAL's nearest rule on the raster's grid picks other pixels at half the
 * fractions). */
static int
window_plan(raster_window_f_t w, raster_resampling_t alg, int boundless, const raster_view_t *dst,
            raster_window_t *plain)
{
    if (!(isfinite(w.col_off) && isfinite(w.row_off) && whole_length(w.width) && whole_length(w.height)))
        return 0;
    const int whole_offsets = w.col_off == floor(w.col_off) && w.row_off == floor(w.row_off);
    if (!whole_offsets && (alg != RASTER_RESAMPLE_NEAREST || boundless))
        return 0;
    /* |values| < 2^62: the casts below are defined; window_check bounds them further. */
    const double lim = 4.6e18;
    if (fabs(w.col_off) > lim || fabs(w.row_off) > lim || fabs(w.width) > lim || fabs(w.height) > lim)
        return 0;
    *plain = (raster_window_t){(int64_t)floor(w.col_off + 0.5), (int64_t)floor(w.row_off + 0.5),
                               (int64_t)floor(w.width + 0.5), (int64_t)floor(w.height + 0.5)};
    return dst->width == plain->width && dst->height == plain->height;
}

raster_status_t
raster_read_window_into(raster_dataset_t *ds, raster_window_f_t win, raster_resampling_t resampling,
                        const raster_read_options_t *opt, const raster_view_t *dst)
{
    RASTER_CHECK(ds != NULL, RASTER_E_INVALID_ARG, "raster_read_window_into: NULL dataset");
    RASTER_CHECK(dst != NULL, RASTER_E_INVALID_ARG, "%s: NULL destination", ds->path);
    raster_window_t plain;
    if (window_plan(win, resampling, opt != NULL && opt->boundless, dst, &plain))
        return raster_read_into(ds, plain, opt, dst);
    return raster_read_resampled_into(ds, win, resampling, opt, dst);
}

raster_status_t
raster_read_masks_window_into(raster_dataset_t *ds, raster_window_f_t win, raster_resampling_t resampling,
                              const raster_masks_options_t *opt, const raster_view_t *pixels,
                              const raster_view_t *dst, int *no_mask_out)
{
    RASTER_CHECK(ds != NULL, RASTER_E_INVALID_ARG, "raster_read_masks_window_into: NULL dataset");
    RASTER_CHECK(dst != NULL, RASTER_E_INVALID_ARG, "%s: NULL mask destination", ds->path);
    raster_window_t plain;
    if (window_plan(win, resampling, opt != NULL && opt->boundless, dst, &plain))
        return raster_read_masks_into(ds, plain, opt, pixels, dst, no_mask_out);
    return raster_read_masks_resampled_into(ds, win, resampling, opt, dst, no_mask_out);
}
