/*
 * Fault injection (IOU_FAULT=rate[:seed]): off unless the environment asks,
 * read once per loop when the loop is created. When on, a `rate` fraction of
 * the data operations submitted on the loop are made to fail or to come back
 * short, as a busy or unlucky kernel could:
 *
 *   - failed: the operation is never given to the kernel; a NOP stands in
 *     for it and its completion reports a plausible error for the kind
 *     (EINTR, EAGAIN, ENOMEM, EIO for files and pipes; EINTR, EAGAIN, ENOMEM,
 *     ECONNRESET for sockets; ECONNABORTED, EINTR, ENOMEM for accept). Nothing
 *     happened, so the error is true: no byte was read, written or lost.
 *   - short: the request length is cut before submission, so the count the
 *     kernel returns is a real one (a short write really wrote less; a short
 *     read left the rest in the file, pipe or socket). Only for byte streams:
 *     regular files, pipes, SOCK_STREAM sockets, never O_DIRECT or MSG_WAITALL.
 *
 * Never touched: close, shutdown, open, socket, connect, single accept, NOP,
 * raw SQEs, and cancellations (they are not operations). A multishot that is
 * failed ends at once with one final completion, as the kernel may end one;
 * a zero-copy send that is failed has no notification to wait for (nothing
 * was pinned).
 */
#ifndef IOU_FAULT_H
#define IOU_FAULT_H

#include "op.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct iou__fault iou__fault;

/* What the injector did on one loop (test-visible). */
typedef struct iou__fault_stats {
    uint64_t considered; /* operations that could have been faulted */
    uint64_t errors;     /* failed with an injected error */
    uint64_t shorts;     /* submitted with a shortened length */
} iou__fault_stats;

/* Reads IOU_FAULT and turns injection on for l if it is set (printing the
 * seed on stderr). Returns 0, or -ENOMEM. */
int iou__fault_init(iou_loop *l);

/* Turns injection on for l with this rate (0..1) and seed, or off (rate 0):
 * for tests that inject whatever the environment says. */
int iou__fault_enable(iou_loop *l, double rate, uint64_t seed);

/* Frees l's injector. No operation may be in flight. */
void iou__fault_fini(iou_loop *l);

/* The injection hook of iou__op_submit (only called while injection is on).
 * Returns true when op was failed (a stand-in was submitted for it): the
 * caller must not submit op itself. May shorten op->len. */
bool iou__fault_submit(iou_loop *l, iou__op *op);

/* Tests: fn(ctx, t, err) is called for each injected error, t being the
 * task that submitted the operation (NULL on the loop). fn NULL: none. */
typedef void (*iou__fault_observer)(void *ctx, iou_task *t, int err);
void iou__fault_observe(iou_loop *l, iou__fault_observer fn, void *ctx);

/* l's counters, or NULL when injection is off. */
const iou__fault_stats *iou__fault_get_stats(const iou_loop *l);

#endif
