/*
 * Debug mode's slow-task warning: a task that computes for longer than the
 * threshold without suspending is named, with its spawn site and run time;
 * a task that yields often enough, and any task with debug mode off, is not.
 * The busy loops measure this thread's CPU time: no sleeping.
 */
#include "capture.h"
#include "testutil.h"

#include <time.h>

enum { THRESHOLD_MS = 5, BUSY_MS = 3 * THRESHOLD_MS };

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Burns ms of CPU time without suspending. */
static void burn(unsigned ms)
{
    uint64_t end = cpu_ns() + MS(ms);
    volatile uint64_t x = 0;
    while (cpu_ns() < end)
        x++;
}

static int hog(void *arg)
{
    (void)arg;
    burn(BUSY_MS);
    return 0;
}

/* Work in slices far below the threshold, suspending between them (a
 * slice is short so that even a loaded machine's preemption rarely lands
 * in one: the check measures wall time, as the other tasks see it). */
static int polite(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        volatile int x = 0;
        for (int j = 0; j < 1000; j++)
            x++;
        CHECK_EQ(iou_yield(), 0);
    }
    return 0;
}

static int hog_line; /* the line of the unnamed hog's spawn, for the message */

static int main_task(void *arg)
{
    (void)arg;
    iou_task *named = iou_spawn(hog, NULL);
    CHECK(named != NULL);
    CHECK_EQ(iou_task_set_name(named, "cruncher"), 0);
    iou_task *p = iou_spawn_ex(polite, NULL, &(iou_spawn_opts){.name = "polite"});
    hog_line = __LINE__ + 1;
    iou_task *unnamed = iou_spawn(hog, NULL);
    CHECK(p && unnamed);
    CHECK_EQ(iou_join(named), 0);
    CHECK_EQ(iou_join(p), 0);
    CHECK_EQ(iou_join(unnamed), 0);
    return 0;
}

static char *run_captured(bool debug)
{
    iou_loop_opts opts = {.debug = debug, .slow_task_ns = MS(THRESHOLD_MS)};
    return capture_run(main_task, NULL, &opts);
}

int main(void)
{
    watchdog(60);
    unsetenv("IOU_DEBUG");
    unsetenv("IOU_TRACE");

    char *text = run_captured(true);
    expect_in(text, "iou: debug: task 'cruncher' (spawned at test_debug_slow.c:");
    expect_in(text, " in main_task) ran ");
    expect_in(text, " ms without suspending (threshold 5.0 ms)");
    char want[128];
    /* The default name is the spawn site. */
    snprintf(want, sizeof(want), "task 'test_debug_slow.c:%d main_task' (spawned at "
             "test_debug_slow.c:%d in main_task) ran ", hog_line, hog_line);
    expect_in(text, want);
    expect_not_in(text, "'polite'");
    /* The run time reported is at least what was burnt. */
    const char *ran = strstr(strstr(text, "'cruncher'"), " ran ");
    CHECK(ran && strtod(ran + 5, NULL) >= BUSY_MS);
    fputs(text, stderr); /* the real messages, for the log */
    free(text);

    text = run_captured(false);
    expect_not_in(text, "without suspending");
    free(text);
    puts("slow tasks: named with their spawn site; polite and non-debug runs silent");
    return 0;
}
