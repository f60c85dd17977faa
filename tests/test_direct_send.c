/*
 * The io_uring backend's direct send (iou_send(), backend_uring.c): a send
 * that is the only queued submission when the loop is about to sleep is
 * made with send(2), no SQE and no enter; two sends queued together still
 * go to the kernel as SQEs; a full socket sends the operation to the ring,
 * where it waits for room, and the next tries back off; errors are those
 * the kernel reports (EPIPE, no SIGPIPE); a long transfer mixing both paths
 * arrives whole and in order; IOU_TEST_DISABLE=direct_send turns it off.
 * On the epoll backend only the results and the data are checked.
 */
#include "testutil.h"

#include <sys/socket.h>

static bool expect_direct; /* io_uring backend, direct sends not masked */

static void stream_pair(int sv[2])
{
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* A lone send: one send(2), no SQE, no enter; the bytes are there. */
static void lone_send(void)
{
    int sv[2];
    stream_pair(sv);
    iou_loop_stats before = loop_stats();
    CHECK_EQ(iou_send(sv[0], "hello", 5, 0), 5);
    iou_loop_stats after = loop_stats();
    CHECK_EQ(DELTA(sends_direct), expect_direct ? 1 : 0);
    if (expect_direct) {
        CHECK_EQ(DELTA(sqes), 0);
        CHECK_EQ(DELTA(cqes), 0);
        CHECK_EQ(DELTA(enters), 0);
    }
    char buf[8];
    CHECK_EQ(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    close(sv[0]);
    close(sv[1]);
}

typedef struct sender {
    int fd;
    const char *msg;
} sender;

static int send_one(void *arg)
{
    sender *s = arg;
    return (int)iou_send(s->fd, s->msg, strlen(s->msg), 0);
}

/* Two tasks' sends leave in the same batch: both are SQEs, none direct. */
static void batched_sends(void)
{
    int a[2], b[2];
    stream_pair(a);
    stream_pair(b);
    sender sa = {a[0], "first"}, sb = {b[0], "second"};
    iou_loop_stats before = loop_stats();
    iou_task *ta = spawn_checked(send_one, &sa);
    iou_task *tb = spawn_checked(send_one, &sb);
    CHECK_EQ(iou_join(ta), 5);
    CHECK_EQ(iou_join(tb), 6);
    iou_loop_stats after = loop_stats();
    CHECK_EQ(DELTA(sends_direct), 0);
    if (!on_epoll())
        CHECK(DELTA(sqes) >= 2);
    char buf[8];
    CHECK_EQ(recv(a[1], buf, sizeof(buf), MSG_DONTWAIT), 5);
    CHECK_EQ(recv(b[1], buf, sizeof(buf), MSG_DONTWAIT), 6);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
}

/* Fills fd's send buffer behind iou's back; returns the bytes queued. */
static size_t fill(int fd)
{
    static char junk[4096];
    size_t queued = 0;
    ssize_t n;
    while ((n = send(fd, junk, sizeof(junk), MSG_DONTWAIT)) > 0)
        queued += (size_t)n;
    CHECK(n < 0 && errno == EAGAIN);
    return queued;
}

/* Reads and discards exactly len bytes. */
static void drain(int fd, size_t len)
{
    char buf[4096];
    while (len > 0) {
        ssize_t n = iou_recv(fd, buf, len < sizeof(buf) ? len : sizeof(buf), 0);
        CHECK(n > 0);
        len -= (size_t)n;
    }
}

typedef struct drainer {
    int fd;
    size_t len;
} drainer;

/* Drains the peer later: by then the sender's send is in the kernel. A
 * timer, not an SQE, so the send is the loop's only submission. */
static int drain_later(void *arg)
{
    drainer *d = arg;
    CHECK_EQ(iou_sleep(100 * 1000000u), 0);
    drain(d->fd, d->len);
    return 0;
}

/*
 * A full socket: the direct try finds no room, so the send goes to the
 * ring and waits there until the peer reads. The miss makes the next lone
 * send skip its try (one, after one miss); the one after is direct again.
 */
static void full_socket(void)
{
    int sv[2];
    stream_pair(sv);
    drainer d = {sv[1], fill(sv[0])};
    iou_loop_stats before = loop_stats();
    iou_task *t = spawn_checked(drain_later, &d);
    settle(); /* it waits on its timer: the loop has nothing else to run */
    CHECK_EQ(iou_send(sv[0], "late", 4, 0), 4);
    iou_loop_stats after = loop_stats();
    CHECK_EQ(DELTA(sends_direct), 0);
    CHECK_EQ(iou_join(t), 0);
    char buf[8];
    CHECK_EQ(iou_recv(sv[1], buf, sizeof(buf), 0), 4);
    CHECK(memcmp(buf, "late", 4) == 0);

    before = loop_stats();
    CHECK_EQ(iou_send(sv[0], "a", 1, 0), 1); /* skipped: the kernel sends it */
    CHECK_EQ(iou_send(sv[0], "b", 1, 0), 1); /* direct again */
    after = loop_stats();
    CHECK_EQ(DELTA(sends_direct), expect_direct ? 1 : 0);
    CHECK_EQ(iou_recv(sv[1], buf, sizeof(buf), 0), 2);
    CHECK(memcmp(buf, "ab", 2) == 0);
    close(sv[0]);
    close(sv[1]);
}

/* The peer is gone: -EPIPE from the direct send, and no SIGPIPE kills us. */
static void closed_peer(void)
{
    int sv[2];
    stream_pair(sv);
    close(sv[1]);
    iou_loop_stats before = loop_stats();
    CHECK_EQ(iou_send(sv[0], "x", 1, 0), -EPIPE);
    CHECK_EQ(iou_send(-1, "x", 1, 0), -EBADF);
    iou_loop_stats after = loop_stats();
    CHECK_EQ(DELTA(sends_direct), expect_direct ? 2 : 0);
    close(sv[0]);
}

enum { TRANSFER = 8 << 20, CHUNK = 3000 };

typedef struct transfer {
    int fd;
    uint32_t seed;
} transfer;

/* Sends TRANSFER pattern bytes in CHUNK pieces. */
static int transfer_sender(void *arg)
{
    transfer *x = arg;
    static unsigned char chunk[CHUNK];
    for (size_t off = 0; off < TRANSFER; off += CHUNK) {
        size_t len = TRANSFER - off < CHUNK ? TRANSFER - off : CHUNK;
        pattern_fill(chunk, len, x->seed, off);
        check_send_all(x->fd, chunk, len);
    }
    return 0;
}

/*
 * A sender faster than its reader: sends go direct while there is room and
 * to the ring when the socket is full. Every byte arrives, in order.
 */
static void long_transfer(void)
{
    int sv[2];
    stream_pair(sv);
    transfer x = {sv[0], (uint32_t)rng_seed()};
    iou_loop_stats before = loop_stats();
    iou_task *t = spawn_checked(transfer_sender, &x);
    static unsigned char buf[65536];
    size_t got = 0;
    while (got < TRANSFER) {
        ssize_t n = iou_recv(sv[1], buf, sizeof(buf), 0);
        CHECK(n > 0);
        CHECK_EQ(pattern_mismatch(buf, (size_t)n, x.seed, got), (size_t)n);
        got += (size_t)n;
    }
    CHECK_EQ(iou_join(t), 0);
    iou_loop_stats after = loop_stats();
    printf("transfer: %lld sends, %lld direct\n", DELTA(submitted[op_kind("send")]),
           DELTA(sends_direct));
    if (expect_direct)
        CHECK(DELTA(sends_direct) > 0);
    close(sv[0]);
    close(sv[1]);
}

static int main_task(void *arg)
{
    (void)arg;
    /* The loop's first enter also carries its inbox's eventfd read (remote.c):
     * after this, the sends below are alone when they are alone. */
    CHECK_EQ(iou_nop(), 0);
    lone_send();
    batched_sends();
    full_socket();
    closed_peer();
    long_transfer();
    return 0;
}

/* IOU_TEST_DISABLE names direct_send (or all) for the loops of this process. */
static bool masked(void)
{
    const char *env = getenv("IOU_TEST_DISABLE");
    return env && (strstr(env, "direct_send") || strstr(env, "all"));
}

int main(void)
{
    watchdog(60);
    expect_direct = !on_epoll() && !masked();
    CHECK_EQ(run_or_skip(main_task, NULL), 0);
    printf("test_direct_send: ok on %s, direct sends %s\n", test_backend(),
           expect_direct ? "on" : "off");
    /* Again with the path turned off: the same results, no direct send. */
    CHECK_EQ(setenv("IOU_TEST_DISABLE", "direct_send", 1), 0);
    expect_direct = false;
    CHECK_EQ(run_or_skip(main_task, NULL), 0);
    printf("test_direct_send: ok with IOU_TEST_DISABLE=direct_send\n");
    return 0;
}
