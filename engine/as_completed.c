/*
 * Completion order (asyncio.as_completed): hand tasks back as they finish.
 *
 * One watcher per task appends the task's index to a FIFO when it ends, so
 * each completion costs O(1) and next() pops in the exact order the tasks
 * finished. Every index enters the FIFO at most once, so n slots never wrap.
 * Everything (watchers, task array, FIFO) is one allocation made by new().
 *
 * Invariants:
 *   - tasks[i] is NULL once index i has been handed back (and joined).
 *   - A task that is still running has its watcher linked; one that has
 *     ended has its index in finished[head..tail) or has been handed back.
 *   - c->waiter is the task parked in next(); whoever wakes it clears it first.
 */
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

typedef struct ac_watch {
    iou__watch watch;
    iou_as_completed *owner;
} ac_watch;

struct iou_as_completed {
    iou_task *waiter; /* parked in next(), or NULL */
    size_t n, returned;
    size_t head, tail; /* finished[head..tail): ended, not yet handed back */
    ac_watch *watches; /* watches[i] watches tasks[i] */
    iou_task **tasks;
    size_t *finished;
};

static void wake_waiter(iou_as_completed *c)
{
    iou_task *waiter = c->waiter;
    if (waiter) {
        c->waiter = NULL;
        iou__wake(waiter);
    }
}

static void push_finished(iou_as_completed *c, size_t index)
{
    c->finished[c->tail++] = index;
}

static void task_ended(iou__watch *w, iou_task *done)
{
    (void)done;
    ac_watch *aw = iou__container_of(w, ac_watch, watch);
    iou_as_completed *c = aw->owner;
    push_finished(c, (size_t)(aw - c->watches));
    wake_waiter(c);
}

static iou_as_completed *alloc_for(size_t n)
{
    size_t per_task = sizeof(ac_watch) + sizeof(iou_task *) + sizeof(size_t);
    if (n > (SIZE_MAX - sizeof(iou_as_completed)) / per_task)
        return NULL;
    iou_as_completed *c = malloc(sizeof(*c) + n * per_task);
    if (c == NULL)
        return NULL;
    *c = (iou_as_completed){.n = n};
    c->watches = (ac_watch *)(c + 1);
    c->tasks = (iou_task **)(c->watches + n);
    c->finished = (size_t *)(c->tasks + n);
    return c;
}

static bool valid_tasks(iou_task **t, size_t n)
{
    if (n > INT_MAX || (t == NULL && n > 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if (t[i] == NULL || t[i]->detached) /* a detached task may vanish when it ends */
            return false;
    return true;
}

iou_as_completed *iou_as_completed_new(iou_task **t, size_t n)
{
    if (!valid_tasks(t, n))
        return NULL;
    iou_as_completed *c = alloc_for(n);
    if (c == NULL)
        return NULL;
    /* Tasks that have already ended come first, in index order. */
    for (size_t i = 0; i < n; i++) {
        c->tasks[i] = t[i];
        c->watches[i] = (ac_watch){.watch.fn = task_ended, .owner = c};
        if (iou__task_done(t[i]))
            push_finished(c, i);
        else
            iou__watch_add(t[i], &c->watches[i].watch);
    }
    return c;
}

static void waiter_interrupted(iou_task *waiter, void *ctx)
{
    (void)waiter;
    wake_waiter(ctx); /* the tasks keep running and keep being recorded */
}

/* Parks until some task ends. Returns 0 or the interruption. */
static int await_finished(iou_as_completed *c, iou_task *self)
{
    if (c->waiter)
        return -EBUSY;
    int err = iou__interrupted(self);
    if (err)
        return err;
    c->waiter = self;
    return iou__park(self, waiter_interrupted, c);
}

int iou_as_completed_next(iou_as_completed *c, int *result)
{
    iou_task *self = iou__current();
    if (self == NULL)
        return -EPERM;
    if (c == NULL)
        return -EINVAL;
    if (c->returned == c->n)
        return -ENOENT;
    if (c->head == c->tail) {
        int why = await_finished(c, self);
        if (why)
            return why;
    }
    size_t i = c->finished[c->head++];
    int value = iou_join(c->tasks[i]); /* it has ended: returns at once */
    c->tasks[i] = NULL;
    c->returned++;
    if (result)
        *result = value;
    return (int)i;
}

/* Cancels every task not yet handed back, then joins them (or, outside a
 * task, detaches them: they are freed when they end). */
void iou_as_completed_free(iou_as_completed *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        if (c->tasks[i] && !iou__task_done(c->tasks[i])) {
            iou__watch_remove(c->tasks[i], &c->watches[i].watch);
            iou_cancel(c->tasks[i]);
        }
    }
    bool in_task = iou__current() != NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (c->tasks[i] == NULL)
            continue;
        if (in_task)
            iou_join(c->tasks[i]);
        else
            iou_detach(c->tasks[i]);
    }
    free(c);
}
