/*
 * hit_cost.c - what a tile-cache hit costs beyond the copy: lookup, pin
 * and release of cached segments (no pixel is copied), by R reader
 * threads in each of P processes, in the shared arena or the private
 * cache.  bench_tile_cache.py --hit-cost runs it and writes the table.
 *
 *   bench_hit_cost shared|private PROCS THREADS [ITERS]
 *
 * Prints one line: mode procs threads hits wall_s hits_per_s ns_per_hit,
 * where ns_per_hit is a reader's own time per hit (its loop's wall time
 * over its hits: with more readers than cores it includes waiting for a
 * core).  The keys (64 segments of 4 KiB) are inserted before the fork,
 * so every lookup is a hit; every process starts on one byte written to
 * a shared pipe once all are ready.
 */
#include "cache/cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { NKEYS = 64, SEG = 4096 };

static raster__tile_key_t keys[NKEYS];
static long iters = 2000000;

typedef struct reader {
    pthread_t tid;
    pthread_barrier_t *go;
    long hits;
    double seconds;
} reader_t;

static double
now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *
read_loop(void *arg)
{
    reader_t *r = arg;
    const size_t need = SEG;
    pthread_barrier_wait(r->go);
    const double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        const raster__tile_entry_t *e;
        raster__tile_cache_get_many(&keys[i % NKEYS], &need, 1, &e);
        if (e != NULL) {
            r->hits++;
            raster__tile_cache_release_many(&e, 1);
        }
    }
    r->seconds = now_s() - t0;
    return NULL;
}

/* One process's readers: waits for the start byte, runs them, writes
 * "hits seconds_max ns_per_hit_mean" to 'out'. */
static void
run_process(int nthreads, int ready_fd, int go_fd, int out_fd)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
    reader_t *r = calloc((size_t)nthreads, sizeof *r);
    for (int i = 0; i < nthreads; i++) {
        r[i].go = &go;
        pthread_create(&r[i].tid, NULL, read_loop, &r[i]);
    }
    char c = 'r';
    if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1)
        exit(2);
    pthread_barrier_wait(&go);
    long hits = 0;
    double wall = 0, ns = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(r[i].tid, NULL);
        hits += r[i].hits;
        wall = r[i].seconds > wall ? r[i].seconds : wall;
        ns += r[i].hits ? r[i].seconds * 1e9 / (double)r[i].hits : 0;
    }
    char line[128];
    const int n = snprintf(line, sizeof line, "%ld %.6f %.2f\n", hits, wall, ns / nthreads);
    if (write(out_fd, line, (size_t)n) != n)
        exit(3);
    free(r);
}

int
main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "shared") != 0 && strcmp(argv[1], "private") != 0)) {
        fprintf(stderr, "usage: %s shared|private PROCS THREADS [ITERS]\n", argv[0]);
        return 2;
    }
    const int procs = atoi(argv[2]), threads = atoi(argv[3]);
    if (argc > 4)
        iters = atol(argv[4]);
    if (procs < 1 || threads < 1 || iters < 1)
        return 2;
    char tag[48];
    snprintf(tag, sizeof tag, "rl-bench-hit-%d", (int)getpid());
    setenv("RASTERLOADER_TILE_CACHE_NAME", tag, 1);
    setenv("RASTERLOADER_TILE_CACHE_SHARED", strcmp(argv[1], "shared") == 0 ? "1" : "0", 1);
    raster_tile_cache_set_budget((size_t)64 << 20);
    raster_tile_cache_stats_t st;
    raster_tile_cache_get_stats(&st);
    if ((st.mode == RASTER_TILE_CACHE_SHARED) != (strcmp(argv[1], "shared") == 0)) {
        fprintf(stderr, "asked for %s, got mode %d (%s)\n", argv[1], (int)st.mode, st.reason);
        return 1;
    }
    for (int k = 0; k < NKEYS; k++) {
        memset(&keys[k], 0, sizeof keys[k]);
        keys[k].file[0] = 0xbe4c;
        keys[k].seg = k;
        raster__tile_entry_t *e = raster__tile_cache_reserve(SEG);
        if (e == NULL)
            return 1;
        memset(raster__tile_entry_data(e), k, SEG);
        raster__tile_cache_put(e, &keys[k], SEG);
        raster__tile_cache_release(e);
    }
    int ready[2], go[2], out[2];
    if (pipe(ready) || pipe(go) || pipe(out))
        return 1;
    for (int p = 1; p < procs; p++)
        if (fork() == 0) {
            run_process(threads, ready[1], go[0], out[1]);
            _exit(0);
        }
    /* The first process's readers too run in a child, so that the parent
     * only starts and times them: the start byte goes out once every
     * process says ready. */
    if (fork() == 0) {
        run_process(threads, ready[1], go[0], out[1]);
        _exit(0);
    }
    char c;
    for (int p = 0; p < procs; p++)
        if (read(ready[0], &c, 1) != 1)
            return 1;
    const double t0 = now_s();
    for (int p = 0; p < procs; p++)
        if (write(go[1], "g", 1) != 1)
            return 1;
    long hits = 0;
    double ns = 0;
    FILE *f = fdopen(out[0], "r");
    close(out[1]);
    for (int p = 0; p < procs; p++) {
        long h;
        double w, n;
        if (fscanf(f, "%ld %lf %lf", &h, &w, &n) != 3)
            return 1;
        hits += h;
        ns += n;
    }
    const double wall = now_s() - t0;
    while (wait(NULL) > 0)
        ;
    if (hits != (long)procs * threads * iters)
        fprintf(stderr, "warning: %ld hits of %ld lookups\n", hits, (long)procs * threads * iters);
    printf("%s %d %d %ld %.3f %.0f %.1f\n", argv[1], procs, threads, hits, wall, (double)hits / wall, ns / procs);
    raster_tile_cache_detach();
    return 0;
}
