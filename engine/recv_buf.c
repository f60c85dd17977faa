/*
 * Borrowed-buffer receive: the kernel picks a buffer from the loop's ring when
 * data arrives, the caller uses it in place and releases it.
 *
 * -ENOBUFS (the ring is empty while data waits: the receive is prepared with
 * POLL_FIRST, so an idle socket never reports it) is answered with one plain
 * non-blocking recv into a heap buffer: the data is there, so it arrives now,
 * and nothing waits for some other connection to release a buffer.
 */
#include "bufring.h"
#include "loop.h"
#include "op.h"
#include "task.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

/* Receives into a fresh heap buffer (iou_recv: a task's op, or recv(2)). */
static ssize_t heap_recv(int fd, iou_buf *b, size_t size, int flags)
{
    void *p = malloc(size);
    if (p == NULL)
        return -ENOMEM;
    ssize_t n = iou_recv(fd, p, size, flags);
    if (n <= 0) {
        free(p);
        return n;
    }
    *b = (iou_buf){.data = p, .len = (size_t)n};
    return n;
}

static ssize_t lend(iou__bufring *r, iou_buf *b, int bid, int res)
{
    if (res <= 0) { /* a 0-byte completion may still have consumed a buffer */
        iou__bufring_put(r, (unsigned)bid);
        return res;
    }
    *b = (iou_buf){.data = iou__bufring_addr(r, (unsigned)bid), .len = (size_t)res, .owner_ = r,
                   .id_ = (uint32_t)bid};
    return res;
}

/* One receive selecting from the ring. Returns its result; -ENOBUFS means
 * data is waiting but no buffer was free. */
static ssize_t ring_recv(iou_task *t, iou__bufring *r, int fd, iou_buf *b, int flags)
{
    iou__op op = {0};
    iou__bufring_prep_recv(&op, fd, flags, false);
    iou__bufring_recv_started(r);
    int res = iou__op_await(t, &op);
    int bid = iou__bufring_take(r, op.cqe_flags);
    iou__bufring_recv_ended(r);
    if (bid >= 0)
        return lend(r, b, bid, res);
    if (res == -ENOBUFS)
        r->stats.enobufs++;
    return res;
}

ssize_t iou_recv_buf(int fd, iou_buf *b, int flags)
{
    if (b == NULL)
        return -EINVAL;
    *b = (iou_buf){0};
    iou_task *t = iou__current();
    iou_loop *l = iou__loop();
    size_t size = iou__bufring_buf_size(l);
    iou__bufring *r = t ? iou__bufring_get(l) : NULL;
    if (r == NULL)
        return heap_recv(fd, b, size, flags);
    for (;;) {
        ssize_t n = ring_recv(t, r, fd, b, flags);
        if (n != -ENOBUFS)
            return n;
        r->stats.fallbacks++;
        n = heap_recv(fd, b, size, flags | MSG_DONTWAIT);
        if (n != -EAGAIN)
            return n;
        /* Someone else took the data: wait for more, from the ring again. */
    }
}

void iou_buf_release(iou_buf *b)
{
    if (b == NULL || b->data == NULL)
        return;
    if (b->owner_)
        iou__bufring_put(b->owner_, b->id_);
    else
        free(b->data);
    *b = (iou_buf){0};
}
