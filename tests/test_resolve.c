/*
 * Host names: getaddrinfo on the thread pool. "localhost" through the pool,
 * dialling a second loopback name if the machine has one (ip6-localhost,
 * ip6-loopback, or its own host name when /etc/hosts maps it to a loopback
 * address), and a malformed name that fails with -EHOSTUNREACH without any
 * query leaving the machine (an empty label is refused before DNS is asked).
 */
#include "testutil.h"
#include "resolve.h"

#include <netdb.h>
#include <netinet/in.h>

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24 == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

/* A name other than "localhost" that resolves to a loopback address here,
 * found with a plain getaddrinfo first. *numeric gets that address. */
static const char *second_name(char *numeric, size_t cap)
{
    static char host[256];
    const char *candidates[] = {"ip6-localhost", "ip6-loopback", host};
    if (gethostname(host, sizeof(host) - 1) != 0)
        host[0] = '\0';
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
        struct addrinfo *res;
        if (candidates[i][0] == '\0' || getaddrinfo(candidates[i], NULL, &hints, &res) != 0)
            continue;
        bool ok = is_loopback(res->ai_addr) &&
                  getnameinfo(res->ai_addr, res->ai_addrlen, numeric, (socklen_t)cap, NULL, 0,
                              NI_NUMERICHOST) == 0;
        freeaddrinfo(res);
        if (ok)
            return candidates[i];
    }
    return NULL;
}

static void check_resolve_localhost(void)
{
    struct addrinfo *res;
    CHECK_EQ(iou__resolve("localhost", 8080, SOCK_STREAM, &res), 0);
    CHECK(is_loopback(res->ai_addr));
    CHECK_EQ(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), 8080);
    freeaddrinfo(res);
}

static int resolve_main(void *arg)
{
    (void)arg;
    check_resolve_localhost(); /* on a worker */
    CHECK_EQ(iou_dial_tcp("no..such..host", 80), -EHOSTUNREACH);
    CHECK_EQ(iou_dial_udp("no..such..host", 80), -EHOSTUNREACH);

    char numeric[64];
    const char *name = second_name(numeric, sizeof(numeric));
    if (name == NULL) {
        fprintf(stderr, "no second loopback name here: dialling by name not tried\n");
        return 0;
    }
    int lfd = iou_listen_tcp(numeric, 0, 4);
    CHECK(lfd >= 0);
    int fd = iou_dial_tcp(name, (uint16_t)iou_local_port(lfd));
    CHECK(fd >= 0);
    int s = iou_accept(lfd, NULL, NULL);
    CHECK(s >= 0);
    check_send_all(fd, "hi", 2);
    char buf[2];
    CHECK_EQ(iou_recv(s, buf, 2, MSG_WAITALL), 2);
    CHECK(memcmp(buf, "hi", 2) == 0);
    iou_close(s);
    iou_close(fd);
    iou_close(lfd);
    fprintf(stderr, "dialled %s (%s)\n", name, numeric);
    return 0;
}

/* Cancelled while the lookup runs: back at once; the lookup's result is
 * freed when its worker finishes (ASan would see a leak or a bad free). */
static int cancelled_lookup(void *arg)
{
    (void)arg;
    return iou_dial_tcp("localhost.localdomain.no..such", 80);
}

static int cancel_main(void *arg)
{
    (void)arg;
    iou_task *t = spawn_checked(cancelled_lookup, NULL);
    iou_yield(); /* it posted its lookup and parked */
    iou_cancel(t);
    int r = iou_join(t);
    CHECK(r == -ECANCELED || r == -EHOSTUNREACH); /* the lookup may have won */
    return 0;
}

int main(void)
{
    watchdog(60);
    check_resolve_localhost(); /* outside a task: on this thread */
    CHECK_EQ(run_or_skip(resolve_main, NULL), 0);
    CHECK_EQ(run_or_skip(cancel_main, NULL), 0);
    return 0;
}
