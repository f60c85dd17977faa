/* File operations. Inside a task each is one SQE awaited by the task; outside
 * any task each is the ordinary blocking system call. */
#include "op.h"
#include "loop.h"
#include "debug.h"
#include "read_fastpath.h"
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

int iou_nop(void)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return 0;
    iou__op op;
    iou__op_prep(&op, IOU__OP_NOP, 0, NULL, 0, 0);
    return iou__op_await(t, &op);
}

int iou_open(const char *path, int flags, mode_t mode)
{
    if (iou__current() == NULL)
        iou__check_blocking("iou_open");
    return iou_openat(AT_FDCWD, path, flags, mode);
}

int iou_close(int fd)
{
    iou__read_fastpath_forget(fd);
    iou_task *t = iou__current();
    if (t == NULL) {
        iou_loop *l = iou__loop();
        if (l && l->backend->forget)
            l->backend->forget(l, fd); /* the epoll backend's kept registration */
        return (int)iou__syscall_result(close(fd));
    }
    iou__op op;
    iou__op_prep(&op, IOU__OP_CLOSE, fd, NULL, 0, 0);
    return iou__op_await_uninterruptible(t, &op);
}

static uint64_t offset_of(int64_t off)
{
    return off < 0 ? IOU__OFF_CURRENT : (uint64_t)off;
}

static ssize_t ring_read(iou_task *t, int fd, void *buf, size_t len, int64_t off)
{
    iou__op op;
    iou__op_prep(&op, IOU__OP_READ, fd, buf, len, offset_of(off));
    return iou__op_await(t, &op);
}

/* A page-cache hit is served without the ring. A partial hit reads the rest
 * through the ring (so a short count still means end of file, as pread's);
 * if that fails, the bytes already read are what the call returns. */
static ssize_t read_cached_first(iou_task *t, int fd, char *buf, size_t len, int64_t off)
{
    int err = iou__interrupted(t); /* an interrupted task reads nothing, cached or not */
    if (err)
        return err;
    struct iovec iov = {buf, len};
    ssize_t n = iou__read_fastpath(t->loop, fd, &iov, 1, off);
    if (n < 0)
        return ring_read(t, fd, buf, len, off);
    if (n == 0 || (size_t)n == len)
        return n;
    ssize_t more = ring_read(t, fd, buf + n, len - (size_t)n, off < 0 ? off : off + n);
    return more > 0 ? n + more : n;
}

ssize_t iou_read(int fd, void *buf, size_t len, int64_t off)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_read");
        return iou__syscall_result(off < 0 ? read(fd, buf, len) : pread(fd, buf, len, off));
    }
    if (len == 0 || !t->loop->read_fastpath)
        return ring_read(t, fd, buf, len, off);
    return read_cached_first(t, fd, buf, len, off);
}

ssize_t iou_write(int fd, const void *buf, size_t len, int64_t off)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_write");
        return iou__syscall_result(off < 0 ? write(fd, buf, len) : pwrite(fd, buf, len, off));
    }
    iou__op op;
    iou__op_prep(&op, IOU__OP_WRITE, fd, (void *)buf, len, offset_of(off));
    return iou__op_await(t, &op);
}

int iou_fsync(int fd)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_fsync");
        return (int)iou__syscall_result(fsync(fd));
    }
    iou__op op;
    iou__op_prep(&op, IOU__OP_FSYNC, fd, NULL, 0, 0);
    return iou__op_await(t, &op);
}
