/*
 * check_tiff_common.h - helpers shared by the check_tiff_*.c suites: the
 * matrix scale, a seeded generator, destination buffers in several layouts,
 * and the "read the same thing with both readers" comparison that every
 * native-reader test rests on.
 */
#ifndef CHECK_TIFF_COMMON_H
#define CHECK_TIFF_COMMON_H

#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RASTER_MATRIX_SCALE=n keeps every n-th combination (ASan 4, valgrind 16). */
static inline int
tiff_matrix_scale(void)
{
    const char *s = getenv("RASTER_MATRIX_SCALE");
    const int v = s ? atoi(s) : 1;
    return v > 0 ? v : 1;
}

/* splitmix64: a seeded generator whose sequence never depends on libc. */
static inline uint64_t
tiff_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline int64_t
tiff_rand_range(uint64_t *state, int64_t lo, int64_t hi)   /* [lo, hi] */
{
    return lo + (int64_t)(tiff_rand(state) % (uint64_t)(hi - lo + 1));
}

typedef enum { DST_HWC = 0, DST_CHW = 1, DST_STRIDED = 2 } dst_layout_t;

/* A destination: a guarded allocation pre-filled with a pattern and a view
 * into it.  DST_STRIDED puts the view at row 2, col 3, channel 1 of a buffer
 * with 3 more rows, 5 more columns and 2 more channels. */
typedef struct dst_buf {
    guarded_t g;
    raster_view_t v;
} dst_buf_t;

static inline dst_buf_t
dst_make(raster_dtype_t dt, int64_t h, int64_t w, int64_t c, dst_layout_t layout)
{
    dst_buf_t d;
    const int64_t es = (int64_t)raster_dtype_size(dt);
    if (layout == DST_STRIDED) {
        const int64_t BH = h + 3, BW = w + 5, BC = c + 2;
        d.g = guarded_alloc((size_t)(BH * BW * BC * es));
        d.v = (raster_view_t){d.g.data + ((2 * BW + 3) * BC + 1) * es, dt, h, w, c,
                              BW * BC * es, BC * es, es};
    } else if (layout == DST_CHW) {
        d.g = guarded_alloc((size_t)(h * w * c * es));
        d.v = (raster_view_t){d.g.data, dt, h, w, c, w * es, es, h * w * es};
    } else {
        d.g = guarded_alloc((size_t)(h * w * c * es));
        d.v = raster_view_hwc(d.g.data, dt, h, w, c);
    }
    /* The pattern byte i is 0x3c + 7 i (mod 256): one period written, then
     * copied in doubling blocks (byte by byte, this fill was a quarter of
     * check_tiff_equiv's time). */
    const size_t n = d.g.nbytes, period = 256;
    for (size_t i = 0; i < n && i < period; i++)
        d.g.data[i] = (uint8_t)(0x3c + 7 * i);
    for (size_t have = period; have < n; have *= 2)
        memcpy(d.g.data + have, d.g.data, have < n - have ? have : n - have);
    return d;
}

static inline void
dst_free(dst_buf_t *d)
{
    guarded_free(&d->g);
}

/* One read request, described for messages. */
typedef struct tiff_req {
    raster_window_t win;
    int bands[8];
    int nbands;                  /* 0: NULL band list (all bands) */
    raster_dtype_t dt;
    dst_layout_t layout;
    int scaled;
    int boundless;
} tiff_req_t;

static inline void
tiff_req_label(const tiff_req_t *r, char *buf, size_t n)
{
    int k = snprintf(buf, n, "window (col %lld, row %lld, %lldx%lld) bands [",
                     (long long)r->win.col_off, (long long)r->win.row_off,
                     (long long)r->win.width, (long long)r->win.height);
    for (int i = 0; i < r->nbands && k > 0 && (size_t)k < n; i++)
        k += snprintf(buf + k, n - (size_t)k, i ? ",%d" : "%d", r->bands[i]);
    if (k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, "%s] -> %s %s%s%s", r->nbands ? "" : "all",
                 raster_dtype_name(r->dt),
                 r->layout == DST_HWC ? "HWC" : r->layout == DST_CHW ? "CHW" : "strided",
                 r->scaled ? " scaled" : "", r->boundless ? " boundless" : "");
}

/* Read 'r' from 'ds' into a fresh destination (caller frees it). */
static inline raster_status_t
tiff_req_read(raster_dataset_t *ds, const tiff_req_t *r, int band_count, dst_buf_t *out)
{
    const int c = r->nbands ? r->nbands : band_count;
    *out = dst_make(r->dt, r->win.height, r->win.width, c, r->layout);
    double scale[8], offset[8];
    for (int k = 0; k < c && k < 8; k++) {
        scale[k] = 0.37 + 0.5 * k;
        offset[k] = 11.25 - 7.5 * k;
    }
    raster_read_options_t o;
    raster_read_options_init(&o);
    if (r->nbands) {
        o.bands = r->bands;
        o.band_count = r->nbands;
    }
    if (r->scaled) {
        o.scale = scale;
        o.offset = offset;
    }
    o.boundless = r->boundless;
    o.fill_value = -3.5;
    return raster_read_into(ds, r->win, &o, &out->v);
}

/* Read 'r' with both datasets and require bit-identical buffers (view,
 * padding and guards); a difference aborts the test with its position. */
static inline void
tiff_req_compare(raster_dataset_t *native, raster_dataset_t *gdal, int band_count, const char *name,
                 const tiff_req_t *r)
{
    char label[256];
    tiff_req_label(r, label, sizeof label);
    dst_buf_t a, b;
    const raster_status_t sa = tiff_req_read(native, r, band_count, &a);
    ck_assert_msg(sa == RASTER_OK, "%s %s: native read failed: %s", name, label, raster_last_error());
    const raster_status_t sb = tiff_req_read(gdal, r, band_count, &b);
    ck_assert_msg(sb == RASTER_OK, "%s %s: GDAL read failed: %s", name, label, raster_last_error());
    ck_assert_msg(guarded_intact(&a.g), "%s %s: native read wrote outside its buffer", name, label);
    if (memcmp(a.g.data, b.g.data, a.g.nbytes) != 0) {
        size_t i = 0;
        while (a.g.data[i] == b.g.data[i])
            i++;
        const size_t off = (size_t)((uint8_t *)a.v.data - a.g.data);
        ck_abort_msg("%s %s: native and GDAL differ at byte %zu of the buffer (view starts at %zu): "
                     "0x%02x vs 0x%02x",
                     name, label, i, off, a.g.data[i], b.g.data[i]);
    }
    dst_free(&a);
    dst_free(&b);
}

#endif
