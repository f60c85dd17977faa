/* Socket operations: one SQE each inside a task, the plain system call outside. */
#include "op.h"
#include "loop.h"
#include "debug.h"
#include "task.h"

#include <errno.h>
#include <sys/socket.h>

int iou_socket(int domain, int type, int protocol)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return (int)iou__syscall_result(socket(domain, type, protocol));
    iou__op op;
    iou__op_prep(&op, IOU__OP_SOCKET, domain, NULL, (size_t)protocol, 0);
    op.flags = (unsigned)type;
    return iou__op_await(t, &op);
}

int iou_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_accept");
        return (int)iou__syscall_result(accept4(fd, addr, addrlen, SOCK_CLOEXEC));
    }
    iou__op op;
    iou__op_prep(&op, IOU__OP_ACCEPT, fd, addr, 0, 0);
    op.aux = addrlen;
    op.flags = SOCK_CLOEXEC;
    return iou__op_await(t, &op);
}

int iou_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_connect");
        return (int)iou__syscall_result(connect(fd, addr, addrlen));
    }
    iou__op op;
    iou__op_prep(&op, IOU__OP_CONNECT, fd, (void *)addr, addrlen, 0);
    return iou__op_await(t, &op);
}

ssize_t iou_recv(int fd, void *buf, size_t len, int flags)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_recv");
        return iou__syscall_result(recv(fd, buf, len, flags));
    }
    iou__op op;
    iou__op_prep(&op, IOU__OP_RECV, fd, buf, len, 0);
    op.flags = (unsigned)flags;
    return iou__op_await(t, &op);
}

ssize_t iou_send(int fd, const void *buf, size_t len, int flags)
{
    flags |= MSG_NOSIGNAL; /* a closed peer is -EPIPE, not a process-killing SIGPIPE */
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_send");
        return iou__syscall_result(send(fd, buf, len, flags));
    }
    iou__op op;
    iou__op_prep(&op, IOU__OP_SEND, fd, (void *)buf, len, 0);
    op.flags = (unsigned)flags;
    return iou__op_await(t, &op);
}
