/*
 * Debug mode's loop-end reports: tasks never joined or detached (still
 * running, or finished), a task that ignored cancellation and the stack it
 * leaked, and the stack high-water mark per spawn site. Joined and detached
 * tasks are not reported.
 */
#include "capture.h"
#include "task.h"
#include "testutil.h"

enum { DEEP_BYTES = 20000 };

static int sleeper(void *arg)
{
    (void)arg;
    return iou_sleep(HOUR);
}

static int quitter(void *arg)
{
    (void)arg;
    return 42;
}

/* Uses DEEP_BYTES of its stack. */
static int deep(void *arg)
{
    (void)arg;
    volatile char big[DEEP_BYTES];
    memset((char *)big, 1, sizeof(big));
    return big[DEEP_BYTES / 2];
}

/* Parks with no interruption hook and nobody to wake it: cancellation
 * cannot end it, so the loop abandons it (internal API). */
static int stubborn(void *arg)
{
    (void)arg;
    iou__park(iou_self(), NULL, NULL);
    return 0;
}

static int deep_line;

static int main_task(void *arg)
{
    (void)arg;
    iou_task *s = iou_spawn(sleeper, NULL);
    iou_task *q = iou_spawn(quitter, NULL);
    iou_task *lone = iou_spawn(sleeper, NULL);
    iou_task *joined = iou_spawn(quitter, NULL);
    iou_task *stub = iou_spawn(stubborn, NULL);
    deep_line = __LINE__ + 1;
    iou_task *d = iou_spawn(deep, NULL);
    CHECK(s && q && lone && joined && stub && d);
    iou_task_set_name(s, "sleeper");
    iou_task_set_name(q, "quitter");
    iou_task_set_name(lone, "loner");
    iou_task_set_name(joined, "joined");
    iou_task_set_name(stub, "stubborn");
    iou_detach(lone);
    CHECK_EQ(iou_join(joined), 42);
    CHECK_EQ(iou_join(d), 1);
    return 0;
}

int main(void)
{
    watchdog(60);
    unsetenv("IOU_DEBUG");
    char *text = capture_run(main_task, NULL, &(iou_loop_opts){.debug = true});
    expect_in(text, "iou: debug: task 'sleeper' (spawned at test_debug_leak.c:");
    expect_in(text, " in main_task) was never joined or detached: still parked at loop end");
    expect_in(text, "iou: debug: task 'quitter' (spawned at test_debug_leak.c:");
    expect_in(text, " finished (returned 42) but was never joined or detached");
    expect_in(text, "iou: debug: task 'stubborn' (spawned at test_debug_leak.c:");
    expect_in(text, " ignored cancellation: abandoned, parked");
    expect_in(text, "iou: debug: 1 task stack(s) still in use at loop end (leaked)");
    expect_not_in(text, "'loner'");
    expect_not_in(text, "'joined'");
    expect_in(text, "iou: debug: stack high-water marks by spawn site (deepest task):");

    char want[96];
    snprintf(want, sizeof(want), "spawned at test_debug_leak.c:%d in main_task: 1 task(s), ",
             deep_line);
    expect_in(text, want);
    size_t used = strtoul(strstr(text, want) + strlen(want), NULL, 10);
    CHECK(used >= DEEP_BYTES && used < DEEP_BYTES + 4096);
    fputs(text, stderr);
    free(text);

    text = capture_run(main_task, NULL, &(iou_loop_opts){.debug = false});
    expect_not_in(text, "iou: debug:");
    free(text);
    printf("loop-end report: unjoined, finished, abandoned; deep task used %zu bytes\n", used);
    return 0;
}
