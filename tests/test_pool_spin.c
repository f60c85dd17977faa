/*
 * The pool's short spins (engine/spin.h): a worker that just finished a job
 * watches for the next one, and a loop with a job out watches its inbox,
 * each for a few microseconds. Checked here: a task calling the pool again
 * and again is served by one worker (a spinning worker counts as available,
 * so no second one is started or woken for its job), and the spins end: an
 * idle pool, and a loop waiting for a slow job, use next to no CPU.
 */
#include "testutil.h"

#include <sys/resource.h>
#include <time.h>

enum { ROUND_TRIPS = 2000 };

/* CPU time of the whole process (the loop's thread and the workers). */
static uint64_t process_cpu_ns(void)
{
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

static int empty(void *arg)
{
    (void)arg;
    return 7;
}

/* A slow job: it holds its worker (not the loop) for 100 ms. */
static int slow(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 100 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return 8;
}

static int one_worker_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUND_TRIPS; i++)
        CHECK_EQ(iou_run_in_pool(empty, NULL), 7);
    /* The worker was spinning or asleep whenever the next job came: either
     * way available, so the pool never grew beyond it. */
    CHECK_EQ(iou_pool_threads(), 1);
    return 0;
}

/* A spin that never ended would burn a CPU for the whole window. */
static int idle_main(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_run_in_pool(empty, NULL), 7);
    uint64_t cpu = process_cpu_ns();
    CHECK_EQ(iou_sleep(MS(100)), 0); /* the measured window: nothing runs */
    uint64_t idle_cpu = process_cpu_ns() - cpu;

    cpu = process_cpu_ns();
    CHECK_EQ(iou_run_in_pool(slow, NULL), 8); /* the loop waits 100 ms with a job out */
    uint64_t waiting_cpu = process_cpu_ns() - cpu;

    fprintf(stderr, "CPU over 100 ms: idle %.2f ms, waiting for a slow job %.2f ms\n",
            (double)idle_cpu / 1e6, (double)waiting_cpu / 1e6);
    CHECK(idle_cpu < MS(20));
    CHECK(waiting_cpu < MS(20));
    return 0;
}

int main(void)
{
    watchdog(60);
    CHECK_EQ(run_or_skip(one_worker_main, NULL), 0);
    CHECK_EQ(run_or_skip(idle_main, NULL), 0);
    return 0;
}
