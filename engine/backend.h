/*
 * The backend interface: everything above it (loop, tasks, operations) speaks
 * only in operation records; the backend turns them into kernel work and
 * reports each completion through iou__op_complete(). io_uring is the
 * default (backend_uring.c); epoll (backend_epoll.c) runs the same operations
 * where io_uring cannot be set up. loop.c picks one (IOU_BACKEND, the loop's
 * options, or io_uring falling back to epoll).
 */
#ifndef IOU_BACKEND_H
#define IOU_BACKEND_H

#include <stdint.h>

typedef struct iou_loop iou_loop;
typedef struct iou__op iou__op;

typedef struct iou__backend {
    const char *name;
    /* Sets up the backend for l. Returns 0 or a negative errno. */
    int (*init)(iou_loop *l, unsigned entries);
    /* Releases it. No operation may be in flight. */
    void (*fini)(iou_loop *l);
    /* Queues op. Never fails for lack of room: a full queue is flushed first. */
    void (*submit)(iou_loop *l, iou__op *op);
    /* Asks the kernel to cancel op; op still completes (maybe successfully). */
    void (*cancel)(iou_loop *l, iou__op *op);
    /* Sends everything queued, waits up to timeout_ns for a completion
     * (0: do not wait, IOU__NEVER: no limit) and completes what arrived.
     * Returns 0 or a negative errno the loop cannot recover from. */
    int (*poll)(iou_loop *l, uint64_t timeout_ns);
    /* Optional (NULL: nothing to do): fd is being closed (iou_close), so
     * anything the backend keeps about that fd number must go. */
    void (*forget)(iou_loop *l, int fd);
} iou__backend;

extern const iou__backend iou__backend_uring;
extern const iou__backend iou__backend_epoll;

/* Starts l's backend (sets l->backend): the named one if name is not NULL
 * or empty, else the one IOU_BACKEND names, else io_uring, or epoll when
 * io_uring cannot be set up. Returns 0 or a negative errno. */
int iou__backend_open(iou_loop *l, const char *name, unsigned entries);

/* The loop's ring when it runs on io_uring, else NULL: for io_uring-only
 * features (provided buffer rings, registered resources). */
struct io_uring *iou__uring(iou_loop *l);

/* The io_uring features l's ring uses (IOU__FEAT_* of feature_mask.h: the
 * task-run mode, EXT_ARG, the registered ring fd); 0 without io_uring. */
unsigned iou__uring_features(iou_loop *l);


#endif
