/*
 * iou_dump: every task of this thread's loop, what it is doing and since
 * when (debug mode records when a task switched out), then the counters.
 *
 * A parked task is identified by its park hook and context (task.h): the
 * hooks of operations, sleeps, wait queues and joins are known here; their
 * contexts say the operation (kind, fd), the wake-up time, the primitive
 * or the joined task.
 */
#include "debug.h"
#include "waitq.h"

#include <stdio.h>

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* After now: the time left until `when`, in ms (0 when past). */
static double ms_left(uint64_t when, uint64_t now)
{
    return when > now ? ms(when - now) : 0.0;
}

static void describe_op(const iou__op *op, char *buf, size_t len)
{
    snprintf(buf, len, "operation %s on fd %d%s", iou_op_kind_name(op->kind), op->fd,
             op->cancel_sent ? " (cancel requested)" : "");
}

/* What the parked task t waits for, into buf. */
static void describe_wait(iou_task *t, uint64_t now, char *buf, size_t len)
{
    iou__interrupt_fn hook = iou__debugging(t->loop) ? t->dbg_hook : t->on_interrupt;
    void *ctx = t->interrupt_ctx;
    if (hook == NULL && t->interrupt && !iou__debugging(t->loop)) {
        snprintf(buf, len, "interrupted (%s), finishing its wait", iou_strerror(t->interrupt));
        return;
    }
    if (hook == iou__op_interrupt || (hook == NULL && ctx != NULL)) {
        describe_op(ctx, buf, len);
    } else if (hook == iou__sleep_interrupt) {
        const iou__timer *timer = ctx;
        snprintf(buf, len, "sleep, %.1f ms left", ms_left(timer->when, now));
    } else if (hook == iou__waitq_interrupt) {
        const iou__waiter *w = ctx;
        snprintf(buf, len, "%s %p", w->what ? w->what : "wait queue", w->owner);
    } else if (hook == iou__join_interrupt) {
        snprintf(buf, len, "join of task '%s'", iou__task_name(ctx));
    } else if (hook == NULL) {
        snprintf(buf, len, "an uninterruptible wait (join, condition re-lock, shutdown)");
    } else {
        snprintf(buf, len, "another primitive (select, group, gather, stream, serve)");
    }
}

static const char *state_name(uint8_t state)
{
    static const char *const names[] = {"ready", "running", "parked", "done", "freed"};
    return state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}

static void dump_task(FILE *f, iou_task *t, uint64_t now)
{
    char what[160] = "";
    char deadline[48] = "";
    char since[48] = "";
    if (t->state == IOU__TASK_PARKED)
        describe_wait(t, now, what, sizeof(what));
    else if (iou__task_done(t))
        snprintf(what, sizeof(what), "returned %d, not yet joined", t->result);
    if (t->deadline != IOU__NEVER && !iou__task_done(t))
        snprintf(deadline, sizeof(deadline), ", deadline in %.1f ms",
                 ms_left(t->deadline, iou__loop_now(t->loop)));
    if (iou__debugging(t->loop) && (t->state == IOU__TASK_PARKED || t->state == IOU__TASK_READY) &&
        t->dbg_since)
        snprintf(since, sizeof(since), " for %.1f ms", ms(now - t->dbg_since));
    fprintf(f, "iou:   task '%s': %s%s%s%s%s%s%s\n", iou__task_name(t), state_name(t->state), since,
            *what ? ": " : "", what, deadline, t->cancelled ? ", cancelled" : "",
            t->detached ? ", detached" : "");
}

void iou_dump(FILE *f)
{
    iou_loop *l = iou__loop();
    if (l == NULL || f == NULL)
        return;
    uint64_t now = iou__clock();
    size_t finished = 0;
    for (iou_task *t = l->finished; t; t = t->live_next)
        finished++;
    fprintf(f, "iou: dump of loop %p: %zu task(s) alive, %zu finished and not joined\n",
            (void *)l, l->tasks_alive, finished);
    for (iou_task *t = l->live; t; t = t->live_next)
        dump_task(f, t, now);
    for (iou_task *t = l->finished; t; t = t->live_next)
        dump_task(f, t, now);
    iou_loop_stats st = {.size = sizeof(st)};
    iou_loop_get_stats(l, &st);
    fprintf(f,
            "iou:   %zu operation(s) in flight, %zu timer(s), %zu stack(s) in use and %zu "
            "pooled; %llu enters for %llu SQEs\n",
            st.ops_in_flight, st.timers_pending, st.stacks_in_use, st.stacks_pooled,
            (unsigned long long)st.enters, (unsigned long long)st.sqes);
    fflush(f);
}
