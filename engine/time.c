/* iou_now and iou_sleep: sleeping is a user-space timer, never an SQE. */
#include "loop.h"
#include "debug.h"
#include "task.h"

#include <errno.h>
#include <time.h>

uint64_t iou_now(void)
{
    iou_loop *l = iou__loop();
    return l ? iou__loop_now(l) : iou__clock();
}

typedef struct sleeper {
    iou__timer timer; /* first: iou_dump reads the wake-up time through it */
    iou_task *task;
} sleeper;

static void sleep_over(iou__timer *timer)
{
    iou__wake(iou__container_of(timer, sleeper, timer)->task);
}

void iou__sleep_interrupt(iou_task *t, void *ctx)
{
    sleeper *s = ctx;
    iou__heap_remove(&t->loop->timers, &s->timer);
    iou__wake(t);
}

static int sleep_blocking(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

int iou_sleep(uint64_t ns)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        iou__check_blocking("iou_sleep");
        return sleep_blocking(ns);
    }
    int err = iou__interrupted(t);
    if (err)
        return err;
    sleeper s = {.timer = {.slot = IOU__TIMER_IDLE, .fire = sleep_over}, .task = t};
    iou__timer_arm(t->loop, &s.timer, iou__time_after(iou__loop_now(t->loop), ns));
    return iou__park(t, iou__sleep_interrupt, &s);
}
