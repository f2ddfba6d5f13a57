/*
 * demo.c - print a raster's metadata and read its first 256x256 window as
 * HWC uint16 through raster_read_into(): the C quick start in runnable form.
 */
#include <rasterloader.h>

#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.tif\n", argv[0]);
        return 2;
    }
    raster_dataset_t *ds = NULL;
    if (raster_open(argv[1], &ds) != RASTER_OK) {
        fprintf(stderr, "open failed: %s\n", raster_last_error());
        return 1;
    }
    raster_info_t in;
    raster_dataset_info(ds, &in);
    printf("%s: %lldx%lld, %d band(s) of %s, blocks %lldx%lld %s, %s predictor %d, %s interleave, "
           "%d overview(s), reader %s\n",
           argv[1], (long long)in.width, (long long)in.height, in.band_count,
           raster_dtype_name(in.dtype), (long long)in.block_width, (long long)in.block_height,
           in.tiled ? "tiles" : "strips", in.compression, in.predictor, in.interleave,
           in.overview_count, in.reader == RASTER_READER_NATIVE_TIFF ? "native" : "gdal");
    const int64_t h = in.height < 256 ? in.height : 256, w = in.width < 256 ? in.width : 256;
    uint16_t *buf = malloc(raster_view_nbytes(RASTER_U16, h, w, in.band_count));
    const raster_view_t dst = raster_view_hwc(buf, RASTER_U16, h, w, in.band_count);
    const raster_window_t win = {0, 0, w, h};
    if (raster_read_into(ds, win, NULL, &dst) != RASTER_OK) {
        fprintf(stderr, "read failed: %s\n", raster_last_error());
        return 1;
    }
    double sum = 0;
    for (int64_t i = 0; i < h * w * in.band_count; i++)
        sum += buf[i];
    printf("window %lldx%lld at (0,0): first pixel", (long long)h, (long long)w);
    for (int k = 0; k < in.band_count; k++)
        printf(" %u", buf[k]);
    printf(", mean %.2f\n", sum / (double)(h * w * in.band_count));
    free(buf);
    raster_close(ds);
    return 0;
}
