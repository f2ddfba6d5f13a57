/*
 * gdal_env.c - the GDAL environment layer: the rules every GDAL user in
 * lib/ follows, written once.  Declarations in runtime.h (the runtime
 * folder's header).
 *
 *   fork gate      every GDAL/VSI call runs inside it, so fork() never
 *                  copies a GDAL lock held by another thread;
 *   error capture  GDAL's messages of one call go into a per-thread record,
 *                  not stderr; a failure becomes a status from GDAL's error
 *                  numbers and what the caller knows, not from its words;
 *   idle handles   one stack type for GDAL dataset handles (gdal_reader.c)
 *                  and VSI handles (source/tiff_vsi.c), with fork's rule;
 *   paths          the URL mapping of raster_open() and the remote test.
 *
 * Layer: the bottom GDAL layer.  gdal_reader.c, lib/source/, lib/read/, metadata.c,
 * warped_vrt.c, gdal_config.c users and dataset.c call into it; it calls
 * only GDAL and error.c, never a reader or dataset.c.
 */
#include "runtime.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_vsi.h>
#include <cpl_vsi_error.h>
#include <gdal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ------------------------------ fork gate ------------------------------ */

/*
 * GDAL keeps process-wide mutexes (the block cache, the driver manager,
 * dataset lists, /vsicurl/'s caches); a fork() while another thread is
 * inside GDAL leaves the child with those mutexes locked by a thread that
 * does not exist there, and the child's first read deadlocks (check_fork
 * found it).  Every GDAL call of the library runs inside the gate, and the
 * fork hooks close it: fork() waits until no thread is inside a GDAL call
 * and keeps new ones out until it returns, so the child inherits GDAL with
 * every lock free.  A closing gate lets no new thread in, so a stream of
 * reads cannot starve a fork; a thread must therefore never enter twice.
 * Not a pthread_rwlock: its state after fork() counts the parent's waiting
 * readers, and unlocking it in the child left the child's reads blocked.
 * Here the child simply starts with a fresh, open gate.
 *
 * What the gate must not hold is a wait on the network: a GDAL read of
 * /vsicurl/ is one call for as long as the server takes, so a stalled
 * server held every fork().  GDAL takes process-wide mutexes for moments
 * inside that call, so it cannot leave the gate; the native reader's http(s)
 * reads are made with libcurl in source/tiff_http.c instead, inside the gate
 * for every libcurl call and outside it for the wait itself
 * (curl_multi_wait, back-off sleeps), where it holds no lock at all.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inside;                 /* threads in a GDAL call */
    int closing;                /* a fork() is waiting or under way */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
static pthread_once_t gdal_once = PTHREAD_ONCE_INIT;

void
raster__gdal_fork_prepare(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.closing++;
    while (gate.inside > 0)
        pthread_cond_wait(&gate.cv, &gate.mu);
    /* gate.mu stays locked across fork(): nobody enters or leaves. */
}

void
raster__gdal_fork_parent(void)
{
    gate.closing--;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

void
raster__gdal_fork_child(void)
{
    /* One thread, nobody inside: new objects, no inherited waiters. */
    pthread_mutex_init(&gate.mu, NULL);
    pthread_cond_init(&gate.cv, NULL);
    gate.inside = 0;
    gate.closing = 0;
}

static int running_gdal_has_int8(void);

static void
gdal_register(void)
{
    static const raster__fork_hooks_t hooks = {raster__gdal_fork_prepare, raster__gdal_fork_parent,
                                               raster__gdal_fork_child};
    raster__fork_hooks(RASTER__FORK_GDAL, &hooks);
    GDALAllRegister();
    /* GDAL 3.7 brought Int8 and changed float32 NaN into int32 from
     * INT32_MIN to 0 (GDALCopyWords): our conversions follow the GDAL that
     * runs, as rasterio's reads on it do (common.h). */
    raster__convert_nan_i32_zero(running_gdal_has_int8());
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

/* ------------------------------ dtypes --------------------------------- */

/* GDT_Int8 is 14 from GDAL 3.7 on; in 3.6 (the headers the Python package
 * is built with while it runs on rasterio's newer GDAL) 14 is GDT_TypeCount,
 * which no band has.  So the value, not the 3.7 name, and the GDAL that
 * runs decides, not the one compiled against: a Byte buffer would clamp a
 * 3.7+ Int8 band to 0..255. */
enum { GDAL_INT8_VALUE = 14 };

static int
running_gdal_has_int8(void)
{
    static int cached = -1;     /* threads racing to fill it store the same value */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        v = atoi(GDALVersionInfo("VERSION_NUM")) >= 3070000;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* Every dtype with a GDAL type of the same values (runtime.h); int8 apart,
 * by the running GDAL. */
static const struct {
    raster_dtype_t dt;
    GDALDataType gdt;
} dtype_table[] = {
    {RASTER_U8, GDT_Byte},
    {RASTER_U16, GDT_UInt16}, {RASTER_I16, GDT_Int16}, {RASTER_U32, GDT_UInt32},
    {RASTER_I32, GDT_Int32},  {RASTER_F32, GDT_Float32}, {RASTER_F64, GDT_Float64},
};
#define DTYPE_TABLE_N (sizeof dtype_table / sizeof dtype_table[0])

int
raster__gdal_type(raster_dtype_t dt)
{
    if (dt == RASTER_I8)
        return running_gdal_has_int8() ? GDAL_INT8_VALUE : GDT_Unknown;
    for (size_t i = 0; i < DTYPE_TABLE_N; i++)
        if (dtype_table[i].dt == dt)
            return dtype_table[i].gdt;
    return GDT_Unknown;
}

int
raster__gdal_carrier(raster_dtype_t dt)
{
    const int gdt = raster__gdal_type(dt);
    return gdt == GDT_Unknown && dt == RASTER_I8 ? GDT_Byte : gdt;   /* a SIGNEDBYTE band's bytes */
}

int
raster__dtype_of_gdal(int gdt, const char *pixeltype, raster_dtype_t *out)
{
    if (gdt == GDAL_INT8_VALUE || (gdt == GDT_Byte && pixeltype != NULL && strcmp(pixeltype, "SIGNEDBYTE") == 0)) {
        *out = RASTER_I8;
        return 1;
    }
    for (size_t i = 0; i < DTYPE_TABLE_N; i++)
        if ((int)dtype_table[i].gdt == gdt) {
            *out = dtype_table[i].dt;
            return 1;
        }
    return 0;
}

/* ------------------------------ paths ---------------------------------- */

/* URL schemes GDAL does not take as they are, and the virtual file system
 * that reads them; 'keep' keeps the whole URL after the prefix (/vsicurl/
 * wants the URL, /vsis3/ wants bucket/key). */
static const struct url_scheme {
    const char *scheme, *vsi;
    int keep;
} url_schemes[] = {
    {"http://", "/vsicurl/", 1},
    {"https://", "/vsicurl/", 1},
    {"s3://", "/vsis3/", 0},
    {"gs://", "/vsigs/", 0},
    {"az://", "/vsiaz/", 0},
};

char *
raster__gdal_path_of(const char *path_or_url)
{
    for (size_t i = 0; i < sizeof url_schemes / sizeof url_schemes[0]; i++) {
        const struct url_scheme *u = &url_schemes[i];
        const size_t n = strlen(u->scheme);
        if (strncasecmp(path_or_url, u->scheme, n) != 0)
            continue;
        /* GDAL wants the scheme in lower case ("HTTP://" fails). */
        const char *scheme = u->keep ? u->scheme : "";
        const size_t len = strlen(u->vsi) + strlen(scheme) + strlen(path_or_url + n) + 1;
        char *p = malloc(len);
        if (p != NULL)
            snprintf(p, len, "%s%s%s", u->vsi, scheme, path_or_url + n);
        return p;
    }
    return strdup(path_or_url);
}

int
raster__path_is_remote(const char *path)
{
    static const char *const prefixes[] = {"/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss",
                                           "/vsiswift", "/vsiwebhdfs", "/vsihdfs"};
    if (strncmp(path, "/vsi", 4) != 0)          /* a local path, whatever its directories are called */
        return 0;
    if (strstr(path, "/vsicurl") != NULL)       /* also /vsicurl_streaming/, /vsizip//vsicurl/ */
        return 1;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strstr(path, prefixes[i]) != NULL)
            return 1;
    return 0;
}

/* ------------------------------ error capture -------------------------- */

/*
 * GDAL's words, where its numbers say nothing: the one table of message
 * fragments in the library.  Each message GDAL sends during a capture is
 * looked up once, in the handler; nothing else in lib/ reads GDAL's text.
 *
 * Why words at all: libtiff has no error numbers.  It reports through
 * TIFFErrorExt (module + text), and GDAL's GTiffErrorHandler forwards that
 * as CPLE_AppDefined, so "the file uses a feature libtiff does not
 * implement" (samples of different sizes, a predictor for 12-bit samples,
 * a codec this build lacks) has the same class and number as "the file is
 * damaged".  Likewise GDAL's own retry notices, a server that ignores Range
 * requests, and "no valid pixels" for statistics are CPLE_AppDefined.  Only
 * the first of these decides a status (RASTER_E_UNSUPPORTED); the others
 * only shape a message, and the no-valid-pixels case a metadata call's
 * status (metadata.c asks through raster__gdal_capture_said()).
 */
static const struct gdal_words {
    raster__gdal_said_t said;
    CPLErr cls;                 /* the class GDAL sends it with */
    const char *fragment;
} gdal_words[] = {
    /* Looked up in order, the first match wins: this one before "not
     * supported" below, which would read it as a missing feature. */
    /* cpl_vsil_curl.cpp: "Range downloading not supported by this server!" */
    {RASTER__GDAL_SAID_NO_RANGE, CE_Failure, "Range downloading not supported"},
    /* GTiff: "Cannot open TIFF file due to missing codec of code %d." */
    {RASTER__GDAL_SAID_UNSUPPORTED, CE_Failure, "missing codec"},
    /* libtiff, NotConfigured codecs: "%s %s decoding is not implemented" */
    {RASTER__GDAL_SAID_UNSUPPORTED, CE_Failure, "not implemented"},
    /* libtiff PredictorSetup: "... \"Predictor\" not supported with %d-bit samples" */
    {RASTER__GDAL_SAID_UNSUPPORTED, CE_Failure, "not supported"},
    /* libtiff TIFFReadDirectory: "Cannot handle different values per sample for \"%s\"" */
    {RASTER__GDAL_SAID_UNSUPPORTED, CE_Failure, "Cannot handle different values per sample"},
    /* cpl_vsil_curl.cpp: "HTTP error code: %d - %s. Retrying again in %.1f secs" */
    {RASTER__GDAL_SAID_RETRY, CE_Warning, ". Retrying"},
    /* gdalrasterband.cpp: "Failed to compute statistics, no valid pixels found in sampling." */
    {RASTER__GDAL_SAID_NO_VALID_PIXELS, CE_Failure, "no valid pixels"},
    /* cpl_vsil_curl.cpp's debug output (raster__gdal_capture_begin_read()):
     * "Got response_code=%ld", "DownloadRegion(%s): response_code=%d, msg=%s",
     * "ReadMultiRange(%s), %s: response_code=%d, msg=%s" */
    {RASTER__GDAL_SAID_HTTP, CE_Debug, "response_code="},
};

/* What rasterloader adds when a server ignored Range requests: every read
 * of a remote file is a Range request. */
#define NO_RANGE_HINT                                                                 \
    " (the server ignores HTTP Range requests, and reading part of a remote file "  \
    "needs them: serve it from a server that answers them, such as nginx, Apache or " \
    "object storage, or download the file and open it locally)"

/* The record of one capture, per thread. */
typedef struct capture {
    int failures;               /* CE_Failure or worse since the begin */
    int retries;                /* GDAL's retry notices (warnings) */
    unsigned said;              /* 1 << raster__gdal_said_t of the table's matches */
    int network;                /* a failure numbered by GDAL's network layer */
    int nomem;                  /* a failure numbered CPLE_OutOfMemory */
    int not_supported;          /* a failure numbered CPLE_NotSupported */
    int file_io;                /* a failure numbered CPLE_FileIO */
    CPLErrorNum first_no;       /* the first failure's number */
    char first[320];            /* the first failure's text */
    char retry[320];            /* the last retry notice, up to ". Retrying" */
    char http[320];             /* the last failed response /vsicurl/'s debug output named */
    char detail[1024];          /* raster__gdal_capture_detail()'s result */
    int depth;                  /* begin/end pairs open */
    int debug_depth;            /* the depth that set CPL_DEBUG, or 0 */
    char *debug_was;            /* CPL_DEBUG of this thread before (owned), or NULL */
} capture_t;

static _Thread_local capture_t cap;

/* GDAL's network layer numbers what it can: an HTTP status or curl error
 * when it opens (VSICurlHandle::GetFileSize: CPLE_HttpResponse, with
 * VSIE_HttpError), the object stores' refusals (CPLE_AWS*). */
static int
is_network_no(CPLErrorNum no)
{
    return no == CPLE_HttpResponse || (no >= CPLE_AWSBucketNotFound && no <= CPLE_AWSError);
}

/* A response that /vsicurl/'s debug output names after "response_code=":
 * kept when it failed (not 2xx, or with curl's message), as "HTTP 503" or
 * curl's words (with the status when there was one that is not 2xx). */
static void
note_http(const char *after_fragment)
{
    const int code = atoi(after_fragment);
    const char *m = strstr(after_fragment, "msg=");
    const char *text = m != NULL && m[4] != '\0' ? m + 4 : NULL;
    const int ok = code >= 200 && code < 300;
    if (ok && text == NULL)
        return;
    if (code == 0 && text == NULL) {    /* no response: curl's words came first, if any */
        if (cap.http[0] == '\0')
            snprintf(cap.http, sizeof cap.http, "no HTTP response");
        return;
    }
    if (text == NULL)
        snprintf(cap.http, sizeof cap.http, "HTTP %d", code);
    else if (code == 0 || ok)
        snprintf(cap.http, sizeof cap.http, "%.300s", text);
    else
        snprintf(cap.http, sizeof cap.http, "HTTP %d: %.290s", code, text);
}

static void CPL_STDCALL
capture_handler(CPLErr cls, CPLErrorNum no, const char *msg)
{
    msg = msg ? msg : "";
    const char *at = NULL;
    for (size_t i = 0; i < sizeof gdal_words / sizeof gdal_words[0]; i++) {
        const struct gdal_words *w = &gdal_words[i];
        if ((cls >= CE_Failure) == (w->cls >= CE_Failure) && (at = strstr(msg, w->fragment)) != NULL) {
            cap.said |= 1u << w->said;
            if (w->said == RASTER__GDAL_SAID_RETRY) {
                cap.retries++;
                snprintf(cap.retry, sizeof cap.retry, "%.*s", (int)(at - msg), msg);
            }
            if (w->said == RASTER__GDAL_SAID_HTTP)
                note_http(at + strlen(w->fragment));
            break;
        }
    }
    if (cls < CE_Failure)
        return;
    if (cap.failures++ == 0) {
        cap.first_no = no;
        snprintf(cap.first, sizeof cap.first, "%s", msg);
    }
    cap.network |= is_network_no(no);
    cap.nomem |= no == CPLE_OutOfMemory;
    cap.not_supported |= no == CPLE_NotSupported;
    cap.file_io |= no == CPLE_FileIO;
}

/* An empty record (the handler stays). */
static void
capture_reset(void)
{
    cap.failures = cap.retries = cap.network = cap.nomem = cap.not_supported = cap.file_io = 0;
    cap.said = 0;
    cap.first_no = CPLE_None;
    cap.first[0] = cap.retry[0] = cap.http[0] = '\0';
    CPLErrorReset();
    VSIErrorReset();
}

void
raster__gdal_capture_begin(void)
{
    cap.depth++;
    CPLPushErrorHandler(capture_handler);
    capture_reset();
}

void
raster__gdal_capture_begin_read(const char *path)
{
    raster__gdal_capture_begin();
    if (cap.debug_depth != 0 || !raster__path_is_remote(path))
        return;
    const char *was = CPLGetThreadLocalConfigOption("CPL_DEBUG", NULL);
    cap.debug_was = was != NULL ? strdup(was) : NULL;
    cap.debug_depth = cap.depth;
    CPLSetThreadLocalConfigOption("CPL_DEBUG", "ON");
}

void
raster__gdal_capture_end(void)
{
    if (cap.debug_depth == cap.depth) {
        CPLSetThreadLocalConfigOption("CPL_DEBUG", cap.debug_was);
        free(cap.debug_was);
        cap.debug_was = NULL;
        cap.debug_depth = 0;
    }
    cap.depth--;
    CPLPopErrorHandler();
}

int
raster__gdal_capture_said(raster__gdal_said_t what)
{
    return (cap.said >> what) & 1u;
}

/* GDAL's network layer also reports through VSIError (per thread), not
 * always through CPLError: an HTTP status or curl's error of a HEAD
 * ("HTTP response code: 403", "CURL error: ..."), the object stores'
 * refusals.  NULL when it has nothing. */
static const char *
vsi_error(void)
{
    const char *msg = VSIGetLastErrorNo() != VSIE_None ? VSIGetLastErrorMsg() : NULL;
    return msg != NULL && msg[0] != '\0' ? msg : NULL;
}

static void
detail_append(capture_t *c, const char *fmt, const char *what)
{
    const size_t n = strlen(c->detail);
    snprintf(c->detail + n, sizeof c->detail - n, fmt, what);
}

const char *
raster__gdal_capture_detail(void)
{
    capture_t *c = &cap;
    const char *last = CPLGetLastErrorMsg();
    const char *vsi = vsi_error();
    last = (last && last[0]) ? last
           : c->retry[0]     ? c->retry
           : vsi             ? vsi
                             : "no detail from GDAL (for a network read, CPL_CURL_VERBOSE=YES shows "
                               "the exchange)";
    if (c->failures > 1 && c->first[0] && strcmp(c->first, last) != 0)
        snprintf(c->detail, sizeof c->detail, "%.319s; then: %.640s", c->first, last);
    else
        snprintf(c->detail, sizeof c->detail, "%.960s", c->first[0] ? c->first : last);
    if (vsi != NULL && strstr(c->detail, vsi) == NULL)
        detail_append(c, " (%.400s)", vsi);
    if (c->http[0] != '\0' && strstr(c->detail, c->http) == NULL)
        detail_append(c, " (GDAL's network layer: %.320s)", c->http);
    if (c->retries > 0) {
        const size_t n = strlen(c->detail);
        snprintf(c->detail + n, sizeof c->detail - n,
                 " (after %d retr%s, GDAL_HTTP_MAX_RETRY)", c->retries, c->retries == 1 ? "y" : "ies");
    }
    if (raster__gdal_capture_said(RASTER__GDAL_SAID_NO_RANGE))
        detail_append(c, "%s", NO_RANGE_HINT);
    return c->detail;
}

/* The status of a failed GDALOpenEx.  GDAL numbers "no such file" and "no
 * driver knows this file" alike (CPLE_OpenFailed) and tells them apart by a
 * stat, as GDALOpenEx does: so does this. */
static raster_status_t
open_status(const char *path, int remote)
{
    const capture_t *c = &cap;
    const int only_open_failed = c->failures == 1 && c->first_no == CPLE_OpenFailed;
    VSIStatBufL sb;
    if (only_open_failed && VSIStatExL(path, &sb, VSI_STAT_EXISTS_FLAG) != 0)
        return RASTER_E_IO;     /* unreachable, refused, or not there */
    if (only_open_failed)
        return RASTER_E_FORMAT; /* its bytes were read, and no driver knows them */
    if (remote)
        return RASTER_E_IO;     /* see raster__gdal_capture_status() */
    if (c->file_io)
        return RASTER_E_IO;
    return RASTER_E_FORMAT;     /* a driver knew it, then found it damaged */
}

/*
 * How a failure becomes a status, first row that applies:
 *
 *   captured                                 call        status
 *   anything                                 VSI         RASTER_E_IO
 *   CPLE_HttpResponse, CPLE_AWS*             any         RASTER_E_IO
 *   CPLE_NotSupported, or the table's
 *     "unsupported" words (libtiff)          OPEN, READ  RASTER_E_UNSUPPORTED
 *   CPLE_OutOfMemory                         OPEN, READ  RASTER_E_NOMEM
 *   only CPLE_OpenFailed, path not there     OPEN        RASTER_E_IO
 *   only CPLE_OpenFailed, path there         OPEN        RASTER_E_FORMAT
 *   anything else, remote path               OPEN, READ  RASTER_E_IO
 *   CPLE_FileIO, local path                  OPEN        RASTER_E_IO
 *   anything else, local path                OPEN        RASTER_E_FORMAT
 *   anything else, local path                READ        'otherwise'
 *
 * VSI: the callers (source/tiff_vsi.c) have checked every range against the
 * file's size, so what fails is the transfer.  A remote path: GDAL 3.6's
 * /vsicurl/ reports a range that failed (an HTTP status, a timeout, a body
 * cut short, a server that ignores Range) to its caller only as a short
 * read, which libtiff turns into CPLE_AppDefined "Read error"; GDAL numbers
 * an HTTP failure only when it opens the file.  So a failed read or open of
 * a remote dataset that GDAL did not number otherwise is the network's, as
 * rasterio's RasterioIOError says too.
 */
raster_status_t
raster__gdal_capture_status(const char *path, raster__gdal_call_t call, raster_status_t otherwise)
{
    const capture_t *c = &cap;
    if (call == RASTER__GDAL_CALL_VSI || c->network)
        return RASTER_E_IO;
    if (c->not_supported || raster__gdal_capture_said(RASTER__GDAL_SAID_UNSUPPORTED))
        return RASTER_E_UNSUPPORTED;
    if (c->nomem)
        return RASTER_E_NOMEM;
    const int remote = raster__path_is_remote(path);
    if (call == RASTER__GDAL_CALL_OPEN)
        return open_status(path, remote);
    /* Locally, GDAL's CPLE_FileIO during a read is mostly a short read of
     * a truncated file: damage, as libtiff's short reads are. */
    if (remote)
        return RASTER_E_IO;
    return otherwise;
}

/* ------------------------------ call frame ----------------------------- */

void
raster__gdal_frame_enter(raster__gdal_frame_t *f)
{
    *f = (raster__gdal_frame_t){NULL, NULL, NULL, cap.depth == 0};
    if (f->captured)
        raster__gdal_capture_begin();
    raster__gdal_enter();
}

raster_status_t
raster__gdal_frame_take(raster__gdal_frame_t *f, raster__handle_stack_t *stack, raster__handle_open_fn open,
                        void *ctx, const char *forget)
{
    raster__gdal_frame_enter(f);
    void *h = raster__handle_stack_pop(stack);
    if (h == NULL) {
        const raster_status_t st = open(ctx, &h);
        if (st != RASTER_OK)
            return raster__gdal_frame_leave(f, st);
    }
    f->stack = stack;
    f->handle = h;
    f->forget = forget;
    if (f->captured)
        capture_reset();        /* the call's record, not the open's */
    return RASTER_OK;
}

raster_status_t
raster__gdal_frame_leave(raster__gdal_frame_t *f, raster_status_t st)
{
    if (f->handle != NULL) {
        if (st == RASTER_OK)
            raster__handle_stack_push(f->stack, f->handle);
        else
            f->stack->close(f->handle);
        f->handle = NULL;
    }
    if (st != RASTER_OK && f->forget != NULL)
        raster__gdal_forget(f->forget);
    raster__gdal_leave();
    if (f->captured)
        raster__gdal_capture_end();
    return st;
}

void
raster__gdal_frame_pause(raster__gdal_frame_t *f)
{
    (void)f;
    raster__gdal_leave();
}

void
raster__gdal_frame_resume(raster__gdal_frame_t *f)
{
    (void)f;
    raster__gdal_enter();
}

void
raster__gdal_forget(const char *path)
{
    if (raster__path_is_remote(path))
        VSICurlPartialClearCache(path);
}

/* ------------------------------ idle handles --------------------------- */

void
raster__handle_stack_init(raster__handle_stack_t *s, raster__handle_close_fn close)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->pid = getpid();
    s->close = close;
}

void *
raster__handle_stack_pop(raster__handle_stack_t *s)
{
    void *h = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->pid != getpid()) {
        /* Forked child: the parent's handles share its file offsets,
         * caches and connections; drop them without closing (closing could
         * flush or block on state copied mid-operation) and start over. */
        s->idle_count = 0;
        s->pid = getpid();
    }
    if (s->idle_count > 0)
        h = s->idle[--s->idle_count];
    pthread_mutex_unlock(&s->mu);
    return h;
}

void
raster__handle_stack_push(raster__handle_stack_t *s, void *h)
{
    pthread_mutex_lock(&s->mu);
    if (s->pid == getpid()) {
        if (s->idle_count == s->idle_cap) {
            const int cap_n = s->idle_cap ? s->idle_cap * 2 : 4;
            void **p = realloc(s->idle, (size_t)cap_n * sizeof *p);
            if (p != NULL)
                s->idle = p, s->idle_cap = cap_n;
        }
        if (s->idle_count < s->idle_cap) {
            s->idle[s->idle_count++] = h;
            h = NULL;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (h != NULL)
        s->close(h);
}

void
raster__handle_stack_destroy(raster__handle_stack_t *s)
{
    if (s->pid == getpid())
        for (int i = 0; i < s->idle_count; i++)
            s->close(s->idle[i]);
    free(s->idle);
    s->idle = NULL;
    s->idle_count = s->idle_cap = 0;
    pthread_mutex_destroy(&s->mu);
}
