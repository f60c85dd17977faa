/*
 * Sleeping tasks wake in deadline order: 10,000 tasks sleep random durations
 * (0-200 ms, fixed seed) and record their deadlines in the order they wake.
 *
 * Run twice:
 *   - on the real clock: all wake, in deadline order, none early, the whole
 *     run takes < 2 s, and no task or stack is left over;
 *   - on the virtual clock, where every read of iou_now() inside one batch
 *     gives the same value, so the deadline a task computes is exactly the
 *     one the loop armed: there the order must be exactly non-decreasing and
 *     each task wakes precisely at its deadline.
 */
#include "check.h"
#include "loop.h"
#include "task.h"
#include "testutil.h"

#include <iou.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { TASKS = 10000 };
#define MAX_SLEEP_NS MS(200)

/*
 * A task computes its deadline from an iou_now() read a little before
 * iou_sleep() reads the clock again to arm the timer, so the deadline the
 * loop actually armed lies between the task's own start and the start of
 * the task that ran next (tasks of one batch run one after the other); if
 * the thread is preempted in between, that window simply widens. The order
 * check uses those bounds, so it needs no tolerance and cannot be fooled by
 * a slow machine. On the virtual clock both reads agree: the bounds meet.
 */
typedef struct sleeper_arg {
    uint64_t duration;
    size_t index;    /* spawn order */
    size_t seq;      /* run order */
    uint64_t deadline;
} sleeper_arg;

typedef struct run {
    sleeper_arg args[TASKS];
    uint64_t start[TASKS]; /* by run order: the iou_now() each task read before sleeping */
    size_t started;
    size_t woke[TASKS]; /* task indexes in wake order */
    size_t woken;
    size_t early;     /* tasks that woke before their deadline */
    size_t off_exact; /* tasks that woke at a time other than their deadline */
    size_t baseline_tasks, baseline_stacks;
} run;

static run R;

static int sleeper(void *p)
{
    sleeper_arg *a = p;
    a->seq = R.started++;
    R.start[a->seq] = iou_now();
    a->deadline = R.start[a->seq] + a->duration;
    CHECK_EQ(iou_sleep(a->duration), 0);
    uint64_t now = iou_now();
    R.early += now < a->deadline;
    R.off_exact += now != a->deadline;
    R.woke[R.woken++] = a->index;
    return 0;
}

static int sleep_main(void *unused)
{
    (void)unused;
    iou_loop *l = iou__loop();
    /* Only main itself is alive and holds a stack. */
    R.baseline_tasks = l->tasks_alive;
    R.baseline_stacks = l->stacks.in_use;
    CHECK_EQ(R.baseline_tasks, 1);
    CHECK_EQ(R.baseline_stacks, 1);

    static iou_task *tasks[TASKS];
    for (size_t i = 0; i < TASKS; i++) {
        tasks[i] = iou_spawn(sleeper, &R.args[i]);
        CHECK(tasks[i] != NULL);
    }
    CHECK_EQ(l->tasks_alive, TASKS + 1);
    for (size_t i = 0; i < TASKS; i++)
        CHECK_EQ(iou_join(tasks[i]), 0);

    CHECK_EQ(l->tasks_alive, R.baseline_tasks);
    CHECK_EQ(l->stacks.in_use, R.baseline_stacks);
    CHECK_EQ(iou__heap_next(&l->timers), IOU__NEVER); /* no timer left armed */
    return 0;
}

/* Durations are multiples of unit: a coarse unit makes equal deadlines. */
static void prepare(uint64_t unit)
{
    uint64_t rng = 20240601; /* fixed: the same durations every run */
    R.started = R.woken = R.early = R.off_exact = 0;
    for (size_t i = 0; i < TASKS; i++) {
        uint64_t d = rng_next(&rng) % (MAX_SLEEP_NS + 1);
        R.args[i] = (sleeper_arg){.duration = d - d % unit, .index = i};
    }
}

/* The latest the loop can have armed a's timer (see the comment above). */
static uint64_t armed_at_most(const sleeper_arg *a, bool exact)
{
    if (exact)
        return a->deadline;
    if (a->seq + 1 == R.started)
        return UINT64_MAX; /* the last to run: nothing bounds it */
    return R.start[a->seq + 1] + a->duration;
}

/* Every task woke exactly once, never early, and in deadline order: no task
 * woke after one whose timer was certainly armed later than its own. When
 * exact, equal deadlines wake in the order they were armed. */
static void check_order(bool exact)
{
    CHECK_EQ(R.started, TASKS);
    CHECK_EQ(R.woken, TASKS);
    CHECK_EQ(R.early, 0);
    static bool seen[TASKS];
    memset(seen, 0, sizeof(seen));
    uint64_t latest = 0; /* the largest deadline woken so far */
    const sleeper_arg *prev = NULL;
    for (size_t k = 0; k < TASKS; k++) {
        const sleeper_arg *a = &R.args[R.woke[k]];
        if (exact && prev && prev->deadline == a->deadline)
            CHECK(prev->seq < a->seq); /* real-clock deadlines only look equal */
        prev = a;
        CHECK(!seen[a->index]);
        seen[a->index] = true;
        if (armed_at_most(a, exact) < latest) {
            fprintf(stderr, "wake #%zu: deadline %llu, but %llu already woke\n", k,
                    (unsigned long long)a->deadline, (unsigned long long)latest);
            CHECK(!"tasks woke out of deadline order");
        }
        latest = a->deadline > latest ? a->deadline : latest;
    }
}

static void test_real_clock(void)
{
    prepare(1);
    uint64_t t0 = mono_ns();
    CHECK_EQ(run_or_skip(sleep_main, NULL), 0);
    uint64_t took = mono_ns() - t0;
    fprintf(stderr, "real clock: %d sleepers in %.1f ms\n", TASKS, took / 1e6);
    check_order(false);
    CHECK(took >= MAX_SLEEP_NS / 2); /* the sleeps were real */
    CHECK(took < MS(2000));
}

static void test_virtual_clock(void)
{
    prepare(MS(1)); /* about 50 tasks share each deadline */
    iou_loop_opts opts = {.virtual_clock = true};
    int err = 0;
    iou_loop *l = iou_loop_new_ex(&opts, &err);
    if (l == NULL && (err == -ENOSYS || err == -EPERM))
        SKIP("io_uring unavailable: %s", iou_strerror(err));
    CHECK(l != NULL);
    iou_task *m = iou_loop_spawn(l, sleep_main, NULL);
    CHECK(m != NULL);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(m->state, IOU__TASK_DONE);
    CHECK_EQ(m->result, 0);
    iou_detach(m); /* done: frees its record */
    iou_loop_free(l);
    check_order(true);
    CHECK_EQ(R.off_exact, 0);
}

int main(void)
{
    test_real_clock();
    test_virtual_clock();
    return 0;
}
