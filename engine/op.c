/* Awaiting an operation: submit, park, and on interruption ask the kernel to
 * cancel but keep waiting for the completion (invariant 1). */
#include "op.h"
#include "fault.h"
#include "loop.h"
#include "task.h"

#include <errno.h>

void iou__op_submit(iou_loop *l, iou__op *op)
{
    l->ops_inflight++;
    if (__builtin_expect(l->fault != NULL, 0) && iou__fault_submit(l, op))
        return; /* failed on purpose: a stand-in completes it */
    l->backend->submit(l, op);
}

void iou__op_complete(iou_loop *l, iou__op *op, int res, uint32_t flags)
{
    if (!(flags & IOU__CQE_MORE))
        l->ops_inflight--;
    op->res = res;
    op->cqe_flags = flags;
    op->done(op);
}

void iou__op_cancel(iou_loop *l, iou__op *op)
{
    if (op->cancel_sent)
        return;
    op->cancel_sent = true;
    l->backend->cancel(l, op);
}

/* A completion flagged MORE: another follows, and the record (and buffer)
 * stay the kernel's until it does. The first one carries the result. */
static void more_follows(iou__op *op)
{
    if (!op->saw_more) {
        op->saw_more = true;
        op->first_res = op->res;
    }
    if (op->cancel_on_more)
        iou__op_cancel(op->task->loop, op);
}

static void wake_waiter(iou__op *op)
{
    if (op->cqe_flags & IOU__CQE_MORE) {
        more_follows(op);
        return;
    }
    iou__wake(op->task);
}

static void cancel_in_kernel(iou_task *t, void *ctx)
{
    iou__op_cancel(t->loop, ctx);
}

static int await(iou_task *t, iou__op *op, iou__interrupt_fn hook)
{
    op->task = t;
    op->done = wake_waiter;
    op->cancel_sent = false;
    op->saw_more = false;
    iou__op_submit(t->loop, op);
    int why = iou__park(t, hook, op);
    int res = op->saw_more ? op->first_res : op->res;
    /* Only a cancelled operation reports the interruption; one that completed
     * anyway returns its result (bytes moved, a new fd) so nothing is lost. */
    if (why && res == -ECANCELED)
        return why;
    return res;
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
