/* File operations. Inside a task each is one SQE awaited by the task; outside
 * any task each is the ordinary blocking system call. */
#include "op.h"
#include "loop.h"
#include "debug.h"
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int iou_nop(void)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return 0;
    iou__op op = {.kind = IOU__OP_NOP};
    return iou__op_await(t, &op);
}

int iou_open(const char *path, int flags, mode_t mode)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_open");
        return (int)iou__syscall_result(open(path, flags, mode));
    }
    iou__op op = {.kind = IOU__OP_OPENAT, .fd = AT_FDCWD, .buf = (void *)path,
                  .flags = (unsigned)flags, .len = mode};
    return iou__op_await(t, &op);
}

int iou_close(int fd)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return (int)iou__syscall_result(close(fd));
    iou__op op = {.kind = IOU__OP_CLOSE, .fd = fd};
    return iou__op_await_uninterruptible(t, &op);
}

static uint64_t offset_of(int64_t off)
{
    return off < 0 ? IOU__OFF_CURRENT : (uint64_t)off;
}

ssize_t iou_read(int fd, void *buf, size_t len, int64_t off)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_read");
        return iou__syscall_result(off < 0 ? read(fd, buf, len) : pread(fd, buf, len, off));
    }
    iou__op op = {.kind = IOU__OP_READ, .fd = fd, .buf = buf, .len = len, .off = offset_of(off)};
    return iou__op_await(t, &op);
}

ssize_t iou_write(int fd, const void *buf, size_t len, int64_t off)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_write");
        return iou__syscall_result(off < 0 ? write(fd, buf, len) : pwrite(fd, buf, len, off));
    }
    iou__op op = {.kind = IOU__OP_WRITE, .fd = fd, .buf = (void *)buf, .len = len,
                  .off = offset_of(off)};
    return iou__op_await(t, &op);
}

int iou_fsync(int fd)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_fsync");
        return (int)iou__syscall_result(fsync(fd));
    }
    iou__op op = {.kind = IOU__OP_FSYNC, .fd = fd};
    return iou__op_await(t, &op);
}
