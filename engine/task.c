/*
 * Tasks. A task runs on its own pooled stack; the loop resumes it from the
 * ready queue and it switches back to the loop whenever it ends, or parks or
 * yields with nothing else in the running batch. A task that parks or yields
 * while the batch's next node is a task switches straight into it, as the
 * loop would have (iou__switch_out). Switches are symmetric (no nesting), so
 * the stack depth stays bounded, and every task is resumed in ready-queue
 * order.
 */
#include "task.h"
#include "debug.h"
#include "fiber.h"
#include "loop.h"
#include "overflow.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TASK_POOL_MAX = 1024 }; /* finished task records kept for reuse */

iou_task *iou_self(void)
{
    return iou__current();
}

/* ---- switching ---------------------------------------------------------- */

static iou__fiber_target loop_target(iou_loop *l)
{
    return (iou__fiber_target){&l->sched_ctx, l->sched_stack_lo, l->sched_stack_size,
                               l->sched_tsan_fiber};
}

static void switch_to_loop(iou_task *t)
{
    iou__fiber_switch(&t->ctx, &t->asan_fake_stack, loop_target(t->loop));
}

static iou__fiber_target task_target(iou_task *t)
{
    return (iou__fiber_target){&t->ctx, t->stack->lo, t->stack->size, t->tsan_fiber};
}

static void resume(iou__work *w);

/* The task after next in the batch will run in a few hundred instructions:
 * start loading the top of its saved stack (its switch frame and the frames
 * and operation record just above) now. With many tasks cycling those lines
 * are out of L1 by then; only a task node's saved stack pointer is read. */
static inline void prefetch_stack_top(const iou__work *w)
{
#if !defined(IOU_CTX_UCONTEXT)
    if (w == NULL || w->run != resume)
        return;
    const char *sp = iou__container_of(w, iou_task, work)->ctx.sp;
    __builtin_prefetch(sp);
    __builtin_prefetch(sp + 64);
    __builtin_prefetch(sp + 128);
    __builtin_prefetch(sp + 192);
#else
    (void)w;
#endif
}

/*
 * Switches the running task t out after it parked or queued itself. When the
 * next node of the loop's running batch is a task, t switches straight into
 * it: the loop would do exactly that next (same FIFO order, same batch), and
 * one switch instead of two (t -> loop -> next) is most of a park/resume's
 * cost. The loop's after-run checks then apply to whichever task finally
 * switches back to it (resume() below): so t hands off only when it needs no
 * check itself (an unguarded stack's canary is checked by the loop). Debug
 * mode never hands off (its tasks run through resume_debug, which times each
 * run). A task that ends always returns to the loop, which retires its stack.
 */
void iou__switch_out(iou_task *t)
{
    iou_loop *l = t->loop;
    iou__work *w = l->batch.head;
    if (w == NULL || w->run != resume || t->check_canary) {
        switch_to_loop(t);
        return;
    }
    iou_task *next = iou__container_of(w, iou_task, work);
#if defined(IOU_ASAN)
    /* A first run learns the loop's stack from the switch that started it. */
    if (!next->asan_started) {
        switch_to_loop(t);
        return;
    }
#endif
    iou__queue_pop(&l->batch);
    prefetch_stack_top(l->batch.head);
    l->current = next;
    next->state = IOU__TASK_RUNNING;
    iou__fiber_switch_peer(&t->ctx, &t->asan_fake_stack, task_target(next));
}

/* ---- records ------------------------------------------------------------ */

static iou_task *record_alloc(iou_loop *l)
{
    iou_task *t = l->free_tasks;
    if (t) {
        l->free_tasks = t->live_next;
        l->free_task_count--;
    } else {
        /* Cache-line aligned, so the hot first line of the record is one line. */
        t = aligned_alloc(64, (sizeof(*t) + 63) & ~(size_t)63);
    }
    return t;
}

static void record_free(iou_loop *l, iou_task *t)
{
    t->state = IOU__TASK_FREED; /* lets debug mode recognise a second join */
    if (l->free_task_count >= TASK_POOL_MAX) {
        free(t);
        return;
    }
    t->live_next = l->free_tasks;
    l->free_tasks = t;
    l->free_task_count++;
}

void iou__task_pool_fini(iou_loop *l)
{
    while (l->free_tasks) {
        iou_task *t = l->free_tasks;
        l->free_tasks = t->live_next;
        free(t);
    }
    l->free_task_count = 0;
}

/* A task is on exactly one of two lists until its record is freed: live
 * (not done) or finished (done, not yet joined or detached). */
static void list_link(iou_task **head, iou_task *t)
{
    t->live_prev = NULL;
    t->live_next = *head;
    if (*head)
        (*head)->live_prev = t;
    *head = t;
}

static void list_unlink(iou_task **head, iou_task *t)
{
    if (t->live_prev)
        t->live_prev->live_next = t->live_next;
    else
        *head = t->live_next;
    if (t->live_next)
        t->live_next->live_prev = t->live_prev;
}

/* Frees the record of a finished task (joined, or detached). */
static void release_finished(iou_loop *l, iou_task *t)
{
    list_unlink(&l->finished, t);
    record_free(l, t);
}

void iou__task_finished_fini(iou_loop *l)
{
    while (l->finished) {
        iou_task *t = l->finished;
        l->finished = t->live_next;
        free(t);
    }
}

/* ---- life cycle ---------------------------------------------------------- */

/* Runs on the loop's stack once the task has switched out for the last time:
 * only now may its stack be reused. */
static void retire(iou_loop *l, iou_task *t)
{
    iou__stack_release(&l->stacks, t->stack);
    t->stack = NULL;
#if defined(IOU_TSAN)
    __tsan_destroy_fiber(t->tsan_fiber);
#endif
    if (t->detached)
        release_finished(l, t);
}

/* Runs t until the loop is switched back into; returns the task that did
 * (t, or the last task t's run handed off to). */
static inline iou_task *switch_into(iou_loop *l, iou_task *t)
{
    l->current = t;
    t->state = IOU__TASK_RUNNING;
    iou__fiber_switch(&l->sched_ctx, &l->sched_fake_stack, task_target(t));
    t = l->current;
    l->current = NULL;
    return t;
}

static inline void switched_out(iou_loop *l, iou_task *t)
{
    if (iou__task_done(t))
        retire(l, t);
    else if (t->check_canary && !iou__stack_canary_intact(t->stack))
        iou__overflow_report(t);
}

/* The ready-queue action of a task: switch into it until it switches out. */
static void resume(iou__work *w)
{
    iou_task *t = iou__container_of(w, iou_task, work);
    iou_loop *l = t->loop;
    switched_out(l, switch_into(l, t));
}

/* The same for a debug-mode task, timed (slow-task warning) and, when it
 * ends, its stack measured before the pool takes it back. */
static void resume_debug(iou__work *w)
{
    iou_task *t = iou__container_of(w, iou_task, work);
    iou_loop *l = t->loop;
    uint64_t start = iou__clock();
    t = switch_into(l, t); /* t itself: debug mode does not hand off */
    iou__debug_ran(l, t, start, iou__clock());
    if (iou__task_done(t))
        iou__debug_task_end(l, t);
    switched_out(l, t);
}

void iou__watch_add(iou_task *t, iou__watch *w)
{
    w->prev = NULL;
    w->next = t->watchers;
    if (t->watchers)
        t->watchers->prev = w;
    t->watchers = w;
}

void iou__watch_remove(iou_task *t, iou__watch *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else if (t->watchers == w)
        t->watchers = w->next;
    else
        return; /* not watching t (already notified) */
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

static void notify_watchers(iou_task *t)
{
    while (t->watchers) {
        iou__watch *w = t->watchers;
        t->watchers = w->next;
        if (t->watchers)
            t->watchers->prev = NULL;
        w->next = w->prev = NULL;
        w->fn(w, t);
    }
}

static void finish(iou_task *t, int result)
{
    iou_loop *l = t->loop;
    t->result = result;
    t->state = IOU__TASK_DONE;
    list_unlink(&l->live, t);
    l->tasks_alive--;
    list_link(&l->finished, t);
    notify_watchers(t);
    if (t->joiner)
        iou__wake(t->joiner);
}

/* First and last frame of every task's stack. */
static void task_main(void *arg)
{
    iou_task *t = arg;
    iou_loop *l = t->loop;
    iou__fiber_started(&l->sched_stack_lo, &l->sched_stack_size);
#if defined(IOU_ASAN)
    t->asan_started = true;
#endif
    finish(t, t->fn(t->arg));
    /* NULL fake stack: this context never resumes, so ASan may free it. */
    iou__fiber_switch(&t->ctx, NULL, loop_target(l));
    abort(); /* unreachable: nothing switches into a finished task */
}

static void deadline_fired(iou__timer *timer);

iou_task *iou__spawn(iou_loop *l, iou_fn fn, void *arg, const iou_spawn_opts *opts)
{
    size_t size = opts && opts->stack_size ? opts->stack_size : l->default_stack;
    iou_task *t = record_alloc(l);
    if (t == NULL)
        return NULL;
    memset(t, 0, offsetof(iou_task, name)); /* the name buffer is not cleared: only name[0] */
    t->name[0] = '\0';
    t->stack = iou__stack_acquire(&l->stacks, size);
    if (t->stack == NULL) {
        record_free(l, t);
        return NULL;
    }
    t->loop = l;
    t->fn = fn;
    t->arg = arg;
    if (opts && opts->name)
        iou_task_set_name(t, opts->name);
    t->deadline = IOU__NEVER;
    t->deadline_timer.slot = IOU__TIMER_IDLE;
    t->deadline_timer.fire = deadline_fired;
    t->work.run = resume;
    if (iou__debugging(l)) {
        t->work.run = resume_debug;
        iou__debug_spawned(l, t);
    }
    t->state = IOU__TASK_READY;
    t->check_canary = t->stack->guard == IOU__GUARD_CANARY;
#if defined(IOU_TSAN)
    t->tsan_fiber = __tsan_create_fiber(0);
#endif
    iou__ctx_make(&t->ctx, t->stack->lo, t->stack->size, task_main, t);
    list_link(&l->live, t);
    l->tasks_alive++;
    iou__ready(l, &t->work);
    return t;
}

/* The public spawns. iou.h turns iou_spawn() / iou_spawn_ex() calls into the
 * _at variants; the parenthesised names below define the plain functions
 * that older binaries link against. */
static inline iou_task *spawn_at(iou_fn fn, void *arg, const iou_spawn_opts *opts,
                                 const char *file, int line, const char *func)
{
    iou_loop *l = iou__loop();
    if (l == NULL || fn == NULL)
        return NULL;
    iou_task *t = iou__spawn(l, fn, arg, opts);
    if (t) {
        t->site_file = file;
        t->site_line = line;
        t->site_func = func;
    }
    return t;
}

iou_task *iou_spawn_ex_at(iou_fn fn, void *arg, const iou_spawn_opts *opts, const char *file,
                          int line, const char *func)
{
    return spawn_at(fn, arg, opts, file, line, func);
}

iou_task *iou_spawn_at(iou_fn fn, void *arg, const char *file, int line, const char *func)
{
    return spawn_at(fn, arg, NULL, file, line, func);
}

iou_task *(iou_spawn_ex)(iou_fn fn, void *arg, const iou_spawn_opts *opts)
{
    return iou_spawn_ex_at(fn, arg, opts, NULL, 0, NULL);
}

iou_task *(iou_spawn)(iou_fn fn, void *arg)
{
    return iou_spawn_ex_at(fn, arg, NULL, NULL, 0, NULL);
}

iou_task *iou_loop_spawn(iou_loop *l, iou_fn fn, void *arg)
{
    if (l == NULL || fn == NULL)
        return NULL;
    iou__check_thread(l, "iou_loop_spawn");
    return iou__spawn(l, fn, arg, NULL);
}

/* ---- names ------------------------------------------------------------------ */

const char *iou__task_name(iou_task *t)
{
    if (t->name[0])
        return t->name;
    if (t->site_file == NULL) {
        snprintf(t->name, sizeof(t->name), "task");
    } else {
        const char *slash = strrchr(t->site_file, '/');
        snprintf(t->name, sizeof(t->name), "%s:%d %s", slash ? slash + 1 : t->site_file,
                 t->site_line, t->site_func ? t->site_func : "?");
    }
    return t->name;
}

int iou_task_set_name(iou_task *t, const char *name)
{
    if (t == NULL)
        return -EINVAL;
    iou__check_thread(t->loop, "iou_task_set_name");
    size_t n = name ? strnlen(name, sizeof(t->name) - 1) : 0;
    if (name)
        memcpy(t->name, name, n);
    t->name[n] = '\0'; /* "": the default name is formatted again when asked for */
    return 0;
}

const char *iou_task_name(iou_task *t)
{
    if (t == NULL)
        t = iou__current();
    return t ? iou__task_name(t) : "";
}

/* ---- parking -------------------------------------------------------------- */

int iou__interrupted_slow(iou_task *t)
{
    if (t->cancelled)
        return -ECANCELED;
    if (t->deadline != IOU__NEVER && iou__loop_now(t->loop) >= t->deadline)
        return -ETIMEDOUT;
    return 0;
}

/* Delivers an interruption to a parked task: its hook runs at most once per
 * park. A later cancellation still upgrades the reason (cancel beats deadline). */
static void interrupt(iou_task *t, int reason)
{
    if (t->interrupt) {
        if (reason == -ECANCELED)
            t->interrupt = reason;
        return;
    }
    iou__interrupt_fn hook = t->on_interrupt;
    if (hook == NULL)
        return;
    t->interrupt = reason;
    t->on_interrupt = NULL;
    iou__heap_remove(&t->loop->timers, &t->deadline_timer);
    hook(t, t->interrupt_ctx);
}

static void deadline_fired(iou__timer *timer)
{
    iou_task *t = iou__container_of(timer, iou_task, deadline_timer);
    interrupt(t, t->cancelled ? -ECANCELED : -ETIMEDOUT);
}

/* iou__park and iou__wake are inline (task.h); their deadline timer is here. */
void iou__park_arm_deadline(iou_task *t)
{
    iou__timer_arm(t->loop, &t->deadline_timer, t->deadline);
}

void iou__wake_disarm_deadline(iou_task *t)
{
    if (iou__timer_armed(&t->deadline_timer))
        iou__heap_remove(&t->loop->timers, &t->deadline_timer);
}

/* ---- public operations on tasks ------------------------------------------ */

int iou_cancel(iou_task *t)
{
    if (t == NULL)
        return -EINVAL;
    iou__check_thread(t->loop, "iou_cancel");
    if (iou__task_done(t))
        return -ESRCH;
    t->cancelled = true;
    if (t->state == IOU__TASK_PARKED)
        interrupt(t, -ECANCELED);
    else if (t->state == IOU__TASK_READY && t->interrupt == -ETIMEDOUT)
        t->interrupt = -ECANCELED; /* woken by its deadline, not yet resumed: cancel wins */
    return 0;
}

bool iou_cancelled(void)
{
    iou_task *t = iou__current();
    return t && t->cancelled;
}

void iou__cancel_all(iou_loop *l)
{
    for (iou_task *t = l->live; t; t = t->live_next)
        iou_cancel(t);
}

/* A joiner that is interrupted takes its target down with it, then keeps
 * waiting: a joined task is never left running unowned. */
void iou__join_interrupt(iou_task *joiner, void *target)
{
    (void)joiner;
    iou_cancel(target);
}

/* Why target cannot be joined by t (a misuse), or NULL. */
static const char *join_refusal(const iou_task *t, const iou_task *target)
{
    if (target->state == IOU__TASK_FREED)
        return "iou_join of an already joined (freed)";
    if (target == t)
        return "iou_join of itself by";
    if (target->detached)
        return "iou_join of a detached";
    if (target->joiner)
        return "iou_join of a task already being joined:";
    if (target->loop != t->loop)
        return "iou_join of another loop's";
    return NULL;
}

/* The misuse path of iou_join: reported in debug mode. */
static int join_refused(iou_task *t, iou_task *target)
{
    if (target && iou__debugging(t->loop))
        iou__debug_misuse(target, join_refusal(t, target));
    return -EINVAL;
}

int iou_join(iou_task *target)
{
    iou_task *t = iou__current();
    if (t == NULL)
        return -EPERM;
    if (target == NULL || target == t || target->detached || target->joiner ||
        target->loop != t->loop || target->state == IOU__TASK_FREED)
        return join_refused(t, target);
    if (!iou__task_done(target)) {
        target->joiner = t;
        if (iou__interrupted(t)) {
            iou_cancel(target);
            iou__park(t, NULL, NULL);
        } else {
            iou__park(t, iou__join_interrupt, target);
        }
    }
    int result = target->result;
    release_finished(t->loop, target);
    return result;
}

void iou_detach(iou_task *t)
{
    if (t == NULL)
        return;
    iou__check_thread(t->loop, "iou_detach");
    if (t->state == IOU__TASK_FREED || t->joiner) {
        if (iou__debugging(t->loop))
            iou__debug_misuse(t, t->state == IOU__TASK_FREED ? "iou_detach of an already freed"
                                                             : "iou_detach of a task being joined:");
        return;
    }
    if (t->detached)
        return;
    if (iou__task_done(t)) {
        release_finished(t->loop, t);
        return;
    }
    t->detached = true;
}

int iou_yield(void)
{
    iou_task *t = iou__current();
    if (t == NULL) {
        sched_yield();
        return 0;
    }
    t->state = IOU__TASK_READY;
    iou__ready(t->loop, &t->work);
    iou__switch_out(t);
    return iou__interrupted(t);
}
