/*
 * bench_fast_path.c - windows per second of the native TIFF reader against
 * GDAL and against the codec alone, on the same files and windows.
 *
 *   bench_fast_path [--dir DIR] [--out FILE.md] [--windows N] [--reps R]
 *                   [--big N] [--codec NAME] [--smoke]
 *
 * DIR holds bench_u16_{deflate,zstd,lzw,none}.tif (4096x4096, 4-band u16,
 * 512x512 tiles, predictor 2; made by data/make_fixtures.py --bench).  For
 * every file it reads N random 256x256 windows at unaligned offsets and N at
 * tile-aligned offsets (multiples of 256, so half of them start mid-tile),
 * each through:
 *   codec limit   the tiles the window touches, raw bytes already in memory,
 *                 decoded whole by the same codec the native reader uses
 *                 (libdeflate, libzstd, our LZW, memcpy): no I/O, no
 *                 predictor, no placement.  What a reader that decodes whole
 *                 tiles could at best reach.
 *   native 1T/2T  raster_read_into() with the native reader, 1 and 2 threads,
 *                 tile cache off: every window decodes its tiles again.
 *   GDAL 1 MB     raster_read_into() with the GDAL reader and GDAL_CACHEMAX
 *                 1 MB: every window decodes its tiles again (the data
 *                 loader case: random windows over many files).
 *   GDAL default  the same with GDAL's default block cache, which on repeated
 *                 windows serves most tiles from memory.
 *   native cached the native reader, 1 thread, with the decoded-tile cache at
 *                 its default budget: what a user gets beside GDAL's default
 *                 (the cache is private to this process, RASTERLOADER_TILE_
 *                 CACHE_SHARED=0, so that turning it off for the cold columns
 *                 touches no other process; a hit is the same copy-out in the
 *                 shared arena).
 * and then a few 2048x2048 windows with the native reader on 1 and 2
 * threads.  Every figure is the best of R repetitions after a warm-up pass
 * (page cache warm for everybody); the repetitions interleave the ways, so
 * load from other processes on a shared machine hits them alike.  The destination is always a compact HWC
 * uint16 buffer allocated once.  Results go to FILE.md as tables with ratios.
 *
 * --smoke writes its own small files with libtiff into a temporary folder,
 * runs everything on a handful of windows, checks that the native and the
 * GDAL reader agree, and writes nothing else: a test that the bench works.
 */
#include "read/tiff.h"

#include <cpl_conv.h>
#include <gdal.h>
#include <tiffio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TILE 512
#define WIN 256

static const char *const codecs[] = {"deflate", "zstd", "lzw", "none"};
#define NCODECS 4

typedef struct options {
    const char *dir, *out, *only;
    int windows, reps, big, smoke;
} options_t;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void
die(const char *what)
{
    fprintf(stderr, "bench_fast_path: %s: %s\n", what, raster_last_error());
    exit(1);
}

/* ------------------------------ codec limit ---------------------------- */

/* The raw tiles of one file, in memory. */
typedef struct rawfile {
    raster__codec_t codec;
    int64_t width, height, across;
    size_t tile_nbytes;
    uint8_t **tile;
    size_t *count;
    int64_t ntiles;
    uint8_t *out;
} rawfile_t;

static void
rawfile_load(const char *path, rawfile_t *rf)
{
    TIFF *t = TIFFOpen(path, "rm");
    if (t == NULL)
        die(path);
    uint32_t w, h, tw, th;
    uint16_t comp, spp, bps;
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
    TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &comp);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
    rf->codec = comp == COMPRESSION_ZSTD ? RASTER__CODEC_ZSTD
                : comp == COMPRESSION_LZW ? RASTER__CODEC_LZW
                : comp == COMPRESSION_NONE ? RASTER__CODEC_NONE
                                           : RASTER__CODEC_DEFLATE;
    rf->width = w;
    rf->height = h;
    rf->across = (w + tw - 1) / tw;
    rf->tile_nbytes = (size_t)tw * th * spp * (bps / 8);
    rf->ntiles = TIFFNumberOfTiles(t);
    rf->tile = calloc((size_t)rf->ntiles, sizeof *rf->tile);
    rf->count = calloc((size_t)rf->ntiles, sizeof *rf->count);
    FILE *f = fopen(path, "rb");
    for (int64_t i = 0; i < rf->ntiles; i++) {
        rf->count[i] = TIFFGetStrileByteCount(t, (uint32_t)i);
        rf->tile[i] = malloc(rf->count[i] + 1);
        if (fseek(f, (long)TIFFGetStrileOffset(t, (uint32_t)i), SEEK_SET) != 0 ||
            fread(rf->tile[i], 1, rf->count[i], f) != rf->count[i])
            die("reading raw tiles");
    }
    fclose(f);
    TIFFClose(t);
    rf->out = malloc(rf->tile_nbytes + RASTER__DEFLATE_MARGIN);
}

static void
rawfile_free(rawfile_t *rf)
{
    for (int64_t i = 0; i < rf->ntiles; i++)
        free(rf->tile[i]);
    free(rf->tile);
    free(rf->count);
    free(rf->out);
}

static double
run_codec(rawfile_t *rf, const raster_window_t *w, int n)
{
    const double t0 = now_s();
    for (int i = 0; i < n; i++) {
        const int64_t tx0 = w[i].col_off / TILE, tx1 = (w[i].col_off + w[i].width - 1) / TILE;
        const int64_t ty0 = w[i].row_off / TILE, ty1 = (w[i].row_off + w[i].height - 1) / TILE;
        for (int64_t ty = ty0; ty <= ty1; ty++)
            for (int64_t tx = tx0; tx <= tx1; tx++) {
                const int64_t k = ty * rf->across + tx;
                const raster__decode_ref_t whole = {rf->tile_nbytes, 1};
                if (raster__decode(rf->codec, rf->tile[k], rf->count[k], rf->out, rf->tile_nbytes,
                                   rf->tile_nbytes + RASTER__DEFLATE_MARGIN, &whole) != RASTER__DECODE_OK)
                    die("codec limit decode");
            }
    }
    return now_s() - t0;
}

/* ------------------------------ reads ---------------------------------- */

static double
run_reads(raster_dataset_t *ds, const raster_window_t *w, int n, void *buf)
{
    const double t0 = now_s();
    for (int i = 0; i < n; i++) {
        const raster_view_t v = raster_view_hwc(buf, RASTER_U16, w[i].height, w[i].width, 4);
        if (raster_read_into(ds, w[i], NULL, &v) != RASTER_OK)
            die("read");
    }
    return now_s() - t0;
}

typedef struct read_ctx {
    raster_dataset_t *ds;
    void *buf;
} read_ctx_t;

static raster_dataset_t *
open_reader(const char *path, int reader)
{
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = reader;
    raster_dataset_t *ds = NULL;
    if (raster_open_ex(path, &oo, &ds) != RASTER_OK)
        die(path);
    return ds;
}

/* ------------------------------ smoke data ----------------------------- */

/* A 4-band u16 tiled file with predictor 2, written by libtiff. */
static void
smoke_write(const char *path, const char *codec, int size)
{
    const uint16_t comp = strcmp(codec, "deflate") == 0 ? COMPRESSION_ADOBE_DEFLATE
                          : strcmp(codec, "zstd") == 0  ? COMPRESSION_ZSTD
                          : strcmp(codec, "lzw") == 0   ? COMPRESSION_LZW
                                                        : COMPRESSION_NONE;
    TIFF *t = TIFFOpen(path, "w");
    if (t == NULL)
        die(path);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, size);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, size);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 16);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 4);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_TILEWIDTH, TILE);
    TIFFSetField(t, TIFFTAG_TILELENGTH, TILE);
    TIFFSetField(t, TIFFTAG_COMPRESSION, comp);
    const uint16_t extra[3] = {EXTRASAMPLE_UNSPECIFIED, EXTRASAMPLE_UNSPECIFIED, EXTRASAMPLE_UNSPECIFIED};
    TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 3, extra);
    if (comp != COMPRESSION_NONE)
        TIFFSetField(t, TIFFTAG_PREDICTOR, 2);
    uint16_t *tile = malloc((size_t)TILE * TILE * 4 * 2);
    uint64_t s = 7;
    for (int ty = 0; ty < size / TILE; ty++)
        for (int tx = 0; tx < size / TILE; tx++) {
            for (int y = 0; y < TILE; y++)
                for (int x = 0; x < TILE; x++)
                    for (int b = 0; b < 4; b++)
                        tile[((size_t)y * TILE + x) * 4 + b] =
                            (uint16_t)(1000 * b + 3 * (tx * TILE + x) + 2 * (ty * TILE + y) + rnd(&s) % 16);
            TIFFWriteEncodedTile(t, TIFFComputeTile(t, (uint32_t)(tx * TILE), (uint32_t)(ty * TILE), 0, 0),
                                 tile, (tmsize_t)TILE * TILE * 8);
        }
    free(tile);
    TIFFClose(t);
}

/* ------------------------------ main ----------------------------------- */

typedef struct result {
    double codec, nat1, nat2, gdal_small, gdal_default, nat_cached;
} result_t;

/* The tile cache's default budget, read at start-up; the cold columns run
 * with the cache off (budget 0), the cached column with this. */
static size_t tile_cache_default;

static void
windows_make(raster_window_t *w, int n, int64_t size, int aligned, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        int64_t c, r;
        if (aligned) {
            c = (int64_t)(rnd(&seed) % (uint64_t)(size / WIN)) * WIN;
            r = (int64_t)(rnd(&seed) % (uint64_t)(size / WIN)) * WIN;
        } else {
            c = (int64_t)(rnd(&seed) % (uint64_t)(size - WIN + 1));
            r = (int64_t)(rnd(&seed) % (uint64_t)(size - WIN + 1));
        }
        w[i] = (raster_window_t){c, r, WIN, WIN};
    }
}

/* Native and GDAL must agree on every window (the bench checks what it times). */
static void
verify(raster_dataset_t *nat, raster_dataset_t *gd, const raster_window_t *w, int n, const char *path)
{
    const size_t nb = (size_t)w[0].width * w[0].height * 4 * 2;
    uint16_t *a = malloc(nb), *b = malloc(nb);
    for (int i = 0; i < n; i++) {
        const raster_view_t va = raster_view_hwc(a, RASTER_U16, w[i].height, w[i].width, 4);
        const raster_view_t vb = raster_view_hwc(b, RASTER_U16, w[i].height, w[i].width, 4);
        if (raster_read_into(nat, w[i], NULL, &va) != RASTER_OK || raster_read_into(gd, w[i], NULL, &vb) != RASTER_OK)
            die("verify read");
        if (memcmp(a, b, nb) != 0) {
            fprintf(stderr, "bench_fast_path: %s: native and GDAL differ on window %d\n", path, i);
            exit(1);
        }
    }
    free(a);
    free(b);
}

/* All six ways over the same windows.  The repetitions interleave the
 * ways (codec, native 1T, native 2T, GDAL 1 MB, GDAL default, native cached,
 * then again),
 * so a burst of load from other processes hits all of them alike, and each
 * figure is the best repetition.  Setting the 1 MB cache after the default
 * one drops GDAL's cached blocks, so every GDAL-default repetition starts
 * from what the 1 MB pass left and warms up over the windows themselves;
 * the native cached pass likewise starts from an empty tile cache (budget 0
 * frees every entry). */
static void
bench_windows(const options_t *o, const char *path, rawfile_t *rf, const raster_window_t *w, int n,
              int64_t default_cache, result_t *res)
{
    read_ctx_t nat = {open_reader(path, RASTER_READER_NATIVE_TIFF), malloc((size_t)WIN * WIN * 4 * 2)};
    read_ctx_t gd = {open_reader(path, RASTER_READER_GDAL), nat.buf};
    double best[6] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
    const int warm = n < 16 ? n : 16;
    raster_tile_cache_set_budget(0);
    run_codec(rf, w, warm);
    run_reads(nat.ds, w, warm, nat.buf);
    run_reads(gd.ds, w, warm, gd.buf);
    for (int r = 0; r < o->reps; r++) {
        double t[6];
        t[0] = run_codec(rf, w, n);
        raster_set_threads(1);
        t[1] = run_reads(nat.ds, w, n, nat.buf);
        raster_set_threads(2);
        t[2] = run_reads(nat.ds, w, n, nat.buf);
        raster_set_threads(1);
        GDALSetCacheMax64(1 << 20);
        t[3] = run_reads(gd.ds, w, n, gd.buf);
        GDALSetCacheMax64(default_cache);
        t[4] = run_reads(gd.ds, w, n, gd.buf);
        GDALSetCacheMax64(1 << 20);
        raster_tile_cache_set_budget(tile_cache_default);
        t[5] = run_reads(nat.ds, w, n, nat.buf);
        raster_tile_cache_set_budget(0);
        for (int k = 0; k < 6; k++)
            if (t[k] < best[k])
                best[k] = t[k];
    }
    res->codec = n / best[0];
    res->nat1 = n / best[1];
    res->nat2 = n / best[2];
    res->gdal_small = n / best[3];
    res->gdal_default = n / best[4];
    res->nat_cached = n / best[5];
    raster_close(nat.ds);
    raster_close(gd.ds);
    free(nat.buf);
}

/* Large windows, 1 and 2 threads interleaved, best of 'reps' each. */
static void
bench_big(raster_dataset_t *ds, const raster_window_t *w, int n, int reps, void *buf, double *one,
          double *two)
{
    double b1 = 1e30, b2 = 1e30;
    raster_set_threads(2);
    run_reads(ds, w, 1, buf);
    for (int r = 0; r < reps; r++) {
        raster_set_threads(1);
        const double t1 = run_reads(ds, w, n, buf);
        raster_set_threads(2);
        const double t2 = run_reads(ds, w, n, buf);
        b1 = t1 < b1 ? t1 : b1;
        b2 = t2 < b2 ? t2 : b2;
    }
    raster_set_threads(1);
    *one = n / b1;
    *two = n / b2;
}

/* The 1-minute load average: the bench shares its machine, and a busy
 * second core shows in the 2-thread figures. */
static void
loadavg(char *buf, size_t n)
{
    snprintf(buf, n, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL)
        return;
    char line[128];
    if (fgets(line, sizeof line, f)) {
        line[strcspn(line, " ")] = '\0';
        snprintf(buf, n, "%.16s", line);
    }
    fclose(f);
}

static void
table(FILE *f, const char *title, const result_t *r, const char *target)
{
    fprintf(f, "\n### %s (windows/s)\n\n", title);
    fprintf(f, "| codec | codec limit | native 1T | native 2T | GDAL 1 MB cache | GDAL default cache "
               "| native 1T, tile cache default | native 1T / GDAL 1 MB | native 1T / codec limit "
               "| native cached / GDAL default |\n");
    fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int c = 0; c < NCODECS; c++)
        fprintf(f, "| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f |\n", codecs[c],
                r[c].codec, r[c].nat1, r[c].nat2, r[c].gdal_small, r[c].gdal_default, r[c].nat_cached,
                r[c].nat1 / r[c].gdal_small, r[c].nat1 / r[c].codec, r[c].nat_cached / r[c].gdal_default);
    if (target)
        fprintf(f, "\n%s\n", target);
}

int
main(int argc, char **argv)
{
    options_t o = {"bench/data", "bench/results/fast_path.md", NULL, 200, 3, 8, 0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0)
            o.smoke = 1;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            o.dir = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            o.out = argv[++i];
        else if (strcmp(argv[i], "--windows") == 0 && i + 1 < argc)
            o.windows = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            o.reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--big") == 0 && i + 1 < argc)
            o.big = atoi(argv[++i]);
        else if (strcmp(argv[i], "--codec") == 0 && i + 1 < argc)
            o.only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--out FILE.md] [--windows N] [--reps R] [--big N] "
                            "[--codec NAME] [--smoke]\n", argv[0]);
            return 2;
        }
    }
    char smoke_dir[] = "/tmp/bench_fast_path.XXXXXX";
    int64_t size = 4096, big = 2048;
    if (o.smoke) {
        if (mkdtemp(smoke_dir) == NULL)
            die("mkdtemp");
        o.dir = smoke_dir;
        o.out = NULL;
        o.windows = 6;
        o.reps = 1;
        o.big = 1;
        size = 1024;
        big = 768;
        TIFFSetWarningHandler(NULL);
        for (int c = 0; c < NCODECS; c++) {
            char p[512];
            snprintf(p, sizeof p, "%s/bench_u16_%s.tif", o.dir, codecs[c]);
            smoke_write(p, codecs[c], (int)size);
        }
    }
    /* Before the first read: a private tile cache (see the header comment). */
    setenv("RASTERLOADER_TILE_CACHE_SHARED", "0", 1);
    GDALAllRegister();
    const int64_t default_cache = GDALGetCacheMax64();
    char load_before[64];
    loadavg(load_before, sizeof load_before);
    raster_window_t *wu = malloc((size_t)o.windows * sizeof *wu), *wa = malloc((size_t)o.windows * sizeof *wa);
    raster_window_t wb[64];
    if (o.big > 64)
        o.big = 64;
    result_t ru[NCODECS], ra[NCODECS];
    double big1[NCODECS], big2[NCODECS];
    void *bigbuf = malloc((size_t)big * big * 4 * 2);
    memset(ru, 0, sizeof ru);
    memset(ra, 0, sizeof ra);
    memset(big1, 0, sizeof big1);
    memset(big2, 0, sizeof big2);
    for (int c = 0; c < NCODECS; c++) {
        if (o.only != NULL && strcmp(o.only, codecs[c]) != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/bench_u16_%s.tif", o.dir, codecs[c]);
        raster_dataset_t *probe = open_reader(path, RASTER_READER_NATIVE_TIFF);
        if (tile_cache_default == 0) {
            raster_tile_cache_stats_t ts;
            raster_tile_cache_get_stats(&ts);
            tile_cache_default = ts.budget_bytes;
        }
        raster_info_t in;
        raster_dataset_info(probe, &in);
        size = in.width;
        if (in.band_count != 4 || in.dtype != RASTER_U16 || in.block_width != TILE || in.width != in.height) {
            fprintf(stderr, "bench_fast_path: %s is not a 4-band u16 square file with %d tiles\n", path, TILE);
            return 1;
        }
        windows_make(wu, o.windows, size, 0, 1000 + (uint64_t)c);
        windows_make(wa, o.windows, size, 1, 2000 + (uint64_t)c);
        for (int i = 0; i < o.big; i++) {
            uint64_t s = 3000 + (uint64_t)(c * 64 + i);
            wb[i] = (raster_window_t){(int64_t)(rnd(&s) % (uint64_t)(size - big + 1)),
                                      (int64_t)(rnd(&s) % (uint64_t)(size - big + 1)), big, big};
        }
        raster_dataset_t *gd = open_reader(path, RASTER_READER_GDAL);
        verify(probe, gd, wu, o.windows < 8 ? o.windows : 8, path);
        verify(probe, gd, wb, 1, path);
        raster_close(gd);
        rawfile_t rf;
        rawfile_load(path, &rf);
        fprintf(stderr, "%s: unaligned...\n", codecs[c]);
        bench_windows(&o, path, &rf, wu, o.windows, default_cache, &ru[c]);
        fprintf(stderr, "%s: tile-aligned...\n", codecs[c]);
        bench_windows(&o, path, &rf, wa, o.windows, default_cache, &ra[c]);
        rawfile_free(&rf);
        fprintf(stderr, "%s: %lldx%lld windows...\n", codecs[c], (long long)big, (long long)big);
        raster_tile_cache_set_budget(0);      /* decode threads, not cache hits */
        bench_big(probe, wb, o.big, 3 * o.reps, bigbuf, &big1[c], &big2[c]);
        raster_close(probe);
    }

    char load_after[64];
    loadavg(load_after, sizeof load_after);
    FILE *f = o.out ? fopen(o.out, "w") : stdout;
    if (f == NULL)
        die(o.out);
    char cpu[256] = "unknown CPU";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci != NULL) {
        char line[512];
        while (fgets(line, sizeof line, ci))
            if (strncmp(line, "model name", 10) == 0) {
                const char *p = strchr(line, ':');
                snprintf(cpu, sizeof cpu, "%.200s", p ? p + 2 : line);
                cpu[strcspn(cpu, "\n")] = '\0';
                break;
            }
        fclose(ci);
    }
    fprintf(f, "# Native fast path vs GDAL vs codec limit\n\n");
    fprintf(f, "Made by `make bench-c` (bench/fast_path/bench_fast_path.c): %lldx%lld 4-band uint16, "
               "512x512 tiles, predictor 2 (none: no predictor), %d random %dx%d windows per row, "
               "best of %d passes after a warm-up, destination compact HWC uint16.  %s, %ld cores, "
               "GDAL %s; load average %s before, %s after.\n",
               (long long)size, (long long)size, o.windows, WIN, WIN, o.reps, cpu,
               sysconf(_SC_NPROCESSORS_ONLN), GDALVersionInfo("RELEASE_NAME"), load_before, load_after);
    fprintf(f, "\nCodec limit: the same tiles, raw bytes already in memory, decoded whole by the same "
               "codec, nothing else (for none: a memcpy of each tile).  Native 1T/2T and the large "
               "windows run with the tile cache off, so every window decodes its tiles.  GDAL default "
               "cache keeps decoded tiles between windows (1 MB cannot), so it mostly measures cache "
               "hits; its peer is native 1T with the tile cache at its default budget (%zu MiB, a "
               "private cache).  Ways are interleaved per pass; each figure is its best pass.\n",
               tile_cache_default >> 20);
    table(f, "Random 256x256 windows, unaligned", ru,
          "Target: native 1T >= 1.5x GDAL (1 MB) for deflate, >= 1.3x for zstd.");
    table(f, "Random 256x256 windows, tile-aligned (offsets multiples of 256)", ra,
          "Target: native 1T >= 0.9x the codec limit.");
    fprintf(f, "\n### %lldx%lld windows, native reader (windows/s)\n\n", (long long)big, (long long)big);
    fprintf(f, "| codec | 1 thread | 2 threads | 2T / 1T |\n|---|---:|---:|---:|\n");
    for (int c = 0; c < NCODECS; c++)
        fprintf(f, "| %s | %.2f | %.2f | %.2f |\n", codecs[c], big1[c], big2[c], big2[c] / big1[c]);
    fprintf(f, "\nTarget: 2 threads >= 1.8x one thread.\n");
    if (f != stdout)
        fclose(f);
    if (o.smoke) {
        for (int c = 0; c < NCODECS; c++) {
            char p[512];
            snprintf(p, sizeof p, "%s/bench_u16_%s.tif", o.dir, codecs[c]);
            unlink(p);
        }
        rmdir(o.dir);
    }
    free(wu);
    free(wa);
    free(bigbuf);
    return 0;
}
