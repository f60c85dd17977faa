/*
 * Event for tasks (asyncio.Event): a flag; waiters sleep while it is clear and
 * all wake when it is set. Setting wakes every waiter with 0 before it returns,
 * so a clear() right after set() does not strand anyone: they were released.
 */
#include "loop.h"
#include "task.h"
#include "waitq.h"

#include <errno.h>

void iou_event_init(iou_event *e)
{
    e->set = false;
    e->waiters = (iou_waitlist){0};
}

int iou_event_wait(iou_event *e)
{
    if (e->set)
        return 0;
    if (iou__current() == NULL)
        return -EPERM;
    iou__waiter w;
    w.what = "event";
    return iou__waitq_wait(iou__waitq_of(&e->waiters), &w);
}

void iou_event_set(iou_event *e)
{
    e->set = true;
    iou__waitq_wake_all(iou__waitq_of(&e->waiters), 0);
}

void iou_event_clear(iou_event *e)
{
    e->set = false;
}

bool iou_event_is_set(const iou_event *e)
{
    return e->set;
}
