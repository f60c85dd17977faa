/* iou_run: asyncio.run for iou, built on the loop API. */
#include "loop.h"
#include "task.h"

#include <errno.h>

int iou_run(iou_fn main, void *arg)
{
    return iou_run_ex(main, arg, NULL);
}

int iou_run_ex(iou_fn main, void *arg, const iou_loop_opts *opts)
{
    if (main == NULL)
        return -EINVAL;
    if (iou__loop())
        return -EBUSY;
    int err;
    iou_loop *l = iou_loop_new_ex(opts, &err);
    if (l == NULL)
        return err;
    iou_task *first = iou__spawn(l, main, arg, NULL);
    if (first == NULL) {
        iou_loop_free(l);
        return -ENOMEM;
    }
    while (first->state != IOU__TASK_DONE) {
        err = iou__loop_run_until(l, first);
        if (err < 0)
            break;
        /* Idle with main still parked: every task waits on something that
         * can never happen (a deadlock). Cancel them all so main returns.
         * (A plain iou_loop_stop() just resumes the loop.) */
        if (first->state != IOU__TASK_DONE && iou__loop_idle(l))
            iou__cancel_all(l);
    }
    if (err < 0 && first->state != IOU__TASK_DONE) {
        iou_loop_free(l); /* drains: cancels, awaits the kernel's operations */
        return err;
    }
    int result = first->result;
    iou_detach(first); /* done: frees its record */
    iou_loop_free(l);
    return result;
}
