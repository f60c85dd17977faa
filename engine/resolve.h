/* Host name resolution on the thread pool (resolve.c). */
#ifndef IOU_RESOLVE_H
#define IOU_RESOLVE_H

#include <iou.h>

struct addrinfo;

/* getaddrinfo(host, port) for socktype, run on a pool worker. Stores the list
 * in *res (free it with freeaddrinfo) and returns 0, or a negative errno:
 * -EHOSTUNREACH (no such name, or no address of a usable family), -EAGAIN
 * (the name server did not answer), -EIO, -ENOMEM, -ECANCELED, -ETIMEDOUT.
 * Suspends (outside a task: blocks). */
int iou__resolve(const char *host, uint16_t port, int socktype, struct addrinfo **res);

#endif
