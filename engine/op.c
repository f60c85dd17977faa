/* Awaiting an operation: submit, park, and on interruption ask the kernel to
 * cancel but keep waiting for the completion (invariant 1). */
#include "op.h"
#include "loop.h"
#include "task.h"

#include <errno.h>

void iou__op_submit(iou_loop *l, iou__op *op)
{
    l->ops_inflight++;
    l->backend->submit(l, op);
}

void iou__op_complete(iou_loop *l, iou__op *op, int res, uint32_t flags)
{
    l->completions++;
    if (!(flags & IOU__CQE_MORE))
        l->ops_inflight--;
    op->res = res;
    op->cqe_flags = flags;
    op->done(op);
}

static void wake_waiter(iou__op *op)
{
    iou__wake(op->task);
}

static void cancel_in_kernel(iou_task *t, void *ctx)
{
    iou__op *op = ctx;
    if (op->cancel_sent)
        return;
    op->cancel_sent = true;
    t->loop->backend->cancel(t->loop, op);
}

static int await(iou_task *t, iou__op *op, iou__interrupt_fn hook)
{
    op->task = t;
    op->done = wake_waiter;
    op->cancel_sent = false;
    iou__op_submit(t->loop, op);
    int why = iou__park(t, hook, op);
    /* Only a cancelled operation reports the interruption; one that completed
     * anyway returns its result (bytes moved, a new fd) so nothing is lost. */
    if (why && op->res == -ECANCELED)
        return why;
    return op->res;
}

int iou__op_await(iou_task *t, iou__op *op)
{
    int err = iou__interrupted(t);
    if (err)
        return err;
    return await(t, op, cancel_in_kernel);
}

int iou__op_await_uninterruptible(iou_task *t, iou__op *op)
{
    return await(t, op, NULL);
}
