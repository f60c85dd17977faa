#include "waitq.h"
#include "loop.h"
#include "task.h"

void iou__waitq_push(iou__waitq *q, iou__waiter *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    w->owner = q;
}

void iou__waitq_remove(iou__waitq *q, iou__waiter *w)
{
    if (w->owner != q)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->next = w->prev = NULL;
    w->owner = NULL;
}

static void waiter_interrupted(iou_task *t, void *ctx)
{
    iou__waiter *w = ctx;
    iou__waitq_remove(w->owner, w);
    iou__wake(t);
}

int iou__waitq_wait(iou__waitq *q, iou__waiter *w)
{
    iou_task *t = iou__current();
    int err = iou__interrupted(t);
    if (err)
        return err;
    w->task = t;
    w->result = 0;
    iou__waitq_push(q, w);
    int why = iou__park(t, waiter_interrupted, w);
    return why ? why : w->result;
}

iou__waiter *iou__waitq_wake_one(iou__waitq *q, int result)
{
    iou__waiter *w = q->head;
    if (w == NULL)
        return NULL;
    iou__waitq_remove(q, w);
    w->result = result;
    iou__wake(w->task);
    return w;
}

void iou__waitq_wake_all(iou__waitq *q, int result)
{
    while (iou__waitq_wake_one(q, result))
        ;
}
