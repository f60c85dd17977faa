/*
 * Host names for dialling: getaddrinfo on the thread pool, so a slow DNS
 * answer blocks one worker, not the loop. The request is on the heap and
 * handed to the pool: a caller cancelled mid-lookup leaves at once, and the
 * lookup's result is freed when the worker is done with it.
 */
#include "resolve.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int iou__run_in_pool(iou_fn fn, void *arg, void (*orphan)(void *arg));

typedef struct lookup {
    char *host;
    char service[8];
    int socktype;
    int rc;        /* getaddrinfo's EAI_* code (kept apart: they overlap errno values) */
    int sys_errno; /* errno of the worker, for EAI_SYSTEM */
    struct addrinfo *res;
} lookup;

static void lookup_free(void *arg)
{
    lookup *q = arg;
    if (q->res)
        freeaddrinfo(q->res);
    free(q->host);
    free(q);
}

static int lookup_run(void *arg)
{
    lookup *q = arg;
    struct addrinfo hints = {.ai_socktype = q->socktype, .ai_flags = AI_ADDRCONFIG};
    q->rc = getaddrinfo(q->host, q->service, &hints, &q->res);
    q->sys_errno = errno;
    return 0;
}

/* getaddrinfo's EAI_* codes as the negative errno values iou returns. */
static int eai_to_errno(int rc, int sys_errno)
{
    switch (rc) {
    case 0:
        return 0;
    case EAI_NONAME:
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
        return -EHOSTUNREACH; /* the name has no address (of a usable family) */
    case EAI_AGAIN:
        return -EAGAIN; /* the name server did not answer: try later */
    case EAI_FAIL:
        return -EIO;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return sys_errno ? -sys_errno : -EIO;
    default:
        return -EINVAL;
    }
}

int iou__resolve(const char *host, uint16_t port, int socktype, struct addrinfo **res)
{
    lookup *q = calloc(1, sizeof(*q));
    if (q == NULL || (q->host = strdup(host)) == NULL) {
        free(q);
        return -ENOMEM;
    }
    snprintf(q->service, sizeof(q->service), "%u", (unsigned)port);
    q->socktype = socktype;
    int err = iou__run_in_pool(lookup_run, q, lookup_free);
    if (err == -ECANCELED || err == -ETIMEDOUT)
        return err; /* q belongs to the pool call now: lookup_free runs after it */
    if (err == 0)
        err = eai_to_errno(q->rc, q->sys_errno);
    if (err == 0) {
        *res = q->res;
        q->res = NULL;
    }
    lookup_free(q);
    return err;
}
