/*
 * The per-loop provided-buffer ring: N buffers of S bytes registered with the
 * loop's io_uring under one buffer group. A receive that selects from the
 * group gets a buffer from the kernel only when data arrives, so an idle
 * connection holds none; the CQE names the buffer, the receiver owns it until
 * it puts it back.
 *
 * Accounting invariant: available + (buffers taken and not yet put) == count.
 * A buffer is "taken" exactly when a CQE carries IORING_CQE_F_BUFFER, whatever
 * its result (a 0-byte completion may consume one too).
 */
#ifndef IOU_BUFRING_H
#define IOU_BUFRING_H

#include "op.h"

#include <iou.h>
#include <stdbool.h>
#include <stdint.h>

struct io_uring_buf_ring;
typedef struct iou__bufring iou__bufring;

/* The buffer group iou registers on every loop's ring. */
enum { IOU__BGID = 0x10e };

/* Completion flag of a receive: the socket still had data after it
 * (IORING_CQE_F_SOCK_NONEMPTY). */
#define IOU__CQE_SOCK_NONEMPTY (1u << 2)

/* A stream's receive while it is in the kernel: the ring keeps a list of
 * them so that shutdown can cancel those nobody closed. Circular, around a
 * sentinel: unlinking needs no list head, so a completion may unlink a
 * receive while the list is being walked. */
typedef struct iou__rx_link iou__rx_link;
struct iou__rx_link {
    iou__rx_link *prev, *next;
    iou__op *op;
};

struct iou__bufring {
    iou_loop *loop;
    struct io_uring_buf_ring *br; /* NULL until created, or when unavailable */
    unsigned char *base;          /* count * size bytes of buffers */
    size_t ring_bytes, buf_bytes; /* the two mappings */
    uint32_t size;                /* bytes per buffer */
    unsigned count;               /* buffers; a power of two */
    unsigned available;           /* buffers in the kernel's hands */
    unsigned stream_cap;          /* unconsumed buffers one stream may hold */
    bool unavailable;             /* creation failed: callers use plain receives */
    bool closing;                 /* shutdown: no new multishot may be armed */
    iou__rx_link armed;           /* sentinel: stream receives in the kernel */
    size_t armed_count;
    size_t singles;               /* iou_recv_buf receives in the kernel */
    iou_bufring_stats stats;
};

/* The loop's ring, created on first use with the configured sizes. Returns
 * NULL when there is none to use (no io_uring, the kernel refused the
 * registration, out of memory): callers then receive without it. */
iou__bufring *iou__bufring_get(iou_loop *l);

/* Bytes per buffer the loop uses (configured or default), also when no ring
 * exists: the size of a fallback receive. */
size_t iou__bufring_buf_size(iou_loop *l);

/* The buffer id a completion carries (and counts it as taken), or -1. */
int iou__bufring_take(iou__bufring *r, uint32_t cqe_flags);

/* Hands buffer bid back to the kernel. */
void iou__bufring_put(iou__bufring *r, unsigned bid);

static inline unsigned char *iou__bufring_addr(const iou__bufring *r, unsigned bid)
{
    return r->base + (size_t)bid * r->size;
}

/*
 * Prepares op as a receive on fd selecting a buffer from the loop's ring
 * (multishot or single-shot). IORING_RECVSEND_POLL_FIRST makes the kernel
 * wait for data before it looks at the ring, so an idle receive neither
 * holds a buffer nor fails with -ENOBUFS because others hold them all:
 * -ENOBUFS then means "data is waiting and no buffer is free" (the backend
 * sets POLL_FIRST for IOU__OP_RECV_BUF; not for IOU__OP_RECV_MULTI, see
 * backend_uring.c: a multishot may fail with -ENOBUFS while idle).
 */
void iou__bufring_prep_recv(iou__op *op, int fd, int flags, bool multishot);

/* Tracks a stream's multishot while it is in the kernel. */
void iou__bufring_armed(iou__bufring *r, iou__rx_link *link);
void iou__bufring_disarmed(iou__bufring *r, iou__rx_link *link);

/* Counts a task's single-shot receive while it is in the kernel. */
void iou__bufring_recv_started(iou__bufring *r);
void iou__bufring_recv_ended(iou__bufring *r);

/* Loop shutdown: cancels every armed multishot and refuses new ones. */
void iou__bufring_cancel_all(iou_loop *l);

/* Unregisters and frees the loop's ring. No receive may be in flight. */
void iou__bufring_fini(iou_loop *l);

#endif
