/*
 * Socket options and shutdown. Options never wait, so they are plain system
 * calls returning -errno. Shutdown is one SQE inside a task, ordered with
 * the task's other ring operations; like close it is cleanup, so a
 * cancellation does not stop it (it never waits for the peer).
 */
#include "loop.h"
#include "op.h"
#include "task.h"

#include <errno.h>

int iou_setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    return setsockopt(fd, level, name, value, len) < 0 ? -errno : 0;
}

int iou_getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{
    return getsockopt(fd, level, name, value, len) < 0 ? -errno : 0;
}

int iou_setsockopt_int(int fd, int level, int name, int value)
{
    return iou_setsockopt(fd, level, name, &value, sizeof(value));
}

int iou_getsockopt_int(int fd, int level, int name, int *value)
{
    int v = 0;
    socklen_t len = sizeof(v);
    int err = iou_getsockopt(fd, level, name, &v, &len);
    if (err == 0 && value)
        *value = v;
    return err;
}

int iou_shutdown(int fd, int how)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return shutdown(fd, how) < 0 ? -errno : 0;
    iou__op op;
    iou__op_prep(&op, IOU__OP_SHUTDOWN, fd, NULL, 0, 0);
    op.flags = (unsigned)how;
    return iou__op_await_uninterruptible(t, &op);
}
