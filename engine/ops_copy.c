/*
 * copy_file_range: a copy between two files inside the kernel (page cache to
 * page cache, or a clone / server-side copy where the file system has one),
 * so the bytes never pass through user memory. io_uring has no opcode for
 * it: on both backends the call runs on the worker pool (pool.h) and the
 * task waits there, never the loop. Counted in the loop's statistics as
 * kind IOU__OP_COPY_RANGE.
 *
 * The record is on the heap, not on the caller's stack, so that a caller
 * interrupted while its copy is still queued leaves at once: the worker then
 * finds the record abandoned, skips the system call, and the loop frees it.
 * Once the system call has started the caller waits for it: the kernel
 * resolves the descriptors inside the call, and a caller that returned
 * earlier could close one and have its number reused by a file the copy
 * would then write to.
 */
#include "debug.h"
#include "loop.h"
#include "op.h"
#include "pool.h"
#include "queue.h"
#include "task.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

enum copy_state {
    QUEUED,    /* posted; no worker has taken it */
    RUNNING,   /* a worker is in (or about to enter) the system call */
    ABANDONED, /* the caller left before it started: do nothing */
};

typedef struct copy_call {
    iou__job job;
    iou__op op;          /* the arguments, as the blocking call takes them */
    iou__splice_out out; /* op.aux: the output side */
    iou_task *waiter;    /* NULL once the caller left */
    atomic_int state;
    long result;
} copy_call;

static long copy_range_blocking(const iou__op *op)
{
    loff_t in_off, out_off, *pin = NULL, *pout = NULL;
    if (op->off != IOU__OFF_CURRENT) {
        in_off = (loff_t)op->off;
        pin = &in_off;
    }
    const iou__splice_out *out = op->aux;
    if (out->off != IOU__OFF_CURRENT) {
        out_off = (loff_t)out->off;
        pout = &out_off;
    }
    return iou__syscall_result(copy_file_range(op->fd, pin, out->fd, pout, op->len, op->flags));
}

static void copy_run(iou__job *j)
{
    copy_call *c = iou__container_of(j, copy_call, job);
    int expected = QUEUED;
    if (atomic_compare_exchange_strong(&c->state, &expected, RUNNING))
        c->result = copy_range_blocking(&c->op);
}

static void copy_done(iou_loop *l, iou__job *j)
{
    copy_call *c = iou__container_of(j, copy_call, job);
    l->counters.completed[IOU__OP_COPY_RANGE]++;
    if (c->waiter)
        iou__wake(c->waiter); /* the caller reads the result and frees c */
    else
        free(c);
}

/* The caller's view of its wait, on its own stack: once the call is
 * abandoned, copy_done may free the record before the caller runs again, so
 * the caller must learn that here, not from the record. */
typedef struct copy_wait {
    copy_call *call;
    bool abandoned;
} copy_wait;

/* Cancelled or past its deadline: leave now if the copy has not started;
 * otherwise keep waiting (see the top). */
static void copy_interrupted(iou_task *t, void *ctx)
{
    copy_wait *w = ctx;
    int expected = QUEUED;
    if (!atomic_compare_exchange_strong(&w->call->state, &expected, ABANDONED))
        return;
    w->call->waiter = NULL; /* from now on the record is copy_done's to free */
    w->abandoned = true;
    iou__wake(t);
}

static long copy_in_pool(iou_task *t, const iou__op *op)
{
    int err = iou__interrupted(t);
    if (err)
        return err;
    copy_call *c = malloc(sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    *c = (copy_call){.job = {.run = copy_run, .done = copy_done}, .op = *op, .waiter = t};
    atomic_init(&c->state, QUEUED);
    c->out = *(const iou__splice_out *)op->aux;
    c->op.aux = &c->out; /* the record must not point into the caller's stack */
    err = iou__pool_post(t->loop, &c->job);
    if (err) {
        free(c);
        return err;
    }
    t->loop->counters.submitted[IOU__OP_COPY_RANGE]++;
    copy_wait w = {.call = c};
    int why = iou__park(t, copy_interrupted, &w);
    if (w.abandoned)
        return why; /* c may be gone already */
    long result = c->result;
    free(c);
    return why && result == -ECANCELED ? why : result;
}

ssize_t iou_copy_file_range(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
                            unsigned flags)
{
    if ((off_in < 0 && off_in != -1) || (off_out < 0 && off_out != -1))
        return -EINVAL;
    if (iou__is_fixed_fd(fd_in) || iou__is_fixed_fd(fd_out))
        return -EBADF; /* the pool's threads have no io_uring file table */
    iou__splice_out out = {.fd = fd_out, .off = off_out < 0 ? IOU__OFF_CURRENT : (uint64_t)off_out};
    iou__op op = {.kind = IOU__OP_COPY_RANGE, .fd = fd_in, .len = len, .flags = flags,
                  .off = off_in < 0 ? IOU__OFF_CURRENT : (uint64_t)off_in, .aux = &out};
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_copy_file_range");
        return copy_range_blocking(&op);
    }
    return copy_in_pool(t, &op);
}
