/*
 * tiff_io.c - raw segment bytes: one descriptor per dataset, pread only.
 *
 * pread has no shared file offset, so any number of threads read through
 * one descriptor with no lock, and a descriptor inherited across fork() would
 * even keep working.  It is re-opened in a forked child anyway, so that the
 * child owns its descriptor (the parent may close the dataset, and a child
 * that closes must not close the parent's).  The descriptor and the pid it
 * belongs to share one atomic word: readers check it with one load; the
 * first reader in a new process opens the file again and installs its
 * descriptor with a compare-and-swap (a loser closes its own).  No mutex is
 * involved, so a fork at any moment cannot leave one locked in the child.
 * The re-opened file must be the one opened at open time (same device and
 * inode), or the read fails instead of returning another file's bytes.
 * Remote files have no descriptor: every read here goes to tiff_vsi.c.
 * Coalescing adjacent segments into one read is the planner's job
 * (tiff_read.c); this file reads whatever byte range it is given.
 */
#include "tiff_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* The test hook (tiff_internal.h); the context is set before the function. */
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
fault(const struct raster__tiff *t, uint64_t offset, size_t *nbytes)
{
    const raster__io_fault_fn fn = atomic_load_explicit(&fault_fn, memory_order_acquire);
    return fn == NULL ? 0 : fn(atomic_load(&fault_ctx), t->path, offset, nbytes);
}

static uint64_t
pack(pid_t pid, int fd)
{
    return ((uint64_t)(uint32_t)pid << 32) | (uint32_t)fd;
}

raster_status_t
raster__tiff_fd(struct raster__tiff *t, int *fd_out)
{
    if (t->vsi != NULL) {
        *fd_out = -1;           /* remote: reads go through tiff_vsi.c */
        return RASTER_OK;
    }
    const pid_t me = getpid();
    uint64_t cur = atomic_load_explicit(&t->fd_pid, memory_order_acquire);
    if ((pid_t)(cur >> 32) == me) {
        *fd_out = (int)(uint32_t)cur;
        return RASTER_OK;
    }
    const int fd = open(t->path, O_RDONLY | O_CLOEXEC);
    RASTER_CHECK(fd >= 0, RASTER_E_IO, "%s: cannot re-open after fork: %s", t->path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_dev != t->dev || (uint64_t)sb.st_ino != t->ino) {
        close(fd);
        return raster__fail(RASTER_E_IO, "%s: the file was replaced since it was opened", t->path);
    }
    if (atomic_compare_exchange_strong(&t->fd_pid, &cur, pack(me, fd))) {
        /* The descriptor we replace is the parent's, duplicated into this
         * process by fork(): this process's copy is ours to close. */
        if (cur != UINT64_MAX)
            close((int)(uint32_t)cur);
        *fd_out = fd;
        return RASTER_OK;
    }
    close(fd);                  /* another thread of this process won */
    *fd_out = (int)(uint32_t)cur;
    return RASTER_OK;
}

raster_status_t
raster__tiff_pread(const struct raster__tiff *t, int fd, void *buf, size_t nbytes, uint64_t offset,
                   const char *what)
{
    if (t->vsi != NULL)
        return raster__tiff_vsi_read(t, buf, nbytes, offset, what);
    uint8_t *p = buf;
    size_t done = 0;
    while (done < nbytes) {
        size_t want = nbytes - done;
        const int injected = fault(t, offset + done, &want);
        if (injected != 0)
            errno = injected;
        const ssize_t r = injected != 0 ? -1 : pread(fd, p + done, want, (off_t)(offset + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return raster__fail(RASTER_E_IO, "%s: reading %s: %s", t->path, what, strerror(errno));
        }
        if (r == 0)
            return raster__fail(RASTER_E_CORRUPT,
                                "%s: %s: the file ends at byte %llu, before the %zu bytes at %llu",
                                t->path, what, (unsigned long long)(offset + done), nbytes,
                                (unsigned long long)offset);
        done += (size_t)r;
    }
    return RASTER_OK;
}

raster_status_t
raster__tiff_pread_rows(const struct raster__tiff *t, int fd, uint8_t *dst, int64_t dst_stride,
                        size_t row_nbytes, uint64_t offset, int64_t nrows, const char *what)
{
    if (t->vsi != NULL && (size_t)dst_stride != row_nbytes) {
        /* Remote rows: one range per row, which GDAL sends as one request
         * (the ranges are consecutive). */
        enum { ROWS_PER_CALL = 512 };
        void *bufs[ROWS_PER_CALL];
        uint64_t offs[ROWS_PER_CALL];
        size_t sizes[ROWS_PER_CALL];
        for (int64_t r0 = 0; r0 < nrows; r0 += ROWS_PER_CALL) {
            const int n = nrows - r0 < ROWS_PER_CALL ? (int)(nrows - r0) : ROWS_PER_CALL;
            for (int r = 0; r < n; r++) {
                bufs[r] = dst + (r0 + r) * dst_stride;
                offs[r] = offset + (uint64_t)(r0 + r) * row_nbytes;
                sizes[r] = row_nbytes;
            }
            RASTER_TRY(raster__tiff_vsi_read_ranges(t, n, bufs, offs, sizes, what));
        }
        return RASTER_OK;
    }
    if ((size_t)dst_stride == row_nbytes)
        return raster__tiff_pread(t, fd, dst, row_nbytes * (size_t)nrows, offset, what);
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
            const int injected = fault(t, off, &want);
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
            RASTER_TRY(raster__tiff_pread(t, fd, dst + (r0 + r) * dst_stride, row_nbytes,
                                          off + (uint64_t)r * row_nbytes, what));
    }
    return RASTER_OK;
}

void
raster__tiff_io_close(struct raster__tiff *t)
{
    raster__tiff_vsi_close(t);
    /* Whichever process this runs in, the stored descriptor is open in it
     * (fork duplicates the table), so closing it is always right. */
    const uint64_t cur = atomic_load(&t->fd_pid);
    if (cur != UINT64_MAX)
        close((int)(uint32_t)cur);
    atomic_store(&t->fd_pid, UINT64_MAX);
}
