/*
 * rasterloader.h - the one public header of librasterloader.
 *
 * rasterloader reads GeoTIFF (and, through GDAL, any raster GDAL opens) image
 * and mask bands straight into memory the caller owns or borrows from a
 * bounded pool, in any layout the caller describes (HWC by default, CHW or a
 * strided sub-view of a bigger buffer), and exports pooled buffers through
 * DLPack without a copy.  Every output byte is written once, into the
 * destination.
 *
 * Ownership words used on every pointer below:
 *   borrowed        used only during the call; the caller keeps it.
 *   retained        kept by the library until a stated event.
 *   owned by caller the caller must release it with the named function.
 *   view            points into library memory; valid until a stated event.
 *
 * Errors: every fallible function returns a raster_status_t; on failure
 * raster_last_error() holds a message for the calling thread naming the file,
 * window and cause.  Nothing is ever written outside a destination view.
 *
 * Threads: a dataset may be read from many threads at once; a pool and its
 * buffers are thread-safe.  Fork: objects created before fork() keep working
 * in the child (file handles are re-opened lazily) or fail with a clear error.
 */
#ifndef RASTERLOADER_H
#define RASTERLOADER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RASTER_VERSION_MAJOR 0
#define RASTER_VERSION_MINOR 1
#define RASTER_VERSION_PATCH 0
#define RASTER_VERSION_STRING "0.1.0"

#if defined(RASTER_BUILDING_LIBRARY) && defined(__GNUC__)
#  define RASTER_API __attribute__((visibility("default")))
#else
#  define RASTER_API
#endif

/* raster_version_number() returns MAJOR*10000 + MINOR*100 + PATCH of the
 * library actually loaded, to compare with the macros above. */
RASTER_API unsigned raster_version_number(void);

/* ================================ Errors ================================= */

typedef enum raster_status {
    RASTER_OK = 0,
    RASTER_E_INVALID_ARG = 1,   /* caller broke a documented precondition */
    RASTER_E_IO = 2,            /* the OS or the network said no */
    RASTER_E_FORMAT = 3,        /* not a raster we can open */
    RASTER_E_CORRUPT = 4,       /* file or compressed stream is malformed */
    RASTER_E_UNSUPPORTED = 5,   /* valid file that no reader can decode */
    RASTER_E_NOMEM = 6,         /* an allocation failed or a budget is too small */
    RASTER_E_BOUNDS = 7,        /* window outside the raster, band out of range */
    RASTER_E_TIMEOUT = 8,       /* a pool stayed full for the whole timeout */
    RASTER_E_CLOSED = 9         /* the dataset or pool was closed */
    /* Released values never change; new codes are appended. */
} raster_status_t;

/* raster_status_str() returns a static name such as "RASTER_E_CORRUPT". */
RASTER_API const char *raster_status_str(raster_status_t st);

/* raster_last_error() returns the message of the last failure on the calling
 * thread (view: owned by the library, valid until the next rasterloader call
 * on this thread).  A success leaves it untouched; "" if nothing failed yet. */
RASTER_API const char *raster_last_error(void);

/* Why the last failure on the calling thread happened, when a caller needs
 * to tell it apart from other failures of the same status (a binding picks
 * FileNotFoundError or IndexError by it) without matching the message.  Set
 * together with the message; RASTER_CAUSE_NONE for every other failure. */
typedef enum raster_cause {
    RASTER_CAUSE_NONE = 0,
    RASTER_CAUSE_NOT_FOUND = 1,     /* RASTER_E_IO: the path does not exist */
    RASTER_CAUSE_BAND_INDEX = 2     /* RASTER_E_BOUNDS: a band number not in the dataset */
    /* Released values never change; new causes are appended. */
} raster_cause_t;

/* raster_last_error_cause() is the cause of the failure whose message
 * raster_last_error() holds (RASTER_CAUSE_NONE if nothing failed yet). */
RASTER_API raster_cause_t raster_last_error_cause(void);

/* ================================ Types ================================== */

typedef enum raster_dtype {
    RASTER_U8 = 0, RASTER_I8 = 1, RASTER_U16 = 2, RASTER_I16 = 3,
    RASTER_U32 = 4, RASTER_I32 = 5, RASTER_F16 = 6, RASTER_F32 = 7,
    RASTER_F64 = 8
} raster_dtype_t;
#define RASTER_DTYPE_COUNT 9

/* raster_dtype_size() is the size in bytes of one element (0 if unknown);
 * raster_dtype_name() a static numpy-style name ("uint16", "float32"). */
RASTER_API size_t raster_dtype_size(raster_dtype_t dt);
RASTER_API const char *raster_dtype_name(raster_dtype_t dt);

/* A window in pixel coordinates of the full-resolution raster.  It may reach
 * outside the raster only in boundless reads. */
typedef struct raster_window {
    int64_t col_off, row_off, width, height;
} raster_window_t;

/*
 * raster_view_t describes where pixels go: 'data' (borrowed) plus a shape and
 * byte strides, so HWC, CHW and strided crops of a bigger buffer are all
 * views.  Strides must be non-negative and elements must not overlap.
 * Element (r, c, k) lives at data + r*row_stride + c*col_stride + k*chan_stride.
 */
typedef struct raster_view {
    void *data;
    raster_dtype_t dtype;
    int64_t height, width, channels;
    int64_t row_stride, col_stride, chan_stride;   /* bytes */
} raster_view_t;

/* raster_view_hwc() fills a compact HWC view over 'data' (borrowed);
 * raster_view_nbytes() is the number of bytes a compact h*w*c buffer of 'dt'
 * needs (0 on overflow), for sizing buffers exactly. */
RASTER_API raster_view_t raster_view_hwc(void *data, raster_dtype_t dt,
                                         int64_t height, int64_t width,
                                         int64_t channels);
RASTER_API size_t raster_view_nbytes(raster_dtype_t dt, int64_t height,
                                     int64_t width, int64_t channels);

/*
 * Options structs and 'struct_size' (one rule for raster_open_options_t,
 * raster_read_options_t, raster_masks_options_t, raster_dlpack_request_t,
 * raster_batch_options_t and raster_warp_options_t).  Each starts with 'struct_size', which its
 * _init() function sets to the sizeof the caller was compiled with; new
 * fields are only ever appended.  Passing NULL means the defaults.
 *   Older caller (struct_size smaller than this library's struct): the
 *     fields it has are used; every field past its struct_size keeps the
 *     value _init() gives it.  struct_size must cover at least the first
 *     field after struct_size itself, else RASTER_E_INVALID_ARG (a struct
 *     that was never filled by _init()).
 *   Newer caller (struct_size larger than this library's struct, so it may
 *     have set fields this library does not know): RASTER_E_INVALID_ARG
 *     naming the struct and both sizes.  Ignoring such fields could read
 *     something other than what the caller asked for; build against the
 *     rasterloader.h of the library you run with.
 * The library never reads past struct_size, nor past its own struct.
 */

/*
 * Read options.  Fill with raster_read_options_init() so defaults live in the
 * library, then change fields; 'struct_size' tells the library which fields
 * the caller was built with (see the rule above).  Passing NULL to a read
 * means the defaults.
 *   bands, band_count  1-based band numbers, any order, repeats allowed
 *                      (borrowed); NULL means every band in file order.
 *   boundless          nonzero: the window may reach outside the raster; the
 *                      outside is written as fill_value (converted to the
 *                      destination dtype, not scaled) and masked 0.
 *   scale, offset      optional per-output-channel arrays of band_count
 *                      (or channel) length (borrowed): out = in*scale+offset,
 *                      computed in double, then converted.  NULL = 1 and 0.
 *   mean, std          optional per-output-channel arrays (borrowed), the
 *                      other way to normalise: out = (in - mean) / std,
 *                      in that order, in double, then one rounding to the
 *                      destination dtype, so in == mean gives exactly 0
 *                      (in*(1/std) - mean/std would not).  NULL = 0 and 1.
 *                      Exclusive with scale/offset (RASTER_E_INVALID_ARG);
 *                      a std of 0 is RASTER_E_INVALID_ARG.
 *   fill_none          nonzero: the caller has no fill value (rasterio:
 *                      fill_value None and no nodata on the last band read).
 *                      A boundless read fills with 0 then; a boundless
 *                      resampled read's VRT takes band 1's nodata, or none
 *                      (see raster_read_resampled_into()).
 * Conversion to the destination dtype follows GDAL's rules, so results equal
 * rasterio's read(out_dtype=...): float to integer rounds half away from zero
 * and saturates (NaN becomes 0); integer to narrower integer saturates; to
 * float16 rounds to nearest even.
 */
typedef struct raster_read_options {
    size_t struct_size;
    const int *bands;
    int band_count;
    int boundless;
    double fill_value;
    const double *scale;
    const double *offset;
    /* appended after 0.1.0: */
    const double *mean;
    const double *std;
    /* appended after 0.1.0 (boundless resampled reads): */
    int fill_none;
} raster_read_options_t;

RASTER_API void raster_read_options_init(raster_read_options_t *opt);

/* =============================== Datasets ================================ */

typedef struct raster_dataset raster_dataset_t;

/* Which reader serves a dataset: chosen once at open. */
typedef enum raster_reader {
    RASTER_READER_GDAL = 0,          /* GDALDatasetRasterIOEx, any format */
    RASTER_READER_NATIVE_TIFF = 1    /* pread + libdeflate/libzstd fast path */
} raster_reader_t;

/*
 * Dataset-level metadata.  String fields are views owned by the dataset,
 * valid until it is freed.  Fields the file does not have are 0 / "" and
 * the matching has_ flag is 0.
 */
typedef struct raster_info {
    int64_t width, height;          /* pixels */
    int band_count;
    raster_dtype_t dtype;           /* of band 1; see raster_band_info() */
    int64_t block_width, block_height;  /* of band 1 (strips: width x rows) */
    const char *driver;             /* GDAL short name, e.g. "GTiff" */
    const char *compression;        /* "NONE", "DEFLATE", "ZSTD", "LZW", ... */
    const char *interleave;         /* "PIXEL" or "BAND" ("" if unknown) */
    int predictor;                  /* 1 when none or not a TIFF */
    int tiled;                      /* 1 tiles, 0 strips or not a TIFF */
    int has_nodata;                 /* nodata of band 1 */
    double nodata;
    int has_geotransform;
    double geotransform[6];         /* GDAL order: x0, dx, rx, y0, ry, dy */
    const char *crs_wkt;            /* WKT2, "" when the file has no CRS */
    int overview_count;             /* of band 1 */
    raster_reader_t reader;
} raster_info_t;

/* Per-band metadata (band is 1-based). */
typedef struct raster_band_info {
    raster_dtype_t dtype;
    int64_t block_width, block_height;
    int has_nodata;
    double nodata;
    int mask_flags;                 /* GDAL GMF_* bits: 1 ALL_VALID,
                                       2 PER_DATASET, 4 ALPHA, 8 NODATA */
    const char *color_interp;       /* view: "gray", "red", "alpha", ... */
} raster_band_info_t;

/*
 * raster_open() opens the raster at 'path_or_url' (borrowed): a local path
 * or anything GDAL opens, /vsi paths included.  URLs: /vsicurl/, /vsis3/,
 * /vsigs/, /vsiaz/ (and GDAL's other virtual file systems) pass through;
 * http:// and https:// are read through /vsicurl/, and s3://, gs://, az://
 * through /vsis3/, /vsigs/, /vsiaz/.  GDAL's configuration (environment or
 * CPLSetConfigOption: GDAL_HTTP_MAX_RETRY, GDAL_HTTP_TIMEOUT, AWS_*, ...)
 * applies; messages name the GDAL path, which contains the URL.  A remote
 * failure (HTTP status, timeout, short body) is RASTER_E_IO.  It reads the
 * directory only; no pixels are decoded.  On RASTER_OK, *ds_out is owned by
 * the caller: release it with raster_close().  On failure *ds_out is NULL.
 */
RASTER_API raster_status_t raster_open(const char *path_or_url,
                                       raster_dataset_t **ds_out);

/* Options for raster_open_ex(); fill with raster_open_options_init(). */
typedef struct raster_open_options {
    size_t struct_size;
    int reader;     /* -1 (default): native TIFF when it can serve the file, else
                       GDAL; RASTER_READER_GDAL: always GDAL (for comparisons);
                       RASTER_READER_NATIVE_TIFF: native or RASTER_E_UNSUPPORTED */
} raster_open_options_t;

RASTER_API void raster_open_options_init(raster_open_options_t *opt);

/* raster_open_ex() is raster_open() with options (NULL = defaults). */
RASTER_API raster_status_t raster_open_ex(const char *path_or_url,
                                          const raster_open_options_t *opt,
                                          raster_dataset_t **ds_out);

/*
 * raster_close() marks 'ds' closed and drops the caller's reference; NULL is
 * fine.  Reads in flight on other threads finish normally (each holds its own
 * reference); the memory and file handles go when the last reference does.
 * A holder of a reference from raster_dataset_retain() that reads after the
 * close gets RASTER_E_CLOSED.  Without such a reference, 'ds' must not be
 * used after raster_close() (as with fclose()).
 */
RASTER_API void raster_close(raster_dataset_t *ds);

/* raster_dataset_retain() adds a reference (returns 'ds'); the holder drops
 * it with raster_dataset_release().  Batch requests and other threads use
 * this to outlive a concurrent raster_close(). */
RASTER_API raster_dataset_t *raster_dataset_retain(raster_dataset_t *ds);
RASTER_API void raster_dataset_release(raster_dataset_t *ds);

/* raster_dataset_info() copies the metadata into *info_out (strings stay
 * views into 'ds').  raster_band_info() does the same for one band. */
RASTER_API raster_status_t raster_dataset_info(const raster_dataset_t *ds,
                                               raster_info_t *info_out);
RASTER_API raster_status_t raster_band_info(const raster_dataset_t *ds, int band,
                                            raster_band_info_t *info_out);

/*
 * raster_read_into() reads 'win' of the bands in 'opt' into 'dst' (borrowed;
 * dst->data is written, nothing outside it).  dst must be win.height x
 * win.width x band_count, of any raster_dtype_t.  Thread-safe: any number of
 * threads may read one dataset.  Steady-state reads allocate nothing: each
 * thread's decoders and scratch are made on its first read and reused.
 * Fails with RASTER_E_BOUNDS for a window outside the raster without
 * boundless or an unknown band, RASTER_E_INVALID_ARG for a view that does not
 * match, RASTER_E_CORRUPT for a malformed segment, RASTER_E_CLOSED after
 * raster_close().  On failure dst may hold a partial result.
 */
RASTER_API raster_status_t raster_read_into(raster_dataset_t *ds, raster_window_t win,
                                            const raster_read_options_t *opt,
                                            const raster_view_t *dst);

/*
 * raster_read_mask_into() writes the uint8 validity mask (0 invalid, 255
 * valid; alpha values pass through as GDAL gives them) of 'win' into 'dst'
 * (borrowed, channels must be 1, dtype RASTER_U8), with rasterio's rules:
 * with exactly one band in opt->bands, that band's mask (read_masks);
 * otherwise the dataset mask (dataset_mask): the per-dataset mask if the file
 * has one, else the alpha band, else valid where any band is not nodata,
 * else all 255.  The boundless area is 0.  A label mask stored in its own
 * file on the same grid is simply a second dataset read with
 * raster_read_into().
 */
RASTER_API raster_status_t raster_read_mask_into(raster_dataset_t *ds, raster_window_t win,
                                                 const raster_read_options_t *opt,
                                                 const raster_view_t *dst);

/*
 * Resampled reads: rasterio's read(out_shape=..., resampling=...).  'win' is
 * a window in full-resolution pixels that may have fractional offsets and
 * sizes (rasterio's float windows); the output is dst's height x width,
 * which may differ from the window's.  GDAL resamples, for either reader:
 * one GDALDatasetRasterIOEx with the window as floating point and GDAL's
 * integer window its truncation, exactly as rasterio 1.4 calls it, so
 * results equal rasterio's with the same GDAL (which may read an overview
 * for a smaller output).  GDAL writes dst's dtype itself, as for rasterio's
 * out_dtype, except int8 and float16 (not GDAL 3.6 types) and reads with
 * scale/offset: those are resampled into float64, then converted and
 * scaled by the rules of raster_read_into() (a staging copy, allocated per
 * read).  Int8 bands with a GDAL before 3.7 (which has no Int8 and resamples
 * them as unsigned bytes) are resampled as bytes, nearest only: another
 * method is RASTER_E_UNSUPPORTED.  Band selection as in raster_read_into().
 * Not boundless, the window must lie inside the raster; it must have a
 * positive width and height.  Boundless, it is read as rasterio 1.4 reads
 * it: GDAL reads a VRT of the dataset whose grid is the window's
 * (rasterio.vrt._boundless_vrt_doc with the same numbers: the window's
 * transform, size max(raster, window) + 1, each band a ComplexSource with
 * 'resampling', the nodata below as NoDataValue and NODATA) over (0, 0,
 * width, height) into dst.  The VRT's nodata is opt->fill_value, or with
 * fill_none band 1's nodata or none; the outside is that value, or 0.
 * A dataset not opened from a path (a warped VRT) is RASTER_E_UNSUPPORTED
 * there.  raster_resampling_t values are rasterio's
 * Resampling values (and GDAL's GRIORA_* ones); a warp-only method is
 * RASTER_E_INVALID_ARG.
 */
typedef enum raster_resampling {
    RASTER_RESAMPLE_NEAREST = 0, RASTER_RESAMPLE_BILINEAR = 1, RASTER_RESAMPLE_CUBIC = 2,
    RASTER_RESAMPLE_CUBIC_SPLINE = 3, RASTER_RESAMPLE_LANCZOS = 4, RASTER_RESAMPLE_AVERAGE = 5,
    RASTER_RESAMPLE_MODE = 6, RASTER_RESAMPLE_GAUSS = 7, RASTER_RESAMPLE_RMS = 14
} raster_resampling_t;

typedef struct raster_window_f {
    double col_off, row_off, width, height;
} raster_window_f_t;

RASTER_API raster_status_t raster_read_resampled_into(raster_dataset_t *ds, raster_window_f_t win,
                                                      raster_resampling_t resampling,
                                                      const raster_read_options_t *opt,
                                                      const raster_view_t *dst);

/*
 * raster_read_mask_resampled_into() is raster_read_mask_into() resampled the
 * same way (rasterio's read_masks/dataset_mask with out_shape): each band
 * mask the rules use is resampled by GDAL over 'win' to dst's size (so
 * average gives values between 0 and 255 at mask edges, as in rasterio),
 * and the any-band-valid dataset mask is 255 where any of them is nonzero.
 * dst: uint8, one channel.  Not boundless (RASTER_E_UNSUPPORTED):
 * raster_read_masks_window_into() reads boundless resampled masks.
 */
RASTER_API raster_status_t raster_read_mask_resampled_into(raster_dataset_t *ds, raster_window_f_t win,
                                                           raster_resampling_t resampling,
                                                           const raster_read_options_t *opt,
                                                           const raster_view_t *dst);

/*
 * The masks of a whole read with rasterio 1.4's rules, in one call: each
 * output channel k is the mask of band bands[k] (or, for
 * RASTER_MASKS_DATASET, the one dataset mask), 0 invalid, nonzero valid
 * (255, or a band's alpha value as GDAL gives it).
 *   RASTER_MASKS_BANDS    read_masks(): each band's own mask.  Boundless:
 *                         0 outside, except (rasterio's boundless VRT) a band
 *                         with no mask of its own in a dataset that has masks,
 *                         no nodata on band 1 and not a per-dataset mask on
 *                         every band (RGBA): 255 everywhere.
 *   RASTER_MASKS_READ     the mask of read(masked=True) and read(fill_value=):
 *                         not boundless, each band's mask (and *no_mask_out = 1
 *                         when no band of the dataset has a mask: rasterio's
 *                         nomask).  Boundless, rasterio composites through a VRT
 *                         whose nodata is opt->nodata (when has_nodata):
 *                         - no band of the dataset has a mask: without a value,
 *                           0 outside only; with one that rounds to a nonzero
 *                           byte, 255 everywhere; else 0 outside and where the
 *                           pixel equals it;
 *                         - every band has a per-dataset mask: 0 outside, the
 *                           band's mask inside;
 *                         - else with a value: 0 outside and where the pixel
 *                           equals it (the file's own masks are not used);
 *                         - else: a band with no mask of its own is 255
 *                           everywhere, the others 0 outside, their mask inside.
 *   RASTER_MASKS_DATASET  dataset_mask() (see raster_read_mask_into()): dst has
 *                         one channel; 0 outside.
 * "Equals" compares in the band's own dtype, as GDAL's nodata mask does: NaN
 * equals NaN; an integer band never equals a value that is not an integer
 * of its range; a float band compares with the value rounded to its dtype.
 *
 * Options: fill with raster_masks_options_init() (struct_size as in
 * raster_read_options_t).
 *   rule         raster_mask_rule_t [RASTER_MASKS_BANDS].
 *   bands, band_count  as raster_read_options_t (borrowed; NULL = all).
 *   boundless    nonzero: the window may reach outside the raster.
 *   has_nodata, nodata  RASTER_MASKS_READ and boundless only: the value the
 *                boundless read treats as nodata (rasterio: the read's
 *                fill_value, else the last band's nodata clipped to its
 *                dtype; has_nodata 0 when neither).
 */
typedef enum raster_mask_rule {
    RASTER_MASKS_BANDS = 0,
    RASTER_MASKS_READ = 1,
    RASTER_MASKS_DATASET = 2
} raster_mask_rule_t;

typedef struct raster_masks_options {
    size_t struct_size;
    int rule;
    const int *bands;
    int band_count;
    int boundless;
    int has_nodata;
    double nodata;
} raster_masks_options_t;

RASTER_API void raster_masks_options_init(raster_masks_options_t *opt);

/*
 * raster_read_masks_into() writes the masks of 'win' into 'dst' (borrowed,
 * RASTER_U8, win's height x width, band_count channels or 1 for
 * RASTER_MASKS_DATASET, any strides).  'pixels' (borrowed, may be NULL) is
 * the read's image, as raster_read_into() wrote it for the same window,
 * bands and boundless: the one rule that looks at pixel values (READ,
 * boundless, with a value) takes them from there, so a masked read is one
 * pixel read plus this call.  Only when 'pixels' is NULL, or of a dtype that
 * does not hold every value of the band's dtype exactly (a narrowing
 * out_dtype), does that rule read the band's pixels itself, into per-thread
 * scratch.  *no_mask_out (may be NULL) is 1 when rasterio would give no mask
 * at all (dst is then all 255), else 0.  A window of width or height 0 is
 * not an error here: nothing is written (dst is not looked at) and
 * *no_mask_out is still set, as rasterio decides it for an empty read.
 * Fails as raster_read_mask_into().
 */
RASTER_API raster_status_t raster_read_masks_into(raster_dataset_t *ds, raster_window_t win,
                                                  const raster_masks_options_t *opt,
                                                  const raster_view_t *pixels,
                                                  const raster_view_t *dst, int *no_mask_out);

/*
 * raster_read_masks_resampled_into() is raster_read_masks_into() for a
 * resampled read (rasterio's read(out_shape=..., masked=True), read_masks
 * and dataset_mask with out_shape): each mask is resampled by GDAL over
 * 'win' to dst's size, as raster_read_mask_resampled_into() does.  No
 * boundless (RASTER_E_UNSUPPORTED), so no rule looks at pixel values.  A dst
 * of height or width 0 writes nothing and sets *no_mask_out.
 */
RASTER_API raster_status_t raster_read_masks_resampled_into(raster_dataset_t *ds, raster_window_f_t win,
                                                            raster_resampling_t resampling,
                                                            const raster_masks_options_t *opt,
                                                            const raster_view_t *dst, int *no_mask_out);

/*
 * The one read of a window as rasterio gives it (Python's read(), read_hwc(),
 * read_masks() and dataset_mask() call only these two): 'win' in floats,
 * the output size dst's, and the library decides how to read it:
 *   - a plain read (raster_read_into() / raster_read_masks_into()) of the
 *     window rounded to whole pixels, floor(x + 0.5) for each field, when
 *     its width and height are whole (within 1e-9) and equal to dst's, and
 *     its offsets are whole too or (not boundless) 'resampling' is nearest
 *     (GDAL's nearest rule picks exactly those pixels);
 *   - otherwise a resampled read (raster_read_resampled_into() /
 *     raster_read_masks_resampled_into()) of the float window itself, so a
 *     fractional offset with bilinear, cubic, ... interpolates at the
 *     sub-pixel position as rasterio's GDAL call does, even when the size
 *     does not change; boundless, through rasterio's VRT over the window
 *     (its grid is offset by the fraction, so nearest too).
 * Arguments, results and failures are those of the call it makes; 'pixels'
 * is used by a plain masks read only.  raster_mosaic_read_source() reads
 * each source through raster_read_window_into().
 */
RASTER_API raster_status_t raster_read_window_into(raster_dataset_t *ds, raster_window_f_t win,
                                                   raster_resampling_t resampling,
                                                   const raster_read_options_t *opt,
                                                   const raster_view_t *dst);
RASTER_API raster_status_t raster_read_masks_window_into(raster_dataset_t *ds, raster_window_f_t win,
                                                         raster_resampling_t resampling,
                                                         const raster_masks_options_t *opt,
                                                         const raster_view_t *pixels,
                                                         const raster_view_t *dst, int *no_mask_out);

/* ================================ Threads ================================ */

/*
 * raster_set_threads() sets how many threads one read may use to decode the
 * tiles or strips it touches: the calling thread plus up to n-1 workers of a
 * small persistent pool that the library starts on first need.  n <= 0 means
 * the default, the number of online cores; n is capped at 64.  Results are
 * identical for every n.  Process-wide, takes effect at the next read, safe
 * to call from any thread.  After fork() the child starts its own workers on
 * its first parallel read.  Always returns RASTER_OK: if the system refuses
 * a worker thread, reads simply decode on the threads that exist.
 * raster_get_threads() returns the effective count (>= 1).
 */
RASTER_API raster_status_t raster_set_threads(int n);
RASTER_API int raster_get_threads(void);

/* ============================= GDAL config =============================== */

/*
 * raster_gdal_config_push() makes 'count' GDAL config options (keys[i] =
 * values[i], borrowed: copied) apply to this thread's rasterloader calls
 * until the matching raster_gdal_config_pop() on the same thread: every GDAL
 * call the library makes for them, on this thread and on the library's
 * worker threads that help with one of its reads or batch reads, sees them
 * as thread-local config options (CPLSetThreadLocalConfigOption), which GDAL
 * prefers over CPLSetConfigOption() and the environment.  Pushes nest, the
 * innermost winning; the pop restores the thread-local values this thread
 * had before the push.  Other threads are not affected.  GDAL reads some
 * options only when it opens a file (HTTP headers, user agent, credentials of
 * /vsicurl/ and /vsis3/ handles): push them around raster_open() too.  (The
 * Python package does not use it: it runs on the GDAL rasterio loaded, where
 * a rasterio.Env's options already are; docs/install.md.)  Fails with RASTER_E_INVALID_ARG (a NULL
 * or empty key, a NULL value) or RASTER_E_NOMEM, and then changes nothing.
 * raster_gdal_config_pop() with nothing pushed does nothing.
 */
RASTER_API raster_status_t raster_gdal_config_push(const char *const *keys,
                                                   const char *const *values, int count);
RASTER_API void raster_gdal_config_pop(void);

/* ======================== Buffer pool and handles ======================== */

typedef struct raster_pool raster_pool_t;
typedef struct raster_buffer raster_buffer_t;

/*
 * raster_pool_create() makes a pool that never holds more than 'budget_bytes'
 * of pixel memory.  Blocks are at least 64-byte aligned and kept by size
 * class after first use, so a steady loop of acquire/release stops calling
 * the allocator.  Owned by caller: drop with raster_pool_destroy(), which is
 * legal while buffers are out: each buffer and each exported tensor keeps the
 * pool alive until it is released.  With RASTERLOADER_DEBUG=1 in the
 * environment when the pool is made, raster_pool_destroy() prints to stderr
 * each buffer still out and the call site that acquired it.
 */
RASTER_API raster_status_t raster_pool_create(size_t budget_bytes,
                                              raster_pool_t **pool_out);
RASTER_API void raster_pool_destroy(raster_pool_t *pool);

/*
 * raster_pool_acquire() hands out a compact [b, h, w, c] buffer of 'dt'
 * (owned by caller: release with raster_buffer_release()).  While the budget
 * is spent it waits for a release: timeout_ms 0 tries once, negative waits
 * forever, otherwise RASTER_E_TIMEOUT after that many milliseconds.  A
 * request larger than the whole budget fails at once with RASTER_E_NOMEM.
 * After raster_pool_destroy() it fails with RASTER_E_CLOSED.
 */
RASTER_API raster_status_t raster_pool_acquire(raster_pool_t *pool, raster_dtype_t dt,
                                               int64_t b, int64_t h, int64_t w, int64_t c,
                                               int timeout_ms, raster_buffer_t **buf_out);

/* raster_pool_block_nbytes() is the number of bytes a pool charges to its
 * budget for a buffer of 'nbytes' bytes: its size class (64-byte steps up to
 * 256, then quarter steps between powers of two), at most the pool's budget.
 * Size a budget for k buffers of n bytes as k * raster_pool_block_nbytes(n).
 * 0 for 0 bytes and for requests no pool can serve. */
RASTER_API size_t raster_pool_block_nbytes(size_t nbytes);

/* raster_buffer_retain() adds an owner and returns 'buf'; each owner calls
 * raster_buffer_release() once, from any thread (NULL is fine).  The last
 * release returns the block to its pool.  Releasing a buffer that is back
 * in its pool (released twice) aborts with a message. */
RASTER_API raster_buffer_t *raster_buffer_retain(raster_buffer_t *buf);
RASTER_API void raster_buffer_release(raster_buffer_t *buf);

/* raster_buffer_view() gives the HWC view of sample 'index' of a batch
 * buffer (index -1: the whole buffer as a view of b*h rows); the view is
 * valid while the caller holds a reference to 'buf'. */
RASTER_API raster_status_t raster_buffer_view(const raster_buffer_t *buf, int64_t index,
                                              raster_view_t *view_out);

/* raster_buffer_shape() reports the buffer's dtype and [b, h, w, c];
 * raster_buffer_data() its first byte (view, valid while referenced). */
RASTER_API void raster_buffer_shape(const raster_buffer_t *buf, raster_dtype_t *dt_out,
                                    int64_t shape_out[4]);
RASTER_API void *raster_buffer_data(const raster_buffer_t *buf);

/* Counters of a pool, all since creation except the "now" ones. */
typedef struct raster_pool_stats {
    size_t budget_bytes;
    size_t bytes_in_use;        /* now: handed out, in whole blocks (a request
                                   is rounded up to its size class) */
    size_t bytes_reserved;      /* now: handed out + kept for reuse */
    size_t peak_bytes_in_use;
    uint64_t acquires, waits, timeouts;
    uint64_t block_mallocs;     /* times the allocator was called for a block */
    int64_t buffers_outstanding;/* now */
    int64_t exports_outstanding;/* now: DLPack tensors not yet deleted */
    uint64_t export_mallocs;    /* times the allocator was called for a DLPack
                                   tensor record (recycled per pool after that) */
} raster_pool_stats_t;

RASTER_API void raster_pool_get_stats(const raster_pool_t *pool,
                                      raster_pool_stats_t *stats_out);

/* ================================ DLPack ================================= */
/*
 * Structs compatible with DLPack 1.x (dlpack.h v1.0/v1.1), defined here so
 * that nobody needs dlpack.h.  Layouts are checked with static asserts in
 * lib/api/dlpack.c.
 */
typedef struct { uint32_t major, minor; } raster_DLPackVersion;
typedef struct { int32_t device_type, device_id; } raster_DLDevice;   /* CPU {1,0} */
typedef struct { uint8_t code, bits; uint16_t lanes; } raster_DLDataType;
typedef struct {
    void *data;                  /* first element; byte_offset is always 0 */
    raster_DLDevice device;
    int32_t ndim;
    raster_DLDataType dtype;
    int64_t *shape;              /* ndim entries */
    int64_t *strides;            /* ndim entries, in elements, never NULL */
    uint64_t byte_offset;
} raster_DLTensor;
typedef struct raster_DLManagedTensor {
    raster_DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct raster_DLManagedTensor *self);
} raster_DLManagedTensor;
typedef struct raster_DLManagedTensorVersioned {
    raster_DLPackVersion version;
    void *manager_ctx;
    void (*deleter)(struct raster_DLManagedTensorVersioned *self);
    uint64_t flags;
    raster_DLTensor dl_tensor;
} raster_DLManagedTensorVersioned;

#define RASTER_DLPACK_MAJOR 1
#define RASTER_DLPACK_MINOR 0
#define RASTER_DLPACK_FLAG_READ_ONLY (1ULL << 0)
#define RASTER_DLPACK_FLAG_IS_COPIED (1ULL << 1)

/* What to export: the whole buffer (index -1, 4-d [b,h,w,c]) or one sample
 * (3-d [h,w,c]), optionally a crop of it. Fill with raster_dlpack_request_init(). */
typedef struct raster_dlpack_request {
    size_t struct_size;
    int64_t index;               /* -1 whole batch, else sample index */
    int versioned;               /* 1: DLManagedTensorVersioned, 0: legacy */
    int read_only;               /* versioned only: set the READ_ONLY flag */
    int64_t row_off, col_off, height, width;  /* crop; height/width -1 = all */
    int64_t chan_off, channels;  /* channel subset; channels -1 = all */
    int squeeze_channels;        /* 1: leave out the channel axis ([b,h,w] or
                                    [h,w]); the export must have one channel */
} raster_dlpack_request_t;

RASTER_API void raster_dlpack_request_init(raster_dlpack_request_t *req);

/*
 * raster_buffer_to_dlpack() exports 'buf' (borrowed) without copying, as
 * *managed_out = a raster_DLManagedTensor* or raster_DLManagedTensorVersioned*
 * (per req->versioned; NULL req = whole buffer, legacy).  The tensor retains
 * 'buf', so the caller may release its own handle at once.  The consumer
 * calls tensor->deleter(tensor) exactly once, from any thread, with or
 * without the GIL, also after raster_pool_destroy().
 */
RASTER_API raster_status_t raster_buffer_to_dlpack(raster_buffer_t *buf,
                                                   const raster_dlpack_request_t *req,
                                                   void **managed_out);

/* ================================ Batches ================================ */
/*
 * A batch read fills one [B, H, W, C] image buffer and, optionally, its
 * [B, H, W, 1] uint8 mask buffer from B (dataset, window) requests, reading
 * the samples in parallel on the library's worker threads (the calling
 * thread works too).  All samples share one window size and one channel
 * count; each may come from another file and carry its own read options
 * (bands, boundless, fill, per-band scale/offset: dtype conversion and
 * normalisation are fused into the one write of every pixel).
 *
 * The mask of sample i is, when the batch asks for masks:
 *   label != NULL   band 'label_band' of 'label' (a label raster on the
 *                   image's grid: same size, geotransform and CRS, checked
 *                   for every sample; see label_resample below) converted
 *                   to the mask dtype (opt->label_dtype, uint8 by default)
 *                   with GDAL's rules (saturating), over the same window;
 *                   wherever the window reaches outside the label raster
 *                   the label is opt->label_fill (an ignore value: 255 for
 *                   uint8 labels, or -1 with label_dtype RASTER_I16);
 *   label == NULL   the validity mask of the image (raster_read_mask_into()
 *                   with the sample's boundless flag and no bands: rasterio's
 *                   dataset_mask()), 0 invalid, 255 valid.
 * With opt->validity the image's validity mask of every sample is also
 * read, beside the label, into a third [B, H, W, 1] uint8 buffer.
 *
 * Output size: opt->out_height x opt->out_width when set (0: the window's),
 * as rasterio's read(out_shape=...): a size other than the window's makes
 * the image a resampled read (raster_read_resampled_into() with
 * opt->resampling) and the validity mask its raster_read_mask_resampled_into()
 * with the same method; labels are always resampled nearest (a class never
 * blends), by the rule below.  Resampled samples cannot be boundless.
 *
 * A label on another grid is RASTER_E_INVALID_ARG naming both files and
 * both grids, unless opt->label_resample: then a label in the image's CRS
 * (both north-up) is read over the image window's bounds in the label's
 * pixel grid (a fractional window) and resampled nearest onto the output
 * grid: output pixel (r, c) takes the label pixel under its centre, with
 * GDAL's nearest rule (centre + 1e-10, truncated, the column position
 * accumulated as GDAL does), and label_fill where that centre is outside
 * the label raster.  Label overviews are never used.  Another CRS is
 * RASTER_E_INVALID_ARG in either case.
 */
typedef struct raster_batch_item {
    raster_dataset_t *image;            /* borrowed; retained during the call */
    raster_window_t window;
    const raster_read_options_t *opt;   /* borrowed; NULL: the batch's default */
    raster_dataset_t *label;            /* borrowed, may be NULL; retained during
                                           the call */
    int label_band;                     /* 1-based; 0 means band 1 */
} raster_batch_item_t;

/*
 * Batch options; fill with raster_batch_options_init() (defaults in
 * brackets), then change fields.
 *   dtype       image dtype of the buffer raster_batch_read() acquires
 *               [RASTER_F32]; raster_batch_read_into() takes the views' dtype.
 *   read        default per-sample read options (borrowed) [NULL: defaults].
 *   masks       1: also read masks [0].
 *   threads     samples read at once: the caller plus threads-1 workers;
 *               0 = raster_get_threads() [0].  Results are identical for
 *               every value.
 *   timeout_ms  how long raster_batch_read() waits for the pool (back-
 *               pressure): as raster_pool_acquire() [-1: forever].
 * Appended after 0.1.0 (a caller built before them gets the defaults):
 *   label_fill  label value outside the label raster [0]; it must be
 *               representable in the mask dtype (RASTER_E_INVALID_ARG).
 *   label_dtype dtype of the mask buffer raster_batch_read_ex() acquires
 *               [RASTER_U8]; raster_batch_read_into_ex() takes the mask
 *               views' dtype.  Validity masks of samples without a label
 *               are 0/255 in it.
 *   validity    1: also the image's validity mask, in a third buffer [0].
 *   label_resample  1: a label on another grid of the same CRS is
 *               resampled nearest onto the image window [0: such a label
 *               is an error].
 *   out_height, out_width  output size [0, 0: the window's].
 *   resampling  method for the image and validity mask when the output
 *               size differs from the window's [RASTER_RESAMPLE_NEAREST].
 */
typedef struct raster_batch_options {
    size_t struct_size;
    raster_dtype_t dtype;
    const raster_read_options_t *read;
    int masks;
    int threads;
    int timeout_ms;
    /* appended after 0.1.0: */
    double label_fill;
    raster_dtype_t label_dtype;
    int validity;
    int label_resample;
    int64_t out_height, out_width;
    raster_resampling_t resampling;
} raster_batch_options_t;

RASTER_API void raster_batch_options_init(raster_batch_options_t *opt);

/*
 * raster_batch_item_check() makes the checks a batch read makes of one item
 * before reading it, without reading: the image and label datasets are
 * open, with opt->masks label_fill fits label_dtype, and the label's grid
 * matches the image's (or, with opt->label_resample, shares its CRS).  A loader calls it when it is built,
 * so a wrong label raster fails there rather than at its first batch.
 * RASTER_E_INVALID_ARG names both files and both grids.  'opt' may be NULL
 * (defaults); an item without a label always passes.
 */
RASTER_API raster_status_t raster_batch_item_check(const raster_batch_item_t *item,
                                                   const raster_batch_options_t *opt);

/*
 * raster_batch_read() acquires from 'pool' a [count, H, W, C] buffer of
 * opt->dtype (H x W the window size, C the channel count, equal for every
 * item; the output size when opt->out_height/out_width are set) and, with
 * opt->masks, a [count, H, W, 1] mask buffer of opt->label_dtype, then
 * reads every item of 'items' (borrowed, 'count' >= 1 entries) into its
 * sample.  On RASTER_OK, *image_out and *mask_out (NULL without masks) are
 * owned by the caller: release each with raster_buffer_release(), or export
 * them with raster_buffer_to_dlpack() and release the handle.  The acquire
 * call site of both is the caller's (RASTERLOADER_DEBUG=1 leak report).
 *
 * On failure both outputs are NULL and every buffer the call acquired is
 * back in the pool.  A sample that fails makes raster_last_error() read
 * "batch sample I of N (FILE, window (col C, row R, WxH)): <cause>" and
 * *failed_index_out (optional, may be NULL) the lowest failing index I;
 * it is -1 when the failure is no one sample's (bad arguments, pool
 * timeout).  Samples not yet started when one fails are skipped.  Mixed
 * window sizes or channel counts are RASTER_E_INVALID_ARG naming (and
 * indexing) the first sample that differs, found before anything is
 * acquired.  Thread-safe; any number of batch reads may run at once, but
 * the two buffers are acquired one after the other, so batch readers that
 * share a pool need room for both of each reader's buffers or a finite
 * timeout.
 */
RASTER_API raster_status_t raster_batch_read(raster_pool_t *pool, const raster_batch_item_t *items,
                                             int64_t count, const raster_batch_options_t *opt,
                                             raster_buffer_t **image_out,
                                             raster_buffer_t **mask_out,
                                             int64_t *failed_index_out);

/*
 * raster_batch_read_into() is raster_batch_read() into caller memory:
 * 'images' (borrowed) holds 'count' views, one per sample, each H x W x C of
 * any dtype and strides (so a [B,C,H,W] tensor is B CHW views); 'masks'
 * (borrowed, may be NULL for no masks; opt->masks is ignored) holds 'count'
 * H x W x 1 views (of any dtype that holds opt->label_fill; H x W the output
 * size).  Views must not overlap one another.  On failure
 * the views may hold partial results; the rest is as raster_batch_read().
 */
RASTER_API raster_status_t raster_batch_read_into(const raster_batch_item_t *items, int64_t count,
                                                  const raster_batch_options_t *opt,
                                                  const raster_view_t *images,
                                                  const raster_view_t *masks,
                                                  int64_t *failed_index_out);

/* The outputs of raster_batch_read_ex(), each owned by the caller (release
 * with raster_buffer_release()), NULL when not asked for: image [B,H,W,C],
 * mask [B,H,W,1] of opt->label_dtype (opt->masks), validity [B,H,W,1] uint8
 * (opt->validity). */
typedef struct raster_batch_buffers {
    raster_buffer_t *image, *mask, *validity;
} raster_batch_buffers_t;

/*
 * raster_batch_read_ex() is raster_batch_read() with every option: the mask
 * buffer of opt->label_dtype, the validity buffer, an output size.  The
 * buffers are acquired one after the other (image, mask, validity) within
 * opt->timeout_ms in all; on failure every field of *out is NULL and the
 * buffers are back in the pool.  raster_batch_read() is this call without
 * the validity buffer (it refuses opt->validity: no place to put it).
 */
RASTER_API raster_status_t raster_batch_read_ex(raster_pool_t *pool, const raster_batch_item_t *items,
                                                int64_t count, const raster_batch_options_t *opt,
                                                raster_batch_buffers_t *out,
                                                int64_t *failed_index_out);

/* The destinations of raster_batch_read_into_ex(), all borrowed: 'count'
 * views each, images H x W x C of any dtype (required), masks H x W x 1 of
 * any dtype (NULL: no masks; label_fill must fit it), validity H x W x 1
 * uint8 (NULL: none).  H x W is the output size. */
typedef struct raster_batch_views {
    const raster_view_t *images, *masks, *validity;
} raster_batch_views_t;

RASTER_API raster_status_t raster_batch_read_into_ex(const raster_batch_item_t *items, int64_t count,
                                                     const raster_batch_options_t *opt,
                                                     const raster_batch_views_t *views,
                                                     int64_t *failed_index_out);

/* ============================== Tile cache =============================== */
/*
 * A cache of decoded tiles and strips of the native reader (compressed
 * files), keyed by the file (device, inode, size and times of a local file;
 * URL, size and Last-Modified of a remote one) and the segment, so a file
 * opened again hits, and a file rewritten in place misses.  On by default:
 * one arena in POSIX shared memory per user and machine, which every
 * process reading through rasterloader attaches to (DataLoader workers of
 * any start method, torchrun ranks), with one byte budget for all of them:
 * RASTERLOADER_TILE_CACHE_BYTES (bytes, or "512M", "2G"; 0 = off), else
 * RASTER_TILE_CACHE_DEFAULT_PERCENT % of the memory the process may use
 * (physical memory, or its cgroup's memory limit when lower), within the
 * arena's capacity: at most a quarter of /dev/shm's size and half of what
 * it has free (torch's worker batches live there too).  When the arena
 * cannot be used (another owner, another layout, a corrupted header, a
 * /dev/shm too small to leave torch its room (under 128 MiB), or
 * RASTERLOADER_TILE_CACHE_SHARED=0) each process has a private cache of
 * that budget, and the stats say why.  Entries are evicted least recently
 * used first; a hit is copied out of the cache with no lock held.
 *
 * raster_tile_cache_set_budget() sets the budget in bytes of decoded pixels
 * (machine-wide in the shared arena, capped to its capacity; 0 turns the
 * cache off, for every attached process, and frees every entry no reader
 * is using); lowering it evicts at once.  Safe from any thread.
 */
#define RASTER_TILE_CACHE_DEFAULT_PERCENT 10
RASTER_API raster_status_t raster_tile_cache_set_budget(size_t budget_bytes);

typedef enum raster_tile_cache_mode {
    RASTER_TILE_CACHE_OFF = 0,
    RASTER_TILE_CACHE_PRIVATE = 1,    /* this process only */
    RASTER_TILE_CACHE_SHARED = 2      /* the machine-wide arena */
} raster_tile_cache_mode_t;

typedef struct raster_tile_cache_stats {
    size_t budget_bytes;
    size_t bytes_used;          /* now: decoded bytes held (entries + in use) */
    int64_t entries;            /* now */
    uint64_t hits, misses;      /* lookups since start (shared: of all processes) */
    uint64_t inserts;           /* entries published */
    uint64_t evictions;         /* entries dropped for the budget */
    uint64_t block_mallocs;     /* private: allocator calls for entries; shared:
                                   times the arena reserved more of /dev/shm */
    /* Appended with the shared arena: */
    int mode;                   /* raster_tile_cache_mode_t */
    int attached_processes;     /* shared: live processes attached, this one included */
    size_t capacity_bytes;      /* shared: the arena's entry memory (budget ceiling) */
    uint64_t repairs;           /* shared: lock owners that died and whose state was rebuilt */
    uint64_t reclaimed_pins;    /* shared: references of dead processes dropped */
    int64_t gdal_cache_bytes;   /* GDAL's block cache limit in this process (see README) */
    char name[64];              /* shared: the POSIX shm name of the arena */
    char reason[192];           /* why private or off, or why the budget was capped; "" */
} raster_tile_cache_stats_t;

RASTER_API void raster_tile_cache_get_stats(raster_tile_cache_stats_t *stats_out);

/*
 * raster_tile_cache_detach() makes this process leave the shared arena: the
 * entries it pins are released and, if no other live process is attached,
 * the arena is unlinked, which frees its memory.  It runs at exit(); a
 * process that ends with _exit() (multiprocessing children do; the Python
 * package calls it for them) should call it first, or its memory stays in
 * /dev/shm until the next process of the user reuses the arena.  In a
 * process that never attached (the parent of workers that did all the
 * reading) it removes the arena when no live process is attached to it:
 * the Python package calls it at interpreter exit, after multiprocessing
 * has SIGTERMed the workers still running (torch's handler _exit()s them,
 * so they cannot detach).  Reads after it attach again.  Apart from that
 * removal, a no-op in a private or off cache.
 */
RASTER_API void raster_tile_cache_detach(void);

/* =========================== Metadata (GDAL) ============================ */
/*
 * What GDAL knows about a dataset besides its pixels, asked the way rasterio's
 * DatasetReader asks (tags(), colormap(), overviews(), descriptions, gcps,
 * files, checksum(), statistics(), lnglat()), so the answers are rasterio's.
 * For any format, for either reader: each call borrows one of the dataset's
 * GDAL handles.  Thread-safe; none is on the read path (each call may touch
 * the file).  'band' is 1-based; where a function says so, 0 is the dataset.
 * A band that does not exist is RASTER_E_BOUNDS, a closed dataset
 * RASTER_E_CLOSED.
 *
 * Results the library allocates are owned by caller, each in ONE allocation
 * (a list, its strings and its structs together): release with raster_free().
 * A string list is an array of char * ending with NULL; an empty list is an
 * array holding only NULL, never a NULL pointer.
 */

/* raster_free() releases a result of the functions below; NULL is fine. */
RASTER_API void raster_free(void *p);

/* raster_metadata() lists the "KEY=VALUE" items of metadata domain 'domain'
 * (borrowed; NULL or "" for the default domain) of 'band' (0: the dataset),
 * as GDALGetMetadata() gives them: rasterio's tags(bidx, ns).  An int8
 * band is described as GDAL >= 3.7 does: without GDAL 3.6's
 * PIXELTYPE=SIGNEDBYTE item (nor, in raster_metadata_domains(), a domain
 * holding only it). */
RASTER_API raster_status_t raster_metadata(raster_dataset_t *ds, int band, const char *domain,
                                           char ***items_out);

/* raster_metadata_item() is one item, GDALGetMetadataItem(): 'key' and
 * 'domain' borrowed (domain NULL/"" = default), of 'band' (0: the dataset)
 * or, with overview >= 0, of that overview of the band.  *value_out is NULL
 * when the item is absent (not an error), else owned by caller. */
RASTER_API raster_status_t raster_metadata_item(raster_dataset_t *ds, int band, int overview,
                                                const char *key, const char *domain,
                                                char **value_out);

/* raster_metadata_domains() lists the metadata domains of 'band' (0: the
 * dataset), GDALGetMetadataDomainList(): rasterio's tag_namespaces(). */
RASTER_API raster_status_t raster_metadata_domains(raster_dataset_t *ds, int band,
                                                   char ***domains_out);

/* raster_file_list() lists the files GDAL reads for the dataset (the image,
 * a .msk or .ovr beside it, ...), GDALGetFileList(): rasterio's files. */
RASTER_API raster_status_t raster_file_list(raster_dataset_t *ds, char ***files_out);

/* Band texts: GDALGetDescription() and GDALGetRasterUnitType(). */
typedef enum raster_band_text {
    RASTER_TEXT_DESCRIPTION = 0,
    RASTER_TEXT_UNITS = 1
} raster_band_text_t;

/* raster_band_text() copies a band's description or unit name ("" when it
 * has none) into *text_out, owned by caller. */
RASTER_API raster_status_t raster_band_text(raster_dataset_t *ds, int band,
                                            raster_band_text_t which, char **text_out);

/* raster_band_scale_offset() gives the band's stored scale and offset
 * (GDALGetRasterScale/Offset: 1 and 0 when the file has none).  They are
 * metadata: reads never apply them. */
RASTER_API raster_status_t raster_band_scale_offset(raster_dataset_t *ds, int band,
                                                    double *scale_out, double *offset_out);

/* raster_band_colormap() gives the band's color table as *count_out entries
 * of 4 int16 (c1..c4, GDALGetColorEntryAsRGB(): red, green, blue, alpha),
 * owned by caller.  A band without a color table: *count_out = -1 and
 * *entries_out = NULL, RASTER_OK (rasterio turns that into ValueError). */
RASTER_API raster_status_t raster_band_colormap(raster_dataset_t *ds, int band,
                                                int16_t **entries_out, int *count_out);

/* raster_band_overviews() gives the decimation factor of each of the band's
 * overviews, in GDAL's order, as rasterio computes it: round(width /
 * overview width).  *factors_out (count_out ints) is owned by caller. */
RASTER_API raster_status_t raster_band_overviews(raster_dataset_t *ds, int band,
                                                 int **factors_out, int *count_out);

/* A ground control point (GDAL_GCP): pixel/line position and georeferenced
 * x, y, z; 'id' and 'info' are views into the same allocation. */
typedef struct raster_gcp {
    const char *id, *info;
    double col, row;            /* GDAL's dfGCPPixel, dfGCPLine */
    double x, y, z;
} raster_gcp_t;

/* raster_gcps() gives the dataset's GCPs (*count_out of them, possibly 0)
 * and the WKT of their CRS ("" when none); both owned by caller. */
RASTER_API raster_status_t raster_gcps(raster_dataset_t *ds, raster_gcp_t **gcps_out,
                                       int *count_out, char **crs_wkt_out);

/* raster_band_checksum() is GDALChecksumImage() of 'win' of 'band': GDAL's
 * 16-bit checksum of the stored pixels (rasterio's checksum()).  The window
 * must lie inside the raster (else RASTER_E_BOUNDS); width or height 0
 * gives GDAL's checksum of nothing (0).  An int8 band is summed as signed
 * pixels, as GDAL >= 3.7 does (older GDAL has no Int8 and sums them as
 * unsigned bytes).  A read failure is RASTER_E_CORRUPT (or the status the
 * int8 read returned). */
RASTER_API raster_status_t raster_band_checksum(raster_dataset_t *ds, int band,
                                                raster_window_t win, int *checksum_out);

typedef struct raster_stats {
    double min, max, mean, std;
} raster_stats_t;

/* Flags of raster_band_statistics(). */
enum {
    RASTER_STATS_APPROX = 1,      /* GDAL may use overviews or a subset of blocks */
    RASTER_STATS_COMPUTE = 2,     /* compute now (GDALComputeRasterStatistics,
                                     rasterio's stats()); without it GDAL returns
                                     stored statistics when it has them
                                     (GDALGetRasterStatistics, rasterio's
                                     statistics()) */
    RASTER_STATS_CLEAR = 4        /* forget stored statistics first
                                     (GDALDatasetClearStatistics) */
};

/* raster_band_statistics() gives min, max, mean and standard deviation of
 * the band's valid pixels.  As in GDAL (and rasterio), computed statistics
 * are kept on the handle and GDAL writes them to a .aux.xml file beside the
 * image when the handle closes.  No valid pixel is RASTER_E_INVALID_ARG. */
RASTER_API raster_status_t raster_band_statistics(raster_dataset_t *ds, int band, int flags,
                                                  raster_stats_t *stats_out);

/* raster_to_lnglat() transforms the point (x, y) of the dataset's CRS to
 * WGS 84 longitude and latitude (degrees, GIS axis order), as rasterio's
 * lnglat() does for the center of the bounds.  A dataset without a CRS is
 * RASTER_E_INVALID_ARG. */
RASTER_API raster_status_t raster_to_lnglat(raster_dataset_t *ds, double x, double y,
                                            double *lng_out, double *lat_out);

/* ============================ Warped datasets ============================ */
/*
 * A warped dataset is GDAL's warper (a VRTWarpedDataset) over a source
 * dataset, built with the options rasterio 1.4's WarpedVRT sets, and read
 * through the GDAL reader: every read entry above works on it (image,
 * masks, resampled reads, batch reads), bit-identical to rasterio's
 * WarpedVRT where GDAL's versions agree.  Each thread (and each forked
 * child) rebuilds its own warped VRT from these options on first use, over a
 * fresh handle of the source, exactly as the first one was built.
 */
enum raster_warp_nodata_mode {
    RASTER_WARP_NODATA_DEFAULT = 0, /* src_nodata: the source's band 1 nodata;
                                       nodata: the resolved src_nodata */
    RASTER_WARP_NODATA_NONE = 1,    /* no nodata value */
    RASTER_WARP_NODATA_VALUE = 2    /* the value in the paired field */
};

/* Options for raster_open_warped(); fill with raster_warp_options_init().
 * Names and defaults are rasterio.vrt.WarpedVRT's.  Strings are borrowed
 * (copied during the call). */
typedef struct raster_warp_options {
    size_t struct_size;
    const char *crs;              /* output CRS: WKT, "EPSG:n", PROJ, anything
                                     OSRSetFromUserInput takes; NULL = src CRS */
    const char *src_crs;          /* overrides the source's CRS; NULL = its own */
    int resampling;               /* GDAL GRA_* = rasterio Resampling value; not
                                     gauss (7), as rasterio; default nearest */
    double tolerance;             /* max approximation error in source pixels,
                                     used as a float as rasterio does; 0.125 */
    int has_transform;            /* 1: 'transform' is the output grid (with
                                     width and height; without them GDAL
                                     suggests the grid and it is ignored) */
    double transform[6];          /* GDAL order */
    int has_src_transform;        /* 1: 'src_transform' overrides the source's
                                     (used with an explicit width and height) */
    double src_transform[6];
    int64_t width, height;        /* output size; 0 = not given */
    int src_nodata_mode;          /* enum raster_warp_nodata_mode */
    double src_nodata;
    int nodata_mode;              /* enum raster_warp_nodata_mode */
    double nodata;
    int add_alpha;                /* add an alpha band (count + 1); removes nodata */
    int src_alpha, dst_alpha;     /* 1-based alpha bands; 0 = the source's own */
    int init_dest_nodata;         /* default 1: INIT_DEST=NO_DATA (or 0 without nodata) */
    int warp_mem_limit_mb;        /* 0 = GDAL's default */
    int working_dtype;            /* -1 (default): GDAL's choice; else a raster_dtype_t */
    const char *const *warp_extras; /* NULL or NULL-terminated "KEY=VALUE" warp
                                     (and transformer) options, upper-cased as
                                     rasterio does */
} raster_warp_options_t;

RASTER_API void raster_warp_options_init(raster_warp_options_t *opt);

/*
 * raster_open_warped() makes a warped dataset over 'src' (retained until the
 * warped dataset's last reference goes: closing 'src' first is fine, as in
 * rasterio).  'src' may itself be a warped dataset.  On RASTER_OK, *ds_out
 * is owned by the caller (raster_close()); its path is "WarpedVRT(<source
 * path>)".  Fails with RASTER_E_CLOSED for a closed 'src', RASTER_E_INVALID_ARG
 * for a bad CRS, resampling, alpha or size, and GDAL's message otherwise.
 */
RASTER_API raster_status_t raster_open_warped(raster_dataset_t *src, const raster_warp_options_t *opt,
                                              raster_dataset_t **ds_out);

/* What raster_open_warped() resolved from its options (rasterio's
 * src_nodata, dst_nodata, the INIT_DEST it added, the alpha bands). */
typedef struct raster_warp_info {
    int has_src_nodata;
    double src_nodata;
    int has_nodata;               /* the output's nodata (none with add_alpha) */
    double nodata;
    const char *init_dest;        /* view (valid while ds is): the INIT_DEST value
                                     added ("NO_DATA" or "0"), or NULL */
    int src_alpha_band, dst_alpha_band;   /* 0 = none */
    const char *src_crs_wkt;      /* view: the source CRS used ("" = none) */
} raster_warp_info_t;

/* raster_warp_info() fills *info_out for a dataset made by
 * raster_open_warped(); RASTER_E_INVALID_ARG for any other dataset. */
RASTER_API raster_status_t raster_warp_info(const raster_dataset_t *ds, raster_warp_info_t *info_out);

/* ============================ Mosaic sources ============================= */
/*
 * A mosaic (rasterloader.Mosaic) reads many sources (one band file of a
 * scene each, any CRS and resolution, a warped dataset for another CRS) onto
 * one grid, as rasterio.merge.merge does with its default method "first".
 * raster_mosaic_read_source() is one source's part of one read: band 'band'
 * (1-based) of 'ds' (borrowed) over the float window 'win' of its own grid
 * (merge's source window), written into 'dst' (borrowed; one channel, any
 * strides: the source's channel slice of a CHW or HWC destination, the
 * rectangle merge rounds for it).
 *   - The read is raster_read_window_into() with 'resampling': an integral
 *     window of dst's size is a plain read (the native fast path: a file
 *     already on the grid); another window is resampled (another
 *     resolution, or the sliver a warped dataset's edge leaves), exactly as
 *     merge's src.read(out_shape=..., window=...).
 *   - composite RASTER_COMPOSITE_DIRECT writes the source straight into dst:
 *     right when no earlier source wrote into this rectangle and the
 *     source's invalid pixels hold 'nodata' (it has no nodata value, or that
 *     one).  RASTER_COMPOSITE_FIRST is merge's copy_first: the source is read
 *     into per-thread scratch (in dst's dtype) and placed only where dst
 *     still equals 'nodata' (NaN: is NaN) and the source pixel is valid (not
 *     'src_nodata' when has_src_nodata).  This one case writes its pixels
 *     twice (scratch, then dst): "still empty" is a per-pixel test on values
 *     the earlier sources wrote, so the read cannot go straight into dst
 *     without overwriting the pixels the first source won.
 * Scratch is per thread and reused: steady-state reads allocate nothing.
 * Fails as the read it makes does (RASTER_E_BOUNDS for a window off the
 * raster, RASTER_E_INVALID_ARG for a view of more than one channel).
 */
typedef enum raster_composite {
    RASTER_COMPOSITE_DIRECT = 0,
    RASTER_COMPOSITE_FIRST = 1
} raster_composite_t;

RASTER_API raster_status_t raster_mosaic_read_source(raster_dataset_t *ds, int band,
                                                     raster_window_f_t win,
                                                     raster_resampling_t resampling,
                                                     raster_composite_t composite, double nodata,
                                                     int has_src_nodata, double src_nodata,
                                                     const raster_view_t *dst);

/*
 * raster_mosaic_read_sources() runs a whole query: 'n' source reads
 * ('items', borrowed), each as raster_mosaic_read_source().  Items of one
 * lane (one output channel) must be contiguous and run in their order on one
 * thread, since "first" compositing needs the earlier sources' pixels;
 * lanes write disjoint memory and run in parallel on up to 'max_threads'
 * threads (<= 0: raster_get_threads()).  On failure the lowest failing
 * item's status and message are returned; dst may hold partial results.
 */
typedef struct raster_mosaic_source {
    raster_dataset_t *ds;         /* borrowed */
    int band;                     /* 1-based */
    int lane;                     /* output channel: items of a lane are contiguous */
    raster_window_f_t win;        /* the source window (merge's, float) */
    raster_resampling_t resampling;
    raster_composite_t composite;
    double nodata;                /* the mosaic's nodata ("still empty") */
    int has_src_nodata;
    double src_nodata;            /* the source's nodata (invalid pixels) */
    raster_view_t dst;            /* one channel: the source's rectangle */
} raster_mosaic_source_t;

RASTER_API raster_status_t raster_mosaic_read_sources(const raster_mosaic_source_t *items, int64_t n,
                                                      int max_threads);

/*
 * raster_mosaic_read() is a whole query with what a read does around its
 * sources, so that no pass over the pixels is left to the caller:
 *   1. each lane's plane (lanes[l], the whole output channel l) is filled
 *      with its nodata, except the rectangles its DIRECT sources write
 *      (those pixels are written once); then its items run as in
 *      raster_mosaic_read_sources() (lanes in parallel, a lane's items in
 *      order).  Items must be sub-views of their lane's plane.
 *   2. each validity view (validity[k], one channel of the planes' size, any
 *      dtype) is 255 where any of lanes [first_lane, first_lane +
 *      lane_count) holds another value than that lane's nodata (NaN: a
 *      number), else 0: the geo loaders' validity mask (and rasterio's
 *      dataset_mask of a merge), on the raw values.
 *   3. each lane with 'normalise' set is normalised in place, in double,
 *      rounded once to its dtype as a read's normalisation is (see
 *      raster_read_options_t): x * scale + offset, or with 'divide',
 *      (x - offset) / scale (offset the mean, scale the std).
 * 'n' items, 'nlanes' lanes (every item's lane < nlanes), 'nvalidity'
 * validity views, all borrowed; max_threads as raster_mosaic_read_sources().
 * RASTER_E_INVALID_ARG for a lane out of range, a plane or validity view of
 * more than one channel or of another size, an item that is not inside its
 * lane's plane, a std of 0.
 */
typedef struct raster_mosaic_lane {
    raster_view_t plane;          /* the whole output channel (one channel) */
    double nodata;                /* the fill, and "no data" for validity */
    int normalise;                /* 1: normalise after the sources */
    int divide;                   /* 1: (x - offset) / scale; 0: x * scale + offset */
    double scale, offset;
} raster_mosaic_lane_t;

typedef struct raster_mosaic_validity {
    raster_view_t dst;            /* one channel, the planes' height and width */
    int first_lane, lane_count;
} raster_mosaic_validity_t;

RASTER_API raster_status_t raster_mosaic_read(const raster_mosaic_source_t *items, int64_t n,
                                              const raster_mosaic_lane_t *lanes, int nlanes,
                                              const raster_mosaic_validity_t *validity, int nvalidity,
                                              int max_threads);

#ifdef __cplusplus
}
#endif
#endif /* RASTERLOADER_H */
