/*
 * The network helpers: address parsing; listen / dial over IPv4, IPv6 and a
 * dual-stack listener; 100 MB each way with iou_send_all and checksums;
 * half-close; peer reset; UDP round trips; Unix sockets (file and abstract);
 * sendmsg / recvmsg with iovecs and fd passing; socket options; zero-copy
 * send (data intact, buffer returned only after the kernel's notification,
 * also under cancellation).
 * IPv6 parts are skipped (and say so) when ::1 is unavailable.
 */
#include "check.h"
#include "testutil.h"

#include "loop.h"
#include "task.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <iou.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static bool have_ipv6;

/* ---- helpers -------------------------------------------------------------------- */

static bool ipv6_loopback_works(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

typedef struct acceptor {
    int lfd, fd;
} acceptor;

static int accept_task(void *arg)
{
    acceptor *a = arg;
    a->fd = iou_accept(a->lfd, NULL, NULL);
    return a->fd >= 0 ? 0 : a->fd;
}

/* A connected TCP pair through a listener on listen_host, dialled at dial_host. */
static void tcp_pair_via(const char *listen_host, const char *dial_host, int *client, int *server)
{
    acceptor a = {.lfd = iou_listen_tcp(listen_host, 0, 16)};
    CHECK(a.lfd >= 0);
    int port = iou_local_port(a.lfd);
    CHECK(port > 0);
    iou_task *t = iou_spawn(accept_task, &a);
    *client = iou_dial_tcp(dial_host, (uint16_t)port);
    CHECK(*client >= 0);
    CHECK_EQ(iou_join(t), 0);
    *server = a.fd;
    CHECK_EQ(iou_close(a.lfd), 0);
}

static void tcp_pair(int *client, int *server)
{
    tcp_pair_via("127.0.0.1", "127.0.0.1", client, server);
}

static void ping_pong(int a, int b)
{
    char buf[16];
    CHECK_EQ(iou_send_all(a, "ping", 4), 4);
    CHECK_EQ(iou_recv(b, buf, sizeof(buf), 0), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_EQ(iou_send_all(b, "pong", 4), 4);
    CHECK_EQ(iou_recv(a, buf, sizeof(buf), 0), 4);
    CHECK(memcmp(buf, "pong", 4) == 0);
}

static void close_pair(int a, int b)
{
    CHECK_EQ(iou_close(a), 0);
    CHECK_EQ(iou_close(b), 0);
}

/* ---- addresses ------------------------------------------------------------------- */

static void addr_checks(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(iou_addr_parse("127.0.0.1", 80, &ss, &len), 0);
    CHECK_EQ(ss.ss_family, AF_INET);
    CHECK_EQ(len, sizeof(struct sockaddr_in));
    CHECK_EQ(ntohs(((struct sockaddr_in *)&ss)->sin_port), 80);
    CHECK_EQ(iou_addr_parse("localhost", 1, &ss, &len), 0);
    CHECK_EQ(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), INADDR_LOOPBACK);
    CHECK_EQ(iou_addr_parse("::1", 443, &ss, &len), 0);
    CHECK_EQ(ss.ss_family, AF_INET6);
    CHECK_EQ(len, sizeof(struct sockaddr_in6));
    CHECK(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr));
    CHECK_EQ(iou_addr_parse("fe80::1%1", 1, &ss, &len), 0);
    CHECK_EQ(((struct sockaddr_in6 *)&ss)->sin6_scope_id, 1);
    CHECK_EQ(iou_addr_parse("fe80::1%lo", 1, &ss, &len), 0);
    CHECK(((struct sockaddr_in6 *)&ss)->sin6_scope_id > 0);
    CHECK_EQ(iou_addr_parse("fe80::1%no-such-if", 1, &ss, &len), -EINVAL);
    CHECK_EQ(iou_addr_parse("example.com", 1, &ss, &len), -EINVAL);
    CHECK_EQ(iou_addr_parse("1.2.3.4.5", 1, &ss, &len), -EINVAL);
    CHECK_EQ(iou_addr_parse("", 1, &ss, &len), -EINVAL);
    CHECK_EQ(iou_addr_parse(NULL, 1, &ss, &len), -EINVAL);
    CHECK_EQ(iou_local_port(-1), -EBADF);
}

/* ---- listen and dial ------------------------------------------------------------- */

static void dial_case(const char *listen_host, const char *dial_host)
{
    int c, s;
    tcp_pair_via(listen_host, dial_host, &c, &s);
    int nodelay = 0;
    CHECK_EQ(iou_getsockopt_int(c, IPPROTO_TCP, TCP_NODELAY, &nodelay), 0);
    CHECK(nodelay != 0); /* dial sets it */
    CHECK(fcntl(c, F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(s, F_GETFD) & FD_CLOEXEC);
    ping_pong(c, s);
    close_pair(c, s);
}

static int dial_main(void *arg)
{
    (void)arg;
    dial_case("127.0.0.1", "127.0.0.1");
    dial_case("localhost", "localhost");
    dial_case(NULL, "127.0.0.1"); /* every address: IPv4 reaches it */
    if (have_ipv6) {
        dial_case("::1", "::1");
        dial_case("", "::1");     /* dual-stack: IPv6 too */
    }
    CHECK_EQ(iou_listen_tcp("example.com", 0, 1), -EINVAL);
    /* Refused: nothing left open behind it (the fd count is checked in main).
     * The port stays bound, not listening, so no other test can take it. */
    int bound = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(bound, (struct sockaddr *)&any, sizeof(any)), 0);
    int port = iou_local_port(bound);
    CHECK(port > 0);
    CHECK_EQ(iou_dial_tcp("127.0.0.1", (uint16_t)port), -ECONNREFUSED);
    close(bound);
    return 0;
}

/* ---- 100 MB each way, checksummed ------------------------------------------------ */

enum { BULK = 100 << 20, CHUNK = 1 << 20 };

typedef struct flow {
    int fd;
    uint64_t seed;
    uint64_t hash;  /* FNV-1a of every byte sent / received */
    uint64_t bytes;
} flow;

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void random_fill(unsigned char *p, size_t n, uint64_t *state)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t x = (uint64_t)rng_next(state) << 32 | rng_next(state);
        memcpy(p + i, &x, 8);
    }
}

/* Sends BULK random bytes in chunks of varying size, then shuts down writing. */
static int bulk_sender(void *arg)
{
    flow *f = arg;
    unsigned char *buf = malloc(CHUNK);
    CHECK(buf != NULL);
    f->hash = 0xcbf29ce484222325ull;
    while (f->bytes < BULK) {
        size_t n = CHUNK - rng_next(&f->seed) % 4096;
        if (n > BULK - f->bytes)
            n = BULK - f->bytes;
        random_fill(buf, n, &f->seed);
        size_t sent = 0;
        CHECK_EQ(iou_send_all_ex(f->fd, buf, n, 0, &sent), n);
        CHECK_EQ(sent, n);
        f->hash = fnv(f->hash, buf, n);
        f->bytes += n;
    }
    free(buf);
    CHECK_EQ(iou_shutdown(f->fd, SHUT_WR), 0);
    return 0;
}

static int bulk_receiver(void *arg)
{
    flow *f = arg;
    unsigned char *buf = malloc(CHUNK);
    CHECK(buf != NULL);
    f->hash = 0xcbf29ce484222325ull;
    ssize_t n;
    while ((n = iou_recv(f->fd, buf, CHUNK / 4, 0)) > 0) {
        f->hash = fnv(f->hash, buf, (size_t)n);
        f->bytes += (size_t)n;
    }
    free(buf);
    return (int)n;
}

static int bulk_main(void *arg)
{
    uint64_t seed = *(uint64_t *)arg;
    int c, s;
    tcp_pair(&c, &s);
    flow out[2] = {{.fd = c, .seed = seed}, {.fd = s, .seed = seed * 3 + 1}};
    flow in[2] = {{.fd = s}, {.fd = c}};
    iou_task *t[4];
    for (int i = 0; i < 2; i++) {
        t[2 * i] = iou_spawn(bulk_sender, &out[i]);
        t[2 * i + 1] = iou_spawn(bulk_receiver, &in[i]);
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(iou_join(t[i]), 0);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(in[i].bytes, BULK);
        CHECK_EQ(out[i].bytes, BULK);
        CHECK(in[i].hash == out[i].hash);
    }
    close_pair(c, s);
    return 0;
}

/* ---- half-close and reset -------------------------------------------------------- */

static int half_close_main(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    char buf[64];
    CHECK_EQ(iou_send_all(c, "request", 7), 7);
    CHECK_EQ(iou_shutdown(c, SHUT_WR), 0);
    CHECK_EQ(iou_recv(s, buf, sizeof(buf), MSG_WAITALL), 7); /* all of it, then end of stream */
    CHECK(memcmp(buf, "request", 7) == 0);
    CHECK_EQ(iou_recv(s, buf, sizeof(buf), 0), 0);
    /* The other direction still works. */
    CHECK_EQ(iou_send_all(s, "response", 8), 8);
    CHECK_EQ(iou_send(c, "x", 1, 0), -EPIPE); /* our side is shut */
    CHECK_EQ(iou_close(s), 0);
    CHECK_EQ(iou_recv(c, buf, sizeof(buf), MSG_WAITALL), 8);
    CHECK(memcmp(buf, "response", 8) == 0);
    CHECK_EQ(iou_recv(c, buf, sizeof(buf), 0), 0);
    CHECK_EQ(iou_close(c), 0);
    return 0;
}

typedef struct reader {
    int fd;
    ssize_t res;
} reader;

static int read_once(void *arg)
{
    reader *r = arg;
    char buf[64];
    r->res = iou_recv(r->fd, buf, sizeof(buf), 0);
    return 0;
}

/* A close with SO_LINGER {1, 0} sends RST: the peer's pending recv fails. */
static int reset_main(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    reader r = {.fd = c};
    iou_task *t = iou_spawn(read_once, &r);
    CHECK_EQ(iou_yield(), 0); /* the reader's recv is submitted (or about to be) */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    CHECK_EQ(iou_setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    CHECK_EQ(iou_close(s), 0);
    CHECK_EQ(iou_join(t), 0);
    CHECK_EQ(r.res, -ECONNRESET);
    CHECK_EQ(iou_send_all(c, "x", 1), -EPIPE);
    CHECK_EQ(iou_close(c), 0);
    return 0;
}

/* ---- UDP ------------------------------------------------------------------------- */

static void same_endpoint(const struct sockaddr_storage *got, socklen_t len, int fd)
{
    struct sockaddr_storage want;
    socklen_t wlen = sizeof(want);
    CHECK(getsockname(fd, (struct sockaddr *)&want, &wlen) == 0);
    CHECK_EQ(len, wlen);
    CHECK(memcmp(got, &want, len) == 0);
}

static void udp_case(const char *host)
{
    int a = iou_bind_udp(host, 0, NULL), b = iou_bind_udp(host, 0, NULL);
    CHECK(a >= 0 && b >= 0);
    struct sockaddr_storage to, from;
    socklen_t tolen, fromlen = sizeof(from);
    CHECK_EQ(iou_addr_parse(host, (uint16_t)iou_local_port(b), &to, &tolen), 0);
    CHECK_EQ(iou_sendto(a, "datagram", 8, 0, (struct sockaddr *)&to, tolen), 8);
    char buf[64];
    memset(&from, 0xAB, sizeof(from));
    CHECK_EQ(iou_recvfrom(b, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen), 8);
    CHECK(memcmp(buf, "datagram", 8) == 0);
    same_endpoint(&from, fromlen, a); /* the sender's address, filled in */
    /* Reply to whoever sent it; a truncated datagram reports its full size. */
    CHECK_EQ(iou_sendto(b, "reply!", 6, 0, (struct sockaddr *)&from, fromlen), 6);
    CHECK_EQ(iou_recvfrom(a, buf, 2, MSG_TRUNC, NULL, NULL), 6);
    CHECK(memcmp(buf, "re", 2) == 0);
    /* A connected UDP socket. */
    int d = iou_dial_udp(host, (uint16_t)iou_local_port(b));
    CHECK(d >= 0);
    CHECK_EQ(iou_send(d, "via dial", 8, 0), 8);
    fromlen = sizeof(from);
    CHECK_EQ(iou_recvfrom(b, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen), 8);
    same_endpoint(&from, fromlen, d);
    CHECK_EQ(iou_sendto(b, "back", 4, 0, (struct sockaddr *)&from, fromlen), 4);
    CHECK_EQ(iou_recv(d, buf, sizeof(buf), 0), 4);
    CHECK(memcmp(buf, "back", 4) == 0);
    CHECK_EQ(iou_close(d), 0);
    close_pair(a, b);
}

static int udp_main(void *arg)
{
    (void)arg;
    udp_case("127.0.0.1");
    if (have_ipv6)
        udp_case("::1");
    return 0;
}

/* ---- Unix sockets ------------------------------------------------------------------ */

static void unix_case(const char *path)
{
    acceptor a = {.lfd = iou_listen_unix(path, 4)};
    CHECK(a.lfd >= 0);
    iou_task *t = iou_spawn(accept_task, &a);
    int c = iou_dial_unix(path);
    CHECK(c >= 0);
    CHECK_EQ(iou_join(t), 0);
    ping_pong(c, a.fd);
    CHECK_EQ(iou_listen_unix(path, 4), -EADDRINUSE);
    close_pair(c, a.fd);
    CHECK_EQ(iou_close(a.lfd), 0);
}

static int unix_main(void *arg)
{
    (void)arg;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/iou-test-net-%d.sock", (int)getpid());
    unlink(path);
    unix_case(path);
    CHECK_EQ(iou_dial_unix(path), -ECONNREFUSED); /* the file stays; nobody listens */
    CHECK(unlink(path) == 0);
    CHECK_EQ(iou_dial_unix(path), -ENOENT);
    snprintf(path, sizeof(path), "@iou-test-net-%d", (int)getpid());
    unix_case(path);
    CHECK_EQ(iou_dial_unix(path), -ECONNREFUSED); /* the abstract name went with it */
    char longpath[200];
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    CHECK_EQ(iou_listen_unix(longpath, 1), -ENAMETOOLONG);
    CHECK_EQ(iou_dial_unix(""), -EINVAL);
    return 0;
}

/* ---- sendmsg / recvmsg: iovecs and a passed fd --------------------------------------- */

static int msg_main(void *arg)
{
    (void)arg;
    int sv[2], pipefd[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
    struct iovec out[3] = {{"abc", 3}, {"defgh", 5}, {"ij", 2}};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl = {0};
    struct msghdr m = {.msg_iov = out, .msg_iovlen = 3, .msg_control = ctl.buf,
                       .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pipefd[1], sizeof(int));
    CHECK_EQ(iou_sendmsg(sv[0], &m, 0), 10);

    char a[4], b[16];
    struct iovec in[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } rctl;
    struct msghdr r = {.msg_iov = in, .msg_iovlen = 2, .msg_control = rctl.buf,
                       .msg_controllen = sizeof(rctl.buf)};
    CHECK_EQ(iou_recvmsg(sv[1], &r, 0), 10);
    CHECK(memcmp(a, "abcd", 4) == 0);
    CHECK(memcmp(b, "efghij", 6) == 0);
    CHECK_EQ(r.msg_flags & MSG_CTRUNC, 0);
    struct cmsghdr *rc = CMSG_FIRSTHDR(&r);
    CHECK(rc != NULL && rc->cmsg_type == SCM_RIGHTS);
    int passed;
    memcpy(&passed, CMSG_DATA(rc), sizeof(int));
    /* The passed fd is the pipe's write end. */
    CHECK_EQ(iou_write(passed, "via", 3, -1), 3);
    char p[4];
    CHECK_EQ(iou_read(pipefd[0], p, sizeof(p), -1), 3);
    CHECK(memcmp(p, "via", 3) == 0);
    CHECK_EQ(iou_close(passed), 0);
    close_pair(pipefd[0], pipefd[1]);
    close_pair(sv[0], sv[1]);
    return 0;
}

/* ---- socket options and listener options ---------------------------------------------- */

static int sockopt_main(void *arg)
{
    (void)arg;
    int fd = iou_listen_tcp("127.0.0.1", 0, 4);
    CHECK(fd >= 0);
    int v = 0;
    CHECK_EQ(iou_getsockopt_int(fd, SOL_SOCKET, SO_REUSEADDR, &v), 0);
    CHECK(v != 0);
    CHECK_EQ(iou_getsockopt_int(fd, SOL_SOCKET, SO_TYPE, &v), 0);
    CHECK_EQ(v, SOCK_STREAM);
    CHECK_EQ(iou_setsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, 1 << 16), 0);
    CHECK_EQ(iou_getsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, &v), 0);
    CHECK(v >= 1 << 16); /* the kernel doubles it */
    CHECK_EQ(iou_setsockopt_int(-1, SOL_SOCKET, SO_RCVBUF, 1), -EBADF);
    CHECK_EQ(iou_getsockopt_int(fd, SOL_SOCKET, 12345, &v), -ENOPROTOOPT);
    /* Without SO_REUSEPORT a second listener on the port is refused ... */
    int port = iou_local_port(fd);
    CHECK_EQ(iou_listen_tcp("127.0.0.1", (uint16_t)port, 4), -EADDRINUSE);
    CHECK_EQ(iou_close(fd), 0);
    /* ... with it on both, both listen. */
    iou_listen_opts ro = {.reuseport = true};
    int l1 = iou_listen_tcp_ex("127.0.0.1", 0, 4, &ro);
    CHECK(l1 >= 0);
    int l2 = iou_listen_tcp_ex("127.0.0.1", (uint16_t)iou_local_port(l1), 4, &ro);
    CHECK(l2 >= 0);
    close_pair(l1, l2);
    if (have_ipv6) {
        /* v6only: the IPv4 side of the port is free for another socket. */
        iou_listen_opts v6 = {.v6only = true};
        int l6 = iou_listen_tcp_ex("::", 0, 4, &v6);
        CHECK(l6 >= 0);
        CHECK_EQ(iou_getsockopt_int(l6, IPPROTO_IPV6, IPV6_V6ONLY, &v), 0);
        CHECK(v != 0);
        int l4 = iou_listen_tcp("0.0.0.0", (uint16_t)iou_local_port(l6), 4);
        CHECK(l4 >= 0);
        close_pair(l6, l4);
    }
    return 0;
}

/* ---- zero-copy send ---------------------------------------------------------------- */

enum { ZC_ONE = 32 << 10, ZC_STREAM = 32 << 20, ZC_CHUNK = 128 << 10 };

static bool zc_supported(int fd)
{
    ssize_t r = iou_send_zc(fd, "", 0, 0);
    if (r == 0)
        return true;
    fprintf(stderr, "test_net: zero-copy send unsupported (%s): part skipped\n", iou_strerror((int)r));
    return false;
}

static void recv_exact(int fd, unsigned char *buf, size_t len)
{
    CHECK_EQ(iou_recv(fd, buf, len, MSG_WAITALL), len);
}

/*
 * One send, nothing else in flight: when iou_send_zc returns, the loop must
 * hold no operation any more (the notification was reaped), and scribbling
 * over the buffer must not change what the peer receives. The notification
 * comes once the peer has acknowledged the data (a delayed ACK: tens of ms),
 * so the send must fit the peer's initial window: 32 KiB does.
 */
static void zc_single(int c, int s)
{
    unsigned char *buf = malloc(ZC_ONE), *got = malloc(ZC_ONE);
    CHECK(buf && got);
    pattern_fill(buf, ZC_ONE, 7, 0);
    CHECK_EQ(iou_send_zc(c, buf, ZC_ONE, 0), ZC_ONE);
    CHECK_EQ(iou__loop()->ops_inflight, 0);
    memset(buf, 0xEE, ZC_ONE);
    recv_exact(s, got, ZC_ONE);
    CHECK_EQ(pattern_mismatch(got, ZC_ONE, 7, 0), ZC_ONE);
    free(buf);
    free(got);
}

typedef struct zc_flow {
    int fd;
    size_t bytes;
    int sends;
} zc_flow;

/* One buffer, refilled with the next part of the stream as soon as each
 * send returns: any early reuse would show up as corrupt data. */
static int zc_streamer(void *arg)
{
    zc_flow *f = arg;
    unsigned char *buf = malloc(ZC_CHUNK);
    CHECK(buf != NULL);
    while (f->bytes < ZC_STREAM) {
        pattern_fill(buf, ZC_CHUNK, 9, f->bytes);
        size_t off = 0;
        while (off < ZC_CHUNK) {
            ssize_t n = iou_send_zc(f->fd, buf + off, ZC_CHUNK - off, 0);
            CHECK(n > 0);
            off += (size_t)n;
            f->sends++;
        }
        f->bytes += ZC_CHUNK;
    }
    free(buf);
    return 0;
}

static int zc_checker(void *arg)
{
    zc_flow *f = arg;
    unsigned char *buf = malloc(ZC_CHUNK);
    CHECK(buf != NULL);
    while (f->bytes < ZC_STREAM) {
        ssize_t n = iou_recv(f->fd, buf, ZC_CHUNK, 0);
        CHECK(n > 0);
        CHECK_EQ(pattern_mismatch(buf, (size_t)n, 9, f->bytes), n);
        f->bytes += (size_t)n;
    }
    free(buf);
    return 0;
}

typedef struct zc_blocker {
    int fd;
    int calls;
} zc_blocker;

/* Sends until the peer's window and our send buffer are full and a send
 * blocks; returns what ended it. */
static int zc_until_error(void *arg)
{
    zc_blocker *b = arg;
    unsigned char *buf = calloc(1, ZC_ONE);
    CHECK(buf != NULL);
    ssize_t n;
    do {
        b->calls++;
        n = iou_send_zc(b->fd, buf, ZC_ONE, 0);
    } while (n > 0);
    free(buf);
    return (int)n;
}

static int drain(void *arg)
{
    int fd = *(int *)arg;
    unsigned char buf[16384];
    ssize_t n;
    while ((n = iou_recv(fd, buf, sizeof(buf), 0)) > 0)
        ;
    return (int)n;
}

/*
 * Cancelled while blocked on a full connection. A send that already went out
 * stays the kernel's until the peer acknowledges it, so the cancelled task
 * keeps waiting for the notification: only once the peer reads (the drain
 * task) can it end, and then no operation of it is left in flight.
 */
static void zc_cancelled(int c, int s)
{
    zc_blocker b = {.fd = c};
    iou_task *t = iou_spawn(zc_until_error, &b);
    for (int i = 0; i < 100000 && !(b.calls >= 2 && t->state == IOU__TASK_PARKED); i++)
        CHECK_EQ(iou_yield(), 0);
    CHECK_EQ(t->state, IOU__TASK_PARKED);
    CHECK_EQ(iou_cancel(t), 0);
    iou_task *d = iou_spawn(drain, &s);
    CHECK_EQ(iou_join(t), -ECANCELED);
    CHECK_EQ(iou_shutdown(c, SHUT_WR), 0);
    CHECK_EQ(iou_join(d), 0);
    CHECK_EQ(iou__loop()->ops_inflight, 0);
}

static int zc_main(void *arg)
{
    (void)arg;
    int c, s;
    tcp_pair(&c, &s);
    if (!zc_supported(c)) {
        close_pair(c, s);
        return 0;
    }
    zc_single(c, s);
    zc_flow out = {.fd = c}, in = {.fd = s};
    iou_task *t1 = iou_spawn(zc_streamer, &out), *t2 = iou_spawn(zc_checker, &in);
    CHECK_EQ(iou_join(t1), 0);
    CHECK_EQ(iou_join(t2), 0);
    CHECK_EQ(in.bytes, ZC_STREAM);
    zc_cancelled(c, s);
    close_pair(c, s);
    /* Outside a task it is a plain send (checked in main). */
    return 0;
}

static void zc_outside_task(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK_EQ(iou_send_zc(sv[0], "abc", 3, 0), 3);
    char buf[4];
    CHECK_EQ(iou_recv(sv[1], buf, sizeof(buf), 0), 3);
    CHECK_EQ(iou_send_all(sv[0], "defg", 4), 4);
    CHECK_EQ(iou_shutdown(sv[0], SHUT_WR), 0);
    CHECK_EQ(iou_recv(sv[1], buf, sizeof(buf), MSG_WAITALL), 4);
    CHECK_EQ(iou_recv(sv[1], buf, sizeof(buf), 0), 0);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    watchdog(100);
    signal(SIGPIPE, SIG_DFL); /* every send must use MSG_NOSIGNAL */
    uint64_t seed = rng_seed();
    int fds = count_fds();
    have_ipv6 = ipv6_loopback_works();
    if (!have_ipv6)
        fprintf(stderr, "test_net: ::1 unavailable: IPv6 parts skipped\n");
    addr_checks();
    zc_outside_task();
    CHECK_EQ(run_or_skip(dial_main, NULL), 0);
    CHECK_EQ(run_or_skip(half_close_main, NULL), 0);
    CHECK_EQ(run_or_skip(reset_main, NULL), 0);
    CHECK_EQ(run_or_skip(udp_main, NULL), 0);
    CHECK_EQ(run_or_skip(unix_main, NULL), 0);
    CHECK_EQ(run_or_skip(msg_main, NULL), 0);
    CHECK_EQ(run_or_skip(sockopt_main, NULL), 0);
    CHECK_EQ(run_or_skip(zc_main, NULL), 0);
    CHECK_EQ(run_or_skip(bulk_main, &seed), 0);
    CHECK_EQ(count_fds(), fds);
    puts("test_net: ok");
    return 0;
}
