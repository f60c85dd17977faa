/*
 * Thread-safe entry (asyncio's call_soon_threadsafe): any thread posts a
 * callback or a task to a loop's inbox (remote.c). The node is allocated by
 * the posting thread and freed by the loop after running it; nothing here
 * takes a lock.
 */
#include "loop.h"
#include "remote.h"
#include "task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct posted {
    iou__job job;
    union {
        void (*cb)(void *);
        iou_fn fn;
    };
    void *arg;
} posted;

static void run_callback(iou_loop *l, iou__job *j)
{
    (void)l;
    posted *p = iou__container_of(j, posted, job);
    void (*cb)(void *) = p->cb;
    void *arg = p->arg;
    free(p);
    cb(arg);
}

static void run_spawn(iou_loop *l, iou__job *j)
{
    posted *p = iou__container_of(j, posted, job);
    iou_task *t = iou__spawn(l, p->fn, p->arg, NULL);
    if (t)
        iou_detach(t);
    else
        fputs("iou: iou_spawn_threadsafe: out of memory on the loop; the task was not "
              "started\n", stderr);
    free(p);
}

static int post(iou_loop *l, void (*done)(iou_loop *, iou__job *), posted *p)
{
    p->job.done = done;
    p->job.run = NULL;
    int err = iou__remote_post(l, &p->job, false);
    if (err)
        free(p);
    return err;
}

int iou_call_soon_threadsafe(iou_loop *l, void (*cb)(void *), void *arg)
{
    if (l == NULL || cb == NULL)
        return -EINVAL;
    posted *p = malloc(sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->cb = cb;
    p->arg = arg;
    return post(l, run_callback, p);
}

int iou_spawn_threadsafe(iou_loop *l, iou_fn fn, void *arg)
{
    if (l == NULL || fn == NULL)
        return -EINVAL;
    posted *p = malloc(sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->fn = fn;
    p->arg = arg;
    return post(l, run_spawn, p);
}
