#include "waitq.h"
#include "debug.h"
#include "loop.h"
#include "task.h"

void iou__waitq_interrupt(iou_task *t, void *ctx)
{
    iou__waiter *w = ctx;
    iou__waitq_remove(w->owner, w);
    iou__wake(t);
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
