/*
 * fuzz_targets.h - the bodies of the libFuzzer harnesses, shared by the
 * fuzzers (tests/fuzz/fuzz_*.c, built with -DRASTER_FUZZ=ON) and by the
 * Check suite that replays every saved crash (tests/unit/read/check_corpus.c),
 * so a regression file is replayed through exactly the code that found it.
 *
 *   fuzz_tiff_one(data, size, reader)
 *       The input is a whole file.  It is written to a memfd and opened as
 *       /proc/self/fd/N through the public API with the given reader (-1:
 *       the default, native TIFF when it serves the file; 0: GDAL).  Then a
 *       window chosen by the input's last 16 bytes is read (any dtype,
 *       HWC or CHW, a band subset, boundless or not, scale/offset), the
 *       mask of that window, and the whole raster when it is small.  Every
 *       destination is malloc'd to its exact size, so ASan sees a write one
 *       byte outside.  A status other than a documented failure of a file
 *       (IO, FORMAT, CORRUPT, UNSUPPORTED, NOMEM) aborts: a valid request
 *       must never come back as INVALID_ARG or BOUNDS.
 *
 *   fuzz_tiff_diff_one(data, size)
 *       The same file read with both readers when the native reader serves
 *       it: pixels must be bit-identical, and a failure of one must be a
 *       failure of the other (for a window ending inside a segment, only a
 *       native failure must be GDAL's too: GDAL decodes whole segments).
 *
 *   fuzz_codec_one(data, size)
 *       The first 8 bytes choose a codec, the segment geometry (columns,
 *       rows, samples, sample size), a predictor and byte order and how
 *       many rows to decode; the rest is a raw segment.  It is decoded with
 *       raster__decode() into a buffer of exactly the room the codec asked
 *       for, the predictor is undone, and, when the whole segment decodes,
 *       a prefix decode must succeed too and give the same bytes (the
 *       partial-decode promise of tiff_codec.c).
 *
 * Both return 0; a bug aborts (or is caught by a sanitizer).
 */
#ifndef RASTER_FUZZ_TARGETS_H
#define RASTER_FUZZ_TARGETS_H

#include "rasterloader.h"
#include "read/tiff.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Largest destination a harness allocates, and largest window side. */
#define FUZZ_MAX_DST_NBYTES ((size_t)8 << 20)
#define FUZZ_MAX_SIDE 300
#define FUZZ_MAX_BANDS 6

/* GDAL settings that keep a fuzz run fast and side-effect free: no .aux.xml
 * written next to /proc/self/fd/N, no directory listing, a small cache. */
static inline void
fuzz_init(void)
{
    setenv("GDAL_PAM_ENABLED", "NO", 1);
    setenv("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR", 1);
    setenv("GDAL_CACHEMAX", "64", 1);
    setenv("CPL_DEBUG", "OFF", 1);
}

static inline void
fuzz_fail(const char *what, raster_status_t st)
{
    fprintf(stderr, "fuzz: %s gave %s: %s\n", what, raster_status_str(st), raster_last_error());
    abort();
}

/* A failure a hostile file may cause; anything else is a bug. */
static inline void
fuzz_check_status(const char *what, raster_status_t st)
{
    switch (st) {
    case RASTER_OK:
        return;
    case RASTER_E_IO:
    case RASTER_E_FORMAT:
    case RASTER_E_CORRUPT:
    case RASTER_E_UNSUPPORTED:
    case RASTER_E_NOMEM:
        if (raster_last_error()[0] == '\0')
            fuzz_fail(what, st);            /* a failure must say why */
        return;
    default:
        fuzz_fail(what, st);
    }
}

/* Input parameters: the last 16 bytes (zeros for shorter inputs). */
typedef struct fuzz_params {
    uint8_t b[16];
} fuzz_params_t;

static inline uint32_t
fuzz_u32(const fuzz_params_t *p, int i)
{
    return (uint32_t)p->b[i] | (uint32_t)p->b[i + 1] << 8 | (uint32_t)p->b[i + 2] << 16 |
           (uint32_t)p->b[i + 3] << 24;
}

/* Read 'win' into an exactly-sized malloc'd view of 'dt', HWC or CHW. */
static inline raster_status_t
fuzz_read(raster_dataset_t *ds, raster_window_t win, const raster_read_options_t *opt, int nch,
          raster_dtype_t dt, int chw, int mask)
{
    const size_t nbytes = raster_view_nbytes(dt, win.height, win.width, nch);
    if (nbytes == 0 || nbytes > FUZZ_MAX_DST_NBYTES)
        return RASTER_OK;
    uint8_t *buf = malloc(nbytes);
    if (buf == NULL)
        return RASTER_OK;
    raster_view_t v = raster_view_hwc(buf, dt, win.height, win.width, nch);
    if (chw) {
        const int64_t es = (int64_t)raster_dtype_size(dt);
        v.col_stride = es;
        v.row_stride = win.width * es;
        v.chan_stride = win.height * win.width * es;
    }
    const raster_status_t st =
        mask ? raster_read_mask_into(ds, win, opt, &v) : raster_read_into(ds, win, opt, &v);
    /* Touch every byte: uninitialised output shows under MSan/valgrind. */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < nbytes; i += 4096)
        sink ^= buf[i];
    (void)sink;
    free(buf);
    return st;
}

static inline int
fuzz_tiff_dataset(raster_dataset_t *ds, const fuzz_params_t *p)
{
    raster_info_t in;
    raster_status_t st = raster_dataset_info(ds, &in);
    if (st != RASTER_OK)
        fuzz_fail("raster_dataset_info", st);
    if (in.width < 1 || in.height < 1 || in.band_count < 1)
        fuzz_fail("open gave an empty raster", RASTER_OK);
    for (int b = 1; b <= in.band_count && b <= 8; b++) {
        raster_band_info_t bi;
        if ((st = raster_band_info(ds, b, &bi)) != RASTER_OK)
            fuzz_fail("raster_band_info", st);
    }

    /* The window: inside the raster, or overlapping its edge when boundless. */
    const int boundless = p->b[8] & 1;
    const int64_t maxw = in.width < FUZZ_MAX_SIDE ? in.width : FUZZ_MAX_SIDE;
    const int64_t maxh = in.height < FUZZ_MAX_SIDE ? in.height : FUZZ_MAX_SIDE;
    raster_window_t win;
    win.width = 1 + (int64_t)(fuzz_u32(p, 0) % (uint64_t)maxw);
    win.height = 1 + (int64_t)(fuzz_u32(p, 4) % (uint64_t)maxh);
    win.col_off = (int64_t)((uint64_t)fuzz_u32(p, 0) * 2654435761u % (uint64_t)(in.width - win.width + 1));
    win.row_off = (int64_t)((uint64_t)fuzz_u32(p, 4) * 2246822519u % (uint64_t)(in.height - win.height + 1));
    if (boundless) {
        win.col_off -= (p->b[9] & 0x0f) * win.width / 8;
        win.row_off -= (p->b[9] >> 4) * win.height / 8;
    }

    /* Bands: all (up to FUZZ_MAX_BANDS), or a chosen list with repeats. */
    int bands[FUZZ_MAX_BANDS];
    int nb = 0;
    raster_read_options_t opt;
    raster_read_options_init(&opt);
    opt.boundless = boundless;
    opt.fill_value = (double)(int8_t)p->b[10];
    if ((p->b[8] & 2) || in.band_count > FUZZ_MAX_BANDS) {
        nb = 1 + p->b[11] % FUZZ_MAX_BANDS;
        for (int k = 0; k < nb; k++)
            bands[k] = 1 + (int)((p->b[12 + (k & 3)] + 7u * (unsigned)k) % (unsigned)in.band_count);
        opt.bands = bands;
        opt.band_count = nb;
    } else {
        nb = in.band_count;
    }
    double scale[FUZZ_MAX_BANDS], offset[FUZZ_MAX_BANDS];
    if (p->b[8] & 4) {
        for (int k = 0; k < nb; k++) {
            scale[k] = 1.0 / (1 + k + (p->b[10] & 7));
            offset[k] = -(double)k;
        }
        opt.scale = scale;
        opt.offset = offset;
    }
    const raster_dtype_t dt = (p->b[8] >> 3) % 2 ? (raster_dtype_t)(p->b[15] % RASTER_DTYPE_COUNT)
                                                 : in.dtype;
    const int chw = (p->b[8] >> 4) & 1;

    fuzz_check_status("read", fuzz_read(ds, win, &opt, nb, dt, chw, 0));

    /* The mask: of one band (read_masks) or of the dataset. */
    raster_read_options_t mopt;
    raster_read_options_init(&mopt);
    mopt.boundless = boundless;
    int one_band = opt.bands ? bands[0] : 1;
    if (p->b[8] & 32) {
        mopt.bands = &one_band;
        mopt.band_count = 1;
    }
    fuzz_check_status("mask read", fuzz_read(ds, win, &mopt, 1, RASTER_U8, 0, 1));

    /* A resampled read of the window (not boundless): to a quarter up to
     * twice its size, maybe from half a pixel in, nearest, bilinear or
     * average (mode and gauss cost the square of the pixels per output
     * pixel: slow, not unsafe). */
    if (!boundless) {
        static const raster_resampling_t algs[] = {RASTER_RESAMPLE_NEAREST, RASTER_RESAMPLE_BILINEAR,
                                                   RASTER_RESAMPLE_AVERAGE};
        const double shift = (p->b[12] & 1) && win.width >= 2 ? 0.5 : 0.0;
        const raster_window_f_t wf = {(double)win.col_off + shift, (double)win.row_off,
                                      (double)win.width - shift, (double)win.height};
        const int64_t oh = 1 + win.height * (1 + (p->b[13] & 7)) / 4;
        const int64_t ow = 1 + win.width * (1 + (p->b[13] >> 5)) / 4;
        const size_t nbytes = raster_view_nbytes(dt, oh, ow, nb);
        uint8_t *buf = nbytes > 0 && nbytes <= FUZZ_MAX_DST_NBYTES ? malloc(nbytes) : NULL;
        if (buf != NULL) {
            raster_read_options_t ropt = opt;
            ropt.boundless = 0;
            const raster_view_t v = raster_view_hwc(buf, dt, oh, ow, nb);
            fuzz_check_status("resampled read",
                              raster_read_resampled_into(ds, wf, algs[p->b[14] % 3], &ropt, &v));
            free(buf);
        }
        /* Its mask too (of one band or of the dataset), into uint8. */
        uint8_t *mbuf = raster_view_nbytes(RASTER_U8, oh, ow, 1) <= FUZZ_MAX_DST_NBYTES
                            ? malloc((size_t)(oh * ow))
                            : NULL;
        if (mbuf != NULL) {
            const raster_view_t mv = raster_view_hwc(mbuf, RASTER_U8, oh, ow, 1);
            raster_read_options_t mo = mopt;
            mo.boundless = 0;
            fuzz_check_status("resampled mask read",
                              raster_read_mask_resampled_into(ds, wf, algs[p->b[14] % 3], &mo, &mv));
            free(mbuf);
        }
    }

    /* The whole raster when small: every segment is visited. */
    if (in.width * in.height <= 128 * 128 && (p->b[8] & 64) == 0) {
        const raster_window_t all = {0, 0, in.width, in.height};
        raster_read_options_t aopt;
        raster_read_options_init(&aopt);
        if (in.band_count > FUZZ_MAX_BANDS) {
            aopt.bands = bands;
            aopt.band_count = nb;
        }
        fuzz_check_status("full read",
                          fuzz_read(ds, all, &aopt, in.band_count > FUZZ_MAX_BANDS ? nb : in.band_count,
                                    in.dtype, 0, 0));
    }
    return 0;
}

/* ------------------------------ the two readers agree ----------------- */

/* Read 'win' (every band, or the chosen ones, in the file's dtype) with the
 * native reader and with GDAL: the design promises bit-identical pixels for
 * everything both read, and the same verdict on damaged segments.  GDAL
 * decodes whole segments while the native reader stops at the last row a
 * window needs, so for a window that ends inside a segment only one
 * direction holds ('whole' = 0): a native failure means the rows it needs
 * are damaged, so GDAL must fail too, but GDAL may fail on rows below the
 * window that the native reader never decodes.  Aborts on a difference. */
/* With the tile cache on, a window may be served from segments an earlier
 * read of the same input decoded: 'unwritten tails' are then counted from
 * the input's start. */
static int fuzz_cache_on;
static uint64_t fuzz_tails_at_input;

static inline void
fuzz_diff_window(raster_dataset_t *nat, raster_dataset_t *gd, raster_window_t win,
                 const raster_read_options_t *opt, int nch, raster_dtype_t dt, int whole)
{
    const size_t nbytes = raster_view_nbytes(dt, win.height, win.width, nch);
    if (nbytes == 0 || nbytes > FUZZ_MAX_DST_NBYTES)
        return;
    uint8_t *a = malloc(nbytes), *b = malloc(nbytes);
    if (a == NULL || b == NULL)
        abort();
    memset(a, 0x11, nbytes);
    memset(b, 0x11, nbytes);
    raster_view_t va = raster_view_hwc(a, dt, win.height, win.width, nch);
    raster_view_t vb = raster_view_hwc(b, dt, win.height, win.width, nch);
    const uint64_t tails = fuzz_cache_on ? fuzz_tails_at_input : raster__decode_unwritten_tails();
    const raster_status_t sa = raster_read_into(nat, win, opt, &va);
    /* A damaged DEFLATE segment both readers take (as libtiff does) leaves
     * bytes GDAL does not write: its buffer's old contents, not pixels. */
    const int comparable = raster__decode_unwritten_tails() == tails;
    char msg_a[512];
    snprintf(msg_a, sizeof msg_a, "%s", raster_last_error());
    const raster_status_t sb = raster_read_into(gd, win, opt, &vb);
    if ((sa == RASTER_OK) != (sb == RASTER_OK) && (whole || sa != RASTER_OK)) {
        fprintf(stderr, "fuzz: window (%lld,%lld %lldx%lld): native %s (%s), GDAL %s (%s)\n",
                (long long)win.col_off, (long long)win.row_off, (long long)win.width,
                (long long)win.height, raster_status_str(sa), msg_a, raster_status_str(sb),
                raster_last_error());
        abort();
    }
    if (sa == RASTER_OK && sb == RASTER_OK && comparable && memcmp(a, b, nbytes) != 0) {
        /* libtiff accepts a DEFLATE stream that decodes to more than its
         * segment and leaves the last match that does not fit unwritten
         * (zeros or whatever its buffer held), where the native reader
         * writes the stream's true prefix.  For a window ending with such a
         * segment (a last strip holding more rows than it should, as
         * libtiff's own comment says files in the wild do) the readers may
         * differ in the last 258 bytes (the longest match); nowhere else. */
        size_t i = 0;
        while (i < nbytes && a[i] == b[i])
            i++;
        if (i >= (nbytes > 258 ? nbytes - 258 : 0))
            i = nbytes;
        if (i == nbytes) {
            free(a);
            free(b);
            return;
        }
        fprintf(stderr, "fuzz: window (%lld,%lld %lldx%lld) %s: native and GDAL pixels differ at "
                        "byte %zu of %zu (%02x vs %02x)\n",
                (long long)win.col_off, (long long)win.row_off, (long long)win.width,
                (long long)win.height, raster_dtype_name(dt), i, nbytes, a[i], b[i]);
        abort();
    }
    free(a);
    free(b);
}

/* The differential harness: the input is opened with both readers; when
 * the native reader serves it, the window and the whole raster (when
 * small) must read the same through both.  For half the inputs the tile
 * cache is on, so the whole raster reuses what the window decoded. */
static inline int
fuzz_tiff_diff_one(const uint8_t *data, size_t size)
{
    fuzz_params_t p;
    memset(&p, 0, sizeof p);
    if (size >= sizeof p.b)
        memcpy(p.b, data + size - sizeof p.b, sizeof p.b);
    const int fd = memfd_create("rasterloader-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    for (size_t done = 0; done < size;) {
        const ssize_t n = write(fd, data + done, size - done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    fuzz_cache_on = p.b[13] & 1;
    fuzz_tails_at_input = raster__decode_unwritten_tails();
    raster_tile_cache_set_budget(fuzz_cache_on ? (size_t)32 << 20 : 0);
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    raster_dataset_t *nat = NULL, *gd = NULL;
    if (raster_open_ex(path, &oo, &nat) == RASTER_OK) {
        raster_info_t in;
        raster_dataset_info(nat, &in);
        oo.reader = RASTER_READER_GDAL;
        if (in.reader == RASTER_READER_NATIVE_TIFF && raster_open_ex(path, &oo, &gd) == RASTER_OK) {
            const int64_t maxw = in.width < FUZZ_MAX_SIDE ? in.width : FUZZ_MAX_SIDE;
            const int64_t maxh = in.height < FUZZ_MAX_SIDE ? in.height : FUZZ_MAX_SIDE;
            raster_window_t win;
            win.width = 1 + (int64_t)(fuzz_u32(&p, 0) % (uint64_t)maxw);
            win.height = 1 + (int64_t)(fuzz_u32(&p, 4) % (uint64_t)maxh);
            win.col_off = (int64_t)((uint64_t)fuzz_u32(&p, 0) * 2654435761u %
                                    (uint64_t)(in.width - win.width + 1));
            win.row_off = (int64_t)((uint64_t)fuzz_u32(&p, 4) * 2246822519u %
                                    (uint64_t)(in.height - win.height + 1));
            raster_read_options_t opt;
            raster_read_options_init(&opt);
            int band = 1 + p.b[11] % in.band_count;
            if (in.band_count > FUZZ_MAX_BANDS || (p.b[8] & 2)) {
                opt.bands = &band;
                opt.band_count = 1;
            }
            const int nch = opt.bands ? 1 : in.band_count;
            fuzz_diff_window(nat, gd, win, &opt, nch, in.dtype, 0);
            /* The whole raster: the same verdict, as long as GDAL decodes
             * the same rows.  For the last row of blocks GDAL asks libtiff
             * for bs - ((yoff + 1) * bs) % height rows (GDAL #1179), which
             * are the rows inside the image only when the padding is
             * shorter than the image (not for a 1-row image in 256-row
             * tiles, say); otherwise GDAL decodes padding rows the native
             * reader never reads. */
            const int64_t bs = in.block_height > 0 ? in.block_height : 1;
            const int64_t yoff = (in.height + bs - 1) / bs - 1;
            const int64_t asked = bs - ((yoff + 1) * bs) % in.height;
            const int64_t inside = in.height - yoff * bs;
            if (in.width * in.height <= 128 * 128)
                fuzz_diff_window(nat, gd, (raster_window_t){0, 0, in.width, in.height}, &opt, nch,
                                 in.dtype, asked == inside);
            raster_close(gd);
        }
        raster_close(nat);
    }
    raster_tile_cache_set_budget(0);      /* frees every entry */
    close(fd);
    return 0;
}

/* Open 'data' as a file through the public API with 'reader' and read it. */
static inline int
fuzz_tiff_one(const uint8_t *data, size_t size, int reader)
{
    fuzz_params_t p;
    memset(&p, 0, sizeof p);
    if (size >= sizeof p.b)
        memcpy(p.b, data + size - sizeof p.b, sizeof p.b);
    const int fd = memfd_create("rasterloader-fuzz", MFD_CLOEXEC);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    for (size_t done = 0; done < size;) {
        const ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            perror("write to memfd");
            abort();
        }
        done += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = reader;
    raster_dataset_t *ds = NULL;
    const raster_status_t st = raster_open_ex(path, &oo, &ds);
    if (st == RASTER_OK) {
        fuzz_tiff_dataset(ds, &p);
        raster_close(ds);
    } else {
        if (ds != NULL)
            fuzz_fail("a failed open returned a dataset", st);
        fuzz_check_status("open", st);
    }
    close(fd);
    return 0;
}

/* ------------------------------ codecs --------------------------------- */

#define FUZZ_CODEC_HEADER 8
#define FUZZ_CODEC_MAX_NBYTES ((size_t)4 << 20)

/* The geometry an input's header describes. */
typedef struct fuzz_codec_case {
    raster__codec_t codec;
    int predictor, swap;
    int nsamp, sample_nbytes;
    int64_t ncols, nrows, needed_rows;
    size_t row_nbytes, full, needed;
} fuzz_codec_case_t;

/* Header: [0] codec % 5, [1] predictor (1 + x % 3) and swap (bit 7),
 * [2] samples (1 + x % 4) and sample size (1 << (x >> 4) % 4),
 * [3..4] columns - 1 (LE), [5..6] rows - 1 (LE), [7] rows to decode
 * (0: all, else 1 + x % rows).  0 when the geometry is too large. */
static inline int
fuzz_codec_parse(const uint8_t *h, fuzz_codec_case_t *c)
{
    c->codec = (raster__codec_t)(h[0] % 5);
    c->predictor = 1 + (h[1] & 0x7f) % 3;
    c->swap = h[1] >> 7;
    c->nsamp = 1 + (h[2] & 0x0f) % 4;
    c->sample_nbytes = 1 << ((h[2] >> 4) % 4);
    if (c->predictor == 3 && c->sample_nbytes < 4)
        c->sample_nbytes = 4;               /* floating point only */
    c->ncols = 1 + (int64_t)(h[3] | h[4] << 8);
    c->nrows = 1 + (int64_t)(h[5] | h[6] << 8);
    c->needed_rows = h[7] == 0 ? c->nrows : 1 + h[7] % c->nrows;
    c->row_nbytes = (size_t)c->ncols * (size_t)c->nsamp * (size_t)c->sample_nbytes;
    c->full = c->row_nbytes * (size_t)c->nrows;
    c->needed = c->row_nbytes * (size_t)c->needed_rows;
    return c->full <= FUZZ_CODEC_MAX_NBYTES;
}

/* Decode the first 'needed' bytes as tiff_read.c does: with exactly the
 * room the codec asks for (a retry with more room for DEFLATE when the
 * direct decode could not guarantee the prefix), judged as libtiff judges
 * the whole segment.  Returns a malloc'd buffer of 'needed' bytes, or NULL
 * with *why set to the reason. */
static inline uint8_t *
fuzz_decode(const fuzz_codec_case_t *c, const uint8_t *in, size_t in_nbytes, size_t needed,
            const char **why)
{
    const raster__decode_ref_t whole = {c->full, 1};
    /* First as a direct decode into a buffer of exactly 'needed' bytes. */
    uint8_t *out = malloc(needed ? needed : 1);
    if (out == NULL)
        abort();
    raster__decode_status_t st = raster__decode(c->codec, in, in_nbytes, out, needed, needed, &whole);
    *why = raster__decode_reason(c->codec, st);
    if (st == RASTER__DECODE_OK)
        return out;
    free(out);
    if (st != RASTER__DECODE_NEED_ROOM)
        return NULL;
    if (c->codec != RASTER__CODEC_DEFLATE) {
        fprintf(stderr, "fuzz: codec %d asked for a retry\n", (int)c->codec);
        abort();
    }
    const size_t avail = raster__decode_room(c->codec, needed, &whole);
    out = malloc(avail);
    if (out == NULL)
        abort();
    st = raster__decode(c->codec, in, in_nbytes, out, needed, avail, &whole);
    *why = raster__decode_reason(c->codec, st);
    if (st == RASTER__DECODE_NEED_ROOM) {
        fprintf(stderr, "fuzz: deflate asked for a retry with the room it asked for\n");
        abort();
    }
    if (st != RASTER__DECODE_OK) {
        free(out);
        return NULL;
    }
    return out;
}

/* Undo byte order and predictor on every decoded row, as tiff_read.c does. */
static inline void
fuzz_postprocess(const fuzz_codec_case_t *c, uint8_t *buf, int64_t rows)
{
    uint8_t *tmp = malloc(c->row_nbytes);
    if (tmp == NULL)
        abort();
    for (int64_t y = 0; y < rows; y++) {
        uint8_t *r = buf + (size_t)y * c->row_nbytes;
        if (c->predictor == 3) {
            raster__unpredict_fp(r, tmp, c->ncols, c->nsamp, c->sample_nbytes);
            continue;
        }
        if (c->swap && c->sample_nbytes > 1)
            raster__byteswap(r, (size_t)(c->ncols * c->nsamp), c->sample_nbytes);
        if (c->predictor == 2)
            raster__unpredict_h(r, c->ncols, c->nsamp, c->sample_nbytes);
    }
    free(tmp);
}

static inline int
fuzz_codec_one(const uint8_t *data, size_t size)
{
    if (size < FUZZ_CODEC_HEADER)
        return 0;
    fuzz_codec_case_t c;
    if (!fuzz_codec_parse(data, &c))
        return 0;
    const uint8_t *in = data + FUZZ_CODEC_HEADER;
    const size_t in_nbytes = size - FUZZ_CODEC_HEADER;
    /* The input in its own allocation, so a read past it is caught. */
    uint8_t *raw = malloc(in_nbytes ? in_nbytes : 1);
    if (raw == NULL)
        abort();
    memcpy(raw, in, in_nbytes);

    const char *why_part = NULL, *why_full = NULL;
    uint8_t *part = fuzz_decode(&c, raw, in_nbytes, c.needed, &why_part);
    uint8_t *full = c.needed == c.full ? NULL : fuzz_decode(&c, raw, in_nbytes, c.full, &why_full);
    if (part != NULL && full != NULL && memcmp(part, full, c.needed) != 0) {
        fprintf(stderr, "fuzz: codec %d: a prefix decode of %zu bytes differs from the whole "
                        "segment's first %zu bytes\n", (int)c.codec, c.needed, c.needed);
        abort();
    }
    if (part == NULL && full != NULL) {
        fprintf(stderr, "fuzz: codec %d: the whole segment decodes but its %zu-byte prefix "
                        "does not: %s\n", (int)c.codec, c.needed, why_part);
        abort();
    }
    if (part != NULL)
        fuzz_postprocess(&c, part, c.needed_rows);
    if (full != NULL)
        fuzz_postprocess(&c, full, c.nrows);
    free(part);
    free(full);
    free(raw);
    return 0;
}

#endif /* RASTER_FUZZ_TARGETS_H */
