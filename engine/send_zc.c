/*
 * Zero-copy send (IORING_OP_SEND_ZC). The kernel pins the caller's pages
 * instead of copying them and answers twice: first with the result (flagged
 * MORE), later, once the network stack has let go of the pages, with a
 * notification. Only then may the buffer change, so the task stays parked
 * until that final completion, also when it is cancelled meanwhile
 * (invariant 1): when iou_send_zc returns, the buffer is the caller's again.
 */
#include "loop.h"
#include "op.h"
#include "task.h"

#include <errno.h>

enum { MAX_IO = 0x7ffff000 }; /* the kernel's largest single transfer */

typedef struct zc_wait {
    iou__op op;
    int res;       /* the first completion's: bytes sent or -errno */
    bool have_res;
} zc_wait;

static void zc_completed(iou__op *op)
{
    zc_wait *w = iou__container_of(op, zc_wait, op);
    if (!w->have_res) {
        w->res = op->res;
        w->have_res = true;
    }
    if (op->cqe_flags & IOU__CQE_MORE)
        return; /* the notification follows: the pages are still the kernel's */
    iou__wake(op->task);
}

/* Cancels the send if it has not happened yet; the notification of a send
 * that happened cannot be hurried, so the task keeps waiting for it. */
static void zc_interrupted(iou_task *t, void *ctx)
{
    iou__op *op = ctx;
    if (op->cancel_sent)
        return;
    op->cancel_sent = true;
    t->loop->backend->cancel(t->loop, op);
}

ssize_t iou_send_zc(int fd, const void *buf, size_t len, int flags)
{
    flags |= MSG_NOSIGNAL;
    iou_task *t = iou__current();
    if (t == NULL) { /* the plain (copying) send: nothing to wait for */
        ssize_t n = send(fd, buf, len, flags);
        return n < 0 ? -errno : n;
    }
    int err = iou__interrupted(t);
    if (err)
        return err;
    zc_wait w = {.op = {.kind = IOU__OP_SEND_ZC, .fd = fd, .buf = (void *)buf,
                        .len = len > MAX_IO ? MAX_IO : len, .flags = (unsigned)flags,
                        .task = t, .done = zc_completed}};
    iou__op_submit(t->loop, &w.op);
    int why = iou__park(t, zc_interrupted, &w.op);
    if (why && w.res == -ECANCELED)
        return why;
    return w.res;
}
