/*
 * fork.c - the library's one pthread_atfork handler, which calls each
 * layer's fork hooks in one order.
 *
 * Why one handler: pthread_atfork runs prepare handlers in the reverse order
 * of registration and the others in order, and each layer used to register
 * its own on first use, so the order in which fork() took the library's
 * locks depended on which layer a program happened to touch first.  Here
 * the order is fixed, and written once:
 *
 *   prepare runs 1 to 5:
 *     1. GDAL gate    close it and wait until no thread is inside a GDAL,
 *                     VSI or libcurl call (raster__gdal_fork_*); a thread
 *                     waiting on the network in source/tiff_http.c is not.  First, because this
 *                     is the one hook that waits for other threads: no
 *                     thread waits at the gate while holding one of the
 *                     locks below, so none of them may be held by fork()
 *                     yet while it waits there.
 *     2. threads      hold the worker pool's creation mutex, so the child
 *                     never inherits it locked; the child drops the pool
 *                     (its threads are not in the child) and starts a new
 *                     one on its first parallel read.
 *     3. tile cache   hold the private cache's mutex.
 *     4. shm arena    nothing to hold (its lock is a lock on a byte of the
 *                     arena that another process may hold anyway); the
 *                     child replaces its inherited descriptor of the arena
 *                     with one of its own (the inherited one would keep the
 *                     parent's slot locked), re-initialises its local
 *                     mutexes and takes a slot of its own on first use.
 *     5. pools        hold the registry and every pool's mutex; the child
 *                     clears the waiter counts and makes new condition
 *                     variables (the old ones count waiters it does not have).
 *   parent and child run 5 to 1, undoing prepare in reverse; the child also
 *   re-initialises what the parent's other threads could have left behind.
 *
 * What no hook reaches: state of each open dataset (GDAL handles, VSI
 * handles, the native reader's file descriptor).  There is no registry of
 * datasets to walk, so those compare getpid() with the pid that made them
 * at their next use and re-open in a child (gdal_reader.c, tiff/).  The
 * process-wide state above needs no such check: its hooks are registered
 * before it exists, so every fork() resets it.
 *
 * Layering: this file is in the base layer and calls no other file of the
 * library by name.  A layer hands its hooks to raster__fork_hooks() (from
 * its own pthread_once, before it creates any state the hooks guard); the
 * slot it names fixes its place in the order above.  A registration that
 * races a fork() waits for it (hooks_mu is held from prepare to parent or
 * child), so a fork() sees every layer either wholly registered or not yet
 * holding any state.  So a registration must never run inside the GDAL
 * gate (a fork() waiting there for that thread to leave would hold
 * hooks_mu): every layer registers from its first-use path, before it
 * enters the gate or takes a lock of its own.
 */
#include "common.h"

static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;
static const raster__fork_hooks_t *hooks[RASTER__FORK_SLOTS];   /* guarded by hooks_mu */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
fork_prepare(void)
{
    pthread_mutex_lock(&hooks_mu);
    for (int i = 0; i < RASTER__FORK_SLOTS; i++)
        if (hooks[i] != NULL && hooks[i]->prepare != NULL)
            hooks[i]->prepare();
}

static void
fork_parent(void)
{
    for (int i = RASTER__FORK_SLOTS - 1; i >= 0; i--)
        if (hooks[i] != NULL && hooks[i]->parent != NULL)
            hooks[i]->parent();
    pthread_mutex_unlock(&hooks_mu);
}

/* One thread, the one that forked and locked hooks_mu: ours to unlock. */
static void
fork_child(void)
{
    for (int i = RASTER__FORK_SLOTS - 1; i >= 0; i--)
        if (hooks[i] != NULL && hooks[i]->child != NULL)
            hooks[i]->child();
    pthread_mutex_unlock(&hooks_mu);
}

static void
atfork_register(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void
raster__fork_hooks(raster__fork_slot_t slot, const raster__fork_hooks_t *h)
{
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&hooks_mu);
    hooks[slot] = h;
    pthread_mutex_unlock(&hooks_mu);
}
