/*
 * Futures: resolved from callbacks and from tasks, errors, cancel, done
 * callbacks (scheduled, in registration order, never inside set_result),
 * several waiters, interrupted waiters leaving the future intact, and freeing
 * with callbacks queued or waiters already woken.
 */
#include "testutil.h"

#include <stdint.h>

static iou_loop *new_virtual_loop(void)
{
    iou_loop_opts o = {.virtual_clock = true};
    int err = 0;
    iou_loop *l = iou_loop_new_ex(&o, &err);
    if (l == NULL && (err == -ENOSYS || err == -EPERM))
        SKIP("io_uring unavailable: %s", iou_strerror(err));
    CHECK(l != NULL);
    return l;
}

/* ---- resolved from a callback -------------------------------------------------- */

static void set_42(void *arg)
{
    CHECK_EQ(iou_future_set_result(arg, 42), 0);
}

static int wait_for_callback(void *arg)
{
    (void)arg;
    iou_future *f = iou_future_new(iou_loop_current());
    CHECK(f != NULL);
    CHECK(!iou_future_done(f));
    uint64_t t0 = iou_now();
    CHECK(iou_call_later(iou_loop_current(), MS(50), set_42, f) != NULL);
    intptr_t v = 0;
    CHECK_EQ(iou_future_wait(f, &v), 0);
    CHECK_EQ(v, 42);
    CHECK(iou_now() - t0 >= MS(50));
    CHECK(iou_future_done(f));
    /* Done: waiting again returns at once, value NULL is fine. */
    v = 0;
    CHECK_EQ(iou_future_wait(f, &v), 0);
    CHECK_EQ(v, 42);
    CHECK_EQ(iou_future_wait(f, NULL), 0);
    iou_future_free(f);
    return 0;
}

static void test_resolved_from_callback(void)
{
    CHECK_EQ(run_virtual(wait_for_callback, NULL), 0);
}

/* ---- resolved from a task, errors, cancel, set twice --------------------------------- */

typedef struct setter {
    iou_future *f;
    int err;      /* 0: set_result(value) */
    intptr_t value;
} setter;

static int setter_task(void *arg)
{
    setter *s = arg;
    iou_sleep(MS(1));
    if (s->err == -ECANCELED)
        return iou_future_cancel(s->f);
    if (s->err)
        return iou_future_set_error(s->f, s->err);
    return iou_future_set_result(s->f, s->value);
}

static int wait_for_task(void *arg)
{
    (void)arg;
    iou_loop *l = iou_loop_current();
    const int errs[] = {0, -EIO, -ECANCELED};
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        iou_future *f = iou_future_new(l);
        setter s = {.f = f, .err = errs[i], .value = -7};
        iou_task *t = iou_spawn(setter_task, &s);
        intptr_t v = 123;
        CHECK_EQ(iou_future_wait(f, &v), errs[i]);
        CHECK_EQ(v, errs[i] ? 123 : -7); /* untouched on error */
        CHECK_EQ(iou_join(t), 0);
        /* Set twice: every completion is refused once done. */
        CHECK_EQ(iou_future_set_result(f, 1), -EALREADY);
        CHECK_EQ(iou_future_set_error(f, -EIO), -EALREADY);
        CHECK_EQ(iou_future_cancel(f), -EALREADY);
        CHECK_EQ(iou_future_wait(f, &v), errs[i]); /* unchanged */
        iou_future_free(f);
    }
    iou_future *f = iou_future_new(l);
    CHECK_EQ(iou_future_set_error(f, 0), -EINVAL); /* not an error */
    CHECK_EQ(iou_future_set_error(f, 5), -EINVAL);
    CHECK(!iou_future_done(f));
    iou_future_free(f);
    CHECK_EQ(iou_future_wait(NULL, NULL), -EINVAL);
    return 0;
}

static void test_resolved_from_task(void)
{
    CHECK_EQ(run_virtual(wait_for_task, NULL), 0);
}

static void test_wait_outside_task(void)
{
    iou_loop *l = new_virtual_loop();
    iou_future *f = iou_future_new(l);
    CHECK_EQ(iou_future_wait(f, NULL), -EPERM);
    CHECK_EQ(iou_future_set_result(f, 1), 0);
    CHECK_EQ(iou_future_wait(f, NULL), -EPERM); /* even when done */
    iou_future_free(f);
    CHECK(iou_future_new(NULL) == NULL);
    iou_loop_free(l);
}

/* ---- done callbacks ------------------------------------------------------------------- */

static int order[16];
static int order_len;

typedef struct cb_arg {
    int id;
    intptr_t expect;
} cb_arg;

static void record_cb(iou_future *f, void *arg)
{
    cb_arg *a = arg;
    CHECK(iou_future_done(f));
    CHECK(order_len < 16);
    order[order_len++] = a->id;
}

static void test_done_callbacks(void)
{
    iou_loop *l = new_virtual_loop();
    iou_future *f = iou_future_new(l);
    order_len = 0;
    cb_arg a[4] = {{1, 0}, {2, 0}, {3, 0}, {4, 0}};
    for (int i = 0; i < 3; i++)
        CHECK_EQ(iou_future_on_done(f, record_cb, &a[i]), 0);
    CHECK_EQ(iou_future_on_done(f, NULL, NULL), -EINVAL);
    CHECK(iou_call_later(l, MS(10), set_42, f) != NULL);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(order_len, 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(order[i], i + 1);
    /* Registered on a done future: scheduled, not called synchronously. */
    CHECK_EQ(iou_future_on_done(f, record_cb, &a[3]), 0);
    CHECK_EQ(order_len, 3);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(order_len, 4);
    CHECK_EQ(order[3], 4);
    iou_future_free(f);
    iou_loop_free(l);
}

/* set_result from setup code: callbacks wait for the loop. */
static void test_callbacks_not_synchronous(void)
{
    iou_loop *l = new_virtual_loop();
    iou_future *f = iou_future_new(l);
    order_len = 0;
    cb_arg a = {1, 0};
    CHECK_EQ(iou_future_on_done(f, record_cb, &a), 0);
    CHECK_EQ(iou_future_set_result(f, 5), 0);
    CHECK_EQ(order_len, 0);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(order_len, 1);
    iou_future_free(f);
    iou_loop_free(l);
}

/* A callback freeing the future drops the callbacks after it. */
static void free_cb(iou_future *f, void *arg)
{
    record_cb(f, arg);
    iou_future_free(f);
}

static void test_free_inside_callback(void)
{
    iou_loop *l = new_virtual_loop();
    iou_future *f = iou_future_new(l);
    order_len = 0;
    cb_arg a[3] = {{1, 0}, {2, 0}, {3, 0}};
    CHECK_EQ(iou_future_on_done(f, record_cb, &a[0]), 0);
    CHECK_EQ(iou_future_on_done(f, free_cb, &a[1]), 0);
    CHECK_EQ(iou_future_on_done(f, record_cb, &a[2]), 0);
    CHECK_EQ(iou_future_cancel(f), 0);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(order_len, 2);
    CHECK_EQ(order[1], 2);
    iou_loop_free(l);
}

/* Freed with its callback run already queued: nothing runs, nothing leaks (ASan). */
static void test_free_with_queued_callbacks(void)
{
    iou_loop *l = new_virtual_loop();
    iou_future *f = iou_future_new(l);
    order_len = 0;
    cb_arg a = {1, 0};
    CHECK_EQ(iou_future_on_done(f, record_cb, &a), 0);
    CHECK_EQ(iou_future_set_result(f, 1), 0);
    iou_future_free(f);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(order_len, 0);

    /* The same, but the loop is freed before the queued run: dropped, no leak. */
    f = iou_future_new(l);
    CHECK_EQ(iou_future_on_done(f, record_cb, &a), 0);
    CHECK_EQ(iou_future_set_result(f, 1), 0);
    iou_future_free(f);
    iou_loop_free(l);
    CHECK_EQ(order_len, 0);
}

/* The loop is freed with a done future's run queued; the future is freed after. */
static void test_loop_freed_before_future(void)
{
    iou_loop *l = new_virtual_loop();
    iou_future *f = iou_future_new(l);
    order_len = 0;
    cb_arg a = {1, 0};
    CHECK_EQ(iou_future_on_done(f, record_cb, &a), 0);
    CHECK_EQ(iou_future_set_result(f, 1), 0);
    iou_loop_free(l); /* drops the run */
    CHECK_EQ(order_len, 0);
    iou_future_free(f); /* frees the callback never run */
}

/* ---- several waiters, interrupted waiters ------------------------------------------ */

typedef struct waiter_arg {
    iou_future *f;
    int id;
    int result;
    intptr_t value;
    uint64_t deadline_ns; /* 0: none */
} waiter_arg;

static int wake_order[8];
static int wake_len;

static int waiter_task(void *arg)
{
    waiter_arg *w = arg;
    uint64_t prev = 0;
    if (w->deadline_ns)
        prev = iou_deadline_push(iou_now() + w->deadline_ns);
    w->result = iou_future_wait(w->f, &w->value);
    if (w->deadline_ns)
        iou_deadline_pop(prev);
    wake_order[wake_len++] = w->id;
    return 0;
}

static int several_waiters(void *arg)
{
    (void)arg;
    iou_future *f = iou_future_new(iou_loop_current());
    waiter_arg w[5];
    iou_task *t[5];
    wake_len = 0;
    for (int i = 0; i < 5; i++) {
        w[i] = (waiter_arg){.f = f, .id = i, .result = 1};
        w[i].deadline_ns = i == 3 ? MS(5) : 0; /* waiter 3 times out */
        t[i] = iou_spawn(waiter_task, &w[i]);
    }
    iou_sleep(MS(1)); /* all five are waiting */
    CHECK_EQ(iou_cancel(t[1]), 0);
    CHECK_EQ(iou_join(t[1]), 0);
    CHECK_EQ(w[1].result, -ECANCELED);
    iou_sleep(MS(10));
    CHECK_EQ(w[3].result, -ETIMEDOUT);
    CHECK(!iou_future_done(f)); /* interrupted waiters left it as it was */
    CHECK(iou_call_later(iou_loop_current(), MS(1), set_42, f) != NULL);
    CHECK_EQ(iou_join(t[0]), 0);
    CHECK_EQ(iou_join(t[2]), 0);
    CHECK_EQ(iou_join(t[3]), 0);
    CHECK_EQ(iou_join(t[4]), 0);
    const int ids[] = {0, 2, 4};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(w[ids[i]].result, 0);
        CHECK_EQ(w[ids[i]].value, 42);
    }
    /* Wake order: the interrupted ones first (when interrupted), then FIFO. */
    CHECK_EQ(wake_len, 5);
    CHECK_EQ(wake_order[0], 1);
    CHECK_EQ(wake_order[1], 3);
    CHECK_EQ(wake_order[2], 0);
    CHECK_EQ(wake_order[3], 2);
    CHECK_EQ(wake_order[4], 4);
    iou_future_free(f);
    return 0;
}

static void test_several_waiters(void)
{
    CHECK_EQ(run_virtual(several_waiters, NULL), 0);
}

/* A cancelled task waiting on a done future still gets the result (no wait). */
static int done_then_cancelled(void *arg)
{
    (void)arg;
    iou_future *f = iou_future_new(iou_loop_current());
    CHECK_EQ(iou_future_set_result(f, 9), 0);
    iou_cancel(iou_self());
    intptr_t v = 0;
    CHECK_EQ(iou_future_wait(f, &v), 0);
    CHECK_EQ(v, 9);
    iou_future *g = iou_future_new(iou_loop_current());
    CHECK_EQ(iou_future_wait(g, &v), -ECANCELED); /* pending: the cancel applies */
    CHECK(!iou_future_done(g));
    iou_future_free(g);
    iou_future_free(f);
    return 0;
}

static void test_cancelled_waiter(void)
{
    CHECK_EQ(run_virtual(done_then_cancelled, NULL), 0);
}

/* Set and freed at once from a callback while tasks are woken but have not
 * run yet: each still gets the value (it was handed over, not read later). */
static void set_and_free(void *arg)
{
    CHECK_EQ(iou_future_set_result(arg, 77), 0);
    iou_future_free(arg);
}

static int set_then_free(void *arg)
{
    (void)arg;
    iou_future *f = iou_future_new(iou_loop_current());
    waiter_arg w[2] = {{.f = f, .id = 0, .result = 1}, {.f = f, .id = 1, .result = 1}};
    wake_len = 0;
    iou_task *t[2] = {iou_spawn(waiter_task, &w[0]), iou_spawn(waiter_task, &w[1])};
    CHECK(iou_call_later(iou_loop_current(), MS(1), set_and_free, f) != NULL);
    CHECK_EQ(iou_gather(t, 2, NULL), 0);
    CHECK_EQ(w[0].result, 0);
    CHECK_EQ(w[0].value, 77);
    CHECK_EQ(w[1].result, 0);
    CHECK_EQ(w[1].value, 77);
    return 0;
}

static void test_set_then_free(void)
{
    CHECK_EQ(run_virtual(set_then_free, NULL), 0);
}

/* Futures without tasks: a chain of callbacks (the low-level style). */
static void chain_step(iou_future *f, void *arg)
{
    iou_future *next = arg;
    CHECK(iou_future_done(f));
    CHECK_EQ(iou_future_set_result(next, 2), 0);
}

static void chain_end(iou_future *f, void *arg)
{
    (void)f;
    *(int *)arg = 1;
    iou_loop_stop(iou_loop_current());
}

static void test_callback_chain(void)
{
    iou_loop *l = new_virtual_loop();
    iou_future *a = iou_future_new(l), *b = iou_future_new(l);
    int ended = 0;
    CHECK_EQ(iou_future_on_done(a, chain_step, b), 0);
    CHECK_EQ(iou_future_on_done(b, chain_end, &ended), 0);
    CHECK(iou_call_later(l, MS(100), set_42, a) != NULL);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(ended, 1);
    iou_future_free(a);
    iou_future_free(b);
    iou_loop_free(l);
}

int main(void)
{
    test_resolved_from_callback();
    test_resolved_from_task();
    test_wait_outside_task();
    test_done_callbacks();
    test_callbacks_not_synchronous();
    test_free_inside_callback();
    test_free_with_queued_callbacks();
    test_loop_freed_before_future();
    test_several_waiters();
    test_cancelled_waiter();
    test_set_then_free();
    test_callback_chain();
    return 0;
}
