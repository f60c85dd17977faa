/*
 * A tiny ring under load: 4 SQ entries (so a 16-entry CQ) and 2,000 tasks
 * each doing NOPs and pipe round trips. The SQ fills on almost every
 * submission (the loop must flush and retry, never fail the operation) and
 * completions overflow the CQ into the kernel's list (none may be lost).
 * Every operation must return its real result, exactly once.
 */
#include "check.h"
#include "loop.h"

#include <errno.h>
#include <iou.h>
#include <unistd.h>

enum { TASKS = 2000, NOPS = 20 };

static long nops_ok, bytes_ok;

static int worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < NOPS; i++)
        nops_ok += iou_nop() == 0;
    int p[2];
    CHECK(pipe(p) == 0);
    char out = 'x', in = 0;
    bytes_ok += iou_write(p[1], &out, 1, -1) == 1;
    bytes_ok += iou_read(p[0], &in, 1, -1) == 1 && in == 'x';
    iou_close(p[0]);
    iou_close(p[1]);
    return 0;
}

static int main_task(void *arg)
{
    (void)arg;
    static iou_task *t[TASKS];
    for (int i = 0; i < TASKS; i++)
        CHECK((t[i] = iou_spawn(worker, NULL)) != NULL);
    CHECK_EQ(iou_gather(t, TASKS, NULL), 0);
    CHECK_EQ(iou__loop()->ops_inflight, 0);
    return 0;
}

int main(void)
{
    iou_loop_opts opts = {.ring_entries = 4};
    CHECK_EQ(iou_run_ex(main_task, NULL, &opts), 0);
    CHECK_EQ(nops_ok, (long)TASKS * NOPS);
    CHECK_EQ(bytes_ok, 2L * TASKS);
    return 0;
}
