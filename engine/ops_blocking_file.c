/*
 * The blocking system call behind each file operation kind. Two users: the
 * calls made outside any task (which then behave as the plain system call),
 * and a backend without io_uring, which runs file operations on a worker
 * thread (regular files are never "ready" for epoll).
 */
#include "debug.h"
#include "op.h"
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h> /* renameat2 */
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static int64_t offset_arg(uint64_t off)
{
    return off == IOU__OFF_CURRENT ? -1 : (int64_t)off;
}

static loff_t *offset_ptr(uint64_t off, loff_t *store)
{
    if (off == IOU__OFF_CURRENT)
        return NULL;
    *store = (loff_t)off;
    return store;
}

static size_t rw_len(size_t len)
{
    return len > SSIZE_MAX ? SSIZE_MAX : len;
}

static long rw_blocking(iou__op *op)
{
    int64_t off = offset_arg(op->off);
    switch (op->kind) {
    case IOU__OP_READ:
        return off < 0 ? read(op->fd, op->buf, rw_len(op->len))
                       : pread(op->fd, op->buf, rw_len(op->len), off);
    case IOU__OP_WRITE:
        return off < 0 ? write(op->fd, op->buf, rw_len(op->len))
                       : pwrite(op->fd, op->buf, rw_len(op->len), off);
    case IOU__OP_READV: /* preadv2 with -1: the file position, as readv */
        return preadv2(op->fd, op->buf, (int)op->len, off, 0);
    default: /* IOU__OP_WRITEV */
        return pwritev2(op->fd, op->buf, (int)op->len, off, 0);
    }
}

static long splice_blocking(iou__op *op)
{
    const iou__splice_out *out = op->aux;
    if (op->kind == IOU__OP_TEE)
        return tee(op->fd, out->fd, op->len, op->flags);
    loff_t in_off, out_off;
    return splice(op->fd, offset_ptr(op->off, &in_off), out->fd, offset_ptr(out->off, &out_off),
                  op->len, op->flags);
}

/* posix_fadvise returns the error instead of setting errno. */
static long fadvise_blocking(iou__op *op)
{
    int err = posix_fadvise(op->fd, (off_t)op->off, (off_t)op->len, (int)op->flags);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

static long namespace_blocking(iou__op *op)
{
    switch (op->kind) {
    case IOU__OP_OPENAT:
        return openat(op->fd, op->buf, (int)op->flags, (mode_t)op->len);
    case IOU__OP_STATX:
        return statx(op->fd, op->buf, (int)op->flags, (unsigned)op->len, op->aux);
    case IOU__OP_UNLINKAT:
        return unlinkat(op->fd, op->buf, (int)op->flags);
    case IOU__OP_RENAMEAT:
        return renameat2(op->fd, op->buf, (int)(uint32_t)op->off, op->aux, op->flags);
    case IOU__OP_LINKAT:
        return linkat(op->fd, op->buf, (int)(uint32_t)op->off, op->aux, (int)op->flags);
    case IOU__OP_SYMLINKAT:
        return symlinkat(op->buf, op->fd, op->aux);
    default: /* IOU__OP_MKDIRAT */
        return mkdirat(op->fd, op->buf, (mode_t)op->len);
    }
}

static long call(iou__op *op)
{
    switch (op->kind) {
    case IOU__OP_OPENAT: case IOU__OP_STATX: case IOU__OP_UNLINKAT:
    case IOU__OP_RENAMEAT: case IOU__OP_MKDIRAT: case IOU__OP_LINKAT: case IOU__OP_SYMLINKAT:
        return namespace_blocking(op);
    case IOU__OP_READ: case IOU__OP_WRITE: case IOU__OP_READV: case IOU__OP_WRITEV:
        return rw_blocking(op);
    case IOU__OP_SPLICE: case IOU__OP_TEE:
        return splice_blocking(op);
    case IOU__OP_CLOSE:
        return close(op->fd);
    case IOU__OP_FSYNC:
        return op->flags ? fdatasync(op->fd) : fsync(op->fd);
    case IOU__OP_FDATASYNC:
        return fdatasync(op->fd);
    case IOU__OP_FALLOCATE:
        return fallocate(op->fd, (int)op->flags, (off_t)op->off, (off_t)op->len);
    case IOU__OP_FTRUNCATE:
        return ftruncate(op->fd, (off_t)op->off);
    case IOU__OP_SYNC_RANGE:
        return sync_file_range(op->fd, (off_t)op->off, (off_t)op->len, op->flags);
    case IOU__OP_FADVISE:
        return fadvise_blocking(op);
    default: /* registered buffers need io_uring; not a file operation */
        errno = ENOTSUP;
        return -1;
    }
}

long iou__file_op_blocking(iou__op *op)
{
    return iou__syscall_result(call(op));
}

long iou__file_op(iou__op *op)
{
    iou_task *t = iou__current();
    if (t)
        return iou__op_await(t, op);
    iou__check_blocking(iou_op_kind_name(op->kind));
    return iou__file_op_blocking(op);
}
