/*
 * The file system namespace and a file's size: openat, statx, unlink,
 * rename, mkdir, fallocate, ftruncate. Each is one operation awaited by the
 * running task, or outside any task the system call (iou__file_op).
 */
#include "op.h"
#include "backend.h"
#include "loop.h"
#include "read_fastpath.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef IORING_OP_FTRUNCATE
#define IORING_OP_FTRUNCATE 55 /* kernel 6.9; liburing 2.3 predates it */
#endif

int iou_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    iou__op op = {.kind = IOU__OP_OPENAT, .fd = dirfd, .buf = (void *)path,
                  .flags = (unsigned)flags, .len = mode};
    int fd = (int)iou__file_op(&op);
    iou__read_fastpath_forget(fd); /* a new file under a number seen before */
    return fd;
}

int iou_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st)
{
    iou__op op = {.kind = IOU__OP_STATX, .fd = dirfd, .buf = (void *)path,
                  .flags = (unsigned)flags, .len = mask, .aux = st};
    return (int)iou__file_op(&op);
}

int iou_unlinkat(int dirfd, const char *path, int flags)
{
    iou__op op = {.kind = IOU__OP_UNLINKAT, .fd = dirfd, .buf = (void *)path,
                  .flags = (unsigned)flags};
    return (int)iou__file_op(&op);
}

int iou_unlink(const char *path)
{
    return iou_unlinkat(AT_FDCWD, path, 0);
}

int iou_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                 unsigned flags)
{
    iou__op op = {.kind = IOU__OP_RENAMEAT, .fd = olddirfd, .buf = (void *)oldpath,
                  .off = (uint32_t)newdirfd, .aux = (void *)newpath, .flags = flags};
    return (int)iou__file_op(&op);
}

int iou_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
    iou__op op = {.kind = IOU__OP_LINKAT, .fd = olddirfd, .buf = (void *)oldpath,
                  .off = (uint32_t)newdirfd, .aux = (void *)newpath, .flags = (unsigned)flags};
    return (int)iou__file_op(&op);
}

int iou_symlinkat(const char *target, int newdirfd, const char *linkpath)
{
    iou__op op = {.kind = IOU__OP_SYMLINKAT, .buf = (void *)target, .fd = newdirfd,
                  .aux = (void *)linkpath};
    return (int)iou__file_op(&op);
}

int iou_mkdirat(int dirfd, const char *path, mode_t mode)
{
    iou__op op = {.kind = IOU__OP_MKDIRAT, .fd = dirfd, .buf = (void *)path, .len = mode};
    return (int)iou__file_op(&op);
}

int iou_fallocate(int fd, int mode, int64_t off, int64_t len)
{
    if (off < 0 || len <= 0)
        return -EINVAL; /* the SQE carries them unsigned: check as the syscall does */
    iou__op op = {.kind = IOU__OP_FALLOCATE, .fd = fd, .flags = (unsigned)mode,
                  .off = (uint64_t)off, .len = (size_t)len};
    return (int)iou__file_op(&op);
}

/* 1: the running kernel has IORING_OP_FTRUNCATE, -1: it has not, 0: not asked
 * yet. One answer per process: the kernel is the same for every ring. */
static atomic_int ftruncate_op_state;

static bool ring_has_ftruncate(struct io_uring *ring)
{
    int state = atomic_load_explicit(&ftruncate_op_state, memory_order_relaxed);
    if (state == 0) {
        struct io_uring_probe *p = io_uring_get_probe_ring(ring);
        state = p && io_uring_opcode_supported(p, IORING_OP_FTRUNCATE) ? 1 : -1;
        io_uring_free_probe(p);
        atomic_store_explicit(&ftruncate_op_state, state, memory_order_relaxed);
    }
    return state > 0;
}

int iou_ftruncate(int fd, int64_t len)
{
    if (len < 0)
        return -EINVAL;
    iou__op op = {.kind = IOU__OP_FTRUNCATE, .fd = fd, .off = (uint64_t)len};
    iou_loop *l = iou__loop();
    struct io_uring *ring = l ? iou__uring(l) : NULL;
    /* Older kernel: the system call, in place (a metadata update). A
     * registered-file handle cannot be served that way. */
    if (ring && !ring_has_ftruncate(ring))
        return iou__is_fixed_fd(fd) ? -EOPNOTSUPP : (int)iou__file_op_blocking(&op);
    return (int)iou__file_op(&op);
}
