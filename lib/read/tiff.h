/*
 * tiff.h - the native TIFF reader's private contract, inside lib/read/:
 *
 *   tiff_layout.c  chooses the byte source (lib/source/), walks the first
 *                  IFD once at open (through libtiff over that source) and
 *                  fills struct raster__tiff; it never decodes.
 *   tiff_read.c    reads windows: plan -> fetch (lib/source/) -> decode
 *                  (lib/codec/) -> place (lib/common/), through the tile
 *                  cache (lib/cache/).
 * After open, libtiff is not used again: every read works from the tables
 * below, so reads need no libtiff handle and no lock.
 */
#ifndef RASTER_TIFF_INTERNAL_H
#define RASTER_TIFF_INTERNAL_H

#include "reader.h"
#include "codec/codec.h"
#include "source/source.h"

#include <stddef.h>
#include <stdint.h>
#include <tiffio.h>

/* Everything a read needs, fixed at open.  Untrusted values from the file
 * have been bound-checked before they got here (tiff_layout.c). */
struct raster__tiff {
    const char *path;             /* view of ds->path */
    raster__tiff_source_t *src;   /* owned: where the file's bytes come from */
    uint64_t file_nbytes;         /* size at open; segments must end inside */
    int64_t width, height;        /* pixels */
    int spp;                      /* samples per pixel = bands */
    int planar;                   /* 1: one plane per band (PlanarConfig 2) */
    int seg_samples;              /* samples per pixel inside a segment */
    raster_dtype_t dtype;         /* of every sample */
    int sample_nbytes;
    int tiled;
    int64_t seg_w, seg_h;         /* tile size, or (width, rows per strip) */
    int64_t segs_across, segs_down, segs_per_plane;
    int64_t nsegs;
    raster__codec_t codec;
    int predictor;                /* 1, 2 or 3 */
    int swap;                     /* file byte order is not the host's */
    size_t seg_row_nbytes;        /* one decoded row of a segment */
    size_t seg_nbytes;            /* one whole decoded segment (tile or full strip) */
    uint64_t *offsets, *counts;   /* owned, nsegs each */
    uint64_t max_count;           /* largest byte count, capped (see layout) */
    uint8_t fill[8 * 64];         /* per band, for sparse segments (bytecount 0) */
    uint8_t *fill_bands;          /* owned when spp > 64, else fill */
    uint64_t file_id[5];          /* the file's identity in tile-cache keys */
};

#endif /* RASTER_TIFF_INTERNAL_H */
