/*
 * bench_convert.c - dtype conversion throughput per (source, destination)
 * pair: the kernels (raster__place, lib/common/convert.c) against the scalar path
 * they replaced (raster__place_scalar), GDALCopyWords for the same pair and
 * memcpy of the same bytes written, all in one run on one machine.
 *
 * The data is a 256x256 window of 4 channels (262,144 values), the issue-22
 * read: "contiguous" is HWC to HWC (a row is one run), "HWC->CHW" is pixels
 * to planes (what read() does with a pixel-interleaved tile: a strided
 * source).  Each figure is the best of --reps timings of --iters passes.
 * GDALCopyWords does the HWC->CHW case as one call per channel with a pixel
 * spacing, its own strided mode.  Rows for scale/offset and mean/std follow
 * for the float destinations.
 *
 * A second table puts the lookup tables (8/16-bit sources with mean/std or
 * scale/offset, lib/common/convert.h) beside the direct kernels they replace where
 * they pay, in per-thread CPU time and wall time (the machine is shared),
 * for one window and a 32-window batch.  In the first table the "kernels"
 * columns take the tables wherever the rule builds them.
 *
 * Usage: bench_convert [--reps N] [--iters N] [--smoke] [--tables]
 * (--tables: only the second table)
 * Prints markdown tables (bench/convert/run.sh puts it into
 * bench/results/conversion.md).  --smoke: one pass of a small odd window.
 */
#include "common/convert.h"

#include <gdal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bench {
    int64_t h, w, c;
    int reps, iters;
    void *src, *dst;          /* big enough for f64 */
} bench_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef enum { WAY_KERNELS, WAY_SCALAR, WAY_GDAL, WAY_MEMCPY } way_t;
typedef enum { MODE_PLAIN, MODE_AFFINE, MODE_DIVIDE } mode_t_;

static GDALDataType gdt_of(raster_dtype_t dt)
{
    switch (dt) {
    case RASTER_U8: return GDT_Byte;
    case RASTER_U16: return GDT_UInt16;
    case RASTER_I16: return GDT_Int16;
    case RASTER_U32: return GDT_UInt32;
    case RASTER_I32: return GDT_Int32;
    case RASTER_F32: return GDT_Float32;
    case RASTER_F64: return GDT_Float64;
    default: return GDT_Unknown;
    }
}

static const double SCALE[4] = {1.0 / 3000, 1.0 / 7, 0.5, 2.0}, OFFSET[4] = {-1.0, 0.25, 3.0, 0.0};
static const double STD[4] = {300.0, 400.0, 500.0, 600.0}, MEAN[4] = {1000.0, 1500.0, 2000.0, 2500.0};

/* One pass of 'way' over the whole window. */
static void one_pass(const bench_t *b, way_t way, raster_dtype_t s, raster_dtype_t d, int planar, mode_t_ mode)
{
    const int64_t ss = (int64_t)raster_dtype_size(s), ds = (int64_t)raster_dtype_size(d);
    const int64_t n = b->h * b->w * b->c;
    if (way == WAY_MEMCPY) {
        memcpy(b->dst, b->src, (size_t)(n * ds));
        return;
    }
    if (way == WAY_GDAL) {
        if (!planar) {
            GDALCopyWords64(b->src, gdt_of(s), (int)ss, b->dst, gdt_of(d), (int)ds, n);
            return;
        }
        const int64_t plane = b->h * b->w;
        for (int64_t k = 0; k < b->c; k++)
            GDALCopyWords64((uint8_t *)b->src + k * ss, gdt_of(s), (int)(ss * b->c),
                            (uint8_t *)b->dst + k * plane * ds, gdt_of(d), (int)ds, plane);
        return;
    }
    const raster_view_t sv = raster_view_hwc(b->src, s, b->h, b->w, b->c);
    raster_view_t dv = raster_view_hwc(b->dst, d, b->h, b->w, b->c);
    if (planar)
        dv = (raster_view_t){b->dst, d, b->h, b->w, b->c, b->w * ds, ds, b->h * b->w * ds};
    const raster__place_opts_t po = {NULL, mode == MODE_DIVIDE ? STD : SCALE, mode == MODE_DIVIDE ? MEAN : OFFSET,
                                     mode == MODE_DIVIDE};
    const raster__place_opts_t *opts = mode == MODE_PLAIN ? NULL : &po;
    if (way == WAY_KERNELS)
        raster__place(&sv, &dv, opts);
    else
        raster__place_scalar(&sv, &dv, opts);
}

/* Values per second, best of b->reps timings of b->iters passes. */
static double values_per_s(const bench_t *b, way_t way, raster_dtype_t s, raster_dtype_t d, int planar,
                           mode_t_ mode)
{
    double best = 1e30;
    one_pass(b, way, s, d, planar, mode);          /* warm: pages touched, caches filled */
    for (int r = 0; r < b->reps; r++) {
        const double t0 = now_s();
        for (int i = 0; i < b->iters; i++)
            one_pass(b, way, s, d, planar, mode);
        const double t = now_s() - t0;
        best = t < best ? t : best;
    }
    return (double)(b->h * b->w * b->c) * b->iters / best;
}

/* "1234 M/s 4.9 GB/s": values and bytes written per second. */
static void cell(char *out, size_t cap, double vps, size_t dsize)
{
    snprintf(out, cap, "%.0f M/s, %.2f GB/s", vps / 1e6, vps * (double)dsize / 1e9);
}

/* The source in dtype s: random bits for integers (every value, so the
 * saturating pairs saturate about half the time); for floats, values of
 * imagery, -1000 to 5000 with fractions (random bits would be mostly huge,
 * NaN or subnormal, which no raster holds and which cost microcode assists). */
static void fill_source(bench_t *b, raster_dtype_t s)
{
    const int64_t n = b->h * b->w * b->c;
    uint32_t x = 12345;
    for (int64_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        const double v = -1000.0 + (double)(x >> 8) / (double)(1u << 24) * 6000.0;
        if (s == RASTER_F32) {
            const float f = (float)v;
            memcpy((uint8_t *)b->src + i * 4, &f, 4);
        } else if (s == RASTER_F64) {
            memcpy((uint8_t *)b->src + i * 8, &v, 8);
        } else if (s == RASTER_F16) {
            const uint16_t h = raster__f16_from_f64(v);
            memcpy((uint8_t *)b->src + i * 2, &h, 2);
        } else {
            const size_t size = raster_dtype_size(s);
            memcpy((uint8_t *)b->src + (size_t)i * size, &x, size);
        }
    }
}

static void row(FILE *f, bench_t *b, raster_dtype_t s, raster_dtype_t d, mode_t_ mode)
{
    static const char *const mode_names[] = {"", " scale/offset", " mean/std"};
    const size_t ds = raster_dtype_size(d);
    const int gdal = mode == MODE_PLAIN && gdt_of(s) != GDT_Unknown && gdt_of(d) != GDT_Unknown;
    const int has_kernel = (mode == MODE_PLAIN ? (void *)raster__cvt_plain(s, d)
                            : mode == MODE_AFFINE ? (void *)raster__cvt_affine(s, d)
                                                  : (void *)raster__cvt_divide(s, d)) != NULL;
    char c[6][48];
    fill_source(b, s);
    const double kc = values_per_s(b, WAY_KERNELS, s, d, 0, mode), sc = values_per_s(b, WAY_SCALAR, s, d, 0, mode);
    const double kp = values_per_s(b, WAY_KERNELS, s, d, 1, mode), sp = values_per_s(b, WAY_SCALAR, s, d, 1, mode);
    cell(c[0], sizeof c[0], kc, ds);
    cell(c[1], sizeof c[1], sc, ds);
    cell(c[2], sizeof c[2], kp, ds);
    cell(c[3], sizeof c[3], sp, ds);
    if (gdal) {
        cell(c[4], sizeof c[4], values_per_s(b, WAY_GDAL, s, d, 0, mode), ds);
        cell(c[5], sizeof c[5], values_per_s(b, WAY_GDAL, s, d, 1, mode), ds);
    } else {
        snprintf(c[4], sizeof c[4], "n/a");
        snprintf(c[5], sizeof c[5], "n/a");
    }
    const double mc = values_per_s(b, WAY_MEMCPY, s, d, 0, mode);
    fprintf(f, "| %s -> %s%s%s | %s | %s | %.1fx | %s | %s | %.1fx | %s | %s | %.2f GB/s | %.0f%% |\n",
            raster_dtype_name(s), raster_dtype_name(d), mode_names[mode], has_kernel ? "" : " (no kernel)",
            c[0], c[1], kc / sc, c[2], c[3], kp / sp, c[4], c[5], mc * (double)ds / 1e9, 100.0 * kc / mc);
    fflush(f);
}

static void load_line(char *out, size_t cap)
{
    FILE *p = popen("uptime", "r");
    out[0] = 0;
    if (p) {
        if (!fgets(out, (int)cap, p))
            out[0] = 0;
        pclose(p);
    }
    out[strcspn(out, "\n")] = 0;
}

/* ---- lookup tables against the direct kernels (lib/common/convert.h) ---- */

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct timing {
    double cpu, wall;     /* best seconds per pass */
} timing_t;

/* Best of reps x iters passes of raster__place (or memcpy when opts is
 * NULL and sv, dv have the same dtype), CPU time of this thread and wall. */
static timing_t time_place(const raster_view_t *sv, const raster_view_t *dv, const raster__place_opts_t *opts,
                           int reps, int iters)
{
    timing_t best = {1e30, 1e30};
    const size_t bytes = (size_t)(dv->height * dv->width * dv->channels) * raster_dtype_size(dv->dtype);
    for (int r = 0; r < reps; r++) {
        const double c0 = cpu_s(), w0 = now_s();
        for (int i = 0; i < iters; i++) {
            if (opts == NULL)
                memcpy(dv->data, sv->data, bytes);
            else
                raster__place(sv, dv, opts);
        }
        const double c = (cpu_s() - c0) / iters, w = (now_s() - w0) / iters;
        best.cpu = c < best.cpu ? c : best.cpu;
        best.wall = w < best.wall ? w : best.wall;
    }
    return best;
}

/* One row: direct kernels (tables off) and tables (built before timing),
 * ns per value in CPU time and wall time, for h x w x 4 values into HWC (or
 * CHW), and the memcpy of the bytes written. */
static void table_row(FILE *f, raster_dtype_t s, raster_dtype_t d, int divide, int64_t h, int planar_dst,
                      int full_range, const char *what, int reps, int iters)
{
    const int64_t w = 256, c = 4, n = h * w * c;
    const size_t ss = raster_dtype_size(s), ds = raster_dtype_size(d);
    uint8_t *src = aligned_alloc(64, ((size_t)n * ss + 63) / 64 * 64), *dst = aligned_alloc(64, ((size_t)n * 8 + 63) / 64 * 64);
    if (!src || !dst) {
        fprintf(stderr, "bench_convert: out of memory\n");
        exit(1);
    }
    uint32_t x = 777;
    for (int64_t i = 0; i < n; i++) {      /* imagery: 0..3999 (uint16), 0..255 or -128..127 (8-bit) */
        x = x * 1103515245u + 12345u;
        const uint32_t v = (x >> 8) % (ss == 1 ? 256u : full_range ? 65536u : 4000u);
        if (ss == 1)
            src[i] = (uint8_t)v;
        else {
            const uint16_t u = (uint16_t)v;
            memcpy(src + 2 * i, &u, 2);
        }
    }
    memset(dst, 0, (size_t)n * 8);
    const raster_view_t sv = raster_view_hwc(src, s, h, w, c);
    raster_view_t dv = raster_view_hwc(dst, d, h, w, c);
    if (planar_dst)
        dv = (raster_view_t){dst, d, h, w, c, w * (int64_t)ds, (int64_t)ds, h * w * (int64_t)ds};
    const raster__place_opts_t po = {NULL, divide ? STD : SCALE, divide ? MEAN : OFFSET, divide};
    raster__cvt_tables_enable(0);
    raster__place(&sv, &dv, &po);
    const timing_t direct = time_place(&sv, &dv, &po, reps, iters);
    raster__cvt_tables_enable(1);
    raster__cvt_tables_clear();
    const double b0 = cpu_s();
    raster__place(&sv, &dv, &po);          /* builds the tables (4 keys: a table per band) */
    const double first = cpu_s() - b0;
    const timing_t table = time_place(&sv, &dv, &po, reps, iters);
    const raster_view_t mv = raster_view_hwc(src, d, h, w, c);   /* memcpy of the bytes written, from a buffer as big */
    uint8_t *msrc = aligned_alloc(64, ((size_t)n * 8 + 63) / 64 * 64);
    if (!msrc) {
        fprintf(stderr, "bench_convert: out of memory\n");
        exit(1);
    }
    memset(msrc, 1, (size_t)n * 8);
    const raster_view_t msv = {msrc, d, mv.height, mv.width, mv.channels, mv.row_stride, mv.col_stride, mv.chan_stride};
    const timing_t copy = time_place(&msv, &dv, NULL, reps, iters);
    fprintf(f, "| %s -> %s %s, %s | %.3f / %.3f | %.3f / %.3f | %.1fx / %.1fx | %.3f / %.3f | %.2f / %.2f | %.0f |\n",
            raster_dtype_name(s), raster_dtype_name(d), divide ? "mean/std" : "scale/offset", what,
            direct.cpu * 1e9 / (double)n, direct.wall * 1e9 / (double)n, table.cpu * 1e9 / (double)n,
            table.wall * 1e9 / (double)n, direct.cpu / table.cpu, direct.wall / table.wall,
            copy.cpu * 1e9 / (double)n, copy.wall * 1e9 / (double)n, table.cpu / copy.cpu, table.wall / copy.wall,
            first * 1e6);
    fflush(f);
    raster__cvt_tables_clear();
    free(src);
    free(dst);
    free(msrc);
}

static void table_section(FILE *f, int smoke)
{
    char load[256];
    load_line(load, sizeof load);
    const int reps = smoke ? 1 : 7, iters = smoke ? 1 : 10;
    const int64_t one = smoke ? 3 : 256, batch = smoke ? 5 : 32 * 256;
    fprintf(f, "\nLookup tables (lib/common/convert.h) against the direct kernels, 4 bands with a different mean/std "
               "(scale/offset) each; source values 0..3999 (uint16) unless random 16-bit values, every value (8-bit); ns per value, "
               "per-thread CPU time / wall, best of %d x %d; first call: the CPU time of the call that builds "
               "the 4 tables and converts; `uptime`: %s\n\n",
            reps, iters, load);
    fprintf(f, "| pair, shape | direct ns/value (CPU / wall) | tables ns/value (CPU / wall) | speed-up | "
               "memcpy of the bytes written ns/value | tables / memcpy | first call, us CPU |\n");
    fprintf(f, "|---|---:|---:|---:|---:|---:|---:|\n");
    static const raster_dtype_t srcs[] = {RASTER_U16, RASTER_I16, RASTER_U8};
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        table_row(f, srcs[i], RASTER_F32, 1, one, 0, 0, "256x256x4 window HWC", reps, iters);
        table_row(f, srcs[i], RASTER_F32, 1, one, 1, 0, "256x256x4 window HWC->CHW", reps, iters);
        table_row(f, srcs[i], RASTER_F32, 0, one, 0, 0, "256x256x4 window HWC", reps, iters);
    }
    table_row(f, RASTER_U16, RASTER_F32, 1, one, 0, 1, "256x256x4 window HWC, random 16-bit values", reps, iters);
    table_row(f, RASTER_U16, RASTER_F32, 1, one, 1, 1, "256x256x4 window HWC->CHW, random 16-bit values", reps,
              iters);
    table_row(f, RASTER_U16, RASTER_F64, 1, one, 0, 0, "256x256x4 window HWC (no tables for float64)", reps, iters);
    table_row(f, RASTER_U16, RASTER_U8, 0, one, 0, 0, "256x256x4 window HWC", reps, iters);
    table_row(f, RASTER_U16, RASTER_F32, 1, batch, 0, 0, "batch of 32 windows HWC (8.4 M values, 32 MiB)", reps,
              smoke ? 1 : 2);
}

int main(int argc, char **argv)
{
    bench_t b = {256, 256, 4, 7, 20, NULL, NULL};
    int smoke = 0, tables_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            b.reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            b.iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--smoke"))
            smoke = 1;
        else if (!strcmp(argv[i], "--tables"))
            tables_only = 1;
        else {
            fprintf(stderr, "usage: %s [--reps N] [--iters N] [--smoke] [--tables]\n", argv[0]);
            return 2;
        }
    }
    if (smoke) {
        b.h = b.w = 37;      /* odd: the vector tails run */
        b.reps = b.iters = 1;
    }
    if (b.reps < 1 || b.iters < 1) {
        fprintf(stderr, "bench_convert: --reps and --iters must be >= 1\n");
        return 2;
    }
    /* aligned_alloc wants a multiple of the alignment (C11; ASan checks it). */
    const size_t nbytes = ((size_t)(b.h * b.w * b.c) * 8 + 63) / 64 * 64;
    b.src = aligned_alloc(64, nbytes);
    b.dst = aligned_alloc(64, nbytes);
    if (!b.src || !b.dst) {
        fprintf(stderr, "bench_convert: out of memory\n");
        return 1;
    }
    memset(b.dst, 0, nbytes);
    FILE *f = stdout;
    if (tables_only) {
        table_section(f, smoke);
        free(b.src);
        free(b.dst);
        return 0;
    }
    char load[256];
    load_line(load, sizeof load);
    fprintf(f, "Conversion throughput, %lldx%lld window of %lld channels (%lld values), best of %d x %d passes; "
               "`uptime`: %s\n\n",
            (long long)b.h, (long long)b.w, (long long)b.c, (long long)(b.h * b.w * b.c), b.reps, b.iters, load);
    fprintf(f, "| pair | kernels, HWC->HWC | scalar path, HWC->HWC | speed-up | kernels, HWC->CHW | "
               "scalar path, HWC->CHW | speed-up | GDALCopyWords, contiguous | GDALCopyWords, HWC->CHW | "
               "memcpy of the bytes written | kernels / memcpy |\n");
    fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int s = 0; s < RASTER_DTYPE_COUNT; s++)
        for (int d = 0; d < RASTER_DTYPE_COUNT; d++)
            if (s != d)
                row(f, &b, (raster_dtype_t)s, (raster_dtype_t)d, MODE_PLAIN);
    for (int m = MODE_AFFINE; m <= MODE_DIVIDE; m++)
        for (int s = 0; s < RASTER_DTYPE_COUNT; s++)
            for (int d = RASTER_F32; d <= RASTER_F64; d++)
                row(f, &b, (raster_dtype_t)s, (raster_dtype_t)d, (mode_t_)m);
    table_section(f, smoke);
    free(b.src);
    free(b.dst);
    return 0;
}
