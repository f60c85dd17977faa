/*
 * Raw SQEs: any io_uring opcode, prepared by the caller.
 *
 * Task flavour (iou_submit_sqe): an ordinary awaited operation (iou__op_await
 * keeps the task parked until the final completion and returns the first
 * one's res), with cancel_on_more set so a multishot request is cancelled
 * after its first completion and cannot keep the task parked forever.
 *
 * Callback flavour (iou_loop_submit_sqe): a heap record, linked in the loop's
 * list of requests in flight, calls the user's function for every CQE and is
 * freed after the final one. Loop shutdown cancels each such request once and
 * refuses new ones, so the drain always ends.
 */
#include "loop.h"
#include "op.h"
#include "task.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

/* ---- preparing ---------------------------------------------------------------- */

/* The user's prep function and its argument. The backend preps the SQE inside
 * iou__op_submit, so this only needs to live during that call. */
typedef struct raw_prep {
    iou_prep_fn fn;
    void *arg;
} raw_prep;

/*
 * Calls the user's prep function, then clears the SQE flags that would break
 * iou's bookkeeping: a skipped success CQE would leave the record (and the
 * task) waiting forever, and a link would chain this SQE to whatever iou
 * submits next. iou also owns user_data (the backend sets it after this).
 */
static void prep_checked(struct io_uring_sqe *sqe, void *ctx)
{
    raw_prep *p = ctx;
    p->fn(sqe, p->arg);
    sqe->flags &= (uint8_t) ~(IOSQE_CQE_SKIP_SUCCESS | IOSQE_IO_LINK | IOSQE_IO_HARDLINK);
}

static bool has_uring(const iou_loop *l)
{
    return l->backend == &iou__backend_uring;
}

/* ---- task flavour --------------------------------------------------------------- */

int iou_submit_sqe(iou_prep_fn prep, void *arg)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return -EPERM;
    if (prep == NULL)
        return -EINVAL;
    if (!has_uring(t->loop))
        return -ENOTSUP;
    raw_prep p = {prep, arg}; /* lives until the call returns: past the submission */
    iou__op op = {.kind = IOU__OP_RAW, .aux = (void *)prep_checked, .buf = &p,
                  .cancel_on_more = true};
    return iou__op_await(t, &op);
}

/* ---- callback flavour ------------------------------------------------------------ */

typedef struct raw_req raw_req;
struct raw_req {
    iou__op op;
    iou_cqe_fn done;
    void *done_arg;
    raw_req *prev, *next; /* the loop's list of requests in flight */
};

/*
 * l->raw_ops holds the head of the list of requests in flight, with bit 0 set
 * once the loop shuts down (records are malloc'd, so bit 0 is otherwise 0).
 */
enum { CLOSING = 1 };

static raw_req *list_head(const iou_loop *l)
{
    return (raw_req *)((uintptr_t)l->raw_ops & ~(uintptr_t)CLOSING);
}

static bool closing(const iou_loop *l)
{
    return (uintptr_t)l->raw_ops & CLOSING;
}

static void set_head(iou_loop *l, raw_req *r)
{
    l->raw_ops = (void *)((uintptr_t)r | ((uintptr_t)l->raw_ops & CLOSING));
}

static void list_add(iou_loop *l, raw_req *r)
{
    raw_req *head = list_head(l);
    r->prev = NULL;
    r->next = head;
    if (head)
        head->prev = r;
    set_head(l, r);
}

static void list_del(iou_loop *l, raw_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        set_head(l, r->next);
    if (r->next)
        r->next->prev = r->prev;
}

/* Every CQE of the request: the final one (no MORE) also frees the record,
 * before the user's function runs, so that function may submit again. */
static void request_cqe(iou__op *op)
{
    raw_req *r = iou__container_of(op, raw_req, op);
    iou_cqe_fn done = r->done;
    void *arg = r->done_arg;
    int res = op->res;
    uint32_t flags = op->cqe_flags;
    if (!(flags & IOU__CQE_MORE)) {
        list_del(iou__loop(), r);
        free(r);
    }
    done(arg, res, flags);
}

int iou_loop_submit_sqe(iou_loop *l, iou_prep_fn prep, void *prep_arg, iou_cqe_fn done,
                        void *done_arg)
{
    if (l == NULL || prep == NULL || done == NULL)
        return -EINVAL;
    if (!has_uring(l))
        return -ENOTSUP;
    if (closing(l))
        return -ECANCELED; /* iou_loop_free is draining the loop */
    raw_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->op.done = request_cqe;
    r->done = done;
    r->done_arg = done_arg;
    list_add(l, r);
    raw_prep p = {prep, prep_arg}; /* the backend preps during the submission */
    r->op.kind = IOU__OP_RAW;
    r->op.aux = (void *)prep_checked;
    r->op.buf = &p;
    iou__op_submit(l, &r->op);
    r->op.buf = NULL; /* p is gone */
    return 0;
}

/* ---- shutdown ---------------------------------------------------------------------- */

/*
 * Called by iou__loop_drain before each of its runs: asks the kernel to cancel
 * every callback request in flight (once each; the drain then waits for their
 * final completions, whose callbacks still run) and refuses new requests from
 * now on, so a callback that resubmits on completion cannot keep the drain
 * going forever.
 */
void iou__raw_cancel_all(iou_loop *l)
{
    l->raw_ops = (void *)((uintptr_t)l->raw_ops | CLOSING);
    for (raw_req *r = list_head(l); r; r = r->next)
        iou__op_cancel(l, &r->op);
}
