/*
 * The callback layer: call_soon order, call_later / call_at order, timer
 * cancellation, run / stop, spawning tasks from setup code and callbacks,
 * tasks and callbacks sharing one FIFO, a million timers (time and memory),
 * and iou_loop_free dropping what is pending without leaking.
 */
#include "testutil.h"

#include "loop.h"

#include <pthread.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static iou_loop *new_loop(bool virtual_clock)
{
    iou_loop_opts o = {.virtual_clock = virtual_clock};
    int err = 0;
    iou_loop *l = iou_loop_new_ex(&o, &err);
    if (l == NULL && (err == -ENOSYS || err == -EPERM))
        SKIP("io_uring unavailable: %s", iou_strerror(err));
    CHECK(l != NULL);
    return l;
}

/* A log of small integers, appended to by callbacks and tasks. */
static int log_buf[64];
static int log_len;

static void log_reset(void)
{
    log_len = 0;
}

static void log_add(int v)
{
    CHECK(log_len < (int)(sizeof(log_buf) / sizeof(log_buf[0])));
    log_buf[log_len++] = v;
}

static void log_cb(void *arg)
{
    log_add((int)(intptr_t)arg);
}

static void check_log(const int *want, int n)
{
    CHECK_EQ(log_len, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(log_buf[i], want[i]);
}

/* ---- call_soon -------------------------------------------------------------- */

static void test_call_soon_fifo(void)
{
    iou_loop *l = new_loop(false);
    log_reset();
    for (int i = 0; i < 50; i++)
        CHECK_EQ(iou_call_soon(l, log_cb, (void *)(intptr_t)i), 0);
    CHECK_EQ(iou_loop_run(l), 0); /* returns once idle */
    CHECK_EQ(log_len, 50);
    for (int i = 0; i < 50; i++)
        CHECK_EQ(log_buf[i], i);
    CHECK_EQ(iou_loop_run(l), 0); /* nothing to do: returns at once */
    CHECK_EQ(iou_call_soon(NULL, log_cb, NULL), -EINVAL);
    CHECK_EQ(iou_call_soon(l, NULL, NULL), -EINVAL);
    iou_loop_free(l);
}

/* A callback scheduled by a callback runs after those already queued. */
static void chain_cb(void *arg)
{
    log_add((int)(intptr_t)arg);
    if ((intptr_t)arg == 1)
        iou_call_soon(iou_loop_current(), log_cb, (void *)(intptr_t)3);
}

static void test_call_soon_from_callback(void)
{
    iou_loop *l = new_loop(false);
    log_reset();
    iou_call_soon(l, chain_cb, (void *)(intptr_t)1);
    iou_call_soon(l, chain_cb, (void *)(intptr_t)2);
    CHECK_EQ(iou_loop_run(l), 0);
    check_log((int[]){1, 2, 3}, 3);
    iou_loop_free(l);
}

/* ---- call_later / call_at ---------------------------------------------------------- */

static void test_call_later_order(void)
{
    iou_loop *l = new_loop(true);
    log_reset();
    uint64_t t0 = iou_now();
    CHECK(iou_call_later(l, MS(30), log_cb, (void *)(intptr_t)30) != NULL);
    CHECK(iou_call_later(l, MS(10), log_cb, (void *)(intptr_t)10) != NULL);
    CHECK(iou_call_at(l, t0 + MS(20), log_cb, (void *)(intptr_t)20) != NULL);
    CHECK(iou_call_later(l, MS(10), log_cb, (void *)(intptr_t)11) != NULL); /* same deadline: FIFO */
    CHECK(iou_call_at(l, t0 - 1, log_cb, (void *)(intptr_t)0) != NULL);      /* in the past: first */
    CHECK(iou_call_at(l, UINT64_MAX, log_cb, (void *)(intptr_t)99) != NULL); /* "never" is clamped */
    CHECK_EQ(iou_loop_run(l), 0);
    check_log((int[]){0, 10, 11, 20, 30, 99}, 6);
    CHECK(iou_now() >= UINT64_MAX - 1);
    iou_loop_free(l);
}

/* Real time: a short timer fires no earlier than asked. */
static void test_call_later_real_time(void)
{
    iou_loop *l = new_loop(false);
    log_reset();
    uint64_t t0 = mono_ns();
    CHECK(iou_call_later(l, MS(5), log_cb, (void *)(intptr_t)5) != NULL);
    CHECK(iou_call_later(l, MS(1), log_cb, (void *)(intptr_t)1) != NULL);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK(mono_ns() - t0 >= MS(5));
    check_log((int[]){1, 5}, 2);
    iou_loop_free(l);
}

static void test_timer_cancel(void)
{
    iou_loop *l = new_loop(true);
    log_reset();
    iou_timer *a = iou_call_later(l, MS(1), log_cb, (void *)(intptr_t)1);
    iou_timer *b = iou_call_later(l, MS(2), log_cb, (void *)(intptr_t)2);
    iou_timer *c = iou_call_later(l, MS(3), log_cb, (void *)(intptr_t)3);
    CHECK(a && b && c);
    CHECK_EQ(iou_timer_cancel(b), 0);
    CHECK_EQ(iou_timer_cancel(NULL), -EINVAL);
    CHECK_EQ(iou_loop_run(l), 0);
    check_log((int[]){1, 3}, 2);
    iou_loop_free(l);
}

static iou_timer *self_timer;
static int self_cancel_result = 1;

static void cancel_self_cb(void *arg)
{
    (void)arg;
    self_cancel_result = iou_timer_cancel(self_timer);
}

static void test_cancel_from_own_callback(void)
{
    iou_loop *l = new_loop(true);
    self_timer = iou_call_later(l, MS(1), cancel_self_cb, NULL);
    CHECK(self_timer != NULL);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(self_cancel_result, -EALREADY);
    iou_loop_free(l);
}

/* A timer callback may cancel another pending timer and arm new ones. */
static iou_timer *victim;

static void cancel_other_cb(void *arg)
{
    (void)arg;
    log_add(1);
    CHECK_EQ(iou_timer_cancel(victim), 0);
    CHECK(iou_call_later(iou_loop_current(), MS(1), log_cb, (void *)(intptr_t)3) != NULL);
}

static void test_cancel_other_from_callback(void)
{
    iou_loop *l = new_loop(true);
    log_reset();
    CHECK(iou_call_later(l, MS(1), cancel_other_cb, NULL) != NULL);
    victim = iou_call_later(l, MS(2), log_cb, (void *)(intptr_t)2);
    CHECK_EQ(iou_loop_run(l), 0);
    check_log((int[]){1, 3}, 2);
    iou_loop_free(l);
}

/* ---- run / stop ---------------------------------------------------------------------- */

static int ticks;

static void tick_forever(void *arg)
{
    iou_loop *l = arg;
    if (++ticks % 10 == 0)
        iou_loop_stop(l);
    iou_call_soon(l, tick_forever, l);
}

static void test_loop_stop(void)
{
    iou_loop *l = new_loop(false);
    ticks = 0;
    iou_call_soon(l, tick_forever, l);
    CHECK_EQ(iou_loop_run(l), 0); /* never idle: only stop ends it */
    CHECK_EQ(ticks, 10);
    /* The next run continues where the last one stopped (and stops at 20). */
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(ticks, 20);
    iou_loop_free(l); /* the rescheduled callback is dropped */
}

static int nested_run_result = 1;

static void nested_run_cb(void *arg)
{
    nested_run_result = iou_loop_run(arg);
}

static void test_run_from_inside(void)
{
    iou_loop *l = new_loop(false);
    iou_call_soon(l, nested_run_cb, l);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(nested_run_result, -EBUSY);
    iou_loop_free(l);
}

static void *run_from_thread(void *arg)
{
    return (void *)(intptr_t)iou_loop_run(arg);
}

static void test_run_from_other_thread(void)
{
    iou_loop *l = new_loop(false);
    pthread_t th;
    void *ret;
    CHECK_EQ(pthread_create(&th, NULL, run_from_thread, l), 0);
    CHECK_EQ(pthread_join(th, &ret), 0);
    CHECK_EQ((intptr_t)ret, -EPERM);
    iou_loop_free(l);
}

/* ---- tasks from setup code and callbacks ---------------------------------------------- */

static int task_log(void *arg)
{
    log_add((int)(intptr_t)arg);
    iou_sleep(MS(1));
    log_add((int)(intptr_t)arg + 100);
    return 0;
}

static void spawn_cb(void *arg)
{
    iou_task *t = iou_loop_spawn(iou_loop_current(), task_log, arg);
    CHECK(t != NULL);
    iou_detach(t);
}

static void test_loop_spawn(void)
{
    iou_loop *l = new_loop(true);
    log_reset();
    iou_task *t = iou_loop_spawn(l, task_log, (void *)(intptr_t)1);
    CHECK(t != NULL);
    iou_detach(t);
    CHECK(iou_call_later(l, MS(5), spawn_cb, (void *)(intptr_t)2) != NULL);
    CHECK_EQ(iou_loop_run(l), 0); /* returns when both tasks have ended */
    check_log((int[]){1, 101, 2, 102}, 4);
    CHECK(iou_loop_spawn(NULL, task_log, NULL) == NULL);
    iou_loop_free(l);
}

/* Tasks and callbacks share the ready queue: whatever became ready first runs first. */
static int interleave_task(void *arg)
{
    iou_loop *l = arg;
    log_add(1);
    iou_call_soon(l, log_cb, (void *)(intptr_t)2);
    iou_yield(); /* queued behind the callback */
    log_add(3);
    iou_call_soon(l, log_cb, (void *)(intptr_t)5);
    iou_call_soon(l, log_cb, (void *)(intptr_t)6);
    log_add(4);
    iou_yield();
    log_add(7);
    return 0;
}

static void test_tasks_and_callbacks_interleave(void)
{
    iou_loop *l = new_loop(false);
    log_reset();
    iou_detach(iou_loop_spawn(l, interleave_task, l));
    CHECK_EQ(iou_loop_run(l), 0);
    check_log((int[]){1, 2, 3, 4, 5, 6, 7}, 7);
    iou_loop_free(l);
}

/* A callback wakes a task through a timer; a task arms a callback timer. */
static int sleeper_task(void *arg)
{
    iou_loop *l = arg;
    CHECK(iou_call_later(l, MS(15), log_cb, (void *)(intptr_t)15) != NULL);
    iou_sleep(MS(10));
    log_add(10);
    iou_sleep(MS(10));
    log_add(20);
    return 0;
}

static void test_timers_and_sleeps_interleave(void)
{
    iou_loop *l = new_loop(true);
    log_reset();
    iou_detach(iou_loop_spawn(l, sleeper_task, l));
    CHECK(iou_call_later(l, MS(5), log_cb, (void *)(intptr_t)5) != NULL);
    CHECK_EQ(iou_loop_run(l), 0);
    check_log((int[]){5, 10, 15, 20}, 4);
    iou_loop_free(l);
}

/* ---- a million timers --------------------------------------------------------------------- */

enum { MILLION = 1000000 };

static void never_cb(void *arg)
{
    (void)arg;
    CHECK(!"a cancelled timer fired");
}

/* VmRSS of this process in bytes. */
static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            break;
    fclose(f);
    CHECK(kb >= 0);
    return kb * 1024;
}

static void test_million_timers(void)
{
    iou_loop *l = new_loop(false);
    /* Create then cancel, one at a time (pool reuse). */
    uint64_t t0 = mono_ns();
    for (int i = 0; i < MILLION; i++) {
        iou_timer *t = iou_call_later(l, MS(1000) + (uint64_t)i, never_cb, NULL);
        CHECK(t != NULL);
        CHECK_EQ(iou_timer_cancel(t), 0);
    }
    uint64_t pair_ns = (mono_ns() - t0) / MILLION;

    /* A million pending at once, then all cancelled (in a scrambled order). */
    iou_timer **all = malloc(sizeof(*all) * MILLION);
    CHECK(all != NULL);
    memset(all, 0, sizeof(*all) * MILLION); /* touch the array before measuring */
    long long before = rss_bytes();
    for (int i = 0; i < MILLION; i++) {
        all[i] = iou_call_later(l, MS(1000) + ((uint64_t)i * 7919u) % MILLION, never_cb, NULL);
        CHECK(all[i] != NULL);
    }
    long long growth = rss_bytes() - before;
    fprintf(stderr, "1,000,000 pending timers: RSS +%.1f MB; insert+cancel %llu ns/pair\n",
            (double)growth / 1e6, (unsigned long long)pair_ns);
#ifndef UNDER_ASAN /* ASan's redzones and quarantine make RSS meaningless */
    CHECK(growth <= 100ll * 1000 * 1000);
#endif
    for (int i = 0; i < MILLION; i += 2)
        CHECK_EQ(iou_timer_cancel(all[i]), 0);
    for (int i = MILLION - 1; i > 0; i -= 2)
        CHECK_EQ(iou_timer_cancel(all[i]), 0);
    CHECK_EQ(l->timers.len, 0);
    free(all);
    CHECK_EQ(iou_loop_run(l), 0); /* nothing left: returns at once */
    iou_loop_free(l);
}

/* ---- dropping callback timers from a mixed heap ------------------------------------------- */

void iou__callbacks_drop(iou_loop *l);

static int woken;

static int nap_task(void *arg)
{
    CHECK_EQ(iou_sleep((uint64_t)(uintptr_t)arg), 0);
    woken++;
    return 0;
}

static void stop_cb(void *arg)
{
    iou_loop_stop(arg);
}

static void check_heap(const iou__timer_heap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        CHECK_EQ(h->slots[i].timer->slot, i);
        CHECK_EQ(h->slots[i].when, h->slots[i].timer->when);
        if (i > 0)
            CHECK(h->slots[(i - 1) / 4].when <= h->slots[i].when);
    }
}

/* Task sleeps and callback timers interleaved at random in one heap: dropping
 * the callback timers keeps exactly the sleeps, in a valid heap. */
static void test_drop_keeps_task_timers(void)
{
    enum { TASKS = 500, TIMERS = 5000 };
    uint64_t seed = rng_seed();
    iou_loop *l = new_loop(true);
    woken = 0;
    size_t tasks = 0, timers = 0;
    for (int i = 0; i < TASKS + TIMERS; i++) {
        uint64_t ns = MS(1 + rng_next(&seed) % 1000);
        if (rng_next(&seed) % (TASKS + TIMERS) < TASKS) {
            iou_detach(iou_loop_spawn(l, nap_task, (void *)(uintptr_t)ns));
            tasks++;
        } else {
            CHECK(iou_call_later(l, ns, never_cb, NULL) != NULL);
            timers++;
        }
    }
    /* Let every task start its sleep, then drop the callback timers. */
    iou_call_soon(l, stop_cb, l);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(l->timers.len, tasks + timers);
    iou__callbacks_drop(l);
    CHECK_EQ(l->timers.len, (size_t)tasks);
    check_heap(&l->timers);
    CHECK_EQ(iou_loop_run(l), 0); /* the sleeps still fire; no dropped timer does */
    CHECK_EQ(woken, (int)tasks);
    iou_loop_free(l);
}

/* ---- iou_loop_free drops what is pending (LSan checks nothing leaks) --------------------- */

static int parked_task(void *arg)
{
    (void)arg;
    return iou_sleep(MS(3600 * 1000)); /* cancelled by iou_loop_free */
}

static void test_free_with_pending(void)
{
    iou_loop *l = new_loop(false);
    log_reset();
    for (int i = 0; i < 100; i++)
        CHECK_EQ(iou_call_soon(l, log_cb, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 100000; i++)
        CHECK(iou_call_later(l, MS(3600 * 1000) + (uint64_t)i, never_cb, NULL) != NULL);
    iou_timer *t = iou_call_later(l, MS(1), never_cb, NULL);
    CHECK_EQ(iou_timer_cancel(t), 0); /* a pooled handle too */
    iou_task *task = iou_loop_spawn(l, parked_task, NULL);
    CHECK(task != NULL);
    iou_detach(task);
    uint64_t t0 = mono_ns();
    iou_loop_free(l); /* must not wait an hour for the timers */
    CHECK(mono_ns() - t0 < MS(2000));
    CHECK_EQ(log_len, 0); /* the call_soon callbacks were dropped, not run */
    CHECK(iou_loop_current() == NULL);
}

/* Freed from setup code after a run that left timers and callbacks behind. */
static void test_free_after_stop(void)
{
    iou_loop *l = new_loop(false);
    ticks = 0;
    iou_call_soon(l, tick_forever, l);
    for (int i = 0; i < 1000; i++)
        CHECK(iou_call_later(l, MS(3600 * 1000), never_cb, NULL) != NULL);
    CHECK_EQ(iou_loop_run(l), 0);
    iou_loop_free(l);
}

int main(void)
{
    test_call_soon_fifo();
    test_call_soon_from_callback();
    test_call_later_order();
    test_call_later_real_time();
    test_timer_cancel();
    test_cancel_from_own_callback();
    test_cancel_other_from_callback();
    test_loop_stop();
    test_run_from_inside();
    test_run_from_other_thread();
    test_loop_spawn();
    test_tasks_and_callbacks_interleave();
    test_timers_and_sleeps_interleave();
    test_drop_keeps_task_timers();
    test_million_timers();
    test_free_with_pending();
    test_free_after_stop();
    return 0;
}
