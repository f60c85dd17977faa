/*
 * Numeric socket addresses: "127.0.0.1", "::1", "fe80::1%eth0" and the one
 * name every machine has, "localhost" (127.0.0.1). Nothing here resolves
 * names: DNS would block the whole loop, so it waits for the thread pool.
 */
#include <iou.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static int parse_v4(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -EINVAL;
    memcpy(ss, &a, sizeof(a));
    *len = sizeof(a);
    return 0;
}

/* An IPv6 zone: an interface index or name. 0 if there is no such interface. */
static uint32_t parse_scope(const char *s)
{
    if (!isdigit((unsigned char)s[0]))
        return if_nametoindex(s);
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    return *end == '\0' && v <= UINT32_MAX ? (uint32_t)v : 0;
}

/* "addr" or "addr%zone". */
static int parse_v6(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    char text[INET6_ADDRSTRLEN];
    const char *zone = strchr(host, '%');
    size_t n = zone ? (size_t)(zone - host) : strlen(host);
    if (n >= sizeof(text))
        return -EINVAL;
    memcpy(text, host, n);
    text[n] = '\0';
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    if (inet_pton(AF_INET6, text, &a.sin6_addr) != 1)
        return -EINVAL;
    if (zone && (a.sin6_scope_id = parse_scope(zone + 1)) == 0)
        return -EINVAL;
    memcpy(ss, &a, sizeof(a));
    *len = sizeof(a);
    return 0;
}

int iou_addr_parse(const char *host, uint16_t port, struct sockaddr_storage *addr, socklen_t *len)
{
    if (host == NULL || addr == NULL || len == NULL)
        return -EINVAL;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (parse_v4(host, port, addr, len) == 0)
        return 0;
    return parse_v6(host, port, addr, len);
}

int iou_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}
