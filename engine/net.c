/*
 * TCP and UDP endpoints: listening sockets, dialled connections, bound
 * datagram sockets. socket, setsockopt, bind and listen never wait for the
 * network, so they are plain system calls; only connect waits for the peer
 * and goes through the ring (iou_socket + iou_connect), and a host name
 * waits for getaddrinfo on the thread pool (resolve.c).
 */
#include "resolve.h"

#include <iou.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

static const iou_listen_opts default_opts;

static int set_flag(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value)) < 0 ? -errno : 0;
}

static int apply_opts(int fd, int family, const iou_listen_opts *o, bool reuseaddr)
{
    int err = 0;
    if (reuseaddr)
        err = set_flag(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (err == 0 && o->reuseport)
        err = set_flag(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    /* Explicit either way: the sysctl net.ipv6.bindv6only sets the default. */
    if (err == 0 && family == AF_INET6)
        err = set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY, o->v6only);
    return err;
}

/* A socket of addr's family, with the options applied, bound to addr. */
static int bound_socket(const struct sockaddr_storage *addr, socklen_t len, int type,
                        const iou_listen_opts *o, bool reuseaddr)
{
    int fd = socket(addr->ss_family, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int err = apply_opts(fd, addr->ss_family, o, reuseaddr);
    if (err == 0 && bind(fd, (const struct sockaddr *)addr, len) < 0)
        err = -errno;
    if (err) {
        close(fd);
        return err;
    }
    return fd;
}

/* Every address: "::" (which also takes IPv4 unless v6only) where the kernel
 * has IPv6, else 0.0.0.0. */
static int bind_any(uint16_t port, int type, const iou_listen_opts *o, bool reuseaddr)
{
    struct sockaddr_storage addr;
    socklen_t len;
    iou_addr_parse("::", port, &addr, &len);
    int fd = bound_socket(&addr, len, type, o, reuseaddr);
    if (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL)
        return fd;
    iou_addr_parse("0.0.0.0", port, &addr, &len);
    return bound_socket(&addr, len, type, o, reuseaddr);
}

static int bind_host(const char *host, uint16_t port, int type, const iou_listen_opts *o,
                     bool reuseaddr)
{
    if (host == NULL || host[0] == '\0')
        return bind_any(port, type, o, reuseaddr);
    struct sockaddr_storage addr;
    socklen_t len;
    int err = iou_addr_parse(host, port, &addr, &len);
    if (err)
        return err;
    return bound_socket(&addr, len, type, o, reuseaddr);
}

int iou_listen_tcp_ex(const char *host, uint16_t port, int backlog, const iou_listen_opts *opts)
{
    int fd = bind_host(host, port, SOCK_STREAM, opts ? opts : &default_opts, true);
    if (fd < 0)
        return fd;
    /* The kernel caps the backlog at net.core.somaxconn. */
    if (listen(fd, backlog > 0 ? backlog : INT_MAX) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int iou_listen_tcp(const char *host, uint16_t port, int backlog)
{
    return iou_listen_tcp_ex(host, port, backlog, NULL);
}

int iou_bind_udp(const char *host, uint16_t port, const iou_listen_opts *opts)
{
    return bind_host(host, port, SOCK_DGRAM, opts ? opts : &default_opts, false);
}

/* socket + connect; the socket is closed again if connect fails (also when
 * the task is cancelled meanwhile: no fd leaks). */
static int dial_addr(const struct sockaddr *addr, socklen_t len, int type)
{
    int fd = iou_socket(addr->sa_family, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    int err = 0;
    if (type == SOCK_STREAM)
        err = set_flag(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (err == 0)
        err = iou_connect(fd, addr, len);
    if (err < 0) {
        iou_close(fd);
        return err;
    }
    return fd;
}

/* A name: resolved on the thread pool, each address tried in the order
 * getaddrinfo gives them until one connects (the last error otherwise). */
static int dial_name(const char *host, uint16_t port, int type)
{
    struct addrinfo *res;
    int err = iou__resolve(host, port, type, &res);
    if (err)
        return err;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        err = dial_addr(a->ai_addr, a->ai_addrlen, type);
        if (err >= 0 || err == -ECANCELED || err == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    return err;
}

static int dial(const char *host, uint16_t port, int type)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (host == NULL)
        return -EINVAL;
    if (iou_addr_parse(host, port, &addr, &len) == 0)
        return dial_addr((const struct sockaddr *)&addr, len, type);
    return dial_name(host, port, type);
}

int iou_dial_tcp(const char *host, uint16_t port)
{
    return dial(host, port, SOCK_STREAM);
}

int iou_dial_udp(const char *host, uint16_t port)
{
    return dial(host, port, SOCK_DGRAM);
}
