/*
 * TCP over 127.0.0.1 between tasks of one loop: accept, connect, send, recv;
 * a hundred concurrent echo sessions with every byte checked; end of stream;
 * refused connections; a closed peer gives an error, never SIGPIPE.
 */
#include "check.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <iou.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    CLIENTS = 100,
    STREAM = 64 * 1024, /* bytes each client sends and expects back */
    MAX_CHUNK = 4096,
};

/* ---- helpers ------------------------------------------------------------------- */

static struct sockaddr_in loopback(uint16_t port)
{
    return (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
}

static uint16_t local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    return ntohs(a.sin_port);
}

/* A listening socket on 127.0.0.1 and an ephemeral port. */
static int listen_any(uint16_t *port)
{
    int fd = iou_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    int one = 1;
    CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
    struct sockaddr_in a = loopback(0);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(fd, 2 * CLIENTS) == 0);
    *port = local_port(fd);
    return fd;
}

static int connect_to(uint16_t port)
{
    int fd = iou_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = loopback(port);
    CHECK_EQ(iou_connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Sends all of len, looping over short sends. Returns 0 or the error. */
static ssize_t send_all(int fd, const unsigned char *buf, size_t len)
{
    while (len) {
        ssize_t n = iou_send(fd, buf, len, 0);
        if (n < 0)
            return n;
        CHECK(n > 0);
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- echo: a handler task per connection ------------------------------------------ */

static int echo_handler(void *arg)
{
    int fd = (int)(intptr_t)arg;
    unsigned char buf[8192];
    int total = 0;
    ssize_t n;
    while ((n = iou_recv(fd, buf, sizeof(buf), 0)) > 0) {
        CHECK_EQ(send_all(fd, buf, (size_t)n), 0);
        total += (int)n;
    }
    CHECK_EQ(n, 0); /* the client shut down its side: end of stream */
    CHECK_EQ(iou_close(fd), 0);
    return total;
}

typedef struct server {
    int lfd, sessions;
} server;

/* Accepts `sessions` connections, echoes each in its own task, sums the bytes. */
static int echo_server(void *arg)
{
    server *s = arg;
    iou_task **h = calloc((size_t)s->sessions, sizeof(*h));
    CHECK(h != NULL);
    for (int i = 0; i < s->sessions; i++) {
        int fd = iou_accept(s->lfd, NULL, NULL);
        CHECK(fd >= 0);
        CHECK((h[i] = iou_spawn(echo_handler, (void *)(intptr_t)fd)) != NULL);
    }
    int total = 0;
    for (int i = 0; i < s->sessions; i++)
        total += iou_join(h[i]);
    free(h);
    CHECK_EQ(iou_close(s->lfd), 0);
    return total;
}

typedef struct session {
    int id, fd;
} session;

/* Reads the echo of the whole stream, checks it, then expects end of stream. */
static int echo_reader(void *arg)
{
    session *s = arg;
    unsigned char buf[MAX_CHUNK];
    size_t got = 0;
    while (got < STREAM) {
        ssize_t n = iou_recv(s->fd, buf, sizeof(buf), 0);
        CHECK(n > 0);
        CHECK(got + (size_t)n <= STREAM);
        CHECK_EQ(pattern_mismatch(buf, (size_t)n, (uint32_t)s->id, got), n);
        got += (size_t)n;
    }
    CHECK_EQ(iou_recv(s->fd, buf, sizeof(buf), 0), 0);
    return 1;
}

typedef struct client_args {
    int id;
    uint16_t port;
} client_args;

/* Sends the stream in uneven chunks while a sibling task reads the echo. */
static int stream_client(void *arg)
{
    client_args *c = arg;
    session s = {.id = c->id, .fd = connect_to(c->port)};
    iou_task *reader = iou_spawn(echo_reader, &s);
    unsigned char buf[MAX_CHUNK];
    uint64_t rng = (uint64_t)c->id + 1;
    for (size_t sent = 0; sent < STREAM;) {
        size_t n = 1 + rng_next(&rng) % MAX_CHUNK;
        if (n > STREAM - sent)
            n = STREAM - sent;
        pattern_fill(buf, n, (uint32_t)s.id, sent);
        CHECK_EQ(send_all(s.fd, buf, n), 0);
        sent += n;
    }
    CHECK(shutdown(s.fd, SHUT_WR) == 0);
    int ok = iou_join(reader);
    CHECK_EQ(iou_close(s.fd), 0);
    return ok;
}

static int echo_main(void *arg)
{
    (void)arg;
    uint16_t port;
    server srv = {.lfd = listen_any(&port), .sessions = CLIENTS};
    iou_task *st = iou_spawn(echo_server, &srv);
    client_args args[CLIENTS];
    iou_task *t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        args[i] = (client_args){.id = i, .port = port};
        CHECK((t[i] = iou_spawn(stream_client, &args[i])) != NULL);
    }
    for (int i = 0; i < CLIENTS; i++)
        CHECK_EQ(iou_join(t[i]), 1);
    CHECK_EQ(iou_join(st), CLIENTS * STREAM);
    return 0;
}

/* ---- accept's peer address, end of stream --------------------------------------- */

typedef struct accepted {
    int lfd, fd;
    struct sockaddr_in addr;
    socklen_t len;
} accepted;

static int accept_one(void *arg)
{
    accepted *a = arg;
    a->len = sizeof(a->addr);
    a->fd = iou_accept(a->lfd, (struct sockaddr *)&a->addr, &a->len);
    return a->fd >= 0;
}

static int peer_main(void *arg)
{
    (void)arg;
    uint16_t port;
    accepted a = {.lfd = listen_any(&port)};
    memset(&a.addr, 0xAB, sizeof(a.addr));
    iou_task *t = iou_spawn(accept_one, &a);
    int c = connect_to(port);
    CHECK_EQ(iou_join(t), 1);
    CHECK_EQ(a.len, sizeof(struct sockaddr_in));
    CHECK_EQ(a.addr.sin_family, AF_INET);
    CHECK_EQ(ntohl(a.addr.sin_addr.s_addr), INADDR_LOOPBACK);
    CHECK_EQ(ntohs(a.addr.sin_port), local_port(c));
    /* One message each way, then the peer closes: recv reports 0, twice. */
    char buf[16];
    CHECK_EQ(iou_send(c, "ping", 4, 0), 4);
    CHECK_EQ(iou_recv(a.fd, buf, sizeof(buf), 0), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_EQ(iou_send(a.fd, "pong", 4, 0), 4);
    CHECK_EQ(iou_recv(c, buf, sizeof(buf), 0), 4);
    CHECK(memcmp(buf, "pong", 4) == 0);
    CHECK_EQ(iou_close(c), 0);
    CHECK_EQ(iou_recv(a.fd, buf, sizeof(buf), 0), 0);
    CHECK_EQ(iou_recv(a.fd, buf, sizeof(buf), 0), 0);
    CHECK_EQ(iou_close(a.fd), 0);
    CHECK_EQ(iou_close(a.lfd), 0);
    return 0;
}

/* ---- failures -------------------------------------------------------------------- */

static int refused_main(void *arg)
{
    (void)arg;
    uint16_t port;
    int lfd = listen_any(&port);
    CHECK_EQ(iou_close(lfd), 0); /* nothing listens on port any more */
    int fd = iou_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = loopback(port);
    CHECK_EQ(iou_connect(fd, (struct sockaddr *)&a, sizeof(a)), -ECONNREFUSED);
    CHECK_EQ(iou_close(fd), 0);
    return 0;
}

/*
 * Writing to a connection the peer closed: the first sends may still succeed
 * (the RST is in flight); an error must follow, and SIGPIPE (left at its
 * default action, which kills) must never be raised.
 */
static int closed_peer_main(void *arg)
{
    (void)arg;
    uint16_t port;
    accepted a = {.lfd = listen_any(&port)};
    iou_task *t = iou_spawn(accept_one, &a);
    int c = connect_to(port);
    CHECK_EQ(iou_join(t), 1);
    CHECK_EQ(iou_close(a.fd), 0);
    char buf[1024] = {0};
    CHECK_EQ(iou_recv(c, buf, sizeof(buf), 0), 0); /* the FIN arrived */
    ssize_t r = 0;
    for (int i = 0; i < 2000 && r >= 0; i++) {
        r = iou_send(c, buf, sizeof(buf), 0);
        if (r >= 0)
            CHECK_EQ(iou_sleep(MS(1)), 0); /* bounded: waits for the RST */
    }
    CHECK(r == -EPIPE || r == -ECONNRESET);
    CHECK_EQ(iou_send(c, buf, sizeof(buf), 0), -EPIPE); /* and it stays broken */
    CHECK_EQ(iou_close(c), 0);
    CHECK_EQ(iou_close(a.lfd), 0);
    return 0;
}

int main(void)
{
    watchdog(30);
    signal(SIGPIPE, SIG_DFL);
    raise_fd_limit();
    int fds = count_fds();
    CHECK_EQ(run_or_skip(peer_main, NULL), 0);
    CHECK_EQ(run_or_skip(echo_main, NULL), 0);
    CHECK_EQ(run_or_skip(refused_main, NULL), 0);
    CHECK_EQ(run_or_skip(closed_peer_main, NULL), 0);
    CHECK_EQ(count_fds(), fds);
    puts("test_tcp: ok");
    return 0;
}
