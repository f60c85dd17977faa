/*
 * Tasks: spawn, join, yield, detach, cancel, shutdown and stacks.
 * Every ordering assertion is exact: the ready queue is FIFO by contract.
 */
#include "check.h"
#include "loop.h"
#include "task.h"
#include "testutil.h"

#include <fcntl.h>
#include <iou.h>
#include <string.h>
#include <unistd.h>


/* ---- an order trace ------------------------------------------------------ */

static char trace[256];
static size_t trace_len;

static void trace_reset(void)
{
    memset(trace, 0, sizeof(trace));
    trace_len = 0;
}

static void mark(char c)
{
    CHECK(trace_len + 1 < sizeof(trace));
    trace[trace_len++] = c;
}

#define CHECK_TRACE(expected)                                                         \
    do {                                                                              \
        if (strcmp(trace, expected) != 0) {                                           \
            fprintf(stderr, "%s:%d: trace \"%s\", expected \"%s\"\n", __FILE__, __LINE__, \
                    trace, expected);                                                 \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

static iou_loop *loop(void)
{
    iou_loop *l = iou_loop_current();
    CHECK(l != NULL);
    return l;
}

/* ---- spawn / join ---------------------------------------------------------- */

static iou_task *seen_self;

static int return_arg(void *arg)
{
    seen_self = iou_self();
    return (int)(intptr_t)arg;
}

static int join_value_main(void *arg)
{
    (void)arg;
    CHECK(iou_self() != NULL);
    iou_task *t = iou_spawn(return_arg, (void *)(intptr_t)-12345);
    CHECK(t != NULL);
    CHECK_EQ(iou_join(t), -12345);
    CHECK(seen_self == t); /* the handle is the task that ran */
    return 77;
}

static void test_join_returns_value(void)
{
    CHECK_EQ(run_or_skip(join_value_main, NULL), 77);
}

static int mark_arg(void *arg)
{
    mark(*(const char *)arg);
    return 0;
}

/* Spawned tasks wait for the spawner to suspend, then start in spawn order. */
static int fifo_start_main(void *arg)
{
    (void)arg;
    trace_reset();
    iou_task *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = iou_spawn(mark_arg, &"ABCD"[i]);
    CHECK(iou_cancelled() == false);
    CHECK_TRACE(""); /* nothing ran: the spawner has not suspended */
    mark('m');
    CHECK_EQ(iou_yield(), 0);
    mark('M');
    CHECK_TRACE("mABCDM");
    for (int i = 0; i < 4; i++)
        CHECK_EQ(iou_join(t[i]), 0);
    return 0;
}

static void test_fifo_start(void)
{
    CHECK_EQ(run_or_skip(fifo_start_main, NULL), 0);
}

/* ---- yield ------------------------------------------------------------------ */

static int yield_three_times(void *arg)
{
    for (int i = 0; i < 3; i++) {
        mark(*(const char *)arg);
        CHECK_EQ(iou_yield(), 0);
    }
    return 0;
}

static int round_robin_main(void *arg)
{
    (void)arg;
    trace_reset();
    iou_task *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = iou_spawn(yield_three_times, &"abc"[i]);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_join(t[i]), 0);
    CHECK_TRACE("abcabcabc");
    /* The spawner takes its turn in the rotation too. */
    trace_reset();
    iou_task *u = iou_spawn(yield_three_times, "x");
    for (int i = 0; i < 3; i++) {
        mark('M');
        CHECK_EQ(iou_yield(), 0);
    }
    CHECK_EQ(iou_join(u), 0);
    CHECK_TRACE("MxMxMx");
    return 0;
}

static void test_round_robin(void)
{
    CHECK_EQ(run_or_skip(round_robin_main, NULL), 0);
}

/* ---- detach ------------------------------------------------------------------ */

static int detached_done;

static int detached_body(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_yield(), 0);
    CHECK_EQ(iou_nop(), 0);
    detached_done++;
    return 0;
}

/* Inside a loop: once the detached tasks have ended, only main remains. */
static int detach_main(void *arg)
{
    (void)arg;
    iou_loop *l = loop();
    detached_done = 0;
    for (int i = 0; i < 10; i++)
        iou_detach(iou_spawn(detached_body, NULL));
    CHECK_EQ(l->tasks_alive, 11);
    /* A task that ends is retired before anything else runs. */
    while (detached_done < 10)
        CHECK_EQ(iou_yield(), 0);
    CHECK_EQ(l->tasks_alive, 1);
    CHECK_EQ(l->stacks.in_use, 1);
    return 0;
}

/* From setup code: the loop runs until the detached tasks are gone. */
static void test_detach(void)
{
    CHECK_EQ(run_or_skip(detach_main, NULL), 0);
    iou_loop *l = iou_loop_new();
    CHECK(l != NULL);
    detached_done = 0;
    for (int i = 0; i < 10; i++) {
        iou_task *t = iou_loop_spawn(l, detached_body, NULL);
        CHECK(t != NULL);
        iou_detach(t);
    }
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(detached_done, 10);
    CHECK_EQ(l->tasks_alive, 0);
    CHECK_EQ(l->stacks.in_use, 0);
    iou_loop_free(l);
}

/* ---- cancel ------------------------------------------------------------------ */

typedef struct sleeper {
    int first, second, nop, yield, close;
    bool cancelled_flag;
    int fd;
} sleeper;

/* Sleeps "forever"; after cancellation every blocking call fails but close works. */
static int cancelled_sleeper(void *arg)
{
    sleeper *s = arg;
    s->first = iou_sleep(HOUR);
    s->cancelled_flag = iou_cancelled();
    s->second = iou_sleep(MS(1));
    s->nop = iou_nop();
    s->yield = iou_yield();
    s->close = iou_close(s->fd);
    return 99;
}

static int cancel_sleep_main(void *arg)
{
    (void)arg;
    int p[2];
    CHECK(pipe(p) == 0);
    sleeper s = {.fd = p[0]};
    iou_task *t = iou_spawn(cancelled_sleeper, &s);
    CHECK_EQ(iou_yield(), 0); /* t is now asleep */
    uint64_t t0 = mono_ns();
    CHECK_EQ(iou_cancel(t), 0);
    CHECK_EQ(iou_cancel(t), 0); /* a second request is harmless */
    CHECK_EQ(iou_join(t), 99);
    CHECK(mono_ns() - t0 < MS(2000));
    CHECK_EQ(s.first, -ECANCELED);
    CHECK(s.cancelled_flag);
    CHECK_EQ(s.second, -ECANCELED);
    CHECK_EQ(s.nop, -ECANCELED);
    CHECK_EQ(s.yield, -ECANCELED);
    CHECK_EQ(s.close, 0);
    errno = 0;
    CHECK(fcntl(p[0], F_GETFD) == -1 && errno == EBADF);
    close(p[1]);
    CHECK(!iou_cancelled()); /* main itself was not cancelled */
    return 0;
}

static void test_cancel_sleeping(void)
{
    CHECK_EQ(run_or_skip(cancel_sleep_main, NULL), 0);
}

static int sleep_result;

static int sleep_once(void *arg)
{
    (void)arg;
    sleep_result = iou_sleep(HOUR);
    return 5;
}

/* A task cancelled before it ever ran still runs; its first block fails. */
static int cancel_unstarted_main(void *arg)
{
    (void)arg;
    sleep_result = 1;
    iou_task *t = iou_spawn(sleep_once, NULL);
    CHECK_EQ(iou_cancel(t), 0);
    CHECK_EQ(iou_join(t), 5);
    CHECK_EQ(sleep_result, -ECANCELED);
    return 0;
}

static void test_cancel_unstarted(void)
{
    CHECK_EQ(run_or_skip(cancel_unstarted_main, NULL), 0);
}

static int cancel_finished_main(void *arg)
{
    (void)arg;
    iou_task *t = iou_spawn(return_arg, (void *)(intptr_t)3);
    CHECK_EQ(iou_yield(), 0); /* t ran to its end, nobody joined it yet */
    CHECK_EQ(iou_cancel(t), -ESRCH);
    CHECK_EQ(iou_join(t), 3);
    CHECK_EQ(iou_cancel(NULL), -EINVAL);
    return 0;
}

static void test_cancel_finished(void)
{
    CHECK_EQ(run_or_skip(cancel_finished_main, NULL), 0);
}

/* ---- join: invalid targets, and cancellation while joining ------------------ */

static bool release_flag;

static int wait_for_release(void *arg)
{
    while (!release_flag)
        CHECK_EQ(iou_yield(), 0);
    return (int)(intptr_t)arg;
}

static int join_target(void *arg)
{
    return iou_join(arg);
}

static int join_invalid_main(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_join(iou_self()), -EINVAL);
    CHECK_EQ(iou_join(NULL), -EINVAL);
    release_flag = false;
    iou_task *d = iou_spawn(wait_for_release, NULL);
    iou_detach(d);
    CHECK_EQ(iou_join(d), -EINVAL); /* still alive: it has not run yet */
    iou_task *t = iou_spawn(wait_for_release, (void *)(intptr_t)7);
    iou_task *j = iou_spawn(join_target, t);
    CHECK_EQ(iou_yield(), 0); /* j now waits on t */
    CHECK_EQ(iou_join(t), -EINVAL); /* already being joined */
    release_flag = true;
    CHECK_EQ(iou_join(j), 7);
    return 0;
}

static void test_join_invalid(void)
{
    CHECK_EQ(run_or_skip(join_invalid_main, NULL), 0);
}

typedef struct joiner_state {
    iou_task *target;
    int joined, after;
} joiner_state;

static int sleeper_rc;

static int sleep_then_42(void *arg)
{
    (void)arg;
    sleeper_rc = iou_sleep(HOUR);
    return 42;
}

static int joiner(void *arg)
{
    joiner_state *s = arg;
    s->joined = iou_join(s->target);
    s->after = iou_sleep(MS(1));
    return 5;
}

/* Cancelling a joiner cancels its joinee, and the join still yields its value. */
static int cancel_joiner_main(void *arg)
{
    (void)arg;
    sleeper_rc = 1;
    joiner_state s = {.target = iou_spawn(sleep_then_42, NULL)};
    iou_task *j = iou_spawn(joiner, &s);
    CHECK_EQ(iou_yield(), 0);
    CHECK_EQ(iou_cancel(j), 0);
    CHECK_EQ(iou_join(j), 5);
    CHECK_EQ(sleeper_rc, -ECANCELED);
    CHECK_EQ(s.joined, 42);
    CHECK_EQ(s.after, -ECANCELED);
    CHECK_EQ(loop()->tasks_alive, 1);
    return 0;
}

static void test_cancel_joiner(void)
{
    CHECK_EQ(run_or_skip(cancel_joiner_main, NULL), 0);
}

/* ---- shutdown: iou_run cancels and awaits what main leaves behind ----------- */

enum { LEFT_BEHIND = 100 };
static int shutdown_ran, shutdown_cancelled, shutdown_closed;

/* Owns a pipe; cleanup after cancellation must still close it. */
static int long_sleeper(void *arg)
{
    int *p = arg;
    shutdown_ran++;
    if (iou_sleep(HOUR) == -ECANCELED)
        shutdown_cancelled++;
    if (iou_close(p[0]) == 0 && iou_close(p[1]) == 0)
        shutdown_closed++;
    return 0;
}

static int leave_sleepers_main(void *arg)
{
    static int pipes[LEFT_BEHIND][2];
    bool started = *(bool *)arg;
    for (int i = 0; i < LEFT_BEHIND; i++) {
        CHECK(pipe(pipes[i]) == 0);
        CHECK(iou_spawn(long_sleeper, pipes[i]) != NULL);
    }
    if (started)
        CHECK_EQ(iou_yield(), 0); /* every sleeper is now asleep */
    return 1234;
}

static void run_leave_sleepers(bool started)
{
    shutdown_ran = shutdown_cancelled = shutdown_closed = 0;
    int fds = count_fds();
    uint64_t t0 = mono_ns();
    CHECK_EQ(run_or_skip(leave_sleepers_main, &started), 1234);
    CHECK(mono_ns() - t0 < MS(3000));
    if (started)
        CHECK_EQ(shutdown_ran, LEFT_BEHIND);
    CHECK_EQ(shutdown_cancelled, shutdown_ran); /* whoever ran saw -ECANCELED */
    CHECK_EQ(shutdown_closed, shutdown_ran);
    if (shutdown_ran == LEFT_BEHIND)
        CHECK_EQ(count_fds(), fds); /* the ring and every pipe are closed */
}

static void test_shutdown_cancels(void)
{
    run_leave_sleepers(true);
    run_leave_sleepers(false);
}

/* ---- where the API may be called -------------------------------------------- */

static int nested_run_main(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_run(return_arg, NULL), -EBUSY);
    return 0;
}

static void test_run_inside_task(void)
{
    CHECK_EQ(run_or_skip(nested_run_main, NULL), 0);
    iou_loop *l = iou_loop_new();
    CHECK(l != NULL);
    CHECK_EQ(iou_run(return_arg, NULL), -EBUSY); /* this thread has a loop */
    iou_loop_free(l);
}

static void test_spawn_outside_loop(void)
{
    CHECK(iou_loop_current() == NULL);
    CHECK(iou_spawn(return_arg, NULL) == NULL);
    CHECK(iou_self() == NULL);
    CHECK(!iou_cancelled());
}

/* ---- stacks ------------------------------------------------------------------ */

enum { SEQUENTIAL = 100000 };

static int stack_reuse_main(void *arg)
{
    (void)arg;
    iou_loop *l = loop();
    for (int i = 0; i < SEQUENTIAL; i++) {
        iou_task *t = iou_spawn(return_arg, (void *)(intptr_t)i);
        CHECK(t != NULL);
        CHECK_EQ(iou_join(t), i);
    }
    CHECK_EQ(l->tasks_alive, 1);
    CHECK_EQ(l->stacks.in_use, 1); /* main's own */
    /* One task at a time needs one stack at a time: one slab is plenty. */
    CHECK(l->stacks.pooled + l->stacks.in_use <= 128);
    return 0;
}

/* Inside iou_run, then on a loop we can inspect after it has run dry. */
static void test_stack_reuse(void)
{
    CHECK_EQ(run_or_skip(stack_reuse_main, NULL), 0);
    iou_loop *l = iou_loop_new();
    CHECK(l != NULL);
    iou_task *t = iou_loop_spawn(l, stack_reuse_main, NULL);
    CHECK(t != NULL);
    iou_detach(t);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(l->tasks_alive, 0);
    CHECK_EQ(l->stacks.in_use, 0);
    iou_loop_free(l);
}

enum { BIG_LOCALS = 512 * 1024 };

/* 512 KiB of locals, kept across a switch (another task runs meanwhile). */
static int deep_stack(void *arg)
{
    (void)arg;
    volatile unsigned char big[BIG_LOCALS];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 7 + 1);
    CHECK_EQ(iou_yield(), 0);
    CHECK_EQ(iou_nop(), 0);
    for (size_t i = 0; i < sizeof(big); i++)
        CHECK_EQ(big[i], (unsigned char)(i * 7 + 1));
    return 1;
}

static int big_stack_main(void *arg)
{
    (void)arg;
    iou_spawn_opts opts = {.stack_size = 1024 * 1024, .name = "big"};
    iou_task *t = iou_spawn_ex(deep_stack, NULL, &opts);
    CHECK(t != NULL);
    CHECK(t->stack->size >= opts.stack_size);
    iou_task *other = iou_spawn(return_arg, NULL);
    CHECK_EQ(iou_join(t), 1);
    CHECK_EQ(iou_join(other), 0);
    /* Odd sizes are rounded up, never down. */
    opts.stack_size = 100 * 1024 + 1;
    t = iou_spawn_ex(return_arg, (void *)(intptr_t)2, &opts);
    CHECK(t != NULL && t->stack->size >= opts.stack_size);
    CHECK_EQ(iou_join(t), 2);
    /* NULL options and zero fields mean the defaults. */
    t = iou_spawn_ex(return_arg, (void *)(intptr_t)3, NULL);
    CHECK(t != NULL && t->stack->size >= 64 * 1024);
    CHECK_EQ(iou_join(t), 3);
    return 0;
}

static void test_big_stack(void)
{
    CHECK_EQ(run_or_skip(big_stack_main, NULL), 0);
}

int main(void)
{
    watchdog(30);
    test_spawn_outside_loop();
    test_join_returns_value();
    test_fifo_start();
    test_round_robin();
    test_detach();
    test_cancel_sleeping();
    test_cancel_unstarted();
    test_cancel_finished();
    test_join_invalid();
    test_cancel_joiner();
    test_shutdown_cancels();
    test_run_inside_task();
    test_stack_reuse();
    test_big_stack();
    puts("test_task: ok");
    return 0;
}
