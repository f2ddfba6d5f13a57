/*
 * check_tiff_equiv.c - the native TIFF reader is bit-identical to the GDAL
 * reader.
 *
 * For every fixture the native reader is expected to serve: a fixed window
 * set (tile-aligned, unaligned, straddling the edge tiles, 1x1, the full
 * raster, the last row and the last column, several tiles at once) x band
 * orders (all, reversed, one band, a repeated band) x destinations (same
 * dtype HWC, CHW, strided sub-view of a bigger buffer, float32 with scale
 * and offset, other dtypes) is read once through the native reader and once
 * with the GDAL reader forced; the whole destination buffers, padding and
 * guard bytes included, must be equal byte for byte.  The same-dtype HWC
 * case is also compared with the independent oracle (GDALRasterIO per band).
 * A seeded property test adds random windows, bands, dtypes, layouts and
 * boundless reads.  Fixtures not expected to be native must be served by
 * GDAL.  RASTER_MATRIX_SCALE=n keeps every n-th combination.
 */
#include "check_tiff_common.h"

#include <cpl_string.h>
#include <gdal.h>
#include <tiffio.h>

#include <math.h>
#include <unistd.h>

static fixture_t *fixtures;
static int fixture_count;

typedef struct pair {
    raster_dataset_t *native, *gdal;
    raster_info_t info;
    const char *path;
} pair_t;

static void
pair_open(const fixture_t *fx, pair_t *p)
{
    p->path = fixture_path(fx->name);
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    ck_assert_msg(raster_open_ex(p->path, &oo, &p->native) == RASTER_OK, "%s: %s", p->path,
                  raster_last_error());
    oo.reader = RASTER_READER_GDAL;
    ck_assert_msg(raster_open_ex(p->path, &oo, &p->gdal) == RASTER_OK, "%s: %s", p->path,
                  raster_last_error());
    raster_dataset_info(p->native, &p->info);
    ck_assert_msg(p->info.reader == RASTER_READER_NATIVE_TIFF,
                  "%s: expected the native reader, got GDAL", fx->name);
}

static void
pair_close(pair_t *p)
{
    raster_close(p->native);
    raster_close(p->gdal);
}

static raster_window_t
clip(const raster_info_t *in, int64_t c, int64_t r, int64_t w, int64_t h)
{
    if (c < 0) c = 0;
    if (r < 0) r = 0;
    if (c >= in->width) c = in->width - 1;
    if (r >= in->height) r = in->height - 1;
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    if (c + w > in->width) w = in->width - c;
    if (r + h > in->height) h = in->height - r;
    return (raster_window_t){c, r, w, h};
}

static int
window_set(const raster_info_t *in, raster_window_t *w)
{
    const int64_t W = in->width, H = in->height;
    const int64_t bw = in->block_width, bh = in->block_height;
    int n = 0;
    w[n++] = clip(in, bw, bh, bw, bh);                            /* tile-aligned */
    w[n++] = clip(in, bw / 2 + 3, bh / 3 + 1, bw - 5, bh + 2);    /* unaligned */
    w[n++] = clip(in, W - bw / 2 - 5, H - bh / 2 - 7, bw, bh);    /* edge tiles */
    w[n++] = clip(in, W / 2, H / 2, 1, 1);                        /* 1x1 */
    w[n++] = clip(in, 0, 0, W, H);                                /* everything */
    w[n++] = clip(in, 0, H - 1, W, 1);                            /* last row */
    w[n++] = clip(in, W - 1, 0, 1, H);                            /* last column */
    w[n++] = clip(in, bw / 2 - 1, bh - 3, 2 * bw + 7, bh + 9);    /* several tiles */
    w[n++] = clip(in, 0, 0, bw, bh / 2 + 1);                      /* top of the first tile */
    return n;
}

/* Same-dtype HWC read against the oracle (CHW, file dtype). */
static void
oracle_compare(pair_t *p, const tiff_req_t *r)
{
    const int nb = r->nbands ? r->nbands : p->info.band_count;
    int bands[8];
    for (int k = 0; k < nb; k++)
        bands[k] = r->nbands ? r->bands[k] : k + 1;
    void *want = NULL;
    raster_dtype_t odt;
    ck_assert_msg(gdal_oracle_read(p->path, r->win, bands, nb, &want, &odt) == 0, "%s: oracle failed",
                  p->path);
    ck_assert_int_eq(odt, r->dt);
    dst_buf_t got;
    ck_assert_int_eq(tiff_req_read(p->native, r, p->info.band_count, &got), RASTER_OK);
    const size_t es = raster_dtype_size(odt);
    const int64_t H = r->win.height, W = r->win.width;
    for (int k = 0; k < nb; k++)
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                const uint8_t *a = (const uint8_t *)got.v.data + y * got.v.row_stride +
                                   x * got.v.col_stride + k * got.v.chan_stride;
                const uint8_t *b = (const uint8_t *)want + (((size_t)k * (size_t)H + (size_t)y) * (size_t)W + (size_t)x) * es;
                if (!elem_bytes_eq(a, b, es)) {
                    char label[256];
                    tiff_req_label(r, label, sizeof label);
                    ck_abort_msg("%s %s: differs from the GDAL oracle at band %d, row %lld, col %lld",
                                 p->path, label, bands[k], (long long)y, (long long)x);
                }
            }
    dst_free(&got);
    free(want);
}

START_TEST(matrix_matches_gdal)
{
    const fixture_t *fx = &fixtures[_i];
    if (!fx->native_expected || fx->malformed)
        return;
    pair_t p;
    pair_open(fx, &p);
    const int nb = p.info.band_count;
    raster_window_t wins[16];
    const int nw = window_set(&p.info, wins);
    /* Band orders: all (NULL list), reversed, the last band alone, a repeat. */
    int orders[4][8] = {{0}, {0}, {nb}, {1, nb, 1}};
    const int order_len[4] = {0, nb < 8 ? nb : 8, 1, 3};
    for (int k = 0; k < order_len[1]; k++)
        orders[1][k] = nb - k;
    const raster_dtype_t others[] = {RASTER_U8, RASTER_I16, RASTER_F16, RASTER_I8, RASTER_U32,
                                     RASTER_F64, RASTER_I32, RASTER_U16};
    const int scale = tiff_matrix_scale();
    long combo = 0;
    for (int wi = 0; wi < nw; wi++)
        for (int oi = 0; oi < 4; oi++)
            for (int mode = 0; mode < 5; mode++) {
                if ((combo++ + _i) % scale != 0)
                    continue;
                tiff_req_t r;
                memset(&r, 0, sizeof r);
                r.win = wins[wi];
                r.nbands = order_len[oi];
                memcpy(r.bands, orders[oi], sizeof r.bands);
                r.dt = p.info.dtype;
                switch (mode) {
                case 0: r.layout = DST_HWC; break;
                case 1: r.layout = DST_CHW; break;
                case 2: r.layout = DST_STRIDED; break;
                case 3: r.layout = DST_HWC; r.dt = RASTER_F32; r.scaled = 1; break;
                default:
                    r.layout = (dst_layout_t)((wi + oi) % 3);
                    r.dt = others[(wi * 4 + oi) % 8];
                    r.scaled = (wi + oi) % 2;
                    break;
                }
                tiff_req_compare(p.native, p.gdal, nb, fx->name, &r);
                if (mode == 0)
                    oracle_compare(&p, &r);
            }
    pair_close(&p);
}
END_TEST

/* Random windows (inside or, sometimes, reaching outside), random band
 * lists with repeats, every dtype, every layout, with and without scaling. */
START_TEST(random_reads_match_gdal)
{
    const fixture_t *fx = &fixtures[_i];
    if (!fx->native_expected || fx->malformed)
        return;
    pair_t p;
    pair_open(fx, &p);
    uint64_t rng = 0x5eed0000u + (uint64_t)_i;
    const int nb = p.info.band_count;
    const int64_t W = p.info.width, H = p.info.height;
    const int64_t bw = p.info.block_width, bh = p.info.block_height;
    const int n = 48 / tiff_matrix_scale() + 1;
    for (int it = 0; it < n; it++) {
        tiff_req_t r;
        memset(&r, 0, sizeof r);
        r.boundless = tiff_rand(&rng) % 8 == 0;
        const int64_t maxw = 2 * bw < W ? 2 * bw : W, maxh = 2 * bh < H ? 2 * bh : H;
        r.win.width = tiff_rand_range(&rng, 1, maxw);
        r.win.height = tiff_rand_range(&rng, 1, maxh);
        if (r.boundless) {
            r.win.col_off = tiff_rand_range(&rng, -r.win.width, W);
            r.win.row_off = tiff_rand_range(&rng, -r.win.height, H);
        } else {
            r.win.col_off = tiff_rand_range(&rng, 0, W - r.win.width);
            r.win.row_off = tiff_rand_range(&rng, 0, H - r.win.height);
        }
        if (tiff_rand(&rng) % 4 != 0) {
            r.nbands = (int)tiff_rand_range(&rng, 1, 6);
            for (int k = 0; k < r.nbands; k++)
                r.bands[k] = (int)tiff_rand_range(&rng, 1, nb);
        }
        r.dt = tiff_rand(&rng) % 2 ? p.info.dtype : (raster_dtype_t)(tiff_rand(&rng) % RASTER_DTYPE_COUNT);
        r.layout = (dst_layout_t)(tiff_rand(&rng) % 3);
        r.scaled = tiff_rand(&rng) % 3 == 0;
        tiff_req_compare(p.native, p.gdal, nb, fx->name, &r);
    }
    pair_close(&p);
}
END_TEST

/* Everything the native reader should not serve goes to GDAL and still reads. */
START_TEST(non_native_fixtures_use_gdal)
{
    const fixture_t *fx = &fixtures[_i];
    if (fx->native_expected || fx->malformed)
        return;
    raster_dataset_t *ds = NULL;
    ck_assert_msg(raster_open(fixture_path(fx->name), &ds) == RASTER_OK, "%s: %s", fx->name,
                  raster_last_error());
    raster_info_t in;
    raster_dataset_info(ds, &in);
    ck_assert_msg(in.reader == RASTER_READER_GDAL, "%s: expected GDAL, got the native reader", fx->name);
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = RASTER_READER_NATIVE_TIFF;
    raster_dataset_t *nat = NULL;
    ck_assert_int_eq(raster_open_ex(fixture_path(fx->name), &oo, &nat), RASTER_E_UNSUPPORTED);
    raster_close(ds);
}
END_TEST

/* The metadata libtiff knows is right for every TIFF, whichever reader. */
START_TEST(tiff_metadata_is_corrected)
{
    const fixture_t *fx = &fixtures[_i];
    if (fx->malformed || strstr(fx->name, ".tif") == NULL)
        return;
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = RASTER_READER_GDAL;
    raster_dataset_t *ds = NULL;
    ck_assert_int_eq(raster_open_ex(fixture_path(fx->name), &oo, &ds), RASTER_OK);
    raster_info_t in;
    raster_dataset_info(ds, &in);
    const int tiled = strstr(fx->name, "_tile") != NULL;
    ck_assert_msg(in.tiled == tiled, "%s: tiled %d", fx->name, in.tiled);
    int pred = 1;
    const char *s = strstr(fx->name, "_pred");
    if (s != NULL)
        pred = s[5] - '0';
    ck_assert_msg(in.predictor == pred, "%s: predictor %d, want %d", fx->name, in.predictor, pred);
    raster_close(ds);
}
END_TEST

/* Sparse files (blocks never written: offset and byte count 0) read as the
 * band's nodata, or 0, exactly as GDAL fills them, for every dtype, both
 * interleaves, with and without compression. */
START_TEST(sparse_blocks_fill_like_gdal)
{
    typedef struct { GDALDataType gt; int signed_byte, has_nodata; double nodata; const char *comp, *il; } case_t;
    const case_t cases[] = {
        {GDT_Byte, 0, 1, 7, "DEFLATE", "PIXEL"},   {GDT_Byte, 1, 1, -1, "NONE", "PIXEL"},
        {GDT_Byte, 1, 1, 5, "ZSTD", "BAND"},       {GDT_Int16, 0, 1, -5, "LZW", "BAND"},
        {GDT_UInt16, 0, 0, 0, "NONE", "PIXEL"},    {GDT_Float32, 0, 1, NAN, "DEFLATE", "PIXEL"},
        {GDT_Float64, 0, 1, -1e300, "ZSTD", "BAND"}, {GDT_UInt32, 0, 1, 4e9, "PACKBITS", "PIXEL"},
        {GDT_Int32, 0, 1, -7.6, "NONE", "BAND"},
    };
    GDALAllRegister();
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const case_t *c = &cases[ci];
        char path[256];
        snprintf(path, sizeof path, "/tmp/check_tiff_sparse_%d_%zu.tif", (int)getpid(), ci);
        char **co = NULL;
        co = CSLSetNameValue(co, "TILED", "YES");
        co = CSLSetNameValue(co, "BLOCKXSIZE", "64");
        co = CSLSetNameValue(co, "BLOCKYSIZE", "48");
        co = CSLSetNameValue(co, "SPARSE_OK", "TRUE");
        co = CSLSetNameValue(co, "COMPRESS", c->comp);
        co = CSLSetNameValue(co, "INTERLEAVE", c->il);
        if (c->signed_byte)
            co = CSLSetNameValue(co, "PIXELTYPE", "SIGNEDBYTE");
        GDALDatasetH h = GDALCreate(GDALGetDriverByName("GTiff"), path, 300, 200, 2, c->gt, co);
        CSLDestroy(co);
        ck_assert_ptr_nonnull(h);
        double buf[100 * 70];
        for (int i = 0; i < 100 * 70; i++)
            buf[i] = 3 + (i % 97) * 1.5;
        for (int b = 1; b <= 2; b++) {
            if (c->has_nodata)
                GDALSetRasterNoDataValue(GDALGetRasterBand(h, b), c->nodata);
            /* Only the blocks under this rectangle are ever written. */
            ck_assert_int_eq(GDALRasterIO(GDALGetRasterBand(h, b), GF_Write, 70 + 30 * b, 50, 100, 70, buf, 100,
                                          70, GDT_Float64, 0, 0), CE_None);
        }
        GDALClose(h);

        pair_t p;
        p.path = path;
        raster_open_options_t oo;
        raster_open_options_init(&oo);
        ck_assert_int_eq(raster_open_ex(path, &oo, &p.native), RASTER_OK);
        oo.reader = RASTER_READER_GDAL;
        ck_assert_int_eq(raster_open_ex(path, &oo, &p.gdal), RASTER_OK);
        raster_dataset_info(p.native, &p.info);
        ck_assert_msg(p.info.reader == RASTER_READER_NATIVE_TIFF, "%s: not native", path);
        tiff_req_t r;
        memset(&r, 0, sizeof r);
        r.dt = p.info.dtype;
        const raster_window_t wins[] = {{0, 0, 300, 200}, {60, 40, 100, 100}, {250, 150, 50, 50}};
        for (int wi = 0; wi < 3; wi++) {
            r.win = wins[wi];
            r.dt = p.info.dtype;
            r.scaled = 0;
            r.layout = DST_HWC;
            tiff_req_compare(p.native, p.gdal, 2, path, &r);
            r.dt = RASTER_F64;
            r.scaled = 1;
            r.layout = DST_CHW;
            tiff_req_compare(p.native, p.gdal, 2, path, &r);
        }
        pair_close(&p);
        unlink(path);
    }
}
END_TEST

/* Segments stored in reverse order (last tile first in the file): the plan
 * sorts by offset before it coalesces, and results must not care. */
START_TEST(reversed_segment_order_matches_gdal)
{
    TIFFSetWarningHandler(NULL);
    for (int tiled = 0; tiled <= 1; tiled++) {
        char path[256];
        snprintf(path, sizeof path, "/tmp/check_tiff_reversed_%d_%d.tif", (int)getpid(), tiled);
        TIFF *t = TIFFOpen(path, "w");
        ck_assert_ptr_nonnull(t);
        const uint32_t W = 600, H = 400;
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, W);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, H);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 16);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        const uint16_t extra[2] = {EXTRASAMPLE_UNSPECIFIED, EXTRASAMPLE_UNSPECIFIED};
        TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 2, extra);
        TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
        TIFFSetField(t, TIFFTAG_COMPRESSION, tiled ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_LZW);
        TIFFSetField(t, TIFFTAG_PREDICTOR, 2);
        uint32_t sw = W, sh = 9;
        if (tiled) {
            sw = sh = 64;
            TIFFSetField(t, TIFFTAG_TILEWIDTH, sw);
            TIFFSetField(t, TIFFTAG_TILELENGTH, sh);
        } else {
            TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, sh);
        }
        const uint32_t n = tiled ? TIFFNumberOfTiles(t) : TIFFNumberOfStrips(t);
        const uint32_t across = tiled ? (W + sw - 1) / sw : 1;
        uint16_t *seg = malloc((size_t)sw * sh * 3 * 2);
        for (uint32_t k = n; k-- > 0;) {
            const uint32_t gx = (k % across) * sw, gy = (k / across) * sh;
            for (uint32_t y = 0; y < sh; y++)
                for (uint32_t x = 0; x < sw; x++)
                    for (int b = 0; b < 3; b++)
                        seg[((size_t)y * sw + x) * 3 + (size_t)b] =
                            (uint16_t)((gx + x) * 7 + (gy + y) * 13 + (uint32_t)b * 1000 + ((x * y) % 17));
            const uint32_t rows = tiled || gy + sh <= H ? sh : H - gy;
            if (tiled)
                ck_assert(TIFFWriteEncodedTile(t, k, seg, (tmsize_t)sw * sh * 6) > 0);
            else
                ck_assert(TIFFWriteEncodedStrip(t, k, seg, (tmsize_t)sw * rows * 6) > 0);
        }
        free(seg);
        TIFFClose(t);

        pair_t p;
        p.path = path;
        raster_open_options_t oo;
        raster_open_options_init(&oo);
        ck_assert_int_eq(raster_open_ex(path, &oo, &p.native), RASTER_OK);
        oo.reader = RASTER_READER_GDAL;
        ck_assert_int_eq(raster_open_ex(path, &oo, &p.gdal), RASTER_OK);
        raster_dataset_info(p.native, &p.info);
        ck_assert_int_eq(p.info.reader, RASTER_READER_NATIVE_TIFF);
        const raster_window_t wins[] = {{0, 0, 600, 400}, {33, 17, 300, 250}, {590, 390, 10, 10}};
        for (int threads = 1; threads <= 2; threads++) {
            raster_set_threads(threads);
            for (int wi = 0; wi < 3; wi++) {
                tiff_req_t r;
                memset(&r, 0, sizeof r);
                r.win = wins[wi];
                r.dt = RASTER_U16;
                tiff_req_compare(p.native, p.gdal, 3, path, &r);
            }
        }
        raster_set_threads(0);
        pair_close(&p);
        unlink(path);
    }
}
END_TEST

START_TEST(fixtures_present)
{
    int native = 0;
    for (int i = 0; i < fixture_count; i++)
        native += fixtures[i].native_expected && !fixtures[i].malformed;
    ck_assert_msg(native > 0, "no native fixtures: run `make fixtures`");
}
END_TEST

static Suite *
tiff_equiv_suite(void)
{
    fixture_count = fixtures_load(&fixtures);
    Suite *s = suite_create("tiff_equiv");
    TCase *tc = tcase_create("matrix");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, fixtures_present);
    tcase_add_loop_test(tc, matrix_matches_gdal, 0, fixture_count);
    suite_add_tcase(s, tc);
    tc = tcase_create("property");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, random_reads_match_gdal, 0, fixture_count);
    suite_add_tcase(s, tc);
    tc = tcase_create("choice");
    tcase_add_loop_test(tc, non_native_fixtures_use_gdal, 0, fixture_count);
    tcase_add_loop_test(tc, tiff_metadata_is_corrected, 0, fixture_count);
    tcase_add_test(tc, sparse_blocks_fill_like_gdal);
    tcase_add_test(tc, reversed_segment_order_matches_gdal);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(tiff_equiv_suite)
