/*
 * Combinators over tasks the caller owns: gather (join them all) and wait_any
 * (wait until one has ended, join nothing).
 *
 * wait_any puts one watcher on each task. Whichever fires first (or the
 * caller's interruption) removes all the others before waking the caller, so
 * no watcher outlives the call and the caller is woken exactly once.
 */
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

/* ---- gather ---------------------------------------------------------------- */

int iou_gather(iou_task **t, size_t n, int *results)
{
    iou_task *self = iou__current();
    if (self == NULL)
        return -EPERM;
    if (t == NULL && n > 0)
        return -EINVAL;
    /* iou_join already cancels its target when the joiner is interrupted and
     * still awaits it; once interrupted, every later join does the same. */
    for (size_t i = 0; i < n; i++) {
        int value = iou_join(t[i]);
        if (results)
            results[i] = value;
    }
    return iou__interrupted(self);
}

/* ---- wait_any -------------------------------------------------------------- */

enum { STACK_WATCHERS = 16 }; /* up to this many tasks: no allocation */

typedef struct any_wait any_wait;

typedef struct any_watch {
    iou__watch watch;
    any_wait *wait;
} any_watch;

struct any_wait {
    iou_task *waiter;
    iou_task **tasks;
    any_watch *watches; /* watches[i] watches tasks[i] */
    size_t n;
};

static int lowest_done(iou_task **t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (iou__task_done(t[i]))
            return (int)i;
    return -1;
}

/* Removing a watcher that has already fired is a no-op (iou__watch_remove). */
static void unwatch_all(any_wait *w)
{
    for (size_t i = 0; i < w->n; i++)
        iou__watch_remove(w->tasks[i], &w->watches[i].watch);
}

static void any_ended(iou__watch *watch, iou_task *done)
{
    (void)done;
    any_wait *w = iou__container_of(watch, any_watch, watch)->wait;
    unwatch_all(w);
    iou__wake(w->waiter);
}

static void any_interrupted(iou_task *waiter, void *ctx)
{
    unwatch_all(ctx);
    iou__wake(waiter);
}

/* Parks until one task ends or the caller is interrupted. Returns 0 or the
 * interruption. No watcher is left on any task afterwards. */
static int park_until_one_ends(any_wait *w)
{
    for (size_t i = 0; i < w->n; i++) {
        w->watches[i].watch.fn = any_ended;
        w->watches[i].wait = w;
        iou__watch_add(w->tasks[i], &w->watches[i].watch);
    }
    return iou__park(w->waiter, any_interrupted, w);
}

/* A detached task may vanish when it ends; the caller would wait for itself. */
static bool valid_tasks(iou_task **t, size_t n, const iou_task *self)
{
    if (t == NULL || n == 0 || n > INT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (t[i] == NULL || t[i]->detached || t[i] == self)
            return false;
    return true;
}

int iou_wait_any(iou_task **t, size_t n)
{
    iou_task *self = iou__current();
    if (self == NULL)
        return -EPERM;
    if (!valid_tasks(t, n, self))
        return -EINVAL;
    int done = lowest_done(t, n);
    if (done >= 0)
        return done;
    int err = iou__interrupted(self);
    if (err)
        return err;
    any_watch on_stack[STACK_WATCHERS];
    any_watch *watches = n <= STACK_WATCHERS ? on_stack : malloc(n * sizeof(*watches));
    if (watches == NULL)
        return -ENOMEM;
    any_wait w = {.waiter = self, .tasks = t, .watches = watches, .n = n};
    int why = park_until_one_ends(&w);
    if (watches != on_stack)
        free(watches);
    /* Woken by an end: several may have ended in that batch; the lowest wins. */
    return why ? why : lowest_done(t, n);
}
