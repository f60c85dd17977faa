/*
 * Mutex for tasks: an owner and a FIFO of waiters, both in caller storage.
 *
 * Invariant: owner == NULL implies no waiters. Unlock never leaves the mutex
 * free while someone waits: it hands ownership to the longest waiter (owner is
 * set before that task even runs), so a task that arrives later cannot barge
 * in ahead of the queue. An interrupted waiter was unlinked by its hook and
 * was handed nothing, so nothing needs undoing.
 */
#include "loop.h"
#include "task.h"
#include "waitq.h"

#include <errno.h>

void iou_mutex_init(iou_mutex *m)
{
    *m = (iou_mutex)IOU_MUTEX_INIT;
}

int iou_mutex_lock(iou_mutex *m)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return -EPERM; /* ownership is per task */
    if (m->owner == NULL) {
        m->owner = t; /* free, hence nobody waits: no queue to respect */
        return 0;
    }
    if (m->owner == t)
        return -EDEADLK;
    iou__waiter w;
    w.what = "mutex";
    /* 0 means unlock made us the owner; otherwise we were never queued or were
     * unlinked by the interruption, and own nothing. */
    return iou__waitq_wait(iou__waitq_of(&m->waiters), &w);
}

int iou_mutex_trylock(iou_mutex *m)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return -EPERM;
    if (m->owner != NULL)
        return -EBUSY;
    m->owner = t;
    return 0;
}

int iou_mutex_unlock(iou_mutex *m)
{
    iou_task *t = iou__current();
    if (t == NULL || m->owner != t)
        return -EPERM;
    iou__waitq *q = iou__waitq_of(&m->waiters);
    /* Hand-off: the new owner is recorded before its task is made ready. */
    m->owner = iou__waitq_empty(q) ? NULL : q->head->task;
    if (m->owner)
        iou__waitq_wake_one(q, 0);
    return 0;
}
