/*
 * echo_epoll: the epoll baseline for bench/echo-compare. A tight, hand-written
 * single-threaded echo server: level-triggered epoll, non-blocking sockets,
 * one read(2) per readiness event and the echo written straight back. Only
 * when the socket cannot take all of it does the rest wait in a per-connection
 * buffer for EPOLLOUT (no reads from that connection meanwhile, so the
 * client's backpressure reaches it).
 *
 * Usage: echo_epoll [--port PORT]     (default 7000, listens on 127.0.0.1)
 * Stops on SIGINT / SIGTERM (through a signalfd in the same epoll set).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUF_SIZE = 16384, MAX_EVENTS = 256 };

/* Per-connection state exists only while a write is pending. */
typedef struct pending {
    size_t off, len;
    char data[BUF_SIZE];
} pending;

typedef struct conn {
    int fd;
    pending *out;
} conn;

static int ep;
static char buf[BUF_SIZE];

static void conn_close(conn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    free(c->out);
    free(c);
}

/* Writes what is pending; returns -1 on a fatal error, 0 otherwise. */
static int flush_pending(conn *c)
{
    pending *p = c->out;
    while (p->off < p->len) {
        ssize_t w = send(c->fd, p->data + p->off, p->len - p->off, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN ? 0 : -1;
        p->off += (size_t)w;
    }
    free(p);
    c->out = NULL;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_readable(conn *c)
{
    ssize_t n = read(c->fd, buf, sizeof(buf));
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN)
            return;
        conn_close(c);
        return;
    }
    ssize_t w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w == n)
        return;
    if (w < 0) {
        if (errno != EAGAIN) {
            conn_close(c);
            return;
        }
        w = 0;
    }
    /* Short write: keep the rest and wait until the socket drains. */
    c->out = malloc(sizeof(pending));
    if (c->out == NULL) {
        conn_close(c);
        return;
    }
    c->out->off = 0;
    c->out->len = (size_t)(n - w);
    memcpy(c->out->data, buf + w, c->out->len);
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        conn_close(c);
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: drained; anything else: try again on the next event */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        conn *c = calloc(1, sizeof(*c));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (c == NULL || (c->fd = fd, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)) {
            free(c);
            close(fd);
        }
    }
}

int main(int argc, char **argv)
{
    int port = 7000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--port PORT]\n", argv[0]);
            return 2;
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
    if (sfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0) {
        perror("echo_epoll: listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    /* data.ptr NULL marks the listener, &sfd the signalfd; others are conns. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    printf("echo_epoll: listening on 127.0.0.1:%d (pid %d)\n", port, (int)getpid());
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            void *p = events[i].data.ptr;
            if (p == NULL) {
                on_accept(lfd);
            } else if (p == &sfd) {
                return 0; /* SIGINT / SIGTERM: the kernel closes everything */
            } else {
                conn *c = p;
                if (c->out == NULL)
                    on_readable(c);
                else if (flush_pending(c) < 0)
                    conn_close(c);
            }
        }
    }
    perror("echo_epoll: epoll_wait");
    return 1;
}
