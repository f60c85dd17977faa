/*
 * Wait queues: the FIFO of tasks blocked on a synchronisation primitive
 * (mutex, semaphore, event, condition, channel, future). Waiter records live
 * on the waiting task's stack. A waiter leaves the queue exactly once: either
 * a waker pops it (and hands it a result), or an interruption (cancel,
 * deadline) removes it. Never both.
 */
#ifndef IOU_WAITQ_H
#define IOU_WAITQ_H

#include "task.h"

#include <iou.h>

typedef struct iou__waiter iou__waiter;
struct iou__waiter {
    iou__waiter *next, *prev;
    iou_task *task;
    int result;  /* what the waker handed over (0 by default) */
    void *data;  /* primitive-specific: e.g. the element a channel waiter sends or receives into */
    void *owner; /* the queue this waiter is in, NULL once it left */
    const char *what; /* the primitive ("mutex", "channel", ...), for iou_dump */
};

/* Same layout as the public iou_waitlist. */
typedef struct iou__waitq {
    iou__waiter *head, *tail;
} iou__waitq;

static inline iou__waitq *iou__waitq_of(iou_waitlist *l)
{
    return (iou__waitq *)(void *)l;
}

static inline bool iou__waitq_empty(const iou__waitq *q)
{
    return q->head == NULL;
}


/* Removes the longest waiter, stores result in it and makes its task ready.
 * Returns that waiter (still readable until its task runs) or NULL. */
iou__waiter *iou__waitq_wake_one(iou__waitq *q, int result);

/* Wakes every waiter with result. */
void iou__waitq_wake_all(iou__waitq *q, int result);

/* Appends w without parking (for waits on several queues, e.g. select). */
static inline void iou__waitq_push(iou__waitq *q, iou__waiter *w)
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

/* Unlinks w if it is still queued (no wake). */
static inline void iou__waitq_remove(iou__waitq *q, iou__waiter *w)
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

/* The park hook of a waiter: unlinks it and wakes its task (waitq.c). */
void iou__waitq_interrupt(iou_task *t, void *waiter);

/* Appends w (for the running task) to q and parks. Returns w->result as set
 * by the waker, or -ECANCELED / -ETIMEDOUT if interrupted (w was removed).
 * Inline: a blocked channel message, mutex or event is one frame less deep. */
static inline int iou__waitq_wait(iou__waitq *q, iou__waiter *w)
{
    iou_task *t = iou__current();
    int err = iou__interrupted(t);
    if (err)
        return err;
    w->task = t;
    w->result = 0;
    iou__waitq_push(q, w);
    int why = iou__park(t, iou__waitq_interrupt, w);
    return why ? why : w->result;
}

#endif
