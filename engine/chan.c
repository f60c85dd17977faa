/*
 * Channels: a bounded FIFO of fixed-size elements between tasks (Go channels,
 * asyncio.Queue). The ring is allocated once with the channel; every other
 * byte involved lives on the tasks' stacks (waiter records, elements).
 *
 * Elements move directly whenever they can: a send to a waiting receiver
 * copies into the receiver's destination, and a receive from a full buffer
 * refills the freed slot from the longest waiting sender. So the buffer keeps
 * FIFO order across waiting senders, and capacity 0 (rendezvous) needs no
 * slot at all. See chan.h for the invariants.
 */
#include "chan.h"
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

iou_chan *iou_chan_new(size_t elem_size, size_t capacity)
{
    if (elem_size == 0 || (capacity && elem_size > (SIZE_MAX - sizeof(iou_chan)) / capacity))
        return NULL;
    iou_chan *c = malloc(sizeof(*c) + elem_size * capacity);
    if (c == NULL)
        return NULL;
    *c = (iou_chan){.elem_size = elem_size, .cap = capacity};
    return c;
}

void iou_chan_free(iou_chan *c)
{
    free(c);
}

size_t iou_chan_len(const iou_chan *c)
{
    return c->len;
}

/* ---- copying ------------------------------------------------------------------ */

/* Elements are mostly a word or two: fixed-size copies compile to plain moves
 * instead of a call into the library's memcpy. */
static inline void copy_elem(void *dst, const void *src, size_t size)
{
    switch (size) {
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    case 16: memcpy(dst, src, 16); break;
    default: memcpy(dst, src, size); break;
    }
}

/* ---- the ring -------------------------------------------------------------- */

static unsigned char *slot(iou_chan *c, size_t i)
{
    if (i >= c->cap)
        i -= c->cap; /* i < 2 * cap: a compare instead of a division */
    return c->buf + i * c->elem_size;
}

static void ring_put(iou_chan *c, const void *elem)
{
    copy_elem(slot(c, c->head + c->len), elem, c->elem_size);
    c->len++;
}

static void ring_take(iou_chan *c, void *elem)
{
    copy_elem(elem, slot(c, c->head), c->elem_size);
    c->head = c->head + 1 == c->cap ? 0 : c->head + 1;
    c->len--;
}

/* Unlinks the longest waiter of q. It is live: a select's other cases leave
 * their queues as soon as one case fires. */
static iou__chan_waiter *take_waiter(iou__waitq *q)
{
    iou__waiter *w = q->head;
    if (w == NULL)
        return NULL;
    iou__waitq_remove(q, w);
    return iou__container_of(w, iou__chan_waiter, w);
}

/* ---- non-blocking core ------------------------------------------------------ */

/* The paths that involve a waiter are kept out of line, so that the common
 * buffered paths compile to a handful of instructions without a stack frame. */

/* A receiver waits, so the buffer is empty (invariant): hand over directly. */
__attribute__((noinline)) static int send_to_receiver(iou_chan *c, const void *elem)
{
    iou__chan_waiter *r = take_waiter(&c->receivers);
    copy_elem(r->w.data, elem, c->elem_size);
    iou__chan_waiter_done(r, 0);
    return 0;
}

/* A sender waits on a full buffer: its element takes the slot just freed,
 * behind everything already buffered. */
__attribute__((noinline)) static void refill_from_sender(iou_chan *c)
{
    iou__chan_waiter *s = take_waiter(&c->senders);
    ring_put(c, s->w.data);
    iou__chan_waiter_done(s, 0);
}

/* Rendezvous: the buffer is empty and a sender waits; copy from its stack. */
__attribute__((noinline)) static int recv_from_sender(iou_chan *c, void *elem)
{
    iou__chan_waiter *s = take_waiter(&c->senders);
    copy_elem(elem, s->w.data, c->elem_size);
    iou__chan_waiter_done(s, 0);
    return 0;
}

int iou__chan_try_send(iou_chan *c, const void *elem)
{
    if (c->closed)
        return -EPIPE;
    if (!iou__waitq_empty(&c->receivers))
        return send_to_receiver(c, elem);
    if (c->len == c->cap)
        return -EAGAIN;
    ring_put(c, elem);
    return 0;
}

int iou__chan_try_recv(iou_chan *c, void *elem)
{
    if (c->len > 0) {
        ring_take(c, elem);
        if (!iou__waitq_empty(&c->senders))
            refill_from_sender(c);
        return 0;
    }
    if (!iou__waitq_empty(&c->senders))
        return recv_from_sender(c, elem);
    return c->closed ? -EPIPE : -EAGAIN;
}

int iou_chan_try_send(iou_chan *c, const void *elem)
{
    return iou__chan_try_send(c, elem);
}

int iou_chan_try_recv(iou_chan *c, void *elem)
{
    return iou__chan_try_recv(c, elem);
}

/* ---- blocking operations ----------------------------------------------------- */

/* Parks the running task on q until a peer (or close) completes the waiter.
 * -EPERM outside a task: only tasks can wait. Kept out of line: its waiter
 * record would otherwise give the fast paths a stack frame to set up. */
__attribute__((noinline)) static int chan_wait(iou__waitq *q, void *elem)
{
    if (iou__current() == NULL)
        return -EPERM;
    iou__chan_waiter cw; /* iou__waitq_wait fills in the other fields */
    cw.w.data = elem;
    cw.sel = NULL;
    cw.w.what = "channel";
    return iou__waitq_wait(q, &cw.w);
}

int iou_chan_send(iou_chan *c, const void *elem)
{
    int r = iou__chan_try_send(c, elem);
    if (r != -EAGAIN)
        return r;
    /* 0: a receiver copied elem (before waking us); -EPIPE: closed meanwhile,
     * elem was not delivered. */
    return chan_wait(&c->senders, (void *)elem);
}

int iou_chan_recv(iou_chan *c, void *elem)
{
    int r = iou__chan_try_recv(c, elem);
    if (r != -EAGAIN)
        return r;
    return chan_wait(&c->receivers, elem);
}

/* ---- close ------------------------------------------------------------------- */

static void fail_all(iou__waitq *q)
{
    iou__chan_waiter *w;
    while ((w = take_waiter(q)))
        iou__chan_waiter_done(w, -EPIPE);
}

void iou_chan_close(iou_chan *c)
{
    if (c->closed)
        return;
    c->closed = true;
    fail_all(&c->senders);
    /* Receivers only wait on an empty buffer: nothing is left to drain. */
    fail_all(&c->receivers);
}
