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

/* ---- lookup tables (8- and 16-bit integer sources, with parameters) ----
 *
 * With scale/offset or mean/std, an 8- or 16-bit integer source's output
 * (to any dtype but float16 and float64)
 * depends only on the channel and the input value, so a channel's
 * conversion can be a table of the output for every input value (256 or
 * 65,536 entries of the destination dtype), filled by the direct kernel
 * above over every input value (so bit-identical to it by construction),
 * then one load per value (a gather kernel).
 *
 * When a table is built (the rule): each thread counts, per key (source
 * dtype, destination dtype, mode and the bits of the channel's two
 * parameters), the values it has converted directly; once the count
 * reaches the table's entries (a call converting that many at once, such
 * as a 256x256 uint16 window, builds at once) it builds the table.  So a
 * thread never spends more converting directly than the table costs to
 * build (about as much: one direct conversion of as many values), and
 * every later conversion with that key (every batch of a BatchDataset,
 * every read of a Dataset with the same mean/std) is a lookup.
 *
 * Memory: the tables live in a per-thread cache (no lock, no sharing) of
 * at most RASTER__CVT_TABLE_SLOTS keys and RASTER__CVT_TABLE_BUDGET bytes
 * of tables, least recently used evicted; a pthread key destructor frees
 * them when the thread exits.  A uint16 table is 64 KiB (to uint8) to
 * 256 KiB (to float32 or a 32-bit integer; float64 has none), so a 4-band uint16 -> float32
 * mean/std with a different mean/std per band holds 1 MiB (one table, if
 * all bands share the same pair).  Where the budget, the slots or memory
 * run out, the call converts directly: the same bits, only slower. */
#define RASTER__CVT_TABLE_BUDGET ((size_t)4 << 20)
#define RASTER__CVT_TABLE_SLOTS 32

/* n elements through per-lane tables: lane i reads lanes[i % PERIOD], the
 * entry of input value 0 of its channel's table (signed values index below
 * it). */
typedef void (*raster__cvt_gather_fn)(const void *src, void *dst, int64_t n, const void *const *lanes);

/* The gather kernel for (s, d): s an 8- or 16-bit integer, d any dtype but
 * float16 and float64 (see convert.c); else NULL. */
RASTER_HIDDEN raster__cvt_gather_fn raster__cvt_gather(raster_dtype_t s, raster_dtype_t d);

/* raster__cvt_tables() gives tables[k] for channel k of nchans (at most
 * RASTER__CVT_PERIOD) with parameters a[k], b[k] (as the param kernels:
 * scale/offset, or with 'divide' std/mean), counting 'values' (per channel)
 * towards building them.  1 when every channel has its table: they stay
 * valid until this thread's next call here.  0 to convert directly
 * (tables[] then unspecified). */
RASTER_HIDDEN int raster__cvt_tables(raster_dtype_t s, raster_dtype_t d, int divide, const double *a,
                                     const double *b, int nchans, int64_t values, const void **tables);

/* Tests and benchmarks: turn tables on or off for the process (the
 * environment's RASTERLOADER_CONVERT_TABLES=0 starts them off), and free
 * the calling thread's tables and counts. */
RASTER_HIDDEN void raster__cvt_tables_enable(int on);
RASTER_HIDDEN void raster__cvt_tables_clear(void);

/* raster__place_scalar() is raster__place() without the kernels: the
 * strided element-by-element path through double that every layout and
 * dtype pair can take.  For tests (the kernels must equal it bit for bit)
 * and the conversion benchmark. */
RASTER_HIDDEN void raster__place_scalar(const raster_view_t *src, const raster_view_t *dst,
                                        const raster__place_opts_t *opts);

#endif
