/*
 * Debug mode (IOU_DEBUG), tracing (IOU_TRACE) and the live dump: internal
 * entry points. Everything here is reached only when l->dbg says so: a
 * normal run pays one test of a byte that never changes, or nothing (a
 * debug-mode task has its own resume function, chosen at spawn).
 */
#ifndef IOU_DEBUG_H
#define IOU_DEBUG_H

#include "loop.h"
#include "op.h"
#include "task.h"

static inline bool iou__debugging(const iou_loop *l)
{
    return __builtin_expect(l->dbg & IOU__DBG_ON, 0);
}

static inline bool iou__tracing(const iou_loop *l)
{
    return __builtin_expect(l->dbg & IOU__DBG_TRACE, 0);
}

/* ---- debug.c: the mode, slow tasks, stack marks, loop-end reports ----- */

/* Decides the mode from opts and the environment (read here, once per
 * loop) and allocates its state. Returns 0 or -ENOMEM. */
int iou__debug_init(iou_loop *l, const iou_loop_opts *opts);

/* Frees the state; first prints the stack high-water marks per spawn site. */
void iou__debug_fini(iou_loop *l);

/* Before the shutdown drain: reports tasks never joined or detached. */
void iou__debug_report_unjoined(iou_loop *l);

/* After the drain: reports tasks that ignored cancellation and their stacks. */
void iou__debug_report_abandoned(iou_loop *l);

/* A new task (its stack is painted, for the high-water mark). */
void iou__debug_spawned(iou_loop *l, iou_task *t);

/* t switched out after running from start to now: the slow-task check. */
void iou__debug_ran(iou_loop *l, iou_task *t, uint64_t start, uint64_t now);

/* t ended; its stack is still its own: measures how deep it went. */
void iou__debug_task_end(iou_loop *l, iou_task *t);

/* Once per loop iteration: prints the dump a signal asked for. */
void iou__debug_tick(iou_loop *l);

/* The longest a debug-mode loop waits, so a requested dump is not delayed. */
#define IOU__DEBUG_MAX_WAIT_NS 100000000u

/* Misuse that is reported and then handled as without debug mode. */
void iou__debug_misuse(iou_task *t, const char *what);

/* A loop touched from a thread that does not own it: reported, abort(). */
_Noreturn void iou__debug_wrong_thread(iou_loop *l, const char *fn);

/* A blocking call made by a loop callback (not a task). */
void iou__debug_blocking_in_callback(iou_loop *l, const char *fn);

/* For the "outside a task" branch of blocking calls. */
static inline void iou__check_blocking(const char *fn)
{
    iou_loop *l = iou__loop();
    if (l && iou__debugging(l) && l->running)
        iou__debug_blocking_in_callback(l, fn);
}

/* For functions that must run on l's own thread. */
static inline void iou__check_thread(iou_loop *l, const char *fn)
{
    if (iou__debugging(l) && l != iou__loop())
        iou__debug_wrong_thread(l, fn);
}

/* "name" (spawned at file:line in func), into buf. */
void iou__debug_describe(iou_task *t, char *buf, size_t len);

/* ---- trace.c ------------------------------------------------------------ */

/* t: the task awaiting op, NULL for a callback's operation. */
void iou__trace_submit(iou_loop *l, iou__op *op, iou_task *t);
void iou__trace_complete(iou_loop *l, iou__op *op, iou_task *t, int res, uint32_t flags);

/* ---- park hooks the dump recognises (defined in their modules) ---------- */

void iou__op_interrupt(iou_task *t, void *op);          /* op.c: ctx is the iou__op */
void iou__sleep_interrupt(iou_task *t, void *sleeper);  /* time.c: ctx starts with its timer */
void iou__waitq_interrupt(iou_task *t, void *waiter);   /* waitq.c: ctx is the iou__waiter */
void iou__join_interrupt(iou_task *t, void *target);    /* task.c: ctx is the joined task */

#endif
