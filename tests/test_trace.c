/*
 * IOU_TRACE / iou_loop_opts.trace: one line per submission and per
 * completion, with the task's name, the kind, the fd, the result (and its
 * error text) and the latency. Off by default: nothing is printed.
 */
#include "capture.h"
#include "testutil.h"

#include <sys/socket.h>

static int traced_nop(void *arg)
{
    (void)arg;
    return iou_nop();
}

static int main_task(void *arg)
{
    int *fds = arg;
    char buf[8];
    CHECK_EQ(iou_nop(), 0);
    CHECK_EQ(write(fds[1], "hello", 5), 5);
    CHECK_EQ(iou_recv(fds[0], buf, sizeof(buf), 0), 5);
    CHECK_EQ(iou_read(fds[2], buf, 1, 0), -EBADF);
    iou_task *t = iou_spawn_ex(traced_nop, NULL, &(iou_spawn_opts){.name = "tracer"});
    CHECK(t != NULL);
    CHECK_EQ(iou_join(t), 0);
    return 0;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

int main(void)
{
    watchdog(60);
    unsetenv("IOU_TRACE");
    unsetenv("IOU_DEBUG");
    int fds[3];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    fds[2] = 1000; /* not open */

    iou_loop_opts opts = {.trace = true};
    char *text = capture_run(main_task, fds, &opts);
    char want[96];
    expect_in(text, "iou: trace: submit nop task 'main'\n");
    expect_in(text, "iou: trace: done   nop res=0 task 'main' ");
    snprintf(want, sizeof(want), "iou: trace: submit recv fd=%d task 'main'\n", fds[0]);
    expect_in(text, want);
    snprintf(want, sizeof(want), "iou: trace: done   recv fd=%d res=5 task 'main' ", fds[0]);
    expect_in(text, want);
    expect_in(text, "iou: trace: done   read fd=1000 res=-9 (");
    expect_in(text, "iou: trace: submit nop task 'tracer'\n");
    expect_in(text, "iou: trace: done   nop res=0 task 'tracer' ");
    CHECK_EQ(count(text, "iou: trace: submit "), 4);
    CHECK_EQ(count(text, "iou: trace: done "), 4);
    CHECK_EQ(count(text, " us\n"), 4);
    fputs(text, stderr);
    free(text);

    /* The environment switches it on too; off by default. */
    setenv("IOU_TRACE", "1", 1);
    text = capture_run(main_task, fds, NULL);
    CHECK_EQ(count(text, "iou: trace: "), 8);
    free(text);
    unsetenv("IOU_TRACE");
    text = capture_run(main_task, fds, NULL);
    expect_not_in(text, "iou: trace:");
    free(text);
    close(fds[0]);
    close(fds[1]);
    puts("trace: a line per submission and completion, with task, kind, fd, result, latency");
    return 0;
}
