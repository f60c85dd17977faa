/*
 * A task that overflows its stack kills the process with SIGABRT after
 * printing the task's name and "stack overflow", never with a bare SIGSEGV,
 * for each kind of guard (IOU_TEST_STACK_GUARD unset, =protect, =canary), and
 * also when the task runs on a recycled stack.
 *
 * Each case runs in a child: this program re-executes itself with "child" as
 * argument, so the child starts with its own environment (the guard switch,
 * and ASAN_OPTIONS in sanitizer builds, which are read at start-up). The
 * parent captures the child's stderr through a pipe.
 */
#include "check.h"
#include "sanitizer.h"
#include "task.h"

#include <errno.h>
#include <iou.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Child exit codes that mean the scenario itself went wrong. */
enum {
    CHILD_NO_OVERFLOW = 3,  /* iou_run returned: nothing stopped the task */
    CHILD_NOT_RECYCLED = 4, /* the task did not get a previously used stack */
    CHILD_WRONG_GUARD = 5,  /* the guard switch had no effect */
    CHILD_SKIP = 77,        /* io_uring unavailable */
};

enum { WARMUP_TASKS = 3 };

/* ---- the child ---------------------------------------------------------- */

static const char *guard_mode; /* IOU_TEST_STACK_GUARD, or NULL */
static char *warm_stacks[WARMUP_TASKS];

static int warmup(void *slot)
{
    *(char **)slot = iou_self()->stack->lo;
    return 0;
}

/* Recurses until the floor is reached, or without bound if floor is NULL.
 * The volatile array keeps every frame real: no loop, no tail call. */
static __attribute__((noinline)) int recurse(unsigned depth, const char *floor)
{
    volatile char pad[160];
    pad[0] = (char)depth;
    if (depth == UINT_MAX)
        return 0; /* never: only stops the compiler from proving endless recursion */
    if (floor && (const char *)pad < floor)
        return pad[0];
    int below = recurse(depth + 1, floor);
    pad[1] = (char)below;
    return pad[0] + pad[1];
}

static bool guard_as_requested(const iou__stack *s)
{
    if (guard_mode == NULL)
        return s->guard != IOU__GUARD_CANARY;
    if (strcmp(guard_mode, "protect") == 0)
        return s->guard == IOU__GUARD_PROTECT;
    return s->guard == IOU__GUARD_CANARY;
}

static bool recycled(const char *lo)
{
    for (int i = 0; i < WARMUP_TASKS; i++)
        if (warm_stacks[i] == lo)
            return true;
    return false;
}

static int overflowing(void *unused)
{
    (void)unused;
    iou__stack *s = iou_self()->stack;
    if (!recycled(s->lo))
        _exit(CHILD_NOT_RECYCLED);
    if (!guard_as_requested(s)) {
        fprintf(stderr, "guard kind %d does not match IOU_TEST_STACK_GUARD=%s\n", s->guard,
                guard_mode ? guard_mode : "(unset)");
        _exit(CHILD_WRONG_GUARD);
    }
    if (s->guard != IOU__GUARD_CANARY) {
        recurse(0, NULL); /* runs into the guard page */
        return 0;
    }
    /*
     * No guard page: the memory below lo is another stack, so an unbounded
     * recursion would corrupt it rather than fault. Recurse to within 2 KiB
     * of the bottom, then do what the next frames would have done, overwrite
     * the lowest bytes (the canary), and switch out: the loop checks the
     * canary whenever a task switches out.
     */
    recurse(0, s->lo + 2048);
    memset(s->lo, 0xcc, 64);
    iou_yield();
    return 0;
}

static int child_main(void *unused)
{
    (void)unused;
    /* Run and finish a few tasks first so the next one gets a used stack. */
    for (int i = 0; i < WARMUP_TASKS; i++)
        iou_join(iou_spawn(warmup, &warm_stacks[i]));
    iou_spawn_opts opts = {.name = "deep-recursion"};
    iou_task *t = iou_spawn_ex(overflowing, NULL, &opts);
    if (t == NULL)
        return -ENOMEM;
    iou_join(t);
    return 0;
}

static int child(void)
{
    guard_mode = getenv("IOU_TEST_STACK_GUARD");
    if (guard_mode && *guard_mode == '\0')
        guard_mode = NULL; /* the engine reads empty as unset */
    int r = iou_run(child_main, NULL);
    if (r == -ENOSYS || r == -EPERM)
        return CHILD_SKIP;
    fprintf(stderr, "iou_run returned %d: no overflow was detected\n", r);
    return CHILD_NO_OVERFLOW;
}

/* ---- the parent ---------------------------------------------------------- */

typedef struct outcome {
    int status;
    char text[8192];
} outcome;

static void exec_child(const char *self, const char *mode, int err_fd)
{
    if (dup2(err_fd, STDERR_FILENO) < 0)
        _exit(126);
    if (mode)
        setenv("IOU_TEST_STACK_GUARD", mode, 1);
    else
        unsetenv("IOU_TEST_STACK_GUARD");
#if defined(IOU_ASAN)
    /* The engine's fault handler chains to ASan's: ASan must let it be
     * installed (the default, pinned here in case ASAN_OPTIONS says
     * otherwise) and must leave the abort a plain SIGABRT. */
    const char *ours = "allow_user_segv_handler=1:handle_abort=0";
    const char *theirs = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof(opts), "%s%s%s", theirs ? theirs : "", theirs ? ":" : "", ours);
    setenv("ASAN_OPTIONS", opts, 1);
#endif
    execl(self, self, "child", (char *)NULL);
    _exit(127);
}

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Collects the child's stderr until it closes, for at most 20 s. */
static void drain(int fd, pid_t pid, outcome *o)
{
    size_t len = 0;
    uint64_t give_up = ms_now() + 20000;
    for (;;) {
        uint64_t now = ms_now();
        if (now >= give_up) {
            kill(pid, SIGKILL);
            fprintf(stderr, "child hung; stderr so far:\n%s\n", o->text);
            CHECK(!"child did not finish in time");
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(give_up - now)) <= 0)
            continue;
        ssize_t n = read(fd, o->text + len, sizeof(o->text) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        o->text[len] = '\0';
        if (len == sizeof(o->text) - 1)
            break;
    }
}

static void run_child(const char *self, const char *mode, outcome *o)
{
    memset(o, 0, sizeof(*o));
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        exec_child(self, mode, fds[1]);
    }
    close(fds[1]);
    drain(fds[0], pid, o);
    close(fds[0]);
    CHECK_EQ(waitpid(pid, &o->status, 0), pid);
}

static void expect_overflow_report(const char *self, const char *mode)
{
    outcome o;
    run_child(self, mode, &o);
    const char *label = mode ? mode : "default";
    if (WIFEXITED(o.status) && WEXITSTATUS(o.status) == CHILD_SKIP)
        SKIP("io_uring unavailable");
    bool aborted = WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT;
    bool named = strstr(o.text, "stack overflow") && strstr(o.text, "deep-recursion") &&
                 strstr(o.text, "(spawned at test_overflow.c:") && strstr(o.text, " in child_main)");
    if (!aborted || !named) {
        if (WIFSIGNALED(o.status))
            fprintf(stderr, "[%s] child killed by signal %d\n", label, WTERMSIG(o.status));
        else
            fprintf(stderr, "[%s] child exited with %d\n", label, WEXITSTATUS(o.status));
        fprintf(stderr, "[%s] child stderr:\n%s\n", label, o.text);
    }
    CHECK(aborted);
    CHECK(named);
    fprintf(stderr, "[%s] ok: %s", label, o.text);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child();
    const char *self = "/proc/self/exe"; /* this very program */
    expect_overflow_report(self, NULL);
    expect_overflow_report(self, "protect");
    expect_overflow_report(self, "canary");
    return 0;
}
