/*
 * tiff_layout.c - the first IFD of a TIFF, walked once at open through
 * libtiff, turned into the plain tables the native reader works from.
 *
 * The file's byte source (source.h) is chosen here, once, and every
 * byte the open reads comes through it: libtiff parses the directory
 * (classic or BigTIFF, either byte order) reading through the source
 * (tiff_source.c), so a local file's directory reads meet the same fault
 * hook as its pixels, and a read that fails fails the open.  libtiff is
 * closed again before open returns: reads never touch a libtiff handle,
 * so they need no lock and no per-thread TIFF.  libtiff reports through a
 * per-handle error handler (TIFFOpenOptionsSetErrorHandlerExtR), never the
 * process-wide one, so it never prints and never races with GDAL's handler.
 *
 * The native reader claims a file only when its pixels are exactly what
 * GDAL returns without conversion: GDAL's GTiff driver opened it, every band
 * is a whole-byte sample of u8/i8/u16/i16/u32/i32/f32/f64 with the dtype GDAL
 * reports, photometric minisblack or RGB, compression none, DEFLATE, ZSTD,
 * LZW (TIFF 6 flavour) or PackBits, predictor 1/2/3 where libtiff allows it,
 * normal fill order.  Everything else (JPEG, YCbCr, palettes, odd bit depths,
 * other formats, /vsi paths that are not remote) stays with the GDAL reader;
 * remote files (/vsicurl/, /vsis3/, ...) are read through GDAL's VSI
 * (tiff_vsi.c) instead of a descriptor (tiff_io.c); the metadata that only
 * libtiff knows (tiled, predictor) is corrected for every TIFF either way.
 *
 * Values from the file are untrusted: sizes are checked for overflow before
 * they size anything, segments whose bytes run past the end of the file are
 * kept as they are and fail with RASTER_E_CORRUPT when a read needs them
 * (GDAL, too, serves the good tiles of a damaged file), and absurd byte
 * counts are cut as libtiff cuts them, so neither reader reads more than
 * ten times a segment's decoded size.
 * Nodata for sparse segments comes from GDAL's parse of GDAL_NODATA (the
 * band metadata), so both readers fill them with the very same value.
 */
#include "tiff.h"

#include <tiffio.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGMENTS ((int64_t)1 << 28)       /* 4 GiB of tables: beyond that, GDAL */
#define MAX_SEGMENT_NBYTES ((size_t)1 << 31)  /* decoded size of one tile or strip */

/* libtiff's messages, kept instead of printed. */
typedef struct tiff_msgs {
    char last[256];
} tiff_msgs_t;

static int
tiff_handler(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)module;
    tiff_msgs_t *m = user;
    if (m != NULL)
        vsnprintf(m->last, sizeof m->last, fmt, ap);
    return 1;   /* handled: the process-wide handler is not called */
}

static void
tiff_free(struct raster__tiff *t)
{
    if (t == NULL)
        return;
    raster__tiff_source_close(t->src);
    free(t->offsets);
    free(t->counts);
    if (t->fill_bands != t->fill)
        free(t->fill_bands);
    free(t);
}

void
raster__tiff_close(struct raster__tiff *t)
{
    tiff_free(t);
}

/* The dtype of a sample, or -1 when the native reader does not read it. */
static int
sample_dtype(unsigned bits, unsigned format)
{
    switch (format) {
    case SAMPLEFORMAT_UINT:
        return bits == 8 ? RASTER_U8 : bits == 16 ? RASTER_U16 : bits == 32 ? RASTER_U32 : -1;
    case SAMPLEFORMAT_INT:
        return bits == 8 ? RASTER_I8 : bits == 16 ? RASTER_I16 : bits == 32 ? RASTER_I32 : -1;
    case SAMPLEFORMAT_IEEEFP:
        return bits == 32 ? RASTER_F32 : bits == 64 ? RASTER_F64 : -1;
    default:
        return -1;
    }
}

static int
codec_of(unsigned compression, raster__codec_t *out)
{
    switch (compression) {
    case COMPRESSION_NONE: *out = RASTER__CODEC_NONE; return 1;
    case COMPRESSION_ADOBE_DEFLATE:
    case COMPRESSION_DEFLATE: *out = RASTER__CODEC_DEFLATE; return 1;
    case COMPRESSION_ZSTD: *out = RASTER__CODEC_ZSTD; return 1;
    case COMPRESSION_LZW: *out = RASTER__CODEC_LZW; return 1;
    case COMPRESSION_PACKBITS: *out = RASTER__CODEC_PACKBITS; return 1;
    default: return 0;
    }
}

/* The value GDAL writes into a missing (sparse) block of band 'b': its
 * nodata converted to the band's data type (signed bytes included, checked
 * by check_tiff_equiv), else zero. */
static void
fill_value(const raster_dataset_t *ds, int b, raster_dtype_t dt, uint8_t out[8])
{
    memset(out, 0, 8);
    const raster_band_info_t *bi = &ds->bands[b].info;
    if (bi->has_nodata)
        raster__convert_scalar(bi->nodata, dt, out);
}

/* The TIFF facts GDAL cannot report, set for every TIFF. */
static void
info_correct(raster_dataset_t *ds, TIFF *tif)
{
    uint16_t pred = 1;
    ds->info.tiled = TIFFIsTiled(tif) ? 1 : 0;
    /* The predictor tag is only known to codecs that use it. */
    if (TIFFGetField(tif, TIFFTAG_PREDICTOR, &pred) && pred >= 1 && pred <= 3)
        ds->info.predictor = pred;
    else
        ds->info.predictor = 1;
}

/* A TIFF 6 LZW stream starts with a Clear code (0x80 0x00...); the old
 * LSB-first flavour starts with 0x00 and a set low bit.  Look at the first
 * stored segment: old-style files go to GDAL (libtiff decodes those).
 * *old_out is 1 for an old-style file; a failed read fails the open. */
static raster_status_t
lzw_old_style(const struct raster__tiff *t, int *old_out)
{
    *old_out = 0;
    for (int64_t i = 0; i < t->nsegs; i++) {
        if (t->counts[i] < 2 || t->offsets[i] + 2 > t->file_nbytes)
            continue;
        uint8_t b[2];
        RASTER_TRY(raster__tiff_source_read(t->src, b, 2, t->offsets[i], "the first LZW segment"));
        *old_out = b[0] == 0 && (b[1] & 1);
        return RASTER_OK;
    }
    return RASTER_OK;
}

/* Fill 't' from the directory; 0 when the native reader does not serve
 * the file (not an error: GDAL does). */
static int
layout_read(raster_dataset_t *ds, TIFF *tif, struct raster__tiff *t)
{
    uint32_t w = 0, h = 0;
    uint16_t spp = 1, bits = 1, format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
    uint16_t compression = COMPRESSION_NONE, photometric = PHOTOMETRIC_MINISBLACK;
    uint16_t pred = 1, fillorder = FILLORDER_MSB2LSB;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h))
        return 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &format);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
    TIFFGetFieldDefaulted(tif, TIFFTAG_FILLORDER, &fillorder);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric))
        return 0;
    if (!TIFFGetField(tif, TIFFTAG_PREDICTOR, &pred))
        pred = 1;

    /* What GDAL serves must be what the directory says. */
    if (w == 0 || h == 0 || (int64_t)w != ds->info.width || (int64_t)h != ds->info.height ||
        spp == 0 || spp != ds->info.band_count)
        return 0;
    const int dt = sample_dtype(bits, format);
    if (dt < 0)
        return 0;
    for (int b = 0; b < spp; b++)
        if (ds->bands[b].info.dtype != (raster_dtype_t)dt)
            return 0;
    if (photometric != PHOTOMETRIC_MINISBLACK && photometric != PHOTOMETRIC_RGB)
        return 0;
    if (fillorder != FILLORDER_MSB2LSB || (planar != PLANARCONFIG_CONTIG && planar != PLANARCONFIG_SEPARATE))
        return 0;
    if (!codec_of(compression, &t->codec))
        return 0;
    if (pred != 1 && pred != 2 && pred != 3)
        return 0;
    if (pred == 3 && format != SAMPLEFORMAT_IEEEFP)
        return 0;       /* libtiff refuses it too */

    t->width = w;
    t->height = h;
    t->spp = spp;
    t->planar = planar == PLANARCONFIG_SEPARATE && spp > 1;
    t->seg_samples = t->planar ? 1 : spp;
    t->dtype = (raster_dtype_t)dt;
    t->sample_nbytes = bits / 8;
    t->predictor = pred;
    t->swap = TIFFIsByteSwapped(tif) ? 1 : 0;
    t->tiled = TIFFIsTiled(tif) ? 1 : 0;
    if (t->tiled) {
        uint32_t tw = 0, th = 0;
        if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw) || !TIFFGetField(tif, TIFFTAG_TILELENGTH, &th) ||
            tw == 0 || th == 0)
            return 0;
        t->seg_w = tw;
        t->seg_h = th;
    } else {
        uint32_t rps = h;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
        t->seg_w = w;
        t->seg_h = rps == 0 || rps > h ? h : rps;
    }
    t->segs_across = (t->width + t->seg_w - 1) / t->seg_w;
    t->segs_down = (t->height + t->seg_h - 1) / t->seg_h;
    if (t->segs_across > MAX_SEGMENTS || t->segs_down > MAX_SEGMENTS ||
        t->segs_across * t->segs_down > MAX_SEGMENTS / (t->planar ? spp : 1))
        return 0;
    t->segs_per_plane = t->segs_across * t->segs_down;
    t->nsegs = t->segs_per_plane * (t->planar ? spp : 1);
    const uint64_t nstored = t->tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    if (nstored != (uint64_t)t->nsegs)
        return 0;

    /* seg_w * seg_h * samples * bytes, checked for overflow before use. */
    size_t row, seg;
    if (__builtin_mul_overflow((size_t)t->seg_w, (size_t)t->seg_samples * (size_t)t->sample_nbytes, &row) ||
        __builtin_mul_overflow(row, (size_t)t->seg_h, &seg) || seg > MAX_SEGMENT_NBYTES)
        return 0;
    t->seg_row_nbytes = row;
    t->seg_nbytes = seg;
    return 1;
}

/* Offsets and byte counts; 0 if libtiff cannot give them (GDAL then tries). */
static int
tables_read(TIFF *tif, struct raster__tiff *t)
{
    t->offsets = malloc((size_t)t->nsegs * sizeof *t->offsets);
    t->counts = malloc((size_t)t->nsegs * sizeof *t->counts);
    if (t->offsets == NULL || t->counts == NULL)
        return -1;
    uint64_t max_count = 0;
    for (int64_t i = 0; i < t->nsegs; i++) {
        int err = 0;
        t->offsets[i] = TIFFGetStrileOffsetWithErr(tif, (uint32_t)i, &err);
        if (err)
            return 0;
        t->counts[i] = TIFFGetStrileByteCountWithErr(tif, (uint32_t)i, &err);
        if (err)
            return 0;
        /* libtiff's own bound on what it reads of one segment (tif_read.c):
         * a count above 1 MiB and above 10x the decoded size + 4096 is cut
         * to that, with an error message but no failure.  Same here, so
         * both readers read the same bytes of an absurd segment. */
        const uint64_t lim = (uint64_t)t->seg_nbytes * 10 + 4096;
        if (t->counts[i] > ((uint64_t)1 << 20) && (t->counts[i] - 4096) / 10 > (uint64_t)t->seg_nbytes)
            t->counts[i] = lim;
        if (t->counts[i] > max_count)
            max_count = t->counts[i];
    }
    t->max_count = max_count;
    return 1;
}

/* Choose the file's byte source, once: remote files (/vsicurl/, /vsis3/,
 * ...) through GDAL's VSI (tiff_vsi.c), local ones through a descriptor
 * (tiff_io.c); other /vsi paths and GDAL's own syntaxes stay with the
 * GDAL reader (*out NULL).  Nothing after this asks which kind it got. */
static raster_status_t
source_open(const char *path, raster__tiff_source_t **out)
{
    *out = NULL;
    if (raster__path_is_remote(path))
        return raster__tiff_source_open_vsi(path, out);
    if (strncmp(path, "/vsi", 4) == 0 || strstr(path, "://") != NULL)
        return RASTER_OK;
    return raster__tiff_source_open_local(path, out);
}

static raster_status_t tiff_finish(raster_dataset_t *ds, TIFF *tif, raster__tiff_client_t *client,
                                   struct raster__tiff *t);

raster_status_t
raster__tiff_open(raster_dataset_t *ds)
{
    ds->tiff = NULL;
    /* Only GDAL's GTiff driver reads TIFF pixels the way the native reader
     * does. */
    if (strcmp(ds->info.driver, "GTiff") != 0 && strcmp(ds->info.driver, "COG") != 0)
        return RASTER_OK;
    raster__tiff_source_t *src = NULL;
    RASTER_TRY(source_open(ds->path, &src));
    if (src == NULL)
        return RASTER_OK;       /* GDAL serves it */
    struct raster__tiff *t = calloc(1, sizeof *t);
    if (t == NULL) {
        raster__tiff_source_close(src);
        return raster__fail(RASTER_E_NOMEM, "%s: out of memory", ds->path);
    }
    t->path = ds->path;
    t->src = src;
    t->file_nbytes = src->nbytes;
    memcpy(t->file_id, src->file_id, sizeof t->file_id);
    tiff_msgs_t msgs = {{0}};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (opts == NULL) {
        tiff_free(t);
        return raster__fail(RASTER_E_NOMEM, "%s: out of memory", ds->path);
    }
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_handler, &msgs);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_handler, NULL);
    raster__tiff_client_t client;
    TIFF *tif = raster__tiff_source_tiff_open(&client, src, opts);
    TIFFOpenOptionsFree(opts);
    if (tif == NULL) {
        tiff_free(t);
        /* A read that failed fails the open; otherwise GDAL opened the
         * file and libtiff does not: GDAL serves it. */
        return client.st;
    }
    info_correct(ds, tif);
    return tiff_finish(ds, tif, &client, t);
}

/* The tables, after libtiff has opened the directory: claim the file for
 * the native reader or leave it to GDAL.  Closes 'tif'. */
static raster_status_t
tiff_finish(raster_dataset_t *ds, TIFF *tif, raster__tiff_client_t *client, struct raster__tiff *t)
{
    int ok = layout_read(ds, tif, t);
    if (ok)
        ok = tables_read(tif, t);
    TIFFClose(tif);
    if (client->st != RASTER_OK) {
        /* Offsets load on demand: a read of the tables failed. */
        tiff_free(t);
        return client->st;
    }
    if (ok < 0) {
        const long long nsegs = (long long)t->nsegs;
        tiff_free(t);
        return raster__fail(RASTER_E_NOMEM, "%s: out of memory for %lld segment offsets", ds->path,
                            nsegs);
    }
    if (ok && t->codec == RASTER__CODEC_LZW) {
        int old = 0;
        const raster_status_t st = lzw_old_style(t, &old);
        if (st != RASTER_OK) {
            tiff_free(t);
            return st;
        }
        ok = !old;
    }
    if (ok && t->spp > 64) {
        if ((t->fill_bands = malloc((size_t)t->spp * 8)) == NULL) {
            tiff_free(t);
            return raster__fail(RASTER_E_NOMEM, "%s: out of memory", ds->path);
        }
    } else {
        t->fill_bands = t->fill;
    }
    if (!ok) {
        tiff_free(t);
        return RASTER_OK;
    }
    for (int b = 0; b < t->spp; b++)
        fill_value(ds, b, t->dtype, t->fill_bands + 8 * b);
    ds->tiff = t;
    return RASTER_OK;
}
