/*
 * Outside any task the I/O functions are the ordinary blocking system calls:
 * the same code runs in setup code and in plain threads. Checked on the main
 * thread with no loop, then in several pthreads at once while the main
 * thread runs a loop whose tasks keep doing I/O.
 */
#include "check.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <iou.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- files ------------------------------------------------------------------ */

/* alone: no other thread may open an fd meanwhile, so a closed number stays closed. */
static void blocking_file(bool alone)
{
    char path[] = "/tmp/iou_test_blocking_XXXXXX";
    int tmp = mkstemp(path);
    CHECK(tmp >= 0);
    close(tmp);
    int fd = iou_open(path, O_RDWR | O_CLOEXEC, 0);
    unlink(path); /* the open fd keeps it alive; nothing left behind on failure */
    CHECK(fd >= 0);
    char buf[16];
    CHECK_EQ(iou_write(fd, "hello", 5, 0), 5);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0); /* explicit offset: position untouched */
    CHECK_EQ(iou_write(fd, "abc", 3, -1), 3);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 3);
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), 0), 5);
    CHECK(memcmp(buf, "abclo", 5) == 0);
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), -1), 2);
    CHECK(memcmp(buf, "lo", 2) == 0);
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), -1), 0);
    CHECK_EQ(iou_read(fd, buf, sizeof(buf), 100), 0);
    CHECK_EQ(iou_fsync(fd), 0);
    CHECK_EQ(iou_close(fd), 0);
    errno = 0;
    CHECK(!alone || (fcntl(fd, F_GETFD) == -1 && errno == EBADF));
    CHECK_EQ(iou_open("/tmp/iou-test-no-such-dir/x", O_RDONLY, 0), -ENOENT);
}

/* ---- sockets: this thread is the client, a pthread the echo server ----------- */

typedef struct echo_server {
    int lfd;
    struct sockaddr_in peer;
    socklen_t peer_len;
    int echoed;
} echo_server;

static void *serve_one(void *arg)
{
    echo_server *s = arg;
    s->peer_len = sizeof(s->peer);
    int fd = iou_accept(s->lfd, (struct sockaddr *)&s->peer, &s->peer_len);
    CHECK(fd >= 0);
    char buf[4096];
    ssize_t n;
    while ((n = iou_recv(fd, buf, sizeof(buf), 0)) > 0) {
        CHECK_EQ(iou_send(fd, buf, (size_t)n, 0), n);
        s->echoed += (int)n;
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(iou_close(fd), 0);
    return NULL;
}

static int listen_loopback(uint16_t *port)
{
    int fd = iou_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(fd, 8) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void blocking_socket(uint32_t seed)
{
    uint16_t port;
    echo_server s = {.lfd = listen_loopback(&port)};
    pthread_t server;
    CHECK(pthread_create(&server, NULL, serve_one, &s) == 0);
    int fd = iou_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(iou_connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    unsigned char out[1000], in[1000];
    size_t total = 0;
    for (int round = 0; round < 20; round++) {
        pattern_fill(out, sizeof(out), seed, total);
        CHECK_EQ(iou_send(fd, out, sizeof(out), 0), sizeof(out));
        size_t got = 0;
        while (got < sizeof(in)) {
            ssize_t n = iou_recv(fd, in + got, sizeof(in) - got, 0);
            CHECK(n > 0);
            got += (size_t)n;
        }
        CHECK_EQ(pattern_mismatch(in, sizeof(in), seed, total), sizeof(in));
        total += sizeof(out);
    }
    CHECK_EQ(iou_close(fd), 0); /* the server sees end of stream and returns */
    CHECK(pthread_join(server, NULL) == 0);
    CHECK_EQ(s.echoed, (int)total);
    CHECK_EQ(s.peer_len, sizeof(struct sockaddr_in));
    CHECK_EQ(ntohl(s.peer.sin_addr.s_addr), INADDR_LOOPBACK);
    CHECK_EQ(iou_close(s.lfd), 0);
}

/* ---- time and the task-only calls ---------------------------------------------- */

static void blocking_time(void)
{
    CHECK(iou_self() == NULL);
    CHECK(!iou_cancelled());
    CHECK_EQ(iou_nop(), 0);
    CHECK_EQ(iou_yield(), 0);
    uint64_t prev = iou_now();
    for (int i = 0; i < 10000; i++) {
        uint64_t now = iou_now();
        CHECK(now >= prev);
        prev = now;
    }
    uint64_t t0 = mono_ns(), n0 = iou_now();
    CHECK_EQ(iou_sleep(MS(10)), 0);
    CHECK(mono_ns() - t0 >= MS(10));
    CHECK(iou_now() - n0 >= MS(10));
    CHECK_EQ(iou_sleep(0), 0);
}

/* Everything above, as one unit that must work on any thread without a loop. */
static void blocking_suite(uint32_t seed, bool alone)
{
    CHECK(iou_loop_current() == NULL);
    blocking_file(alone);
    blocking_socket(seed);
    blocking_time();
}

/* ---- pthreads next to a running loop ------------------------------------------- */

enum { THREADS = 4, PINGERS = 8 };

static int done_pipe[2];
static bool stop_pinging;

static void *thread_main(void *arg)
{
    blocking_suite((uint32_t)(uintptr_t)arg, false);
    char one = 1;
    CHECK_EQ(write(done_pipe[1], &one, 1), 1);
    return NULL;
}

/* Round trips over a socketpair until told to stop: the loop keeps working. */
static int pinger(void *arg)
{
    (void)arg;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    int rounds = 0;
    char c = 'p';
    do {
        CHECK_EQ(iou_send(sv[0], &c, 1, 0), 1);
        CHECK_EQ(iou_recv(sv[1], &c, 1, 0), 1);
        rounds++;
    } while (!stop_pinging);
    CHECK_EQ(iou_close(sv[0]), 0);
    CHECK_EQ(iou_close(sv[1]), 0);
    return rounds;
}

static int loop_main(void *arg)
{
    (void)arg;
    pthread_t th[THREADS];
    iou_task *p[PINGERS];
    stop_pinging = false;
    for (int i = 0; i < PINGERS; i++)
        p[i] = iou_spawn(pinger, NULL);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, thread_main, (void *)(uintptr_t)(i + 1)) == 0);
    /* The threads run their blocking suites while this loop serves its tasks. */
    char done[THREADS];
    for (size_t got = 0; got < THREADS;) {
        ssize_t n = iou_read(done_pipe[0], done + got, THREADS - got, -1);
        CHECK(n > 0);
        got += (size_t)n;
    }
    stop_pinging = true;
    for (int i = 0; i < PINGERS; i++)
        CHECK(iou_join(p[i]) >= 1);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    return 0;
}

int main(void)
{
    watchdog(30);
    int fds = count_fds();
    blocking_suite(0, true);
    CHECK(pipe2(done_pipe, O_CLOEXEC) == 0);
    CHECK_EQ(run_or_skip(loop_main, NULL), 0);
    close(done_pipe[0]);
    close(done_pipe[1]);
    CHECK_EQ(count_fds(), fds);
    puts("test_blocking: ok");
    return 0;
}
