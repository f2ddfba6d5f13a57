/*
 * api.h - the api folder of lib/ (lib/README.md): compositions of reads and
 * exports on top of datasets and pools: batches (batch.c), mosaics
 * (mosaic.c), DLPack exports (dlpack.c), GDAL metadata (metadata.c) and
 * warped VRTs (warped_vrt.c).  They see datasets only through read.h (the
 * dataset layer), never a reader.  Nothing in lib/ calls them.  Never
 * installed.
 */
#ifndef RASTERLOADER_API_H
#define RASTERLOADER_API_H

#include "read/read.h"
#include "runtime/runtime.h"

#endif /* RASTERLOADER_API_H */
