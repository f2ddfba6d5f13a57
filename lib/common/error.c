/*
 * error.c - status names and the thread-local message behind
 * raster_last_error().  The message buffer is a fixed-size thread-local, so
 * reporting an error never allocates and never fails.
 */
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static _Thread_local char last_error[1024];
/* Set with the message, so a binding tells a missing file or band from other
 * failures of the same status without reading the prose. */
static _Thread_local raster_cause_t last_cause;

unsigned
raster_version_number(void)
{
    return RASTER_VERSION_MAJOR * 10000u + RASTER_VERSION_MINOR * 100u + RASTER_VERSION_PATCH;
}

const char *
raster_status_str(raster_status_t st)
{
    switch (st) {
    case RASTER_OK: return "RASTER_OK";
    case RASTER_E_INVALID_ARG: return "RASTER_E_INVALID_ARG";
    case RASTER_E_IO: return "RASTER_E_IO";
    case RASTER_E_FORMAT: return "RASTER_E_FORMAT";
    case RASTER_E_CORRUPT: return "RASTER_E_CORRUPT";
    case RASTER_E_UNSUPPORTED: return "RASTER_E_UNSUPPORTED";
    case RASTER_E_NOMEM: return "RASTER_E_NOMEM";
    case RASTER_E_BOUNDS: return "RASTER_E_BOUNDS";
    case RASTER_E_TIMEOUT: return "RASTER_E_TIMEOUT";
    case RASTER_E_CLOSED: return "RASTER_E_CLOSED";
    }
    return "RASTER_E_UNKNOWN";
}

const char *
raster_last_error(void)
{
    return last_error;
}

raster_cause_t
raster_last_error_cause(void)
{
    return last_cause;
}

static raster_status_t
fail_v(raster_status_t st, raster_cause_t cause, const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    last_cause = cause;
    return st;
}

raster_status_t
raster__fail(raster_status_t st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(st, RASTER_CAUSE_NONE, fmt, ap);
    va_end(ap);
    return st;
}

raster_status_t
raster__fail_cause(raster_status_t st, raster_cause_t cause, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(st, cause, fmt, ap);
    va_end(ap);
    return st;
}

raster_status_t
raster__fail_again(raster_status_t st, const char *fmt, ...)
{
    const raster_cause_t cause = last_cause;   /* read before the format may fail */
    va_list ap;
    va_start(ap, fmt);
    fail_v(st, cause, fmt, ap);
    va_end(ap);
    return st;
}

int
raster__errno_is_fd_limit(int err)
{
    return err == EMFILE || err == ENFILE;
}

/* This process's soft RLIMIT_NOFILE, as words: "256", "unlimited". */
static void
nofile_limit_str(char *buf, size_t n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        snprintf(buf, n, "unknown");
    else if (rl.rlim_cur == RLIM_INFINITY)
        snprintf(buf, n, "unlimited");
    else
        snprintf(buf, n, "%llu", (unsigned long long)rl.rlim_cur);
}

raster_status_t
raster__fail_open(const char *path, int err, const char *doing)
{
    if (!raster__errno_is_fd_limit(err))
        return raster__fail(RASTER_E_IO, "%s: %s: %s", path, doing, strerror(err));
    char limit[32];
    nofile_limit_str(limit, sizeof limit);
    if (err == ENFILE)
        return raster__fail(RASTER_E_IO,
                            "%s: %s: the system's table of open files is full (ENFILE; fs.file-max); "
                            "this process's own limit is %s open files (RLIMIT_NOFILE)",
                            path, doing, limit);
    return raster__fail(RASTER_E_IO,
                        "%s: %s: too many open files (EMFILE): this process reached its limit of %s "
                        "open files (RLIMIT_NOFILE); raise it (ulimit -n, resource.setrlimit) or "
                        "close the datasets you no longer read",
                        path, doing, limit);
}
