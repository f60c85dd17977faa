/*
 * IOU_TRACE=1 (or iou_loop_opts.trace): one stderr line per operation
 * submitted and per completion, e.g.
 *   iou: trace: submit recv fd=5 task 'reader'
 *   iou: trace: done   recv fd=5 res=5 task 'reader' 41.2 us
 * The latency is measured for operations a task awaits (the task holds the
 * submission time: it awaits one operation at a time); callback operations
 * (multishot stream receives, raw SQEs with a callback) have none.
 */
#include "debug.h"
#include "remote.h"

#include <stdio.h>

/* The fd field of kinds whose op->fd is not a file descriptor. */
static bool has_fd(const iou__op *op)
{
    return op->kind != IOU__OP_NOP && op->kind != IOU__OP_SOCKET && op->kind != IOU__OP_RAW &&
           op->kind != IOU__OP_OPENAT;
}

static void put_op(const iou__op *op, char *buf, size_t len)
{
    if (has_fd(op))
        snprintf(buf, len, "%s fd=%d", iou_op_kind_name(op->kind), op->fd);
    else
        snprintf(buf, len, "%s", iou_op_kind_name(op->kind));
}

void iou__trace_submit(iou_loop *l, iou__op *op, iou_task *t)
{
    char what[64];
    put_op(op, what, sizeof(what));
    if (t == NULL) {
        fprintf(stderr, "iou: trace: submit %s callback\n", what);
        return;
    }
    t->trace_start = iou__clock();
    (void)l;
    fprintf(stderr, "iou: trace: submit %s task '%s'\n", what, iou__task_name(t));
}

void iou__trace_complete(iou_loop *l, iou__op *op, iou_task *t, int res, uint32_t flags)
{
    if (iou__remote_is_wake_op(l, op))
        return;
    char what[64];
    put_op(op, what, sizeof(what));
    char more[96];
    snprintf(more, sizeof(more), "%s%s%s%s", res < 0 ? " (" : "", res < 0 ? iou_strerror(res) : "",
             res < 0 ? ")" : "", flags & IOU__CQE_MORE ? " (more follow)" : "");
    if (t == NULL) {
        fprintf(stderr, "iou: trace: done   %s res=%d%s callback\n", what, res, more);
        return;
    }
    double us = (double)(iou__clock() - t->trace_start) / 1e3;
    fprintf(stderr, "iou: trace: done   %s res=%d%s task '%s' %.1f us\n", what, res, more,
            iou__task_name(t), us);
}
