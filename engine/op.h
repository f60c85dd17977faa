/*
 * Operation records. A blocked task's record lives on its own stack: the task
 * stays parked until the completion is reaped, so the record, its buffer and
 * everything it points to outlive the kernel's use of them (invariant 1), and
 * the hot path allocates nothing (invariant 2).
 */
#ifndef IOU_OP_H
#define IOU_OP_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct iou_loop iou_loop;
typedef struct iou_task iou_task;

enum iou__op_kind {
    IOU__OP_NOP,
    IOU__OP_OPENAT,  /* fd = dirfd, buf = path, flags = open flags, len = mode */
    IOU__OP_CLOSE,   /* fd */
    IOU__OP_READ,    /* fd, buf, len, off (IOU__OFF_CURRENT: file position) */
    IOU__OP_WRITE,   /* fd, buf, len, off */
    IOU__OP_FSYNC,   /* fd, flags = fsync flags */
    IOU__OP_SOCKET,  /* fd = domain, flags = type, len = protocol */
    IOU__OP_ACCEPT,  /* fd, buf = addr, aux = addrlen pointer, flags */
    IOU__OP_CONNECT, /* fd, buf = addr, len = addrlen */
    IOU__OP_RECV,    /* fd, buf, len, flags */
    IOU__OP_SEND,    /* fd, buf, len, flags */
    IOU__OP_RAW,     /* aux = iou_prep_fn, buf = its argument (io_uring only) */
    IOU__OP_ACCEPT_MULTI, /* fd, flags: multishot accept, one completion per connection */
    IOU__OP_RECV_BUF,     /* fd, len (0 = buffer size), flags, off = buffer group: the
                             kernel picks a provided buffer (CQE flags carry its id).
                             Polled first, so an idle socket never takes a buffer and
                             -ENOBUFS only means "data waiting, ring empty" */
    IOU__OP_RECV_MULTI,   /* as RECV_BUF, multishot: one completion per arrival */
    IOU__OP_RECVMSG,      /* fd, buf = struct msghdr *, flags */
    IOU__OP_SENDMSG,      /* fd, buf = struct msghdr *, flags */
    IOU__OP_SHUTDOWN,     /* fd, flags = how */
    IOU__OP_SEND_ZC,      /* fd, buf, len, flags, off = zero-copy flags: a second CQE
                             (notification) says the buffer is free again */
    /* Files: metadata, vectors, registered resources (ops_fs.c, ops_vec.c,
     * fixed_buf.c). Blocking equivalents: iou__file_op_blocking(). */
    IOU__OP_STATX,        /* fd = dirfd, buf = path, flags, len = mask, aux = struct statx * */
    IOU__OP_FALLOCATE,    /* fd, flags = mode, off, len */
    IOU__OP_FTRUNCATE,    /* fd, off = the new length (IORING_OP_FTRUNCATE, kernel 6.9) */
    IOU__OP_UNLINKAT,     /* fd = dirfd, buf = path, flags */
    IOU__OP_RENAMEAT,     /* fd = olddirfd, buf = oldpath, off = (uint32_t)newdirfd,
                             aux = newpath, flags */
    IOU__OP_MKDIRAT,      /* fd = dirfd, buf = path, len = mode */
    IOU__OP_READV,        /* fd, buf = const struct iovec *, len = iovcnt, off */
    IOU__OP_WRITEV,       /* fd, buf = const struct iovec *, len = iovcnt, off */
    IOU__OP_FDATASYNC,    /* fd */
    IOU__OP_SYNC_RANGE,   /* fd, off, len, flags (sync_file_range) */
    IOU__OP_FADVISE,      /* fd, off, len, flags = advice */
    IOU__OP_SPLICE,       /* fd = fd_in, off = off_in, aux = iou__splice_out *, len, flags */
    IOU__OP_TEE,          /* fd = fd_in, aux = iou__splice_out * (off unused), len, flags */
    IOU__OP_READ_FIXED,   /* fd, buf, len, off, flags = registered buffer index */
    IOU__OP_WRITE_FIXED,  /* fd, buf, len, off, flags = registered buffer index */
    IOU__OP_LINKAT,       /* fd = olddirfd, buf = oldpath, off = (uint32_t)newdirfd,
                             aux = newpath, flags */
    IOU__OP_SYMLINKAT,    /* buf = target, fd = newdirfd, aux = linkpath */
    IOU__OP_COPY_RANGE,   /* fd = fd_in, off = off_in, aux = iou__splice_out *, len, flags:
                             copy_file_range, run on the worker pool by ops_copy.c on every
                             backend (no io_uring opcode); never given to a backend */
    IOU__OP_KINDS
};

#define IOU__OFF_CURRENT UINT64_MAX

/* The output side of a splice or tee (IOU__OP_SPLICE / IOU__OP_TEE aux). */
typedef struct iou__splice_out {
    int fd;
    uint64_t off; /* IOU__OFF_CURRENT: none (pipes, or the file position) */
} iou__splice_out;


/* Completion flag: more completions follow for this operation (multishot).
 * Equal to IORING_CQE_F_MORE, so the io_uring backend passes flags through. */
#define IOU__CQE_MORE (1u << 1)

/*
 * An operation record has three kinds of field:
 *  - the request: kind, fd, flags, buf, len, off, aux (what each kind reads:
 *    the enum above), cancel_on_more, and the flags cancel_sent and saw_more
 *    (false at the start): set by whoever makes the record;
 *  - done and task: set by the submitter (iou__op_await, or the callback
 *    layer's own submitters) before iou__op_submit;
 *  - the outputs: res, cqe_flags (set by each completion before done runs),
 *    first_res (with saw_more), and the be_* fields (the backend's own while
 *    the operation is in flight: the epoll backend's queue links, its state,
 *    bytes a MSG_WAITALL transfer moved so far).
 * Only the request needs initialising: iou__op_prep does that on the hot
 * paths; a designated initialiser ({.kind = ...}, clearing everything) is as
 * correct and fine elsewhere.
 */
typedef struct iou__op iou__op;
struct iou__op {
    uint8_t kind;
    bool cancel_sent;
    bool saw_more;       /* a completion flagged IOU__CQE_MORE arrived: first_res is set */
    bool cancel_on_more; /* awaited multishot: cancel after the first completion */
    int fd;
    int res;            /* the completion's result: count or negative errno */
    uint32_t cqe_flags; /* flags of the last completion */
    unsigned flags;
    int first_res;      /* with saw_more: the first completion's result */
    void *buf;
    size_t len;
    uint64_t off;
    void *aux;
    void (*done)(iou__op *op); /* called once with res set, from the reap loop */
    iou_task *task;            /* the waiting task, for iou__op_await */
    iou__op *be_next, *be_prev;
    uint32_t be_state;
    uint32_t be_done;
};

/*
 * Sets op's whole request, as io_uring_prep_rw sets an SQE's common fields:
 * kind, fd, buf, len, off; flags 0 and aux NULL (callers whose kind uses them
 * set them after), no cancel requested, no MORE seen. Field by field on
 * purpose: clearing the 96-byte record, as a designated initialiser does,
 * compiles to a `rep stos` that cost ~4 ns per operation (NOP benchmark).
 */
static inline void iou__op_prep(iou__op *op, uint8_t kind, int fd, void *buf, size_t len,
                                uint64_t off)
{
    op->kind = kind;
    op->cancel_sent = false;
    op->saw_more = false;
    op->cancel_on_more = false;
    op->fd = fd;
    op->flags = 0;
    op->buf = buf;
    op->len = len;
    op->off = off;
    op->aux = NULL;
}

/* Queues op on l's backend and counts it in flight until its final completion. */
void iou__op_submit(iou_loop *l, iou__op *op);

/* Asks the backend to cancel op, at most once per operation; op still
 * completes (perhaps successfully). */
void iou__op_cancel(iou_loop *l, iou__op *op);

/* An ordinary system call's return value as iou returns it: -errno on failure. */
static inline long iou__syscall_result(long r)
{
    return r < 0 ? -(long)errno : r;
}

/* iou__op_complete, which the backends call for each completion, is inline
 * in loop.h (it counts in the loop's fields). */

/* Performs op as the ordinary blocking system call (op_blocking.c): what the
 * epoll backend runs on the worker pool. Returns the result as a completion
 * would carry it (count, fd, or negative errno); -ENOTSUP for io_uring-only
 * kinds. Touches only op and what it points to (safe on a worker thread). */
long iou__op_blocking(iou__op *op);

/* Submits op for the running task t and parks until its final completion
 * (for a request that completes more than once, e.g. zero-copy send's
 * notification, the task stays parked until the kernel lets go; the result
 * is the first completion's); the kernel is asked to cancel it if t is
 * cancelled or its deadline passes. Returns the
 * result, or the interruption (-ECANCELED / -ETIMEDOUT) if that is why the
 * operation ended. Checks for a pending interruption first. */
int iou__op_await(iou_task *t, iou__op *op);

/* As iou__op_await, but neither cancellation nor deadlines stop it (close). */
int iou__op_await_uninterruptible(iou_task *t, iou__op *op);

/* The fd argument is a registered-file handle (IOU_FIXED_FD | slot): the
 * operation uses the loop's file table, not the process's fd table. */
#define IOU__FIXED_FD (1 << 30) /* == IOU_FIXED_FD */
static inline bool iou__is_fixed_fd(int fd)
{
    return fd >= 0 && (fd & IOU__FIXED_FD);
}

/* The blocking system call equivalent to a file operation (for the paths
 * outside a task and for backends without io_uring). Returns the result or
 * -errno; -ENOTSUP for kinds that need io_uring (registered buffers) and
 * for non-file kinds. A registered-file handle gives -EBADF. */
long iou__file_op_blocking(iou__op *op);

/* Runs a file operation: awaited by the running task, or outside any task
 * the blocking system call. Returns the result or -errno. */
long iou__file_op(iou__op *op);

#endif
