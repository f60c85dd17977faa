/*
 * The worker pool (contract; implemented in pool.c): blocking work runs on
 * worker threads and its end is reported on the loop's own thread. Users
 * reach it through iou_run_in_pool(); the epoll backend runs file operations
 * through it.
 *
 * Ownership: between iou__pool_post() and the call of done, the job (and
 * whatever run touches) belongs to the worker. Whoever waits on a job must not
 * free or reuse it, nor let a buffer run writes into go away, before done ran.
 */
#ifndef IOU_POOL_H
#define IOU_POOL_H

typedef struct iou_loop iou_loop;
typedef struct iou__job iou__job;

struct iou__job {
    void (*run)(iou__job *j);               /* on a worker thread */
    void (*done)(iou_loop *l, iou__job *j); /* afterwards, on the loop's thread */
    iou__job *next;                         /* the pool's and the loop's queues */
    iou_loop *loop;                         /* set by iou__pool_post */
};

/* Queues j for a worker; done(l, j) runs on l's thread once run returned.
 * The loop counts the job as pending work until then (it does not end or go
 * idle while a job is out). Must be called on l's thread. Returns 0, or
 * -ENOMEM / -EAGAIN when no worker can be started at all. */
int iou__pool_post(iou_loop *l, iou__job *j);

#endif
