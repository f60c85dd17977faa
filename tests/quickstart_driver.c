/*
 * Runs the README's quick start (an echo server) the way a user would and
 * talks to it: usage `quickstart_driver PATH_TO_QUICKSTART`.
 *
 * Picks a free port, starts the program with that port as argv[1], waits (at
 * most 10 s) for the line it prints once listening, then checks that messages
 * of many sizes come back intact, over one connection and over ten open at
 * once, and finally stops it with SIGTERM. Exit 0 on success, 1 on failure.
 */
#define _GNU_SOURCE /* pipe2, syscall: this target is not built with it */
#include "check.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL(...)                                         \
    do {                                                  \
        fprintf(stderr, "quickstart_driver: " __VA_ARGS__); \
        fputc('\n', stderr);                              \
        exit(1);                                          \
    } while (0)

enum { IO_TIMEOUT_MS = 10000, CONCURRENT = 10 };

static pid_t child = -1;
static int child_out = -1; /* the child's stdout */

/* ---- the child process ---------------------------------------------------------- */

/* Waits up to ms for the child to exit; returns its status or -1. */
static int wait_child(int ms)
{
    int status;
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    if (pidfd >= 0) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        poll(&p, 1, ms);
        close(pidfd);
    }
    pid_t r = waitpid(child, &status, pidfd >= 0 ? WNOHANG : 0);
    return r == child ? status : -1;
}

/* Stops the child however we exit, so no echo server outlives the test. */
static void stop_child(void)
{
    if (child <= 0)
        return;
    kill(child, SIGTERM);
    if (wait_child(5000) == -1) {
        fprintf(stderr, "quickstart_driver: no exit after SIGTERM; killing\n");
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    child = -1;
}

static void start_child(const char *path, uint16_t port)
{
    int out[2];
    CHECK(pipe2(out, O_CLOEXEC) == 0);
    child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        char arg[16];
        snprintf(arg, sizeof(arg), "%u", port);
        dup2(out[1], STDOUT_FILENO);
        execl(path, path, arg, (char *)NULL);
        fprintf(stderr, "quickstart_driver: exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(out[1]);
    child_out = out[0];
    atexit(stop_child);
}

/* Forwards what the child printed to our stderr; false at its end of file. */
static bool pump_child_output(char *line, size_t cap, size_t *len)
{
    char buf[512];
    ssize_t n = read(child_out, buf, sizeof(buf));
    if (n <= 0)
        return false;
    fprintf(stderr, "quickstart: %.*s", (int)n, buf);
    for (ssize_t i = 0; line && i < n && *len + 1 < cap; i++)
        line[(*len)++] = buf[i];
    return true;
}

/* Waits for the first full line the child prints (it means "listening"). */
static void wait_listening(void)
{
    char line[256];
    size_t len = 0;
    uint64_t deadline = mono_ns() + MS(IO_TIMEOUT_MS);
    while (memchr(line, '\n', len) == NULL) {
        uint64_t now = mono_ns();
        if (now >= deadline)
            FAIL("no line on stdout within %d ms", IO_TIMEOUT_MS);
        struct pollfd p = {.fd = child_out, .events = POLLIN};
        if (poll(&p, 1, (int)((deadline - now) / 1000000u) + 1) < 0 && errno != EINTR)
            FAIL("poll: %s", strerror(errno));
        if (p.revents && !pump_child_output(line, sizeof(line), &len)) {
            int status = wait_child(1000);
            if (status != -1)
                child = -1; /* reaped */
            FAIL("the program ended before printing a line (status 0x%x)", status);
        }
    }
}

/* ---- talking to it ------------------------------------------------------------------ */

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int connect_port(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        FAIL("connect to port %u: %s", port, strerror(errno));
    CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
    return fd;
}

/* One message in flight on one connection. */
typedef struct exchange {
    int fd;
    uint32_t seed;
    unsigned char *out, *in;
    size_t len, sent, got;
} exchange;

static void exchange_init(exchange *x, int fd, uint32_t seed, size_t len)
{
    *x = (exchange){.fd = fd, .seed = seed, .len = len};
    x->out = malloc(len);
    x->in = malloc(len);
    CHECK(x->out && x->in);
    pattern_fill(x->out, len, seed, 0);
}

static bool exchange_done(const exchange *x)
{
    return x->sent == x->len && x->got == x->len;
}

/* Moves what the socket allows in both directions (it is non-blocking). */
static void exchange_step(exchange *x, short revents)
{
    if ((revents & POLLOUT) && x->sent < x->len) {
        ssize_t n = send(x->fd, x->out + x->sent, x->len - x->sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN)
            FAIL("send: %s", strerror(errno));
        x->sent += n > 0 ? (size_t)n : 0;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = recv(x->fd, x->in + x->got, x->len - x->got, 0);
        if (n == 0)
            FAIL("the server closed a connection after echoing %zu of %zu bytes", x->got, x->len);
        if (n < 0 && errno != EAGAIN)
            FAIL("recv: %s", strerror(errno));
        x->got += n > 0 ? (size_t)n : 0;
    }
}

/* Runs all exchanges at once (sending while reading: no deadlock on big
 * messages), then checks every echoed byte. */
static void run_exchanges(exchange *x, int n)
{
    struct pollfd p[CONCURRENT + 1];
    uint64_t deadline = mono_ns() + MS(IO_TIMEOUT_MS);
    for (;;) {
        int k = 0, open = 0;
        for (int i = 0; i < n; i++, k++) {
            p[k] = (struct pollfd){.fd = x[i].fd, .events = POLLIN};
            if (x[i].sent < x[i].len)
                p[k].events |= POLLOUT;
            open += !exchange_done(&x[i]);
            if (exchange_done(&x[i]))
                p[k].fd = -1;
        }
        if (open == 0)
            break;
        p[k] = (struct pollfd){.fd = child_out, .events = POLLIN};
        uint64_t now = mono_ns();
        if (now >= deadline)
            FAIL("echo not complete within %d ms", IO_TIMEOUT_MS);
        if (poll(p, (nfds_t)k + 1, (int)((deadline - now) / 1000000u) + 1) < 0 && errno != EINTR)
            FAIL("poll: %s", strerror(errno));
        for (int i = 0; i < n; i++)
            exchange_step(&x[i], p[i].revents);
        if (p[k].revents)
            pump_child_output(NULL, 0, NULL);
    }
    for (int i = 0; i < n; i++) {
        size_t bad = pattern_mismatch(x[i].in, x[i].len, x[i].seed, 0);
        if (bad != x[i].len)
            FAIL("echo of %zu bytes differs at byte %zu", x[i].len, bad);
        free(x[i].out);
        free(x[i].in);
    }
}

/* Messages of many sizes, one after another, over one connection. */
static void check_sizes(uint16_t port)
{
    static const size_t sizes[] = {1, 2, 13, 100, 1460, 4096, 4097, 65536, 300001};
    int fd = connect_port(port);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        exchange x;
        exchange_init(&x, fd, (uint32_t)i, sizes[i]);
        run_exchanges(&x, 1);
    }
    close(fd);
}

/* Ten connections open at once; the last one opened is served first, which
 * only works if the server handles connections concurrently. */
static void check_concurrent(uint16_t port)
{
    int fd[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++)
        fd[i] = connect_port(port);
    for (int i = CONCURRENT - 1; i >= 0; i--) {
        exchange x;
        exchange_init(&x, fd[i], 100u + (uint32_t)i, 10);
        run_exchanges(&x, 1);
    }
    exchange x[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++)
        exchange_init(&x[i], fd[i], 200u + (uint32_t)i, 1000u * (size_t)(i + 1) * (size_t)(i + 1));
    run_exchanges(x, CONCURRENT);
    for (int i = 0; i < CONCURRENT; i++)
        close(fd[i]);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH_TO_QUICKSTART\n", argv[0]);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    uint16_t port = free_port();
    start_child(argv[1], port);
    wait_listening();
    check_sizes(port);
    check_concurrent(port);
    kill(child, SIGTERM);
    int status = wait_child(5000);
    if (status == -1)
        FAIL("the program did not exit within 5 s of SIGTERM");
    child = -1;
    fprintf(stderr, "quickstart_driver: ok (port %u, exit status 0x%x)\n", port, status);
    return 0;
}
