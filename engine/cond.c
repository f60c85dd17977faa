/*
 * Condition variable for tasks. Waiters queue FIFO; signal wakes the longest
 * one, broadcast all. As with pthreads, a wake is a hint: callers re-check
 * their predicate in a loop.
 *
 * iou_cond_wait always returns owning the mutex, also when interrupted. The
 * re-lock therefore must not be interruptible itself: a cancelled task may
 * still have to queue for the mutex, and it does so with a park that has no
 * interrupt hook (cancellation shows at its next blocking call instead).
 */
#include "loop.h"
#include "task.h"
#include "waitq.h"

#include <errno.h>

void iou_cond_init(iou_cond *c)
{
    c->waiters = (iou_waitlist){0};
}

/* Takes m for t, waiting without interruption. Relies on the mutex's hand-off:
 * unlock sets m->owner to the first waiter's task before waking it. A free
 * mutex has no waiters, so taking it at once respects the queue. */
static void relock(iou_mutex *m, iou_task *t)
{
    if (m->owner == NULL) {
        m->owner = t;
        return;
    }
    iou__waiter w = {.task = t};
    iou__waitq_push(iou__waitq_of(&m->waiters), &w);
    iou__park(t, NULL, NULL);
}

int iou_cond_wait(iou_cond *c, iou_mutex *m)
{
    iou_task *t = iou__current();
    if (t == NULL || m->owner != t)
        return -EPERM;
    int err = iou__interrupted(t);
    if (err)
        return err; /* never released m: nothing to re-acquire */
    iou__waiter w;
    w.what = "condition";
    iou_mutex_unlock(m);
    int r = iou__waitq_wait(iou__waitq_of(&c->waiters), &w);
    relock(m, t);
    return r;
}

void iou_cond_signal(iou_cond *c)
{
    iou__waitq_wake_one(iou__waitq_of(&c->waiters), 0);
}

void iou_cond_broadcast(iou_cond *c)
{
    iou__waitq_wake_all(iou__waitq_of(&c->waiters), 0);
}
