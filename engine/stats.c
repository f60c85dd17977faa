/* iou_loop_get_stats: the loop's plain counters (loop.h, iou__counters),
 * gathered with what the other modules already count. */
#include "bufring.h"
#include "loop.h"

#include <errno.h>
#include <string.h>

static const char *const kind_names[] = {
    [IOU__OP_NOP] = "nop",
    [IOU__OP_OPENAT] = "openat",
    [IOU__OP_CLOSE] = "close",
    [IOU__OP_READ] = "read",
    [IOU__OP_WRITE] = "write",
    [IOU__OP_FSYNC] = "fsync",
    [IOU__OP_SOCKET] = "socket",
    [IOU__OP_ACCEPT] = "accept",
    [IOU__OP_CONNECT] = "connect",
    [IOU__OP_RECV] = "recv",
    [IOU__OP_SEND] = "send",
    [IOU__OP_RAW] = "raw",
    [IOU__OP_ACCEPT_MULTI] = "accept_multishot",
    [IOU__OP_RECV_BUF] = "recv_buf",
    [IOU__OP_RECV_MULTI] = "recv_multishot",
    [IOU__OP_RECVMSG] = "recvmsg",
    [IOU__OP_SENDMSG] = "sendmsg",
    [IOU__OP_SHUTDOWN] = "shutdown",
    [IOU__OP_SEND_ZC] = "send_zc",
    [IOU__OP_STATX] = "statx",
    [IOU__OP_FALLOCATE] = "fallocate",
    [IOU__OP_FTRUNCATE] = "ftruncate",
    [IOU__OP_UNLINKAT] = "unlinkat",
    [IOU__OP_RENAMEAT] = "renameat",
    [IOU__OP_MKDIRAT] = "mkdirat",
    [IOU__OP_READV] = "readv",
    [IOU__OP_WRITEV] = "writev",
    [IOU__OP_FDATASYNC] = "fdatasync",
    [IOU__OP_SYNC_RANGE] = "sync_file_range",
    [IOU__OP_FADVISE] = "fadvise",
    [IOU__OP_SPLICE] = "splice",
    [IOU__OP_TEE] = "tee",
    [IOU__OP_READ_FIXED] = "read_fixed",
    [IOU__OP_WRITE_FIXED] = "write_fixed",
    [IOU__OP_LINKAT] = "linkat",
    [IOU__OP_SYMLINKAT] = "symlinkat",
    [IOU__OP_COPY_RANGE] = "copy_file_range",
};

/* A new kind needs a name here; the public arrays have room for IOU_OP_KIND_SLOTS. */
_Static_assert(sizeof(kind_names) / sizeof(kind_names[0]) == IOU__OP_KINDS,
               "every operation kind has a name");
_Static_assert(IOU__OP_KINDS <= IOU_OP_KIND_SLOTS, "iou_loop_stats has a slot per kind");

const char *iou_op_kind_name(int kind)
{
    if (kind < 0 || kind >= IOU__OP_KINDS)
        return NULL;
    return kind_names[kind];
}

static void gather(iou_loop *l, iou_loop_stats *all)
{
    const iou__counters *c = &l->counters;
    memset(all, 0, sizeof(*all));
    all->size = sizeof(*all);
    all->sqes = c->cancels; /* every SQE is an operation or a cancel request */
    for (int k = 0; k < IOU__OP_KINDS; k++) {
        all->submitted[k] = c->submitted[k];
        all->completed[k] = c->completed[k];
        all->sqes += c->submitted[k];
    }
    /* A direct send is an operation, but it made no SQE and had no CQE. */
    all->sqes -= c->direct_sends;
    all->cqes = c->cqes - c->direct_sends;
    all->cancels = c->cancels;
    all->enters = c->enters;
    all->sq_full = c->sq_full;
    all->cq_overflows = c->cq_overflows;
    all->sends_direct = c->direct_sends;
    all->enobufs = l->bufring ? l->bufring->stats.enobufs : 0;
    all->tasks_alive = l->tasks_alive;
    all->timers_pending = l->timers.len;
    all->ops_in_flight = l->ops_inflight;
    all->stacks_in_use = l->stacks.in_use;
    all->stacks_pooled = l->stacks.pooled;
}

int iou_loop_get_stats(iou_loop *l, iou_loop_stats *st)
{
    if (st == NULL || st->size < sizeof(st->size))
        return -EINVAL;
    if (l == NULL)
        l = iou__loop();
    if (l == NULL)
        return -EPERM;
    iou_loop_stats all;
    gather(l, &all);
    /* A caller built against an older, shorter struct gets its prefix. */
    size_t n = st->size < sizeof(all) ? st->size : sizeof(all);
    size_t size = st->size;
    memcpy(st, &all, n);
    st->size = size;
    return 0;
}
