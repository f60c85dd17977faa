/*
 * The loop's inbox: the only way other threads reach a loop (invariant 4).
 *
 * Two lock-free multi-producer stacks of iou__job records: posts (thread-safe
 * callbacks and spawns, refused once the loop shuts down) and finished pool
 * jobs (always accepted: the loop waits for every job it sent out). The loop
 * takes each stack whole with one exchange and runs done(l, j) for every
 * record, oldest first, at the top of each iteration.
 *
 * Wake-ups are coalesced: a producer wakes the loop only when the loop said
 * it may sleep (a flag it raises right before a blocking wait), and only one
 * producer per sleep does. The wake is a MSG_RING from the producer's own
 * io_uring loop straight into the target's ring where the kernel has it,
 * else a write to the target's eventfd, on which the loop keeps one ordinary
 * read in flight while it sleeps (served by either backend).
 */
#ifndef IOU_REMOTE_H
#define IOU_REMOTE_H

#include "pool.h"

typedef struct iou__op iou__op;

#include <stdbool.h>
#include <stdint.h>

/* CQE user_data with the low bit set is never an operation record (those are
 * aligned): 1 is a MSG_RING wake-up arriving at a loop; a remote record's
 * address | 1 is the sender's own completion of a MSG_RING it sent. */
#define IOU__UDATA_WAKE ((uint64_t)1)

typedef struct iou__remote iou__remote;

/* Sets up l's inbox (after the backend). Returns 0 or -errno. */
int iou__remote_init(iou_loop *l);

/* Last step before the backend goes: takes back the wake-up read from the
 * kernel and waits until no producer still touches the inbox. */
void iou__remote_fini(iou_loop *l);

/* Refuses every later post with -ESHUTDOWN and runs the ones accepted
 * (iou_loop_free, after the first drain). */
void iou__remote_close(iou_loop *l);

/* Pushes j for done(l, j) on l's thread. Any thread. internal: a pool job's
 * return (accepted after close too). Returns 0 or -ESHUTDOWN. */
int iou__remote_post(iou_loop *l, iou__job *j, bool internal);

/* Something was posted and not yet run. */
bool iou__remote_pending(const iou_loop *l);

/* op is the loop's own wake-up read (housekeeping: not traced or counted). */
bool iou__remote_is_wake_op(const iou_loop *l, const iou__op *op);

/* Runs the done of everything posted so far. Loop thread. */
void iou__remote_run(iou_loop *l);

/* The loop must not end: pool jobs are out, posts wait, or (unless the loop
 * is being freed) a keepalive is held. */
bool iou__remote_busy(const iou_loop *l);

/* A pool job was sent out / came back (loop thread). */
void iou__remote_job_out(iou_loop *l);

/* Around a blocking wait (the ready queue is empty). sleep arms the wake-up
 * and returns false if a post arrived meanwhile (then do not block); with a
 * pool job out it may first send queued I/O and watch the inbox for a few
 * microseconds (remote.c), and also returns false when that made tasks ready
 * or brought a post. awake ends the sleep. */
bool iou__remote_sleep(iou_loop *l);
void iou__remote_awake(iou_loop *l);

/* The io_uring backend hands over every CQE whose user_data has the low bit
 * set (and is not liburing's own timeout marker). */
void iou__remote_cqe(iou_loop *l, uint64_t data, int res);

#endif
