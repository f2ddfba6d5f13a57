/*
 * warped_vrt.c - raster_open_warped(): GDAL's warper over a source dataset,
 * built with the options rasterio 1.4's WarpedVRT sets, read through the
 * GDAL reader like any other dataset.
 *
 * What rasterio does (rasterio/_warp.pyx, WarpedVRTReaderBase.__init__), and
 * so what this file does, step by step:
 *   - warp options from GDALCreateWarpOptions(): UNIFIED_SRC_NODATA=YES, the
 *     caller's extras upper-cased, INIT_DEST=NO_DATA (or 0 without an output
 *     nodata) unless given, the working dtype, the resampling, the memory
 *     limit, source/destination alpha bands, source/destination nodata for
 *     every band, bands 1..count;
 *   - no output grid given: GDALAutoCreateWarpedVRTEx() (GDAL's
 *     GDALSuggestedWarpOutput2 picks it) with the tolerance as a float and the
 *     extras as transformer options too;
 *   - a grid given (transform, width, height; or width and height, the
 *     transform then scaled from the source's or from GDAL's suggestion):
 *     GDALCreateGenImgProjTransformer3 + GDALCreateApproxTransformer, then
 *     GDALCreateWarpedVRT() and GDALSetProjection();
 *   - then every band's nodata set to the output nodata (or deleted), and the
 *     dst_alpha band marked alpha.
 *
 * GDAL handles are not shared between threads, and the GDAL reader keeps one
 * per thread: this file is the reader's "opener" for a warped dataset, so
 * each new handle (another thread, a forked child) is a warped VRT rebuilt
 * from the resolved options over a new handle of the source.  The VRT takes
 * a reference on its source handle; ours is dropped at once, so closing the
 * VRT closes its source.  Nothing is cached here beyond GDAL's own block
 * cache.  Sources with GCPs or RPCs only (no geotransform) are not handled
 * specially: GDAL's default transformer decides.
 *
 * Layer: lib/api/, above the dataset layer (raster__dataset_open_custom,
 * raster__dataset_gdal_handle_new: lib/read/read.h) and gdal_env.c (the fork gate and GDAL's message capture, which keeps
 * GDAL's words off stderr; the messages here quote CPLGetLastErrorMsg()).
 */
#include "api.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <gdalwarper.h>
#include <ogr_srs_api.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct raster__warp {
    raster_dataset_t *src;      /* retained */
    int resampling;
    float tolerance;            /* rasterio's cdef float c_tolerance */
    int auto_grid;              /* 1: GDALAutoCreateWarpedVRTEx */
    int snap_grid;              /* 1: same CRS, GDAL's grid is the source's up to rounding */
    double src_gt[6], dst_gt[6];
    int width, height;
    int warp_mem_limit_mb;
    GDALDataType working_type;
    char *src_wkt, *dst_wkt;    /* owned; NULL = none */
    char **extras;              /* owned CSL: warp options (and transformer options) */
    int dst_alpha_param;        /* the caller's dst_alpha: marked alpha after creation */
    raster_warp_info_t info;    /* resolved; strings point into the fields above */
    char init_dest[16];
};

void
raster_warp_options_init(raster_warp_options_t *opt)
{
    if (opt == NULL)
        return;
    memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
    opt->tolerance = 0.125;
    opt->init_dest_nodata = 1;
    opt->working_dtype = -1;
}

/* Frees what raster_open_warped() keeps (the warp_free of a warped dataset). */
static void
warp_free(struct raster__warp *w)
{
    if (w == NULL)
        return;
    raster_dataset_release(w->src);
    CPLFree(w->src_wkt);
    CPLFree(w->dst_wkt);
    CSLDestroy(w->extras);
    free(w);
}

/* ------------------------------ options -------------------------------- */

/* A working type GDAL computes in: the one table's type of the same
 * values (gdal_env.c), GDT_Unknown where GDAL has none (int8 before 3.7,
 * float16) or 'dt' is no dtype. */
static GDALDataType
gdal_type(int dt)
{
    return (GDALDataType)raster__gdal_type((raster_dtype_t)dt);
}

/* WKT (CPLMalloc'd) of any CRS text OSRSetFromUserInput takes. */
static raster_status_t
wkt_of(const char *path, const char *what, const char *user, char **out)
{
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    const OGRErr err = srs ? OSRSetFromUserInput(srs, user) : OGRERR_FAILURE;
    *out = NULL;
    if (err == OGRERR_NONE)
        OSRExportToWkt(srs, out);
    if (srs)
        OSRDestroySpatialReference(srs);
    RASTER_CHECK(err == OGRERR_NONE && *out != NULL, RASTER_E_INVALID_ARG,
                 "%s: %s %.200s is not a CRS GDAL knows: %s", path, what, user, CPLGetLastErrorMsg());
    return RASTER_OK;
}

/* rasterio's CRS equality for case 2 (same CRS, only a new size). */
static int
same_crs(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    OGRSpatialReferenceH sa = OSRNewSpatialReference(a), sb = OSRNewSpatialReference(b);
    const int same = sa && sb && OSRIsSame(sa, sb);
    if (sa)
        OSRDestroySpatialReference(sa);
    if (sb)
        OSRDestroySpatialReference(sb);
    return same;
}

/* KEY=VALUE with both upper-cased, as rasterio's str(val).upper(). */
static raster_status_t
extras_copy(const char *path, const char *const *in, char ***out)
{
    for (; in != NULL && *in != NULL; in++) {
        const char *eq = strchr(*in, '=');
        RASTER_CHECK(eq != NULL && eq != *in, RASTER_E_INVALID_ARG,
                     "%s: warp option '%.100s' is not KEY=VALUE", path, *in);
        char *kv = CPLStrdup(*in);
        for (char *p = kv; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        kv[eq - *in] = '\0';
        *out = CSLSetNameValue(*out, kv, kv + (eq - *in) + 1);
        CPLFree(kv);
    }
    return RASTER_OK;
}

/* rasterio's Affine product a * b (the same operations, so the same bits). */
static void
affine_mul(const double a[6], const double b[6], double out[6])
{
    /* GDAL order: c, a, b, f, d, e -> affine (a, b, c, d, e, f). */
    const double A = a[1], B = a[2], C = a[0], D = a[4], E = a[5], F = a[3];
    const double a2 = b[1], b2 = b[2], c2 = b[0], d2 = b[4], e2 = b[5], f2 = b[3];
    out[1] = A * a2 + B * d2;
    out[2] = A * b2 + B * e2;
    out[0] = A * c2 + B * f2 + C;
    out[4] = D * a2 + E * d2;
    out[5] = D * b2 + E * e2;
    out[3] = D * c2 + E * f2 + F;
}

static void
gt_scale(double sx, double sy, double out[6])
{
    out[0] = 0, out[1] = sx, out[2] = 0, out[3] = 0, out[4] = 0, out[5] = sy;
}

/* rasterio's _calculate_default_transform(src_crs, dst_crs, width, height,
 * *src.bounds, **warp_extras): GDALSuggestedWarpOutput2 for a proxy dataset
 * of the source's size on the grid from_bounds() makes of its bounds. */
static raster_status_t
suggested_grid(const raster_dataset_t *src, const struct raster__warp *w, double gt_out[6], int *nx,
               int *ny)
{
    const int64_t W = raster__dataset_info(src)->width, H = raster__dataset_info(src)->height;
    const double *t = w->src_gt;   /* rasterio: src_dataset.bounds from its own transform */
    const double a = t[1], b = t[2], c = t[0], d = t[4], e = t[5], f = t[3];
    double left, bottom, right, top;
    if (b == 0 && d == 0) {
        left = c, top = f, right = c + a * (double)W, bottom = f + e * (double)H;
    } else {
        const double xs[4] = {c, c + b * H, c + a * W + b * H, c + a * W};
        const double ys[4] = {f, f + e * H, f + d * W + e * H, f + d * W};
        left = right = xs[0], bottom = top = ys[0];
        for (int i = 1; i < 4; i++) {
            left = fmin(left, xs[i]), right = fmax(right, xs[i]);
            bottom = fmin(bottom, ys[i]), top = fmax(top, ys[i]);
        }
    }
    double pgt[6] = {left, (right - left) / (double)W, 0.0, top, 0.0, (bottom - top) / (double)H};
    GDALDriverH mem = GDALGetDriverByName("MEM");
    RASTER_CHECK(mem != NULL, RASTER_E_UNSUPPORTED, "%s: GDAL has no MEM driver", raster__dataset_path(src));
    GDALDatasetH proxy = GDALCreate(mem, "", (int)W, (int)H, 0, GDT_Byte, NULL);
    RASTER_CHECK(proxy != NULL, RASTER_E_NOMEM, "%s: GDAL could not make a proxy dataset: %s", raster__dataset_path(src),
                 CPLGetLastErrorMsg());
    GDALSetGeoTransform(proxy, pgt);
    if (w->src_wkt)
        GDALSetProjection(proxy, w->src_wkt);
    char **opts = NULL;
    opts = CSLSetNameValue(opts, "GCPS_OK", "TRUE");
    opts = CSLSetNameValue(opts, "MAX_GCP_ORDER", "0");
    opts = CSLSetNameValue(opts, "DST_SRS", w->dst_wkt ? w->dst_wkt : "");
    for (char **p = w->extras; p && *p; p++)
        opts = CSLAddString(opts, *p);
    void *tr = GDALCreateGenImgProjTransformer2(proxy, NULL, opts);
    double extent[4] = {0, 0, 0, 0};
    const CPLErr err = tr ? GDALSuggestedWarpOutput2(proxy, GDALGenImgProjTransform, tr, gt_out, nx, ny,
                                                     extent, 0)
                          : CE_Failure;
    if (tr)
        GDALDestroyGenImgProjTransformer(tr);
    CSLDestroy(opts);
    GDALClose(proxy);
    RASTER_CHECK(err == CE_None, RASTER_E_INVALID_ARG, "%s: GDAL found no output grid for the warp: %s",
                 raster__dataset_path(src), CPLGetLastErrorMsg());
    return RASTER_OK;
}

/* Resolve the caller's options into *w, as rasterio does before any GDAL
 * warp call; 'src_h' is a handle of the source (for its bands). */
static raster_status_t
warp_resolve(raster_dataset_t *src, const raster_warp_options_t *o, struct raster__warp *w)
{
    const char *path = raster__dataset_path(src);
    RASTER_CHECK(o->resampling >= 0 && o->resampling <= 14 && o->resampling != 7, RASTER_E_INVALID_ARG,
                 "%s: resampling %d is not one the warper takes (gauss and unknown values are refused, as "
                 "by rasterio)",
                 path, o->resampling);
    RASTER_CHECK(o->width >= 0 && o->height >= 0 && o->width <= INT32_MAX && o->height <= INT32_MAX,
                 RASTER_E_INVALID_ARG, "%s: warp size %lldx%lld is out of range", path,
                 (long long)o->width, (long long)o->height);
    const int count = raster__dataset_info(src)->band_count;
    RASTER_CHECK(o->src_alpha >= 0 && o->src_alpha <= count && o->dst_alpha >= 0 &&
                     o->dst_alpha <= count + 1,
                 RASTER_E_INVALID_ARG, "%s: alpha band (src %d, dst %d) out of range for %d band(s)", path,
                 o->src_alpha, o->dst_alpha, count);
    RASTER_CHECK(o->working_dtype == -1 || gdal_type(o->working_dtype) != GDT_Unknown,
                 RASTER_E_UNSUPPORTED, "%s: working dtype %d is not a GDAL 3.6 type", path,
                 o->working_dtype);
    w->resampling = o->resampling;
    w->tolerance = (float)o->tolerance;
    w->warp_mem_limit_mb = o->warp_mem_limit_mb;
    w->working_type = o->working_dtype == -1 ? GDT_Unknown : gdal_type(o->working_dtype);
    w->dst_alpha_param = o->dst_alpha;

    /* CRSs: rasterio passes src_crs (or the source's) and crs (or src_crs) as WKT. */
    if (o->src_crs != NULL)
        RASTER_TRY(wkt_of(path, "src_crs", o->src_crs, &w->src_wkt));
    else if (raster__dataset_info(src)->crs_wkt && raster__dataset_info(src)->crs_wkt[0])
        w->src_wkt = CPLStrdup(raster__dataset_info(src)->crs_wkt);
    if (o->crs != NULL)
        RASTER_TRY(wkt_of(path, "crs", o->crs, &w->dst_wkt));
    else if (w->src_wkt)
        w->dst_wkt = CPLStrdup(w->src_wkt);

    /* Nodata: src_nodata defaults to the source's, nodata to src_nodata. */
    raster_warp_info_t *in = &w->info;
    const raster_band_info_t *b1 = raster__dataset_band(src, 1);
    if (o->src_nodata_mode == RASTER_WARP_NODATA_VALUE)
        in->has_src_nodata = 1, in->src_nodata = o->src_nodata;
    else if (o->src_nodata_mode == RASTER_WARP_NODATA_DEFAULT)
        in->has_src_nodata = b1->has_nodata, in->src_nodata = b1->nodata;
    if (o->nodata_mode == RASTER_WARP_NODATA_VALUE)
        in->has_nodata = 1, in->nodata = o->nodata;
    else if (o->nodata_mode == RASTER_WARP_NODATA_DEFAULT)
        in->has_nodata = in->has_src_nodata, in->nodata = in->src_nodata;

    /* GDAL 3.6 takes a NaN nodata for one float32 cannot hold (NaN != NaN) and
     * warps, and types the VRT's bands, in float64; GDAL >= 3.7 (rasterio's
     * 3.10) keeps the bands' float type.  Name that type, as 3.10 resolves it. */
    if (w->working_type == GDT_Unknown &&
        ((in->has_src_nodata && isnan(in->src_nodata)) || (in->has_nodata && isnan(in->nodata)))) {
        const raster_dtype_t dt = b1->dtype;
        int same = dt == RASTER_F32 || dt == RASTER_F64;
        for (int b = 1; b < count; b++)
            same &= raster__dataset_band(src, b + 1)->dtype == dt;
        if (same)
            w->working_type = gdal_type(dt);
    }

    RASTER_TRY(extras_copy(path, o->warp_extras, &w->extras));
    if (o->init_dest_nodata && CSLFetchNameValue(w->extras, "INIT_DEST") == NULL) {
        snprintf(w->init_dest, sizeof w->init_dest, "%s", in->has_nodata ? "NO_DATA" : "0");
        w->extras = CSLSetNameValue(w->extras, "INIT_DEST", w->init_dest);
        in->init_dest = w->init_dest;
    }

    /* Alpha: the source's last alpha band is both alpha bands, unless told. */
    for (int b = 0; b < count; b++)
        if (strcmp(raster__dataset_color_interp(src, b + 1), "alpha") == 0)
            in->src_alpha_band = in->dst_alpha_band = b + 1;
    if (o->add_alpha) {
        RASTER_CHECK(in->src_alpha_band == 0, RASTER_E_INVALID_ARG,
                     "%s: the source already has an alpha band (band %d); adding a new one is not "
                     "supported",
                     path, in->src_alpha_band);
        in->dst_alpha_band = count + 1;
        in->has_nodata = 0;
    }
    if (o->dst_alpha)
        in->dst_alpha_band = o->dst_alpha;
    if (o->src_alpha)
        in->src_alpha_band = o->src_alpha;
    in->src_crs_wkt = w->src_wkt ? w->src_wkt : "";

    /* The four cases of rasterio: GDAL's grid, or one given or derived. */
    memcpy(w->src_gt, o->has_src_transform ? o->src_transform : raster__dataset_info(src)->geotransform, sizeof w->src_gt);
    w->width = (int)o->width, w->height = (int)o->height;
    if (!o->has_transform && (o->width == 0 || o->height == 0)) {
        w->auto_grid = 1;
        /* GDAL >= 3.9 suggests exactly the source's grid for a warp to the same
         * CRS (rasterio 1.4.4's GDAL 3.10 does so on every fixture); 3.6 is off
         * by rounding (9.999999999999998 for 10 m).  TorchGeo reads bounds and
         * res from such a wrap, so keep the source's grid, as 3.10 does. */
        const double *g = raster__dataset_info(src)->geotransform;
        w->snap_grid = raster__dataset_info(src)->has_geotransform && g[2] == 0 && g[4] == 0 &&
                       same_crs(w->src_wkt, w->dst_wkt);
        return RASTER_OK;
    }
    if (o->has_transform && o->width && o->height) {
        memcpy(w->dst_gt, o->transform, sizeof w->dst_gt);
    } else if (same_crs(w->src_wkt, w->dst_wkt)) {
        /* Scaling on the right keeps the origin. */
        double s[6];
        gt_scale((double)raster__dataset_info(src)->width / (double)o->width, (double)raster__dataset_info(src)->height / (double)o->height, s);
        affine_mul(w->src_gt, s, w->dst_gt);
    } else {
        double gt[6], s[6];
        int nx = 0, ny = 0;
        RASTER_TRY(suggested_grid(src, w, gt, &nx, &ny));
        gt_scale((double)nx / (double)o->width, (double)ny / (double)o->height, s);
        affine_mul(gt, s, w->dst_gt);
    }
    return RASTER_OK;
}

/* ------------------------------ building ------------------------------- */

/* rasterio's create_warp_options(). */
static GDALWarpOptions *
warp_options(const struct raster__warp *w, int count)
{
    GDALWarpOptions *wo = GDALCreateWarpOptions();
    char **ex = CSLSetNameValue(wo->papszWarpOptions, "UNIFIED_SRC_NODATA", "YES");
    ex = CSLMerge(ex, w->extras);
    wo->papszWarpOptions = ex;
    wo->eWorkingDataType = w->working_type;
    wo->eResampleAlg = (GDALResampleAlg)w->resampling;
    if (w->warp_mem_limit_mb > 0)
        wo->dfWarpMemoryLimit = (double)w->warp_mem_limit_mb * 1024 * 1024;
    if (w->info.src_alpha_band)
        wo->nSrcAlphaBand = w->info.src_alpha_band;
    if (w->info.dst_alpha_band)
        wo->nDstAlphaBand = w->info.dst_alpha_band;
    if (w->info.has_src_nodata) {
        wo->padfSrcNoDataReal = CPLMalloc((size_t)count * sizeof(double));
        wo->padfSrcNoDataImag = CPLMalloc((size_t)count * sizeof(double));
        for (int i = 0; i < count; i++)
            wo->padfSrcNoDataReal[i] = w->info.src_nodata, wo->padfSrcNoDataImag[i] = 0.0;
    }
    if (w->info.has_nodata) {
        wo->padfDstNoDataReal = CPLMalloc((size_t)count * sizeof(double));
        wo->padfDstNoDataImag = CPLMalloc((size_t)count * sizeof(double));
        for (int i = 0; i < count; i++)
            wo->padfDstNoDataReal[i] = w->info.nodata, wo->padfDstNoDataImag[i] = 0.0;
    }
    wo->nBandCount = count;
    wo->panSrcBands = CPLMalloc((size_t)count * sizeof(int));
    wo->panDstBands = CPLMalloc((size_t)count * sizeof(int));
    for (int i = 0; i < count; i++)
        wo->panSrcBands[i] = wo->panDstBands[i] = i + 1;
    return wo;
}

static GDALDatasetH
vrt_create(const struct raster__warp *w, GDALDatasetH src, GDALWarpOptions *wo)
{
    if (w->auto_grid)
        return GDALAutoCreateWarpedVRTEx(src, w->src_wkt, w->dst_wkt, (GDALResampleAlg)w->resampling,
                                         (double)w->tolerance, wo, (CSLConstList)w->extras);
    double src_gt[6], dst_gt[6];
    memcpy(src_gt, w->src_gt, sizeof src_gt);
    memcpy(dst_gt, w->dst_gt, sizeof dst_gt);
    void *tr = GDALCreateGenImgProjTransformer3(w->src_wkt, src_gt, w->dst_wkt, dst_gt);
    if (tr == NULL)
        return NULL;
    wo->pfnTransformer = GDALGenImgProjTransform;
    if (w->tolerance > 0.0f) {
        void *approx = GDALCreateApproxTransformer(GDALGenImgProjTransform, tr, (double)w->tolerance);
        if (approx == NULL) {
            GDALDestroyGenImgProjTransformer(tr);
            return NULL;
        }
        GDALApproxTransformerOwnsSubtransformer(approx, TRUE);
        wo->pfnTransformer = GDALApproxTransform;
        tr = approx;
    }
    wo->pTransformerArg = tr;      /* the VRT owns it from here */
    GDALDatasetH vrt = GDALCreateWarpedVRT(src, w->width, w->height, dst_gt, wo);
    if (vrt != NULL)
        GDALSetProjection(vrt, w->dst_wkt ? w->dst_wkt : "");
    return vrt;
}

/* See snap_grid: the source's geotransform when GDAL's suggestion is it up
 * to rounding (same size, every term within 1e-9 of a pixel).  Only the
 * dataset's grid changes; the warper's transformer keeps GDAL's, which maps
 * every pixel centre to the same source pixel. */
static void
grid_snap(const struct raster__warp *w, GDALDatasetH vrt)
{
    const raster_info_t *si = raster__dataset_info(w->src);
    double gt[6];
    if (GDALGetRasterXSize(vrt) != si->width || GDALGetRasterYSize(vrt) != si->height ||
        GDALGetGeoTransform(vrt, gt) != CE_None)
        return;
    const double *g = si->geotransform;
    const double px = fabs(g[1]) > fabs(g[5]) ? fabs(g[1]) : fabs(g[5]);
    for (int i = 0; i < 6; i++)
        if (fabs(gt[i] - g[i]) > 1e-9 * px)
            return;
    double copy[6];
    memcpy(copy, g, sizeof copy);
    GDALSetGeoTransform(vrt, copy);
}

/* The GDAL reader's opener: one warped VRT over a new source handle. */
static raster_status_t
warp_open(void *ctx, void **handle_out)
{
    struct raster__warp *w = ctx;
    void *sh = NULL;
    *handle_out = NULL;
    RASTER_TRY(raster__dataset_gdal_handle_new(w->src, &sh));
    GDALDatasetH src = sh;
    GDALWarpOptions *wo = warp_options(w, raster__dataset_info(w->src)->band_count);
    wo->hSrcDS = src;
    CPLErrorReset();
    GDALDatasetH vrt = vrt_create(w, src, wo);
    GDALDestroyWarpOptions(wo);
    if (vrt == NULL) {
        const raster_status_t st = raster__fail(RASTER_E_INVALID_ARG, "%s: GDAL could not make the warped VRT: %s",
                                                raster__dataset_path(w->src), CPLGetLastErrorMsg());
        GDALClose(src);
        return st;
    }
    /* The VRT referenced the source: let it own the handle. */
    GDALDereferenceDataset(src);
    if (w->snap_grid)
        grid_snap(w, vrt);
    const int n = GDALGetRasterCount(vrt);
    for (int b = 1; b <= n; b++) {
        GDALRasterBandH band = GDALGetRasterBand(vrt, b);
        if (w->info.has_nodata)
            GDALSetRasterNoDataValue(band, w->info.nodata);
        else
            GDALDeleteRasterNoDataValue(band);
    }
    if (w->dst_alpha_param && w->dst_alpha_param <= n)
        GDALSetRasterColorInterpretation(GDALGetRasterBand(vrt, w->dst_alpha_param), GCI_AlphaBand);
    *handle_out = vrt;
    return RASTER_OK;
}

/* ------------------------------ public --------------------------------- */

static raster_status_t
options_copy(const raster_dataset_t *src, const raster_warp_options_t *opt, raster_warp_options_t *o)
{
    raster_warp_options_init(o);
    return raster__options_take(o, sizeof *o, opt, RASTER__FIELD_END(raster_warp_options_t, crs),
                                "raster_warp_options", raster__dataset_path(src));
}

/* Resolves the warp over 'src' (OSR and the suggested grid are GDAL calls
 * too: inside the gate, GDAL's messages in our capture, not on stderr). */
static raster_status_t
warped_resolve(raster_dataset_t *src, const raster_warp_options_t *o, struct raster__warp *w)
{
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    return raster__gdal_frame_leave(&f, warp_resolve(src, o, w));
}

raster_status_t
raster_open_warped(raster_dataset_t *src, const raster_warp_options_t *opt, raster_dataset_t **ds_out)
{
    RASTER_CHECK(src != NULL && ds_out != NULL, RASTER_E_INVALID_ARG, "raster_open_warped: NULL argument");
    *ds_out = NULL;
    const char *src_path = raster__dataset_path(src);
    RASTER_CHECK(!raster__dataset_closed(src), RASTER_E_CLOSED, "%s: dataset is closed", src_path);
    raster_warp_options_t o;
    RASTER_TRY(options_copy(src, opt, &o));
    struct raster__warp *w = calloc(1, sizeof *w);
    RASTER_CHECK(w != NULL, RASTER_E_NOMEM, "%s: out of memory", src_path);
    w->src = raster_dataset_retain(src);
    const size_t n = strlen(src_path) + sizeof "WarpedVRT()";
    char *name = malloc(n);
    raster_status_t st = name != NULL ? warped_resolve(src, &o, w)
                                      : raster__fail(RASTER_E_NOMEM, "%s: out of memory", src_path);
    if (st != RASTER_OK) {
        free(name);
        warp_free(w);
        return st;
    }
    snprintf(name, n, "WarpedVRT(%s)", src_path);
    st = raster__dataset_open_custom(name, warp_open, w, w, warp_free, ds_out);   /* owns w from here */
    free(name);
    return st;
}

raster_status_t
raster_warp_info(const raster_dataset_t *ds, raster_warp_info_t *info_out)
{
    RASTER_CHECK(ds != NULL && info_out != NULL, RASTER_E_INVALID_ARG, "raster_warp_info: NULL argument");
    const struct raster__warp *w = raster__dataset_warp(ds);
    RASTER_CHECK(w != NULL, RASTER_E_INVALID_ARG, "%s: not a warped dataset", raster__dataset_path(ds));
    *info_out = w->info;
    return RASTER_OK;
}
