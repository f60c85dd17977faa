/*
 * Buffered streams: the record and its two internal parts.
 *
 *   stream_queue.c  the received bytes, in order: the spill (heap bytes put
 *                   back by a failed read, or received by a fallback recv)
 *                   first, then the queue of ring buffers the multishot filled
 *   stream_rx.c     filling it: the multishot receive, the fallback recv,
 *                   waiting for data
 *   stream.c        the public reads, open and close
 *   stream_write.c  the public writes
 *
 * Invariant: the spill's bytes precede every queued buffer's bytes, and a
 * receive into the spill (or a caller's buffer) happens only while nothing is
 * buffered and no multishot is armed, so bytes never change order.
 */
#ifndef IOU_STREAM_H
#define IOU_STREAM_H

#include "bufring.h"
#include "op.h"

#include <iou.h>
#include <stdbool.h>
#include <stdint.h>

/* A queued ring buffer: len bytes of buffer bid. */
typedef struct iou__chunk {
    uint32_t len;
    uint16_t bid;
} iou__chunk;

enum { IOU__QUEUE_INLINE = 4 }; /* queued buffers held without a heap array */

struct iou_stream {
    int fd;
    int err;      /* sticky error of the connection (0: none); read after the data before it */
    bool eof;     /* the end of stream was received (after the buffered data) */
    bool armed;   /* the multishot receive is in the kernel */
    bool nobufs;  /* it ended with -ENOBUFS: data waits, receive it with a plain recv */
    bool closing; /* closed while armed: the final completion frees the record */
    bool direct;  /* its reader lagged: plain recvs into the reader's buffer, no ring */
    bool reading, writing;
    iou__bufring *ring;  /* the loop's ring; valid while buffers are queued or armed */
    iou_task *reader;    /* the task parked for data, or NULL */
    iou__op rx;          /* the multishot's record */
    iou__rx_link link;   /* in the ring's list of armed multishots */
    unsigned char *spill;
    size_t spill_off, spill_len;
    size_t spill_cap;    /* the spill's allocated size */
    size_t queued;       /* bytes in the queue of ring buffers, head_off excluded */
    iou__chunk *q;       /* ring of queued buffers: q_inline or a heap array */
    uint32_t q_cap, q_head, q_count;
    uint32_t head_off;   /* bytes of the head buffer already consumed */
    iou__chunk q_inline[IOU__QUEUE_INLINE];
};

/* ---- stream_queue.c ---------------------------------------------------------------- */

void iou__stream_queue_init(iou_stream *s);

/* Bytes buffered in s. (Inline, like the two below: every read and every
 * consume of an echo's round trip asks.) */
static inline size_t iou__stream_buffered(const iou_stream *s)
{
    return s->spill_len + s->queued;
}

/* The length of the first contiguous run of buffered bytes (0 if none). */
static inline size_t iou__stream_front_len(const iou_stream *s)
{
    if (s->spill_len)
        return s->spill_len;
    return s->q_count ? s->q[s->q_head].len - s->head_off : 0;
}

/* The first contiguous run of buffered bytes, without consuming: its length
 * (0 if none) and *p. */
static inline size_t iou__stream_front(const iou_stream *s, const unsigned char **p)
{
    if (s->spill_len) {
        *p = s->spill + s->spill_off;
        return s->spill_len;
    }
    if (s->q_count == 0)
        return 0;
    const iou__chunk *c = &s->q[s->q_head];
    *p = iou__bufring_addr(s->ring, c->bid) + s->head_off;
    return c->len - s->head_off;
}

/* Consumes n bytes, at most iou__stream_buffered(s); emptied ring buffers go
 * back to the ring at once. */
void iou__stream_consume(iou_stream *s, size_t n);

/* Puts n bytes back in front of everything buffered. 0 or -ENOMEM. */
int iou__stream_unread(iou_stream *s, const void *data, size_t n);

/* Appends len bytes received into ring buffer bid. 0 or -ENOMEM (then the
 * buffer went back to the ring and the bytes are lost: the caller fails the
 * stream). */
int iou__stream_push(iou_stream *s, unsigned bid, uint32_t len);

/* A spill block of size bytes (from the loop's cache when it holds that
 * size), or NULL when out of memory. */
void *iou__spill_get(size_t size);

/* Gives back a spill block of cap bytes: kept by the loop's cache while it
 * has room, else freed. */
void iou__spill_put(void *p, size_t cap);

/* Gives every queued buffer back and frees the spill. */
void iou__stream_queue_drop(iou_stream *s);

/* ---- stream_rx.c ------------------------------------------------------------------ */

/*
 * Called when nothing is buffered: makes data available. Returns 1 when bytes
 * are buffered now, or were received straight into dst (only if dst is not
 * NULL; *direct says how many, else 0); 0 at end of stream; or a negative
 * errno (interruption, connection error, -EBUSY outside a task while armed).
 * Suspends inside a task.
 */
int iou__stream_fill(iou_stream *s, void *dst, size_t cap, size_t *direct);

/* Close: cancels an armed multishot (the final completion frees s), else
 * frees s now. Either way the queued buffers go back to the ring. */
void iou__stream_dispose(iou_stream *s);

/* Frees s and what it holds. */
void iou__stream_free(iou_stream *s);

#endif
