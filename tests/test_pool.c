/*
 * The thread pool: iou_run_in_pool's values, a bound on concurrent workers,
 * and callers that leave early (cancellation, deadline) while their job still
 * runs: they return at once and the job's end is discarded safely later.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- values, and fn runs on another thread -------------------------------- */

static pthread_t loop_thread;

static int square_elsewhere(void *arg)
{
    int v = *(int *)arg;
    if (pthread_equal(pthread_self(), loop_thread))
        return -1;
    return v * v;
}

static int values_main(void *arg)
{
    (void)arg;
    loop_thread = pthread_self();
    for (int i = 1; i <= 20; i++)
        CHECK_EQ(iou_run_in_pool(square_elsewhere, &i), i * i);
    CHECK_EQ(iou_run_in_pool(NULL, NULL), -EINVAL);
    return 0;
}

/* ---- more jobs than workers ------------------------------------------------- */

enum { BOUND = 3, JOBS = 24 };
static atomic_int running, max_running;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate = PTHREAD_COND_INITIALIZER;

static int busy_job(void *arg)
{
    int now = atomic_fetch_add(&running, 1) + 1;
    int seen = atomic_load(&max_running);
    while (now > seen && !atomic_compare_exchange_weak(&max_running, &seen, now))
        ;
    /* The first job waits until a second one runs beside it (there are
     * more workers than one and jobs queued): the overlap is an event, not
     * a matter of timing. Later jobs pass straight through. */
    pthread_mutex_lock(&gate_lock);
    pthread_cond_broadcast(&gate);
    while (atomic_load(&max_running) < 2)
        pthread_cond_wait(&gate, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    atomic_fetch_sub(&running, 1);
    return (int)(intptr_t)arg + 1000;
}

static int one_job(void *arg)
{
    return iou_run_in_pool(busy_job, arg);
}

static int bounded_main(void *arg)
{
    (void)arg;
    iou_task *t[JOBS];
    for (int i = 0; i < JOBS; i++)
        t[i] = spawn_checked(one_job, (void *)(intptr_t)i);
    for (int i = 0; i < JOBS; i++)
        CHECK_EQ(iou_join(t[i]), i + 1000);
    CHECK(atomic_load(&max_running) <= BOUND);
    CHECK(atomic_load(&max_running) >= 2); /* they did run side by side */
    CHECK(iou_pool_threads() <= BOUND);
    return 0;
}

/* ---- callers that leave early ------------------------------------------------ */

/* A job that blocks in its worker until the test writes to the pipe. Its
 * state is static: it outlives the caller, as the header requires. */
static struct blocker {
    int pipe[2];
    atomic_int started, finished;
} blk;

static int blocking_job(void *arg)
{
    struct blocker *b = arg;
    atomic_fetch_add(&b->started, 1);
    char c;
    CHECK_EQ(read(b->pipe[0], &c, 1), 1);
    atomic_fetch_add(&b->finished, 1);
    return 42;
}

static int waits_on_pool(void *arg)
{
    (void)arg;
    return iou_run_in_pool(blocking_job, &blk);
}

static int timed_wait_on_pool(void *arg)
{
    (void)arg;
    return iou_timeout(MS(20), waits_on_pool, NULL);
}

/* Spins the loop until the pool job has started in its worker. */
static void wait_started(int n)
{
    while (atomic_load(&blk.started) < n)
        iou_yield();
}

static int leave_early_main(void *arg)
{
    (void)arg;
    CHECK(pipe(blk.pipe) == 0);
    /* Cancelled while its job runs: back at once, the job still blocked. */
    iou_task *t = spawn_checked(waits_on_pool, NULL);
    wait_started(1);
    uint64_t t0 = iou_now();
    iou_cancel(t);
    CHECK_EQ(iou_join(t), -ECANCELED);
    CHECK(iou_now() - t0 < MS(1000));
    CHECK_EQ(atomic_load(&blk.finished), 0);

    /* A deadline does the same. */
    t = spawn_checked(timed_wait_on_pool, NULL);
    CHECK_EQ(iou_join(t), -ETIMEDOUT);
    wait_started(2);
    CHECK_EQ(atomic_load(&blk.finished), 0);

    /* Release both jobs: their ends are discarded on this loop. */
    CHECK_EQ(write(blk.pipe[1], "xy", 2), 2);
    while (atomic_load(&blk.finished) < 2)
        iou_yield();

    /* A caller already cancelled does not run fn at all. */
    iou_cancel(iou_self());
    CHECK_EQ(iou_run_in_pool(blocking_job, &blk), -ECANCELED);
    CHECK_EQ(atomic_load(&blk.started), 2);
    return 0;
}

/* The loop waits for a job whose caller left: iou_run returns only after it. */
static int abandon_main(void *arg)
{
    (void)arg;
    iou_task *t = spawn_checked(waits_on_pool, NULL);
    wait_started(3);
    iou_cancel(t);
    CHECK_EQ(iou_join(t), -ECANCELED);
    CHECK_EQ(write(blk.pipe[1], "z", 1), 1); /* finishes while the loop is freed */
    return 0;
}

int main(void)
{
    watchdog(60);
    iou_pool_opts po = {.max_threads = BOUND};
    CHECK_EQ(iou_pool_config(&po), 0);
    CHECK_EQ(iou_pool_config(&(iou_pool_opts){.max_threads = 5000}), -EINVAL);
    CHECK_EQ(run_or_skip(values_main, NULL), 0);
    CHECK_EQ(run_or_skip(bounded_main, NULL), 0);
    CHECK_EQ(run_or_skip(leave_early_main, NULL), 0);
    CHECK_EQ(run_or_skip(abandon_main, NULL), 0);
    CHECK_EQ(atomic_load(&blk.finished), 3);
    /* Outside a task fn runs right here. */
    loop_thread = pthread_self();
    int v = 7;
    CHECK_EQ(iou_run_in_pool(square_elsewhere, &v), -1);
    close(blk.pipe[0]);
    close(blk.pipe[1]);
    return 0;
}
