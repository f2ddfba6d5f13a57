/*
 * tiff_read.c - the native read path: plan -> fetch -> decode -> place.
 *
 * Plan: list the segments (tiles, or strips; per plane for band-interleaved
 * files, only the planes of requested bands) that the window touches, and
 * for each the rows and columns it needs.  Decode work is bounded by the
 * last row a window uses: a segment is decoded from its start up to that
 * row and no further (see tiff_codec.c), which for random windows skips a
 * third of all decoding.
 *
 * Fetch: segments adjacent in the file (up to a small gap, e.g. COG
 * leaders and trailers) are read with one call of the file's byte source
 * (source.h; one pread for a local file) into per-thread scratch, on
 * the decode threads; a source whose calls are requests fetches all of a
 * read's ranges at once first (prefetch()).
 * Uncompressed segments are read only for the rows the window needs.
 *
 * Each of the four steps is one function that every segment goes through in
 * order (plan_build/cache_lookup/plan_group once per read, then per segment
 * group_fetch, segment_decode, segment_place: see "a segment's path").
 *
 * Decode and place: a segment that maps exactly onto the destination (same
 * dtype, no scale, all of its samples in order, destination rows exactly
 * one segment row apart, starting at the segment's first column) is decoded
 * straight into the destination, and the predictor undone there: no copy
 * at all.  Otherwise it is decoded into per-thread scratch and place.c
 * moves the window's part into the destination with band selection, dtype
 * conversion and scale/offset fused in one pass.  Missing (sparse)
 * segments are filled with the band's nodata or 0, as GDAL does.
 *
 * Parallel: groups of segments are the work items of raster__parallel_for;
 * each item reads and decodes its own segments with its own thread's
 * scratch and decoders, and items write disjoint parts of the destination,
 * so the result does not depend on the thread count.  Reads with little
 * decode work run on the calling thread only.
 *
 * Every segment is checked against the file size before it is read; a
 * segment that runs past the end of the file, or a stream that does not
 * decode, fails the read with RASTER_E_CORRUPT naming the file, the segment
 * and the window.  Nothing is written outside the destination view.
 */
#include "tiff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Below this much decoded data a read stays on the calling thread: waking
 * a worker costs more than it saves. */
#define PARALLEL_MIN_NBYTES ((size_t)768 * 1024)
/* Segments further apart than this in the file are read separately. */
#define COALESCE_MAX_GAP 4096
/* A coalesced read never exceeds this many bytes (unless one segment does). */
#define COALESCE_MAX_NBYTES ((uint64_t)4 << 20)
/* Rows are finished (predictor, placement) this many bytes at a time, so
 * they are still in L2 between the passes. */
#define CHUNK_NBYTES ((size_t)128 * 1024)

typedef struct seg_job {
    int64_t seg;                /* index into the offset tables */
    int64_t sx, sy;             /* position in the segment grid */
    int plane;                  /* 0 unless band-interleaved */
    int64_t x0, x1, y0, y1;     /* the window's part, segment coordinates */
    int64_t dst_r, dst_c;       /* where that part starts in rq->dst */
    int64_t rows;               /* rows the segment holds (short last strip) */
    size_t needed;              /* decoded bytes the window uses: rows [0, y1) */
    raster__decode_ref_t ref;   /* how libtiff decodes it under GDAL, which the
                                   codec follows to judge a damaged stream: the
                                   rows GDAL asks for (gdal_asked_rows), in one
                                   shot when they are the whole segment */
    uint64_t fetch_off, fetch_n;/* raw bytes to read (0: sparse) */
    int direct;                 /* decode straight into the destination */
    const raster__tile_entry_t *hit;  /* decoded rows from the tile cache:
                                     nothing to read; held until the read ends */
} seg_job_t;

typedef struct group {
    int64_t first, count;       /* into plan.order */
    uint64_t off, nbytes;       /* one pread */
    uint64_t work;              /* decoded bytes, for ordering */
    uint8_t *fetched;           /* batching sources: the bytes, fetched up front */
} group_t;

typedef struct plan {
    raster_dataset_t *ds;
    struct raster__tiff *t;
    const raster__request_t *rq;
    seg_job_t *segs;
    int64_t nsegs;
    int64_t *order;             /* segs sorted by file offset */
    group_t *groups;
    int64_t ngroups;
    int *chan_map;              /* chunky: dst channel k reads sample chan_map[k] */
    int identity;               /* chunky: chan_map is 0..spp-1 */
    uint64_t raw_cap;           /* scratch size asked for every group */
    int prefetch;               /* groups' bytes come from prefetch() (src->batch_reads) */
    int cache;                  /* decoded segments go through the tile cache */
} plan_t;

/* ------------------------------ messages ------------------------------- */

static int
seg_name(const plan_t *p, const seg_job_t *s, char *buf, size_t n)
{
    const struct raster__tiff *t = p->t;
    if (t->planar)
        return snprintf(buf, n, "%s %lld (row %lld, col %lld, band %d)", t->tiled ? "tile" : "strip",
                        (long long)s->seg, (long long)s->sy, (long long)s->sx, s->plane + 1);
    if (t->tiled)
        return snprintf(buf, n, "tile %lld (row %lld, col %lld)", (long long)s->seg, (long long)s->sy,
                        (long long)s->sx);
    return snprintf(buf, n, "strip %lld", (long long)s->seg);
}

/* "tile 5 (row 1, col 2) of window (col 10, row 20, 256x256)" */
static int
seg_what(const plan_t *p, const seg_job_t *s, char *buf, size_t n)
{
    const int k = seg_name(p, s, buf, n);
    if (k < 0 || (size_t)k >= n)
        return k;
    const raster_window_t w = p->rq->win;
    return k + snprintf(buf + k, n - (size_t)k, " of window (col %lld, row %lld, %lldx%lld)",
                        (long long)w.col_off, (long long)w.row_off, (long long)w.width, (long long)w.height);
}

static raster_status_t
seg_fail(const plan_t *p, const seg_job_t *s, raster_status_t st, const char *why)
{
    char what[256];
    seg_what(p, s, what, sizeof what);
    return raster__fail(st, "%s: %s: %s", p->t->path, what, why);
}

/* A decode that did not give its bytes: no memory for a decoder is
 * RASTER_E_NOMEM, anything else a damaged segment. */
static raster_status_t
decode_fail(const plan_t *p, const seg_job_t *s, raster__decode_status_t st)
{
    return seg_fail(p, s, st == RASTER__DECODE_NOMEM ? RASTER_E_NOMEM : RASTER_E_CORRUPT,
                    raster__decode_reason(p->t->codec, st));
}

/* ------------------------------ plan ----------------------------------- */

/* How many of a segment's rows GDAL asks libtiff to decode: all of them but
 * in the last row of blocks of a raster 'height' rows high in blocks of
 * 'block_rows', where GDAL asks block_rows - ((block_row + 1) * block_rows)
 * % height (its IReadBlock; the rows inside the image unless the padding
 * is as tall as the image).  libtiff then clamps the request to the
 * segment. */
static int64_t
gdal_asked_rows(int64_t block_row, int64_t block_rows, int64_t height)
{
    if (block_row * block_rows <= height - block_rows)
        return block_rows;
    return block_rows - (int64_t)(((uint64_t)(block_row + 1) * (uint64_t)block_rows) % (uint64_t)height);
}

static int
band_wanted(const raster__request_t *rq, int plane)
{
    for (int k = 0; k < rq->band_count; k++)
        if (rq->bands[k] - 1 == plane)
            return 1;
    return 0;
}

/* Can segments of this read be decoded straight into dst (before looking
 * at each segment's position)? */
static int
direct_possible(const plan_t *p)
{
    const struct raster__tiff *t = p->t;
    const raster__request_t *rq = p->rq;
    const int64_t size = t->sample_nbytes;
    if (rq->dst.dtype != t->dtype || rq->scale != NULL || rq->offset != NULL)
        return 0;
    if (rq->dst.col_stride != size * t->seg_samples)
        return 0;
    if (t->seg_samples == 1)
        return rq->band_count == 1;
    return p->identity && rq->dst.chan_stride == size;
}

/* ------------------------------ sorting -------------------------------- */

/* glibc's qsort allocates a merge buffer for arrays over 1 KiB, which a
 * read must not do; this heapsort works in place.  Plans are usually sorted
 * already (files store tiles in raster order), so check that first. */
typedef int (*cmp_fn)(const void *a, const void *b, const void *ctx);

static void
swap_elems(uint8_t *a, uint8_t *b, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        const uint8_t t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

static void
sift_down(uint8_t *base, size_t root, size_t n, size_t size, cmp_fn cmp, const void *ctx)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && cmp(base + child * size, base + (child + 1) * size, ctx) < 0)
            child++;
        if (cmp(base + root * size, base + child * size, ctx) >= 0)
            return;
        swap_elems(base + root * size, base + child * size, size);
        root = child;
    }
}

static void
sort_in_place(void *v, size_t n, size_t size, cmp_fn cmp, const void *ctx)
{
    uint8_t *base = v;
    size_t i = 1;
    while (i < n && cmp(base + (i - 1) * size, base + i * size, ctx) <= 0)
        i++;
    if (i >= n)
        return;
    for (size_t k = n / 2; k-- > 0;)
        sift_down(base, k, n, size, cmp, ctx);
    for (size_t end = n - 1; end > 0; end--) {
        swap_elems(base, base + end * size, size);
        sift_down(base, 0, end, size, cmp, ctx);
    }
}

static int
cmp_fetch(const void *a, const void *b, const void *ctx)
{
    const seg_job_t *segs = ctx;
    const uint64_t x = segs[*(const int64_t *)a].fetch_off, y = segs[*(const int64_t *)b].fetch_off;
    return x < y ? -1 : x > y;
}

static raster_status_t
plan_build(plan_t *p)
{
    struct raster__tiff *t = p->t;
    const raster__request_t *rq = p->rq;
    const raster_window_t w = rq->win;
    const int64_t sx0 = w.col_off / t->seg_w, sx1 = (w.col_off + w.width - 1) / t->seg_w;
    const int64_t sy0 = w.row_off / t->seg_h, sy1 = (w.row_off + w.height - 1) / t->seg_h;
    int nplanes = 1;
    if (t->planar) {
        nplanes = 0;
        for (int pl = 0; pl < t->spp; pl++)
            nplanes += band_wanted(rq, pl);
    }
    const int64_t n = (sx1 - sx0 + 1) * (sy1 - sy0 + 1) * nplanes;
    const size_t need = (size_t)n * (sizeof(seg_job_t) + sizeof(int64_t) + sizeof(group_t)) +
                        (size_t)rq->band_count * sizeof(int) + 64;
    uint8_t *mem = raster__scratch(RASTER_SCRATCH_TIFF_PLAN, need);
    if (mem == NULL)
        return RASTER_E_NOMEM;
    p->segs = (seg_job_t *)mem;
    p->groups = (group_t *)(p->segs + n);
    p->order = (int64_t *)(p->groups + n);
    p->chan_map = (int *)(p->order + n);
    p->identity = !t->planar && rq->band_count == t->spp;
    for (int k = 0; k < rq->band_count; k++) {
        p->chan_map[k] = t->planar ? 0 : rq->bands[k] - 1;
        p->identity &= p->chan_map[k] == k;
    }
    const int direct_ok = direct_possible(p);
    const size_t row = t->seg_row_nbytes;

    int64_t i = 0;
    for (int pl = 0; pl < (t->planar ? t->spp : 1); pl++) {
        if (t->planar && !band_wanted(rq, pl))
            continue;
        for (int64_t sy = sy0; sy <= sy1; sy++)
            for (int64_t sx = sx0; sx <= sx1; sx++) {
                seg_job_t *s = &p->segs[i];
                s->seg = pl * t->segs_per_plane + sy * t->segs_across + sx;
                s->sx = sx;
                s->sy = sy;
                s->plane = pl;
                const int64_t gx = sx * t->seg_w, gy = sy * t->seg_h;
                s->x0 = (w.col_off > gx ? w.col_off : gx) - gx;
                s->x1 = (w.col_off + w.width < gx + t->seg_w ? w.col_off + w.width : gx + t->seg_w) - gx;
                s->y0 = (w.row_off > gy ? w.row_off : gy) - gy;
                s->y1 = (w.row_off + w.height < gy + t->seg_h ? w.row_off + w.height : gy + t->seg_h) - gy;
                s->dst_r = gy + s->y0 - w.row_off;
                s->dst_c = gx + s->x0 - w.col_off;
                s->rows = t->tiled || t->height - gy >= t->seg_h ? t->seg_h : t->height - gy;
                s->hit = NULL;
                /* What GDAL has libtiff decode, and so the verdict on a
                 * damaged stream: a stream damaged within those bytes fails
                 * for GDAL and here (damage past 'needed' may go unseen). */
                const int64_t asked_rows = gdal_asked_rows(sy, t->seg_h, t->height);
                const uint64_t asked = (uint64_t)(asked_rows < s->rows ? asked_rows : s->rows) * row;
                const uint64_t full = (uint64_t)s->rows * row;  /* the segment, as libtiff counts it */
                s->needed = (size_t)s->y1 * row;
                s->ref.out_nbytes = (size_t)asked;
                s->ref.one_shot = asked == full;
                const uint64_t off = t->offsets[s->seg], count = t->counts[s->seg];
                if (count == 0) {
                    s->fetch_off = s->fetch_n = 0;      /* sparse: never written */
                    s->direct = 0;
                    p->order[i] = i;
                    i++;
                    continue;
                }
                /* The rows GDAL asks libtiff for (gdal_asked_rows): libtiff
                 * reads that many uncompressed bytes from the offset
                 * (whatever the byte count says), and 'count' bytes of a
                 * compressed segment; either must lie inside the file. */
                const uint64_t span = t->codec == RASTER__CODEC_NONE ? asked : count;
                if (off > t->file_nbytes || span > t->file_nbytes - off) {
                    char why[160];
                    snprintf(why, sizeof why,
                             "its %llu bytes at offset %llu run past the end of the file (%llu bytes)",
                             (unsigned long long)span, (unsigned long long)off,
                             (unsigned long long)t->file_nbytes);
                    return seg_fail(p, s, RASTER_E_CORRUPT, why);
                }
                /* A bottom-edge tile, of which GDAL asks for fewer rows than
                 * the tile holds: libtiff decodes them from 'count' bytes
                 * read at the offset, and refuses a count short of those
                 * rows (found by the differential fuzzer). */
                if (t->codec == RASTER__CODEC_NONE && t->tiled && asked < full &&
                    (count < asked || count > t->file_nbytes - off)) {
                    char why[200];
                    snprintf(why, sizeof why,
                             "its byte count %llu at offset %llu does not hold the %lld rows GDAL reads "
                             "(%llu bytes) within the file (%llu bytes)",
                             (unsigned long long)count, (unsigned long long)off,
                             (long long)(asked / row), (unsigned long long)asked,
                             (unsigned long long)t->file_nbytes);
                    return seg_fail(p, s, RASTER_E_CORRUPT, why);
                }
                if (t->codec == RASTER__CODEC_NONE) {
                    s->fetch_off = off + (uint64_t)s->y0 * row;
                    s->fetch_n = (uint64_t)(s->y1 - s->y0) * row;
                } else {
                    s->fetch_off = off;
                    s->fetch_n = count;
                }
                /* Uncompressed: whole segment rows go straight into dst rows
                 * (one preadv).  Partial rows do not: a vector with a
                 * discard span per row measured slower than one pread into
                 * scratch plus a copy.  Compressed: the decoder writes
                 * whole rows from row 0, so dst must be the segment. */
                if (t->codec == RASTER__CODEC_NONE)
                    s->direct = direct_ok && s->x0 == 0 && s->x1 == t->seg_w;
                else
                    s->direct = direct_ok && s->x0 == 0 && s->x1 == t->seg_w &&
                                rq->dst.row_stride == (int64_t)row && s->y0 == 0 &&
                                (t->codec != RASTER__CODEC_DEFLATE || s->needed == full);
                p->order[i] = i;
                i++;
            }
    }
    p->nsegs = i;
    return RASTER_OK;
}

static int
cmp_work(const void *a, const void *b, const void *ctx)
{
    (void)ctx;
    const uint64_t x = ((const group_t *)a)->work, y = ((const group_t *)b)->work;
    return x > y ? -1 : x < y;
}

/* Group segments into reads: sorted by offset, adjacent ones (up to a small
 * gap) share one pread.  When several threads will work, groups are kept
 * small (at least four per thread) and handed out largest first, so the
 * threads finish together. */
static void
plan_group(plan_t *p, int threads)
{
    sort_in_place(p->order, (size_t)p->nsegs, sizeof *p->order, cmp_fetch, p->segs);
    int64_t fetched = 0;
    for (int64_t i = 0; i < p->nsegs; i++)
        fetched += p->segs[i].fetch_n > 0 && p->segs[i].hit == NULL &&
                   !(p->segs[i].direct && p->t->codec == RASTER__CODEC_NONE);
    const int64_t per_group = threads > 1 ? (fetched + 4 * threads - 1) / (4 * threads) : p->nsegs;
    uint64_t raw_cap = p->t->max_count > COALESCE_MAX_NBYTES ? p->t->max_count : COALESCE_MAX_NBYTES;
    p->ngroups = 0;
    for (int64_t i = 0; i < p->nsegs; i++) {
        const seg_job_t *s = &p->segs[p->order[i]];
        /* Sparse segments and cache hits read nothing; uncompressed ones
         * that go straight into dst read their own rows
         * (decode_uncompressed_into_dst). */
        const int alone =
            s->fetch_n == 0 || s->hit != NULL || (s->direct && p->t->codec == RASTER__CODEC_NONE);
        const uint64_t work = (uint64_t)s->y1 * p->t->seg_row_nbytes;
        group_t *g = p->ngroups ? &p->groups[p->ngroups - 1] : NULL;
        if (!alone && g != NULL && g->nbytes > 0 && g->count < per_group &&
            s->fetch_off >= g->off + g->nbytes && s->fetch_off - (g->off + g->nbytes) <= COALESCE_MAX_GAP &&
            s->fetch_off + s->fetch_n - g->off <= COALESCE_MAX_NBYTES) {
            g->nbytes = s->fetch_off + s->fetch_n - g->off;
            g->count++;
            g->work += work;
            continue;
        }
        g = &p->groups[p->ngroups++];
        g->first = i;
        g->count = 1;
        g->off = alone ? 0 : s->fetch_off;
        g->nbytes = alone ? 0 : s->fetch_n;
        g->work = work;
        if (g->nbytes > raw_cap)
            raw_cap = g->nbytes;
    }
    p->raw_cap = raw_cap;
    if (threads > 1)
        sort_in_place(p->groups, (size_t)p->ngroups, sizeof *p->groups, cmp_work, NULL);
}

/* ------------------------------ decode and place ----------------------- */

/* Undo byte order and predictor on rows [y0, y1) of a decoded segment whose
 * row y starts at base + y * row. */
static raster_status_t
postprocess(const plan_t *p, const seg_job_t *s, uint8_t *base)
{
    const struct raster__tiff *t = p->t;
    const size_t row = t->seg_row_nbytes;
    const int ns = t->seg_samples, size = t->sample_nbytes;
    if (t->predictor == 3) {
        uint8_t *tmp = raster__scratch(RASTER_SCRATCH_TIFF_ROW, row);
        if (tmp == NULL)
            return RASTER_E_NOMEM;
        for (int64_t y = s->y0; y < s->y1; y++)
            raster__unpredict_fp(base + (size_t)y * row, tmp, t->seg_w, ns, size);
        return RASTER_OK;
    }
    if (t->predictor == 2) {
        for (int64_t y = s->y0; y < s->y1; y++) {
            uint8_t *r = base + (size_t)y * row;
            if (t->swap && size > 1)
                raster__byteswap(r, (size_t)(s->x1 * ns), size);
            raster__unpredict_h(r, s->x1, ns, size);
        }
        return RASTER_OK;
    }
    if (t->swap && size > 1)
        for (int64_t y = s->y0; y < s->y1; y++)
            raster__byteswap(base + (size_t)y * row + (size_t)(s->x0 * ns * size),
                             (size_t)((s->x1 - s->x0) * ns), size);
    return RASTER_OK;
}

/* Place rows [y0, y1), cols [x0, x1) of a segment into the destination:
 * as decoded (row y at base + y*row), or from a tile-cache entry of
 * 'entry_rows' rows held as planes (entries_planar()), or the band fill
 * values when base is NULL. */
static void
place_from(const plan_t *p, const seg_job_t *s, const uint8_t *base, int64_t entry_rows)
{
    const struct raster__tiff *t = p->t;
    const raster__request_t *rq = p->rq;
    const int64_t size = t->sample_nbytes;
    raster_view_t src;
    src.dtype = t->dtype;
    src.height = s->y1 - s->y0;
    src.width = s->x1 - s->x0;
    src.channels = t->seg_samples;
    if (base != NULL && entry_rows > 0) {
        src.row_stride = t->seg_w * size;
        src.col_stride = size;
        src.chan_stride = entry_rows * src.row_stride;
        src.data = (void *)(base + s->y0 * src.row_stride + s->x0 * size);
    } else if (base != NULL) {
        src.data = (void *)(base + (size_t)s->y0 * t->seg_row_nbytes + (size_t)(s->x0 * t->seg_samples * size));
        src.row_stride = (int64_t)t->seg_row_nbytes;
        src.col_stride = size * t->seg_samples;
        src.chan_stride = size;
    } else {
        /* A sparse segment: every pixel is the band's fill value. */
        src.data = t->fill_bands + (t->planar ? 8 * s->plane : 0);
        src.row_stride = 0;
        src.col_stride = 0;
        src.chan_stride = 8;
    }
    raster_view_t dst = raster__view_sub(&rq->dst, s->dst_r, s->dst_c, src.height, src.width);
    if (!t->planar) {
        const raster__place_opts_t po = {p->identity ? NULL : p->chan_map, rq->scale, rq->offset,
                                         rq->divide};
        raster__place(&src, &dst, &po);
        return;
    }
    /* One plane: every destination channel that asked for this band. */
    for (int k = 0; k < rq->band_count; k++) {
        if (rq->bands[k] - 1 != s->plane)
            continue;
        raster_view_t dk = dst;
        dk.data = (uint8_t *)dst.data + k * dst.chan_stride;
        dk.channels = 1;
        const raster__place_opts_t po = {NULL, rq->scale ? rq->scale + k : NULL,
                                         rq->offset ? rq->offset + k : NULL, rq->divide};
        raster__place(&src, &dk, &po);
    }
}

static void
place(const plan_t *p, const seg_job_t *s, const uint8_t *base)
{
    place_from(p, s, base, 0);
}

static uint8_t *
dst_at(const plan_t *p, const seg_job_t *s)
{
    const raster_view_t *d = &p->rq->dst;
    return (uint8_t *)d->data + s->dst_r * d->row_stride + s->dst_c * d->col_stride;
}

/* Rows [y0, y1) of a segment whose row y is at base + y * row: undo byte
 * order and predictor, then place, a band of rows at a time so that the
 * rows are still in L2 when place.c reads them. */
static raster_status_t
finish_rows(const plan_t *p, const seg_job_t *s, uint8_t *base)
{
    const size_t row = p->t->seg_row_nbytes;
    const int64_t band = row >= CHUNK_NBYTES ? 1 : (int64_t)(CHUNK_NBYTES / row);
    for (int64_t ya = s->y0; ya < s->y1; ya += band) {
        seg_job_t c = *s;
        c.y0 = ya;
        c.y1 = ya + band < s->y1 ? ya + band : s->y1;
        c.dst_r = s->dst_r + (ya - s->y0);
        RASTER_TRY(postprocess(p, &c, base));
        if (!s->direct)
            place(p, &c, base);
    }
    return RASTER_OK;
}

/* ------------------------------ tile cache ----------------------------- */

/* The layout of entries (README, "Decoded-tile cache"): a segment of one sample per
 * pixel (a band-interleaved file's plane, a mask) as decoded; a segment of
 * pixel-interleaved samples as one plane per sample, each of the entry's
 * rows (valid bytes / decoded row bytes) by the segment's width.  Reads
 * then touch only the bytes they return: read() CHW and a band subset copy
 * rows of planes, converted reads run the kernels on contiguous rows, and
 * read_hwc interleaves (one SSE2 pass for uint16 x 4).  The file's layout
 * would make every CHW hit a deinterleave and a one-band hit a strided
 * gather over all the bands. */
static int
entries_planar(const struct raster__tiff *t)
{
    return !t->planar && t->seg_samples > 1;
}

/* The rows a hit for 's' holds (its valid bytes are whole decoded rows):
 * at least the s->y1 that get() checked under the lock.  Fewer now would
 * mean another process scribbled on the arena since; reading as if it held
 * y1 rows never reads past the bytes get() vouched for. */
static int64_t
entry_rows(const struct raster__tiff *t, const seg_job_t *s)
{
    const int64_t rows = (int64_t)(raster__tile_entry_valid(s->hit) / t->seg_row_nbytes);
    return rows > s->y1 ? rows : s->y1;
}

/* One entry's room: the decoder's, for a whole segment judged in one shot
 * (the most any segment of the file asks for). */
static size_t
cache_capacity(const struct raster__tiff *t)
{
    const raster__decode_ref_t whole = {t->seg_nbytes, 1};
    return raster__decode_room(t->codec, t->seg_nbytes, &whole);
}

/* Entries are keyed by the file (identity at open), the directory (the
 * native reader reads the first, full-resolution one) and the segment. */
static raster__tile_key_t
cache_key(const struct raster__tiff *t, const seg_job_t *s)
{
    raster__tile_key_t k;
    memcpy(k.file, t->file_id, sizeof k.file);
    k.ifd = 0;
    k.seg = s->seg;
    return k;
}

enum { CACHE_BATCH = 32 };      /* segments looked up (or let go) per lock */

/* The segments [first, first + n) that have bytes (sparse ones are never
 * cached), looked up together. */
static void
cache_lookup_batch(plan_t *p, int64_t first, int64_t n)
{
    raster__tile_key_t keys[CACHE_BATCH];
    size_t need[CACHE_BATCH];
    const raster__tile_entry_t *got[CACHE_BATCH];
    seg_job_t *which[CACHE_BATCH];
    int64_t m = 0;
    for (int64_t i = first; i < first + n; i++) {
        seg_job_t *s = &p->segs[i];
        if (s->fetch_n == 0)
            continue;
        s->direct = 0;
        keys[m] = cache_key(p->t, s);
        need[m] = (size_t)s->y1 * p->t->seg_row_nbytes;
        which[m++] = s;
    }
    raster__tile_cache_get_many(keys, need, m, got);
    for (int64_t j = 0; j < m; j++)
        which[j]->hit = got[j];
}

/* With the cache on, every segment whose needed rows are cached is served
 * from there (nothing read, nothing decoded), and no segment is decoded
 * straight into dst: a miss is decoded into a new entry, which any later
 * window can use, and placed from it.  The segments of a window are
 * looked up, and let go, CACHE_BATCH at a time under one lock. */
static void
cache_lookup(plan_t *p)
{
    for (int64_t i = 0; i < p->nsegs; i += CACHE_BATCH)
        cache_lookup_batch(p, i, p->nsegs - i < CACHE_BATCH ? p->nsegs - i : CACHE_BATCH);
}

static void
cache_release_hits(plan_t *p)
{
    for (int64_t i = 0; i < p->nsegs; i += CACHE_BATCH) {
        const raster__tile_entry_t *hits[CACHE_BATCH];
        const int64_t n = p->nsegs - i < CACHE_BATCH ? p->nsegs - i : CACHE_BATCH;
        for (int64_t j = 0; j < n; j++) {
            hits[j] = p->segs[i + j].hit;
            p->segs[i + j].hit = NULL;
        }
        raster__tile_cache_release_many(hits, n);
    }
}

/* 'rows' whole decoded rows of pixel-interleaved samples at 'pixels' into
 * one plane per sample at 'planes' (the entry layout, entries_planar()). */
static void
split_planes(const struct raster__tiff *t, const uint8_t *pixels, uint8_t *planes, int64_t rows)
{
    const int64_t size = t->sample_nbytes;
    const raster_view_t src = {(void *)pixels, t->dtype, rows, t->seg_w, t->seg_samples,
                               (int64_t)t->seg_row_nbytes, size * t->seg_samples, size};
    const raster_view_t dst = {planes, t->dtype, rows, t->seg_w, t->seg_samples, t->seg_w * size, size,
                               rows * t->seg_w * size};
    raster__place(&src, &dst, NULL);
}

/* ------------------------------ a segment's path ---------------------- */

/* Every segment of a read goes through four steps, in this order, each one
 * function:
 *   plan    plan_build(), cache_lookup(), plan_group(): once per read, which
 *           segments, which of them the cache holds, which bytes to read;
 *   fetch   group_fetch(): its group's raw bytes (one pread into scratch, or
 *           what prefetch() read for a batching source);
 *   decode  segment_decode(): its rows decoded, into dst itself, a tile-cache
 *           entry or scratch (or found in the cache, or sparse: none);
 *   place   segment_place(): byte order and predictor undone where still to
 *           do, and the window's part placed into dst.
 * What decode leaves for place is a decoded_t. */
typedef struct decoded {
    uint8_t *rows;              /* row y at rows + y * seg_row_nbytes, not yet
                                   finished (byte order, predictor); NULL: none */
    int in_dst;                 /* 'rows' are dst itself: finish in place only */
    int uncompressed_in_dst;    /* rows read straight into dst at its row
                                   stride: only the byte order is left */
    const uint8_t *entry;       /* or finished rows in a tile-cache entry */
    int64_t entry_rows;         /* its planes' rows (entries_planar()), else 0 */
    raster__tile_entry_t *held; /* an entry this read reserved: released by place */
} decoded_t;

/* fetch: the raw bytes of group 'gi' into *raw_out (NULL when its segments
 * read nothing from the file: cache hits, sparse, uncompressed rows read
 * straight into dst). */
static raster_status_t
group_fetch(const plan_t *p, int64_t gi, uint8_t **raw_out)
{
    const group_t *g = &p->groups[gi];
    *raw_out = NULL;
    if (g->nbytes == 0)
        return RASTER_OK;
    if (p->prefetch) {
        *raw_out = g->fetched;
        return RASTER_OK;
    }
    uint8_t *raw = raster__scratch(RASTER_SCRATCH_RAW, (size_t)p->raw_cap);
    if (raw == NULL)
        return RASTER_E_NOMEM;
    char what[300];
    const int n = seg_what(p, &p->segs[p->order[g->first]], what, sizeof what);
    if (g->count > 1 && n > 0 && (size_t)n < sizeof what)
        snprintf(what + n, sizeof what - (size_t)n, ", read with %lld adjacent segment(s)",
                 (long long)(g->count - 1));
    RASTER_TRY(raster__tiff_source_read(p->t->src, raw, (size_t)g->nbytes, g->off, what));
    *raw_out = raw;
    return RASTER_OK;
}

/* decode, an uncompressed segment that maps onto dst: its rows read straight
 * into it (there is nothing to decode, so no copy through scratch). */
static raster_status_t
decode_uncompressed_into_dst(const plan_t *p, const seg_job_t *s, decoded_t *d)
{
    const struct raster__tiff *t = p->t;
    char what[256];
    seg_what(p, s, what, sizeof what);
    RASTER_TRY(t->src->ops->read_rows(t->src, dst_at(p, s), p->rq->dst.row_stride, t->seg_row_nbytes,
                                      s->fetch_off, s->y1 - s->y0, what));
    d->uncompressed_in_dst = 1;
    return RASTER_OK;
}

/* decode into tile-cache entry 'e': all the rows GDAL would decode (s->ref:
 * the whole segment but at the bottom edge), not only the window's, so that
 * the windows below it hit too instead of decoding again, and with GDAL's
 * verdict on damage; every column finished (byte order, predictor), then
 * published.  place() reads the window's part from it and lets it go. */
static raster_status_t
decode_into_cache(const plan_t *p, const seg_job_t *s, const uint8_t *raw, raster__tile_entry_t *e,
                  decoded_t *d)
{
    const struct raster__tiff *t = p->t;
    uint8_t *const entry = raster__tile_entry_data(e);
    /* Planes: decoded (and finished) in scratch first, then split into the entry. */
    uint8_t *base = entries_planar(t) ? raster__scratch(RASTER_SCRATCH_DECODE, cache_capacity(t)) : entry;
    raster_status_t st = RASTER_E_NOMEM;
    if (base != NULL) {
        const size_t asked = s->ref.out_nbytes;
        const raster__decode_status_t ds =
            raster__decode(t->codec, raw, (size_t)s->fetch_n, base, asked, cache_capacity(t), &s->ref);
        seg_job_t whole = *s;
        whole.y0 = 0;
        whole.y1 = (int64_t)(asked / t->seg_row_nbytes);
        whole.x0 = 0;
        whole.x1 = t->seg_w;
        st = ds != RASTER__DECODE_OK ? decode_fail(p, s, ds) : postprocess(p, &whole, base);
        if (st == RASTER_OK) {
            if (base != entry)
                split_planes(t, base, entry, whole.y1);
            const raster__tile_key_t k = cache_key(t, s);
            raster__tile_cache_put(e, &k, asked);
            d->entry = entry;
            d->entry_rows = base != entry ? whole.y1 : 0;
            d->held = e;
            return RASTER_OK;
        }
    }
    raster__tile_cache_release(e);
    return st;
}

/* decode: segment 's', whose raw bytes are at 'raw', into *d. */
static raster_status_t
segment_decode(const plan_t *p, const seg_job_t *s, uint8_t *raw, decoded_t *d)
{
    const struct raster__tiff *t = p->t;
    memset(d, 0, sizeof *d);
    if (s->hit != NULL) {           /* decoded by an earlier read */
        d->entry = raster__tile_entry_data(s->hit);
        d->entry_rows = entries_planar(t) ? entry_rows(t, s) : 0;
        return RASTER_OK;
    }
    if (s->fetch_n == 0)            /* sparse: place() writes the band fill values */
        return RASTER_OK;
    if (t->codec == RASTER__CODEC_NONE) {
        if (s->direct)
            return decode_uncompressed_into_dst(p, s, d);
        d->rows = raw - (size_t)s->y0 * t->seg_row_nbytes;    /* raw holds rows [y0, y1) */
        return RASTER_OK;
    }
    /* Straight into dst with no room to spare; DEFLATE may need more room
     * to be sure of the prefix, and then goes through scratch. */
    raster__decode_status_t ds = RASTER__DECODE_NEED_ROOM;
    if (s->direct) {
        ds = raster__decode(t->codec, raw, (size_t)s->fetch_n, dst_at(p, s), s->needed, s->needed, &s->ref);
        if (ds == RASTER__DECODE_OK) {
            d->rows = dst_at(p, s);
            d->in_dst = 1;
            return RASTER_OK;
        }
    }
    if (ds != RASTER__DECODE_NEED_ROOM)
        return decode_fail(p, s, ds);
    if (p->cache) {
        raster__tile_entry_t *e = raster__tile_cache_reserve(cache_capacity(t));
        if (e != NULL)      /* else off meanwhile, or all in use: scratch */
            return decode_into_cache(p, s, raw, e, d);
    }
    /* Through scratch, with all the room any codec needs: a whole segment
     * plus the DEFLATE margin (a constant per dataset, so the per-thread
     * block stops growing after the first read). */
    const size_t avail = t->seg_nbytes + RASTER__DEFLATE_MARGIN;
    uint8_t *base = raster__scratch(RASTER_SCRATCH_DECODE, avail);
    if (base == NULL)
        return RASTER_E_NOMEM;
    ds = raster__decode(t->codec, raw, (size_t)s->fetch_n, base, s->needed, avail, &s->ref);
    if (ds != RASTER__DECODE_OK)
        return decode_fail(p, s, ds);
    d->rows = base;
    return RASTER_OK;
}

/* place: what segment_decode() left in *d into the window's part of dst. */
static raster_status_t
segment_place(const plan_t *p, const seg_job_t *s, const decoded_t *d)
{
    const struct raster__tiff *t = p->t;
    raster_status_t st = RASTER_OK;
    if (d->uncompressed_in_dst) {
        const int64_t stride = p->rq->dst.row_stride;
        uint8_t *const rows = dst_at(p, s);
        if (t->swap && t->sample_nbytes > 1)
            for (int64_t y = 0; y < s->y1 - s->y0; y++)
                raster__byteswap(rows + y * stride, (size_t)((s->x1 - s->x0) * t->seg_samples),
                                 t->sample_nbytes);
    } else if (d->entry != NULL) {
        place_from(p, s, d->entry, d->entry_rows);
    } else if (d->rows != NULL) {
        seg_job_t c = *s;
        c.direct = d->in_dst;       /* a direct decode that needed more room is not */
        st = finish_rows(p, &c, d->rows);
    } else {
        place(p, s, NULL);
    }
    if (d->held != NULL)
        raster__tile_cache_release(d->held);
    return st;
}

/* One group: fetch, then each of its segments decoded and placed in turn
 * (the decoded rows are still in cache when they are placed). */
static raster_status_t
group_run(void *ctx, int64_t gi)
{
    const plan_t *p = ctx;
    const group_t *g = &p->groups[gi];
    uint8_t *raw;
    RASTER_TRY(group_fetch(p, gi, &raw));
    for (int64_t k = 0; k < g->count; k++) {
        const seg_job_t *s = &p->segs[p->order[g->first + k]];
        decoded_t d;
        RASTER_TRY(segment_decode(p, s, raw ? raw + (s->fetch_off - g->off) : NULL, &d));
        RASTER_TRY(segment_place(p, s, &d));
    }
    return RASTER_OK;
}

/* ------------------------------ batched fetch -------------------------- */

/* Groups closer than this share one range of a batching source: a request
 * costs far more than the bytes between them (COG leaders and trailers,
 * a tile the window skips). */
#define BATCH_MAX_GAP ((uint64_t)64 << 10)
/* One range never spans more than this (unless one group does). */
#define BATCH_MAX_RANGE ((uint64_t)16 << 20)

static int
cmp_group_off(const void *a, const void *b, const void *ctx)
{
    const group_t *g = ctx;
    const uint64_t x = g[*(const int64_t *)a].off, y = g[*(const int64_t *)b].off;
    return x < y ? -1 : x > y;
}

/* Sources whose calls are requests (src->batch_reads: remote files, whose
 * read_ranges is one VSIFReadMultiRangeL): fetch the raw bytes of every
 * group before any decoding, with one read_ranges call, so all requests of
 * a window are in flight together and the read waits one round trip, not
 * one per group.
 * The bytes live in the calling thread's scratch until the read returns
 * (workers decode from it while the caller waits).  Groups that overlap,
 * which only a hostile file has, get ranges of their own: decoding may
 * rewrite raw bytes in place. */
static raster_status_t
prefetch(plan_t *p)
{
    int64_t n = 0;
    uint64_t bound = 0;
    for (int64_t i = 0; i < p->ngroups; i++)
        if (p->groups[i].nbytes > 0)
            n++, bound += p->groups[i].nbytes + BATCH_MAX_GAP;
    if (n == 0)
        return RASTER_OK;
    RASTER_CHECK(n <= INT32_MAX && bound < ((uint64_t)1 << 40), RASTER_E_NOMEM,
                 "%s: a read of %lld ranges is too large", p->t->path, (long long)n);
    /* Scratch layout: group order, then per range buffer/offset/size, then bytes. */
    size_t head = (size_t)n * (sizeof(int64_t) + sizeof(void *) + sizeof(uint64_t) + sizeof(size_t));
    head = (head + 63) & ~(size_t)63;
    uint8_t *mem = raster__scratch(RASTER_SCRATCH_TIFF_FETCH, head + (size_t)bound);
    if (mem == NULL)
        return RASTER_E_NOMEM;
    int64_t *order = (int64_t *)mem;
    void **bufs = (void **)(order + n);
    uint64_t *offs = (uint64_t *)(bufs + n);
    size_t *sizes = (size_t *)(offs + n);
    uint8_t *data = mem + head;
    int64_t k = 0;
    for (int64_t i = 0; i < p->ngroups; i++)
        if (p->groups[i].nbytes > 0)
            order[k++] = i;
    sort_in_place(order, (size_t)n, sizeof *order, cmp_group_off, p->groups);
    int nranges = 0;
    uint64_t used = 0, start = 0, end = 0;
    for (int64_t j = 0; j < n; j++) {
        group_t *g = &p->groups[order[j]];
        const int join = nranges > 0 && g->off >= end && g->off - end <= BATCH_MAX_GAP &&
                         g->off + g->nbytes - start <= BATCH_MAX_RANGE;
        if (!join) {
            if (nranges > 0)
                used += sizes[nranges - 1] = (size_t)(end - start);
            start = g->off;
            bufs[nranges] = data + used;
            offs[nranges++] = start;
        }
        end = g->off + g->nbytes;
        g->fetched = (uint8_t *)bufs[nranges - 1] + (g->off - start);
    }
    sizes[nranges - 1] = (size_t)(end - start);
    char what[160];
    const raster_window_t w = p->rq->win;
    snprintf(what, sizeof what, "%d range(s) of window (col %lld, row %lld, %lldx%lld)", nranges,
             (long long)w.col_off, (long long)w.row_off, (long long)w.width, (long long)w.height);
    return p->t->src->ops->read_ranges(p->t->src, nranges, bufs, offs, sizes, what);
}

raster_status_t
raster__tiff_read(raster_dataset_t *ds, const raster__request_t *rq)
{
    plan_t p;
    memset(&p, 0, sizeof p);
    p.ds = ds;
    p.t = ds->tiff;
    p.rq = rq;
    RASTER_TRY(p.t->src->ops->prepare(p.t->src));   /* e.g. re-open after fork() */
    RASTER_TRY(plan_build(&p));
    p.prefetch = p.t->src->batch_reads;
    if (p.prefetch)             /* uncompressed rows come through prefetch() too */
        for (int64_t i = 0; i < p.nsegs; i++)
            p.segs[i].direct &= p.t->codec != RASTER__CODEC_NONE;
    p.cache = p.t->codec != RASTER__CODEC_NONE && raster__tile_cache_enabled();
    if (p.cache)
        cache_lookup(&p);
    /* Parallel only when there is decode work worth handing out. */
    size_t work = 0;
    for (int64_t i = 0; i < p.nsegs; i++)
        if (p.segs[i].hit == NULL)
            work += (size_t)p.segs[i].y1 * p.t->seg_row_nbytes;
    int threads = raster_get_threads();
    if (work < PARALLEL_MIN_NBYTES)
        threads = 1;
    plan_group(&p, threads);
    raster_status_t st = p.prefetch ? prefetch(&p) : RASTER_OK;
    if (st == RASTER_OK)
        st = raster__parallel_for(p.ngroups, threads, group_run, &p);
    cache_release_hits(&p);
    return st;
}
