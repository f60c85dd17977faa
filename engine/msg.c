/*
 * Message operations: recvmsg / sendmsg (scatter-gather, ancillary data,
 * addresses) and the datagram pair recvfrom / sendto built on them. Inside a
 * task each is one SQE; the msghdr, its iovecs and buffers live in the
 * caller's frame, which stays put while the task is parked (invariant 1).
 * Outside a task: the plain system call.
 */
#include "loop.h"
#include "op.h"
#include "task.h"

#include <errno.h>

static ssize_t await_msg(iou_task *t, uint8_t kind, int fd, struct msghdr *msg, int flags)
{
    iou__op op;
    iou__op_prep(&op, kind, fd, msg, 0, 0);
    op.flags = (unsigned)flags;
    return iou__op_await(t, &op);
}

ssize_t iou_recvmsg(int fd, struct msghdr *msg, int flags)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return iou__syscall_result(recvmsg(fd, msg, flags));
    return await_msg(t, IOU__OP_RECVMSG, fd, msg, flags);
}

ssize_t iou_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    flags |= MSG_NOSIGNAL; /* a closed peer is -EPIPE, not a process-killing SIGPIPE */
    iou_task *t = iou__current();
    if (t == NULL)
        return iou__syscall_result(sendmsg(fd, msg, flags));
    /* The kernel only reads *msg; the op record's pointer is not const. */
    return await_msg(t, IOU__OP_SENDMSG, fd, (struct msghdr *)msg, flags);
}

ssize_t iou_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
                   socklen_t addrlen)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr msg = {.msg_name = (void *)addr, .msg_namelen = addr ? addrlen : 0,
                         .msg_iov = &iov, .msg_iovlen = 1};
    return iou_sendmsg(fd, &msg, flags);
}

ssize_t iou_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                     socklen_t *addrlen)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr msg = {.msg_name = addrlen ? addr : NULL,
                         .msg_namelen = addr && addrlen ? *addrlen : 0,
                         .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = iou_recvmsg(fd, &msg, flags);
    if (n >= 0 && addr && addrlen)
        *addrlen = msg.msg_namelen;
    return n;
}
