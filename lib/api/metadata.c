/*
 * metadata.c - what GDAL knows about a dataset besides its pixels: tags,
 * color tables, overviews, band texts, GCPs, file lists, checksums,
 * statistics and the dataset's position in longitude/latitude.
 *
 * rasterio answers these from its GDAL handle; so does this file, with the
 * same GDAL calls, so rasterloader's answers are rasterio's (the Python
 * class only turns them into rasterio's types).  None of it is on the read
 * path: every call borrows one of the dataset's GDAL handles
 * in a call frame of gdal_env.c (raster__dataset_gdal_frame() of the
 * dataset layer: the fork gate, GDAL's messages captured, so forks and
 * replaced files follow the reader's rules), and copies what it needs into one allocation the
 * caller frees with raster_free(): no pointer into a GDAL handle ever
 * leaves the call, because the handle goes back to the stack (and to other
 * threads) when the call returns.
 */
#include "api.h"

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <ogr_srs_api.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

void
raster_free(void *p)
{
    free(p);
}

/* ------------------------------ one call ------------------------------- */

/* A metadata call: a reference on the dataset, the gate, one handle, GDAL's
 * messages captured (they go into our errors, never to stderr). */
typedef struct meta_call {
    raster_dataset_t *ds;
    GDALDatasetH h;
    raster__gdal_frame_t frame;
} meta_call_t;

static raster_status_t
args_check(const raster_dataset_t *ds, int band, int band0_ok, const char *fn)
{
    RASTER_CHECK(ds != NULL, RASTER_E_INVALID_ARG, "%s: NULL dataset", fn);
    RASTER_CHECK(!raster__dataset_closed(ds), RASTER_E_CLOSED, "%s: dataset is closed", raster__dataset_path(ds));
    RASTER_CHECK_CAUSE((band0_ok && band == 0) || (band >= 1 && band <= raster__dataset_info(ds)->band_count),
                       RASTER_E_BOUNDS, RASTER_CAUSE_BAND_INDEX, "%s: band %d does not exist (the file has %d)",
                       raster__dataset_path(ds), band, raster__dataset_info(ds)->band_count);
    return RASTER_OK;
}

static raster_status_t
call_begin(raster_dataset_t *ds, int band, int band0_ok, const char *fn, meta_call_t *c)
{
    RASTER_TRY(args_check(ds, band, band0_ok, fn));
    c->ds = raster_dataset_retain(ds);
    const raster_status_t st = raster__dataset_gdal_frame(ds, &c->frame);
    if (st != RASTER_OK) {
        raster_dataset_release(ds);
        return st;               /* the message names the file and GDAL's cause */
    }
    c->h = c->frame.handle;
    return RASTER_OK;
}

static raster_status_t
call_end(meta_call_t *c, raster_status_t st)
{
    raster__gdal_frame_leave(&c->frame, st);
    raster_dataset_release(c->ds);
    return st;
}

/* The object a call asks: band 0 is the dataset. */
static GDALMajorObjectH
object_of(const meta_call_t *c, int band)
{
    return band == 0 ? (GDALMajorObjectH)c->h : (GDALMajorObjectH)GDALGetRasterBand(c->h, band);
}

/* What GDAL said during the call (gdal_env.c's capture). */
static const char *
gdal_detail(void)
{
    return raster__gdal_capture_detail();
}

/* ------------------------------ packing -------------------------------- */

/* A copy of 'n' strings as one NULL-terminated array followed by the bytes
 * (one raster_free() releases all of it).  NULL entries become "". */
static char **
strings_pack(const char *const *items, int n)
{
    size_t nbytes = ((size_t)n + 1) * sizeof(char *);
    for (int i = 0; i < n; i++)
        nbytes += strlen(items[i] ? items[i] : "") + 1;
    char **out = malloc(nbytes);
    if (out == NULL)
        return NULL;
    char *p = (char *)(out + n + 1);
    for (int i = 0; i < n; i++) {
        const char *s = items[i] ? items[i] : "";
        const size_t len = strlen(s) + 1;
        memcpy(p, s, len);
        out[i] = p;
        p += len;
    }
    out[n] = NULL;
    return out;
}

static raster_status_t
pack_list(const meta_call_t *c, CSLConstList list, char ***out)
{
    *out = strings_pack((const char *const *)list, CSLCount(list));
    RASTER_CHECK(*out != NULL, RASTER_E_NOMEM, "%s: out of memory", raster__dataset_path(c->ds));
    return RASTER_OK;
}

static raster_status_t
pack_string(const meta_call_t *c, const char *s, char **out)
{
    *out = strdup(s ? s : "");
    RASTER_CHECK(*out != NULL, RASTER_E_NOMEM, "%s: out of memory", raster__dataset_path(c->ds));
    return RASTER_OK;
}

static const char *
domain_or_default(const char *domain)
{
    return domain != NULL && domain[0] != '\0' ? domain : NULL;
}

/* ------------------------------ tags ----------------------------------- */

/*
 * GDAL < 3.7 marks an int8 band with PIXELTYPE=SIGNEDBYTE in the band's
 * IMAGE_STRUCTURE domain; GDAL >= 3.7 (rasterio's) has an Int8 type and no
 * such item.  rasterloader reports int8 bands as the newer GDAL does, so
 * tags() and tag_namespaces() agree with rasterio whichever GDAL is linked.
 */
static int
hidden_item(const raster_dataset_t *ds, int band, const char *domain, const char *item)
{
    return band > 0 && raster__dataset_band(ds, band)->dtype == RASTER_I8 && domain != NULL &&
           strcmp(domain, "IMAGE_STRUCTURE") == 0 && strncmp(item, "PIXELTYPE=", 10) == 0;
}

/* 'list' without the hidden items, as a packed list. */
static raster_status_t
pack_visible(const meta_call_t *c, int band, const char *domain, CSLConstList list, char ***out)
{
    const int n = CSLCount(list);
    const char **keep = malloc(((size_t)n + 1) * sizeof *keep);
    RASTER_CHECK(keep != NULL, RASTER_E_NOMEM, "%s: out of memory", raster__dataset_path(c->ds));
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!hidden_item(c->ds, band, domain, list[i]))
            keep[k++] = list[i];
    *out = strings_pack(keep, k);
    free(keep);
    RASTER_CHECK(*out != NULL, RASTER_E_NOMEM, "%s: out of memory", raster__dataset_path(c->ds));
    return RASTER_OK;
}

raster_status_t
raster_metadata(raster_dataset_t *ds, int band, const char *domain, char ***items_out)
{
    RASTER_CHECK(items_out != NULL, RASTER_E_INVALID_ARG, "raster_metadata: NULL argument");
    *items_out = NULL;
    meta_call_t c;
    RASTER_TRY(call_begin(ds, band, 1, "raster_metadata", &c));
    const char *dom = domain_or_default(domain);
    CSLConstList md = GDALGetMetadata(object_of(&c, band), dom);
    return call_end(&c, pack_visible(&c, band, dom, md, items_out));
}

raster_status_t
raster_metadata_item(raster_dataset_t *ds, int band, int overview, const char *key,
                     const char *domain, char **value_out)
{
    RASTER_CHECK(value_out != NULL && key != NULL, RASTER_E_INVALID_ARG,
                 "raster_metadata_item: NULL argument");
    *value_out = NULL;
    meta_call_t c;
    RASTER_TRY(call_begin(ds, band, overview < 0, "raster_metadata_item", &c));
    GDALMajorObjectH obj = object_of(&c, band);
    raster_status_t st = RASTER_OK;
    if (overview >= 0) {
        GDALRasterBandH b = (GDALRasterBandH)obj;
        obj = overview < GDALGetOverviewCount(b) ? (GDALMajorObjectH)GDALGetOverview(b, overview)
                                                 : NULL;
        if (obj == NULL)
            st = raster__fail(RASTER_E_BOUNDS, "%s: band %d has no overview %d (it has %d)",
                              raster__dataset_path(ds), band, overview, GDALGetOverviewCount(b));
    }
    const char *dom = domain_or_default(domain);
    const char *v = st == RASTER_OK ? GDALGetMetadataItem(obj, key, dom) : NULL;
    if (v != NULL && overview < 0 && strcmp(key, "PIXELTYPE") == 0 &&
        hidden_item(ds, band, dom, "PIXELTYPE="))
        v = NULL;
    if (v != NULL)
        st = pack_string(&c, v, value_out);
    return call_end(&c, st);
}

raster_status_t
raster_metadata_domains(raster_dataset_t *ds, int band, char ***domains_out)
{
    RASTER_CHECK(domains_out != NULL, RASTER_E_INVALID_ARG, "raster_metadata_domains: NULL argument");
    *domains_out = NULL;
    meta_call_t c;
    RASTER_TRY(call_begin(ds, band, 1, "raster_metadata_domains", &c));
    GDALMajorObjectH obj = object_of(&c, band);
    /* GTiff lists RPC after DERIVED_SUBDATASETS until the RPC domain has been
     * read on the handle, and before it from then on; rasterio reads it when
     * it opens a dataset, so read it first for the list to be in its order
     * (a handle of ours may not have read it yet). */
    if (band == 0)
        (void)GDALGetMetadata(c.h, "RPC");
    char **list = GDALGetMetadataDomainList(obj);
    /* A domain that holds only hidden items is not listed either. */
    int k = 0;
    for (int i = 0; list != NULL && list[i] != NULL; i++) {
        CSLConstList md = GDALGetMetadata(obj, list[i]);
        int visible = CSLCount(md) == 0;
        for (int j = 0; md != NULL && md[j] != NULL && !visible; j++)
            visible = !hidden_item(ds, band, list[i], md[j]);
        if (visible)
            list[k++] = list[i];
        else
            CPLFree(list[i]);
    }
    if (list != NULL)
        list[k] = NULL;
    const raster_status_t st = pack_list(&c, list, domains_out);
    CSLDestroy(list);
    return call_end(&c, st);
}

raster_status_t
raster_file_list(raster_dataset_t *ds, char ***files_out)
{
    RASTER_CHECK(files_out != NULL, RASTER_E_INVALID_ARG, "raster_file_list: NULL argument");
    *files_out = NULL;
    meta_call_t c;
    RASTER_TRY(call_begin(ds, 0, 1, "raster_file_list", &c));
    char **list = GDALGetFileList(c.h);
    const raster_status_t st = pack_list(&c, list, files_out);
    CSLDestroy(list);
    return call_end(&c, st);
}

/* ------------------------------ bands ---------------------------------- */

raster_status_t
raster_band_text(raster_dataset_t *ds, int band, raster_band_text_t which, char **text_out)
{
    RASTER_CHECK(text_out != NULL, RASTER_E_INVALID_ARG, "raster_band_text: NULL argument");
    *text_out = NULL;
    RASTER_CHECK(which == RASTER_TEXT_DESCRIPTION || which == RASTER_TEXT_UNITS,
                 RASTER_E_INVALID_ARG, "raster_band_text: unknown text %d", (int)which);
    meta_call_t c;
    RASTER_TRY(call_begin(ds, band, 0, "raster_band_text", &c));
    GDALRasterBandH b = GDALGetRasterBand(c.h, band);
    const char *s = which == RASTER_TEXT_DESCRIPTION ? GDALGetDescription(b) : GDALGetRasterUnitType(b);
    return call_end(&c, pack_string(&c, s, text_out));
}

raster_status_t
raster_band_scale_offset(raster_dataset_t *ds, int band, double *scale_out, double *offset_out)
{
    RASTER_CHECK(scale_out != NULL && offset_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_band_scale_offset: NULL argument");
    meta_call_t c;
    RASTER_TRY(call_begin(ds, band, 0, "raster_band_scale_offset", &c));
    GDALRasterBandH b = GDALGetRasterBand(c.h, band);
    *scale_out = GDALGetRasterScale(b, NULL);    /* GDAL's defaults: 1 and 0 */
    *offset_out = GDALGetRasterOffset(b, NULL);
    return call_end(&c, RASTER_OK);
}

raster_status_t
raster_band_colormap(raster_dataset_t *ds, int band, int16_t **entries_out, int *count_out)
{
    RASTER_CHECK(entries_out != NULL && count_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_band_colormap: NULL argument");
    *entries_out = NULL;
    *count_out = -1;
    meta_call_t c;
    RASTER_TRY(call_begin(ds, band, 0, "raster_band_colormap", &c));
    GDALColorTableH t = GDALGetRasterColorTable(GDALGetRasterBand(c.h, band));
    if (t == NULL)
        return call_end(&c, RASTER_OK);
    const int n = GDALGetColorEntryCount(t);
    int16_t *e = malloc(((size_t)(n > 0 ? n : 0) * 4 + 1) * sizeof *e);
    if (e == NULL)
        return call_end(&c, raster__fail(RASTER_E_NOMEM, "%s: out of memory", raster__dataset_path(ds)));
    for (int i = 0; i < n; i++) {
        GDALColorEntry ce;
        GDALGetColorEntryAsRGB(t, i, &ce);   /* what rasterio reports, whatever the palette type */
        e[4 * i] = ce.c1, e[4 * i + 1] = ce.c2, e[4 * i + 2] = ce.c3, e[4 * i + 3] = ce.c4;
    }
    *entries_out = e;
    *count_out = n;
    return call_end(&c, RASTER_OK);
}

raster_status_t
raster_band_overviews(raster_dataset_t *ds, int band, int **factors_out, int *count_out)
{
    RASTER_CHECK(factors_out != NULL && count_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_band_overviews: NULL argument");
    *factors_out = NULL;
    *count_out = 0;
    meta_call_t c;
    RASTER_TRY(call_begin(ds, band, 0, "raster_band_overviews", &c));
    GDALRasterBandH b = GDALGetRasterBand(c.h, band);
    const int n = GDALGetOverviewCount(b);
    int *f = malloc(((size_t)(n > 0 ? n : 0) + 1) * sizeof *f);
    if (f == NULL)
        return call_end(&c, raster__fail(RASTER_E_NOMEM, "%s: out of memory", raster__dataset_path(ds)));
    for (int i = 0; i < n; i++) {
        const int xs = GDALGetRasterBandXSize(GDALGetOverview(b, i));
        /* rasterio: int(round(width / overview width)); Python rounds half to
         * even, as nearbyint() does in the default rounding mode. */
        f[i] = xs > 0 ? (int)nearbyint((double)raster__dataset_info(ds)->width / (double)xs) : 0;
    }
    *factors_out = f;
    *count_out = n;
    return call_end(&c, RASTER_OK);
}

/* ------------------------------ GCPs ----------------------------------- */

static raster_status_t
gcps_pack(const meta_call_t *c, const GDAL_GCP *g, int n, raster_gcp_t **out)
{
    size_t nbytes = ((size_t)n + 1) * sizeof(raster_gcp_t);
    for (int i = 0; i < n; i++)
        nbytes += strlen(g[i].pszId ? g[i].pszId : "") + strlen(g[i].pszInfo ? g[i].pszInfo : "") + 2;
    raster_gcp_t *r = malloc(nbytes);
    RASTER_CHECK(r != NULL, RASTER_E_NOMEM, "%s: out of memory", raster__dataset_path(c->ds));
    char *p = (char *)(r + n + 1);
    for (int i = 0; i < n; i++) {
        const char *id = g[i].pszId ? g[i].pszId : "", *info = g[i].pszInfo ? g[i].pszInfo : "";
        const size_t lid = strlen(id) + 1, linfo = strlen(info) + 1;
        memcpy(p, id, lid);
        memcpy(p + lid, info, linfo);
        r[i] = (raster_gcp_t){p, p + lid, g[i].dfGCPPixel, g[i].dfGCPLine, g[i].dfGCPX, g[i].dfGCPY,
                              g[i].dfGCPZ};
        p += lid + linfo;
    }
    *out = r;
    return RASTER_OK;
}

raster_status_t
raster_gcps(raster_dataset_t *ds, raster_gcp_t **gcps_out, int *count_out, char **crs_wkt_out)
{
    RASTER_CHECK(gcps_out != NULL && count_out != NULL && crs_wkt_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_gcps: NULL argument");
    *gcps_out = NULL;
    *count_out = 0;
    *crs_wkt_out = NULL;
    meta_call_t c;
    RASTER_TRY(call_begin(ds, 0, 1, "raster_gcps", &c));
    const int n = GDALGetGCPCount(c.h);
    raster_status_t st = gcps_pack(&c, GDALGetGCPs(c.h), n, gcps_out);
    if (st == RASTER_OK && (st = pack_string(&c, GDALGetGCPProjection(c.h), crs_wkt_out)) != RASTER_OK) {
        free(*gcps_out);
        *gcps_out = NULL;
    }
    if (st == RASTER_OK)
        *count_out = n;
    return call_end(&c, st);
}

/* ------------------------------ checksum, statistics ------------------- */

/*
 * GDAL < 3.7 has no Int8: its GDALChecksumImage() sums a signed byte band's
 * pixels as unsigned (0..255), where GDAL >= 3.7 (rasterio's) sums them as
 * -128..127.  For int8 bands we run GDAL's integer checksum ourselves on the
 * pixels as rasterloader reads them: each pixel's remainder modulo the next
 * of 11 primes (C's signed remainder), kept to 16 bits after every pixel,
 * row after row.  Runs outside the fork gate: raster_read_into() enters it.
 */
static raster_status_t
checksum_i8(raster_dataset_t *ds, int band, raster_window_t win, int *sum_out)
{
    static const int primes[11] = {7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43};
    /* Chunks of about 1 MiB of rows: a read per row would decode each
     * segment's rows again for every row. */
    int64_t rows = ((int64_t)1 << 20) / win.width;
    rows = rows < 1 ? 1 : rows > win.height ? win.height : rows;
    int8_t *buf = malloc((size_t)(rows * win.width));
    RASTER_CHECK(buf != NULL, RASTER_E_NOMEM, "%s: out of memory", raster__dataset_path(ds));
    raster_read_options_t o;
    raster_read_options_init(&o);
    o.bands = &band;
    o.band_count = 1;
    int sum = 0, k = 0;
    raster_status_t st = RASTER_OK;
    for (int64_t y = 0; y < win.height && st == RASTER_OK; y += rows) {
        const int64_t n = win.height - y < rows ? win.height - y : rows;
        const raster_window_t w = {win.col_off, win.row_off + y, win.width, n};
        const raster_view_t v = raster_view_hwc(buf, RASTER_I8, n, win.width, 1);
        st = raster_read_into(ds, w, &o, &v);
        for (int64_t i = 0; st == RASTER_OK && i < n * win.width; i++) {
            sum += buf[i] % primes[k++];
            if (k > 10)
                k = 0;
            sum &= 0xffff;
        }
    }
    free(buf);
    if (st == RASTER_OK)
        *sum_out = sum;
    return st;
}

raster_status_t
raster_band_checksum(raster_dataset_t *ds, int band, raster_window_t win, int *checksum_out)
{
    RASTER_CHECK(checksum_out != NULL, RASTER_E_INVALID_ARG, "raster_band_checksum: NULL argument");
    *checksum_out = 0;
    RASTER_TRY(args_check(ds, band, 0, "raster_band_checksum"));
    RASTER_CHECK(win.col_off >= 0 && win.row_off >= 0 && win.width >= 0 && win.height >= 0 &&
                     win.col_off + win.width <= raster__dataset_info(ds)->width &&
                     win.row_off + win.height <= raster__dataset_info(ds)->height,
                 RASTER_E_BOUNDS, "%s: checksum window (col %lld, row %lld, %lldx%lld) is outside the "
                 "%lldx%lld raster",
                 raster__dataset_path(ds), (long long)win.col_off, (long long)win.row_off, (long long)win.width,
                 (long long)win.height, (long long)raster__dataset_info(ds)->width, (long long)raster__dataset_info(ds)->height);
    if (win.width == 0 || win.height == 0)
        return RASTER_OK;
    if (raster__dataset_band(ds, band)->dtype == RASTER_I8) {
        raster_dataset_retain(ds);
        const raster_status_t st = checksum_i8(ds, band, win, checksum_out);
        raster_dataset_release(ds);
        return st;
    }
    meta_call_t c;
    RASTER_TRY(call_begin(ds, band, 0, "raster_band_checksum", &c));
    const int sum = GDALChecksumImage(GDALGetRasterBand(c.h, band), (int)win.col_off, (int)win.row_off,
                                      (int)win.width, (int)win.height);
    /* GDAL >= 3.6 returns -1 when a read fails (a checksum is 0..65535). */
    raster_status_t st = RASTER_OK;
    if (sum < 0 || CPLGetLastErrorType() >= CE_Failure)
        st = raster__fail(RASTER_E_CORRUPT, "%s: GDAL could not checksum band %d, window (col %lld, "
                          "row %lld, %lldx%lld): %s",
                          raster__dataset_path(ds), band, (long long)win.col_off, (long long)win.row_off,
                          (long long)win.width, (long long)win.height, gdal_detail());
    else
        *checksum_out = sum;
    return call_end(&c, st);
}

raster_status_t
raster_band_statistics(raster_dataset_t *ds, int band, int flags, raster_stats_t *stats_out)
{
    RASTER_CHECK(stats_out != NULL, RASTER_E_INVALID_ARG, "raster_band_statistics: NULL argument");
    meta_call_t c;
    RASTER_TRY(call_begin(ds, band, 0, "raster_band_statistics", &c));
    GDALRasterBandH b = GDALGetRasterBand(c.h, band);
    const int approx = (flags & RASTER_STATS_APPROX) != 0;
    if (flags & RASTER_STATS_CLEAR)
        GDALDatasetClearStatistics(c.h);
    double mn = 0, mx = 0, mean = 0, sd = 0;
    const CPLErr err = (flags & RASTER_STATS_COMPUTE)
                           ? GDALComputeRasterStatistics(b, approx, &mn, &mx, &mean, &sd, NULL, NULL)
                           : GDALGetRasterStatistics(b, approx, TRUE, &mn, &mx, &mean, &sd);
    raster_status_t st = RASTER_OK;
    if (err != CE_None) {
        /* GDAL says "Failed to compute statistics, no valid pixels found in
         * sampling." for an all-nodata band: a property of the data, not damage. */
        const char *m = gdal_detail();
        st = raster__fail(raster__gdal_capture_said(RASTER__GDAL_SAID_NO_VALID_PIXELS) ? RASTER_E_INVALID_ARG
                                                                                      : RASTER_E_CORRUPT,
                          "%s: no statistics for band %d: %s", raster__dataset_path(ds), band, m);
    } else {
        *stats_out = (raster_stats_t){mn, mx, mean, sd};
    }
    return call_end(&c, st);
}

/* ------------------------------ lnglat --------------------------------- */

static raster_status_t
lnglat_gated(const raster_dataset_t *ds, double x, double y, double *lng, double *lat)
{
    OGRSpatialReferenceH src = OSRNewSpatialReference(NULL), dst = OSRNewSpatialReference(NULL);
    OGRCoordinateTransformationH ct = NULL;
    raster_status_t st = RASTER_OK;
    if (src == NULL || dst == NULL || OSRSetFromUserInput(src, raster__dataset_info(ds)->crs_wkt) != OGRERR_NONE ||
        OSRImportFromEPSG(dst, 4326) != OGRERR_NONE) {
        st = raster__fail(RASTER_E_INVALID_ARG, "%s: cannot read the dataset's CRS: %s", raster__dataset_path(ds),
                          gdal_detail());
        goto done;
    }
    /* rasterio's CRS objects use the GIS order: x = longitude, y = latitude. */
    OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(dst, OAMS_TRADITIONAL_GIS_ORDER);
    ct = OCTNewCoordinateTransformation(src, dst);
    if (ct == NULL || !OCTTransform(ct, 1, &x, &y, NULL) || !isfinite(x) || !isfinite(y)) {
        st = raster__fail(RASTER_E_INVALID_ARG, "%s: cannot transform (%g, %g) to longitude/latitude: %s",
                          raster__dataset_path(ds), x, y, gdal_detail());
        goto done;
    }
    *lng = x;
    *lat = y;
done:
    if (ct != NULL)
        OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(src);
    OSRDestroySpatialReference(dst);
    return st;
}

raster_status_t
raster_to_lnglat(raster_dataset_t *ds, double x, double y, double *lng_out, double *lat_out)
{
    RASTER_CHECK(ds != NULL && lng_out != NULL && lat_out != NULL, RASTER_E_INVALID_ARG,
                 "raster_to_lnglat: NULL argument");
    RASTER_CHECK(!raster__dataset_closed(ds), RASTER_E_CLOSED, "%s: dataset is closed", raster__dataset_path(ds));
    RASTER_CHECK(raster__dataset_info(ds)->crs_wkt[0] != '\0', RASTER_E_INVALID_ARG,
                 "%s: the dataset has no CRS, so no longitude/latitude", raster__dataset_path(ds));
    raster_dataset_retain(ds);
    raster__gdal_frame_t f;
    raster__gdal_frame_enter(&f);
    const raster_status_t st = raster__gdal_frame_leave(&f, lnglat_gated(ds, x, y, lng_out, lat_out));
    raster_dataset_release(ds);
    return st;
}
