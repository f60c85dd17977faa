/*
 * A stream's received bytes, in order: the spill, then the queued ring
 * buffers. An idle stream holds neither: the spill is freed when it empties
 * and the queue falls back to its inline slots.
 */
#include "stream.h"
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void iou__stream_queue_init(iou_stream *s)
{
    s->q = s->q_inline;
    s->q_cap = IOU__QUEUE_INLINE;
    s->q_head = s->q_count = 0;
}

static iou__chunk *head(const iou_stream *s)
{
    return &s->q[s->q_head];
}

/* ---- the loop's cache of spill blocks ---------------------------------------------
 * Without a buffer ring (the epoll backend, a stream in direct mode) a stream
 * receives each message into a fresh spill and frees it once consumed: a
 * malloc and a free per message, and glibc serves 4 KiB blocks outside its
 * thread cache. A few blocks kept per loop (bounded: IOU__SPILL_CACHE) make
 * that a pointer pop and push. */

void *iou__spill_get(size_t size)
{
    iou_loop *l = iou__loop();
    if (l && l->spills.n && l->spills.size == size)
        return l->spills.blk[--l->spills.n];
    return malloc(size);
}

void iou__spill_put(void *p, size_t cap)
{
    iou_loop *l = iou__loop();
    if (p == NULL || l == NULL || cap == 0) {
        free(p);
        return;
    }
    iou__spill_cache *c = &l->spills;
    if (c->n == 0)
        c->size = cap; /* an empty cache takes the size it is given */
    if (c->size != cap || c->n == IOU__SPILL_CACHE) {
        free(p);
        return;
    }
    c->blk[c->n++] = p;
}

void iou__spill_cache_fini(iou_loop *l)
{
    while (l->spills.n)
        free(l->spills.blk[--l->spills.n]);
}

static void spill_free(iou_stream *s)
{
    iou__spill_put(s->spill, s->spill_cap);
    s->spill = NULL;
    s->spill_off = s->spill_len = s->spill_cap = 0;
}

/* The queue went empty: give back a heap array, so idle streams hold none. */
static void queue_shrink(iou_stream *s)
{
    if (s->q != s->q_inline)
        free(s->q);
    iou__stream_queue_init(s);
}

static void pop_head(iou_stream *s)
{
    iou__bufring_put(s->ring, head(s)->bid);
    s->q_head = (s->q_head + 1) & (s->q_cap - 1);
    s->head_off = 0;
    if (--s->q_count == 0)
        queue_shrink(s);
}

/* Consumes n bytes of the front run (n at most its length). */
static void consume_front(iou_stream *s, size_t n)
{
    if (s->spill_len) {
        s->spill_off += n;
        s->spill_len -= n;
        if (s->spill_len == 0)
            spill_free(s);
        return;
    }
    s->head_off += (uint32_t)n;
    s->queued -= n;
    if (s->head_off == head(s)->len)
        pop_head(s);
}

void iou__stream_consume(iou_stream *s, size_t n)
{
    while (n) {
        size_t run = iou__stream_front_len(s);
        size_t k = n < run ? n : run;
        consume_front(s, k);
        n -= k;
    }
}

int iou__stream_unread(iou_stream *s, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (s->spill && s->spill_off >= n) { /* room in front of the spill's bytes */
        s->spill_off -= n;
        memcpy(s->spill + s->spill_off, data, n);
        s->spill_len += n;
        return 0;
    }
    unsigned char *p = malloc(n + s->spill_len);
    if (p == NULL)
        return -ENOMEM;
    memcpy(p, data, n);
    if (s->spill_len)
        memcpy(p + n, s->spill + s->spill_off, s->spill_len);
    size_t len = n + s->spill_len;
    spill_free(s);
    s->spill = p;
    s->spill_len = len;
    s->spill_cap = len;
    return 0;
}

/* Doubles the queue's array, unrolling the ring so the head is slot 0. */
static int queue_grow(iou_stream *s)
{
    uint32_t cap = s->q_cap * 2;
    iou__chunk *q = malloc(cap * sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->q_count; i++)
        q[i] = s->q[(s->q_head + i) & (s->q_cap - 1)];
    if (s->q != s->q_inline)
        free(s->q);
    s->q = q;
    s->q_cap = cap;
    s->q_head = 0;
    return 0;
}

int iou__stream_push(iou_stream *s, unsigned bid, uint32_t len)
{
    if (s->q_count == s->q_cap && queue_grow(s) < 0) {
        iou__bufring_put(s->ring, bid);
        return -ENOMEM;
    }
    uint32_t tail = (s->q_head + s->q_count) & (s->q_cap - 1);
    s->q[tail] = (iou__chunk){.len = len, .bid = (uint16_t)bid};
    s->q_count++;
    s->queued += len;
    return 0;
}

void iou__stream_queue_drop(iou_stream *s)
{
    while (s->q_count)
        pop_head(s);
    s->queued = 0;
    spill_free(s);
}
