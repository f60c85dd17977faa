/*
 * Buffered streams: read-until over a line split into 1-byte packets (one-
 * and two-byte delimiters), a line longer than the maximum (an error, no
 * overflow, the bytes still readable), read-exact across packets, the end of
 * stream in the middle of a read, 100 MB through write and writev with every
 * byte compared, deadlines and cancellation of reads (nothing lost), close
 * with a multishot armed (no leak, every buffer home), zero-copy peek, one
 * reader at a time, blocking use outside tasks, and the resident memory of
 * 10,000 idle streams.
 */
#include "check.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <iou.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------- */

static int listen_any(struct sockaddr_in *a, int backlog)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0);
    *a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(*a);
    CHECK(bind(lfd, (struct sockaddr *)a, sizeof(*a)) == 0);
    CHECK(listen(lfd, backlog) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)a, &len) == 0);
    return lfd;
}

/* A connected TCP pair over 127.0.0.1; the client side sends each write as
 * its own packet (TCP_NODELAY). */
static void tcp_pair(int *client, int *server)
{
    struct sockaddr_in a;
    int lfd = listen_any(&a, 4);
    *client = iou_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(*client >= 0);
    CHECK_EQ(iou_connect(*client, (struct sockaddr *)&a, sizeof(a)), 0);
    *server = iou_accept(lfd, NULL, NULL);
    CHECK(*server >= 0);
    CHECK_EQ(iou_close(lfd), 0);
    int one = 1;
    CHECK(setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0);
}

/* A peer that sends text one byte per packet, letting the reader run between. */
typedef struct trickle {
    int fd;
    const char *text;
} trickle;

static int trickle_sender(void *arg)
{
    trickle *t = arg;
    for (const char *p = t->text; *p; p++) {
        check_send_all(t->fd, p, 1);
        for (int i = 0; i < 3; i++)
            iou_yield();
    }
    return 0;
}

static iou_bufring_stats ring_stats(void)
{
    iou_bufring_stats st;
    CHECK_EQ(iou_bufring_get_stats(&st), 0);
    return st;
}

/* Yields (bounded) until every ring buffer is home: a stream closed while
 * armed returns its buffers when its last completion arrives. */
static void expect_all_home(void)
{
    for (int i = 0; i < 1000 && ring_stats().available != ring_stats().count; i++)
        iou_yield();
    CHECK_EQ(ring_stats().available, ring_stats().count);
}

#define LINE(s) s, sizeof(s) - 1

/* The tests that take a ring size run twice: with the default ring, and
 * with a tiny one (2 buffers of 16 bytes, cap 1), where lines span buffers,
 * the ring runs dry, and streams keep leaving it for plain receives into the
 * reader's buffer. */
static const iou_bufring_opts tiny_ring = {.count = 2, .size = 16, .stream_cap = 1};

static void configure(void *arg)
{
    if (arg)
        CHECK_EQ(iou_bufring_config(arg), 0);
}

/* ---- read until --------------------------------------------------------------------- */

static void expect_line(iou_stream *s, const char *delim, const char *want)
{
    char buf[128];
    size_t n = strlen(want);
    CHECK_EQ(iou_stream_read_until(s, buf, sizeof(buf), delim, strlen(delim)), n);
    CHECK(memcmp(buf, want, n) == 0);
}

static int split_line_main(void *arg)
{
    configure(arg);
    int c, fd;
    tcp_pair(&c, &fd);
    iou_stream *s = iou_stream_open(fd);
    CHECK(s != NULL);
    trickle tr = {c, "hello, line split into one-byte packets\nGET / HTTP/1.1\r\na\r\rb\r\n"};
    iou_task *t = iou_spawn(trickle_sender, &tr);
    expect_line(s, "\n", "hello, line split into one-byte packets\n");
    expect_line(s, "\r\n", "GET / HTTP/1.1\r\n");
    expect_line(s, "\r\n", "a\r\rb\r\n");
    CHECK_EQ(iou_join(t), 0);
    /* Several lines in one packet: each read takes exactly one. */
    check_send_all(c, LINE("one\ntwo\nthree\nrest"));
    expect_line(s, "\n", "one\n");
    expect_line(s, "\n", "two\n");
    expect_line(s, "\n", "three\n");
    CHECK(shutdown(c, SHUT_WR) == 0);
    char buf[16];
    CHECK_EQ(iou_stream_read_until(s, buf, sizeof(buf), "\n", 1), -EPIPE); /* ends mid-line */
    CHECK_EQ(iou_stream_read(s, buf, sizeof(buf)), 4);                    /* which stays readable */
    CHECK(memcmp(buf, "rest", 4) == 0);
    CHECK_EQ(iou_stream_read_until(s, buf, sizeof(buf), "\n", 1), 0); /* clean end */
    CHECK_EQ(iou_stream_read_until(s, buf, 0, "\n", 1), -EINVAL);
    CHECK_EQ(iou_stream_read_until(s, buf, sizeof(buf), "", 0), -EINVAL);
    CHECK_EQ(iou_stream_close(s), 0);
    CHECK_EQ(iou_close(c), 0);
    expect_all_home();
    return 0;
}

/* A line longer than the maximum: -EMSGSIZE, nothing written past the
 * maximum, and every byte still readable. Delivered in pieces, so the long
 * line spans several buffers and packets. */
static int long_line_main(void *arg)
{
    configure(arg);
    int c, fd;
    tcp_pair(&c, &fd);
    iou_stream *s = iou_stream_open(fd);
    trickle tr = {c, "0123456789abcdefghij\nshort\n"};
    iou_task *t = iou_spawn(trickle_sender, &tr);
    char buf[64];
    memset(buf, '#', sizeof(buf));
    CHECK_EQ(iou_stream_read_until(s, buf, 8, "\n", 1), -EMSGSIZE);
    CHECK(memcmp(buf, "01234567", 8) == 0);
    for (size_t i = 8; i < sizeof(buf); i++)
        CHECK_EQ(buf[i], '#'); /* no overflow */
    CHECK(iou_stream_buffered(s) >= 8);
    CHECK_EQ(iou_stream_read_until(s, buf, 8, "\n", 1), -EMSGSIZE); /* still too long */
    CHECK_EQ(iou_join(t), 0);
    expect_line(s, "\n", "0123456789abcdefghij\n"); /* nothing lost */
    expect_line(s, "\n", "short\n");
    /* A delimiter ending exactly at the maximum fits. */
    check_send_all(c, LINE("1234567\n"));
    CHECK_EQ(iou_stream_read_until(s, buf, 8, "\n", 1), 8);
    CHECK_EQ(iou_stream_close(s), 0);
    CHECK_EQ(iou_close(c), 0);
    return 0;
}

/* ---- read exactly n, the end in the middle ---------------------------------------- */

enum { EXACT = 10000, PIECE = 7 };

typedef struct pieces {
    int fd;
    size_t total;
} pieces;

static int piece_sender(void *arg)
{
    pieces *p = arg;
    unsigned char buf[PIECE];
    for (size_t off = 0; off < p->total; off += PIECE) {
        size_t n = p->total - off < PIECE ? p->total - off : PIECE;
        pattern_fill(buf, n, 7, off);
        check_send_all(p->fd, buf, n);
        if (off % (50 * PIECE) == 0)
            iou_yield();
    }
    return 0;
}

static int exact_main(void *arg)
{
    configure(arg);
    int c, fd;
    tcp_pair(&c, &fd);
    iou_stream *s = iou_stream_open(fd);
    pieces p = {c, EXACT};
    iou_task *t = iou_spawn(piece_sender, &p);
    static unsigned char buf[EXACT];
    CHECK_EQ(iou_stream_read_exact(s, buf, 3), 3);
    CHECK_EQ(iou_stream_read_exact(s, buf + 3, EXACT - 3), EXACT - 3);
    CHECK_EQ(pattern_mismatch(buf, EXACT, 7, 0), EXACT);
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(iou_stream_read_exact(s, buf, 0), 0);
    /* 5 bytes, then the end: read_exact(10) fails, the 5 stay readable. */
    check_send_all(c, "12345", 5);
    CHECK(shutdown(c, SHUT_WR) == 0);
    CHECK_EQ(iou_stream_read_exact(s, buf, 10), -EPIPE);
    CHECK_EQ(iou_stream_buffered(s), 5);
    CHECK_EQ(iou_stream_read_exact(s, buf, 10), -EPIPE); /* again: nothing consumed */
    CHECK_EQ(iou_stream_read(s, buf, sizeof(buf)), 5);
    CHECK(memcmp(buf, "12345", 5) == 0);
    CHECK_EQ(iou_stream_read_exact(s, buf, 10), 0); /* the end, before any byte */
    CHECK_EQ(iou_stream_read(s, buf, sizeof(buf)), 0);
    CHECK_EQ(iou_stream_close(s), 0);
    CHECK_EQ(iou_close(c), 0);
    return 0;
}

/* ---- 100 MB through write and writev ---------------------------------------------- */

enum { BIG = 100 * 1024 * 1024, READ_CHUNK = 64 * 1024, IOVS = 50 };

typedef struct bulk {
    iou_stream *s;
    const unsigned char *data;
    bool vectored;
} bulk;

/* writev in calls of IOVS pieces of random sizes (some empty). */
static int bulk_writev(bulk *b)
{
    uint64_t rng = 99;
    for (size_t off = 0; off < BIG;) {
        struct iovec iov[IOVS];
        size_t call = 0;
        for (int i = 0; i < IOVS; i++) {
            size_t n = rng_next(&rng) % (200 * 1024);
            n = n > BIG - off - call ? BIG - off - call : n;
            iov[i] = (struct iovec){(void *)(b->data + off + call), n};
            call += n;
        }
        CHECK_EQ(iou_stream_writev(b->s, iov, IOVS), call);
        off += call;
    }
    return 0;
}

static int bulk_writer(void *arg)
{
    bulk *b = arg;
    if (b->vectored)
        bulk_writev(b);
    else
        CHECK_EQ(iou_stream_write(b->s, b->data, BIG), BIG);
    CHECK(shutdown(iou_stream_fd(b->s), SHUT_WR) == 0);
    return 0;
}

static void bulk_once(const unsigned char *data, bool vectored)
{
    int c, fd;
    tcp_pair(&c, &fd);
    iou_stream *w = iou_stream_open(c), *r = iou_stream_open(fd);
    bulk b = {w, data, vectored};
    iou_task *t = iou_spawn(bulk_writer, &b);
    unsigned char *buf = malloc(READ_CHUNK);
    size_t got = 0;
    ssize_t n;
    while ((n = iou_stream_read(r, buf, READ_CHUNK)) > 0) {
        CHECK(got + (size_t)n <= BIG);
        CHECK(memcmp(buf, data + got, (size_t)n) == 0);
        got += (size_t)n;
    }
    CHECK_EQ(n, 0);
    CHECK_EQ(got, BIG);
    CHECK_EQ(iou_join(t), 0);
    free(buf);
    CHECK_EQ(iou_stream_close(w), 0);
    CHECK_EQ(iou_stream_close(r), 0);
}

static int bulk_main(void *arg)
{
    configure(arg);
    unsigned char *data = malloc(BIG);
    CHECK(data != NULL);
    pattern_fill(data, BIG, 3, 0);
    uint64_t t0 = mono_ns();
    bulk_once(data, false);
    uint64_t t1 = mono_ns();
    bulk_once(data, true);
    uint64_t t2 = mono_ns();
    fprintf(stderr, "bulk: 100 MB write %.0f MB/s, writev %.0f MB/s\n",
            100.0 * 1e9 / (double)(t1 - t0), 100.0 * 1e9 / (double)(t2 - t1));
    free(data);
    expect_all_home();
    return 0;
}

/* ---- deadlines and cancellation ------------------------------------------------------ */

typedef struct reader {
    iou_stream *s;
    char buf[128];
    ssize_t res;
} reader;

static int exact_reader(void *arg)
{
    reader *r = arg;
    r->res = iou_stream_read_exact(r->s, r->buf, 100);
    return 0;
}

static ssize_t line_within(iou_stream *s, char *buf, size_t max, uint64_t ms)
{
    uint64_t prev = iou_deadline_push(iou_now() + MS(ms));
    ssize_t n = iou_stream_read_until(s, buf, max, "\n", 1);
    iou_deadline_pop(prev);
    return n;
}

static int interrupt_main(void *arg)
{
    configure(arg);
    int c, fd;
    tcp_pair(&c, &fd);
    iou_stream *s = iou_stream_open(fd);
    char buf[128];
    CHECK_EQ(line_within(s, buf, sizeof(buf), 20), -ETIMEDOUT); /* idle */
    check_send_all(c, "abc", 3);
    CHECK_EQ(line_within(s, buf, sizeof(buf), 20), -ETIMEDOUT); /* a partial line */
    CHECK_EQ(iou_stream_buffered(s), 3);                         /* kept */
    check_send_all(c, "def\n", 4);
    CHECK_EQ(line_within(s, buf, sizeof(buf), 1000), 7);
    CHECK(memcmp(buf, "abcdef\n", 7) == 0);

    /* Cancelled with half of read_exact(100) received: the half stays. */
    reader r = {.s = s};
    iou_task *t = iou_spawn(exact_reader, &r);
    unsigned char data[100];
    pattern_fill(data, sizeof(data), 5, 0);
    check_send_all(c, data, 50);
    for (int i = 0; i < 10; i++)
        iou_yield(); /* the reader takes (some of) them */
    CHECK_EQ(iou_stream_read(s, buf, 1), -EBUSY); /* one reader at a time */
    CHECK_EQ(iou_stream_close(s), -EBUSY);
    CHECK_EQ(iou_stream_free(s), -EBUSY);
    CHECK_EQ(iou_cancel(t), 0);
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(r.res, -ECANCELED);
    CHECK(iou_stream_buffered(s) > 0); /* what it took is back (the rest may be in the socket) */
    check_send_all(c, data + 50, 50);
    CHECK_EQ(iou_stream_read_exact(s, buf, 100), 100);
    CHECK(memcmp(buf, data, 100) == 0);
    CHECK_EQ(iou_stream_close(s), 0);
    CHECK_EQ(iou_close(c), 0);
    expect_all_home();
    return 0;
}

/* ---- close with a receive in the kernel ---------------------------------------------- */

static int close_armed_main(void *arg)
{
    bool return_at_once = arg != NULL;
    int c, fd;
    tcp_pair(&c, &fd);
    iou_stream *s = iou_stream_open(fd);
    char buf[16];
    CHECK_EQ(line_within(s, buf, sizeof(buf), 5), -ETIMEDOUT); /* leaves the multishot armed */
    CHECK_EQ(iou_stream_close(s), 0);
    CHECK_EQ(iou_close(c), 0);
    /* Buffers queued in a stream go home when it closes. */
    tcp_pair(&c, &fd);
    s = iou_stream_open(fd);
    for (int i = 0; i < 3; i++) {
        check_send_all(c, "0123456789", 10);
        iou_yield();
    }
    CHECK_EQ(iou_stream_read(s, buf, 1), 1);
    for (int i = 0; i < 10 && iou_stream_buffered(s) < 29; i++)
        iou_yield();
    CHECK_EQ(iou_stream_close(s), 0);
    CHECK_EQ(iou_close(c), 0);
    if (return_at_once)
        return 0; /* the loop's shutdown still awaits the cancelled receive */
    expect_all_home();
    return 0;
}

/* Handlers blocked in reads when main returns: the loop's shutdown cancels
 * them, they close their streams, and the ring is freed (ASan: no leak). */
typedef struct blocked {
    int c, fd;
} blocked;

static int blocked_handler(void *arg)
{
    blocked *b = arg;
    iou_stream *s = iou_stream_open(b->fd);
    char line[64];
    CHECK_EQ(iou_stream_read_until(s, line, sizeof(line), "\n", 1), -ECANCELED);
    CHECK_EQ(iou_stream_close(s), 0);
    CHECK_EQ(iou_close(b->c), 0);
    return 0;
}

static int shutdown_main(void *arg)
{
    (void)arg;
    static blocked b[3];
    for (int i = 0; i < 3; i++) {
        tcp_pair(&b[i].c, &b[i].fd);
        iou_detach(iou_spawn(blocked_handler, &b[i]));
    }
    check_send_all(b[0].c, "partial", 7); /* one of them holds a buffer */
    for (int i = 0; i < 5; i++)
        iou_yield();
    return 0;
}

/* ---- zero copy ------------------------------------------------------------------------ */

static int peek_main(void *arg)
{
    configure(arg);
    int c, fd;
    tcp_pair(&c, &fd);
    iou_stream *s = iou_stream_open(fd);
    check_send_all(c, "hello world", 11);
    const void *p;
    ssize_t n = iou_stream_peek(s, &p);
    CHECK(n >= 1 && n <= 11);
    CHECK(memcmp(p, "hello world", (size_t)n) == 0);
    for (int i = 0; i < 10 && iou_stream_buffered(s) < 11; i++)
        iou_yield();
    CHECK_EQ(iou_stream_consume(s, 6), 0);
    CHECK_EQ(iou_stream_consume(s, 100), -EINVAL);
    char buf[16];
    CHECK_EQ(iou_stream_read(s, buf, sizeof(buf)), 5);
    CHECK(memcmp(buf, "world", 5) == 0);
    CHECK(shutdown(c, SHUT_WR) == 0);
    CHECK_EQ(iou_stream_peek(s, &p), 0);
    CHECK_EQ(iou_stream_free(s), 0); /* the socket stays open */
    CHECK_EQ(iou_close(fd), 0);
    CHECK_EQ(iou_close(c), 0);
    return 0;
}

/* ---- write errors and deadlines ------------------------------------------------------ */

static int write_error_main(void *arg)
{
    (void)arg;
    int c, fd;
    tcp_pair(&c, &fd);
    iou_stream *w = iou_stream_open(c);
    /* The peer does not read: the write blocks once the socket buffers are
     * full, and its deadline ends it with an error (not a short count). */
    size_t big = 64u << 20;
    unsigned char *data = calloc(1, big);
    uint64_t prev = iou_deadline_push(iou_now() + MS(50));
    CHECK_EQ(iou_stream_write(w, data, big), -ETIMEDOUT);
    struct iovec iov[2] = {{data, big / 2}, {data, big / 2}};
    CHECK_EQ(iou_stream_writev(w, iov, 2), -ETIMEDOUT);
    iou_deadline_pop(prev);
    /* The peer closes with unread data: a reset, an error, never SIGPIPE. */
    CHECK_EQ(iou_close(fd), 0);
    ssize_t r = 0;
    for (int i = 0; i < 100 && r >= 0; i++)
        r = iou_stream_write(w, data, 4096);
    CHECK(r == -EPIPE || r == -ECONNRESET);
    CHECK_EQ(iou_stream_writev(w, NULL, -1), -EINVAL);
    free(data);
    CHECK_EQ(iou_stream_close(w), 0);
    return 0;
}

/* ---- outside tasks: blocking system calls ----------------------------------------- */

static void blocking_streams(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    iou_stream *a = iou_stream_open(sv[0]), *b = iou_stream_open(sv[1]);
    CHECK(a && b);
    CHECK_EQ(iou_stream_write(a, "line one\nline", 13), 13);
    struct iovec iov[2] = {{" two\n", 5}, {"xyz", 3}};
    CHECK_EQ(iou_stream_writev(a, iov, 2), 8);
    CHECK_EQ(iou_stream_close(a), 0);
    char buf[32];
    CHECK_EQ(iou_stream_read_until(b, buf, sizeof(buf), "\n", 1), 9);
    CHECK_EQ(iou_stream_read_until(b, buf, sizeof(buf), "\n", 1), 9);
    CHECK(memcmp(buf, "line two\n", 9) == 0);
    CHECK_EQ(iou_stream_read_exact(b, buf, 5), -EPIPE);
    CHECK_EQ(iou_stream_read(b, buf, sizeof(buf)), 3);
    CHECK_EQ(iou_stream_read(b, buf, sizeof(buf)), 0);
    CHECK_EQ(iou_stream_close(b), 0);
    CHECK(iou_stream_open(-1) == NULL);
    CHECK_EQ(iou_stream_close(NULL), 0);
    /* A non-blocking socket outside tasks: -EAGAIN, as recv(2) says. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    a = iou_stream_open(sv[0]);
    CHECK_EQ(iou_stream_read(a, buf, sizeof(buf)), -EAGAIN);
    CHECK_EQ(iou_stream_read_until(a, buf, sizeof(buf), "\n", 1), -EAGAIN);
    CHECK(write(sv[1], "ab", 2) == 2);
    CHECK_EQ(iou_stream_read_until(a, buf, sizeof(buf), "\n", 1), -EAGAIN);
    CHECK_EQ(iou_stream_buffered(a), 2); /* kept */
    CHECK_EQ(iou_stream_close(a), 0);
    close(sv[1]);
}

/* ---- memory of idle streams ----------------------------------------------------------- */

enum { IDLE = 10000, IDLE_WARM = 1000 };

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* A server connection: waits for a line on a stream (idle: no data comes). */
static int idle_handler(void *arg)
{
    iou_stream *s = iou_stream_open((int)(intptr_t)arg);
    CHECK(s != NULL);
    char line[512];
    ssize_t n = iou_stream_read_until(s, line, sizeof(line), "\n", 1);
    CHECK_EQ(n, 0);
    CHECK_EQ(iou_stream_close(s), 0);
    return 0;
}

typedef struct idle_server {
    int lfd;
    int done_w; /* closing it makes the client process exit: every handler reads the end */
    iou_task **t;
} idle_server;

static void accept_handlers(idle_server *sv, int from, int to)
{
    for (int i = from; i < to; i++) {
        int fd = iou_accept(sv->lfd, NULL, NULL);
        CHECK(fd >= 0);
        CHECK((sv->t[i] = iou_spawn(idle_handler, (void *)(intptr_t)fd)) != NULL);
    }
    for (int i = 0; i < 3; i++)
        iou_yield(); /* every handler parks in its read */
}

static int idle_main(void *arg)
{
    idle_server *sv = arg;
    accept_handlers(sv, 0, IDLE_WARM);
    long before = rss_kib();
    accept_handlers(sv, IDLE_WARM, IDLE);
    long after = rss_kib();
    double per = (double)(after - before) * 1024.0 / (IDLE - IDLE_WARM);
    fprintf(stderr, "idle streams: %.0f bytes resident per connection (server side, %d streams)\n",
            per, IDLE);
    iou_bufring_stats st = ring_stats();
    CHECK_EQ(st.available, st.count); /* idle streams hold no buffer */
#if !defined(__SANITIZE_ADDRESS__)
    CHECK(per <= 12 * 1024);
#endif
    close(sv->done_w);
    CHECK_EQ(iou_gather(sv->t, IDLE, NULL), 0);
    expect_all_home();
    return 0;
}

/* The clients live in a child process, so that only the server side counts
 * (and each process needs 10,000 descriptors, not 20,000). */
static void idle_clients(struct sockaddr_in a, int ready_w, int done_r)
{
    int *fds = malloc(IDLE * sizeof(int));
    for (int i = 0; i < IDLE; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0)
            _exit(2);
    }
    char x = 1;
    if (write(ready_w, &x, 1) != 1)
        _exit(3);
    if (read(done_r, &x, 1) < 0) /* the parent closes it when done */
        _exit(4);
    _exit(0);
}

static int idle_streams(void)
{
    if (raise_fd_limit() < IDLE + 100) {
        fprintf(stderr, "idle streams: skipped, RLIMIT_NOFILE below %d\n", IDLE + 100);
        return 0;
    }
    struct sockaddr_in a;
    int lfd = listen_any(&a, 4096);
    int ready[2], done[2];
    CHECK(pipe(ready) == 0 && pipe(done) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(done[1]);
        idle_clients(a, ready[1], done[0]);
    }
    close(ready[1]);
    close(done[0]);
    idle_server sv = {.lfd = lfd, .done_w = done[1], .t = calloc(IDLE, sizeof(iou_task *))};
    CHECK_EQ(run_or_skip(idle_main, &sv), 0);
    char x;
    CHECK_EQ(read(ready[0], &x, 1), 1);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]);
    close(lfd);
    free(sv.t);
    return 0;
}

/* The peer sent and closed before the stream's first read: every byte, then
 * the end of stream (a multishot armed with POLL_FIRST on such a socket
 * never reported the end: the read hung). */
static int closed_first_main(void *arg)
{
    (void)arg;
    static const size_t sizes[] = {1, 100, 16384, 16385, 70000};
    static unsigned char buf[70000];
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        pattern_fill(buf, sizes[i], 3, 0);
        CHECK_EQ(send(sv[1], buf, sizes[i], 0), (long long)sizes[i]);
        CHECK(close(sv[1]) == 0);
        iou_stream *s = iou_stream_open(sv[0]);
        CHECK(s != NULL);
        memset(buf, 0, sizeof(buf));
        size_t got = 0;
        ssize_t n;
        while ((n = iou_stream_read(s, buf + got, sizeof(buf) - got)) > 0)
            got += (size_t)n;
        CHECK_EQ(n, 0);
        CHECK_EQ(got, sizes[i]);
        CHECK_EQ(pattern_mismatch(buf, got, 3, 0), got);
        CHECK_EQ(iou_stream_close(s), 0);
    }
    return 0;
}

int main(void)
{
    watchdog(100);
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
    int fds = count_fds();
    blocking_streams();
    for (int tiny = 0; tiny < 2; tiny++) {
        void *ring = tiny ? (void *)&tiny_ring : NULL;
        CHECK_EQ(run_or_skip(split_line_main, ring), 0);
        CHECK_EQ(run_or_skip(long_line_main, ring), 0);
        CHECK_EQ(run_or_skip(exact_main, ring), 0);
        CHECK_EQ(run_or_skip(interrupt_main, ring), 0);
        CHECK_EQ(run_or_skip(peek_main, ring), 0);
    }
    CHECK_EQ(run_or_skip(closed_first_main, NULL), 0);
    CHECK_EQ(run_or_skip(close_armed_main, NULL), 0);
    CHECK_EQ(run_or_skip(close_armed_main, "at once"), 0);
    CHECK_EQ(run_or_skip(shutdown_main, NULL), 0);
    CHECK_EQ(run_or_skip(write_error_main, NULL), 0);
    CHECK_EQ(run_or_skip(bulk_main, NULL), 0);
    CHECK_EQ(count_fds(), fds);
    CHECK_EQ(idle_streams(), 0);
    puts("test_stream: ok");
    return 0;
}
