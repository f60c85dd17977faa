/*
 * Channels, internal: the ring buffer, the two wait queues, and the waiter
 * record shared by plain sends/receives and select (select.c).
 *
 * Invariants (between operations; all run on the loop's one thread):
 *   - receivers waiting  =>  len == 0 and no sender waits
 *   - senders waiting    =>  len == cap (for cap 0: no receiver waits)
 *   - closed             =>  no sender waits, and no receiver waits
 * A waiter is taken off its queue by exactly one party: the operation that
 * completes it, close, its own interruption hook, or (for a select) the
 * firing of a sibling case. Its element is copied before its task is woken:
 * the element lives on that task's stack.
 */
#ifndef IOU_CHAN_H
#define IOU_CHAN_H

#include "task.h"
#include "waitq.h"

#include <iou.h>

typedef struct iou__select iou__select;

/* A task blocked in a channel operation. w.data is the element: the source
 * for a sender, the destination for a receiver. */
typedef struct iou__chan_waiter {
    iou__waiter w;
    iou__select *sel; /* NULL for iou_chan_send / iou_chan_recv */
} iou__chan_waiter;

struct iou_chan {
    size_t elem_size;
    size_t cap;
    size_t head; /* index of the oldest buffered element */
    size_t len;  /* buffered elements */
    bool closed;
    iou__waitq senders, receivers;
    unsigned char buf[]; /* cap * elem_size bytes */
};

/* The non-blocking core of a send / receive: 0, -EAGAIN or -EPIPE. */
int iou__chan_try_send(iou_chan *c, const void *elem);
int iou__chan_try_recv(iou_chan *c, void *elem);

/* Completes a waiter already unlinked from its queue: for a select, records
 * the case that fired and withdraws the others (select.c); then wakes it. */
void iou__select_fire(iou__chan_waiter *cw, int result);

static inline void iou__chan_waiter_done(iou__chan_waiter *cw, int result)
{
    if (cw->sel) {
        iou__select_fire(cw, result);
        return;
    }
    cw->w.result = result;
    iou__wake(cw->w.task);
}

#endif
