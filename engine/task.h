/*
 * Tasks: stackful coroutines scheduled by the loop, and the park/wake pair
 * every blocking primitive is built from.
 */
#ifndef IOU_TASK_H
#define IOU_TASK_H

#include "ctx.h"
#include "loop.h"
#include "queue.h"
#include "sanitizer.h"
#include "stack.h"
#include "timer_heap.h"

#include <iou.h>

typedef struct iou_loop iou_loop;

enum iou__task_state {
    IOU__TASK_READY,   /* in the ready queue */
    IOU__TASK_RUNNING,
    IOU__TASK_PARKED,  /* suspended until iou__wake() */
    IOU__TASK_DONE,    /* fn returned; waiting to be joined (or freed if detached) */
    IOU__TASK_FREED,   /* record back in the pool: joined, or detached and done */
};

/*
 * Called at most once per park when the parked task is cancelled or its
 * deadline passes (t->interrupt says which). It must lead to iou__wake(t),
 * immediately or later (e.g. when the kernel returns a cancelled operation).
 */
typedef void (*iou__interrupt_fn)(iou_task *t, void *ctx);

/* A watcher is told when a task finishes (groups, wait_any, as_completed).
 * Its record belongs to the watcher; fn runs on the loop right after the
 * task's function returned (the task is DONE but not yet joined). */
typedef struct iou__watch iou__watch;
struct iou__watch {
    iou__watch *next, *prev;
    void (*fn)(iou__watch *w, iou_task *done);
};

struct iou_task {
    /* Hot: everything one park/wake/resume cycle touches, in one cache line
     * (with 128 tasks cycling, their records do not all fit in L1). */
    iou__ctx ctx;
    iou__work work; /* ready-queue node: running it resumes the task */
    iou_loop *loop;
    uint8_t state;
    bool cancelled;
    bool detached;
    bool check_canary; /* unguarded stack: check its canary at each switch out */
    int interrupt;     /* 0, -ECANCELED or -ETIMEDOUT: why this park was interrupted */
    iou__interrupt_fn on_interrupt;
    void *interrupt_ctx;
    uint64_t deadline; /* absolute, IOU__NEVER when unbounded */
    /* Cold. */
    iou__timer deadline_timer; /* armed only while parked under a deadline */
    iou__stack *stack;
    iou_fn fn;
    void *arg;
    int result;
    iou_task *joiner;
    iou__watch *watchers;
    iou_task *live_prev, *live_next; /* the loop's list this task is on */
    void *asan_fake_stack;
#if defined(IOU_ASAN)
    bool asan_started; /* has run (task.c: hand-offs only into tasks that have) */
#endif
    void *tsan_fiber;
    /* Diagnostics (debug.c, dump.c, trace.c). */
    const char *site_file, *site_func; /* where it was spawned; NULL: unknown */
    int site_line;
    /* Not cleared at spawn (spawn cost): each is written before it is read. */
    char name[IOU_TASK_NAME_MAX]; /* "" (name[0] is cleared): the default name */
    uint64_t dbg_since;           /* debug mode: since spawn / last switch out */
    iou__interrupt_fn dbg_hook;   /* debug mode: its park's hook (kept when interrupted) */
    uint64_t trace_start;         /* tracing: when its awaited operation was submitted */
};

int iou__interrupted_slow(iou_task *t);

/* 0 if t may block now, else -ECANCELED or -ETIMEDOUT. */
static inline int iou__interrupted(iou_task *t)
{
    if (!t->cancelled && t->deadline == IOU__NEVER)
        return 0;
    return iou__interrupted_slow(t);
}

/* The out-of-line parts of iou__park and iou__wake (task.c): switching the
 * parked task out, and its deadline timer. */
void iou__switch_out(iou_task *t);
void iou__park_arm_deadline(iou_task *t);
void iou__wake_disarm_deadline(iou_task *t);

/*
 * Suspends the running task t until iou__wake(t). hook (may be NULL: then
 * nothing interrupts this park) is called if t is cancelled or its deadline
 * passes meanwhile. Returns t->interrupt: 0 if no interruption happened.
 * A cancellation that arrived before the park does not call the hook:
 * callers check iou__interrupted(t) first (as iou__op_await does).
 * Inline: a park is on every blocking call's path (one frame less on the
 * task's stack, the stores next to the caller's).
 */
static inline int iou__park(iou_task *t, iou__interrupt_fn hook, void *ctx)
{
    t->state = IOU__TASK_PARKED;
    t->on_interrupt = hook;
    t->interrupt_ctx = ctx;
    t->interrupt = 0;
    if (hook && t->deadline != IOU__NEVER)
        iou__park_arm_deadline(t);
    iou__switch_out(t);
    return t->interrupt;
}

/* Makes a parked task ready again (FIFO). Must be called exactly once per park. */
static inline void iou__wake(iou_task *t)
{
    t->state = IOU__TASK_READY;
    t->on_interrupt = NULL;
    if (t->deadline != IOU__NEVER)
        iou__wake_disarm_deadline(t);
    iou__ready(t->loop, &t->work);
}

/* Adds / removes a watcher of a task that has not finished. */
void iou__watch_add(iou_task *t, iou__watch *w);
void iou__watch_remove(iou_task *t, iou__watch *w);

static inline bool iou__task_done(const iou_task *t)
{
    return t->state == IOU__TASK_DONE;
}

iou_task *iou__spawn(iou_loop *l, iou_fn fn, void *arg, const iou_spawn_opts *opts);

/* The task's name: set, or the default formatted into t->name on first use. */
const char *iou__task_name(iou_task *t);

/* Cancels every live task of l (loop shutdown). */
void iou__cancel_all(iou_loop *l);

/* Frees the pooled task records of l. */
void iou__task_pool_fini(iou_loop *l);

/* Frees the records of finished tasks nobody joined or detached. */
void iou__task_finished_fini(iou_loop *l);

#endif
