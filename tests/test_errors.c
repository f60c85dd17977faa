/*
 * Bad inputs get a negative errno back, never a crash: closed fds, NULL or
 * foreign tasks, calls made where they are not allowed, absurd stack sizes,
 * and iou_strerror() for any int.
 */
#include "check.h"
#include "loop.h"
#include "testutil.h"

#include <fcntl.h>
#include <iou.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

/* An fd number that is certainly closed (single-threaded: nothing reuses it). */
static int closed_fd(void)
{
    int fd = dup(0);
    CHECK(fd >= 0);
    CHECK(close(fd) == 0);
    return fd;
}

/* Every I/O call on a closed fd fails with -EBADF, inside a task or not. */
static void check_bad_fd(int fd)
{
    char buf[8] = {0};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), 0), -EBADF);
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), -1), -EBADF);
    CHECK_EQ(iou_write(fd, buf, sizeof(buf), 0), -EBADF);
    CHECK_EQ(iou_write(fd, buf, sizeof(buf), -1), -EBADF);
    CHECK_EQ(iou_recv(fd, buf, sizeof(buf), 0), -EBADF);
    CHECK_EQ(iou_send(fd, buf, sizeof(buf), 0), -EBADF);
    CHECK_EQ(iou_fsync(fd), -EBADF);
    CHECK_EQ(iou_accept(fd, NULL, NULL), -EBADF);
    CHECK_EQ(iou_connect(fd, (struct sockaddr *)&a, sizeof(a)), -EBADF);
    CHECK_EQ(iou_close(fd), -EBADF);
}

static int bad_fd_main(void *arg)
{
    (void)arg;
    check_bad_fd(closed_fd());
    check_bad_fd(-1);
    check_bad_fd(1 << 24); /* far beyond any fd table */
    /* A socket call on something that is not a socket. */
    int p[2];
    CHECK(pipe(p) == 0);
    char c = 0;
    CHECK_EQ(iou_recv(p[0], &c, 1, 0), -ENOTSOCK);
    CHECK_EQ(iou_send(p[1], &c, 1, 0), -ENOTSOCK);
    CHECK_EQ(iou_close(p[0]), 0);
    CHECK_EQ(iou_close(p[1]), 0);
    CHECK_EQ(iou_socket(-1, SOCK_STREAM, 0), -EAFNOSUPPORT);
    return 0;
}

static void test_bad_fds(void)
{
    CHECK_EQ(run_or_skip(bad_fd_main, NULL), 0);
    check_bad_fd(closed_fd()); /* the blocking path reports the same */
}

static void test_strerror(void)
{
    const char *neg = iou_strerror(-EBADF), *pos = iou_strerror(EBADF);
    CHECK(neg != NULL && pos != NULL);
    CHECK(strcmp(neg, pos) == 0);
    CHECK(strcmp(neg, iou_strerror(-ECANCELED)) != 0);
    const int odd[] = {0, 4095, -4095, 99999, -99999, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        const char *s = iou_strerror(odd[i]);
        CHECK(s != NULL);
        CHECK(strlen(s) < 1024); /* a real, terminated string */
    }
}

/* ---- tasks in the wrong place -------------------------------------------------- */

static int return_one(void *arg)
{
    (void)arg;
    return 1;
}

static int task_args_main(void *arg)
{
    (void)arg;
    CHECK_EQ(iou_join(NULL), -EINVAL);
    CHECK_EQ(iou_cancel(NULL), -EINVAL);
    CHECK(iou_spawn(NULL, NULL) == NULL); /* nothing to run: refused, not a crash later */
    return 0;
}

static void test_task_args(void)
{
    CHECK(iou_spawn(return_one, NULL) == NULL); /* no loop on this thread */
    CHECK(iou_spawn_ex(return_one, NULL, NULL) == NULL);
    CHECK_EQ(iou_cancel(NULL), -EINVAL);
    CHECK_EQ(run_or_skip(task_args_main, NULL), 0);
    CHECK(iou_run(NULL, NULL) < 0);
}

/* Join needs a task to suspend: from setup code it is refused. */
static void test_join_outside_task(void)
{
    iou_loop *l = iou_loop_new();
    if (l == NULL)
        SKIP("no loop: io_uring unavailable");
    iou_task *t = iou_loop_spawn(l, return_one, NULL);
    CHECK(t != NULL);
    CHECK_EQ(iou_join(t), -EPERM);
    iou_detach(t);
    CHECK_EQ(iou_loop_run(l), 0);
    CHECK_EQ(l->tasks_alive, 0);
    iou_loop_free(l);
}

/* ---- absurd stack sizes ----------------------------------------------------------- */

static int huge_stack_main(void *arg)
{
    (void)arg;
    iou_loop *l = iou_loop_current();
    size_t in_use = l->stacks.in_use;
    /* Past the largest class (256 MiB), and sizes whose rounding would overflow. */
    const size_t absurd[] = {SIZE_MAX / 2, SIZE_MAX, SIZE_MAX - 4095, (size_t)1 << 48,
                             ((size_t)256 << 20) + 1};
    for (size_t i = 0; i < sizeof(absurd) / sizeof(absurd[0]); i++) {
        iou_spawn_opts o = {.stack_size = absurd[i], .name = "absurd"};
        CHECK(iou_spawn_ex(return_one, NULL, &o) == NULL);
    }
    CHECK_EQ(l->stacks.in_use, in_use); /* nothing half-made stays behind */
    CHECK_EQ(l->tasks_alive, 1);
    iou_task *t = iou_spawn(return_one, NULL); /* and the loop is still fine */
    CHECK(t != NULL);
    CHECK_EQ(iou_join(t), 1);
    return 0;
}

static void test_huge_stack(void)
{
    CHECK_EQ(run_or_skip(huge_stack_main, NULL), 0);
}

int main(void)
{
    watchdog(30);
    test_strerror();
    test_task_args();
    test_bad_fds();
    test_join_outside_task();
    test_huge_stack();
    puts("test_errors: ok");
    return 0;
}
