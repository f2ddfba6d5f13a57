/*
 * tiff_io.c - the byte source of a local file (source.h): one
 * descriptor per dataset, pread and preadv only.
 *
 * pread has no shared file offset, so any number of threads read through
 * one descriptor with no lock, and a descriptor inherited across fork() would
 * even keep working.  It is re-opened in a forked child anyway, so that the
 * child owns its descriptor (the parent may close the dataset, and a child
 * that closes must not close the parent's).  The descriptor and the pid it
 * belongs to share one atomic word: each read's prepare() checks it with
 * one load (and one getpid()), the reads after it only load it; the first
 * read in a new process opens the file again and installs its descriptor
 * with a compare-and-swap (a loser closes its own).  No mutex is
 * involved, so a fork at any moment cannot leave one locked in the child.
 * The re-opened file must be the one opened at open time (same device and
 * inode), or the read fails instead of returning another file's bytes.
 * Coalescing adjacent segments into one read is the planner's job
 * (tiff_read.c); this file reads whatever byte range it is given.  The
 * test hook sits here, in front of every system call that reads the file,
 * because its faults (errno values, EINTR, short reads) are those of
 * pread and preadv.
 */
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

typedef struct local_source {
    raster__tiff_source_t base;   /* first: the interface */
    _Atomic uint64_t fd_pid;      /* (pid << 32) | fd: the descriptor and the
                                     process it belongs to; UINT64_MAX none */
    uint64_t dev, ino;            /* identity of the file opened at open time */
} local_source_t;

/* The test hook (source.h); the context is set before the function. */
static _Atomic(raster__io_fault_fn) fault_fn;
static void *_Atomic fault_ctx;

void
raster__io_set_fault_hook(raster__io_fault_fn fn, void *ctx)
{
    atomic_store(&fault_fn, NULL);
    atomic_store(&fault_ctx, ctx);
    atomic_store(&fault_fn, fn);
}

/* 0, or the errno the hook injects; *nbytes may come back lower. */
static int
fault(const local_source_t *l, uint64_t offset, size_t *nbytes)
{
    const raster__io_fault_fn fn = atomic_load_explicit(&fault_fn, memory_order_acquire);
    return fn == NULL ? 0 : fn(atomic_load(&fault_ctx), l->base.path, offset, nbytes);
}

static uint64_t
pack(pid_t pid, int fd)
{
    return ((uint64_t)(uint32_t)pid << 32) | (uint32_t)fd;
}

/* This process's descriptor, after prepare() (a read runs in the process
 * that prepared it: fork() copies only the forking thread).  */
static int
fd_of(const local_source_t *l)
{
    return (int)(uint32_t)atomic_load_explicit(&l->fd_pid, memory_order_acquire);
}

/* Open the file again after fork(), once per process. */
static raster_status_t
local_prepare(raster__tiff_source_t *src)
{
    local_source_t *l = (local_source_t *)src;
    const pid_t me = getpid();
    uint64_t cur = atomic_load_explicit(&l->fd_pid, memory_order_acquire);
    if ((pid_t)(cur >> 32) == me)
        return RASTER_OK;
    const char *path = l->base.path;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return raster__fail_open(path, errno, "cannot re-open after fork");
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_dev != l->dev || (uint64_t)sb.st_ino != l->ino) {
        close(fd);
        return raster__fail(RASTER_E_IO, "%s: the file was replaced since it was opened", path);
    }
    if (atomic_compare_exchange_strong(&l->fd_pid, &cur, pack(me, fd))) {
        /* The descriptor we replace is the parent's, duplicated into this
         * process by fork(): this process's copy is ours to close. */
        if (cur != UINT64_MAX)
            close((int)(uint32_t)cur);
        return RASTER_OK;
    }
    close(fd);                  /* another thread of this process won */
    return RASTER_OK;
}

/* Exactly 'nbytes' at 'offset', retrying short reads and EINTR. */
static raster_status_t
pread_exact(const local_source_t *l, int fd, void *buf, size_t nbytes, uint64_t offset, const char *what)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < nbytes) {
        size_t want = nbytes - done;
        const int injected = fault(l, offset + done, &want);
        if (injected != 0)
            errno = injected;
        const ssize_t r = injected != 0 ? -1 : pread(fd, p + done, want, (off_t)(offset + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return raster__fail(RASTER_E_IO, "%s: reading %s: %s", l->base.path, what, strerror(errno));
        }
        if (r == 0)
            return raster__fail(RASTER_E_CORRUPT,
                                "%s: %s: the file ends at byte %llu, before the %zu bytes at %llu",
                                l->base.path, what, (unsigned long long)(offset + done), nbytes,
                                (unsigned long long)offset);
        done += (size_t)r;
    }
    return RASTER_OK;
}

/* One pread per range: the planner has already joined neighbours, and a
 * local source is never asked for a whole read's ranges at once. */
static raster_status_t
local_read_ranges(raster__tiff_source_t *src, int n, void **bufs, const uint64_t *offs,
                  const size_t *sizes, const char *what)
{
    const local_source_t *l = (const local_source_t *)src;
    const int fd = fd_of(l);
    for (int i = 0; i < n; i++)
        RASTER_TRY(pread_exact(l, fd, bufs[i], sizes[i], offs[i], what));
    return RASTER_OK;
}

static raster_status_t
local_read_rows(raster__tiff_source_t *src, uint8_t *dst, int64_t dst_stride, size_t row_nbytes,
                uint64_t offset, int64_t nrows, const char *what)
{
    const local_source_t *l = (const local_source_t *)src;
    const int fd = fd_of(l);
    if ((size_t)dst_stride == row_nbytes)
        return pread_exact(l, fd, dst, row_nbytes * (size_t)nrows, offset, what);
    /* One vector entry per row; IOV_MAX (1024) bounds one call. */
    enum { ROWS_PER_CALL = 512 };
    struct iovec iov[ROWS_PER_CALL];
    for (int64_t r0 = 0; r0 < nrows; r0 += ROWS_PER_CALL) {
        const int n = nrows - r0 < ROWS_PER_CALL ? (int)(nrows - r0) : ROWS_PER_CALL;
        for (int r = 0; r < n; r++)
            iov[r] = (struct iovec){dst + (r0 + r) * dst_stride, row_nbytes};
        const uint64_t off = offset + (uint64_t)r0 * row_nbytes;
        ssize_t got;
        do {
            size_t want = (size_t)n * row_nbytes;
            const int injected = fault(l, off, &want);
            if (injected != 0)
                errno = injected;
            got = injected != 0 ? -1 : preadv(fd, iov, n, (off_t)off);
            if (got > (ssize_t)want)
                got = (ssize_t)want;        /* an injected short read */
        } while (got < 0 && errno == EINTR);
        if (got == (ssize_t)((size_t)n * row_nbytes))
            continue;
        /* A short read (end of file, or the kernel's choice): row by row,
         * which also reports where the file ends. */
        for (int r = 0; r < n; r++)
            RASTER_TRY(pread_exact(l, fd, dst + (r0 + r) * dst_stride, row_nbytes,
                                   off + (uint64_t)r * row_nbytes, what));
    }
    return RASTER_OK;
}

static void
local_close(raster__tiff_source_t *src)
{
    local_source_t *l = (local_source_t *)src;
    /* Whichever process this runs in, the stored descriptor is open in it
     * (fork duplicates the table), so closing it is always right. */
    const uint64_t cur = atomic_load(&l->fd_pid);
    if (cur != UINT64_MAX)
        close((int)(uint32_t)cur);
    free(l);
}

static const raster__tiff_source_ops_t local_ops = {
    local_prepare, local_read_ranges, local_read_rows, local_close,
};

raster_status_t
raster__tiff_source_open_local(const char *path, raster__tiff_source_t **out)
{
    *out = NULL;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    /* Out of descriptors is the process's failure, not the file's: report
     * it (GDAL, which serves the paths open() cannot, would fail the same
     * way at the first read, with a vaguer message).  Any other failure
     * leaves the path to GDAL: e.g. GTIFF_DIR:1:file.tif, GDAL's syntax. */
    if (fd < 0)
        return raster__errno_is_fd_limit(errno) ? raster__fail_open(path, errno, "cannot open") : RASTER_OK;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return RASTER_OK;
    }
    local_source_t *l = calloc(1, sizeof *l);
    if (l == NULL) {
        close(fd);
        return raster__fail(RASTER_E_NOMEM, "%s: out of memory", path);
    }
    l->base = (raster__tiff_source_t){&local_ops, path, (uint64_t)sb.st_size, 0, {0}};
    raster__tile_key_file_local(&sb, l->base.file_id);
    atomic_init(&l->fd_pid, pack(getpid(), fd));
    l->dev = (uint64_t)sb.st_dev;
    l->ino = (uint64_t)sb.st_ino;
    *out = &l->base;
    return RASTER_OK;
}
