/*
 * test_util.c - fixture lookup, guarded buffers and the GDAL oracle.
 *
 * The oracle is deliberately a different route through GDAL than the
 * library's own GDAL reader: one GDALRasterIO per band into a compact CHW
 * buffer, in the band's own data type, no pixel/line/band spacing.
 */
#include "test_util.h"

#include <cpl_error.h>
#include <gdal.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* The suites allocate and free many multi-megabyte buffers; keeping them in
 * the heap instead of fresh mmaps saves most of the page-fault time. */
__attribute__((constructor)) static void
tests_malloc_tuning(void)
{
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

const char *
fixture_path(const char *name)
{
    static _Thread_local char buf[4096];
    const char *dir = getenv("RASTER_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "data/fixtures", name);
    return buf;
}

int
fixtures_load(fixture_t **out)
{
    FILE *f = fopen(fixture_path("manifest.tsv"), "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s: run `make fixtures`\n", fixture_path("manifest.tsv"));
        *out = NULL;
        return 0;
    }
    int n = 0, cap = 0;
    fixture_t *v = NULL;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = realloc(v, (size_t)cap * sizeof *v);
        }
        fixture_t *fx = &v[n];
        memset(fx, 0, sizeof *fx);
        if (sscanf(line, "%159s %d %d", fx->name, &fx->native_expected, &fx->malformed) == 3)
            n++;
    }
    fclose(f);
    *out = v;
    return n;
}

guarded_t
guarded_alloc(size_t nbytes)
{
    guarded_t g;
    g.base = malloc(nbytes + 2 * GUARD_NBYTES);
    memset(g.base, GUARD_BYTE, nbytes + 2 * GUARD_NBYTES);
    g.data = g.base + GUARD_NBYTES;
    g.nbytes = nbytes;
    return g;
}

int
guarded_intact(const guarded_t *g)
{
    for (size_t i = 0; i < GUARD_NBYTES; i++)
        if (g->base[i] != GUARD_BYTE || g->data[g->nbytes + i] != GUARD_BYTE)
            return 0;
    return 1;
}

void
guarded_free(guarded_t *g)
{
    free(g->base);
    g->base = g->data = NULL;
}

static int
oracle_dtype(GDALRasterBandH b, raster_dtype_t *dt, GDALDataType *gt)
{
    *gt = GDALGetRasterDataType(b);
    switch (*gt) {
    case GDT_Byte: {
        const char *pt = GDALGetMetadataItem(b, "PIXELTYPE", "IMAGE_STRUCTURE");
        *dt = (pt && strcmp(pt, "SIGNEDBYTE") == 0) ? RASTER_I8 : RASTER_U8;
        return 0;
    }
    case GDT_UInt16: *dt = RASTER_U16; return 0;
    case GDT_Int16: *dt = RASTER_I16; return 0;
    case GDT_UInt32: *dt = RASTER_U32; return 0;
    case GDT_Int32: *dt = RASTER_I32; return 0;
    case GDT_Float32: *dt = RASTER_F32; return 0;
    case GDT_Float64: *dt = RASTER_F64; return 0;
    default: return -1;
    }
}

int
gdal_oracle_read(const char *path, raster_window_t win, const int *bands, int band_count, void **out,
                 raster_dtype_t *dt_out)
{
    GDALAllRegister();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    GDALDatasetH h = GDALOpen(path, GA_ReadOnly);
    CPLPopErrorHandler();
    if (h == NULL)
        return -1;
    GDALDataType gt;
    if (oracle_dtype(GDALGetRasterBand(h, bands[0]), dt_out, &gt) != 0) {
        GDALClose(h);
        return -1;
    }
    const size_t plane = (size_t)(win.width * win.height) * raster_dtype_size(*dt_out);
    uint8_t *buf = malloc(plane * (size_t)band_count);
    int rc = 0;
    for (int i = 0; i < band_count && rc == 0; i++) {
        GDALRasterBandH b = GDALGetRasterBand(h, bands[i]);
        CPLPushErrorHandler(CPLQuietErrorHandler);
        if (GDALRasterIO(b, GF_Read, (int)win.col_off, (int)win.row_off, (int)win.width,
                         (int)win.height, buf + plane * (size_t)i, (int)win.width, (int)win.height,
                         gt, 0, 0) != CE_None)
            rc = -1;
        CPLPopErrorHandler();
    }
    GDALClose(h);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

static int
read_band_mask(GDALDatasetH h, int band, raster_window_t win, uint8_t *buf)
{
    GDALRasterBandH mb = GDALGetMaskBand(GDALGetRasterBand(h, band));
    return GDALRasterIO(mb, GF_Read, (int)win.col_off, (int)win.row_off, (int)win.width,
                        (int)win.height, buf, (int)win.width, (int)win.height, GDT_Byte, 0, 0) ==
                   CE_None
               ? 0
               : -1;
}

int
gdal_oracle_mask(const char *path, raster_window_t win, int band, uint8_t **out)
{
    GDALAllRegister();
    GDALDatasetH h = GDALOpen(path, GA_ReadOnly);
    if (h == NULL)
        return -1;
    const size_t n = (size_t)(win.width * win.height);
    uint8_t *buf = malloc(n);
    int rc;
    const int count = GDALGetRasterCount(h);
    if (band > 0) {
        rc = read_band_mask(h, band, win, buf);
    } else if (GDALGetMaskFlags(GDALGetRasterBand(h, 1)) & GMF_PER_DATASET) {
        rc = read_band_mask(h, 1, win, buf);
    } else if (count == 4 &&
               GDALGetRasterColorInterpretation(GDALGetRasterBand(h, 1)) == GCI_RedBand) {
        rc = read_band_mask(h, 4, win, buf);
    } else {
        /* rasterio: np.logical_or.reduce(read_masks()) * 255 */
        uint8_t *m = malloc(n);
        memset(buf, 0, n);
        rc = 0;
        for (int b = 1; b <= count && rc == 0; b++) {
            rc = read_band_mask(h, b, win, m);
            for (size_t i = 0; i < n; i++)
                buf[i] |= m[i];
        }
        for (size_t i = 0; i < n; i++)
            buf[i] = buf[i] ? 255 : 0;
        free(m);
    }
    GDALClose(h);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

raster_dataset_t *
open_with_reader(const char *path, int reader)
{
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = reader;
    raster_dataset_t *ds = NULL;
    if (raster_open_ex(path, &oo, &ds) != RASTER_OK)
        ck_abort_msg("%s: %s", path, raster_last_error());
    return ds;
}

void
dlpack_delete(void *managed, int versioned)
{
    if (versioned) {
        raster_DLManagedTensorVersioned *m = managed;
        m->deleter(m);
    } else {
        raster_DLManagedTensor *m = managed;
        m->deleter(m);
    }
}

/* RASTERLOADER_TILE_CACHE_NAME=t<pid> unless the caller chose one: the
 * suite's own shared arena, inherited by its forked and spawned children. */
void
test_cache_isolate(void)
{
    if (getenv("RASTERLOADER_TILE_CACHE_NAME") != NULL)
        return;
    char tag[32];
    snprintf(tag, sizeof tag, "t%d", (int)getpid());
    setenv("RASTERLOADER_TILE_CACHE_NAME", tag, 1);
}

/* ------------------------------ poisoned bombs ------------------------- */

/* 1 when zlib, inflating the whole stream into a reused 64 KiB buffer,
 * fails before its end. */
static int
zlib_fails_to_the_end(const uint8_t *in, size_t n)
{
    static uint8_t sink[1 << 16];
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(inflateInit(&z), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    int st;
    do {
        z.next_out = sink;
        z.avail_out = sizeof sink;
        st = inflate(&z, Z_NO_FLUSH);
    } while (st == Z_OK);
    inflateEnd(&z);
    return st == Z_DATA_ERROR;
}

uint8_t *
bomb_zlib(const uint8_t *plain, size_t plain_n, size_t *n_out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit(&z, Z_DEFAULT_COMPRESSION), Z_OK);
    const size_t cap = deflateBound(&z, (uLong)plain_n) + 64;
    uint8_t *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    z.next_in = (Bytef *)plain;
    z.avail_in = (uInt)plain_n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    /* A full flush ends the last block on a byte boundary and does not end
     * the stream (no final block, no Adler-32). */
    ck_assert_int_eq(deflate(&z, Z_FULL_FLUSH), Z_OK);
    ck_assert(z.avail_in == 0 && z.avail_out > 0);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    out[n++] = 0x07;            /* BFINAL 1, BTYPE 11: reserved (RFC 1951, 3.2.3) */
    ck_assert_msg(zlib_fails_to_the_end(out, n), "the DEFLATE poison is not an error");
    *n_out = n;
    return out;
}

/* 1 when zstd, streaming the whole input into a reused 64 KiB buffer,
 * fails before its end. */
static int
zstd_fails_to_the_end(const uint8_t *in, size_t n)
{
    static uint8_t sink[1 << 16];
    ZSTD_DCtx *d = ZSTD_createDCtx();
    ZSTD_inBuffer ib = {in, n, 0};
    size_t r = 0;
    while (ib.pos < ib.size) {
        ZSTD_outBuffer ob = {sink, sizeof sink, 0};
        r = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(r))
            break;
    }
    ZSTD_freeDCtx(d);
    return ZSTD_isError(r);
}

uint8_t *
bomb_zstd(const uint8_t *plain, size_t plain_n, size_t *n_out)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    const size_t cap = ZSTD_compressBound(plain_n) + 64;
    uint8_t *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    ZSTD_outBuffer ob = {out, cap, 0};
    ZSTD_inBuffer ib = {plain, plain_n, 0};
    size_t left;
    /* A flush ends the blocks so far without ending the frame (no last
     * block, no stated content size). */
    do
        left = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_flush);
    while (left != 0 && !ZSTD_isError(left));
    ck_assert(!ZSTD_isError(left) && ib.pos == plain_n && ob.pos + 3 <= cap);
    ZSTD_freeCCtx(cc);
    /* Block header: Last_Block 1, Block_Type 3 (reserved, RFC 8878
     * 3.1.1.2.2), Block_Size 0. */
    memcpy(out + ob.pos, (const uint8_t[3]){0x07, 0x00, 0x00}, 3);
    *n_out = ob.pos + 3;
    ck_assert_msg(zstd_fails_to_the_end(out, *n_out), "the zstd poison is not an error");
    return out;
}

GDALDataType
test_gdal_type(raster_dtype_t dt)
{
    switch (dt) {
    case RASTER_U8: return GDT_Byte;
    case RASTER_U16: return GDT_UInt16;
    case RASTER_I16: return GDT_Int16;
    case RASTER_U32: return GDT_UInt32;
    case RASTER_I32: return GDT_Int32;
    case RASTER_F32: return GDT_Float32;
    case RASTER_F64: return GDT_Float64;
    default: return GDT_Unknown;     /* RASTER_I8, RASTER_F16: GDAL 3.6 has no such type */
    }
}
