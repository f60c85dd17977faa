/*
 * The loop: creation, the run cycle, shutdown.
 *
 * One iteration: run the ready batch (everything queued when it began; what
 * it queues waits for the next one, so I/O is polled between batches), fire
 * due timers, then one backend poll that submits every SQE the batch made and
 * reaps completions, waiting only when nothing is ready.
 */
#include "loop.h"
#include "debug.h"
#include "fault.h"
#include "feature_mask.h"
#include "op.h"
#include "overflow.h"
#include "remote.h"
#include "sanitizer.h"
#include "task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum {
    DEFAULT_ENTRIES = 256,
    DEFAULT_STACK = 64 * 1024,
};

__thread iou_loop *iou__this_thread_loop;

iou_loop *iou_loop_current(void)
{
    return iou__this_thread_loop;
}

uint64_t iou__clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t iou__loop_now(const iou_loop *l)
{
    return l->virtual_clock ? l->virtual_now : iou__clock();
}

void iou__timer_arm(iou_loop *l, iou__timer *t, uint64_t when)
{
    if (iou__heap_insert(&l->timers, t, when) < 0) {
        fputs("iou: out of memory for the timer heap\n", stderr);
        abort();
    }
}

iou_loop *iou_loop_new_ex(const iou_loop_opts *opts, int *err)
{
    int dummy;
    err = err ? err : &dummy;
    if (iou__this_thread_loop) {
        *err = -EBUSY;
        return NULL;
    }
    iou_loop *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    unsigned entries = opts && opts->ring_entries ? opts->ring_entries : DEFAULT_ENTRIES;
    l->disabled = iou__features_disabled_env();
    int ret = iou__fault_init(l);
    if (ret < 0)
        goto fail;
    ret = iou__debug_init(l, opts);
    if (ret < 0)
        goto fail_fault;
    ret = iou__backend_open(l, opts ? opts->backend : NULL, entries);
    if (ret < 0)
        goto fail_debug;
    ret = iou__remote_init(l);
    if (ret < 0)
        goto fail_backend;
#if defined(IOU_TSAN)
    l->sched_tsan_fiber = __tsan_get_current_fiber(); /* tasks switch back to this thread's own */
#endif
    iou__queue_init(&l->ready);
    iou__queue_init(&l->batch);
    iou__heap_init(&l->timers);
    iou__stack_pool_init(&l->stacks);
    l->default_stack = opts && opts->stack_size ? opts->stack_size : DEFAULT_STACK;
    l->virtual_clock = opts && opts->virtual_clock;
    iou__read_fastpath_init(l, !(opts && opts->no_read_fastpath));
    l->virtual_now = iou__clock();
    l->owner = pthread_self();
    iou__overflow_thread_init(l);
    iou__this_thread_loop = l;
    *err = 0;
    return l;

fail_backend:
    l->backend->fini(l);
fail_debug:
    iou__debug_fini(l);
fail_fault:
    iou__fault_fini(l);
fail:
    free(l);
    *err = ret;
    return NULL;
}

iou_loop *iou_loop_new(void)
{
    return iou_loop_new_ex(NULL, NULL);
}

/* The batch is the loop's, not a local: a task switching out may run the
 * next task of the batch itself (task.c), which pops it from here. */
static void run_ready_batch(iou_loop *l)
{
    iou__queue_take(&l->batch, &l->ready);
    iou__work *w;
    while ((w = iou__queue_pop(&l->batch)))
        w->run(w);
}

static void fire_due_timers(iou_loop *l)
{
    if (iou__heap_next(&l->timers) == IOU__NEVER)
        return;
    uint64_t now = iou__loop_now(l);
    iou__timer *t;
    while ((t = iou__heap_pop_due(&l->timers, now)))
        t->fire(t);
}

/* Nothing queued, in flight or timed, no pool job out, nothing posted and no
 * keepalive held: no event can ever arrive. */
bool iou__loop_idle(const iou_loop *l)
{
    return iou__queue_empty(&l->ready) && l->ops_inflight == 0 &&
           iou__heap_next(&l->timers) == IOU__NEVER && !iou__remote_busy(l);
}

/* Virtual time: with no I/O in flight, jump straight to the next timer. With
 * I/O in flight, wait for it in real time and let virtual time advance by the
 * real time waited (capped at the next timer): I/O is never overtaken by a
 * jump, and a stream of unrelated completions cannot freeze the clock. */
static int wait_virtual(iou_loop *l, uint64_t next)
{
    if (l->ops_inflight == 0 && !iou__remote_busy(l)) {
        if (next > l->virtual_now)
            l->virtual_now = next;
        return 0;
    }
    uint64_t gap = next == IOU__NEVER ? IOU__NEVER : next - l->virtual_now;
    uint64_t start = iou__clock();
    int err = l->backend->poll(l, gap);
    uint64_t waited = iou__clock() - start;
    l->virtual_now += waited < gap ? waited : gap;
    return err;
}

static inline int wait_for_events(iou_loop *l, bool debug)
{
    uint64_t next = iou__heap_next(&l->timers);
    uint64_t timeout = IOU__NEVER;
    if (next != IOU__NEVER && !l->virtual_clock) {
        uint64_t now = iou__clock();
        timeout = next > now ? next - now : 0;
    }
    if (debug && timeout > IOU__DEBUG_MAX_WAIT_NS)
        timeout = IOU__DEBUG_MAX_WAIT_NS; /* a dump asked for by signal is not held up */
    /* A post (or the last keepalive's release) that arrived since the
     * iteration began: do not block, the next iteration takes it. */
    if (!iou__remote_sleep(l) || iou__loop_idle(l)) {
        iou__remote_awake(l);
        return 0;
    }
    int err = l->virtual_clock ? wait_virtual(l, next) : l->backend->poll(l, timeout);
    iou__remote_awake(l);
    return err;
}

/* The cycle. debug is a constant in each of its two copies, so a normal loop
 * tests nothing per iteration for debug mode. */
static inline __attribute__((always_inline)) int run_cycle(iou_loop *l, iou_task *until,
                                                           bool debug)
{
    int err = 0;
    for (;;) {
        if (iou__remote_pending(l))
            iou__remote_run(l);
        run_ready_batch(l);
        fire_due_timers(l);
        if (debug)
            iou__debug_tick(l); /* a dump a signal asked for */
        if (l->stop_requested || (until && until->state == IOU__TASK_DONE))
            break;
        if (!iou__queue_empty(&l->ready)) {
            /* Every SQE belongs to an operation in flight: none, nothing to poll. */
            if (l->ops_inflight)
                err = l->backend->poll(l, 0);
        } else if (iou__loop_idle(l)) {
            break;
        } else {
            err = wait_for_events(l, debug);
        }
        if (err)
            break;
    }
    return err;
}

/* Runs until stopped, idle, or (if until is given) until that task is done. */
int iou__loop_run_until(iou_loop *l, iou_task *until)
{
    if (!pthread_equal(l->owner, pthread_self()))
        return -EPERM;
    if (l->running)
        return -EBUSY;
    l->running = true;
    int err = iou__debugging(l) ? run_cycle(l, until, true) : run_cycle(l, until, false);
    l->stop_requested = false;
    l->running = false;
    return err;
}

int iou_loop_run(iou_loop *l)
{
    return iou__loop_run_until(l, NULL);
}

void iou_loop_stop(iou_loop *l)
{
    l->stop_requested = true;
}

/* Cancels every task and runs until they have ended and the kernel has
 * returned every operation. A task that ignores cancellation and parks
 * forever on nothing is abandoned only once no kernel operation is left. */
void iou__loop_drain(iou_loop *l)
{
    while (l->tasks_alive || l->ops_inflight || !iou__queue_empty(&l->ready) ||
           iou__remote_busy(l)) {
        iou__callbacks_drop(l); /* pending callbacks and their timers are dropped, not awaited */
        iou__cancel_all(l);
        iou__raw_cancel_all(l);
        iou__bufring_cancel_all(l); /* multishot receives of streams nobody closed */
        size_t before = l->tasks_alive;
        if (iou__loop_run_until(l, NULL) < 0 && l->ops_inflight)
            continue;
        if (l->tasks_alive == before && l->ops_inflight == 0 && iou__queue_empty(&l->ready) &&
            !iou__remote_busy(l))
            break;
    }
}

void iou_loop_free(iou_loop *l)
{
    if (l == NULL)
        return;
    if (l->running || !pthread_equal(l->owner, pthread_self())) {
        fputs("iou: iou_loop_free called from inside the loop or another thread\n", stderr);
        abort();
    }
    iou__remote_close(l); /* later posts get -ESHUTDOWN; accepted ones still run */
    if (iou__debugging(l))
        iou__debug_report_unjoined(l);
    iou__loop_drain(l);
    if (l->tasks_alive)
        fprintf(stderr, "iou: %zu task(s) ignored cancellation and were abandoned\n",
                l->tasks_alive);
    if (iou__debugging(l))
        iou__debug_report_abandoned(l);
    iou__debug_fini(l);
    iou__task_finished_fini(l);
    iou__callbacks_fini(l);
    iou__heap_fini(&l->timers);
    iou__bufring_fini(l); /* after the drain: the kernel holds none of its buffers */
    iou__fixed_bufs_fini(l); /* the same for registered buffers and files */
    iou__fixed_files_fini(l);
    iou__read_fastpath_fini(l);
    iou__spill_cache_fini(l);
    iou__remote_fini(l);     /* takes the wake-up read back from the kernel */
    l->backend->fini(l);
    iou__fault_fini(l);
    iou__task_pool_fini(l);
    /* Last: abandoned tasks are parked on nothing the kernel owns, and the
     * timer heap (which could point into them) is gone. */
    while (l->live) {
        iou_task *t = l->live;
        l->live = t->live_next;
        free(t);
    }
    iou__stack_pool_fini(&l->stacks);
    iou__overflow_thread_fini(l);
    iou__this_thread_loop = NULL;
    free(l);
}
