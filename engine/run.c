/* iou_run: asyncio.run for iou, built on the loop API. */
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <stdio.h>

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
    iou_task *first = iou__spawn(l, main, arg, &(iou_spawn_opts){.name = "main"});
    if (first == NULL) {
        iou_loop_free(l);
        return -ENOMEM;
    }
    first->site_func = "iou_run"; /* for diagnostics: "started by iou_run" */
    while (first->state != IOU__TASK_DONE) {
        err = iou__loop_run_until(l, first);
        if (err < 0)
            break;
        if (first->state == IOU__TASK_DONE || !iou__loop_idle(l))
            continue; /* (a plain iou_loop_stop() just resumes the loop) */
        /* Idle with main still parked: every task waits on something that can
         * never happen. Cancel them all so main returns; if that wakes nobody
         * (they wait without being interruptible), report the deadlock. */
        iou__cancel_all(l);
        if (iou__loop_idle(l)) {
            fprintf(stderr, "iou: deadlock: %zu task(s) wait on something that can never "
                            "happen, and cancelling them woke none\n", l->tasks_alive);
            err = -EDEADLK;
            break;
        }
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
