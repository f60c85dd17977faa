/*
 * Automatic fallback to epoll where io_uring is forbidden. A child process
 * installs a seccomp filter that makes io_uring_setup, io_uring_enter and
 * io_uring_register fail with EPERM, as Docker's default profile does, then:
 *   - default selection: a loop starts on "epoll" and does file I/O, a TCP
 *     echo, sleeps (timers) and a job on the worker pool, as on io_uring;
 *   - IOU_BACKEND=io_uring: loop creation fails with -EPERM and says why on
 *     stderr instead of falling back.
 * The parent checks each child's exit status (and the message).
 */
#include "testutil.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#if defined(__x86_64__)
#define THIS_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef __NR_io_uring_setup /* the numbers are the same on every architecture */
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif

enum { SKIPPED = 77 };

/* ---- the filter --------------------------------------------------------------------- */

#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define DENY_IF(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
                    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

/* Returns 0, or exits SKIPPED where seccomp filters cannot be installed. */
static void forbid_io_uring(void)
{
#ifndef THIS_ARCH
    _exit(SKIPPED);
#else
    struct sock_filter code[] = {
        LOAD(arch),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* another ABI: not ours to judge */
        LOAD(nr),
        DENY_IF(__NR_io_uring_setup),
        DENY_IF(__NR_io_uring_enter),
        DENY_IF(__NR_io_uring_register),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
        fprintf(stderr, "SKIP: seccomp unavailable: %s\n", strerror(errno));
        _exit(SKIPPED);
    }
    /* The filter works: io_uring_setup is refused. */
    CHECK_EQ(syscall(__NR_io_uring_setup, 4, NULL), -1);
    CHECK_EQ(errno, EPERM);
#endif
}

/* ---- what the child does on the fallback loop ------------------------------------------- */

static void file_io(void)
{
    char path[] = "/tmp/iou-seccomp-XXXXXX";
    int tmp = mkstemp(path);
    CHECK(tmp >= 0);
    close(tmp);
    int fd = iou_open(path, O_RDWR | O_TRUNC, 0);
    CHECK(fd >= 0);
    CHECK_EQ(iou_write(fd, "hello, epoll", 12, 0), 12);
    CHECK_EQ(iou_fsync(fd), 0);
    char buf[16] = {0};
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), 0), 12);
    CHECK(memcmp(buf, "hello, epoll", 12) == 0);
    CHECK_EQ(iou_close(fd), 0);
    unlink(path);
}

static int echo_once(void *arg)
{
    int lfd = *(int *)arg;
    int c = iou_accept(lfd, NULL, NULL);
    CHECK(c >= 0);
    char buf[64];
    ssize_t n;
    while ((n = iou_recv(c, buf, sizeof(buf), 0)) > 0)
        check_send_all(c, buf, (size_t)n);
    CHECK_EQ(n, 0);
    CHECK_EQ(iou_close(c), 0);
    return 0;
}

static void socket_echo(void)
{
    int lfd = iou_listen_tcp("127.0.0.1", 0, 8);
    CHECK(lfd >= 0);
    iou_task *server = spawn_checked(echo_once, &lfd);
    int c = iou_dial_tcp("127.0.0.1", (uint16_t)iou_local_port(lfd));
    CHECK(c >= 0);
    for (int i = 0; i < 100; i++) {
        char msg[32], back[32];
        int len = snprintf(msg, sizeof(msg), "round trip %d", i);
        check_send_all(c, msg, (size_t)len);
        CHECK_EQ(iou_recv(c, back, (size_t)len, MSG_WAITALL), len);
        CHECK(memcmp(msg, back, (size_t)len) == 0);
    }
    CHECK_EQ(iou_shutdown(c, SHUT_WR), 0);
    CHECK_EQ(iou_join(server), 0);
    CHECK_EQ(iou_close(c), 0);
    CHECK_EQ(iou_close(lfd), 0);
}

static void sleeps(void)
{
    uint64_t t0 = iou_now();
    CHECK_EQ(iou_sleep(MS(5)), 0);
    CHECK(iou_now() - t0 >= MS(5));
    /* A deadline ends a receive nobody answers. */
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    uint64_t prev = iou_deadline_push(iou_now() + MS(10));
    char b;
    CHECK_EQ(iou_recv(sv[0], &b, 1, 0), -ETIMEDOUT);
    iou_deadline_pop(prev);
    close(sv[0]);
    close(sv[1]);
}

static int pool_job(void *arg)
{
    return *(int *)arg * 2; /* on a worker thread */
}

static int child_main(void *arg)
{
    (void)arg;
    CHECK(strcmp(iou_backend_name(), "epoll") == 0);
    file_io();
    socket_echo();
    sleeps();
    int x = 21;
    CHECK_EQ(iou_run_in_pool(pool_job, &x), 42);
    return 0;
}

static int fallback_child(void)
{
    unsetenv("IOU_BACKEND"); /* the default selection (CI also runs with =epoll) */
    forbid_io_uring();
    CHECK_EQ(iou_run(child_main, NULL), 0);
    CHECK(iou_backend_name() == NULL); /* the loop is gone */
    return 0;
}

/* IOU_BACKEND=io_uring requires it: no fallback, a clear error. */
static int required_child(void)
{
    setenv("IOU_BACKEND", "io_uring", 1);
    forbid_io_uring();
    int err = 0;
    iou_loop *l = iou_loop_new_ex(NULL, &err);
    CHECK(l == NULL);
    CHECK_EQ(err, -EPERM);
    CHECK_EQ(iou_run(child_main, NULL), -EPERM);
    /* The loop option says the same, whatever the environment. */
    iou_loop_opts opts = {.backend = "io_uring"};
    unsetenv("IOU_BACKEND");
    CHECK(iou_loop_new_ex(&opts, &err) == NULL);
    CHECK_EQ(err, -EPERM);
    return 0;
}

/* ---- the parent --------------------------------------------------------------------------- */

/* Runs fn in a child with its stderr in *out (up to cap - 1 bytes); returns
 * its exit status (1 if it did not exit normally). */
static int in_child(int (*fn)(void), char *out, size_t cap)
{
    int p[2];
    CHECK_EQ(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], STDERR_FILENO);
        _exit(fn());
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = read(p[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    fputs(out, stderr);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(void)
{
    watchdog(60);
    static char out[4096];
    int st = in_child(fallback_child, out, sizeof(out));
    if (st == SKIPPED)
        SKIP("seccomp filters unavailable here");
    CHECK_EQ(st, 0);
    CHECK_EQ(in_child(required_child, out, sizeof(out)), 0);
    CHECK(strstr(out, "IOU_BACKEND requires the io_uring backend") != NULL);
    CHECK(strstr(out, "Operation not permitted") != NULL);
    puts("test_seccomp_fallback: ok");
    return 0;
}
