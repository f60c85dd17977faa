/*
 * Select: wait on several channel operations, perform exactly one.
 *
 * A blocked select queues one waiter per case, all pointing at one state
 * record on the caller's stack. The first peer (or close) that completes one
 * of them fires the select: it records the case, unlinks every sibling from
 * its queue and wakes the task, all before returning. So no other peer can
 * ever find a stale sibling, and at most one case is performed. An
 * interruption unlinks all of them instead: no case was performed.
 */
#include "chan.h"
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

enum { SELECT_STACK_CASES = 8 }; /* waiter records on the stack; more are malloc'd */

struct iou__select {
    iou_task *task;
    iou__chan_waiter *waiters; /* one per case, same index */
    size_t n;
    size_t fired; /* index of the case that completed */
};

/* Unlinks every waiter still queued (the fired one already left its queue). */
static void withdraw(iou__select *sel)
{
    for (size_t i = 0; i < sel->n; i++) {
        iou__waiter *w = &sel->waiters[i].w;
        if (w->owner)
            iou__waitq_remove(w->owner, w);
    }
}

void iou__select_fire(iou__chan_waiter *cw, int result)
{
    iou__select *sel = cw->sel;
    cw->w.result = result;
    sel->fired = (size_t)(cw - sel->waiters);
    withdraw(sel);
    iou__wake(sel->task);
}

static void select_interrupted(iou_task *t, void *ctx)
{
    withdraw(ctx);
    iou__wake(t);
}

static int validate(const iou_select_case *cases, size_t n)
{
    if (cases == NULL || n == 0 || n > INT_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const iou_select_case *k = &cases[i];
        if (k->chan == NULL || k->elem == NULL ||
            (k->op != IOU_SELECT_SEND && k->op != IOU_SELECT_RECV))
            return -EINVAL;
    }
    return 0;
}

/* Performs the first case that can proceed now; returns its index or -EAGAIN. */
static int try_cases(iou_select_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        iou_select_case *k = &cases[i];
        int r = k->op == IOU_SELECT_SEND ? iou__chan_try_send(k->chan, k->elem)
                                         : iou__chan_try_recv(k->chan, k->elem);
        if (r != -EAGAIN) {
            k->result = r;
            return (int)i;
        }
    }
    return -EAGAIN;
}

int iou_try_select(iou_select_case *cases, size_t n)
{
    int err = validate(cases, n);
    return err ? err : try_cases(cases, n);
}

static void enqueue(iou__select *sel, iou_select_case *cases)
{
    for (size_t i = 0; i < sel->n; i++) {
        iou__chan_waiter *cw = &sel->waiters[i];
        *cw = (iou__chan_waiter){.w.task = sel->task, .w.data = cases[i].elem, .sel = sel};
        iou_chan *c = cases[i].chan;
        iou__waitq_push(cases[i].op == IOU_SELECT_SEND ? &c->senders : &c->receivers, &cw->w);
    }
}

/* Queues on every case and parks until one fires or the task is interrupted. */
static int select_wait(iou_task *t, iou_select_case *cases, size_t n, iou__chan_waiter *ws)
{
    iou__select sel = {.task = t, .waiters = ws, .n = n};
    enqueue(&sel, cases);
    int why = iou__park(t, select_interrupted, &sel);
    if (why)
        return why;
    cases[sel.fired].result = ws[sel.fired].w.result;
    return (int)sel.fired;
}

int iou_select(iou_select_case *cases, size_t n)
{
    int r = iou_try_select(cases, n);
    if (r != -EAGAIN)
        return r;
    iou_task *t = iou__current();
    if (t == NULL)
        return -EPERM;
    int err = iou__interrupted(t);
    if (err)
        return err;
    iou__chan_waiter small[SELECT_STACK_CASES];
    iou__chan_waiter *ws = n <= SELECT_STACK_CASES ? small : malloc(n * sizeof(*ws));
    if (ws == NULL)
        return -ENOMEM;
    r = select_wait(t, cases, n, ws);
    if (ws != small)
        free(ws);
    return r;
}
