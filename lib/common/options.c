/*
 * options.c - the one struct_size rule of every public options struct
 * (written for users in rasterloader.h, above raster_read_options_t).
 *
 * Why one helper: each options struct used to check its own size its own
 * way (truncate here, reject there, other minimums, batch.c peeking at read
 * options with offsets of its own), so the same caller mistake gave other
 * answers in other calls.  Here a caller's struct is copied over the
 * defaults its _init() made, after two checks:
 *   - it reaches at least past its first field (smaller: never filled by
 *     _init(), or not an options struct at all);
 *   - it is not larger than ours: a newer caller may have set fields this
 *     library does not know, and ignoring them could read something else
 *     than what was asked.  Rejected without reading past our size, so a
 *     wrong struct_size never makes us read outside the caller's object.
 */
#include "common.h"

#include <string.h>

raster_status_t
raster__options_take(void *dst, size_t dst_nbytes, const void *src, size_t min_nbytes,
                     const char *type_name, const char *who)
{
    if (src == NULL)
        return RASTER_OK;
    size_t n;
    memcpy(&n, src, sizeof n);    /* struct_size: the first field of every options struct */
    RASTER_CHECK(n >= min_nbytes, RASTER_E_INVALID_ARG,
                 "%s: %s_t.struct_size is %zu, less than its first field needs (%zu); fill it "
                 "with %s_init()", who, type_name, n, min_nbytes, type_name);
    RASTER_CHECK(n <= dst_nbytes, RASTER_E_INVALID_ARG,
                 "%s: %s_t.struct_size is %zu, larger than the %zu bytes this rasterloader (%s) "
                 "knows: the caller was built against a newer rasterloader.h and may set fields "
                 "this library would ignore; build it against the header of the library it runs with",
                 who, type_name, n, dst_nbytes, RASTER_VERSION_STRING);
    memcpy(dst, src, n);
    memcpy(dst, &dst_nbytes, sizeof dst_nbytes);   /* the copy is whole now */
    return RASTER_OK;
}
