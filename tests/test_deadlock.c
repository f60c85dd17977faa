/*
 * iou_run and deadlocks: when every task waits on something that can never
 * happen (nothing in flight, no timer), iou_run cancels them all so main
 * returns; when even that wakes none, it returns -EDEADLK instead of
 * spinning or hanging.
 */
#include "check.h"

#include <errno.h>
#include <iou.h>

static iou_event never;

/* Main waits on an event nobody will set: cancelled, it returns. */
static int wait_forever(void *arg)
{
    (void)arg;
    return iou_event_wait(&never);
}

static iou_mutex m = IOU_MUTEX_INIT;
static iou_cond c;

/* Ends while holding m, after signalling the waiter. */
static int exits_holding_mutex(void *arg)
{
    (void)arg;
    iou_mutex_lock(&m);
    iou_cond_signal(&c);
    return 0;
}

/* Its cond_wait must re-take m, which nobody will ever release: an
 * uninterruptible wait, so cancelling cannot end it. */
static int relock_forever(void *arg)
{
    (void)arg;
    iou_mutex_lock(&m);
    iou_task *t = iou_spawn(exits_holding_mutex, NULL);
    iou_cond_wait(&c, &m);
    return iou_join(t);
}

int main(void)
{
    iou_event_init(&never);
    CHECK_EQ(iou_run(wait_forever, NULL), -ECANCELED);

    iou_cond_init(&c);
    CHECK_EQ(iou_run(relock_forever, NULL), -EDEADLK);

    /* The thread can run a loop again afterwards. */
    CHECK_EQ(iou_run(wait_forever, NULL), -ECANCELED);
    return 0;
}
