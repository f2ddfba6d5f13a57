/*
 * tiff_http.h - HTTP range transfers for the remote byte source
 * (tiff_vsi.c), made with libcurl directly so that the network wait happens
 * outside GDAL and outside the fork gate (tiff_http.c says why).  Private to
 * lib/tiff/.
 */
#ifndef RASTER_TIFF_HTTP_H
#define RASTER_TIFF_HTTP_H

#include "../internal.h"

#include <stddef.h>
#include <stdint.h>

/* The connections of one VSI handle: not thread-safe, used by one read at a
 * time (tiff_vsi.c's handle stack hands it out). */
typedef struct raster__http raster__http_t;

/* The URL that raster__http_read_ranges() fetches for the GDAL path 'path'
 * (borrowed; a view into it), or NULL when GDAL must serve it: only
 * /vsicurl/http:// and /vsicurl/https:// with no /vsicurl? options.  Other
 * network paths (/vsis3/ ...) sign their requests inside GDAL. */
RASTER_HIDDEN const char *raster__http_url_of(const char *path);

/* A new connection set (inside or outside the gate: it enters it itself);
 * NULL when out of memory. */
RASTER_HIDDEN raster__http_t *raster__http_new(void);

/* Closes the connections and frees 'h' (NULL is fine).  Only in the process
 * that made it: a forked child forgets its parent's (tiff_vsi.c's handle
 * stack), it never closes them (that could write to a socket the parent is
 * still using, such as a TLS close_notify). */
RASTER_HIDDEN void raster__http_free(raster__http_t *h);

/* Reads 'n' byte ranges of 'url' (offs[i], sizes[i] into bufs[i]) of a file
 * of 'file_nbytes' bytes, consecutive ranges as one request, the others in
 * parallel, retrying transient failures (the rule: tiff_http.c).  Call
 * outside the fork gate (it enters it around every libcurl call and leaves
 * it while waiting on the network).  On failure RASTER_E_IO, the message
 * naming 'name' (the dataset's path), 'what', the range, the HTTP status or
 * the transport's cause, and the retries spent. */
RASTER_HIDDEN raster_status_t raster__http_read_ranges(raster__http_t *h, const char *url, const char *name,
                                                       uint64_t file_nbytes, int n, void **bufs,
                                                       const uint64_t *offs, const size_t *sizes,
                                                       const char *what);

#endif /* RASTER_TIFF_HTTP_H */
