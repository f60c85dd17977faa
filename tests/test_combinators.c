/*
 * Combinators: iou_gather (join all, results in order), iou_wait_any (the
 * index of one that ended, nothing joined) and iou_as_completed (tasks handed
 * back in the order they finished). Sleeps of distinct lengths on the virtual
 * clock fix the finishing order exactly.
 */
#include "check.h"
#include "loopcheck.h"
#include "testutil.h"
#include "loop.h"
#include "task.h"

#include <errno.h>
#include <iou.h>
#include <string.h>

/* A task that sleeps `ms` milliseconds, then returns `value`; a cancelled one
 * returns -ECANCELED and counts itself. */
typedef struct sleeper {
    uint64_t ms;
    int value;
} sleeper;

static int cancelled_count;

static int sleeper_main(void *arg)
{
    const sleeper *s = arg;
    int r = iou_sleep(MS(s->ms));
    if (r == -ECANCELED)
        cancelled_count++;
    return r ? r : s->value;
}

static void spawn_sleepers(iou_task **t, sleeper *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        t[i] = iou_spawn(sleeper_main, &s[i]);
        CHECK(t[i] != NULL);
    }
}

/* ---- gather ------------------------------------------------------------------ */

static int gather_main(void *arg)
{
    (void)arg;
    sleeper s[5];
    iou_task *t[5];
    int results[5];
    for (int i = 0; i < 5; i++)
        s[i] = (sleeper){.ms = (uint64_t)(50 - 10 * i), .value = 100 + i}; /* finish in reverse */
    uint64_t t0 = iou_now();
    spawn_sleepers(t, s, 5);
    CHECK_EQ(iou_gather(t, 5, results), 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(results[i], 100 + i); /* in the order given, not finishing order */
    CHECK(iou_now() == t0 + MS(50));
    spawn_sleepers(t, s, 5);
    CHECK_EQ(iou_gather(t, 5, NULL), 0); /* results may be NULL */
    CHECK_EQ(iou_gather(NULL, 0, NULL), 0);
    CHECK_EQ(iou_gather(NULL, 1, NULL), -EINVAL);
    check_nothing_leaked();
    return 0;
}

static void test_gather(void)
{
    int r;
    CHECK_EQ(iou_gather(NULL, 0, &r), -EPERM);
    CHECK_EQ(run_virtual(gather_main, NULL), 0);
}

typedef struct gatherer {
    iou_task *t[3];
    sleeper s[3];
    int results[3];
    int result;
} gatherer;

static int gather_sleepers(void *arg)
{
    gatherer *g = arg;
    spawn_sleepers(g->t, g->s, 3);
    g->result = iou_gather(g->t, 3, g->results);
    return 0;
}

static int gather_cancelled_main(void *arg)
{
    (void)arg;
    cancelled_count = 0;
    gatherer g = {.s = {{.ms = 1, .value = 1}, {.ms = 24 * 3600000}, {.ms = 24 * 3600000}}};
    iou_task *task = iou_spawn(gather_sleepers, &g);
    CHECK_EQ(iou_sleep(MS(5)), 0); /* the first has finished, the others sleep */
    CHECK_EQ(iou_cancel(task), 0);
    CHECK_EQ(iou_join(task), 0);
    CHECK_EQ(g.result, -ECANCELED);
    CHECK_EQ(g.results[0], 1);
    CHECK_EQ(g.results[1], -ECANCELED);
    CHECK_EQ(g.results[2], -ECANCELED);
    CHECK_EQ(cancelled_count, 2);
    check_nothing_leaked();
    return 0;
}

static void test_gather_cancelled(void)
{
    CHECK_EQ(run_virtual(gather_cancelled_main, NULL), 0);
}

/* ---- wait_any ------------------------------------------------------------------ */

static void check_unwatched(iou_task **t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!iou__task_done(t[i]))
            CHECK(t[i]->watchers == NULL); /* no watcher outlives the call */
}

static int wait_any_main(void *arg)
{
    (void)arg;
    sleeper s[3] = {{.ms = 30, .value = 0}, {.ms = 10, .value = 1}, {.ms = 20, .value = 2}};
    iou_task *t[3];
    uint64_t t0 = iou_now();
    spawn_sleepers(t, s, 3);
    CHECK_EQ(iou_wait_any(t, 3), 1);
    CHECK(iou_now() == t0 + MS(10));
    check_unwatched(t, 3);
    CHECK(iou__task_done(t[1])); /* ended, but not joined: still ours */
    CHECK_EQ(iou_wait_any(t, 3), 1); /* already ended: at once */
    CHECK(iou_now() == t0 + MS(10));
    CHECK_EQ(iou_join(t[1]), 1);
    /* The remaining two: the shorter one wins. */
    iou_task *rest[2] = {t[0], t[2]};
    CHECK_EQ(iou_wait_any(rest, 2), 1);
    CHECK(iou_now() == t0 + MS(20));
    CHECK_EQ(iou_join(t[2]), 2);
    CHECK_EQ(iou_join(t[0]), 0);
    CHECK_EQ(iou_wait_any(t, 0), -EINVAL);
    CHECK_EQ(iou_wait_any(NULL, 1), -EINVAL);
    check_nothing_leaked();
    return 0;
}

static void test_wait_any(void)
{
    CHECK_EQ(iou_wait_any(NULL, 1), -EPERM);
    CHECK_EQ(run_virtual(wait_any_main, NULL), 0);
}

/* Two tasks ending in the same loop iteration: the lowest index is reported. */
static int wait_any_tie_main(void *arg)
{
    (void)arg;
    sleeper s[3] = {{.ms = 50}, {.ms = 10, .value = 1}, {.ms = 10, .value = 2}};
    iou_task *t[3];
    spawn_sleepers(t, s, 3);
    iou_task *reversed[3] = {t[2], t[1], t[0]};
    CHECK_EQ(iou_wait_any(reversed, 3), 0); /* t[2] ends second, yet index 0 wins */
    CHECK(iou__task_done(t[1]) && iou__task_done(t[2]));
    CHECK_EQ(iou_gather(t, 3, NULL), 0);
    check_nothing_leaked();
    return 0;
}

static void test_wait_any_tie(void)
{
    CHECK_EQ(run_virtual(wait_any_tie_main, NULL), 0);
}

/* More tasks than fit on the stack: the watchers are allocated. */
enum { MANY = 100 };

static int wait_any_many_main(void *arg)
{
    (void)arg;
    static sleeper s[MANY];
    static iou_task *t[MANY];
    for (size_t i = 0; i < MANY; i++)
        s[i] = (sleeper){.ms = i == 73 ? 5 : 1000 + i, .value = (int)i};
    spawn_sleepers(t, s, MANY);
    CHECK_EQ(iou_wait_any(t, MANY), 73);
    check_unwatched(t, MANY);
    for (size_t i = 0; i < MANY; i++)
        iou_cancel(t[i]);
    CHECK_EQ(iou_gather(t, MANY, NULL), 0);
    check_nothing_leaked();
    return 0;
}

static void test_wait_any_many(void)
{
    CHECK_EQ(run_virtual(wait_any_many_main, NULL), 0);
}

static int wait_any_under_1h(void *arg)
{
    return iou_wait_any(arg, 2);
}

typedef struct any_waiter {
    iou_task **t;
    int result;
} any_waiter;

static int wait_any_in_task(void *arg)
{
    any_waiter *w = arg;
    w->result = iou_wait_any(w->t, 2);
    return 0;
}

static int wait_any_interrupted_main(void *arg)
{
    (void)arg;
    sleeper s[2] = {{.ms = 3600000}, {.ms = 3600000}};
    iou_task *t[2];
    spawn_sleepers(t, s, 2);
    uint64_t t0 = iou_now();
    CHECK_EQ(iou_timeout(MS(10), wait_any_under_1h, t), -ETIMEDOUT);
    CHECK(iou_now() == t0 + MS(10));
    check_unwatched(t, 2);
    any_waiter w = {.t = t};
    iou_task *waiter = iou_spawn(wait_any_in_task, &w);
    CHECK_EQ(iou_yield(), 0);
    CHECK_EQ(iou_cancel(waiter), 0);
    CHECK_EQ(iou_join(waiter), 0);
    CHECK_EQ(w.result, -ECANCELED);
    check_unwatched(t, 2);
    CHECK(!iou__task_done(t[0]) && !iou__task_done(t[1])); /* untouched */
    iou_cancel(t[0]);
    iou_cancel(t[1]);
    CHECK_EQ(iou_gather(t, 2, NULL), 0);
    check_nothing_leaked();
    return 0;
}

static void test_wait_any_interrupted(void)
{
    CHECK_EQ(run_virtual(wait_any_interrupted_main, NULL), 0);
}

/* ---- as_completed --------------------------------------------------------------- */

static int as_completed_order_main(void *arg)
{
    (void)arg;
    sleeper s[5] = {{.ms = 50, .value = 10}, {.ms = 10, .value = 11}, {.ms = 40, .value = 12},
                    {.ms = 20, .value = 13}, {.ms = 30, .value = 14}};
    static const int expected[5] = {1, 3, 4, 2, 0};
    iou_task *t[5];
    spawn_sleepers(t, s, 5);
    uint64_t t0 = iou_now();
    iou_as_completed *c = iou_as_completed_new(t, 5);
    CHECK(c != NULL);
    for (int k = 0; k < 5; k++) {
        int value = -1;
        CHECK_EQ(iou_as_completed_next(c, &value), expected[k]);
        CHECK_EQ(value, 10 + expected[k]);
        CHECK(iou_now() == t0 + MS(s[expected[k]].ms));
    }
    CHECK_EQ(iou_as_completed_next(c, NULL), -ENOENT);
    iou_as_completed_free(c);
    check_nothing_leaked();
    return 0;
}

static void test_as_completed_order(void)
{
    CHECK_EQ(run_virtual(as_completed_order_main, NULL), 0);
}

/* Tasks that ended before new() come first, in index order; tasks ending in
 * the same iteration keep the order in which they ended (FIFO). */
static int as_completed_ties_main(void *arg)
{
    (void)arg;
    sleeper s[4] = {{.ms = 5, .value = 0}, {.ms = 0, .value = 1}, {.ms = 5, .value = 2},
                    {.ms = 0, .value = 3}};
    iou_task *t[4];
    spawn_sleepers(t, s, 4);
    iou_sleep(MS(1)); /* 1 and 3 end */
    CHECK(iou__task_done(t[1]) && iou__task_done(t[3]));
    iou_as_completed *c = iou_as_completed_new(t, 4);
    static const int expected[4] = {1, 3, 0, 2};
    for (int k = 0; k < 4; k++)
        CHECK_EQ(iou_as_completed_next(c, NULL), expected[k]);
    iou_as_completed_free(c);
    check_nothing_leaked();
    return 0;
}

static void test_as_completed_ties(void)
{
    CHECK_EQ(run_virtual(as_completed_ties_main, NULL), 0);
}

/* free() cancels and joins what was not handed back, finished or not. */
static int as_completed_free_main(void *arg)
{
    (void)arg;
    cancelled_count = 0;
    sleeper s[5] = {{.ms = 10}, {.ms = 20}, {.ms = 30}, {.ms = 3600000}, {.ms = 3600000}};
    iou_task *t[5];
    spawn_sleepers(t, s, 5);
    iou_as_completed *c = iou_as_completed_new(t, 5);
    CHECK_EQ(iou_as_completed_next(c, NULL), 0);
    CHECK_EQ(iou_sleep(MS(12)), 0); /* at 22 ms index 1 has ended (never handed back), 2 runs */
    uint64_t t0 = iou_now();
    iou_as_completed_free(c);
    CHECK(iou_now() == t0); /* cancellation, not the sleeps, ended them */
    CHECK_EQ(cancelled_count, 3);
    check_nothing_leaked();
    /* Empty: next says -ENOENT at once. */
    c = iou_as_completed_new(NULL, 0);
    CHECK(c != NULL);
    CHECK_EQ(iou_as_completed_next(c, NULL), -ENOENT);
    iou_as_completed_free(c);
    return 0;
}

static void test_as_completed_free(void)
{
    CHECK_EQ(run_virtual(as_completed_free_main, NULL), 0);
}

/* Outside a task (setup code), free() cannot wait: it cancels and detaches. */
static void test_as_completed_free_outside_a_task(void)
{
    cancelled_count = 0;
    int err;
    iou_loop *l = iou_loop_new_ex(&(iou_loop_opts){.virtual_clock = true}, &err);
    if (l == NULL)
        SKIP("io_uring unavailable: %s", iou_strerror(err));
    sleeper s[2] = {{.ms = 3600000}, {.ms = 3600000}};
    iou_task *t[2] = {iou_loop_spawn(l, sleeper_main, &s[0]), iou_loop_spawn(l, sleeper_main, &s[1])};
    iou_as_completed *c = iou_as_completed_new(t, 2);
    CHECK(c != NULL);
    iou_as_completed_free(c);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(cancelled_count, 2);
    CHECK_EQ(l->tasks_alive, 0);
    CHECK_EQ(l->stacks.in_use, 0);
    iou_loop_free(l);
}

static int next_of(void *arg)
{
    int value;
    return iou_as_completed_next(arg, &value);
}

static int as_completed_interrupted_main(void *arg)
{
    (void)arg;
    sleeper s[2] = {{.ms = 100, .value = 5}, {.ms = 200, .value = 6}};
    iou_task *t[2];
    spawn_sleepers(t, s, 2);
    iou_as_completed *c = iou_as_completed_new(t, 2);
    uint64_t t0 = iou_now();
    CHECK_EQ(iou_timeout(MS(10), next_of, c), -ETIMEDOUT);
    CHECK(iou_now() == t0 + MS(10));
    /* The tasks kept running and keep being recorded: call again. */
    int value = 0;
    CHECK_EQ(iou_as_completed_next(c, &value), 0);
    CHECK_EQ(value, 5);
    CHECK(iou_now() == t0 + MS(100));
    CHECK_EQ(iou_as_completed_next(c, &value), 1);
    CHECK_EQ(value, 6);
    iou_as_completed_free(c);
    check_nothing_leaked();
    return 0;
}

static void test_as_completed_interrupted(void)
{
    CHECK_EQ(iou_as_completed_next(NULL, NULL), -EPERM);
    CHECK_EQ(run_virtual(as_completed_interrupted_main, NULL), 0);
}

/* Many tasks finishing in a shuffled order: handed back in exactly that order. */
enum { SHUFFLED = 1000 };

static int as_completed_many_main(void *arg)
{
    (void)arg;
    static sleeper s[SHUFFLED];
    static iou_task *t[SHUFFLED];
    static int order[SHUFFLED]; /* order[k]: the index that finishes k-th */
    uint64_t seed = rng_seed();
    for (int i = 0; i < SHUFFLED; i++)
        order[i] = i;
    for (int i = SHUFFLED - 1; i > 0; i--) {
        int j = (int)(rng_next(&seed) % (uint32_t)(i + 1));
        int tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    for (int k = 0; k < SHUFFLED; k++)
        s[order[k]] = (sleeper){.ms = (uint64_t)k + 1, .value = order[k]};
    spawn_sleepers(t, s, SHUFFLED);
    iou_as_completed *c = iou_as_completed_new(t, SHUFFLED);
    for (int k = 0; k < SHUFFLED; k++) {
        int value = -1;
        CHECK_EQ(iou_as_completed_next(c, &value), order[k]);
        CHECK_EQ(value, order[k]);
    }
    iou_as_completed_free(c);
    check_nothing_leaked();
    return 0;
}

static void test_as_completed_many(void)
{
    CHECK_EQ(run_virtual(as_completed_many_main, NULL), 0);
}

int main(void)
{
    test_gather();
    test_gather_cancelled();
    test_wait_any();
    test_wait_any_tie();
    test_wait_any_many();
    test_wait_any_interrupted();
    test_as_completed_order();
    test_as_completed_ties();
    test_as_completed_free();
    test_as_completed_free_outside_a_task();
    test_as_completed_interrupted();
    test_as_completed_many();
    puts("test_combinators: ok");
    return 0;
}
