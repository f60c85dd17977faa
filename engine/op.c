/* Awaiting an operation: submit, park, and on interruption ask the kernel to
 * cancel but keep waiting for the completion (invariant 1). */
#include "op.h"
#include "debug.h"
#include "fault.h"
#include "loop.h"
#include "task.h"

#include <errno.h>

static void wake_waiter(iou__op *op);

/* The task awaiting op, or NULL for a callback's operation (for the trace). */
static iou_task *waiter_of(const iou__op *op)
{
    return op->done == wake_waiter ? op->task : NULL;
}

/* Tracing and fault injection see each submission first. */
__attribute__((cold, noinline)) static void submit_hooked(iou_loop *l, iou__op *op)
{
    if (iou__tracing(l))
        iou__trace_submit(l, op, waiter_of(op));
    if (l->fault && iou__fault_submit(l, op))
        return; /* failed on purpose: a stand-in completes it */
    l->backend->submit(l, op);
}

void iou__op_submit(iou_loop *l, iou__op *op)
{
    l->ops_inflight++;
    l->counters.submitted[op->kind]++;
    if (__builtin_expect(l->dbg & IOU__DBG_SUBMIT_HOOKS, 0)) {
        submit_hooked(l, op); /* one test of a byte when neither is on */
        return;
    }
    l->backend->submit(l, op);
}

/* Out of line, so the common path stays small: the trace line, then the
 * completion as usual. */
__attribute__((cold)) void iou__op_complete_traced(iou_loop *l, iou__op *op, int res,
                                                   uint32_t flags)
{
    iou__trace_complete(l, op, waiter_of(op), res, flags);
    iou__op_deliver(l, op, res, flags);
}

void iou__op_cancel(iou_loop *l, iou__op *op)
{
    if (op->cancel_sent)
        return;
    op->cancel_sent = true;
    l->counters.cancels++;
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

/* The park hook of an awaited operation. Both awaits park with ctx = the
 * operation (the uninterruptible one with no hook): iou_dump relies on it. */
void iou__op_interrupt(iou_task *t, void *ctx)
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
    return await(t, op, iou__op_interrupt);
}

int iou__op_await_uninterruptible(iou_task *t, iou__op *op)
{
    return await(t, op, NULL);
}
