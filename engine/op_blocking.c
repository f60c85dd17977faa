/*
 * Every operation kind as the ordinary blocking system call. The epoll
 * backend runs what cannot wait for readiness (regular files, open, close,
 * fsync) this way on a worker thread of the pool; the call may block that
 * worker, never the loop.
 *
 * Runs on a worker thread: it touches only the record and what it points to,
 * which belong to the worker until the job's completion (pool.h).
 */
#include "op.h"

#include <errno.h>
#include <sys/socket.h>

enum { MAX_IO = 0x7ffff000 }; /* the kernel's largest single read/write */

static size_t io_len(size_t len)
{
    return len > MAX_IO ? MAX_IO : len;
}

/* The system call's raw return (-1 with errno), or an iou error (< -1). */
static long call(iou__op *op)
{
    switch (op->kind) {
    case IOU__OP_NOP:
        return 0;
    case IOU__OP_SOCKET:
        return socket(op->fd, (int)op->flags, (int)op->len);
    case IOU__OP_ACCEPT:
        return accept4(op->fd, op->buf, op->aux, (int)op->flags);
    case IOU__OP_CONNECT:
        return connect(op->fd, op->buf, (socklen_t)op->len);
    case IOU__OP_RECV:
        return recv(op->fd, op->buf, io_len(op->len), (int)op->flags);
    case IOU__OP_SEND:
    case IOU__OP_SEND_ZC: /* the copying send: nothing to wait for afterwards */
        return send(op->fd, op->buf, io_len(op->len), (int)op->flags);
    case IOU__OP_RECVMSG:
        return recvmsg(op->fd, op->buf, (int)op->flags);
    case IOU__OP_SENDMSG:
        return sendmsg(op->fd, op->buf, (int)op->flags);
    case IOU__OP_SHUTDOWN:
        return shutdown(op->fd, (int)op->flags);
    case IOU__OP_ACCEPT_MULTI: /* multishot kinds complete more than once */
    case IOU__OP_RECV_MULTI:
        return -EINVAL;
    case IOU__OP_RAW:      /* an SQE means io_uring */
    case IOU__OP_RECV_BUF: /* provided buffers live in an io_uring */
        return -ENOTSUP;
    default: /* files (open, close, read, write, fsync and the storage kinds:
              * ops_blocking_file.c); -errno, errno still set */
        return iou__file_op_blocking(op);
    }
}

long iou__op_blocking(iou__op *op)
{
    long r = call(op);
    return r == -1 ? -(long)errno : r;
}
