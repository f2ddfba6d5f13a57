/*
 * convert.h - dtype conversion kernels over contiguous runs (convert.c), and
 * the scalar placing path they must equal (place.c).  Private to lib/ and
 * the tests; never installed.
 *
 * A kernel converts n elements of one dtype at 'src' into n elements of
 * another at 'dst', both contiguous and aligned to their element size, not
 * overlapping.  There is one kernel per (source, destination) dtype pair and
 * per mode, each a plain loop with the types known, no branch per value and
 * no call, so the compiler vectorises it (convert.c is built with -O3, see
 * CMakeLists.txt).  The rules are GDAL's, listed in dtype.c: float to
 * integer adds +-0.5 (in float for a float32 source, as GDAL) and
 * truncates, everything saturates; scale/offset and mean/std are computed
 * in double and rounded once by the float64 rule.  float16 has no kernels (NULL): it takes the scalar path.
 */
#ifndef RASTERLOADER_CONVERT_H
#define RASTERLOADER_CONVERT_H

#include "common.h"

/* Per-element parameters repeat with this period: lane i of a run uses
 * a[i % RASTER__CVT_PERIOD], b[i % RASTER__CVT_PERIOD].  24 is a multiple of
 * 1, 2, 3, 4, 6, 8 and 12, so a compact pixel-interleaved row of that many
 * channels is one run whose per-channel scale/offset or mean/std is the
 * channel pattern repeated; and a multiple of every vector width. */
#define RASTER__CVT_PERIOD 24

/* n elements, no parameters: out = convert(in). */
typedef void (*raster__cvt_plain_fn)(const void *src, void *dst, int64_t n);

/* n elements with lane parameters a[], b[] (RASTER__CVT_PERIOD each):
 * affine out = in * a + b; divide out = (in - b) / a (b the mean, a the std),
 * both in double, rounded once to the destination. */
typedef void (*raster__cvt_param_fn)(const void *src, void *dst, int64_t n, const double *a,
                                     const double *b);

/* The kernel for (s, d), or NULL where there is none (float16 on either
 * side, s == d for the plain kernels: that is a copy). */
RASTER_HIDDEN raster__cvt_plain_fn raster__cvt_plain(raster_dtype_t s, raster_dtype_t d);
RASTER_HIDDEN raster__cvt_param_fn raster__cvt_affine(raster_dtype_t s, raster_dtype_t d);
RASTER_HIDDEN raster__cvt_param_fn raster__cvt_divide(raster_dtype_t s, raster_dtype_t d);

/* raster__place_scalar() is raster__place() without the kernels: the
 * strided element-by-element path through double that every layout and
 * dtype pair can take.  For tests (the kernels must equal it bit for bit)
 * and the conversion benchmark. */
RASTER_HIDDEN void raster__place_scalar(const raster_view_t *src, const raster_view_t *dst,
                                        const raster__place_opts_t *opts);

#endif
