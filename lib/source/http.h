/*
 * http.h - HTTP range transfers for the remote byte source
 * (tiff_vsi.c), made with libcurl directly so that the network wait happens
 * outside GDAL and outside the fork gate (tiff_http.c says why).  Private to
 * lib/source/.
 */
#ifndef RASTER_TIFF_HTTP_H
#define RASTER_TIFF_HTTP_H

#include "source.h"

#include <stddef.h>
#include <stdint.h>

/* The URL that raster__http_read_ranges() fetches for the GDAL path 'path'
 * (borrowed; a view into it), or NULL when GDAL must serve it: only
 * /vsicurl/http:// and /vsicurl/https:// with no /vsicurl? options.  Other
 * network paths (/vsis3/ ...) sign their requests inside GDAL. */
RASTER_HIDDEN const char *raster__http_url_of(const char *path);

/* Reads 'n' byte ranges of 'url' (offs[i], sizes[i] into bufs[i]) of a file
 * of 'file_nbytes' bytes, consecutive ranges as one request, the others in
 * parallel, retrying transient failures (the rule: tiff_http.c), on this
 * thread's connections (kept alive between reads, shared by every file the
 * thread reads, closed when the thread exits; a forked child forgets its
 * parent's and opens its own).  Call outside the fork gate (it enters it
 * around every libcurl call and leaves it while waiting on the network).  On failure RASTER_E_IO, the message
 * naming 'name' (the dataset's path), 'what', the range, the HTTP status or
 * the transport's cause, and the retries spent. */
RASTER_HIDDEN raster_status_t raster__http_read_ranges(const char *url, const char *name,
                                                       uint64_t file_nbytes, int n, void **bufs,
                                                       const uint64_t *offs, const size_t *sizes,
                                                       const char *what);

#endif /* RASTER_TIFF_HTTP_H */
