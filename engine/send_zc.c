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

ssize_t iou_send_zc(int fd, const void *buf, size_t len, int flags)
{
    flags |= MSG_NOSIGNAL;
    iou_task *t = iou__current();
    if (t == NULL) /* the plain (copying) send: nothing to wait for */
        return iou__syscall_result(send(fd, buf, len, flags));
    /* iou__op_await keeps the task parked until the notification (the final
     * completion) and returns the first completion's result. A cancellation
     * cancels a send that has not happened; the notification of one that
     * happened cannot be hurried. */
    iou__op op;
    iou__op_prep(&op, IOU__OP_SEND_ZC, fd, (void *)buf, len, 0);
    op.flags = (unsigned)flags;
    return iou__op_await(t, &op);
}
