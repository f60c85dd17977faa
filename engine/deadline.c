/*
 * Deadlines: a per-task scope stack kept in one word, t->deadline.
 *
 * Every blocking call already honours t->deadline (iou__interrupted checks it
 * before blocking, iou__park arms the task's deadline timer while parked), so
 * a scope only narrows that word and restores it afterwards. Narrowing with
 * min() is what makes scopes nest: an inner scope can tighten the deadline,
 * never extend it. The stack itself lives in the callers' frames, as the
 * values push returns.
 *
 * The word only changes while its task runs, never while it is parked, so an
 * armed deadline timer always matches t->deadline.
 */
#include "loop.h"
#include "task.h"

#include <errno.h>

_Static_assert(IOU_NEVER == IOU__NEVER, "the public and internal \"no deadline\" agree");

uint64_t iou_deadline_push(uint64_t abs_ns)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return IOU_NEVER;
    uint64_t previous = t->deadline;
    if (abs_ns < previous)
        t->deadline = abs_ns;
    return previous;
}

void iou_deadline_pop(uint64_t previous)
{
    iou_task *t = iou__current();
    if (t)
        t->deadline = previous;
}

uint64_t iou_deadline(void)
{
    iou_task *t = iou__current();
    return t ? t->deadline : IOU_NEVER;
}

int iou_timeout(uint64_t ns, iou_fn fn, void *arg)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return -EPERM;
    if (fn == NULL)
        return -EINVAL;
    uint64_t previous = iou_deadline_push(iou__time_after(iou__loop_now(t->loop), ns));
    int result = fn(arg);
    iou_deadline_pop(previous);
    return result;
}
