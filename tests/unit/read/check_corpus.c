/*
 * check_corpus.c - every input a fuzzer ever crashed on, replayed.
 *
 * tests/corpus/<harness>/ holds one file per bug the libFuzzer harnesses
 * found (tests/fuzz/), kept after the fix.  Each is run through the very
 * harness body that found it (tests/fuzz/fuzz_targets.h), and through the
 * public API with both readers: file inputs are opened from a memfd with the
 * default and the GDAL reader, and the two readers must agree on them (the
 * differential harness); codec inputs are wrapped in a one-strip TIFF (the
 * header's geometry, codec, predictor and byte order) and read whole and in
 * part.  Each must end in a status, never a crash; the ASan build of
 * this suite is what `make test` relies on.
 */
#include "test_util.h"

#include "../../fuzz/fuzz_targets.h"

#include <dirent.h>
#include <libgen.h>
#include <tiffio.h>

typedef struct corpus_file {
    char harness[32];
    char path[1024];
} corpus_file_t;

static corpus_file_t *files;
static int file_count;

static const char *
corpus_dir(void)
{
    static char dir[1024];
    const char *env = getenv("RASTER_CORPUS");
    if (env != NULL)
        return env;
    char src[1024];
    snprintf(src, sizeof src, "%s", __FILE__);      /* .../tests/unit/read/check_corpus.c */
    snprintf(dir, sizeof dir, "%s/../../corpus", dirname(src));
    return dir;
}

static void
corpus_load(void)
{
    static const char *const harnesses[] = {"fuzz_tiff_native", "fuzz_tiff_gdal", "fuzz_tiff_diff",
                                            "fuzz_codec"};
    for (size_t h = 0; h < sizeof harnesses / sizeof harnesses[0]; h++) {
        char dpath[1024];
        snprintf(dpath, sizeof dpath, "%s/%s", corpus_dir(), harnesses[h]);
        DIR *d = opendir(dpath);
        if (d == NULL)
            continue;
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
                continue;
            /* Outside a test: no ck_assert (Check cannot report yet). */
            files = realloc(files, (size_t)(file_count + 1) * sizeof *files);
            if (files == NULL)
                abort();
            corpus_file_t *f = &files[file_count++];
            snprintf(f->harness, sizeof f->harness, "%s", harnesses[h]);
            snprintf(f->path, sizeof f->path, "%s/%s", dpath, e->d_name);
        }
        closedir(d);
    }
}

static uint8_t *
slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* ------------------------------ codec inputs as TIFFs ------------------ */

static const uint16_t tiff_compression[] = {COMPRESSION_NONE, COMPRESSION_ADOBE_DEFLATE,
                                            COMPRESSION_ZSTD, COMPRESSION_LZW,
                                            COMPRESSION_PACKBITS};

/* libtiff messages of this one handle only: the process-wide handlers are
 * GDAL's, which reports through them. */
static int
quiet_handler(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1;
}

/* One strip of ncols x nrows holding the raw segment; 0 if libtiff will not
 * write the geometry. */
static int
codec_tiff_write(const fuzz_codec_case_t *c, const uint8_t *raw, size_t n, const char *path)
{
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (opts == NULL)
        return 0;
    TIFFOpenOptionsSetErrorHandlerExtR(opts, quiet_handler, NULL);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, quiet_handler, NULL);
    TIFF *t = TIFFOpenExt(path, c->swap ? "wb" : "wl", opts);
    TIFFOpenOptionsFree(opts);
    if (t == NULL)
        return 0;
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)c->ncols);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)c->nrows);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)c->nrows);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)c->nsamp);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)(8 * c->sample_nbytes));
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT,
                 (uint16_t)(c->predictor == 3 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT));
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, (uint16_t)PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, (uint16_t)PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_COMPRESSION, tiff_compression[c->codec]);
    if (c->codec != RASTER__CODEC_NONE && c->codec != RASTER__CODEC_PACKBITS)
        TIFFSetField(t, TIFFTAG_PREDICTOR, (uint16_t)c->predictor);
    const int ok = TIFFWriteRawStrip(t, 0, (void *)raw, (tmsize_t)n) == (tmsize_t)n;
    TIFFClose(t);
    return ok;
}

static void
read_whole_and_part(const char *path, int reader)
{
    raster_open_options_t oo;
    raster_open_options_init(&oo);
    oo.reader = reader;
    raster_dataset_t *ds = NULL;
    const raster_status_t st = raster_open_ex(path, &oo, &ds);
    fuzz_check_status("open", st);
    if (st != RASTER_OK)
        return;
    raster_info_t in;
    ck_assert_int_eq(raster_dataset_info(ds, &in), RASTER_OK);
    const raster_window_t wins[] = {{0, 0, in.width, in.height},
                                    {in.width / 3, 0, in.width - in.width / 3, (in.height + 1) / 2}};
    for (int k = 0; k < 2; k++) {
        const size_t nbytes = raster_view_nbytes(in.dtype, wins[k].height, wins[k].width, in.band_count);
        guarded_t g = guarded_alloc(nbytes);
        raster_view_t v = raster_view_hwc(g.data, in.dtype, wins[k].height, wins[k].width,
                                          in.band_count);
        fuzz_check_status("read", raster_read_into(ds, wins[k], NULL, &v));
        ck_assert(guarded_intact(&g));
        guarded_free(&g);
    }
    raster_close(ds);
}

static void
replay_codec_as_tiff(const uint8_t *data, size_t size)
{
    fuzz_codec_case_t c;
    if (size < FUZZ_CODEC_HEADER || !fuzz_codec_parse(data, &c))
        return;
    char path[] = "/tmp/check_corpus.XXXXXX";
    const int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    if (codec_tiff_write(&c, data + FUZZ_CODEC_HEADER, size - FUZZ_CODEC_HEADER, path)) {
        read_whole_and_part(path, -1);
        read_whole_and_part(path, RASTER_READER_GDAL);
    }
    unlink(path);
}

/* ------------------------------ tests ---------------------------------- */

START_TEST(corpus_file_replays_cleanly)
{
    const corpus_file_t *f = &files[_i];
    size_t size = 0;
    uint8_t *data = slurp(f->path, &size);
    if (strcmp(f->harness, "fuzz_codec") == 0) {
        fuzz_codec_one(data, size);
        replay_codec_as_tiff(data, size);
    } else {
        /* Found with one reader, replayed with both, and compared. */
        fuzz_tiff_one(data, size, -1);
        fuzz_tiff_one(data, size, RASTER_READER_GDAL);
        fuzz_tiff_diff_one(data, size);
    }
    free(data);
}
END_TEST

/* The corpus directory exists and is found (an empty run would prove nothing). */
START_TEST(corpus_is_found)
{
    ck_assert_msg(file_count > 0, "no regression files under %s", corpus_dir());
}
END_TEST

static Suite *
corpus_suite(void)
{
    fuzz_init();
    raster_set_threads(2);
    corpus_load();
    Suite *s = suite_create("corpus");
    TCase *tc = tcase_create("replay");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, corpus_is_found);
    tcase_add_loop_test(tc, corpus_file_replays_cleanly, 0, file_count);
    suite_add_tcase(s, tc);
    return s;
}

RASTER_SUITE_MAIN(corpus_suite)
