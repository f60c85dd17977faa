/*
 * Counting semaphore for tasks.
 *
 * Invariant: count > 0 implies no waiters. A release with waiters hands its
 * unit straight to the longest waiter instead of incrementing count, so units
 * go out in FIFO order and a newcomer cannot take one a waiter was due. A
 * waiter interrupted before being handed a unit was unlinked by its hook:
 * it consumed nothing.
 */
#include "loop.h"
#include "task.h"
#include "waitq.h"

#include <errno.h>

void iou_sem_init(iou_sem *s, size_t count)
{
    s->count = count;
    s->waiters = (iou_waitlist){0};
}

int iou_sem_tryacquire(iou_sem *s)
{
    if (s->count == 0)
        return -EAGAIN;
    s->count--;
    return 0;
}

int iou_sem_acquire(iou_sem *s)
{
    if (s->count > 0) { /* no waiters (invariant): taking it is fair */
        s->count--;
        return 0;
    }
    if (iou__current() == NULL)
        return -EPERM; /* it would have to wait, and only tasks can */
    iou__waiter w;
    w.what = "semaphore";
    return iou__waitq_wait(iou__waitq_of(&s->waiters), &w);
}

void iou_sem_release(iou_sem *s)
{
    if (iou__waitq_wake_one(iou__waitq_of(&s->waiters), 0) == NULL)
        s->count++;
}
