/*
 * gdal_config.c - GDAL config options scoped to a caller's rasterloader calls.
 *
 * Why: a C caller scopes GDAL options (credentials, HTTP headers,
 * GDAL_DISABLE_READDIR_ON_OPEN) to its own calls with raster_gdal_config_push
 * / _pop, and the library's worker threads that do GDAL work for those calls
 * must see them too.  (The Python package does not use this: it runs on the
 * GDAL rasterio loaded, where rasterio.Env sets its options process-wide, so
 * every thread already sees them.)
 *
 * How: raster_gdal_config_push() copies the options into a frame on the
 * calling thread's stack of frames and sets each with
 * CPLSetThreadLocalConfigOption(), which GDAL consults before the process-wide
 * options and the environment; the pop puts back the thread-local values the
 * thread had before.  Thread-local, not CPLSetConfigOption(): two caller
 * threads with different options read at the same time without seeing each
 * other's credentials, and nothing outlives the call.
 *
 * GDAL work done for the caller on the library's worker threads (threads.c:
 * tile decodes of one read, samples of a batch) must see the same options:
 * raster__parallel_for() captures the caller's frame stack and each helper
 * adopts it around the items it runs (raster__gdal_config_adopt/_drop).  The
 * frames live until the caller's pop, which comes after its parallel_for
 * returned, so helpers borrow them without a reference count.
 *
 * Deliberately left out: GDAL's own caches.  Options that GDAL reads when it
 * opens a file (HTTP headers and credentials of /vsicurl/ and /vsis3/ handles)
 * stay those of the open; a /vsicurl/ file's size and downloaded ranges are
 * cached process-wide by URL whatever the options.
 *
 * Layer: beside gdal_env.c, below the readers (threads.c calls adopt/drop).
 * It calls only GDAL's thread-local config functions, outside gdal_env.c's
 * fork gate, as it always has.
 */
#include "runtime.h"

#include <cpl_conv.h>
#include <stdlib.h>
#include <string.h>

struct raster__gdal_config {
    int count;
    char **keys, **values;        /* owned copies */
    char **saved;                 /* the pushing thread's previous thread-local
                                     values (owned; NULL = it had none) */
    const struct raster__gdal_config *outer;   /* the frame below, or NULL */
};

/* The frames seen by GDAL work on this thread: the thread's own pushes, or on
 * a worker, the stack of the caller whose items it runs (borrowed). */
static _Thread_local const raster__gdal_config_t *t_top;

static void
frame_free(raster__gdal_config_t *f)
{
    for (int i = 0; i < f->count; i++) {
        free(f->keys[i]);
        free(f->values[i]);
        free(f->saved[i]);
    }
    free(f->keys);
    free(f->values);
    free(f->saved);
    free(f);
}

raster_status_t
raster_gdal_config_push(const char *const *keys, const char *const *values, int count)
{
    RASTER_CHECK(count >= 0 && (count == 0 || (keys != NULL && values != NULL)), RASTER_E_INVALID_ARG,
                 "raster_gdal_config_push: %d options with NULL keys or values", count);
    for (int i = 0; i < count; i++)
        RASTER_CHECK(keys[i] != NULL && keys[i][0] != '\0' && values[i] != NULL, RASTER_E_INVALID_ARG,
                     "raster_gdal_config_push: option %d has an empty key or a NULL value", i);
    raster__gdal_config_t *f = calloc(1, sizeof *f);
    const size_t n = count > 0 ? (size_t)count : 1;
    if (f != NULL) {
        f->keys = calloc(n, sizeof *f->keys);
        f->values = calloc(n, sizeof *f->values);
        f->saved = calloc(n, sizeof *f->saved);
    }
    if (f == NULL || f->keys == NULL || f->values == NULL || f->saved == NULL)
        goto nomem;
    for (; f->count < count; f->count++) {
        const int i = f->count;
        const char *old = CPLGetThreadLocalConfigOption(keys[i], NULL);
        f->keys[i] = strdup(keys[i]);
        f->values[i] = strdup(values[i]);
        f->saved[i] = old != NULL ? strdup(old) : NULL;
        if (f->keys[i] == NULL || f->values[i] == NULL || (old != NULL && f->saved[i] == NULL)) {
            f->count++;                 /* so frame_free() frees this one too */
            goto nomem;
        }
    }
    /* Set only once every copy is made: a failed push changes nothing. */
    for (int i = 0; i < f->count; i++)
        CPLSetThreadLocalConfigOption(f->keys[i], f->values[i]);
    f->outer = t_top;
    t_top = f;
    return RASTER_OK;
nomem:
    if (f != NULL)
        frame_free(f);
    return raster__fail(RASTER_E_NOMEM, "raster_gdal_config_push: out of memory");
}

void
raster_gdal_config_pop(void)
{
    raster__gdal_config_t *f = (raster__gdal_config_t *)t_top;
    if (f == NULL)
        return;
    /* Last set first, so a key given twice in one push gets its first
     * saved value, the one from before the push. */
    for (int i = f->count - 1; i >= 0; i--)
        CPLSetThreadLocalConfigOption(f->keys[i], f->saved[i]);
    t_top = f->outer;
    frame_free(f);
}

const raster__gdal_config_t *
raster__gdal_config_current(void)
{
    return t_top;
}

static void
apply_chain(const raster__gdal_config_t *f)
{
    if (f == NULL)
        return;
    apply_chain(f->outer);           /* outermost first: inner pushes win */
    for (int i = 0; i < f->count; i++)
        CPLSetThreadLocalConfigOption(f->keys[i], f->values[i]);
}

const raster__gdal_config_t *
raster__gdal_config_adopt(const raster__gdal_config_t *cfg)
{
    const raster__gdal_config_t *const prev = t_top;
    if (cfg != NULL)
        apply_chain(cfg);
    t_top = cfg;
    return prev;
}

void
raster__gdal_config_drop(const raster__gdal_config_t *cfg, const raster__gdal_config_t *prev)
{
    /* A worker thread has no thread-local options of its own (only this file
     * sets any there), so unset is what it had before the adopt. */
    for (const raster__gdal_config_t *f = cfg; f != NULL; f = f->outer)
        for (int i = 0; i < f->count; i++)
            CPLSetThreadLocalConfigOption(f->keys[i], NULL);
    t_top = prev;
}
