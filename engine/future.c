/*
 * Futures: a result set once (by a callback or a task) and awaited by tasks.
 *
 * Waiters are woken with the outcome copied into their own (stack) records,
 * so a woken task never reads the future again: the future may be freed
 * right after it was completed.
 *
 * Done callbacks never run inside set_result (asyncio semantics): completing
 * the future schedules one "run" with call_soon that calls the callbacks
 * registered so far, in registration order. A callback registered on a done
 * future schedules a run of its own. Invariant: done && cbs != NULL implies
 * run_queued, so every registered callback is either run or dropped.
 *
 * Freeing is deferred while a run is queued or running (it refers to the
 * future); the run then drops the remaining callbacks and frees it. If the
 * loop is freed with the run still queued, the callback layer's drop hook
 * does the same.
 */
#include "loop.h"
#include "task.h"
#include "waitq.h"

#include <errno.h>
#include <stdlib.h>

int iou__call_soon_owned(iou_loop *l, void (*cb)(void *), void (*drop)(void *), void *arg);

typedef struct done_cb done_cb;
struct done_cb {
    done_cb *next;
    void (*fn)(iou_future *f, void *arg);
    void *arg;
};

struct iou_future {
    iou_loop *loop;
    iou__waitq waiters; /* each waiter's data points at its intptr_t for the value */
    done_cb *cbs;       /* registered and not yet taken by a run, oldest first */
    done_cb **cbs_tail;
    intptr_t value;
    int error;       /* 0 or a negative errno, once done */
    bool done;
    bool run_queued; /* a run of the callbacks waits in the ready queue */
    bool running;    /* callbacks are being called right now */
    bool freed;      /* iou_future_free was called while a run referred to f */
};

iou_future *iou_future_new(iou_loop *l)
{
    if (l == NULL)
        return NULL;
    iou_future *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->loop = l;
    f->cbs_tail = &f->cbs;
    return f;
}

bool iou_future_done(const iou_future *f)
{
    return f && f->done;
}

/* ---- done callbacks --------------------------------------------------------- */

static void free_list(done_cb *c)
{
    while (c) {
        done_cb *next = c->next;
        free(c);
        c = next;
    }
}

static void take_list(iou_future *f, done_cb **list)
{
    *list = f->cbs;
    f->cbs = NULL;
    f->cbs_tail = &f->cbs;
}

/* Frees f for good once no run refers to it. */
static void release_if_unused(iou_future *f)
{
    if (f->freed && !f->run_queued && !f->running) {
        free_list(f->cbs);
        free(f);
    }
}

/* The scheduled run: calls the callbacks registered so far, in order. One
 * that frees f drops the rest (they "have not run yet"). */
static void run_callbacks(void *arg)
{
    iou_future *f = arg;
    f->run_queued = false;
    done_cb *batch;
    take_list(f, &batch);
    f->running = true;
    while (batch && !f->freed) {
        done_cb *c = batch;
        batch = c->next;
        c->fn(f, c->arg);
        free(c);
    }
    f->running = false;
    free_list(batch);
    release_if_unused(f);
}

/* The loop was freed with the run still queued: nothing will call it. */
static void drop_run(void *arg)
{
    iou_future *f = arg;
    f->run_queued = false;
    release_if_unused(f);
}

static int schedule_run(iou_future *f)
{
    if (f->run_queued)
        return 0;
    int err = iou__call_soon_owned(f->loop, run_callbacks, drop_run, f);
    if (err == 0)
        f->run_queued = true;
    return err;
}

int iou_future_on_done(iou_future *f, void (*cb)(iou_future *f, void *arg), void *arg)
{
    if (f == NULL || cb == NULL)
        return -EINVAL;
    done_cb *c = malloc(sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    if (f->done) {
        int err = schedule_run(f);
        if (err) {
            free(c);
            return err;
        }
    }
    c->next = NULL;
    c->fn = cb;
    c->arg = arg;
    *f->cbs_tail = c;
    f->cbs_tail = &c->next;
    return 0;
}

/* ---- completion ------------------------------------------------------------- */

/* Wakes every waiter, handing each its own copy of the outcome. */
static void wake_waiters(iou__waitq *q, intptr_t value, int error)
{
    iou__waiter *w;
    while ((w = q->head)) {
        *(intptr_t *)w->data = value;
        iou__waitq_wake_one(q, error);
    }
}

static int complete(iou_future *f, intptr_t value, int error)
{
    if (f == NULL)
        return -EINVAL;
    if (f->done)
        return -EALREADY;
    /* The only step that can fail comes first: on -ENOMEM f stays pending. */
    if (f->cbs) {
        int err = schedule_run(f);
        if (err)
            return err;
    }
    f->done = true;
    f->value = value;
    f->error = error;
    wake_waiters(&f->waiters, value, error);
    return 0;
}

int iou_future_set_result(iou_future *f, intptr_t value)
{
    return complete(f, value, 0);
}

int iou_future_set_error(iou_future *f, int err)
{
    if (err >= 0)
        return -EINVAL; /* an error is a negative errno; 0 would read as success */
    return complete(f, 0, err);
}

int iou_future_cancel(iou_future *f)
{
    return complete(f, 0, -ECANCELED);
}

/* ---- waiting ---------------------------------------------------------------- */

int iou_future_wait(iou_future *f, intptr_t *value)
{
    if (iou__current() == NULL)
        return -EPERM;
    if (f == NULL)
        return -EINVAL;
    intptr_t v = f->value;
    int err = f->error;
    if (!f->done) {
        iou__waiter w = {.data = &v, .what = "future"};
        err = iou__waitq_wait(&f->waiters, &w);
    }
    if (err == 0 && value)
        *value = v;
    return err;
}

/* ---- freeing ------------------------------------------------------------------ */

void iou_future_free(iou_future *f)
{
    if (f == NULL)
        return;
    /* "No task may be waiting": if one is anyway, it gets -ECANCELED rather
     * than a dangling queue. */
    wake_waiters(&f->waiters, 0, -ECANCELED);
    free_list(f->cbs);
    f->cbs = NULL;
    f->cbs_tail = &f->cbs;
    f->freed = true;
    release_if_unused(f);
}
