/*
 * splice and tee: moving bytes between a pipe and another fd inside the
 * kernel. io_uring runs them in its worker threads (a pipe may have to wait),
 * so a task waiting on one never blocks the loop.
 */
#include "op.h"

#include <fcntl.h>

static uint64_t offset_of(int64_t off)
{
    return off < 0 ? IOU__OFF_CURRENT : (uint64_t)off;
}

/* A task simply waits: SPLICE_F_NONBLOCK would turn that into -EAGAIN. */
static unsigned waiting_flags(unsigned flags)
{
    return flags & ~(unsigned)SPLICE_F_NONBLOCK;
}

ssize_t iou_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
                   unsigned flags)
{
    iou__splice_out out = {.fd = fd_out, .off = offset_of(off_out)};
    iou__op op = {.kind = IOU__OP_SPLICE, .fd = fd_in, .off = offset_of(off_in), .aux = &out,
                  .len = len, .flags = waiting_flags(flags)};
    return iou__file_op(&op);
}

ssize_t iou_tee(int fd_in, int fd_out, size_t len, unsigned flags)
{
    iou__splice_out out = {.fd = fd_out, .off = IOU__OFF_CURRENT};
    iou__op op = {.kind = IOU__OP_TEE, .fd = fd_in, .aux = &out, .len = len,
                  .flags = waiting_flags(flags)};
    return iou__file_op(&op);
}
