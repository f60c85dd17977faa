/*
 * Scatter-gather file I/O: readv / writev at an offset (or the file
 * position). The iovec array is read by the kernel while the operation is in
 * flight: it is the caller's, and the caller is suspended until then.
 */
#include "op.h"
#include "loop.h"
#include "read_fastpath.h"
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <sys/uio.h>

static uint64_t offset_of(int64_t off)
{
    return off < 0 ? IOU__OFF_CURRENT : (uint64_t)off;
}

static bool bad_count(int iovcnt)
{
    return iovcnt < 0 || iovcnt > IOV_MAX;
}

/* A page-cache hit returns at once; a short one is returned as it is (the
 * caller learns the rest on its next call, which then goes to the ring if
 * the data is not cached). */
ssize_t iou_readv(int fd, const struct iovec *iov, int iovcnt, int64_t off)
{
    if (bad_count(iovcnt))
        return -EINVAL;
    iou__op op;
    iou__op_prep(&op, IOU__OP_READV, fd, (void *)iov, (size_t)iovcnt, offset_of(off));
    iou_task *t = iou__current();
    if (t == NULL)
        return iou__file_op_blocking(&op);
    int err = iou__interrupted(t);
    if (err)
        return err;
    ssize_t n = iou__read_fastpath(t->loop, fd, iov, iovcnt, off);
    return n >= 0 ? n : iou__op_await(t, &op);
}

ssize_t iou_writev(int fd, const struct iovec *iov, int iovcnt, int64_t off)
{
    if (bad_count(iovcnt))
        return -EINVAL;
    iou__op op;
    iou__op_prep(&op, IOU__OP_WRITEV, fd, (void *)iov, (size_t)iovcnt, offset_of(off));
    return iou__file_op(&op);
}
