/*
 * Filling a stream: one multishot receive from the loop's buffer ring, armed
 * when a read first has to wait and left armed while data flows. Its
 * completions queue buffers in the stream (stream_queue.c) and wake the
 * reader. The kernel owns the record (s->rx) from submit to the final
 * completion, so a stream closed while armed is freed only by that
 * completion (invariant 1).
 *
 * When the multishot ends:
 *   - end of stream / an error: remembered, reported after the data before it;
 *   - -ENOBUFS (the ring was empty when the kernel looked): the next fill
 *     makes one plain non-blocking recv, then arms the multishot again, or,
 *     while the ring stays empty, waits in a plain recv;
 *   - -ECANCELED: paused (see below) or closed; the next fill re-arms;
 *   - -EINTR, -EAGAIN, -ENOMEM: nothing was received, the connection is
 *     fine: the next fill re-arms (a plain recv failing so is retried too).
 *
 * Fairness: a stream whose reader lags would keep taking buffers as long as
 * its peer sends (the kernel fills up to 32 per wake-up of a multishot, and
 * as many as the socket's receive window holds). Once a stream holds
 * stream_cap unread buffers its multishot is cancelled and the stream goes
 * "direct": each fill is one plain recv into the reader's own buffer (or a
 * spill for peek), armed only when its queue is empty. It then holds no ring
 * buffer at all; the peer's excess waits in the socket and TCP flow control
 * slows the peer. A bulk reader with a big buffer loses nothing by it (a
 * plain recv into its buffer is the fastest receive there is). When a recv
 * drains the socket (its completion lacks SOCK_NONEMPTY) the reader has
 * caught up and the multishot returns.
 */
#include "stream.h"
#include "backend.h"
#include "feature_mask.h"
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

static void wake_reader(iou_stream *s)
{
    iou_task *t = s->reader;
    if (t) {
        s->reader = NULL;
        iou__wake(t);
    }
}

static void cancel_rx(iou_stream *s)
{
    iou__op_cancel(s->ring->loop, &s->rx);
}

/* The receive delivered res bytes into buffer bid; more: it stays armed. */
static void deliver(iou_stream *s, int bid, int res, bool more)
{
    if (res <= 0 || s->closing) {
        iou__bufring_put(s->ring, (unsigned)bid);
        return;
    }
    if (iou__stream_push(s, (unsigned)bid, (uint32_t)res) < 0) {
        s->err = -ENOMEM; /* bytes lost: the stream cannot go on */
        if (more)
            cancel_rx(s);
        return;
    }
    if (more && s->q_count >= s->ring->stream_cap) {
        s->direct = true;
        s->ring->stats.paused++;
        cancel_rx(s);
    }
}

/* A receive that failed for the moment, having received nothing: the
 * connection is fine and the next fill simply receives again. */
static bool transient(ssize_t err)
{
    return err == -EINTR || err == -EAGAIN || err == -ENOMEM;
}

/* The multishot's last completion. */
static void ended(iou_stream *s, int res)
{
    s->armed = false;
    iou__bufring_disarmed(s->ring, &s->link);
    if (res == 0)
        s->eof = true;
    else if (res == -ENOBUFS) {
        s->nobufs = true;
        s->ring->stats.enobufs++;
    } else if (res < 0 && res != -ECANCELED && !transient(res) && s->err == 0)
        s->err = res;
}

/*
 * Each completion of s->rx. res and flags are copied first: cancelling (a
 * pause) may flush a full SQ, reap, and run this function again, nested, for
 * the same record's next completion.
 */
static void rx_done(iou__op *op)
{
    iou_stream *s = iou__container_of(op, iou_stream, rx);
    int res = op->res;
    uint32_t flags = op->cqe_flags;
    bool more = flags & IOU__CQE_MORE;
    int bid = iou__bufring_take(s->ring, flags);
    if (bid >= 0)
        deliver(s, bid, res, more);
    if (!more) {
        ended(s, res);
        if (s->closing) {
            iou__stream_free(s);
            return;
        }
    }
    wake_reader(s);
}

static void arm(iou_stream *s, iou__bufring *r)
{
    s->ring = r;
    iou__bufring_prep_recv(&s->rx, s->fd, 0, true);
    s->rx.done = rx_done;
    s->rx.task = NULL;
    s->rx.cancel_sent = false;
    s->armed = true;
    iou__bufring_armed(r, &s->link);
    iou__op_submit(r->loop, &s->rx);
}

static void reader_interrupted(iou_task *t, void *ctx)
{
    iou_stream *s = ctx;
    s->reader = NULL;
    iou__wake(t);
}

/* Parks until the multishot delivers or ends. 0 or the interruption. */
static int wait_rx(iou_stream *s, iou_task *t)
{
    s->reader = t;
    return iou__park(t, reader_interrupted, s);
}

/* What a plain recv says about the connection: its end or an error (not an
 * interruption, which belongs to the task, nor EAGAIN), and whether the
 * reader caught up with the peer (the socket is empty now). */
static void note_result(iou_stream *s, ssize_t n, uint32_t cqe_flags)
{
    if (n > 0 && !(cqe_flags & IOU__CQE_SOCK_NONEMPTY))
        s->direct = false;
    else if (n == 0)
        s->eof = true;
    else if (n < 0 && !transient(n) && n != -ECANCELED && n != -ETIMEDOUT)
        s->err = (int)n;
}

/* One recv into buf: a task's operation (whose completion flags tell
 * whether the socket has more), or recv(2) outside tasks. */
static ssize_t recv_into(iou_stream *s, void *buf, size_t len, int flags)
{
    iou_task *t = iou__current();
    ssize_t n;
    uint32_t cqe_flags = 0;
    if (t == NULL) {
        n = recv(s->fd, buf, len, flags);
        n = n < 0 ? -errno : n;
    } else {
        iou__op op;
        iou__op_prep(&op, IOU__OP_RECV, s->fd, buf, len, 0);
        op.flags = (unsigned)flags;
        n = iou__op_await(t, &op);
        cqe_flags = op.cqe_flags;
    }
    note_result(s, n, cqe_flags);
    return n;
}

/* A recv into a new spill (when the caller gave no buffer: peek). */
static ssize_t recv_spill(iou_stream *s, int flags)
{
    size_t size = iou__bufring_buf_size(iou__loop());
    unsigned char *p = iou__spill_get(size);
    if (p == NULL)
        return -ENOMEM;
    ssize_t n = recv_into(s, p, size, flags);
    if (n <= 0) {
        iou__spill_put(p, size);
        return n;
    }
    s->spill = p;
    s->spill_off = 0;
    s->spill_len = (size_t)n;
    s->spill_cap = size;
    return n;
}

/*
 * One plain recv, into dst when given, else into a spill. After -ENOBUFS
 * data is already waiting, so it must not wait (and a spill is held only
 * while that data sits in it); otherwise (direct mode, no ring, outside a
 * task) it is an ordinary waiting recv.
 */
static ssize_t plain_recv(iou_stream *s, iou__bufring *r, void *dst, size_t cap)
{
    int flags = 0;
    if (s->nobufs) {
        s->nobufs = false;
        flags = MSG_DONTWAIT;
        if (r)
            r->stats.fallbacks++;
    }
    return dst ? recv_into(s, dst, cap, flags) : recv_spill(s, flags);
}

/* What a fill reports without receiving anything: 1 (data), 0 (end), an
 * error, or 2 (nothing yet: go on). */
static int settled(const iou_stream *s)
{
    if (iou__stream_buffered(s))
        return 1;
    if (s->err)
        return s->err;
    return s->eof ? 0 : 2;
}

/* Outside a task: one recv(2), impossible while the kernel holds s->rx. It
 * blocks unless the socket is non-blocking (then -EAGAIN). */
static int fill_blocking(iou_stream *s, void *dst, size_t cap, size_t *direct)
{
    int st = settled(s);
    if (st != 2)
        return st;
    if (s->armed)
        return -EBUSY;
    s->nobufs = false; /* a hint for tasks: here it would turn the recv non-blocking */
    ssize_t n = plain_recv(s, NULL, dst, cap);
    if (n > 0 && dst)
        *direct = (size_t)n;
    return n > 0 ? 1 : (int)n; /* 0: the end */
}

int iou__stream_fill(iou_stream *s, void *dst, size_t cap, size_t *direct)
{
    *direct = 0;
    iou_task *t = iou__current();
    if (t == NULL)
        return fill_blocking(s, dst, cap, direct);
    for (;;) {
        int st = settled(s);
        if (st != 2)
            return st;
        int err = iou__interrupted(t);
        if (err)
            return err;
        if (s->armed) {
            err = wait_rx(s, t);
            if (err)
                return err;
            continue;
        }
        iou__bufring *r = iou__bufring_get(t->loop);
        /* An empty ring would fail the multishot at once (it is armed
         * without POLL_FIRST): then a plain recv waits instead. */
        if (r && r->available && !s->nobufs && !s->direct && !r->closing &&
            iou__feature_allowed(t->loop, IOU__FEAT_MULTISHOT)) {
            arm(s, r);
            continue;
        }
        ssize_t n = plain_recv(s, r, dst, cap);
        if (n > 0 && dst) {
            *direct = (size_t)n;
            return 1;
        }
        if (n < 0 && !transient(n))
            return (int)n;
        if (n == -ENOMEM)
            iou_yield(); /* let memory come back before asking again */
    }
}

void iou__stream_free(iou_stream *s)
{
    iou__stream_queue_drop(s);
    free(s);
}

void iou__stream_dispose(iou_stream *s)
{
    if (!s->armed) {
        iou__stream_free(s);
        return;
    }
    s->closing = true;
    iou__stream_queue_drop(s);
    cancel_rx(s);
}
