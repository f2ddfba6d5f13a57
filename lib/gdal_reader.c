/*
 * gdal_reader.c - the reader for everything the native TIFF path does not
 * serve, and the metadata source for every dataset.
 *
 * GDAL dataset handles are not safe to share between threads, so each
 * dataset keeps a small stack of handles: a read pops one (opening a new one
 * only when all are busy), uses it, and pushes it back.  After fork() the
 * parent's handles are forgotten (their file offsets and caches belong to the
 * parent) and the child opens its own.
 *
 * When the destination dtype is the band's own and nothing is scaled, GDAL
 * writes straight into the caller's view through GDALDatasetRasterIOEx with
 * pixel/line/band spacing: one write per output byte.  Otherwise it reads
 * the file's dtype into per-thread scratch, a band of rows at a time, and
 * place.c converts; GDAL's own conversion is not used, so both readers share
 * one set of rounding rules (see dtype.c).
 */
#include "internal.h"

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct raster__gdal {
    pthread_mutex_t mu;
    pid_t pid;                  /* process the handles below belong to */
    GDALDatasetH *idle;         /* owned: handles not in use */
    int idle_count, idle_cap;
    const char *path;           /* view of ds->path */
    int have_id;                /* a local file: dev/ino of what was opened */
    uint64_t dev, ino;
    int huge_block_band;        /* 1-based band whose blocks are too large, or 0 */
    double huge_block_nbytes;
    raster__gdal_opener_fn opener;  /* NULL: GDALOpenEx(path); else makes each handle */
    void *opener_ctx;
};

/*
 * Fork gate.  GDAL keeps process-wide mutexes (the block cache, the driver
 * manager, dataset lists); a fork() while another thread is inside GDAL
 * leaves the child with those mutexes locked by a thread that does not
 * exist there, and the child's first read deadlocks (check_fork found it).
 * Every GDAL call of the library runs inside the gate, and a pthread_atfork
 * handler closes it: fork() waits until no thread is inside a GDAL call and
 * keeps new ones out until it returns, so the child inherits GDAL with every
 * lock free.  A closing gate lets no new thread in, so a stream of reads
 * cannot starve a fork; a thread must therefore never enter twice.  Not a
 * pthread_rwlock: its state after fork() counts the parent's waiting
 * readers, and unlocking it in the child left the child's reads blocked.
 * Here the child simply starts with a fresh, open gate.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inside;                 /* threads in a GDAL call */
    int closing;                /* a fork() is waiting or under way */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
static pthread_once_t gdal_once = PTHREAD_ONCE_INIT;

static void
gate_prepare(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.closing++;
    while (gate.inside > 0)
        pthread_cond_wait(&gate.cv, &gate.mu);
    /* gate.mu stays locked across fork(): nobody enters or leaves. */
}

static void
gate_parent(void)
{
    gate.closing--;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

static void
gate_child(void)
{
    /* One thread, nobody inside: new objects, no inherited waiters. */
    pthread_mutex_init(&gate.mu, NULL);
    pthread_cond_init(&gate.cv, NULL);
    gate.inside = 0;
    gate.closing = 0;
}

static void
gdal_register(void)
{
    pthread_atfork(gate_prepare, gate_parent, gate_child);
    GDALAllRegister();
}

void
raster__gdal_enter(void)
{
    pthread_once(&gdal_once, gdal_register);
    pthread_mutex_lock(&gate.mu);
    while (gate.closing > 0)
        pthread_cond_wait(&gate.cv, &gate.mu);
    gate.inside++;
    pthread_mutex_unlock(&gate.mu);
}

void
raster__gdal_leave(void)
{
    pthread_mutex_lock(&gate.mu);
    if (--gate.inside == 0 && gate.closing > 0)
        pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

/*
 * GDAL's messages during one call, kept per thread instead of printed.  The
 * last message is the driver's summary ("IReadBlock failed ..."); over HTTP
 * the cause came first ("Request for 2942702-3506603 failed with
 * response_code=500", "CURL error: Operation timed out"), so a message names
 * both.  GDAL's retry notices (warnings, one per GDAL_HTTP_MAX_RETRY retry)
 * are counted so the message can say that retries were spent.
 */
typedef struct gdal_errs {
    int failures;               /* CE_Failure or worse since GDAL_QUIET_BEGIN */
    int network;                /* one of them came from the HTTP layer */
    int retries;                /* "Retrying again in ..." notices */
    char first[320];            /* the first failure's text */
    char detail[1024];          /* gdal_msg()'s result */
} gdal_errs_t;

static _Thread_local gdal_errs_t gdal_errs;

/* A failure of GDAL's network layer (/vsicurl/, /vsis3/, ...): by error
 * number where GDAL gives one (an HTTP status, the object-storage family),
 * else by the words of cpl_vsil_curl.cpp and cpl_http.cpp, which report curl
 * errors, short bodies and a server that ignores Range as CPLE_AppDefined. */
static int
is_network_msg(CPLErrorNum no, const char *m)
{
    if (no == CPLE_HttpResponse || (no >= CPLE_AWSBucketNotFound && no <= CPLE_AWSError))
        return 1;
    return strstr(m, "response_code") || strstr(m, "HTTP") || strstr(m, "CURL") ||
           strstr(m, "curl") || strstr(m, "timed out") || strstr(m, "Connection") ||
           strstr(m, "Could not resolve") || strstr(m, RASTER__GDAL_NO_RANGE_MSG);
}

static void CPL_STDCALL
gdal_errs_handler(CPLErr cls, CPLErrorNum no, const char *msg)
{
    gdal_errs_t *e = &gdal_errs;
    msg = msg ? msg : "";
    if (cls == CE_Warning && strstr(msg, "Retrying"))
        e->retries++;
    if (cls < CE_Failure)
        return;
    if (e->failures++ == 0)
        snprintf(e->first, sizeof e->first, "%s", msg);
    e->network |= is_network_msg(no, msg) != 0;
}

static void
gdal_errs_begin(void)
{
    gdal_errs.failures = gdal_errs.network = gdal_errs.retries = 0;
    gdal_errs.first[0] = '\0';
    CPLPushErrorHandler(gdal_errs_handler);
    CPLErrorReset();
}

/* Run a GDAL call with errors captured instead of printed. */
#define GDAL_QUIET_BEGIN() gdal_errs_begin()
#define GDAL_QUIET_END() CPLPopErrorHandler()

/* The captured detail (valid until the next call on this thread): the first
 * failure, then the last one when it differs, then the retries spent. */
static const char *
gdal_msg(void)
{
    gdal_errs_t *e = &gdal_errs;
    const char *last = CPLGetLastErrorMsg();
    last = (last && last[0]) ? last : "no detail from GDAL";
    if (e->failures > 1 && e->first[0] && strcmp(e->first, last) != 0)
        snprintf(e->detail, sizeof e->detail, "%.319s; then: %.640s", e->first, last);
    else
        snprintf(e->detail, sizeof e->detail, "%.960s", last);
    if (e->retries > 0) {
        const size_t n = strlen(e->detail);
        snprintf(e->detail + n, sizeof e->detail - n,
                 " (after %d retr%s, GDAL_HTTP_MAX_RETRY)", e->retries, e->retries == 1 ? "y" : "ies");
    }
    if (strstr(e->detail, RASTER__GDAL_NO_RANGE_MSG)) {
        const size_t n = strlen(e->detail);
        snprintf(e->detail + n, sizeof e->detail - n, "%s", RASTER__GDAL_NO_RANGE_HINT);
    }
    return e->detail;
}

/* libtiff's and GDAL's words for a valid file with a feature they do not
 * implement (an unknown codec, samples of different sizes, a predictor
 * for 12-bit samples): such a file is RASTER_E_UNSUPPORTED, not damaged. */
static int
is_unsupported_msg(const char *m)
{
    return strstr(m, "missing codec") || strstr(m, "not implemented") ||
           strstr(m, "not supported") || strstr(m, "Cannot handle different values per sample");
}

/* A failed call on a remote dataset whose cause was the network (an HTTP
 * status, a timeout, a short body) is RASTER_E_IO; one that hit a feature
 * GDAL does not implement is RASTER_E_UNSUPPORTED; otherwise 'otherwise'. */
static raster_status_t
gdal_failure_status(const raster_dataset_t *ds, raster_status_t otherwise)
{
    if (gdal_errs.network && raster__path_is_remote(ds->path))
        return RASTER_E_IO;
    return is_unsupported_msg(gdal_msg()) ? RASTER_E_UNSUPPORTED : otherwise;
}

static GDALDatasetH
handle_open(const char *path)
{
    return GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR, NULL, NULL, NULL);
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
        return raster__fail(RASTER_E_IO, "%s: GDAL could not re-open the file: %s", g->path, gdal_msg());
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

raster_status_t
raster__gdal_handle_new(raster_dataset_t *ds, void **handle_out)
{
    GDALDatasetH h = NULL;
    GDAL_QUIET_BEGIN();
    const raster_status_t st = handle_new(ds->gdal, &h);
    GDAL_QUIET_END();
    *handle_out = h;
    return st;
}

/* Take an idle handle or open a new one; NULL with the error set on failure. */
static GDALDatasetH
handle_acquire(struct raster__gdal *g)
{
    GDALDatasetH h = NULL;
    pthread_mutex_lock(&g->mu);
    if (g->pid != getpid()) {
        /* Forked child: the parent's handles share its file offsets and
         * caches; drop them without closing (closing could flush or block
         * on state copied mid-operation) and start over. */
        g->idle_count = 0;
        g->pid = getpid();
    }
    if (g->idle_count > 0)
        h = g->idle[--g->idle_count];
    pthread_mutex_unlock(&g->mu);
    if (h != NULL)
        return h;
    GDAL_QUIET_BEGIN();
    (void)handle_new(g, &h);
    GDAL_QUIET_END();
    return h;
}

static void
handle_release(struct raster__gdal *g, GDALDatasetH h)
{
    pthread_mutex_lock(&g->mu);
    if (g->pid == getpid()) {
        if (g->idle_count == g->idle_cap) {
            const int cap = g->idle_cap ? g->idle_cap * 2 : 4;
            GDALDatasetH *p = realloc(g->idle, (size_t)cap * sizeof *p);
            if (p != NULL)
                g->idle = p, g->idle_cap = cap;
        }
        if (g->idle_count < g->idle_cap) {
            g->idle[g->idle_count++] = h;
            h = NULL;
        }
    }
    pthread_mutex_unlock(&g->mu);
    if (h != NULL) {
        GDAL_QUIET_BEGIN();
        GDALClose(h);
        GDAL_QUIET_END();
    }
}

void
raster__gdal_close(struct raster__gdal *g)
{
    if (g == NULL)
        return;
    if (g->pid == getpid() && g->idle_count > 0) {
        raster__gdal_enter();
        GDAL_QUIET_BEGIN();
        for (int i = 0; i < g->idle_count; i++)
            GDALClose(g->idle[i]);
        GDAL_QUIET_END();
        raster__gdal_leave();
    }
    free(g->idle);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* ------------------------------ metadata ------------------------------- */

static int
dtype_from_gdal(GDALRasterBandH b, raster_dtype_t *out)
{
    switch (GDALGetRasterDataType(b)) {
    case GDT_Byte: {
        /* GDAL < 3.7 has no Int8: signed bytes are Byte with PIXELTYPE=SIGNEDBYTE. */
        const char *pt = GDALGetMetadataItem(b, "PIXELTYPE", "IMAGE_STRUCTURE");
        *out = (pt && strcmp(pt, "SIGNEDBYTE") == 0) ? RASTER_I8 : RASTER_U8;
        return 1;
    }
#if GDAL_VERSION_NUM >= 3070000
    case GDT_Int8: *out = RASTER_I8; return 1;
#endif
    case GDT_UInt16: *out = RASTER_U16; return 1;
    case GDT_Int16: *out = RASTER_I16; return 1;
    case GDT_UInt32: *out = RASTER_U32; return 1;
    case GDT_Int32: *out = RASTER_I32; return 1;
    case GDT_Float32: *out = RASTER_F32; return 1;
    case GDT_Float64: *out = RASTER_F64; return 1;
    default: return 0;
    }
}

/* The GDAL buffer type that holds 'dt' bit for bit (signed bytes travel as Byte). */
static GDALDataType
gdal_type_of(raster_dtype_t dt)
{
    switch (dt) {
    case RASTER_U8: case RASTER_I8: return GDT_Byte;
    case RASTER_U16: return GDT_UInt16;
    case RASTER_I16: return GDT_Int16;
    case RASTER_U32: return GDT_UInt32;
    case RASTER_I32: return GDT_Int32;
    case RASTER_F32: return GDT_Float32;
    case RASTER_F64: return GDT_Float64;
    case RASTER_F16: break;
    }
    return GDT_Unknown;
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

static raster_status_t
gdal_open_gated(raster_dataset_t *ds, raster__gdal_opener_fn opener, void *opener_ctx)
{
    struct raster__gdal *g = calloc(1, sizeof *g);
    RASTER_CHECK(g != NULL, RASTER_E_NOMEM, "%s: out of memory", ds->path);
    pthread_mutex_init(&g->mu, NULL);
    g->pid = getpid();
    g->path = ds->path;
    g->opener = opener;
    g->opener_ctx = opener_ctx;
    ds->gdal = g;

    GDAL_QUIET_BEGIN();
    GDALDatasetH h = NULL;
    raster_status_t st = RASTER_OK;
    if (opener != NULL) {
        void *vh = NULL;
        st = opener(opener_ctx, &vh);
        h = vh;
    } else if ((h = handle_open(ds->path)) == NULL) {
        const int no = CPLGetLastErrorNo();
        const char *msg = gdal_msg();
        /* GDAL says "No such file or directory" for a missing file, and
         * "not recognized as a supported file format" for anything else. */
        if (no == CPLE_OpenFailed && strstr(msg, "No such file"))
            st = raster__fail_cause(RASTER_E_IO, RASTER_CAUSE_NOT_FOUND, "%s: no such file: %s", ds->path, msg);
        else if (gdal_failure_status(ds, RASTER_E_FORMAT) == RASTER_E_IO)
            st = raster__fail(RASTER_E_IO, "%s: cannot read it over the network: %s", ds->path, msg);
        else if (no == CPLE_OpenFailed && strstr(msg, "not recognized"))
            st = raster__fail(RASTER_E_FORMAT, "%s: not a raster GDAL can open: %s", ds->path, msg);
        else if (is_unsupported_msg(msg))
            st = raster__fail(RASTER_E_UNSUPPORTED, "%s: GDAL cannot decode it: %s", ds->path, msg);
        else
            st = raster__fail(no == CPLE_OpenFailed || no == CPLE_FileIO ? RASTER_E_IO : RASTER_E_FORMAT,
                              "%s: GDAL could not open it: %s", ds->path, msg);
    }
    if (st != RASTER_OK) {
        GDAL_QUIET_END();
        return st;
    }
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
    GDAL_QUIET_END();
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
raster__gdal_open_with(raster_dataset_t *ds, raster__gdal_opener_fn open, void *ctx)
{
    raster__gdal_enter();
    const raster_status_t st = gdal_open_gated(ds, open, ctx);
    raster__gdal_leave();
    return st;
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
    GDAL_QUIET_BEGIN();
    const CPLErr err = GDALDatasetRasterIOEx(h, GF_Read, (int)win.col_off, (int)win.row_off,
                                             (int)win.width, (int)win.height, v->data,
                                             (int)win.width, (int)win.height, gdal_type_of(v->dtype),
                                             nbands, (int *)bands, v->col_stride, v->row_stride,
                                             v->chan_stride, &extra);
    raster_status_t st = RASTER_OK;
    if (err != CE_None)
        st = raster__fail(gdal_failure_status(ds, RASTER_E_CORRUPT),
                          "%s: GDAL failed to read window (col %lld, row %lld, %lldx%lld): %s",
                          ds->path, (long long)win.col_off, (long long)win.row_off,
                          (long long)win.width, (long long)win.height, gdal_msg());
    GDAL_QUIET_END();
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

/* A handle whose read failed goes, instead of back to the idle stack:
 * libtiff and GDAL keep state from a failed decode (a raw tile buffer,
 * read-ahead bytes of a file that has changed since), and the next read
 * must start from the file as it is. */
static void
handle_done(struct raster__gdal *g, GDALDatasetH h, raster_status_t st)
{
    if (st == RASTER_OK) {
        handle_release(g, h);
        return;
    }
    GDAL_QUIET_BEGIN();
    GDALClose(h);
    GDAL_QUIET_END();
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

static raster_status_t
gdal_read_gated(raster_dataset_t *ds, const raster__request_t *rq)
{
    GDALDatasetH h = handle_acquire(ds->gdal);
    if (h == NULL)
        return RASTER_E_IO;
    const raster_status_t st = read_with_handle(ds, h, rq);
    handle_done(ds->gdal, h, st);
    return st;
}

raster_status_t
raster__gdal_read(raster_dataset_t *ds, const raster__request_t *rq)
{
    RASTER_TRY(blocks_check(ds));
    raster__gdal_enter();
    const raster_status_t st = gdal_read_gated(ds, rq);
    raster__gdal_leave();
    return st;
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
    GDAL_QUIET_BEGIN();
    const CPLErr err = GDALDatasetRasterIOEx(h, GF_Read, (int)w.col_off, (int)w.row_off, int_len(w.width),
                                             int_len(w.height), v->data, (int)v->width, (int)v->height,
                                             gdal_type_of(v->dtype), rr->band_count, (int *)rr->bands,
                                             v->col_stride, v->row_stride, v->chan_stride, &extra);
    raster_status_t st = RASTER_OK;
    if (err != CE_None)
        st = raster__fail(gdal_failure_status(ds, RASTER_E_CORRUPT),
                          "%s: GDAL failed a resampled read of window (col %g, row %g, %gx%g) into "
                          "%lldx%lld: %s",
                          ds->path, w.col_off, w.row_off, w.width, w.height, (long long)v->height,
                          (long long)v->width, gdal_msg());
    GDAL_QUIET_END();
    return st;
}

static raster_status_t
resampled_with_handle(raster_dataset_t *ds, GDALDatasetH h, const raster__resample_request_t *rr)
{
    const raster_view_t *d = &rr->dst;
    /* GDAL writes the destination's dtype itself when it has it, as for
     * rasterio's out_dtype; otherwise, or with scale/offset, resample into
     * float64 and convert by our rules. */
    if (rr->scale == NULL && rr->offset == NULL && d->dtype != RASTER_I8 && d->dtype != RASTER_F16)
        return resampled_into(ds, h, rr, d);
    const size_t n = raster_view_nbytes(RASTER_F64, d->height, d->width, d->channels);
    void *stage = malloc(n ? n : 1);
    RASTER_CHECK(stage != NULL, RASTER_E_NOMEM, "%s: out of memory for a %zu-byte resampling stage",
                 ds->path, n);
    raster_view_t sv = raster_view_hwc(stage, RASTER_F64, d->height, d->width, d->channels);
    const raster_status_t st = resampled_into(ds, h, rr, &sv);
    if (st == RASTER_OK) {
        const raster__place_opts_t po = {NULL, rr->scale, rr->offset, rr->divide};
        raster__place(&sv, d, &po);
    }
    free(stage);
    return st;
}

static raster_status_t
gdal_read_resampled_gated(raster_dataset_t *ds, const raster__resample_request_t *rr)
{
    GDALDatasetH h = handle_acquire(ds->gdal);
    if (h == NULL)
        return RASTER_E_IO;
    const raster_status_t st = resampled_with_handle(ds, h, rr);
    handle_done(ds->gdal, h, st);
    return st;
}

raster_status_t
raster__gdal_read_resampled(raster_dataset_t *ds, const raster__resample_request_t *rr)
{
    RASTER_TRY(blocks_check(ds));
    raster__gdal_enter();
    const raster_status_t st = gdal_read_resampled_gated(ds, rr);
    raster__gdal_leave();
    return st;
}

/* One band's GDAL mask for window 'w' (GDAL's integer window is its
 * truncation) into dst's height x width.  'resampled': with the float
 * window and 'alg' as rasterio's io_multi_mask passes them. */
static raster_status_t
gdal_read_mask_gated(raster_dataset_t *ds, raster_window_f_t w, int resampled, raster_resampling_t alg,
                     int band, const raster_view_t *dst)
{
    GDALDatasetH h = handle_acquire(ds->gdal);
    if (h == NULL)
        return RASTER_E_IO;
    GDAL_QUIET_BEGIN();
    GDALRasterBandH mb = GDALGetMaskBand(GDALGetRasterBand(h, band));
    GDALRasterIOExtraArg extra;
    INIT_RASTERIO_EXTRA_ARG(extra);
    if (resampled)
        resampling_extra(&extra, w, alg);
    const CPLErr err = mb == NULL ? CE_Failure
                                  : GDALRasterIOEx(mb, GF_Read, (int)w.col_off, (int)w.row_off,
                                                   int_len(w.width), int_len(w.height), dst->data,
                                                   (int)dst->width, (int)dst->height, GDT_Byte,
                                                   dst->col_stride, dst->row_stride, &extra);
    raster_status_t st = RASTER_OK;
    if (err != CE_None)
        st = raster__fail(gdal_failure_status(ds, RASTER_E_CORRUPT),
                          "%s: GDAL failed to read the mask of band %d, window (col %.10g, row %.10g, "
                          "%.10gx%.10g): %s",
                          ds->path, band, w.col_off, w.row_off, w.width, w.height, gdal_msg());
    GDAL_QUIET_END();
    handle_done(ds->gdal, h, st);
    return st;
}

raster_status_t
raster__gdal_read_mask(raster_dataset_t *ds, raster_window_t win, int band, const raster_view_t *dst)
{
    RASTER_TRY(blocks_check(ds));
    const raster_window_f_t w = {(double)win.col_off, (double)win.row_off, (double)win.width,
                                 (double)win.height};
    raster__gdal_enter();
    const raster_status_t st = gdal_read_mask_gated(ds, w, 0, RASTER_RESAMPLE_NEAREST, band, dst);
    raster__gdal_leave();
    return st;
}

raster_status_t
raster__gdal_read_mask_resampled(raster_dataset_t *ds, raster_window_f_t win, raster_resampling_t alg,
                                 int band, const raster_view_t *dst)
{
    RASTER_TRY(blocks_check(ds));
    raster__gdal_enter();
    const raster_status_t st = gdal_read_mask_gated(ds, win, 1, alg, band, dst);
    raster__gdal_leave();
    return st;
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
    raster__gdal_enter();
    GDAL_QUIET_BEGIN();
    OGRSpatialReferenceH a = OSRNewSpatialReference(wkt_a), b = OSRNewSpatialReference(wkt_b);
    const int same = a != NULL && b != NULL && OSRIsSame(a, b);
    OSRDestroySpatialReference(a);
    OSRDestroySpatialReference(b);
    GDAL_QUIET_END();
    raster__gdal_leave();
    return same;
}

/* ------------------------------ handles for metadata.c ------------------ */

/* metadata.c asks GDAL about tags, color tables, GCPs and statistics on one
 * of this dataset's handles, so it shares the idle stack (and its fork and
 * replaced-file rules) instead of opening the file again per call. */
void *
raster__gdal_handle_take(raster_dataset_t *ds)
{
    return handle_acquire(ds->gdal);
}

void
raster__gdal_handle_give(raster_dataset_t *ds, void *h, raster_status_t st)
{
    handle_done(ds->gdal, (GDALDatasetH)h, st);
}
