/*
 * Debug mode's misuse reports, each naming the task involved:
 *   - iou_join of a task already joined, detached, being joined, or itself:
 *     reported, then -EINVAL as always; iou_detach of a task being joined;
 *   - a blocking call from a loop callback: reported, then the plain system
 *     call runs as always;
 *   - iou_cancel from a thread that does not own the loop: reported, then
 *     abort() (checked in a child process).
 * Without debug mode the same calls give the same results, silently.
 */
#include "capture.h"
#include "testutil.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>

static int quitter(void *arg)
{
    (void)arg;
    return 42;
}

static int wait_event(void *arg)
{
    return iou_event_wait(arg);
}

static int join_it(void *arg)
{
    return iou_join(arg);
}

typedef struct from_callback {
    int fd;
    ssize_t got;
    iou_event done;
} from_callback;

/* A loop callback doing what only tasks should do. */
static void blocking_callback(void *arg)
{
    from_callback *fc = arg;
    char buf[8];
    iou_sleep(1000); /* 1 us: blocks the loop, briefly */
    fc->got = iou_recv(fc->fd, buf, sizeof(buf), 0);
    iou_event_set(&fc->done);
}

static int main_task(void *arg)
{
    (void)arg;
    /* Join twice. */
    iou_task *t = iou_spawn(quitter, NULL);
    iou_task_set_name(t, "twice");
    CHECK_EQ(iou_join(t), 42);
    CHECK_EQ(iou_join(t), -EINVAL);

    /* Join a detached task, and oneself. */
    t = iou_spawn(quitter, NULL);
    iou_task_set_name(t, "loner");
    iou_detach(t);
    CHECK_EQ(iou_join(t), -EINVAL);
    CHECK_EQ(iou_join(iou_self()), -EINVAL);

    /* Join (and detach) a task another task is joining. */
    iou_event ev;
    iou_event_init(&ev);
    iou_task *target = iou_spawn(wait_event, &ev);
    iou_task_set_name(target, "target");
    iou_task *joiner = iou_spawn(join_it, target);
    iou_task_set_name(joiner, "joiner");
    CHECK_EQ(iou_yield(), 0); /* both start: target waits, joiner joins it */
    CHECK_EQ(iou_join(target), -EINVAL);
    iou_detach(target);
    iou_event_set(&ev);
    CHECK_EQ(iou_join(joiner), 0);

    /* Blocking calls from a callback. */
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(write(sv[1], "hello", 5), 5);
    from_callback fc = {.fd = sv[0], .got = -1};
    iou_event_init(&fc.done);
    CHECK_EQ(iou_call_soon(iou_loop_current(), blocking_callback, &fc), 0);
    CHECK_EQ(iou_event_wait(&fc.done), 0);
    CHECK_EQ(fc.got, 5); /* the plain recv ran */
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/* ---- the wrong thread, in a child process (it aborts) ---------------------- */

static void *cancel_from_thread(void *arg)
{
    iou_cancel(arg);
    return NULL;
}

static int wrong_thread_main(void *arg)
{
    (void)arg;
    iou_task *t = iou_spawn(quitter, NULL);
    iou_task_set_name(t, "victim");
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, cancel_from_thread, t), 0);
    pthread_join(th, NULL); /* not reached in debug mode: the process aborts */
    return iou_join(t);
}

static void check_wrong_thread(void)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDERR_FILENO);
        iou_loop_opts opts = {.debug = true};
        int r = iou_run_ex(wrong_thread_main, NULL, &opts);
        _exit(r == -ENOSYS || r == -EPERM ? 77 : 0);
    }
    close(p[1]);
    char text[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(text) - 1 && (n = read(p[0], text + len, sizeof(text) - 1 - len)) > 0)
        len += (size_t)n;
    text[len] = '\0';
    close(p[0]);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        SKIP("io_uring unavailable");
    expect_in(text, "iou: debug: iou_cancel() called on loop ");
    expect_in(text, " from a thread that does not own it: a data race");
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    fputs(text, stderr);
}

int main(void)
{
    watchdog(60);
    unsetenv("IOU_DEBUG");
    char *text = capture_run(main_task, NULL, &(iou_loop_opts){.debug = true});
    expect_in(text, "iou: debug: misuse: iou_join of an already joined (freed) task 'twice' "
                    "(spawned at test_debug_misuse.c:");
    expect_in(text, "(called from task 'main')");
    expect_in(text, "iou: debug: misuse: iou_join of a detached task 'loner' (spawned at ");
    expect_in(text, "iou: debug: misuse: iou_join of itself by task 'main' (started by iou_run)");
    expect_in(text, "iou: debug: misuse: iou_join of a task already being joined: task 'target'");
    expect_in(text, "iou: debug: misuse: iou_detach of a task being joined: task 'target'");
    expect_in(text, "iou: debug: iou_sleep() called from a loop callback, not a task: the "
                    "plain system call runs and blocks the whole loop");
    expect_in(text, "iou: debug: iou_recv() called from a loop callback");
    fputs(text, stderr);
    free(text);

    text = capture_run(main_task, NULL, &(iou_loop_opts){.debug = false});
    expect_not_in(text, "iou: debug:");
    free(text);

    check_wrong_thread();
    puts("misuse: joins, detach, blocking callback reported; wrong thread aborts");
    return 0;
}
