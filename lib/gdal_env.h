/*
 * gdal_env.h - the GDAL environment layer (gdal_env.c): what every user of
 * GDAL in lib/ needs before it calls GDAL, and nothing about rasters.
 * Private; included by internal.h (never on its own, never installed).
 *
 *   - the fork gate every GDAL and VSI call runs in;
 *   - per-thread capture of GDAL's messages, and the status a failure is;
 *   - a stack of idle handles (GDAL datasets, VSI files) with fork's rule;
 *   - the URL mapping of raster_open() and the remote-path test.
 *
 * Layer: below gdal_reader.c, lib/tiff/, metadata.c, warped_vrt.c and
 * dataset.c, which all call down into it; it calls only GDAL, libtiff's
 * codec query and error.c (raster__fail).
 */
#ifndef RASTERLOADER_GDAL_ENV_H
#define RASTERLOADER_GDAL_ENV_H

#ifndef RASTERLOADER_INTERNAL_H
#error "include internal.h, not gdal_env.h"
#endif

/* ------------------------------ fork gate ------------------------------ */

/* Every GDAL or VSI call of the library runs between raster__gdal_enter()
 * and raster__gdal_leave(), so that fork() (which closes the gate first)
 * never copies a GDAL mutex held by another thread into the child.  The
 * first enter also registers GDAL's drivers.  Not recursive: never enter
 * twice on one thread.  libcurl calls of lib/tiff/tiff_http.c run inside it
 * too; its waits on the network run outside (it leaves and re-enters). */
RASTER_HIDDEN void raster__gdal_enter(void);
RASTER_HIDDEN void raster__gdal_leave(void);

/* The gate's fork hooks: prepare closes the gate and waits until no thread
 * is inside (it returns holding the gate's mutex); parent reopens it; child
 * starts a fresh, open gate. */
RASTER_HIDDEN void raster__gdal_fork_prepare(void);
RASTER_HIDDEN void raster__gdal_fork_parent(void);
RASTER_HIDDEN void raster__gdal_fork_child(void);

/* ------------------------------ paths ---------------------------------- */

/* raster__gdal_path_of() is the path GDAL opens for 'path_or_url'
 * (borrowed): GDAL's virtual file systems (/vsicurl/, /vsis3/, ...) as they
 * are; http(s):// mapped to /vsicurl/ and s3://, gs://, az:// to /vsis3/,
 * /vsigs/, /vsiaz/, as rasterio does.  Owned by the caller (free()); NULL
 * on OOM. */
RASTER_HIDDEN char *raster__gdal_path_of(const char *path_or_url);

/* raster__path_is_remote() is 1 when 'path' (a GDAL path, after the URL
 * mapping above) reads over the network: /vsicurl/, /vsis3/, /vsigs/,
 * /vsiaz/ and the other cloud file systems, also chained ones. */
RASTER_HIDDEN int raster__path_is_remote(const char *path);

/* ------------------------------ error capture -------------------------- */

/*
 * raster__gdal_capture_begin() sends this thread's GDAL messages into a
 * per-thread record instead of stderr, until raster__gdal_capture_end(): the
 * first failure, the last failure, each failure's class and number, and the
 * retries GDAL spent (GDAL_HTTP_MAX_RETRY).  A begin resets the record (an
 * inner begin/end pair, such as a warped VRT's opener re-opening its source,
 * leaves the inner call's record).  Call inside or outside the gate, as the
 * GDAL call it wraps; pairs nest like CPLPushErrorHandler.
 */
RASTER_HIDDEN void raster__gdal_capture_begin(void);
RASTER_HIDDEN void raster__gdal_capture_end(void);

/* raster__gdal_capture_begin(), and for a remote 'path' (borrowed) GDAL's
 * debug output too, until the matching end: GDAL 3.6's /vsicurl/ names the
 * HTTP status or curl's error of a failed range read only there (a failed
 * read is otherwise libtiff's "Read error"), and the detail then says it.
 * Sets CPL_DEBUG for this thread (restored at the end); its messages go into
 * the record like the others, never to stderr. */
RASTER_HIDDEN void raster__gdal_capture_begin_read(const char *path);

/* What GDAL said, for a message (valid until the next capture on this
 * thread): the first failure, then the last when it differs, the retries
 * spent, and a hint when a server ignored HTTP Range requests. */
RASTER_HIDDEN const char *raster__gdal_capture_detail(void);

/* The words of GDAL's table (gdal_env.c) that a capture heard: the one
 * place where lib/ reads GDAL's text, for what GDAL gives no number. */
typedef enum raster__gdal_said {
    RASTER__GDAL_SAID_UNSUPPORTED = 0,  /* libtiff/GTiff: a feature it does not implement */
    RASTER__GDAL_SAID_RETRY = 1,        /* /vsicurl/ retried (GDAL_HTTP_MAX_RETRY) */
    RASTER__GDAL_SAID_NO_RANGE = 2,     /* a server answered a Range request with the whole file */
    RASTER__GDAL_SAID_NO_VALID_PIXELS = 3, /* statistics: every sampled pixel is nodata */
    RASTER__GDAL_SAID_HTTP = 4          /* /vsicurl/'s debug output named a response (remote reads) */
} raster__gdal_said_t;

/* 1 when a message of the capture matched 'what' in the table, else 0. */
RASTER_HIDDEN int raster__gdal_capture_said(raster__gdal_said_t what);

/* What the failed call was: a status depends on it as much as on GDAL's
 * error number. */
typedef enum raster__gdal_call {
    RASTER__GDAL_CALL_OPEN,       /* GDALOpenEx of the dataset's path gave NULL */
    RASTER__GDAL_CALL_READ,       /* RasterIO of pixels or masks failed */
    RASTER__GDAL_CALL_VSI         /* a VSI open or read of the file's bytes failed */
} raster__gdal_call_t;

/* raster__gdal_capture_status() is the status of a failed 'call' on 'path'
 * (borrowed; a GDAL path) from what was captured since the begin: GDAL's
 * error classes and numbers, whether the path is remote, and what the call
 * was (the table in gdal_env.c).  'otherwise' is returned when nothing
 * captured says more (a read's RASTER_E_CORRUPT, say).  Call before the
 * capture's end or after it, before the next begin. */
RASTER_HIDDEN raster_status_t raster__gdal_capture_status(const char *path, raster__gdal_call_t call,
                                                          raster_status_t otherwise);

/* ------------------------------ idle handles --------------------------- */

/*
 * A stack of idle handles of one object that are not safe to share between
 * threads (GDAL datasets, VSI files): a user pops one (opening a new one
 * when the stack is empty) and pushes it back.  After fork() the parent's
 * handles are forgotten, never closed (their file offsets, caches and
 * connections belong to the parent): the first pop in the child starts
 * over.  The stack's mutex is never held while 'close' runs, and the stack
 * never enters the gate: push and destroy call 'close' in the caller's gate
 * state, so a user either calls them inside the gate (gdal_reader.c) or
 * gives a 'close' that enters the gate itself (tiff_vsi.c).
 */
typedef void (*raster__handle_close_fn)(void *handle);

typedef struct raster__handle_stack {
    pthread_mutex_t mu;
    pid_t pid;                      /* process the idle handles belong to */
    void **idle;                    /* owned: handles not in use */
    int idle_count, idle_cap;
    raster__handle_close_fn close;  /* closes one handle */
} raster__handle_stack_t;

RASTER_HIDDEN void raster__handle_stack_init(raster__handle_stack_t *s, raster__handle_close_fn close);
/* An idle handle (now the caller's), or NULL when none is idle. */
RASTER_HIDDEN void *raster__handle_stack_pop(raster__handle_stack_t *s);
/* Gives 'h' back; closes it instead when the stack cannot keep it (no memory
 * to grow, or it was taken before a fork). */
RASTER_HIDDEN void raster__handle_stack_push(raster__handle_stack_t *s, void *h);
/* Closes the idle handles (only in the process that opened them) and frees
 * the stack's memory; no handle may be out. */
RASTER_HIDDEN void raster__handle_stack_destroy(raster__handle_stack_t *s);

#endif /* RASTERLOADER_GDAL_ENV_H */
